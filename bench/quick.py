"""Quick look at the hot path: µs per log record, span and event, beside stdlib logging, in one run.

    .venv/bin/python bench/quick.py [N]

Caller-side: time spent in the calling thread. End-to-end: until the records are
encoded and written to the spool (zt.flush()). Stdlib logging writes JSON lines
to a file through a FileHandler with a JSON formatter, the usual production setup.
The full suite against structlog, loguru, OpenTelemetry and others is bench/run.py.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cases.common import JsonFormatter  # the stdlib set-up the full suite uses too

import zoomtrace as zt


def per_call_us(fn: Callable[[int], None], n: int, finish: Callable[[], object] = lambda: None) -> float:
    start = time.perf_counter()
    fn(n)
    finish()
    return (time.perf_counter() - start) / n * 1e6


def main(n: int = 50_000) -> None:
    home = Path(tempfile.mkdtemp(prefix="zoom-bench-"))
    std = logging.getLogger("bench.stdlib")
    std.propagate = False
    handler = logging.FileHandler(home / "stdlib.jsonl")
    handler.setFormatter(JsonFormatter())
    std.addHandler(handler)
    std.setLevel(logging.INFO)

    zt.init("bench", home=home, capture_logging=False, queue_size=2 * n + 10)
    zt.flush()

    def zoom_log(k: int) -> None:
        info = zt.log.info
        for i in range(k):
            info("charged {amount} for {order}", amount=12.5, order=i)

    def zoom_span(k: int) -> None:
        span = zt.span
        for i in range(k):
            with span("work", order=i, user="u1"):
                pass

    payload = {"order": 1, "customer": "ada", "lines": ["x" * 40] * 20}

    def zoom_event(k: int) -> None:
        event = zt.event
        for _ in range(k):
            event(payload, type="OrderPlaced")

    def stdlib_log(k: int) -> None:
        for i in range(k):
            std.info("charged %s for %s", 12.5, i)

    rows = []
    with zt.span("bench"):
        for name, fn in [
            ("zoomtrace log", zoom_log),
            ("zoomtrace span", zoom_span),
            ("zoomtrace event 1KB", zoom_event),
        ]:
            caller = per_call_us(fn, n)
            zt.flush(60)
            e2e = per_call_us(fn, n, lambda: zt.flush(60))
            rows.append((name, caller, e2e))
        std_us = per_call_us(stdlib_log, n)
        rows.append(("stdlib logging JSON file", std_us, std_us))
    print(f"python {sys.version.split()[0]}, n={n}")
    print(f"{'case':<28}{'caller µs':>12}{'end-to-end µs':>16}")
    for name, caller, e2e in rows:
        print(f"{name:<28}{caller:>12.2f}{e2e:>16.2f}")
    zt.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000)
