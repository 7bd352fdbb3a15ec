"""The ``zoomtrace`` command: tell the story of what the instrumented processes did.

Every command reads the store ``--store`` names (or ``$ZOOMTRACE_STORE``; by default the DuckDB
file of the home), ingesting the new spool data of ``--home`` (or ``$ZOOMTRACE_HOME``, default
``./.zoomtrace``) first. Errors are one line and a non-zero exit status, never a traceback
(``ZOOMTRACE_DEBUG=1`` shows it), and never a store URL's password.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import msgspec

from zoomtrace._args import count, port, positive, seconds
from zoomtrace._extras import missing_extra, require
from zoomtrace._terminal import safe
from zoomtrace.cli.run import add_arguments as add_run_arguments
from zoomtrace.cli.run import cmd_run
from zoomtrace.errors import ConfigError, TooLarge, ZoomError
from zoomtrace.read import tables
from zoomtrace.read.query import STORY_LIMIT, lineage, nodes, story, story_stream, tail, trace_filter, traces
from zoomtrace.read.render import (
    TRACES_HEADER,
    dump_json,
    node_line,
    one_line,
    print_lineage,
    print_story,
    record_line,
    trace_line,
)
from zoomtrace.read.times import parse_duration, parse_time
from zoomtrace.store.urls import StoreUrl, add_store_arguments, parse_retention, resolve_store
from zoomtrace.wire.spool import default_home


@contextmanager
def store_session(args: argparse.Namespace, *, ingest: bool = True) -> Iterator[Any]:
    from zoomtrace.collect import open_session

    with open_session(Path(args.home), store=args.store, ingest=ingest, retention_days=args.retention_days) as store:
        yield store


# -- commands ------------------------------------------------------------------------


def cmd_traces(args: argparse.Namespace) -> int:
    if None not in (args.min_duration, args.max_duration) and args.min_duration > args.max_duration:
        raise ConfigError("--min-duration is longer than --max-duration: no trace can match both")
    if None not in (args.since, args.until) and args.since > args.until:
        raise ConfigError("--since is later than --until: no trace can match both")
    filt = trace_filter(
        service=args.service,
        env=args.env,
        text=args.text,
        errors_only=args.errors,
        min_duration_ns=args.min_duration,
        max_duration_ns=args.max_duration,
        since_ns=args.since,
        until_ns=args.until,
    )
    with store_session(args) as store:
        rows = traces(store, filt, limit=args.limit, offset=args.offset)
    if args.json:
        dump_json(rows)
        return 0
    if not rows:
        print("no traces match")
        return 0
    print(TRACES_HEADER)
    for t in rows:
        print(trace_line(t))
    return 0


def cmd_story(args: argparse.Namespace) -> int:
    if args.json and args.ndjson:
        raise ConfigError("story writes --json or --ndjson, not both")
    if args.json and args.limit is not None:
        raise ConfigError("--limit is for the tree and --ndjson; narrow --json with --span or --depth")
    with store_session(args) as store:
        if args.ndjson:
            return _story_lines(store, args)
        whole_json = args.json and args.span is None and args.depth is None
        try:
            told = story(
                store,
                args.trace_id,
                span_id=args.span,
                depth=args.depth,
                max_records=STORY_LIMIT if whole_json else None,
            )
        except TooLarge as exc:
            raise ConfigError(
                f"{exc}: use `zoomtrace story {args.trace_id} --ndjson`, which streams it, or narrow --json with "
                "--span or --depth"
            ) from None
    if args.json:
        dump_json(told)
        return 0
    left_out = print_story(told, limit=args.limit)
    if left_out:
        print(f"… {left_out:,} more spans and records left out: raise --limit, or narrow with --span or --depth")
    return 0


def _story_lines(store: Any, args: argparse.Namespace) -> int:
    """``story --ndjson``: one JSON object per line, read from the store a page at a time."""
    told = story_stream(store, args.trace_id, span_id=args.span, depth=args.depth)
    encode = msgspec.json.Encoder().encode
    out = sys.stdout.buffer
    out.write(encode(told.header) + b"\n")
    written = 0
    for line in told.lines:
        if args.limit is not None and written >= args.limit:
            break
        out.write(encode(line) + b"\n")
        written += 1
    out.flush()
    if told.size > written:
        print(f"zoomtrace: {told.size - written:,} more lines left out (--limit {args.limit})", file=sys.stderr)
    return 0


def cmd_nodes(args: argparse.Namespace) -> int:
    with store_session(args) as store:
        rows = nodes(store, limit=args.limit)
    if args.json:
        dump_json(rows)
        return 0
    for n in rows:
        print(node_line(n))
    return 0


def cmd_tail(args: argparse.Namespace) -> int:
    with store_session(args) as store:
        rows = tail(store, limit=max(args.n, 1), last=True, services=True)
    # Follow from the newest record even when none is shown first (-n 0).
    after: str | None = rows[-1].id if rows else None
    rows = rows[-args.n :] if args.n > 0 else []
    while True:
        for r in rows:
            after = r.id
            if args.json:
                sys.stdout.write(msgspec.json.encode(r).decode() + "\n")
            else:
                print(record_line(r))
        sys.stdout.flush()
        if not args.follow:
            return 0
        time.sleep(args.interval)
        with store_session(args) as store:
            rows = tail(store, after_id=after, limit=1000, services=True)


def cmd_sql(args: argparse.Namespace) -> int:
    if args.json and args.format not in (None, "json"):
        raise ConfigError(f"sql writes --json or --format {args.format}, not both")
    with store_session(args) as store:
        columns, rows = store.sql(args.query)
    tables.write(columns, rows, "json" if args.json else args.format or "table")
    return 0


def cmd_lineage(args: argparse.Namespace) -> int:
    with store_session(args) as store:
        found = lineage(store, args.record_id)
    if args.json:
        dump_json(found)
    else:
        print_lineage(found)
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from zoomtrace.collect.spool_ingest import ingest_home

    with store_session(args, ingest=False) as store:
        report = ingest_home(store, Path(args.home))
    if args.json:
        dump_json(msgspec.structs.asdict(report) if isinstance(report, msgspec.Struct) else report.__dict__)
    else:
        print(f"read {report.records} records, {report.new} new; {report.pending_bytes} bytes pending")
        for problem in report.problems:
            print(f"problem: {safe(problem)}", file=sys.stderr)
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    if args.otlp and args.source:
        raise ConfigError("collect reads one source at a time: run one collector with --from, another with --otlp")
    if args.otlp:
        require("opentelemetry.proto", "collect --otlp")
        from zoomtrace.collect.otlp_receiver import serve

        return serve(Path(args.to or args.home), args.otlp, store=args.store, retention_days=args.retention_days)
    if args.source:
        require("confluent_kafka", "collect --from kafka://…")
        from zoomtrace.collect.kafka_collector import run_from_args

        return run_from_args(args)
    raise ConfigError(
        "collect needs a source: --from kafka://HOST:9092 (Zoom's Kafka topics) or --otlp 127.0.0.1:4318 (OTLP/HTTP)"
    )


def cmd_ui(args: argparse.Namespace) -> int:
    from zoomtrace.ui import serve

    serve(
        Path(args.home),
        host=args.host,
        port=args.port,
        token=args.token,
        store=args.store,
        retention_days=args.retention_days,
        code_roots=args.code_root,
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from zoomtrace.demo import run_demo

    if args.kafka:
        require("confluent_kafka", "the demo through Kafka (--kafka)")

    return run_demo(
        Path(args.home),
        json_output=args.json,
        open_ui=args.ui,
        kafka=args.kafka,
        store=args.store,
        retention_days=args.retention_days,
    )


# -- parser --------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """Argument errors in one line, as every other error (argparse prints the usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {safe(one_line(message))} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="zoomtrace", description="The whole story of a distributed system.")
    home_help = "spool directory, and the default store's (default: $ZOOMTRACE_HOME or ./.zoomtrace)"
    parser.add_argument("--home", default=str(default_home()), help=home_help)
    add_store_arguments(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Callable[[argparse.Namespace], int], help_: str, *, json: bool = True) -> Any:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(fn=fn)
        # The home and the store may be given before the command or after it.
        p.add_argument("--home", default=argparse.SUPPRESS, help=home_help)
        add_store_arguments(p, command=True)
        if json:
            p.add_argument("--json", action="store_true", help="machine-readable output")
        return p

    p = add("demo", cmd_demo, "run a small multi-process shop on localhost and show its most interesting story")
    p.add_argument("--ui", action="store_true", help="open the story in the web viewer afterwards")
    p.add_argument("--kafka", metavar="BOOTSTRAP", help="send through Apache Kafka at BOOTSTRAP (host:port)")

    p = add("traces", cmd_traces, "list traces, newest first")
    p.add_argument("--service")
    p.add_argument("--env")
    p.add_argument("--errors", action="store_true", help="only traces with an error")
    p.add_argument("--min-duration", type=parse_duration, metavar="DURATION", help="e.g. 100ms")
    p.add_argument("--max-duration", type=parse_duration, metavar="DURATION")
    p.add_argument("--since", type=parse_time, metavar="TIME", help="ISO time or age, e.g. 15m")
    p.add_argument("--until", type=parse_time, metavar="TIME")
    p.add_argument("--text", help="text in any message or attribute of the trace")
    p.add_argument("--limit", type=positive, default=20, metavar="N", help="list at most N traces (default: 20)")
    p.add_argument("--offset", type=count, default=0, metavar="N", help="skip the N newest first")

    p = add("story", cmd_story, "the story of one trace: spans, logs and events in causal and time order")
    p.add_argument("trace_id")
    p.add_argument("--span", metavar="SPAN_ID", help="only this span and the spans under it, with their records")
    p.add_argument(
        "--depth", type=positive, metavar="N", help="spans down to N levels (1: the roots only), with their records"
    )
    p.add_argument("--limit", type=positive, metavar="N", help="print at most N spans and records")
    p.add_argument(
        "--ndjson",
        action="store_true",
        help=f"stream one JSON object per line (traces of any size; --json stops at {STORY_LIMIT:,} records)",
    )

    p = add("nodes", cmd_nodes, "process runs, newest first: service, host, pid, commit, start, stop and cause")
    p.add_argument("--limit", type=positive, default=50, metavar="N", help="list at most N (default: 50)")

    p = add("tail", cmd_tail, "the newest records (-f to follow)")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-n", type=count, default=20, metavar="N", help="how many records to show first (default: 20)")
    p.add_argument("--interval", type=seconds, default=0.5, help=argparse.SUPPRESS)

    p = add("sql", cmd_sql, "run a read-only SQL query on the store (tables: records, nodes, traces, blobs)")
    p.add_argument("query")
    p.add_argument(
        "--format",
        choices=tables.FORMATS,
        help="table (default: aligned, NULL shown as NULL), csv or tsv (NULL as an empty field), json (as --json)",
    )

    p = add("lineage", cmd_lineage, "where a data event came from and what was derived from it")
    p.add_argument("record_id")

    add("ingest", cmd_ingest, "read new spool data into the store (every command does this first)")

    p = add("ui", cmd_ui, "serve the web story viewer (http://127.0.0.1:8087/), reading the same store", json=False)
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; any address other than loopback requires an access token",
    )
    p.add_argument("--port", type=port, default=8087, help="port to listen on (0: any free port)")
    p.add_argument("--token", help="access token (default: $ZOOMTRACE_UI_TOKEN; generated when --host is not loopback)")
    p.add_argument(
        "--code-root",
        action="append",
        metavar="DIR",
        help="a directory whose git repositories the code panel may read (repeatable; default: "
        "$ZOOMTRACE_CODE_ROOTS, else the repositories holding the current directory and the home)",
    )

    p = sub.add_parser(
        "run",
        help="run a Python program with Zoom recording it, no change to it: zoomtrace run -- python app.py",
        description="Run a Python program with Zoom recording it, no change to it: zoomtrace run -- python app.py",
    )
    p.set_defaults(fn=cmd_run)
    p.add_argument("--home", default=argparse.SUPPRESS, help=home_help)
    add_run_arguments(p)

    p = add(
        "collect",
        cmd_collect,
        "store what other processes send: Zoom records from Kafka (--from) or OTLP/HTTP traces and logs (--otlp)",
        json=False,
    )
    p.add_argument("--otlp", metavar="HOST:PORT", help="accept OTLP/HTTP (protobuf or JSON), e.g. 127.0.0.1:4318")
    from zoomtrace.collect.kafka_collector import add_arguments as add_collector_arguments

    add_collector_arguments(p)
    return parser


def _shown(exc: BaseException, store: StoreUrl | None) -> str:
    """An error's message as it may be printed: without the store URL's password."""
    return store.hide(str(exc)) if store is not None else str(exc)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    store: StoreUrl | None = None
    try:
        store = resolve_store(Path(args.home), args.store)  # a bad URL is reported before any work starts
        args.retention_days = parse_retention(args.retention) if args.retention else None
        store.check_retention(args.retention_days)
        result: int = args.fn(args)
        return result
    except ZoomError as exc:
        print(f"zoomtrace: {safe(one_line(_shown(exc, store)))}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if os.environ.get("ZOOMTRACE_DEBUG"):
            raise
        if isinstance(exc, ModuleNotFoundError) and (line := missing_extra(exc)) is not None:
            print(f"zoomtrace: {line}", file=sys.stderr)
            return 2
        print(
            f"zoomtrace: unexpected error: {type(exc).__name__}: {_shown(exc, store)} "
            "(set ZOOMTRACE_DEBUG=1 for details)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
