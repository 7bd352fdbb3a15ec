"""Profiles of Zoom's hot path, caller side and worker side, for the per-record cases.

    .venv/bin/python bench/profile_hotpath.py                         # all cases, cProfile + clean timings
    .venv/bin/python bench/profile_hotpath.py log span --n 50000
    .venv/bin/python bench/profile_hotpath.py --tool pyinstrument     # call trees (pyinstrument)
    .venv/bin/python bench/profile_hotpath.py --tool pyspy            # sampling, both threads, line level (py-spy)
    .venv/bin/python bench/profile_hotpath.py --out bench/results/profiles

Cases: log (zt.log.info, template + 2 attrs, in a span), span (zt.span with 2 attrs), event (zt.event,
1 KB payload), stdlib (logging.getLogger().info captured by Zoom's handler).

How the two sides are separated (cProfile and pyinstrument): the pipeline's worker is parked (its
wake-up interval set to an hour, its wake-up threshold above the queue bound), so the calling loop
runs alone and only fills the queue: that is the caller side. The queue is then drained by calling
the worker's own ``Pipeline._drain`` on the profiled thread: that is the worker side (encode,
sanitize, scrub, msgspec, spool write), the same code on the same items. Each side is also timed
without a profiler (thread CPU time), which gives the clean µs per record that the profile's
shares are applied to. py-spy instead samples the real, unparked pipeline from outside the
process (both threads, lines), so it also shows the GIL hand-offs between them.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from cases.common import PERCENT_TEMPLATE, TEMPLATE, order_payload  # noqa: E402

CASES = ("log", "span", "event", "stdlib")


def workload(zt: Any, case: str) -> Callable[[int], None]:
    if case == "log":

        def run(n: int) -> None:
            info = zt.log.info
            with zt.span("request"):
                for i in range(n):
                    info(TEMPLATE, amount=12.5, order=i)

    elif case == "span":

        def run(n: int) -> None:
            span = zt.span
            for i in range(n):
                with span("work", order=i, user="u1"):
                    pass

    elif case == "event":
        payload = order_payload()

        def run(n: int) -> None:
            event = zt.event
            with zt.span("request"):
                for _ in range(n):
                    event(payload, type="OrderPlaced")

    elif case == "stdlib":
        std = logging.getLogger("bench.app")

        def run(n: int) -> None:
            info = std.info
            with zt.span("request"):
                for i in range(n):
                    info(PERCENT_TEMPLATE, 12.5, i)

    else:
        raise SystemExit(f"unknown case {case!r}: use one of {', '.join(CASES)}")
    return run


class Parked:
    """The pipeline's worker asleep: the queue only fills until ``drain`` is called on this thread.

    The pipeline's ``put`` wakes the worker once past a quarter of the queue's bound; it is told it already has
    (``woken``), which the worker, asleep for the hour, does not reset.
    """

    def __init__(self, pipeline: Any) -> None:
        self.p = pipeline
        self.saved = (pipeline._interval_s, pipeline._wake_at)

    def __enter__(self) -> Parked:
        self.p._interval_s, self.p._wake_at = 3600.0, 10**12
        self.p._wake.set()  # let it loop once and go back to sleep with the new interval
        time.sleep(0.1)
        self.p.put.woken = True
        return self

    def drain(self) -> None:
        self.p._drain()

    def __exit__(self, *exc: object) -> None:
        self.p._interval_s, self.p._wake_at = self.saved
        self.p._wake.set()  # the worker resets ``woken`` as it wakes


def _pstats_text(prof: cProfile.Profile, n: int, clean_us: float, limit: int = 28) -> str:
    """Top functions by own time, with µs per record scaled to the unprofiled timing."""
    st = pstats.Stats(prof)
    rows = []
    total_tt = sum(v[2] for v in st.stats.values())  # type: ignore[attr-defined]
    for (file, line, func), (_cc, nc, tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        rows.append((tt, ct, nc, f"{_short(file)}:{line}({func})"))
    rows.sort(reverse=True)
    out = io.StringIO()
    out.write(f"{'own %':>6} {'≈µs/rec':>8} {'cum %':>6} {'calls/rec':>9}  function\n")
    for tt, ct, nc, name in rows[:limit]:
        share = tt / total_tt if total_tt else 0
        out.write(f"{share * 100:6.1f} {share * clean_us:8.3f} {ct / total_tt * 100:6.1f} {nc / n:9.2f}  {name}\n")
    return out.getvalue()


def _short(path: str) -> str:
    for marker in ("/src/zoomtrace/", "/site-packages/", "/lib/python3"):
        i = path.find(marker)
        if i >= 0:
            return path[i + 1 :] if marker != "/lib/python3" else "stdlib/" + path.rsplit("/", 1)[-1]
    return path.rsplit("/", 1)[-1] if path.startswith("/") else path


def profile_case(zt: Any, node: Any, case: str, n: int, tool: str) -> str:
    run = workload(zt, case)
    run(2000)
    zt.flush(60)
    out = [f"## {case}: n={n}\n"]
    with Parked(node.pipeline) as parked:
        # Clean timings first (no profiler): caller CPU per record, then worker CPU per record.
        c0, w0 = time.thread_time_ns(), time.perf_counter_ns()
        run(n)
        caller_us = (time.thread_time_ns() - c0) / n / 1e3
        caller_wall = (time.perf_counter_ns() - w0) / n / 1e3
        queued = len(node.pipeline._queue)
        c0 = time.thread_time_ns()
        parked.drain()
        worker_us = (time.thread_time_ns() - c0) / n / 1e3
        out.append(
            f"clean: caller {caller_us:.3f} µs/record CPU ({caller_wall:.3f} wall), "
            f"worker {worker_us:.3f} µs/record CPU ({queued} items queued), "
            f"total {caller_us + worker_us:.3f} µs/record\n"
        )
        if tool == "cprofile":
            prof = cProfile.Profile()
            prof.enable()
            run(n)
            prof.disable()
            out.append(
                "\n### caller side (cProfile, own time; µs scaled to the clean timing)\n```\n"
                + _pstats_text(prof, n, caller_us)
                + "```\n"
            )
            prof = cProfile.Profile()
            prof.enable()
            parked.drain()
            prof.disable()
            out.append(
                "\n### worker side (cProfile, own time; µs scaled to the clean timing)\n```\n"
                + _pstats_text(prof, n, worker_us)
                + "```\n"
            )
        elif tool == "pyinstrument":
            from pyinstrument import Profiler

            for side in ("caller", "worker"):
                prof = Profiler(interval=0.0002)
                prof.start()
                if side == "caller":
                    run(n)
                else:
                    parked.drain()
                prof.stop()
                text = prof.output_text(unicode=True, color=False, show_all=False, short_mode=False)
                out.append(f"\n### {side} side (pyinstrument)\n```\n{text}```\n")
    zt.flush(60)
    return "".join(out)


# -- py-spy: the real pipeline, sampled from outside ------------------------------------------------


def child(case: str, seconds: float) -> None:
    """Run ``case`` end to end for ``seconds`` (what py-spy samples)."""
    import zoomtrace as zt

    home = Path(tempfile.mkdtemp(prefix="zt-profile-"))
    try:
        zt.init("profile", home=home, install_signal_handlers=False)
        run = workload(zt, case)
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            run(20_000)
            zt.flush(60)
        zt.shutdown()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def pyspy(case: str, seconds: float, rate: int) -> str:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with tempfile.TemporaryDirectory() as d:
        raw = Path(d) / "stacks.txt"
        cmd = [
            spy,
            "record",
            "--format",
            "raw",
            "--rate",
            str(rate),
            "--threads",
            "--gil",
            "--nonblocking",
            "-o",
            str(raw),
            "--",
            sys.executable,
            __file__,
            "--child",
            case,
            "--seconds",
            str(seconds),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 4 + 120)
        if proc.returncode != 0 or not raw.exists():
            return f"## {case}: py-spy failed ({proc.returncode}): {proc.stderr[-800:]}\n"
        return summarise_stacks(case, raw.read_text())


def summarise_stacks(case: str, text: str, limit: int = 22) -> str:
    """Own samples per source line and inclusive samples per function, per thread."""
    own: dict[str, Counter[str]] = defaultdict(Counter)
    incl: dict[str, Counter[str]] = defaultdict(Counter)
    totals: Counter[str] = Counter()
    for line in text.splitlines():
        if not line.strip():
            continue
        stack, _, count_s = line.rpartition(" ")
        try:
            count = int(count_s)
        except ValueError:
            continue
        frames = stack.split(";")
        thread = frames[0]
        # The child has two Python threads: the pipeline's worker and the main (calling) thread, which
        # py-spy sometimes reports without its name.
        thread = "worker" if "zoomtrace-pipeline" in thread else "caller"
        frames = [f for f in frames[1:] if f]
        if not frames:
            continue
        totals[thread] += count
        own[thread][_frame(frames[-1])] += count
        for func in {_func(f) for f in frames}:
            incl[thread][func] += count
    out = [f"## {case}: py-spy --gil (samples while holding the GIL), {sum(totals.values())} samples\n"]
    for thread, total in totals.most_common():
        out.append(f"\n### {thread} thread: {total} samples ({total / sum(totals.values()) * 100:.0f} %)\n")
        out.append("own time by line:\n```\n")
        for frame, c in own[thread].most_common(limit):
            out.append(f"{c / total * 100:6.1f} %  {frame}\n")
        out.append("```\ninclusive by function:\n```\n")
        for func, c in incl[thread].most_common(limit):
            out.append(f"{c / total * 100:6.1f} %  {func}\n")
        out.append("```\n")
    return "".join(out)


def _frame(f: str) -> str:
    # "emit (zoomtrace/log.py:31)" -> shortened path
    name, _, where = f.partition(" (")
    return f"{name} ({_short(where.rstrip(')'))})" if where else f


def _func(f: str) -> str:
    name, _, where = f.partition(" (")
    return f"{name} ({_short(where.rstrip(')').rsplit(':', 1)[0])})" if where else f


# -- main -------------------------------------------------------------------------------------------


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cases", nargs="*", default=list(CASES))
    p.add_argument("--n", type=int, default=30_000, help="records per profiled side (at most the queue bound)")
    p.add_argument("--tool", choices=("cprofile", "pyinstrument", "pyspy"), default="cprofile")
    p.add_argument("--seconds", type=float, default=6.0, help="py-spy: how long to sample each case")
    p.add_argument("--rate", type=int, default=2000, help="py-spy: samples per second")
    p.add_argument("--out", type=Path, help="write each case's profile to OUT/<case>-<tool>.md")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child, args.seconds)
        return 0
    texts: dict[str, str] = {}
    if args.tool == "pyspy":
        for case in args.cases:
            texts[case] = pyspy(case, args.seconds, args.rate)
    else:
        import zoomtrace as zt

        home = Path(tempfile.mkdtemp(prefix="zt-profile-"))
        try:
            node = zt.init("profile", home=home, install_signal_handlers=False)
            zt.flush(30)
            for case in args.cases:
                texts[case] = profile_case(zt, node, case, args.n, args.tool)
            zt.shutdown()
        finally:
            shutil.rmtree(home, ignore_errors=True)
    header = (
        f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, tool {args.tool}\n\n"
    )
    for case, text in texts.items():
        print(header + text if case == args.cases[0] else text)
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"{case}-{args.tool}.md").write_text(header + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
