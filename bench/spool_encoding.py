"""The worker's cost of a spool frame, per kind of record: msgspec's JSON lines (the spool's frames since version
2) against msgpack (version 1), on real records of the ingest workload (bench/cases/ingest.py).

    PYTHONPATH=src .venv/bin/python bench/spool_encoding.py [--records 60000]

Batches of 128 records (the worker's write size), thread CPU, best of 7 rounds; bytes per record of each.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cases.ingest import _emit

import zoomtrace as zt
from zoomtrace.wire.record import Record, encoder
from zoomtrace.wire.spool import read_segment, segments

BATCH = 128


def recorded(n: int) -> list[Record]:
    """``n`` records of the ingest workload, as a Zoom node writes them to its spool."""
    with tempfile.TemporaryDirectory(prefix="zt-bench-spool-") as tmp:
        zt.init("bench-spool", home=Path(tmp), capture_logging=False, install_signal_handlers=False)
        _emit(zt, n)
        zt.shutdown()
        return [r for path in segments(Path(tmp) / "spool") for r in read_segment(path).records]


def best_us(encode: Callable[[list[Record]], bytes], records: list[Record], rounds: int = 7) -> float:
    batches = [records[i : i + BATCH] for i in range(0, len(records), BATCH)]
    best = float("inf")
    for _ in range(rounds):
        start = time.thread_time_ns()
        for batch in batches:
            encode(batch)
        best = min(best, (time.thread_time_ns() - start) / len(records) / 1000)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=60_000)
    args = parser.parse_args()
    by_kind: dict[str, list[Record]] = {}
    for r in recorded(args.records):
        by_kind.setdefault(r.kind, []).append(r)
    json_lines = msgspec.json.Encoder().encode_lines
    print(f"{'kind':6s} {'records':>8s} {'msgpack µs':>11s} {'JSON µs':>8s} {'msgpack B':>10s} {'JSON B':>7s}")
    for kind, records in sorted(by_kind.items()):
        if len(records) < BATCH:
            continue
        sample = records[:1000]
        print(
            f"{kind:6s} {len(records):8d} {best_us(encoder.encode, records):11.3f} {best_us(json_lines, records):8.3f} "
            f"{len(encoder.encode(sample)) / len(sample):10.0f} {len(json_lines(sample)) / len(sample):7.0f}"
        )


if __name__ == "__main__":
    main()
