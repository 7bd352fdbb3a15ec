"""The Kafka sink's cost on the application's background worker, per record, in a live process.

    .venv/bin/python bench/kafka_sink_worker.py --start-kafka              # data events, then logs
    .venv/bin/python bench/kafka_sink_worker.py --kafka 127.0.0.1:9092 --records 100000 --repeats 3

A Zoom node with the Kafka sink records ``--records`` data events (a ~1 KB payload, as case 3 of
``bench/run.py``) or log records, then flushes (every one acknowledged by the broker); measured are the
CPU time of the pipeline's worker thread (encoding, the producers' calls and delivery callbacks) and of
the whole process (librdkafka's threads too), per record. The spool sink's worker, for comparison, is
case 3 of ``bench/run.py`` less its caller part.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from cases.common import add_broker_arguments, kafka_broker, order_payload

PAYLOAD = order_payload()


def _measure(zt: Any, kind: str, n: int) -> dict[str, float]:
    worker = next(t for t in threading.enumerate() if t.name == "zoomtrace-pipeline")
    assert worker.ident is not None
    clock = time.pthread_getcpuclockid(worker.ident)
    record = (
        (lambda: zt.event(PAYLOAD, type="OrderPlaced")) if kind == "event" else (lambda: zt.log.info("step {n}", n=1))
    )
    w0, p0 = time.clock_gettime(clock), time.process_time()
    for _ in range(n):
        record()
    if not zt.flush(120):
        raise RuntimeError("the records were not all acknowledged within 120 s")
    w1, p1 = time.clock_gettime(clock), time.process_time()
    return {"worker_us": (w1 - w0) / n * 1e6, "process_us": (p1 - p0) / n * 1e6}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_broker_arguments(p)
    p.add_argument("--records", type=int, default=50_000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="zt-bench-kafka-sink-"))
    try:
        with kafka_broker(args.kafka, args.start_kafka, tmp / "broker") as bootstrap:
            assert bootstrap is not None  # one of the two is required
            print(json.dumps(_run(bootstrap, args.records, args.repeats, tmp / "home"), indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _run(bootstrap: str, records: int, repeats: int, home: Path) -> dict[str, Any]:
    import zoomtrace as zt

    zt.init(
        "bench-kafka-sink",
        env=f"bench{int(time.time() * 1000)}",
        sink=f"kafka://{bootstrap}",
        home=home,
        capture_logging=False,
        install_signal_handlers=False,
    )
    try:
        _measure(zt, "event", 5_000)  # topics created, connections made, caches warm
        result: dict[str, Any] = {"records": records}
        for kind in ("event", "log"):
            runs = [_measure(zt, kind, records) for _ in range(repeats)]
            result[kind] = {
                key: {
                    "median": round(statistics.median(r[key] for r in runs), 2),
                    "all": [round(r[key], 2) for r in runs],
                }
                for key in ("worker_us", "process_us")
            }
        return result
    finally:
        zt.shutdown()


if __name__ == "__main__":
    sys.exit(main())
