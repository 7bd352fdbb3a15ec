"""How long the application waits for the GIL while a library's background work runs (issue 13, item 3).

One process per library and round, pinned to one core (as ``bench/service.py`` pins its server), so the
application thread and any background worker share that core and the GIL. The application thread plays a
service at a fixed rate: each "request" records what ``bench/service.py``'s requests record (the adapters'
``request`` method in ``cases/micro.py``: a span, four log lines and a 1 KB event), then sleeps until the next
request is due (the GIL released, as an event loop releases it while it waits for I/O). Its **stall** per
request is the time it was off the CPU beyond the sleep it asked for; of that, the **GIL wait** is the part it
was blocked rather than waiting for the core (the kernel's per-thread run-queue time,
``/proc/thread-self/schedstat``, taken out), so other processes on a shared machine blur it less. It also
holds any blocking I/O of the request itself (a library that writes on the caller's thread shows it here).
``none`` (nothing recorded) gives the floor: the timer's own lateness.

Then a **burst**: ``--burst`` requests as fast as the thread can make them, then a flush: the background
worker's throughput (records drained per second of its own CPU time) and the records dropped, if any.

Usage::

    python bench/gil_hold.py [--libs none,zoomtrace,structlog] [--seconds 5] [--rate 5000] [--rounds 3]
                             [--burst 10000] [--core 0] [--json bench/results/gil_hold.json]

A timing, not a test: numbers go to bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

RECORDS_PER_REQUEST = 6
WORKER_THREAD = "zoomtrace-pipeline"


def _worker_cpu_ns() -> int:
    """CPU time of Zoom's pipeline worker thread so far (0 when there is none)."""
    for thread in threading.enumerate():
        if thread.name == WORKER_THREAD and thread.ident is not None:
            return time.clock_gettime_ns(time.pthread_getcpuclockid(thread.ident))
    return 0


def _pct(values: list[int], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))] / 1e3


