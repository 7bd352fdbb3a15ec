"""What every case shares: the workload, the clocks, the samples, the machine description."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

#: The log message of case 1, as each library spells a template with two attributes.
TEMPLATE = "charged {amount} for {order}"
PERCENT_TEMPLATE = "charged %s for %s"


def order_payload() -> dict[str, Any]:
    """A realistic business event of about 1 KB of JSON: nested objects, a list of lines."""
    return {
        "order_id": "ord-7f3a9c2e-0001",
        "customer": {"id": "cus-0042", "name": "Ada Lovelace", "email": "ada@example.com", "tier": "gold"},
        "currency": "EUR",
        "lines": [
            {"sku": f"SKU-{i:05d}", "name": f"Widget model {i}", "qty": i % 3 + 1, "unit_price": 9.99 + i}
            for i in range(8)
        ],
        "shipping": {
            "method": "express",
            "address": {"street": "12 Analytical Row", "city": "London", "postcode": "N1 7AA", "country": "GB"},
        },
        "total": 153.42,
        "paid": True,
        "notes": "leave at the door, ring twice" * 2,
    }


PAYLOAD_JSON_BYTES = len(json.dumps(order_payload(), separators=(",", ":")))


class JsonFormatter(logging.Formatter):
    """What a team without a structured-logging library writes: the record as one JSON line,
    callsite included (stdlib logging always captures it), ``extra`` payload if present."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": record.created,
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "file": record.pathname,
            "line": record.lineno,
            "function": record.funcName,
            "thread": record.threadName,
        }
        payload = getattr(record, "payload", None)
        if payload is not None:
            out["payload"] = payload
        return json.dumps(out)


def json_file_handler(path: Path) -> logging.FileHandler:
    handler = logging.FileHandler(path)
    handler.setFormatter(JsonFormatter())
    return handler


# -- clocks ---------------------------------------------------------------------------------------


def measure(run: Callable[[int], object], n: int, finish: Callable[[], object]) -> dict[str, float]:
    """One sample of ``n`` operations.

    caller_cpu_us   CPU time of the calling thread per operation (user + system, this thread only):
                    what the application's thread pays, unaffected by other processes on the machine.
    caller_wall_us  wall time of the calling loop per operation.
    e2e_wall_us     wall time per operation until ``finish`` returns (everything encoded and written).
    e2e_cpu_us      CPU time of the whole process (all its threads) per operation until then: the
                    total cost, robust to other load on the machine.
    """
    w0, c0, p0 = time.perf_counter_ns(), time.thread_time_ns(), time.process_time_ns()
    run(n)
    w1, c1 = time.perf_counter_ns(), time.thread_time_ns()
    finish()
    w2, p2 = time.perf_counter_ns(), time.process_time_ns()
    return {
        "caller_cpu_us": (c1 - c0) / n / 1e3,
        "caller_wall_us": (w1 - w0) / n / 1e3,
        "e2e_wall_us": (w2 - w0) / n / 1e3,
        "e2e_cpu_us": (p2 - p0) / n / 1e3,
    }


def summarise(values: list[float]) -> dict[str, float]:
    """Median and spread of a metric over its samples."""
    values = sorted(values)
    n = len(values)
    if n == 0:
        return {}
    q = statistics.quantiles(values, n=4, method="inclusive") if n >= 2 else [values[0]] * 3
    return {
        "median": statistics.median(values),
        "min": values[0],
        "max": values[-1],
        "p25": q[0],
        "p75": q[2],
        "iqr_pct": (q[2] - q[0]) / statistics.median(values) * 100 if statistics.median(values) else 0.0,
        "n": n,
    }


# -- memory ---------------------------------------------------------------------------------------


def proc_status_kb(field: str) -> int:
    """A ``/proc/self/status`` field in kB (VmRSS: resident now, VmHWM: peak resident)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak_rss() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so a later peak belongs to what follows."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


# -- the machine ----------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _git_head() -> dict[str, Any]:
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = (
            subprocess.run(
                ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            ).stdout.strip()
            != ""
        )
        return {"commit": head, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {}
    for dist in (
        "zoomtrace",
        "msgspec",
        "duckdb",
        "structlog",
        "loguru",
        "eliot",
        "opentelemetry-sdk",
        "logfire",
        "orjson",
        "confluent-kafka",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def machine_info() -> dict[str, Any]:
    try:
        load = os.getloadavg()
    except OSError:
        load = (0.0, 0.0, 0.0)
    mem_kb = 0
    try:
        with open("/proc/meminfo") as f:
            mem_kb = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "load_average_at_start": [round(x, 2) for x in load],
        "repo": _git_head(),
        "versions": versions(),
    }


def parked_node(service: str, home: Path) -> tuple[Any, Any, Callable[[Callable[[], object]], Callable[[], None]]]:
    """A started node whose pipeline worker is parked, so caller-side costs are measured alone.

    Returns ``(node, queue, drained)``: ``drained(fn)`` wraps ``fn`` so the parked queue is cleared
    before it grows past 50,000 items.
    """
    import zoomtrace as zt

    node = zt.init(service, home=home, install_signal_handlers=False)
    zt.flush(30)
    pipeline = node.pipeline
    pipeline._interval_s, pipeline._wake_at = 3600.0, 10**12  # park the worker
    pipeline._wake.set()
    time.sleep(0.1)  # let it take the wake-up and go back to its hour-long wait
    queue = pipeline._queue

    def drained(fn: Callable[[], object]) -> Callable[[], None]:
        def call() -> None:
            fn()
            if len(queue) > 50_000:
                queue.clear()

        return call

    return node, queue, drained


def add_broker_arguments(parser: argparse.ArgumentParser) -> None:
    """``--kafka HOST:PORT`` or ``--start-kafka``, one of them required (see ``kafka_broker``)."""
    broker = parser.add_mutually_exclusive_group(required=True)
    broker.add_argument("--kafka", help="a broker to use, host:port")
    broker.add_argument("--start-kafka", action="store_true", help="start a broker (scripts/kafka-broker) for the run")


@contextlib.contextmanager
def kafka_broker(address: str | None, start: bool, data_dir: Path) -> Iterator[str | None]:
    """The broker a script runs against: ``address`` (host:port), or, with ``start``, one started for the run in
    ``data_dir`` (scripts/kafka-broker) and stopped after it; None when neither is given."""
    if not start:
        yield address
        return
    sys.path.insert(0, str(REPO))
    from tests.support.kafka_broker import KafkaBroker, free_port_pair

    broker = KafkaBroker(port=free_port_pair(), data_dir=data_dir)
    try:
        yield broker.start()
    finally:
        broker.stop()
