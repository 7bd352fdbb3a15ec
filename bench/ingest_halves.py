"""Spool -> DuckDB ingest, its two halves measured apart: what each costs, and what two cores could do with both.

    .venv/bin/python bench/ingest_halves.py                       # 300,000 records, 3 repeats
    .venv/bin/python bench/ingest_halves.py --records 1000000 --repeats 5

The spool is case 6's (``bench/cases/ingest.py``: requests of a span, four logs and a data event, recorded by a
Zoom node). Then, each repeat into a fresh store:

- ``read``: the reading half alone, ``spool_ingest._read_batches`` (reading the segments and the store's
  ``prepare``), each batch dropped once made;
- ``write``: the writing half alone, the same batches made beforehand, then written one after the other;
- ``ingest``: both, as ``zoomtrace ingest`` runs them (``ingest_spool``: the store writes one batch on a helper
  thread while the next is read).

Reported per half: records per wall second and CPU µs per record (the whole process: DuckDB's threads too), medians
of the repeats; and ``two_cores_at_most``, the rate two cores fully busy would give for the two halves' CPU.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from cases.ingest import _emit

import zoomtrace as zt
from zoomtrace._gc import gc_paused
from zoomtrace.collect import spool_ingest
from zoomtrace.collect._batching import Batch, BatchWriter, open_target
from zoomtrace.store.duckdb import DuckStore


def _made(store: DuckStore, spool: Path) -> Iterator[Batch]:
    """The batches ``ingest_spool`` would write into ``store``, made by its reading half."""
    writer = BatchWriter(open_target(store))
    return spool_ingest._read_batches(
        spool,
        {},
        spool_ingest.IngestReport(),
        writer,
        batch_records=spool_ingest.BATCH_RECORDS,
        batch_bytes=spool_ingest.BATCH_BYTES,
    )


def _read(spool: Path) -> Callable[[DuckStore], int]:
    return lambda store: sum(batch.size for batch in _made(store, spool))


def _write(batches: list[Batch]) -> Callable[[DuckStore], int]:
    def run(store: DuckStore) -> int:
        writer = BatchWriter(open_target(store))
        for batch in batches:
            writer.write(batch)
        return sum(batch.size for batch in batches)

    return run


def _ingest(spool: Path) -> Callable[[DuckStore], int]:
    return lambda store: spool_ingest.ingest_spool(store, spool).new


def _timed(run: Callable[[DuckStore], int], path: Path) -> tuple[int, float, float]:
    """Records, wall seconds and process CPU seconds of ``run`` on a fresh store at ``path``."""
    store = DuckStore(path)
    try:
        with gc_paused():
            wall, cpu = time.perf_counter(), time.process_time()
            records = run(store)
            return records, time.perf_counter() - wall, time.process_time() - cpu
    finally:
        store.close()
        path.unlink(missing_ok=True)


def _summary(runs: list[tuple[int, float, float]]) -> dict[str, Any]:
    records = runs[0][0]
    return {
        "records": records,
        "records_per_s": round(records / statistics.median(wall for _, wall, _ in runs)),
        "cpu_us_per_record": round(statistics.median(cpu for _, _, cpu in runs) / records * 1e6, 2),
    }


def measure(records: int, repeats: int, tmp: Path) -> dict[str, Any]:
    home = tmp / "home"
    zt.init("bench-ingest", home=home, capture_logging=False, install_signal_handlers=False)
    _emit(zt, records)
    zt.shutdown()
    spool = home / "spool"
    runs: dict[str, list[tuple[int, float, float]]] = {"read": [], "write": [], "ingest": []}
    maker = DuckStore(tmp / "maker.duckdb")  # the write half's batches are made with it, outside the clock
    try:
        for i in range(repeats):  # the three alternate, so that a slow spell of the machine hits each alike
            runs["read"].append(_timed(_read(spool), tmp / f"read-{i}.duckdb"))
            runs["write"].append(_timed(_write(list(_made(maker, spool))), tmp / f"write-{i}.duckdb"))
            runs["ingest"].append(_timed(_ingest(spool), tmp / f"ingest-{i}.duckdb"))
    finally:
        maker.close()
    out = {name: _summary(each) for name, each in runs.items()}
    both = out["read"]["cpu_us_per_record"] + out["write"]["cpu_us_per_record"]
    out["two_cores_at_most"] = round(2 / both * 1e6)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=300_000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="zt-bench-halves-"))
    try:
        print(json.dumps(measure(args.records, args.repeats, tmp), indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