def run(library: str, seconds: float, rate: float, burst: int, core: int) -> dict[str, Any]:
    """One library in this process: the paced phase, then the burst; returns the numbers."""
    if core >= 0:
        os.sched_setaffinity(0, {core})  # before the library starts its threads: they inherit it
    tmp = Path(tempfile.mkdtemp(prefix=f"zoom-gil-{library}-"))
    try:
        lib: Any = None
        if library != "none":
            from cases.micro import LIBS

            lib = LIBS[library](tmp)
        request = lib.request if lib is not None else (lambda i: None)
        period_ns = int(1e9 / rate)
        gil: list[int] = []
        stalls: list[int] = []
        wall, cpu, thread_cpu = time.perf_counter_ns, time.process_time_ns, time.thread_time_ns
        schedstat = os.open("/proc/thread-self/schedstat", os.O_RDONLY)

        def runnable_ns() -> int:
            """Time this thread has spent runnable but not running (waiting for the core, not the GIL)."""
            return int(os.pread(schedstat, 64, 0).split()[1])

        cpu0, worker0 = cpu(), _worker_cpu_ns()
        start = wall()
        due = start
        end = start + int(seconds * 1e9)
        i = 0
        while due < end:
            t0, c0, q0 = wall(), thread_cpu(), runnable_ns()
            request(i)
            t1 = wall()
            i += 1
            due += period_ns
            slept = 0
            if due > t1:
                slept = due - t1
                time.sleep(slept / 1e9)
            else:
                due = t1  # behind: no catching up in a burst, the next request is due now
            t2, c2, q2 = wall(), thread_cpu(), runnable_ns()
            off_cpu = (t2 - t0) - (c2 - c0) - slept
            stalls.append(max(0, off_cpu))
            gil.append(max(0, off_cpu - (q2 - q0)))
        os.close(schedstat)
        paced_cpu_ns, paced_worker_ns = cpu() - cpu0, _worker_cpu_ns() - worker0
        if lib is not None:
            lib.finish()
        # The burst: the worker's throughput, and whether its queue keeps up.
        worker1 = _worker_cpu_ns()
        b0 = wall()
        for j in range(burst):
            request(i + j)
        b1 = wall()
        if lib is not None:
            lib.finish()
        b2 = wall()
        burst_worker_ns = _worker_cpu_ns() - worker1
        lost = lib.lost() if lib is not None and hasattr(lib, "lost") else {}
        if lib is not None:
            lib.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "requests": i,
        "gil_p50_us": _pct(gil, 50),
        "gil_p99_us": _pct(gil, 99),
        "gil_p999_us": _pct(gil, 99.9),
        "gil_max_us": max(gil) / 1e3,
        "stall_p99_us": _pct(stalls, 99),
        "stall_max_us": max(stalls) / 1e3,
        "cpu_us_per_request": paced_cpu_ns / i / 1e3,
        "worker_us_per_record": paced_worker_ns / (i * RECORDS_PER_REQUEST) / 1e3,
        "burst_produce_s": (b1 - b0) / 1e9,
        "burst_drain_s": (b2 - b1) / 1e9,
        "burst_records_per_worker_cpu_s": burst * RECORDS_PER_REQUEST / (burst_worker_ns / 1e9)
        if burst_worker_ns
        else 0.0,
        "lost": lost,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--libs", default="none,zoomtrace,structlog")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rate", type=float, default=5000, help="requests per second in the paced phase")
    parser.add_argument("--burst", type=int, default=10_000, help="requests in the burst (6 records each)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--core", type=int, default=0, help="the core to pin to; -1: no pinning")
    parser.add_argument("--json", type=Path, help="write the medians and rounds here")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run(args.run, args.seconds, args.rate, args.burst, args.core)), flush=True)
        return 0
    libs = [name.strip() for name in args.libs.split(",") if name.strip()]
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in libs}
    for r in range(args.rounds):
        for name in libs:
            options = [
                f"--seconds={args.seconds}",
                f"--rate={args.rate}",
                f"--burst={args.burst}",
                f"--core={args.core}",
            ]
            out = subprocess.run(
                [sys.executable, __file__, "--run", name, *options],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            got = json.loads(out.strip().splitlines()[-1])
            rounds[name].append(got)
            print(
                f"round {r + 1} {name:10s} GIL wait p50 {got['gil_p50_us']:6.0f} p99 {got['gil_p99_us']:6.0f}"
                f" p99.9 {got['gil_p999_us']:6.0f} max {got['gil_max_us']:6.0f} µs"
                f"  stall p99 {got['stall_p99_us']:6.0f} max {got['stall_max_us']:6.0f} µs"
                f"  {got['cpu_us_per_request']:4.0f} µs CPU/req  worker {got['worker_us_per_record']:5.2f} µs/record"
                f"  burst {got['burst_records_per_worker_cpu_s']:7,.0f} rec/worker-s, drained in"
                f" {got['burst_drain_s']:.2f} s  lost {got['lost']}",
                flush=True,
            )
    keys = ["gil_p50_us", "gil_p99_us", "gil_p999_us", "gil_max_us", "stall_p99_us", "stall_max_us"]
    keys += ["cpu_us_per_request", "worker_us_per_record", "burst_records_per_worker_cpu_s", "burst_drain_s"]
    medians = {
        name: {key: statistics.median(run[key] for run in runs) for key in keys} for name, runs in rounds.items()
    }
    print(f"\nmedians of {args.rounds} rounds, {args.rate:g} requests/s for {args.seconds:g} s, core {args.core}:")
    print(
        "| library | GIL wait p50 µs | p99 µs | p99.9 µs | max µs | stall p99 µs | CPU µs/request"
        " | worker µs/record | burst records/worker-s | lost |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, m in medians.items():
        lost = sum(sum(run["lost"].values()) for run in rounds[name])
        print(
            f"| {name} | {m['gil_p50_us']:.0f} | {m['gil_p99_us']:.0f} | {m['gil_p999_us']:.0f} | {m['gil_max_us']:.0f}"
            f" | {m['stall_p99_us']:.0f} | {m['cpu_us_per_request']:.0f} | {m['worker_us_per_record']:.2f}"
            f" | {m['burst_records_per_worker_cpu_s']:,.0f} | {lost} |"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"settings": vars(args) | {"json": str(args.json)}, "medians": medians, "rounds": rounds}, indent=1
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
