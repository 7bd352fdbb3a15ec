"""The traces page with a million stored traces (issue 4, scale): p50/p95 ms of one page of 50.

    .venv/bin/python bench/traces_page.py [N_TRACES]

The `traces` summary table is synthesised directly (what ingest maintains); the query is the
store's own `traces()` with the UI's filters, newest first, server-side paging.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from zoomtrace.store.duckdb import DuckStore

SYNTHESISE = """
INSERT INTO traces SELECT
  lpad(format('{:x}', i), 32, '0'), i, 1700000000000000000 + i * 1000000,
  1700000000000000000 + i * 1000000 + (i % 997) * 100000, (i % 997) * 100000,
  'checkout', ['gateway', 'orders', 'billing'][1 + i % 3], 'r', 'n', 0, true,
  [['gateway', 'orders', 'billing'][1 + i % 3], 'billing'], ['prod'], ['n'], 5, 10, 2, i % 50 = 0, 17
FROM range(?) t(i)
"""


def main(n: int = 1_000_000) -> None:
    store = DuckStore(Path(tempfile.mkdtemp(prefix="zoom-traces-")) / "store.duckdb")
    start = time.perf_counter()
    store._con.execute(SYNTHESISE, [n])
    print(f"{n:,} traces synthesised in {time.perf_counter() - start:.1f} s")
    cases: list[tuple[str, dict[str, Any] | None, int]] = [
        ("newest 50", None, 0),
        ("service = orders", {"service": "orders"}, 0),
        ("errors only", {"errors_only": True}, 0),
        ("min duration 50 ms", {"min_duration_ns": 50_000_000}, 0),
        ("page 1,001 (offset 50,000)", None, 50_000),
    ]
    for label, filt, offset in cases:
        times = []
        for _ in range(21):
            t = time.perf_counter()
            store.traces(filt, limit=50, offset=offset)  # type: ignore[arg-type]
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        print(f"{label:<28} p50 {statistics.median(times):6.1f} ms   p95 {times[19]:6.1f} ms")
    store.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
