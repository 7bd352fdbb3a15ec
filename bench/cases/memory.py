"""Case 8: memory. RSS added by ``import zoomtrace`` and by ``zt.init()``; peak RSS while a burst drains.

The burst: ``records`` ``zt.log.info`` calls as fast as one thread can make them, with the default
queue bound (100,000) and policy (drop). The queue must hold its bound: peak RSS stays bounded,
every record is either written or counted as lost, and nothing grows without limit.
"""

from __future__ import annotations

import gc
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from cases.common import proc_status_kb, reset_peak_rss


def run_memory(spec: dict[str, Any]) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="zt-bench-memory-"))
    try:
        gc.collect()
        base = proc_status_kb("VmRSS")
        import zoomtrace as zt

        gc.collect()
        imported = proc_status_kb("VmRSS")
        node = zt.init("bench-memory", home=tmp, install_signal_handlers=False)
        zt.flush(30)
        time.sleep(0.2)  # the worker's first batch (node record with provenance) is done
        gc.collect()
        inited = proc_status_kb("VmRSS")

        n = spec["records"]
        reset_peak_rss()
        before = proc_status_kb("VmRSS")
        info = zt.log.info
        t = time.perf_counter()
        with zt.span("burst"):
            for i in range(n):
                info("charged {amount} for {order}", amount=12.5, order=i)
        caller_s = time.perf_counter() - t
        peak_queue = len(node.pipeline._queue) if hasattr(node.pipeline, "_queue") else None
        zt.flush(300)
        drain_s = time.perf_counter() - t
        peak = proc_status_kb("VmHWM")
        after = proc_status_kb("VmRSS")
        lost = dict(node.pipeline.lost)
        written = node.pipeline.written
        zt.shutdown()
        return {
            "python_baseline_mb": round(base / 1024, 1),
            "import_added_mb": round((imported - base) / 1024, 1),
            "init_added_mb": round((inited - imported) / 1024, 1),
            "import_and_init_added_mb": round((inited - base) / 1024, 1),
            "burst_records": n,
            "burst_caller_s": round(caller_s, 2),
            "burst_drain_s": round(drain_s, 2),
            "queue_bound": node.queue_size,
            "queue_len_after_burst": peak_queue,
            "burst_peak_added_mb": round((peak - before) / 1024, 1),
            "after_burst_added_mb": round((after - before) / 1024, 1),
            "written": written,
            "lost": lost,
            "accounted": written + sum(lost.values()) >= n,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
