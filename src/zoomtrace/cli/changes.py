"""``zoomtrace errors``, ``changes`` and ``diff``: what broke or got slower, at which line and with which commit."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from zoomtrace.read.changes import Changes, Thresholds, changes, diff, error_groups
from zoomtrace.read.render import dump_json, fmt_duration
from zoomtrace.read.render_changes import changes_lines, group_lines
from zoomtrace.read.times import parse_duration, parse_time

Session = Callable[[argparse.Namespace], AbstractContextManager[Any]]
Add = Callable[..., argparse.ArgumentParser]


def add_commands(add: Add, session: Session) -> None:
    """Register the three commands (``add`` as ``cli.main.build_parser`` defines it)."""
    p = add("errors", lambda args: cmd_errors(args, session), "error groups: by exception type, line and message")
    p.add_argument("--service")
    p.add_argument("--since", type=parse_time, metavar="TIME", help="ISO time or age, e.g. 1h")

    p = add(
        "changes", lambda args: cmd_changes(args, session), "regressions and new errors between commits, per service"
    )
    p.add_argument("--service")
    p.add_argument("--since", type=parse_time, metavar="TIME", help="ISO time or age, e.g. 1d")
    _add_thresholds(p)

    p = add("diff", lambda args: cmd_diff(args, session), "the comparison of `changes` for two chosen commits")
    p.add_argument("commit_a", metavar="COMMIT_A", help="a commit or a prefix of it (COMMIT-dirty: its dirty runs)")
    p.add_argument("commit_b", metavar="COMMIT_B")
    p.add_argument("--service")
    _add_thresholds(p)


def _add_thresholds(p: argparse.ArgumentParser) -> None:
    default = Thresholds()
    p.add_argument(
        "--min-samples",
        type=int,
        default=default.min_samples,
        metavar="N",
        help=f"spans needed on each side to judge a location (default {default.min_samples})",
    )
    p.add_argument(
        "--latency-factor",
        type=float,
        default=default.latency_factor,
        metavar="X",
        help=f"p95 ratio that counts as a latency change (default {default.latency_factor})",
    )
    p.add_argument(
        "--min-change",
        type=parse_duration,
        default=default.min_change_ns,
        metavar="DURATION",
        help=f"least change of p95 that counts (default {fmt_duration(default.min_change_ns)})",
    )
    p.add_argument(
        "--alpha",
        type=float,
        default=default.alpha,
        help=f"largest p-value taken as a change (default {default.alpha})",
    )


def _thresholds(args: argparse.Namespace) -> Thresholds:
    return Thresholds(
        min_samples=args.min_samples,
        latency_factor=args.latency_factor,
        min_change_ns=args.min_change,
        alpha=args.alpha,
    )


def cmd_errors(args: argparse.Namespace, session: Session) -> int:
    with session(args) as store:
        groups = error_groups(store, service=args.service, since_ns=args.since)
    if args.json:
        dump_json(groups)
        return 0
    if not groups:
        print("no errors recorded" + (" since then" if args.since else ""))
    for g in groups:
        print("\n".join(group_lines(g)))
    return 0


def cmd_changes(args: argparse.Namespace, session: Session) -> int:
    thresholds = _thresholds(args)
    with session(args) as store:
        found = changes(store, service=args.service, since_ns=args.since, thresholds=thresholds)
    return _show(found, args.json, args.service)


def cmd_diff(args: argparse.Namespace, session: Session) -> int:
    thresholds = _thresholds(args)
    with session(args) as store:
        found = diff(store, args.commit_a, args.commit_b, service=args.service, thresholds=thresholds)
    return _show(found, args.json, args.service)


def _show(found: Changes, as_json: bool, service: str | None) -> int:
    if as_json:
        dump_json(found)
        return 0
    if not found.services:
        who = f"service {service!r} did not run" if service else "no service ran"
        print(f"{who} with a known commit: run services from a git repository (`zoomtrace nodes` lists the runs)")
    for lines in changes_lines(found):
        print(lines)
    return 0
