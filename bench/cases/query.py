"""Case 7: ``story`` of a 1,000-record trace and the traces page, on a store of 1 M / 10 M records.

The store is synthesised directly in DuckDB SQL (``INSERT ... SELECT FROM range(N)``), in the
shape ingestion writes (``src/zoomtrace/store/schema.sql``): ``records`` in time order (one ingest
transaction for the background, a second one for the trace under study), then the ``traces`` and
``nodes`` summaries are derived by the store's own summary SQL (``DuckStore._summarise``), exactly as
ingestion derives them, so schema changes there are followed automatically.

Workload: N records spread over one hour (so density grows with N: 1 M -> ~280 records/s,
10 M -> ~2,800 records/s), in traces of 20 records (a root span, 4 child spans, 12 logs and 3
data events, over ~20 ms), from 10 nodes of 5 services (each service on a node at commit A and one at
commit B, for ``errors`` and ``changes``); 2 % of traces have an error. The trace
whose story is told has 1,000 records (50 spans, 800 logs, 150 events) over 1 s in the middle of
the hour, stored last (as if ingested late), interleaved in time with the others.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

HOUR_NS = 3600 * 10**9
T0 = 1_780_000_000 * 10**9  # a fixed epoch: runs are comparable
PER_TRACE = 20
TARGET = "f00dfeedf00dfeedf00dfeedf00dfeed"
SERVICES = ("gateway", "orders", "billing", "stock", "mail")
#: Each service runs on two nodes: one at commit A, one at commit B (``zoomtrace changes`` compares them).
COMMIT_A, COMMIT_B = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678", "b2c3d4e5f60718293a4b5c6d7e8f9012345678a1"


def _sql_background(n: int) -> str:
    traces = max(1, n // PER_TRACE)
    gap = HOUR_NS // traces
    # r: row, t: trace, j: position in the trace (0 root span, 1-4 child spans, then logs/events).
    return f"""
    INSERT INTO records BY NAME
    SELECT
        printf('%012x-7%03x-%016x', ts_ns // 1000000, r % 4096, r) AS id,
        CASE WHEN j < 5 THEN 'span' WHEN j % 5 = 0 THEN 'event' ELSE 'log' END AS kind,
        CASE WHEN j = 0 THEN 'GET /orders' WHEN j < 5 THEN 'step ' || j::VARCHAR
             WHEN j % 5 = 0 THEN 'OrderPlaced' ELSE 'app.' || svc END AS type,
        ts_ns,
        CASE WHEN j = 0 THEN ts_ns + 20000000 WHEN j < 5 THEN ts_ns + 3000000 END AS end_ns,
        md5('t' || t::VARCHAR) AS trace_id,
        substr(md5('s' || t::VARCHAR || '-' || (CASE WHEN j < 5 THEN j ELSE 1 + j % 4 END)::VARCHAR), 1, 16)
            AS span_id,
        CASE WHEN j BETWEEN 1 AND 4 THEN substr(md5('s' || t::VARCHAR || '-0'), 1, 16) END AS parent_span_id,
        printf('%012x-7000-8000-%012x', 1000 + (t % 10), t % 10) AS node_id,
        'src/shop/' || svc || '.py' AS code_file,
        (10 + j * 7)::INTEGER AS code_line,
        'handle_' || svc AS code_function,
        'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678' AS code_commit,
        false AS code_dirty,
        CASE WHEN j >= 5 AND j % 5 <> 0 THEN (CASE WHEN err AND j = 19 THEN 'ERROR' ELSE 'INFO' END) END AS level,
        CASE WHEN j >= 5 AND j % 5 <> 0 THEN 'charged ' || (t % 1000)::VARCHAR || '.50 for order ' || t::VARCHAR END
            AS message,
        CASE WHEN j >= 5 AND j % 5 <> 0 THEN 'charged {{amount}} for order {{order}}' END AS template,
        ('{{"order": ' || t::VARCHAR || ', "amount": 12.5, "user": "u' || (t % 5000)::VARCHAR || '"}}')::JSON AS attrs,
        CASE WHEN j >= 5 AND j % 5 = 0 THEN ('{{"order_id": ' || t::VARCHAR
            || ', "customer": "cus-' || (t % 5000)::VARCHAR || '", "total": 153.42, "lines": [1, 2, 3]}}')::JSON END
            AS payload,
        CASE WHEN j < 5 THEN (CASE WHEN err AND j = 0 THEN 'error' ELSE 'ok' END) END AS status,
        CASE WHEN j < 5 THEN 150000 END AS cpu_ns,
        CASE WHEN j < 5 THEN 'MainThread' END AS thread,
        1 AS schema_version,
        1 AS ingest_seq
    FROM (
        SELECT r, r // {PER_TRACE} AS t, r % {PER_TRACE} AS j,
               {T0} + (r // {PER_TRACE}) * {gap} + (r % {PER_TRACE}) * 1000000 AS ts_ns,
               list_extract({list(SERVICES)}, 1 + ((r // {PER_TRACE}) % 5)::INTEGER) AS svc,
               (r // {PER_TRACE}) % 50 = 7 AS err
        FROM range({traces * PER_TRACE}) AS g(r)
    )
    """


def _sql_traces(n: int) -> str:
    traces = max(1, n // PER_TRACE)
    gap = HOUR_NS // traces
    return f"""
    INSERT INTO traces BY NAME
    SELECT md5('t' || t::VARCHAR) AS trace_id, start_ns, start_ns + 20000000 AS end_ns, 20000000 AS duration_ns,
           'GET /orders' AS root_name, svc AS root_service,
           substr(md5('s' || t::VARCHAR || '-0'), 1, 16) AS root_span_id,
           printf('%012x-7000-8000-%012x', 1000 + (t % 10), t % 10) AS root_node_id, start_ns AS root_start_ns,
           true AS root_is_top, [svc] AS services, ['prod'] AS envs,
           [printf('%012x-7000-8000-%012x', 1000 + (t % 10), t % 10)] AS node_ids,
           5 AS span_count, 12 AS log_count, 3 AS event_count, t % 50 = 7 AS error, {PER_TRACE} AS record_count
    FROM (SELECT t, {T0} + t * {gap} AS start_ns, list_extract({list(SERVICES)}, 1 + (t % 5)::INTEGER) AS svc
          FROM range({traces}) AS g(t))
    """


def _sql_target(n: int) -> list[str]:
    mid = T0 + HOUR_NS // 2
    return [
        f"""
    INSERT INTO records BY NAME
    SELECT printf('%012x-7fff-%016x', ts_ns // 1000000, r) AS id,
           CASE WHEN r % 20 = 0 THEN 'span' WHEN r % 20 = 10 THEN 'event' ELSE 'log' END AS kind,
           CASE WHEN r = 0 THEN 'POST /checkout' WHEN r % 20 = 0 THEN 'step' WHEN r % 20 = 10 THEN 'OrderPlaced'
                ELSE 'app.orders' END AS type,
           ts_ns,
           CASE WHEN r = 0 THEN {mid} + 1000000000 WHEN r % 20 = 0 THEN ts_ns + 15000000 END AS end_ns,
           '{TARGET}' AS trace_id,
           substr(md5('target' || (r // 20)::VARCHAR), 1, 16) AS span_id,
           CASE WHEN r % 20 = 0 AND r > 0 THEN substr(md5('target0'), 1, 16) END AS parent_span_id,
           printf('%012x-7000-8000-%012x', 1000 + (r % 3), r % 3) AS node_id,
           'src/shop/orders.py' AS code_file, (20 + r % 40)::INTEGER AS code_line, 'checkout' AS code_function,
           'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678' AS code_commit, r % 100 = 3 AS code_dirty,
           CASE WHEN r % 20 NOT IN (0, 10) THEN 'INFO' END AS level,
           CASE WHEN r % 20 NOT IN (0, 10) THEN 'reserved item ' || r::VARCHAR END AS message,
           CASE WHEN r % 20 NOT IN (0, 10) THEN 'reserved item {{n}}' END AS template,
           ('{{"n": ' || r::VARCHAR || '}}')::JSON AS attrs,
           CASE WHEN r % 20 = 10 THEN ('{{"item": ' || r::VARCHAR || ', "qty": 2}}')::JSON END AS payload,
           CASE WHEN r % 20 = 0 THEN 'ok' END AS status,
           1 AS schema_version, 2 AS ingest_seq
    FROM (SELECT r, {mid} + r * 1000000 AS ts_ns FROM range(1000) AS g(r))
    """,
        f"""
    INSERT INTO traces BY NAME
    SELECT '{TARGET}' AS trace_id, {mid} AS start_ns, {mid} + 1000000000 AS end_ns, 1000000000 AS duration_ns,
           'POST /checkout' AS root_name, 'orders' AS root_service, substr(md5('target0'), 1, 16) AS root_span_id,
           printf('%012x-7000-8000-%012x', 1000, 0) AS root_node_id, {mid} AS root_start_ns, true AS root_is_top,
           ['orders'] AS services, ['prod'] AS envs, [printf('%012x-7000-8000-%012x', 1000, 0)] AS node_ids,
           50 AS span_count, 800 AS log_count, 150 AS event_count, false AS error, 1000 AS record_count
    """,
    ]


def _sql_nodes() -> str:
    return f"""
    INSERT INTO nodes BY NAME
    SELECT printf('%012x-7000-8000-%012x', 1000 + k, k) AS node_id,
           list_extract({list(SERVICES)}, 1 + (k % 5)::INTEGER) AS service, 'prod' AS env, 'shop' AS grp,
           '1.4.2' AS version, 'host-' || k::VARCHAR AS host, 4000 + k AS pid, '3.11.7' AS python,
           CASE WHEN k < 5 THEN '{COMMIT_A}' ELSE '{COMMIT_B}' END AS commit, 'main' AS branch,
           {T0} AS started_ns, {T0} AS first_seen_ns
    FROM range(10) AS g(k)
    """


def build_store(path: Path, n: int) -> dict[str, Any]:
    """A store of ``n`` + 1,000 synthesised records at ``path``; returns how long it took."""
    from zoomtrace.store.duckdb import DuckStore

    t0 = time.perf_counter()
    store = DuckStore(path)
    con = store._con
    con.execute("BEGIN TRANSACTION")
    con.execute(_sql_nodes())
    con.execute(_sql_background(n))
    target_records, target_trace = _sql_target(n)
    con.execute(target_records)
    summarise = getattr(store, "_summarise", None)
    if summarise is not None:  # the store's own derivation of traces and node counts
        summarise(1, [])
        summarise(2, [])
    else:
        con.execute(_sql_traces(n))
        con.execute(target_trace)
    con.execute("UPDATE meta SET value = '2' WHERE key = 'ingest_seq'")
    con.execute("COMMIT")
    con.execute("CHECKPOINT")
    count = con.execute("SELECT count(*) FROM records").fetchone()
    traces = con.execute("SELECT count(*) FROM traces").fetchone()
    store.close()
    return {
        "build_s": round(time.perf_counter() - t0, 2),
        "records": count[0] if count else 0,
        "traces": traces[0] if traces else 0,
        "file_mb": round(path.stat().st_size / 2**20, 1),
    }


def _timed(fn: Any, repeats: int) -> dict[str, Any]:
    first = time.perf_counter()
    fn()
    cold = (time.perf_counter() - first) * 1e3
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    return {
        "first_ms": round(cold, 2),
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[min(len(times) - 1, int(0.95 * len(times)))], 2),
        "min_ms": round(times[0], 2),
        "max_ms": round(times[-1], 2),
        "n": len(times),
    }


def run_query(spec: dict[str, Any]) -> dict[str, Any]:
    from zoomtrace.read import changes, query
    from zoomtrace.store.duckdb import DuckStore

    tmp = Path(tempfile.mkdtemp(prefix="zt-bench-query-"))
    out: dict[str, Any] = {"sizes": {}}
    try:
        for n in spec["sizes"]:
            path = tmp / f"store-{n}.duckdb"
            built = build_store(path, n)
            # A session as the CLI opens one: open, query, close; the file is warm in the page cache.
            store = DuckStore(path)
            try:
                got = sum(1 for _ in _walk(query.story(store, TARGET)))
                res = {
                    **built,
                    "story_records": got,
                    "story": _timed(lambda s=store: query.story(s, TARGET), spec["repeats"]),
                    "traces_page_service": _timed(
                        lambda s=store: query.traces(s, {"service": "billing"}, limit=50), spec["repeats"]
                    ),
                    "traces_page_errors": _timed(
                        lambda s=store: query.traces(s, {"errors_only": True}, limit=50), spec["repeats"]
                    ),
                    # What changed, by commit (docs/changes.md): all error groups; every service's two commits.
                    "errors": _timed(lambda s=store: changes.error_groups(s), spec["repeats"]),
                    "changes": _timed(lambda s=store: changes.changes(s), spec["repeats"]),
                }
            finally:
                store.close()
            # Cold session: the CLI's case, a new process opening the file for one story.
            t = time.perf_counter()
            store = DuckStore(path)
            query.story(store, TARGET)
            store.close()
            res["story_new_session_ms"] = round((time.perf_counter() - t) * 1e3, 2)
            out["sizes"][str(n)] = res
            path.unlink(missing_ok=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _walk(story: Any) -> Any:
    """Every span and record of a ``zoomtrace.read.model.Story``."""

    def spans(items: list[Any]) -> Any:
        for s in items:
            yield s
            yield from s.records
            yield from spans(s.children)

    yield from spans(story.spans)
    yield from story.records
