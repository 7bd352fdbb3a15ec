"""The worker process: runs one job described by a JSON spec and writes its JSON result to a file.

    python bench/cases/worker.py SPEC_JSON OUT_PATH

Jobs: ``micro`` (one library, its per-record cases), ``ingest`` (spool -> DuckDB), ``kafka``
(Kafka -> collector -> store), ``query`` (story and traces page on a synthesised store), ``memory``.
One process per job keeps libraries from seeing each other's global configuration (logging
handlers, OpenTelemetry providers, loguru's logger) and gives every library a fresh interpreter.
"""

from __future__ import annotations

import gc
import json
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/, so that ``cases`` imports

from cases.common import measure

CONCURRENT = ("threads8", "tasks1000")


def _round_n(case: str, n: float, nmin: int, nmax: int) -> int:
    n = int(min(max(n, nmin), nmax))
    if case in CONCURRENT:
        return max(8000, round(n / 8000) * 8000)  # divisible by 8 threads and by 1,000 tasks
    return max(100, round(n / 100) * 100)


def run_micro(spec: dict[str, Any]) -> dict[str, Any]:
    from cases.micro import LIBS

    tmp = Path(tempfile.mkdtemp(prefix=f"zt-bench-{spec['lib']}-"))
    out: dict[str, Any] = {"lib": spec["lib"], "cases": {}}
    t0 = time.perf_counter()
    try:
        lib = LIBS[spec["lib"]](tmp)
        out["setup"] = lib.setup
        out["setup_s"] = round(time.perf_counter() - t0, 3)
        for case in spec["cases"]:
            fn = getattr(lib, case, None)
            if fn is None:
                continue
            try:
                lost_before = sum(lib.lost().values()) if hasattr(lib, "lost") else 0
                fixed = spec.get("n")
                if fixed:
                    n = _round_n(case, fixed, 1, 10**9) if case in CONCURRENT else int(fixed)
                    measure(fn, min(n, 1000) if case not in CONCURRENT else n, lib.finish)  # warm-up
                else:
                    warm = measure(fn, 8000 if case in CONCURRENT else spec.get("calibrate_n", 1000), lib.finish)
                    n = _round_n(
                        case, spec["budget_s"] * 1e6 / max(warm["e2e_wall_us"], 0.01), spec["nmin"], spec["nmax"]
                    )
                samples = []
                for _ in range(spec["repeats"]):
                    gc.collect()
                    samples.append(measure(fn, n, lib.finish))
                result: dict[str, Any] = {"n": n, "samples": samples}
                if hasattr(lib, "lost"):
                    result["lost"] = sum(lib.lost().values()) - lost_before
                out["cases"][case] = result
            except Exception as exc:  # one failing case must not hide the others
                out["cases"][case] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        lib.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main() -> None:
    spec = json.loads(sys.argv[1])
    out_path = Path(sys.argv[2])
    job = spec["job"]
    try:
        if job == "micro":
            result = run_micro(spec)
        elif job == "ingest":
            from cases.ingest import run_ingest

            result = run_ingest(spec)
        elif job == "kafka":
            from cases.ingest import run_kafka

            result = run_kafka(spec)
        elif job == "query":
            from cases.query import run_query

            result = run_query(spec)
        elif job == "memory":
            from cases.memory import run_memory

            result = run_memory(spec)
        else:
            raise ValueError(f"unknown job {job!r}")
    except Exception as exc:
        result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    out_path.write_text(json.dumps(result))
    sys.stdout.flush()
    # Libraries with background threads (exporters, pipelines) may linger; the result is written.
    import os

    os._exit(0)


if __name__ == "__main__":
    main()
