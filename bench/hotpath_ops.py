"""What each step of Zoom's hot path costs, one operation at a time (timeit, best of several runs).

    .venv/bin/python bench/hotpath_ops.py [--out bench/results/profiles/ops.md]

Profilers attribute time to functions but distort small ones (cProfile's own overhead is per
call). This measures the primitives the hot path is made of, in isolation, with the same objects
the pipeline uses, so a line of src/zoomtrace can be given its cost in µs. Best-of-N timings of
tight loops: a lower bound, without cache misses or GIL hand-offs, so the sums come out somewhat
below the clean per-record timings of bench/profile_hotpath.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
import timeit
from collections import deque
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from cases.common import PERCENT_TEMPLATE, TEMPLATE, order_payload, parked_node  # noqa: E402


def cost(stmt: Any, number: int = 0, repeat: int = 7) -> float:
    """µs per call of ``stmt`` (a zero-argument callable), best of ``repeat`` runs."""
    timer = timeit.Timer(stmt)
    if not number:
        n, t = 1, 0.0
        while t < 0.02:
            n *= 4
            t = timer.timeit(n)
        number = max(1, int(n * 0.08 / t))
    return min(timer.repeat(repeat, number)) / number * 1e6


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path)
    args = p.parse_args()

    import msgspec

    import zoomtrace as zt
    from zoomtrace.capture import items as zitems
    from zoomtrace.runtime.sanitize import sanitize_attrs, sanitize_payload, truncate
    from zoomtrace.wire import record as zrecord

    home = Path(tempfile.mkdtemp(prefix="zt-ops-"))
    rows: list[tuple[str, str, float]] = []

    def row(section: str, what: str, us: float) -> None:
        rows.append((section, what, us))
        print(f"{section:<8} {us:8.3f} µs  {what}", file=sys.stderr)

    try:
        node, q, drained = parked_node("ops", home)
        pipeline, enc = node.pipeline, node.encoder

        # -- caller side: primitives ------------------------------------------------------------
        cv: contextvars.ContextVar[Any] = contextvars.ContextVar("x", default=None)
        getframe = sys._getframe

        def frame_read() -> None:
            f = getframe(1)
            f.f_code, f.f_lineno  # noqa: B018

        def empty(template: str, /, **attrs: Any) -> None:
            pass

        d: deque[Any] = deque()

        def tuple10() -> None:
            d.append((0, 1, 2, 3, 4, 5, 6, 7, 8, 9))
            if len(d) > 10000:
                d.clear()

        row(
            "caller",
            "call of a Python function with a template and 2 keyword attrs (the API's floor)",
            cost(lambda: empty(TEMPLATE, amount=12.5, order=7)) - cost(lambda: None),
        )
        row("caller", "sys._getframe(1) + f_code + f_lineno", cost(frame_read) - cost(lambda: None))
        row("caller", "time.time_ns()", cost(time.time_ns))
        row("caller", "ContextVar.get()", cost(cv.get))
        row("caller", "build a 10-tuple + deque.append", cost(tuple10) - cost(lambda: None))
        item = (zitems.LOG, 0, None, 0, None, "INFO", TEMPLATE, {}, None, None)
        row(
            "caller",
            "Pipeline.put(item) (pipeline.py, method call + 2 len + append)",
            cost(drained(lambda: pipeline.put(item)))
            - cost(drained(lambda: q.append(item)))
            + cost(lambda: d.append(1) or d.pop()),
        )
        info = zt.log.info
        with zt.span("ops"):
            row(
                "caller",
                "zt.log.info(template, amount=, order=) whole call (log.py)",
                cost(drained(lambda: info(TEMPLATE, amount=12.5, order=7))),
            )
        row(
            "caller",
            "threading.current_thread() + .name + .ident (span.py __enter__)",
            cost(lambda: (lambda t: (t.name, t.ident))(threading.current_thread())),
        )
        row("caller", "threading.get_ident()", cost(threading.get_ident))
        row("caller", "time.thread_time_ns() (a system call: CLOCK_THREAD_CPUTIME_ID)", cost(time.thread_time_ns))
        row("caller", "asyncio._get_running_loop()", cost(asyncio._get_running_loop))
        row("caller", "new_trace_id() (record.py, f-string of getrandbits(128))", cost(zrecord.new_trace_id))
        row("caller", "new_span_id()", cost(zrecord.new_span_id))
        row("caller", "random.getrandbits(64) alone", cost(lambda: zrecord._bits(64)))
        row("caller", "uuid7(ts) (record.py)", cost(lambda: zrecord.uuid7(1_780_000_000_000_000_000)))
        row("caller", "ContextVar.set + reset", cost(lambda: cv.reset(cv.set(1))))
        spans: dict[str, Any] = {}
        row("caller", "open_spans dict set + pop", cost(lambda: (spans.__setitem__("a", 1), spans.pop("a", None))))
        with zt.span("ops"):
            row(
                "caller",
                "zt.span('work', order=, user=) object only (span() + Span.__init__)",
                cost(lambda: zt.span("work", order=7, user="u1")),
            )
            s = zt.span("work", order=7, user="u1")

            def enter_exit() -> None:
                s.__enter__()
                s.__exit__(None, None, None)

            row("caller", "Span.__enter__ + __exit__ (incl. put)", cost(drained(enter_exit)))

            def whole_span() -> None:
                with zt.span("work", order=7, user="u1"):
                    pass

            row("caller", "with zt.span('work', order=, user=): pass  whole", cost(drained(whole_span)))
        payload = order_payload()
        with zt.span("ops"):
            row(
                "caller",
                "zt.event(payload 1 KB, type=) whole call",
                cost(drained(lambda: zt.event(payload, type="OrderPlaced"))),
            )
        row("caller", "[str(s) for s in ()] (events.py, sources)", cost(lambda: [str(s) for s in ()]))
        std = logging.getLogger("ops.std")
        with zt.span("ops"):
            row(
                "caller",
                "logging.getLogger().info('%s', a, b) captured by Zoom, whole call",
                cost(drained(lambda: std.info(PERCENT_TEMPLATE, 12.5, 7))),
            )
        rec = std.makeRecord("ops.std", logging.INFO, __file__, 10, PERCENT_TEMPLATE, (12.5, 7), None, "fn")
        row(
            "caller",
            "  of which logging.LogRecord(...) creation (stdlib)",
            cost(
                lambda: logging.LogRecord(
                    "ops.std", logging.INFO, __file__, 10, PERCENT_TEMPLATE, (12.5, 7), None, "fn"
                )
            ),
        )
        row("caller", "  of which os.getpid() (LogRecord.__init__, logging.logProcesses)", cost(os.getpid))
        handler = logging.getLogger().handlers[-1]
        row("caller", "  of which ZoomHandler.handle(record) (stdlib.py)", cost(drained(lambda: handler.handle(rec))))
        q.clear()

        # -- worker side ----------------------------------------------------------------------
        def frame_here() -> Any:
            return sys._getframe(0)

        f = frame_here()
        parent = zt.span("parent")
        attrs = {"amount": 12.5, "order": 7}
        log_item = (zitems.LOG, time.time_ns(), f.f_code, f.f_lasti, "app", "INFO", TEMPLATE, attrs, parent, None)
        row(
            "worker",
            "encode one log item, whole (encoder.py _log via node.encoder)",
            cost(lambda: enc(log_item)),
        )
        row("worker", "  template.format(**attrs) (encoder.py)", cost(lambda: TEMPLATE.format(**attrs)))
        message = TEMPLATE.format(**attrs)
        row("worker", "  uuid7(ts)", cost(lambda: zrecord.uuid7(1_780_000_000_000_000_000)))
        row("worker", "  truncate(message) (sanitize.py)", cost(lambda: truncate(message, 32768)))
        scrubber = enc.scrubber
        row("worker", "  scrubber.scrub_text(message) (scrub.py)", cost(lambda: scrubber.scrub_text(message)))
        row("worker", "  sanitize_attrs(attrs) (sanitize.py)", cost(lambda: sanitize_attrs(attrs, enc.limits)))
        row("worker", "  scrubber.scrub_attrs(attrs) (scrub.py)", cost(lambda: scrubber.scrub_attrs(attrs)))
        row(
            "worker", "  encoder.code(code, line) (encoder.py, a new Code struct)", cost(lambda: enc.code(f.f_code, 10))
        )
        code = enc.code(f.f_code, 10)
        row(
            "worker",
            "  Record(...) with 11 fields",
            cost(
                lambda: zrecord.Record(
                    id="0",
                    kind="log",
                    type="app",
                    ts_ns=1,
                    node_id="n",
                    code=code,
                    level="INFO",
                    message=message,
                    template=TEMPLATE,
                    attrs=attrs,
                    error=None,
                )
            ),
        )
        recs = [enc(log_item) for _ in range(4096)]
        row(
            "worker",
            "  msgspec msgpack encode, per record (batch of 4096)",
            cost(lambda: zrecord.encoder.encode(recs), number=20) / 4096,
        )
        data = zrecord.encoder.encode(recs)
        from zoomtrace.wire.spool import frame as spool_frame

        row(
            "worker",
            "  spool frame (crc32) per record (batch of 4096)",
            cost(lambda: spool_frame(data), number=50) / 4096,
        )
        fd = os.open(home / "ops.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        framed = spool_frame(data)
        row(
            "worker",
            "  os.write of the frame, per record (batch of 4096)",
            cost(lambda: os.write(fd, framed), number=50) / 4096,
        )
        os.close(fd)
        row("worker", "  msgspec msgpack encode of the attrs dict alone", cost(lambda: msgspec.msgpack.encode(attrs)))

        span_obj = zt.span("work", order=7, user="u1")
        span_obj.__enter__()
        span_obj.__exit__(None, None, None)
        q.clear()
        row("worker", "encode one span item, whole", cost(lambda: enc(span_obj)))

        ev_item = (zitems.EVENT, "id", time.time_ns(), f.f_code, f.f_lineno, "OrderPlaced", payload, [], {}, parent)
        row("worker", "encode one event item (1 KB payload), whole", cost(lambda: enc(ev_item)))
        row("worker", "  sanitize_payload(payload) (sanitize.py)", cost(lambda: sanitize_payload(payload, enc.limits)))
        clean = sanitize_payload(payload, enc.limits)
        row(
            "worker",
            "  scrubber.scrub_value(payload) (scrub.py, walks every value)",
            cost(lambda: scrubber.scrub_value(clean)),
        )
        row("worker", "  msgspec.json.encode(payload)", cost(lambda: msgspec.json.encode(payload)))
        enc_json = msgspec.json.encode(payload)
        row("worker", "  msgspec.json.decode(json)", cost(lambda: msgspec.json.decode(enc_json)))
        row("worker", "  msgspec.msgpack.encode(payload)", cost(lambda: msgspec.msgpack.encode(payload)))
        row(
            "worker",
            "  scrub_text on the payload's whole JSON text, once",
            cost(lambda: scrubber.scrub_text(enc_json.decode())),
        )

        std_item = (zitems.STDLOG, rec, parent)
        row(
            "worker",
            "encode one stdlib LogRecord item, whole (encoder.py _stdlog)",
            cost(lambda: enc(std_item)),
        )
        from zoomtrace.runtime.encoder import _LOGRECORD_FIELDS

        row(
            "worker",
            "  extras: {k: v for k in rec.__dict__ if k not in FIELDS}",
            cost(lambda: {k: v for k, v in rec.__dict__.items() if k not in _LOGRECORD_FIELDS}),
        )
        row("worker", "  rec.getMessage()", cost(rec.getMessage))
        row(
            "worker",
            "  encoder._code_at(pathname, lineno, funcName)",
            cost(lambda: enc._code_at(rec.pathname, rec.lineno, rec.funcName)),
        )
        zt.shutdown()
    finally:
        shutil.rmtree(home, ignore_errors=True)

    text = [
        f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; best of 7\n",
        "| side | µs | operation |",
        "|---|---:|---|",
    ]
    text += [f"| {s} | {us:.3f} | {w} |" for s, w, us in rows]
    out = "\n".join(text) + "\n"
    print(out)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
