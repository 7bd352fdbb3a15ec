"""Case 6: ingestion. Spool -> DuckDB, and Kafka -> collector -> store (with a real broker).

The records are real: a Zoom node records them (one request = a span, 4 logs with 2 attributes
and a small data event, so 6 records), through its own pipeline, into the spool or Kafka.
Then ingestion into a fresh store is timed:

- spool: ``zoomtrace.collect.spool_ingest.ingest_spool(DuckStore, spool_dir)`` (what ``zoomtrace ingest`` and every
  CLI query run), into a new store file each repeat;
- kafka: ``zoomtrace.collect.kafka_collector.run_collector`` (what ``zoomtrace collect`` runs) in this process,
  consuming the run's own topics into a store; the rate is taken between the end of the first batch
  and the end of the last (steady state: the consumer-group join is not counted).

Rates are reported per wall second and per CPU second of the process (all its threads: the
ingest reader thread, DuckDB's threads), so "on one core" can be read off the second.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

PER_REQUEST = 6


def _emit(zt: Any, n: int) -> int:
    """Record about ``n`` records (requests of 6), flushing every 60,000 so that none is dropped."""
    requests = max(1, n // PER_REQUEST)
    info, span, event = zt.log.info, zt.span, zt.event
    done = 0
    for r in range(requests):
        with span("GET /orders", route="/orders", user=f"u{r % 500}"):
            info("looked up {order} for {user}", order=r, user=f"u{r % 500}")
            info("reserved {qty} of {sku}", qty=2, sku="SKU-00042")
            event({"order_id": r, "total": 153.42, "currency": "EUR"}, type="OrderPlaced")
            info("charged {amount} for {order}", amount=12.5, order=r)
            info("done in {ms} ms", ms=3.2, order=r)
        done += PER_REQUEST
        if done % 60_000 < PER_REQUEST:
            zt.flush(120)
    zt.flush(120)
    return requests * PER_REQUEST


def _rates(n: int, wall: list[float], cpu: list[float]) -> dict[str, Any]:
    return {
        "records": n,
        "wall_s": [round(w, 3) for w in wall],
        "cpu_s": [round(c, 3) for c in cpu],
        "records_per_s": round(n / statistics.median(wall)),
        "records_per_s_min": round(n / max(wall)),
        "records_per_s_max": round(n / min(wall)),
        "records_per_cpu_s": round(n / statistics.median(cpu)),
    }


def run_ingest(spec: dict[str, Any]) -> dict[str, Any]:
    import zoomtrace as zt
    from zoomtrace.collect.spool_ingest import ingest_spool
    from zoomtrace.store.duckdb import DuckStore

    tmp = Path(tempfile.mkdtemp(prefix="zt-bench-ingest-"))
    try:
        home = tmp / "home"
        zt.init("bench-ingest", home=home, capture_logging=False, install_signal_handlers=False)
        t = time.perf_counter()
        emitted = _emit(zt, spec["records"])
        produce_s = time.perf_counter() - t
        zt.shutdown()
        spool = home / "spool"
        spool_bytes = sum(p.stat().st_size for p in spool.iterdir())
        wall: list[float] = []
        cpu: list[float] = []
        stored = 0
        for i in range(spec["repeats"]):
            path = tmp / f"store-{i}.duckdb"
            store = DuckStore(path)
            try:
                w0, c0 = time.perf_counter(), time.process_time()
                report = ingest_spool(store, spool)
                wall.append(time.perf_counter() - w0)
                cpu.append(time.process_time() - c0)
                stored = report.new
            finally:
                store.close()
            path.unlink(missing_ok=True)
            shutil.rmtree(tmp / "tmp", ignore_errors=True)
        return {
            **_rates(stored, wall, cpu),
            "emitted": emitted,
            "spool_mb": round(spool_bytes / 2**20, 1),
            "produce_us_per_record": round(produce_s / emitted * 1e6, 2),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class _TimedStore:
    """The collector's store, timing each batch it writes."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.batches: list[tuple[float, float, int]] = []
        self._sizes: dict[int, int] = {}  # id of a prepared batch -> its records

    def prepare(self, records: list[Any], lines: Any = ()) -> Any:
        from zoomtrace.wire.spool import count_lines

        batch = self.store.prepare(records, lines)
        self._sizes[id(batch)] = len(records) + sum(map(count_lines, lines))
        return batch

    def write(self, batch: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        report = self.store.write(batch, **kwargs)
        self.batches.append((t, time.perf_counter(), self._sizes.pop(id(batch))))
        return report

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def run_kafka(spec: dict[str, Any]) -> dict[str, Any]:
    import zoomtrace as zt
    from zoomtrace.collect.kafka_collector import run_collector
    from zoomtrace.store.duckdb import DuckStore

    bootstrap = spec["bootstrap"]
    tmp = Path(tempfile.mkdtemp(prefix="zt-bench-kafka-"))
    env = f"bench{os.getpid()}t{int(time.time())}"
    try:
        zt.init(
            "bench-kafka",
            env=env,
            group="bench",
            sink=f"kafka://{bootstrap}",
            home=tmp / "home",
            capture_logging=False,
            install_signal_handlers=False,
        )
        t = time.perf_counter()
        emitted = _emit(zt, spec["records"])
        produce_s = time.perf_counter() - t
        zt.shutdown(60)
        store = DuckStore(tmp / "store.duckdb")
        timed = _TimedStore(store)
        stop = threading.Event()
        w0, c0 = time.perf_counter(), time.process_time()
        try:
            stats = run_collector(
                bootstrap,
                tmp,
                group_id=f"zt-bench-{env}",
                topics_pattern=rf"^{env}\..*",
                stats_interval=0,
                idle_exit_s=spec.get("idle_exit_s", 5.0),
                stop=stop,
                store=timed,
            )
        finally:
            total_wall = time.perf_counter() - w0
            total_cpu = time.process_time() - c0
            store.close()
        batches = timed.batches
        stored = sum(b[2] for b in batches)
        out: dict[str, Any] = {
            "emitted": emitted,
            "stored": stored,
            "new": stats.new,
            "batches": len(batches),
            "produce_us_per_record": round(produce_s / emitted * 1e6, 2),
            "collector_total_s": round(total_wall, 2),
            "collector_cpu_s": round(total_cpu, 2),
        }
        if len(batches) >= 2:
            span_s = batches[-1][1] - batches[0][1]
            steady = stored - batches[0][2]
            out["records_per_s"] = round(steady / span_s) if span_s > 0 else None
        elif batches:
            out["records_per_s"] = round(batches[0][2] / (batches[0][1] - batches[0][0]))
            out["note"] = "one batch only: rate of the store write alone"
        store_s = sum(b[1] - b[0] for b in batches)
        out["store_share"] = round(store_s / (batches[-1][1] - batches[0][0]), 2) if batches else None
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
