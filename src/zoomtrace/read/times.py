"""Durations and times as people type them (``250ms``, ``1.5s``, ``15m`` ago, ISO), for the CLI and the UI."""

from __future__ import annotations

import argparse
import re
import time
from datetime import UTC, datetime

_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
}


#: Durations and times are 64-bit nanoseconds in the stores.
_LONGEST = 2**63


def parse_duration(text: str) -> int:
    """``250ms``, ``1.5s``, ``10m`` -> nanoseconds."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ns|us|µs|ms|s|m|h|d)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (examples: 250ms, 1.5s, 10m, 2h)")
    ns = int(float(m.group(1)) * _UNITS[m.group(2)])
    if ns >= _LONGEST:
        raise argparse.ArgumentTypeError(f"too long a duration: {text!r} (at most about 290 years)")
    return ns


def parse_time(text: str) -> int:
    """An ISO time (``2026-11-28T10:00``) or an age (``10m`` ago) -> epoch nanoseconds."""
    try:
        return time.time_ns() - parse_duration(text)
    except argparse.ArgumentTypeError:
        pass
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {text!r} (use an ISO time or an age like 10m)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1e9)
