"""Several Kafka collectors in one consumer group, each writing batched inserts into ClickHouse (chDB).

    .venv/bin/python bench/collectors.py --start-kafka                    # 600 k records, 1 then 2 collectors
    .venv/bin/python bench/collectors.py --kafka 127.0.0.1:9092 --records 1200000 --collectors 1,2,4

A Zoom node records requests (a span, 4 logs and a data event each, as bench/cases/ingest.py does) into
Kafka topics created with ``--partitions`` partitions. Then, for each count K of ``--collectors``, K
processes run ``run_collector`` (what ``zoomtrace collect`` runs) in one new consumer group, each into
a chDB store of its own (chDB runs one directory per process; against a ClickHouse server they would
share one store). Every collector times its store writes; the group's rate is the records stored after
each collector's first batch over the time from the first batch's end to the last batch's end (steady
state: the group join and the idle wait at the end are not counted). Per collector: its own records over
its own span, and its CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from cases.common import add_broker_arguments, kafka_broker
from cases.ingest import _emit

REPO = Path(__file__).resolve().parents[1]

TOPIC_KINDS = ("log", "event", "raw", "span", "node")


def _collector(bootstrap: str, group: str, env: str, directory: str) -> None:
    """One collector process: consume the run's topics into ``chdb://directory``, then print its timings."""
    from zoomtrace.collect.kafka_collector import run_collector
    from zoomtrace.store.clickhouse import ClickHouseStore
    from zoomtrace.wire.spool import count_lines

    store = ClickHouseStore.open(f"chdb://{directory}/chdb", create=True, retention_days=0)
    batches: list[tuple[float, float, int]] = []
    sizes: dict[int, int] = {}

    class Timed:
        def prepare(self, records: list[Any], lines: Any = ()) -> Any:
            batch = store.prepare(records, lines)
            sizes[id(batch)] = len(records) + sum(map(count_lines, lines))
            return batch

        def write(self, batch: Any, **kwargs: Any) -> Any:
            t = time.time()
            report = store.write(batch, **kwargs)
            batches.append((t, time.time(), sizes.pop(id(batch))))
            return report

        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

    cpu = time.process_time()
    try:
        stats = run_collector(
            bootstrap,
            directory,
            group_id=group,
            topics_pattern=rf"^{env}\..*",
            stats_interval=0,
            idle_exit_s=8.0,
            store=Timed(),  # type: ignore[arg-type]
        )
    finally:
        store.close()
    print(json.dumps({"batches": batches, "new": stats.new, "cpu_s": time.process_time() - cpu}), flush=True)


def _produce(bootstrap: str, env: str, records: int, partitions: int, home: Path) -> int:
    from confluent_kafka.admin import AdminClient, NewTopic

    import zoomtrace as zt

    topics = [f"{env}.bench.{kind}" for kind in TOPIC_KINDS] + [f"{env}.zoom.node"]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(t, partitions, 1) for t in topics]).values():
        future.result(30)
    zt.init(
        "bench-collectors",
        env=env,
        group="bench",
        sink=f"kafka://{bootstrap}",
        home=home,
        capture_logging=False,
        install_signal_handlers=False,
    )
    emitted = _emit(zt, records)
    zt.shutdown(120)
    return emitted


def _run_group(bootstrap: str, env: str, count: int, tmp: Path) -> dict[str, Any]:
    group = f"bench-{env}-{count}"
    procs = []
    for i in range(count):
        directory = tmp / f"c{count}-{i}"
        directory.mkdir()
        code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import collectors; " + (
            f"collectors._collector({bootstrap!r}, {group!r}, {env!r}, {str(directory)!r})"
        )
        procs.append(subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True))
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"a collector failed with status {proc.returncode}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    ends = [b[1] for r in results for b in r["batches"]]
    firsts = [r["batches"][0][1] for r in results if r["batches"]]
    steady = sum(sum(b[2] for b in r["batches"][1:]) for r in results)
    per_collector = []
    for r in results:
        b = r["batches"]
        span = b[-1][1] - b[0][1] if len(b) > 1 else 0.0
        per_collector.append(
            {
                "new": r["new"],
                "batches": len(b),
                "records_per_s": round(sum(x[2] for x in b[1:]) / span) if span > 0 else None,
                "cpu_s": round(r["cpu_s"], 1),
            }
        )
    span = max(ends) - min(firsts)
    return {
        "collectors": count,
        "stored": sum(r["new"] for r in results),
        "group_records_per_s": round(steady / span) if span > 0 else None,
        "per_collector": per_collector,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_broker_arguments(p)
    p.add_argument("--records", type=int, default=600_000)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--collectors", default="1,2", help="collector counts to run, comma-separated")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="zt-bench-collectors-"))
    try:
        with kafka_broker(args.kafka, args.start_kafka, tmp / "broker") as bootstrap:
            assert bootstrap is not None  # one of the two is required
            return _run(args, bootstrap, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(args: argparse.Namespace, bootstrap: str, tmp: Path) -> int:
    env = f"bench{os.getpid()}"
    emitted = _produce(bootstrap, env, args.records, args.partitions, tmp / "producer")
    result: dict[str, Any] = {"records": emitted, "partitions": args.partitions, "runs": []}
    if args.start_kafka:  # the run's topics on the broker's disk: lz4 batches, one replica
        logs = [p for p in (tmp / "broker").rglob("*.log") if p.parent.name.startswith(env)]
        result["kafka_bytes_per_record"] = round(sum(p.stat().st_size for p in logs) / emitted, 1)
    for count in (int(c) for c in args.collectors.split(",")):
        run = _run_group(bootstrap, env, count, tmp)
        if run["stored"] < emitted:  # the node's own lifecycle records come on top
            raise RuntimeError(f"{count} collectors stored {run['stored']} of {emitted} records")
        result["runs"].append(run)
        print(json.dumps(run), file=sys.stderr, flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
