"""A service under load: what each library costs an ASGI application's requests (issue 13, item 4).

One uvicorn worker (uvloop and httptools, as ``uvicorn[standard]`` installs) pinned to core 0 serves a
bare ASGI application; Debian's ``wrk`` pinned to core 1 loads it. Each request records the same six
records with one library, configured as for production by ``bench/cases/micro.py``'s adapters (their
``request`` method): a span (or, for the logging libraries, an access line with the duration), four
log lines and a 1 KB business event. ``none`` records nothing: the floor.

Per library, after a warm-up: requests/s, latency p50 and p99 (wrk's), the server's CPU time per request
(all its threads: background exporters included) and a check that every record was written (the server
flushes after the load and counts what its output holds). Libraries are measured in turn, ``--rounds``
times, interleaved; medians reported. Usage::

    python bench/service.py [--libs none,zoomtrace,stdlib-json,structlog,otel-sdk,logfire]
                            [--seconds 10] [--connections 32] [--rounds 3] [--json bench/results/service.json]

Needs ``wrk`` (``apt-get install wrk``) and two cores. A timing, not a test: numbers go to bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

#: Records each request writes (see the module docstring).
RECORDS_PER_REQUEST = 6
LIBRARIES = ("none", "zoomtrace", "stdlib-json", "structlog", "otel-sdk", "logfire")
_TICK = os.sysconf("SC_CLK_TCK")


# -- the server (a child process) -------------------------------------------------------------------


def serve(library: str, port: int, out_dir: Path) -> None:
    """Serve on ``port`` until SIGINT, then flush and print ``{"served", "written"}`` as one JSON line."""
    import uvicorn

    os.sched_setaffinity(0, {0})
    lib: Any = None
    if library != "none":
        from cases.micro import LIBS

        lib = LIBS[library](out_dir)
    served = 0

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal served
        if scope["type"] != "http":
            return
        if lib is not None:
            lib.request(served)
        served += 1
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})

    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
    )
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the SIGINT that stopped it, once shut down
        uvicorn.Server(config).run()
    written = 0
    if lib is not None:
        lib.finish()
        written = _written(library, out_dir)
        lib.close()
    print(json.dumps({"served": served, "written": written}), flush=True)


def _written(library: str, out_dir: Path) -> int:
    """Records the library's output holds: Zoom's spool records (not its node records), else JSON lines."""
    if library == "zoomtrace":
        from zoomtrace.wire.spool import read_segment, segments

        return sum(
            1 for path in segments(out_dir / "spool") for record in read_segment(path).records if record.kind != "node"
        )
    return sum(path.read_bytes().count(b"\n") for path in out_dir.glob("*.jsonl"))


# -- the driver -------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_listening(port: int, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"the server exited with status {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}"
            )
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)  # bench start-up, not a test: nothing to wait on but the port
    raise RuntimeError(f"the server did not listen on {port} within {timeout:.0f} s")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime of every thread


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _wrk(port: int, seconds: float, connections: int) -> dict[str, float]:
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--latency",
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    result["requests"] = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    for pct in ("50", "99"):
        value, unit = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
        result[f"p{pct}_ms"] = float(value) * _UNITS[unit]
    if "Non-2xx" in out:
        raise RuntimeError(f"the server answered errors:\n{out}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["socket_errors"] = float(sum(map(int, errors.groups()))) if errors else 0.0
    return result


def measure(library: str, seconds: float, connections: int, warmup: float) -> dict[str, Any]:
    """One round for one library: a fresh server, a warm-up, the measured load, then the flush and count."""
    out_dir = Path(tempfile.mkdtemp(prefix=f"zoom-service-{library}-"))
    port = _free_port()
    env = {**os.environ, "ZOOMTRACE_HOME": str(out_dir), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", library, "--port", str(port), "--out", str(out_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        _wait_listening(port, proc)
        _wrk(port, warmup, connections)
        cpu_before = _cpu_seconds(proc.pid)
        load = _wrk(port, seconds, connections)
        cpu = _cpu_seconds(proc.pid) - cpu_before
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"{library}: the server exited with status {proc.returncode}: {stderr[-2000:]}")
        counted = json.loads(stdout.strip().splitlines()[-1])
    finally:
        if proc.poll() is None:
            proc.kill()
        shutil.rmtree(out_dir, ignore_errors=True)
    expected = 0 if library == "none" else counted["served"] * RECORDS_PER_REQUEST
    return {
        **load,
        "cpu_us_per_request": cpu / load["requests"] * 1e6,
        "served": counted["served"],
        "written": counted["written"],
        "all_written": counted["written"] == expected,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--libs", default=",".join(LIBRARIES))
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the medians here")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.out)
        return 0
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        print("bench/service.py needs wrk and taskset: apt-get install wrk util-linux", file=sys.stderr)
        return 2
    if (os.cpu_count() or 1) < 2:
        print("bench/service.py needs two cores (server on one, wrk on the other)", file=sys.stderr)
        return 2
    libs = [name.strip() for name in args.libs.split(",") if name.strip()]
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in libs}
    for r in range(args.rounds):
        for name in libs:
            got = measure(name, args.seconds, args.connections, args.warmup)
            rounds[name].append(got)
            print(
                f"round {r + 1} {name:12s} {got['rps']:8.0f} req/s  p50 {got['p50_ms']:6.2f} ms"
                f"  p99 {got['p99_ms']:7.2f} ms  {got['cpu_us_per_request']:6.0f} µs CPU/request"
                f"  written {got['written']:,} of {got['served']:,} requests",
                flush=True,
            )
    medians = {
        name: {
            key: statistics.median(run[key] for run in runs)
            for key in ("rps", "p50_ms", "p99_ms", "cpu_us_per_request")
        }
        | {"all_written": all(run["all_written"] for run in runs)}
        for name, runs in rounds.items()
    }
    print(f"\nmedians of {args.rounds} rounds of {args.seconds:g} s, {args.connections} connections:")
    print("| library | requests/s | p50 ms | p99 ms | CPU µs/request | every record written |")
    print("|---|---:|---:|---:|---:|---|")
    for name, m in medians.items():
        written = "n/a" if name == "none" else ("yes" if m["all_written"] else "**no**")
        cells = [f"{m['rps']:,.0f}", f"{m['p50_ms']:.2f}", f"{m['p99_ms']:.2f}", f"{m['cpu_us_per_request']:.0f}"]
        print(f"| {name} | {' | '.join(cells)} | {written} |")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"settings": vars(args) | {"json": str(args.json)}, "medians": medians, "rounds": rounds},
                indent=1,
                default=str,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
