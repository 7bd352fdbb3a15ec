"""The ClickHouse store on chDB: ingest per collector process, story and traces page at 10 M / 100 M records.

    .venv/bin/python bench/clickhouse.py                         # ingest 1 M, queries at 10 M records
    .venv/bin/python bench/clickhouse.py --sizes 10000000,100000000 --json out.json

- **ingest**: real records (a Zoom node records requests of a span, 4 logs and a data event into its
  spool, as bench/cases/ingest.py does), then ``zoomtrace ingest``'s path, ``ingest_spool``, into a
  fresh chDB store and, for comparison, a fresh DuckDB store, in this one process. A million records by
  default: a collector runs for long, and in a shorter ingest the first batch's read and the last one's
  write, which do not overlap, weigh more (300,000 records: ~1.8 s, of which ~0.3 s is that ramp).
- **query**: a store of N records synthesised in ClickHouse SQL into ``records_input``, the table
  ingestion inserts into, so the materialized views derive the trace and node summaries exactly as
  ingestion does; the workload is bench/cases/query.py's (traces of 20 records over one hour, 10
  nodes of 5 services, 2 % errors, and one 1,000-record trace stored last). Timed through
  ``zoomtrace.read.query`` as the CLI and the UI call it: the story of the 1,000-record trace, and the
  newest 50 traces unfiltered, by service and errors only; ``zoomtrace errors`` and ``changes`` (each service
  runs on a node at commit A and one at commit B).
- **bytes per record**: compressed bytes of the active parts of ``records`` ÷ rows.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from cases.ingest import _emit
from cases.query import COMMIT_A, COMMIT_B, HOUR_NS, PER_TRACE, SERVICES, T0, TARGET, _timed

#: Rows per INSERT ... SELECT when synthesising (bounds chDB's memory on 2 cores).
CHUNK = 10_000_000


def _node_id(k: str) -> str:
    return f"printf('%012x-7000-8000-%012x', 1000 + ({k}), {k})"


def _sql_nodes() -> str:
    services = "[" + ", ".join(f"'{s}'" for s in SERVICES) + "]"
    attrs = (
        'concat(\'{"service": "\', ' + services + '[1 + (k % 5)], \'", "env": "prod", "group": "shop", '
        '"version": "1.4.2", "host": "host-\', toString(k), \'", "pid": \', toString(4000 + k), '
        '\', "started_ns": ' + str(T0) + ', "commit": "\', if(k < 5, \'' + COMMIT_A + "', '" + COMMIT_B + "'), '\"}')"
    )
    return f"""
    INSERT INTO records_input (id, kind, type, ts_ns, node_id, v, attrs)
    SELECT printf('%012x-7000-8000-%012x', intDiv({T0}, 1000000), 900 + k), 'node', 'started', {T0},
           {_node_id("k")}, 1, {attrs}
    FROM (SELECT number AS k FROM numbers(10))
    """


def _sql_background(first: int, count: int, total: int) -> str:
    traces = max(1, total // PER_TRACE)
    gap = HOUR_NS // traces
    services = "[" + ", ".join(f"'{s}'" for s in SERVICES) + "]"
    return f"""
    INSERT INTO records_input
        (id, kind, type, ts_ns, node_id, v, end_ns, trace_id, span_id, parent_span_id, code, level, message,
         template, attrs, payload, status, cpu_ns, thread)
    SELECT
        printf('%012x-7%03x-%016x', intDiv(ts_ns, 1000000), r % 4096, r) AS id,
        multiIf(j < 5, 'span', j % 5 = 0, 'event', 'log') AS kind,
        multiIf(j = 0, 'GET /orders', j < 5, concat('step ', toString(j)), j % 5 = 0, 'OrderPlaced',
                concat('app.', svc)) AS type,
        ts_ns, {_node_id("t % 10")} AS node_id, 1 AS v,
        multiIf(j = 0, ts_ns + 20000000, j < 5, ts_ns + 3000000, NULL) AS end_ns,
        lower(hex(MD5(concat('t', toString(t))))) AS trace_id,
        substring(lower(hex(MD5(concat('s', toString(t), '-', toString(if(j < 5, j, 1 + j % 4)))))), 1, 16)
            AS span_id,
        if(j BETWEEN 1 AND 4, substring(lower(hex(MD5(concat('s', toString(t), '-0')))), 1, 16), NULL)
            AS parent_span_id,
        [concat('src/shop/', svc, '.py'), toString(10 + j * 7), concat('handle_', svc),
         'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678', 'false'] AS code,
        if(j >= 5 AND j % 5 != 0, if(err AND j = 19, 'ERROR', 'INFO'), NULL) AS level,
        if(j >= 5 AND j % 5 != 0, concat('charged ', toString(t % 1000), '.50 for order ', toString(t)), NULL)
            AS message,
        if(j >= 5 AND j % 5 != 0, 'charged {{amount}} for order {{order}}', NULL) AS template,
        concat('{{"order": ', toString(t), ', "amount": 12.5, "user": "u', toString(t % 5000), '"}}') AS attrs,
        if(j >= 5 AND j % 5 = 0, concat('{{"order_id": ', toString(t), ', "customer": "cus-', toString(t % 5000),
           '", "total": 153.42, "lines": [1, 2, 3]}}'), NULL) AS payload,
        if(j < 5, if(err AND j = 0, 'error', 'ok'), NULL) AS status,
        if(j < 5, 150000, NULL) AS cpu_ns,
        if(j < 5, 'MainThread', NULL) AS thread
    FROM (
        SELECT number AS r, intDiv(number, {PER_TRACE}) AS t, number % {PER_TRACE} AS j,
               {T0} + intDiv(number, {PER_TRACE}) * {gap} + (number % {PER_TRACE}) * 1000000 AS ts_ns,
               {services}[1 + (intDiv(number, {PER_TRACE}) % 5)] AS svc,
               intDiv(number, {PER_TRACE}) % 50 = 7 AS err
        FROM numbers({first}, {count})
    )
    """


def _sql_target() -> str:
    mid = T0 + HOUR_NS // 2
    return f"""
    INSERT INTO records_input
        (id, kind, type, ts_ns, node_id, v, end_ns, trace_id, span_id, parent_span_id, code, level, message,
         template, attrs, payload, status)
    SELECT printf('%012x-7fff-%016x', intDiv(ts_ns, 1000000), r) AS id,
           multiIf(r % 20 = 0, 'span', r % 20 = 10, 'event', 'log') AS kind,
           multiIf(r = 0, 'POST /checkout', r % 20 = 0, 'step', r % 20 = 10, 'OrderPlaced', 'app.orders') AS type,
           ts_ns, {_node_id("r % 3")} AS node_id, 1 AS v,
           multiIf(r = 0, {mid} + 1000000000, r % 20 = 0, ts_ns + 15000000, NULL) AS end_ns,
           '{TARGET}' AS trace_id,
           substring(lower(hex(MD5(concat('target', toString(intDiv(r, 20)))))), 1, 16) AS span_id,
           if(r % 20 = 0 AND r > 0, substring(lower(hex(MD5('target0'))), 1, 16), NULL) AS parent_span_id,
           ['src/shop/orders.py', toString(20 + r % 40), 'checkout', 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
            if(r % 100 = 3, 'true', 'false')] AS code,
           if(r % 20 NOT IN (0, 10), 'INFO', NULL) AS level,
           if(r % 20 NOT IN (0, 10), concat('reserved item ', toString(r)), NULL) AS message,
           if(r % 20 NOT IN (0, 10), 'reserved item {{n}}', NULL) AS template,
           concat('{{"n": ', toString(r), '}}') AS attrs,
           if(r % 20 = 10, concat('{{"item": ', toString(r), ', "qty": 2}}'), NULL) AS payload,
           if(r % 20 = 0, 'ok', NULL) AS status
    FROM (SELECT number AS r, {mid} + number * 1000000 AS ts_ns FROM numbers(1000))
    """


def build_store(directory: Path, n: int) -> tuple[Any, dict[str, Any]]:
    """A chDB store of ``n`` + 1,010 synthesised records in ``directory``, open; and how long it took."""
    from zoomtrace.store.clickhouse import ClickHouseStore

    t0 = time.perf_counter()
    store = ClickHouseStore.open(f"chdb://{directory}", create=True, retention_days=0)
    run = store._transport.query  # the store's own session, in its database (a benchmark may reach inside)
    run(_sql_nodes())
    total = max(PER_TRACE, n // PER_TRACE * PER_TRACE)
    for first in range(0, total, CHUNK):
        run(_sql_background(first, min(CHUNK, total - first), total))
    run(_sql_target())
    build_s = time.perf_counter() - t0
    return store, {"build_s": round(build_s, 1), "records": total + 1000 + 10}


def run_query(n: int, repeats: int) -> dict[str, Any]:
    from zoomtrace.read import changes, query

    tmp = Path(tempfile.mkdtemp(prefix="zt-bench-chdb-"))
    try:
        store, built = build_store(tmp / "chdb", n)
        try:
            story = _timed(lambda: query.story(store, TARGET), repeats)
            newest = _timed(lambda: query.traces(store, {}, limit=50), repeats)
            by_service = _timed(lambda: query.traces(store, {"service": "billing"}, limit=50), repeats)
            errors = _timed(lambda: query.traces(store, {"errors_only": True}, limit=50), repeats)
            error_groups = _timed(lambda: changes.error_groups(store), max(1, repeats // 4))
            compared = _timed(lambda: changes.changes(store), max(1, repeats // 4))
            size = json.loads(
                store._transport.query(
                    "SELECT sum(data_compressed_bytes) AS compressed, sum(rows) AS rows FROM system.parts "
                    "WHERE database = currentDatabase() AND table = 'records' AND active"
                )
            )
        finally:
            store.close()
        compressed, rows = size["compressed"], size["rows"]
        return {
            **built,
            "story": story,
            "traces_newest": newest,
            "traces_service": by_service,
            "traces_errors": errors,
            "errors": error_groups,
            "changes": compared,
            "bytes_per_record": round(int(compressed) / max(1, int(rows)), 1),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_ingest(n: int, repeats: int) -> dict[str, Any]:
    import zoomtrace as zt
    from zoomtrace.collect.spool_ingest import ingest_spool
    from zoomtrace.store.clickhouse import ClickHouseStore
    from zoomtrace.store.duckdb import DuckStore

    tmp = Path(tempfile.mkdtemp(prefix="zt-bench-chdb-ingest-"))
    try:
        home = tmp / "home"
        zt.init("bench-ingest", home=home, capture_logging=False, install_signal_handlers=False)
        records = _emit(zt, n)
        zt.shutdown()
        out: dict[str, Any] = {"records": records}
        for name, opener in (
            ("chdb", lambda i: ClickHouseStore.open(f"chdb://{tmp / f'chdb-{i}'}", create=True)),
            ("duckdb", lambda i: DuckStore(tmp / f"duck-{i}.duckdb")),
        ):
            walls, cpus = [], []
            for i in range(repeats):
                store = opener(i)
                try:
                    w, c = time.perf_counter(), time.process_time()
                    report = ingest_spool(store, home / "spool")
                    walls.append(time.perf_counter() - w)
                    cpus.append(time.process_time() - c)
                finally:
                    store.close()
                if report.new < records:
                    raise RuntimeError(f"{name}: ingested {report.new} of {records} records")
            out[name] = {
                "records_per_s": round(records / statistics.median(walls)),
                "records_per_cpu_s": round(records / statistics.median(cpus)),
                "wall_s": [round(w, 2) for w in walls],
            }
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ingest", type=int, default=1_000_000, help="records to ingest (0: skip)")
    p.add_argument("--sizes", default="10000000", help="stored records for the queries, comma-separated")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    result: dict[str, Any] = {}
    if args.ingest:
        result["ingest"] = run_ingest(args.ingest, 3)
        print(json.dumps({"ingest": result["ingest"]}), file=sys.stderr)
    result["query"] = {}
    for size in (int(s) for s in args.sizes.split(",") if s):
        result["query"][size] = run_query(size, args.repeats)
        print(json.dumps({size: result["query"][size]}), file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
