"""The ClickHouse store on chDB: its DDL, opening and migrating, idempotent writes, and every reader method
answering row for row as the DuckDB store does with the same records.

Every test uses real chDB in a temporary directory (chDB runs one directory per process at a time, so
a test closes a store before opening another) and, for the comparisons, a real DuckDB file. The
clickhouse:// transport (clickhouse-connect) is exercised through clickhouse-connect's in-process chDB
interface, since no current ClickHouse server is installable here.
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from support.records import MS, NODE_A, NODE_B, T0, rec, started
from zoomtrace.errors import ConfigError, NotFound, ReadOnlySQL, StoreError
from zoomtrace.read import query
from zoomtrace.store.clickhouse import (
    SCHEMA_VERSION,
    ClickHouseStore,
    Layout,
    parse_url,
    prepare,
    schema_ddl,
)
from zoomtrace.store.clickhouse._schema import retention_ddl
from zoomtrace.store.clickhouse._transport import ConnectTransport
from zoomtrace.store.duckdb import DuckStore
from zoomtrace.wire.record import SCHEMA_VERSION as RECORD_VERSION
from zoomtrace.wire.record import Code, Error, Frame, Link, Record, uuid7


def checkout_trace(tid: str = "a1" * 16, *, start: int = 0) -> list[Record]:
    """A trace across two services: gateway root -> orders child -> billing grandchild with an error."""
    root, child, grand = "11" * 8, "22" * 8, "33" * 8
    code = Code("shop/pay.py", 88, "charge", "deadbeef", True)
    return [
        rec("span", "POST /checkout", start, trace_id=tid, span_id=root, end_ns=T0 + (start + 100) * MS, code=code),
        rec(
            "span",
            "place order",
            start + 10,
            node=NODE_B,
            trace_id=tid,
            span_id=child,
            parent_span_id=root,
            end_ns=T0 + (start + 60) * MS,
            links=[Link("12" * 16, "34" * 8)],
            on_behalf_of="user-7",
            attrs={"amount": 12.5, "currency": "EUR", "nested": {"k": [1, 2]}, "big": 2**70},
            cpu_ns=1234,
            thread="worker-1",
        ),
        rec(
            "span",
            "charge",
            start + 20,
            node=NODE_B,
            trace_id=tid,
            span_id=grand,
            parent_span_id=child,
            end_ns=T0 + (start + 120) * MS,
            status="error",
            error=Error("CardDeclined", "insufficient funds", [Frame("shop/pay.py", 90, "charge")]),
        ),
        rec(
            "log",
            "app",
            start + 30,
            node=NODE_B,
            trace_id=tid,
            span_id=grand,
            level="ERROR",
            message="card declined for order 7",
            template="card declined for order {order}",
            attrs={"order": 7},
        ),
        rec("log", "app", start + 5, trace_id=tid, span_id=root, level="INFO", message="received checkout"),
        rec("event", "OrderPlaced", start + 15, node=NODE_B, trace_id=tid, span_id=child, payload={"order": 7}),
        rec("event", "Note", start + 16, node=NODE_B, trace_id=tid, span_id=child, payload="just text"),
        rec("log", "app", start + 40, trace_id=tid, span_id="77" * 8, message="under a span never recorded"),
    ]


def many_traces() -> list[Record]:
    """Five traces of two services for the filters (one span and one log each)."""

    def one(tid: str, start: int, node: str, *, dur: int, error: bool = False, text: str = "", **attrs: Any):
        span = rec(
            "span",
            f"op-{tid[:2]}",
            start,
            node=node,
            trace_id=tid,
            span_id=tid[:16],
            end_ns=T0 + (start + dur) * MS,
            status="error" if error else "ok",
        )
        log = rec(
            "log",
            "app",
            start + 1,
            node=node,
            trace_id=tid,
            span_id=tid[:16],
            level="INFO",
            message=text or "nothing special",
            attrs=attrs,
        )
        return [span, log]

    return [
        started(NODE_A, "gateway", env="prod"),
        started(NODE_B, "billing", env="staging"),
        *one("01" * 16, 0, NODE_A, dur=10),
        *one("02" * 16, 100, NODE_B, dur=500, error=True, text="Payment DECLINED 100%"),
        *one("03" * 16, 200, NODE_A, dur=50, customer="ACME_corp"),
        *one("04" * 16, 300, NODE_B, dur=5),
        *one("05" * 16, 300, NODE_A, dur=7),
    ]


def node_lifecycle() -> list[Record]:
    return [
        started(NODE_A, "orders", ts=-5000),
        rec(
            "node",
            "repo",
            -4000,
            attrs={"root": "/src/lib", "head": "beef", "branch": "dev", "dirty": ["x.py"], "problem": None},
        ),
        rec("node", "lost", -3500, attrs={"lost": {"queue_full": 2}, "total": 2}),
        rec("node", "lost", -3000, attrs={"lost": {"queue_full": 5, "too_big": 1}, "total": 6}),
        rec(
            "node",
            "stopped",
            -1000,
            attrs={"cause": "exception", "stopped_ns": T0 - 1000 * MS, "uptime_s": 4.0},
            error=Error("ValueError", "bad order", [Frame("orders/app.py", 12, "main")]),
        ),
    ]


@pytest.fixture
def chdb_dir(tmp_path: Path) -> Path:
    return tmp_path / "chdb"


@pytest.fixture
def ch(chdb_dir: Path) -> Iterator[ClickHouseStore]:
    store = ClickHouseStore.open(f"chdb://{chdb_dir}", create=True, retention_days=0)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[DuckStore]:
    store = DuckStore(tmp_path / "store.duckdb")
    try:
        yield store
    finally:
        store.close()


def both(duck: DuckStore, ch: ClickHouseStore, *batches: list[Record]) -> None:
    """Ingest the same batches, in the same order, into both stores (each reporting the same new count)."""
    for batch in batches:
        assert ch.ingest(batch) == duck.ingest(batch)


def by_id(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: r["id"])


def views_agree_with_the_reader(ch: ClickHouseStore) -> None:
    """The ``nodes`` and ``traces`` views (SQL users' folds) show what the reader's rows show."""
    columns, rows = ch.sql("SELECT * FROM nodes ORDER BY node_id")
    viewed = []
    for values in rows:
        node = dict(zip(columns, values, strict=True))
        node["group"] = node.pop("grp")
        for key in ("repos", "stop_error", "lost", "attrs"):
            node[key] = msgspec.json.decode(node[key]) if node[key] is not None else None
        viewed.append(node | {"repos": node["repos"] or []})
    assert viewed == sorted(ch.nodes(limit=1000), key=lambda n: n["node_id"])
    columns, rows = ch.sql("SELECT * FROM traces ORDER BY start_ns DESC, trace_id DESC")
    assert [dict(zip(columns, values, strict=True)) for values in rows] == ch.traces(limit=1000)


# -- DDL -----------------------------------------------------------------------------------------


def test_single_node_ddl() -> None:
    ddl = schema_ddl(Layout("zoomtrace"))
    text = "\n".join(ddl)
    assert ddl[0] == "CREATE DATABASE IF NOT EXISTS `zoomtrace`"
    assert "ON CLUSTER" not in text and "Replicated" not in text and "Distributed" not in text
    records = next(s for s in ddl if s.startswith("CREATE TABLE IF NOT EXISTS `zoomtrace`.`records` ("))
    assert "ENGINE = ReplacingMergeTree\n" in records
    assert "PARTITION BY toDate(fromUnixTimestamp64Nano(ts_ns, 'UTC'))" in records
    assert "ORDER BY (trace_id, ts_ns, id)" in records
    assert "TTL toDate(fromUnixTimestamp64Nano(ts_ns, 'UTC')) + INTERVAL 30 DAY" in records
    assert "ttl_only_drop_parts = 1" in records and "non_replicated_deduplication_window" in records
    for index in (
        "id_bloom id TYPE bloom_filter",
        "sources_bloom sources TYPE bloom_filter",
        "id_range id TYPE minmax",
    ):
        assert f"INDEX {index}" in records
    assert "kind LowCardinality(String)" in records and "attrs String CODEC(ZSTD(3))" in records
    parts = next(s for s in ddl if "`zoomtrace`.`trace_parts` (" in s)
    assert "ENGINE = AggregatingMergeTree" in parts and "ORDER BY trace_id" in parts
    assert "SimpleAggregateFunction(groupUniqArrayArray, Array(String))" in parts
    assert "PROJECTION by_start (SELECT * ORDER BY start_ns)" in parts  # the newest traces, read in order
    assert "deduplicate_merge_projection_mode = 'rebuild'" in parts
    views = {
        m.group(1)
        for s in ddl
        if (m := re.match(r"CREATE (?:MATERIALIZED )?VIEW IF NOT EXISTS `zoomtrace`\.`(\w+)`", s))
    }
    assert views == {
        "records_input_mv",
        "blobs_input_mv",
        "trace_parts_mv",
        "node_counts_mv",
        "node_records_mv",
        "nodes",
        "traces",
        "otel_traces",
        "otel_logs",
    }
    mv = next(s for s in ddl if "`trace_parts_mv`" in s)
    assert "TO `zoomtrace`.`trace_parts`" in mv and "FROM `zoomtrace`.`records` AS r" in mv
    # forever: no TTL at all
    assert "TTL" not in "\n".join(schema_ddl(Layout("zoomtrace", retention_days=0)))


def test_cluster_ddl() -> None:
    ddl = schema_ddl(Layout("shop", cluster="main"))
    assert all(" ON CLUSTER `main`" in s for s in ddl)
    records_local = next(s for s in ddl if s.startswith("CREATE TABLE IF NOT EXISTS `shop`.`records_local`"))
    assert (
        "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/shop/records_local', '{replica}')"
        in records_local
    )
    assert "non_replicated_deduplication_window" not in records_local  # replicated tables deduplicate anyway
    front = next(s for s in ddl if s.startswith("CREATE TABLE IF NOT EXISTS `shop`.`records` ON CLUSTER"))
    assert "AS `shop`.`records_local`" in front
    assert "ENGINE = Distributed(`main`, `shop`, `records_local`, cityHash64(ifNull(trace_id, id)))" in front
    parts = next(s for s in ddl if "`shop`.`trace_parts_local`" in s and s.startswith("CREATE TABLE"))
    assert "ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/shop/trace_parts_local', '{replica}')" in parts
    offsets = next(s for s in ddl if "`shop`.`ingest_offsets_local`" in s)
    assert (
        "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/shop/ingest_offsets_local', '{replica}', updated_ns)"
        in offsets
    )
    # each shard summarises the rows it stores; inserts go through the Distributed table
    mv = next(s for s in ddl if "`trace_parts_mv`" in s)
    assert "TO `shop`.`trace_parts_local`" in mv and "FROM `shop`.`records_local` AS r" in mv
    entry = next(s for s in ddl if "`records_input_mv`" in s)
    assert "TO `shop`.`records`\n" in entry
    # readers use the Distributed names
    assert "FROM `shop`.`trace_parts`" in next(s for s in ddl if "VIEW IF NOT EXISTS `shop`.`traces`" in s)
    local = [m.group(1) for s in ddl if (m := re.match(r"CREATE TABLE IF NOT EXISTS `shop`\.`(\w+)_local`", s))]
    fronts = [m.group(1) for s in ddl if (m := re.search(r"Distributed\(`main`, `shop`, `(\w+)_local`", s))]
    assert local == fronts and len(local) == 8


def test_retention_and_migration_statements() -> None:
    changed = retention_ddl(Layout("z", cluster="c", retention_days=7))
    assert (
        "ALTER TABLE `z`.`records_local` ON CLUSTER `c` "
        "MODIFY TTL toDate(fromUnixTimestamp64Nano(ts_ns, 'UTC')) + INTERVAL 7 DAY" in changed
    )
    assert all("REMOVE TTL" in s for s in retention_ddl(Layout("z", retention_days=0)))
    # a store at the current version needs nothing but its database; a version 2 adds its own steps
    assert schema_ddl(Layout("z"), from_version=SCHEMA_VERSION) == ["CREATE DATABASE IF NOT EXISTS `z`"]


# -- opening -------------------------------------------------------------------------------------


def test_open_create_reopen_and_versions(chdb_dir: Path) -> None:
    url = f"chdb://{chdb_dir}"
    with pytest.raises(StoreError, match="no zoomtrace store"):
        ClickHouseStore.open(url)
    assert not chdb_dir.exists()
    store = ClickHouseStore.open(url, create=True)
    try:
        assert store.retention_days == 30  # the documented default
        tables = {r[0] for r in store.sql("SHOW TABLES")[1]}
        assert {"records", "trace_parts", "node_counts", "node_records", "blobs", "meta", "otel_traces"} <= tables
        assert store.ingest([rec("log", "app", 1, message="kept")]) == 1
    finally:
        store.close()
    store = ClickHouseStore.open(url, retention_days=7)  # an existing store opens without create
    try:
        assert [r["message"] for r in store.tail()] == ["kept"]
        assert "toIntervalDay(7)" in store.sql("SHOW CREATE TABLE records")[1][0][0]
        store._transport.insert(  # a newer zoomtrace migrated it
            "meta", b'{"key":"schema_version","value":"99","updated_ns":%d}\n' % time.time_ns(), settings={}
        )
    finally:
        store.close()
    with pytest.raises(StoreError, match=rf"schema version 99, this zoomtrace knows {SCHEMA_VERSION}: upgrade"):
        ClickHouseStore.open(url)


def test_a_version_1_store_is_migrated(chdb_dir: Path, duck: DuckStore) -> None:
    """Version 2 changes how inserts are written, not what is stored: a store created at version 1 (with
    records in it) opens migrated, and its summaries fold the rows written by both versions as before."""
    from zoomtrace.store.clickhouse._migrate import _write_meta
    from zoomtrace.store.clickhouse._transport import ChdbTransport

    layout = Layout("zoomtrace", retention_days=0)
    transport = ChdbTransport(str(chdb_dir), layout.database)
    for statement in schema_ddl(layout, to_version=1):
        transport.query(statement)
    _write_meta(transport, layout, {"retention_days": "0", "schema_version": "1"})
    transport.use(layout.database)
    nodes_and_traces, checkout = many_traces(), checkout_trace()
    old = ClickHouseStore(transport, layout, "version 1")
    try:
        assert "minIf" not in old.sql("SHOW CREATE TABLE trace_parts_mv")[1][0][0]
        both(duck, old, [*nodes_and_traces[2:], *checkout[1:]])  # the nodes' starts and the checkout's root later
    finally:
        old.close()
    store = ClickHouseStore.open(f"chdb://{chdb_dir}")
    try:
        assert store.sql("SELECT value FROM meta FINAL WHERE key = 'schema_version'")[1] == [(str(SCHEMA_VERSION),)]
        assert "min_bytes_for_wide_part = 134217728" in store.sql("SHOW CREATE TABLE records")[1][0][0]
        assert "minIf" in store.sql("SHOW CREATE TABLE trace_parts_mv")[1][0][0]
        both(duck, store, [*nodes_and_traces[:2], checkout[0]])
        assert store.traces(limit=100) == duck.traces(limit=100)
        assert store.nodes(limit=100) == duck.nodes(limit=100)
    finally:
        store.close()


def test_retention_drops_old_days(chdb_dir: Path) -> None:
    store = ClickHouseStore.open(f"chdb://{chdb_dir}", create=True, retention_days=30)
    try:
        now = time.time_ns()
        fresh = Record(id=uuid7(now), kind="log", type="app", ts_ns=now, node_id=NODE_A, message="fresh")
        store.ingest([rec("log", "app", 1, message="2027"), fresh])
        ancient = Record(id=uuid7(10**18), kind="log", type="app", ts_ns=10**18, node_id=NODE_A, message="2001")
        store.ingest([ancient])
        store.sql("SELECT 1")  # the engine is up
        store._transport.query("OPTIMIZE TABLE records FINAL")
        assert sorted(r["message"] for r in store.tail()) == ["2027", "fresh"]
    finally:
        store.close()


def test_records_beyond_the_retention_are_reported_and_summaries_count_only_those_kept(chdb_dir: Path) -> None:
    store = ClickHouseStore.open(f"chdb://{chdb_dir}", create=True, retention_days=30)
    try:
        today = datetime.datetime.now(datetime.UTC).date()

        def span(days_ago: int, trace: str, span_id: str) -> Record:
            day = today - datetime.timedelta(days=days_ago)
            ts = int(datetime.datetime(day.year, day.month, day.day, 12, tzinfo=datetime.UTC).timestamp()) * 10**9
            return Record(
                id=uuid7(ts), kind="span", type=f"{days_ago} days ago", ts_ns=ts, end_ns=ts + MS, node_id=NODE_A,
                trace_id=trace, span_id=span_id,
            )  # fmt: skip

        # A day is kept while it is among the last 30 (UTC): 29 days ago is kept, 30 days ago is not.
        expired, kept = span(30, "b1" * 16, "11" * 8), span(29, "b1" * 16, "22" * 8)
        report = store.write(prepare([expired, kept]))
        assert report.new == 1
        assert [line.split(" skipped: ")[1] for line in report.skipped] == [
            "it is older than the store's retention of 30 days"
        ]
        assert expired.id in report.skipped[0]
        assert store.sql("SELECT id FROM records")[1] == [(kept.id,)]
        (summary,) = store.traces(limit=10)  # the trace is listed, summarised from the record kept
        assert (summary["trace_id"], summary["span_count"], summary["start_ns"]) == ("b1" * 16, 1, kept.ts_ns)
        assert "older than the store's retention" in store.problems()[0]["problem"]
    finally:
        store.close()


def test_an_omitted_schema_version_is_stored_as_the_record_schema_version(ch: ClickHouseStore, duck: DuckStore) -> None:
    records = [rec("log", "app", 1, message="current"), rec("log", "app", 2, message="future", v=2)]
    assert "v" not in msgspec.json.decode(msgspec.json.encode(records[0]))  # omitted on the wire
    both(duck, ch, records)
    for store in (ch, duck):
        assert {r["message"]: r["v"] for r in store.tail()} == {"current": RECORD_VERSION, "future": 2}


# -- writing ---------------------------------------------------------------------------------------


def test_the_same_batch_twice_counts_once_everywhere(ch: ClickHouseStore) -> None:
    records = [started(NODE_A, "gateway"), started(NODE_B, "billing"), *checkout_trace()]
    batch = prepare(records + records[:3])  # repeats within a batch: the first copy counts
    assert ch.write(batch).new == len(records)
    assert ch.write(batch).new == 0
    assert ch.ingest(records[2:5]) == 0
    (trace,) = ch.traces()
    assert trace["record_count"] == len(records) - 2
    assert sum(n["record_count"] for n in ch.nodes()) == len(records)
    assert len(ch.tail(limit=1000)) == len(records)
    assert len(ch.trace_rows("a1" * 16).records) == len(records) - 2
    assert ch.sql("SELECT count() FROM records")[1] == [(len(records),)]


def test_a_racing_duplicate_is_shown_once_and_merged_away(ch: ClickHouseStore) -> None:
    records = checkout_trace()
    ch.ingest(records)
    # Another writer stored the same records at the same moment (its check ran before this insert).
    ch._transport.insert(
        "records_input",
        prepare(records).data,
        settings={
            "input_format_json_read_objects_as_strings": 1,
            "input_format_json_read_numbers_as_strings": 1,
            "input_format_json_read_bools_as_strings": 1,
        },
    )
    assert ch.sql("SELECT count() FROM records")[1] == [(2 * len(records),)]
    assert len(ch.trace_rows("a1" * 16).records) == len(records)
    assert len(ch.tail(limit=100)) == len(records)
    assert len(ch.tail(limit=100, last=True)) == len(records)
    assert len(ch.records([r.id for r in records])) == len(records)
    assert len(ch.search("card declined")) == 1
    ch._transport.query("OPTIMIZE TABLE records FINAL")
    assert ch.sql("SELECT count() FROM records")[1] == [(len(records),)]


def test_an_insert_retried_with_its_token_is_dropped_summaries_included(ch: ClickHouseStore) -> None:
    batch = prepare(checkout_trace())
    settings: dict[str, int | str] = {
        "input_format_json_read_objects_as_strings": 1,
        "input_format_json_read_numbers_as_strings": 1,
        "input_format_json_read_bools_as_strings": 1,
        "deduplicate_blocks_in_dependent_materialized_views": 1,
        "insert_deduplication_token": "same-insert",
    }
    for _ in range(2):  # the client did not hear the answer and sent the insert again
        ch._transport.insert("records_input", batch.data, settings=settings)
    assert ch.sql("SELECT count() FROM records")[1] == [(len(batch.ids),)]
    assert ch.traces()[0]["record_count"] == len(batch.ids)


def test_offsets_problems_and_skipped_records(ch: ClickHouseStore, duck: DuckStore) -> None:
    ok = rec("log", "app", 1, message="fine")
    huge = rec("span", "busy", 2, cpu_ns=2**63)  # one more than Int64 holds
    old_version = rec("log", "app", 3, message="v", v=2**31)
    for store in (duck, ch):
        report = store.write(
            store.prepare([ok, huge, old_version]), offsets={"a.zspool": 10}, problems=[("a.zspool", "torn frame")]
        )
        assert report.new == 1 and len(report.skipped) == 2
        assert huge.id in report.skipped[0] and "cpu_ns" in report.skipped[0]
        assert "schema version" in report.skipped[1]
    assert ch.write(ch.prepare([]), offsets={"a.zspool": 20, "b.zspool": 5}).new == 0
    assert ch.offsets() == {"a.zspool": 20, "b.zspool": 5}
    assert [p | {"ts_ns": 0} for p in ch.problems()] == [p | {"ts_ns": 0} for p in duck.problems()]
    with pytest.raises(NotFound):
        ch.record(huge.id)


def test_payloads_and_blobs(ch: ClickHouseStore, duck: DuckStore) -> None:
    data = b"\x00\x01binary\xff" * 3
    digest = hashlib.sha256(data).hexdigest()
    source = b"print('dirty')\n"
    values: list[Any] = [{"order": 7, "items": [{"sku": "A", "qty": 2}]}, [1, "two", None], "just text", 42, 1.5, True]
    records = [
        rec("raw", "Blob", 1, attrs={"raw.format": "bin", "raw.size": len(data), "raw.sha256": digest}, payload=data),
        rec("raw", "Bare", 2, payload=b"no attrs"),
        rec(
            "node",
            "snapshot",
            3,
            attrs={"file": "app.py", "repo": "/src", "sha256": hashlib.sha256(source).hexdigest()},
            payload=source,
        ),
        *(rec("event", "E", 10 + i, payload=v) for i, v in enumerate(values)),
        rec("event", "Big", 20, payload={"big": 2**70, "unicode": "café ☕", "quote": 'he said "hi"\n', "tab": "a\tb"}),
    ]
    both(duck, ch, records)
    assert by_id(ch.records([r.id for r in records])) == by_id(duck.records([r.id for r in records]))
    for digest_ in (digest, hashlib.sha256(b"no attrs").hexdigest(), hashlib.sha256(source).hexdigest(), "0" * 64):
        assert ch.blob(digest_) == duck.blob(digest_)
    assert ch.snapshots(NODE_A) == duck.snapshots(NODE_A)
    both(duck, ch, [rec("raw", "Blob", 30, payload=data)])  # the same content again is one blob
    assert ch.sql("SELECT count() FROM blobs FINAL")[1] == [(3,)]


# -- reading, row for row as DuckDB --------------------------------------------------------------


def test_rows_carry_exactly_the_read_model_fields(ch: ClickHouseStore, duck: DuckStore) -> None:
    records = [started(NODE_A, "gateway"), *checkout_trace()]
    both(duck, ch, records)
    assert ch.record(records[1].id) == duck.record(records[1].id)
    assert ch.tail() == duck.tail()
    assert ch.nodes() == duck.nodes()
    assert ch.node(NODE_A) == duck.node(NODE_A)
    assert ch.traces() == duck.traces()
    got, want = ch.trace_rows("a1" * 16), duck.trace_rows("a1" * 16)
    assert got.trace_id == want.trace_id
    assert by_id(got.records) == by_id(want.records)
    assert sorted(got.nodes, key=lambda n: n["node_id"]) == sorted(want.nodes, key=lambda n: n["node_id"])


def test_story_json_is_identical_on_both_stores(ch: ClickHouseStore, duck: DuckStore) -> None:
    both(duck, ch, [started(NODE_A, "gateway"), started(NODE_B, "billing", env="staging")], checkout_trace())
    for trace_id in ("a1" * 16, "a1a1a1a1"):
        assert msgspec.json.encode(query.story(ch, trace_id)) == msgspec.json.encode(query.story(duck, trace_id))
    for record in checkout_trace()[:1]:
        pass
    some = duck.trace_rows("a1" * 16).records[0]["id"]
    assert msgspec.json.encode(query.lineage(ch, some)) == msgspec.json.encode(query.lineage(duck, some))


def test_traces_filters_order_and_paging(ch: ClickHouseStore, duck: DuckStore) -> None:
    both(duck, ch, many_traces(), checkout_trace(start=400))
    filters: list[dict[str, Any]] = [
        {},
        {"service": "billing"},
        {"env": "prod"},
        {"errors_only": True},
        {"min_duration_ns": 10 * MS},
        {"max_duration_ns": 10 * MS},
        {"min_duration_ns": 8 * MS, "max_duration_ns": 60 * MS},
        {"since_ns": T0 + 100 * MS, "until_ns": T0 + 200 * MS},
        {"since_ns": T0 + 250 * MS},
        {"text": "declined 100%"},
        {"text": "100_"},
        {"text": "acme_CORP"},
        {"text": "op-04"},
        {"service": "billing", "errors_only": True},
        {"service": "nobody"},
    ]
    for filt in filters:
        assert ch.traces(filt) == duck.traces(filt), filt  # type: ignore[arg-type]
    for limit, offset in ((2, 0), (2, 2), (2, 4), (0, 0), (10, 100)):
        assert ch.traces(limit=limit, offset=offset) == duck.traces(limit=limit, offset=offset)
    views_agree_with_the_reader(ch)


def test_trace_pages_grow_their_window(ch: ClickHouseStore, duck: DuckStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page is looked for among the newest partial rows, then more of them; a trace whose records straddle
    a window's start (written by two inserts) is placed by its first record."""
    from zoomtrace.store.clickhouse import _traces

    monkeypatch.setattr(_traces, "_FIRST_WINDOW", 1)  # a window of one partial row per trace wanted at first
    monkeypatch.setattr(_traces, "_ROWS_PER_TRACE", 1)
    minute = 60_000

    def span(tid: str, at: int, **fields: Any) -> Record:
        return rec("span", f"op-{tid[:2]}", at, trace_id=tid, span_id=tid[:16], end_ns=T0 + (at + 5) * MS, **fields)

    ages = {"10": 0, "11": -10 * minute, "12": -90 * minute, "13": -3 * 24 * 60 * minute, "14": -60 * 24 * 60 * minute}
    old_half = span("15" * 16, -120 * minute)
    new_half = rec("log", "app", -5 * minute, trace_id="15" * 16, span_id="15" * 8, level="ERROR", message="late")
    both(duck, ch, [started(NODE_A, "gateway"), *(span(k * 16, at) for k, at in ages.items()), old_half], [new_half])
    for limit, offset in ((1, 0), (2, 0), (2, 1), (3, 0), (2, 3), (10, 0), (2, 5)):
        assert ch.traces(limit=limit, offset=offset) == duck.traces(limit=limit, offset=offset), (limit, offset)
    for filt in ({"errors_only": True}, {"min_duration_ns": 10 * MS}, {"service": "gateway"}, {"text": "late"}):
        assert ch.traces(filt, limit=2) == duck.traces(filt, limit=2), filt  # type: ignore[arg-type]
    assert [t["trace_id"][:2] for t in ch.traces(limit=3)] == ["10", "11", "12"]


def test_summaries_are_the_same_whatever_the_order_of_arrival(ch: ClickHouseStore, duck: DuckStore) -> None:
    records = [started(NODE_A, "gateway"), started(NODE_B, "billing"), *checkout_trace()]
    # the root span after its descendants, the node identities after the spans they describe
    pieces = [
        [records[3], records[4]],
        [records[6], records[7]],
        [records[1]],
        [records[5], records[2]],
        [records[0]],
        records[8:],
    ]
    both(duck, ch, *pieces)
    assert ch.traces() == duck.traces()
    assert ch.traces()[0]["root_service"] == "gateway"
    assert ch.nodes() == duck.nodes()
    views_agree_with_the_reader(ch)


def test_a_node_start_arriving_late_reaches_its_traces(ch: ClickHouseStore, duck: DuckStore) -> None:
    both(duck, ch, checkout_trace())
    assert ch.traces({"service": "billing"}) == duck.traces({"service": "billing"}) == []
    both(duck, ch, [started(NODE_B, "billing")])
    assert ch.traces() == duck.traces()
    both(duck, ch, [started(NODE_A, "gateway")])
    assert ch.traces({"service": "gateway"}) == duck.traces({"service": "gateway"})
    assert ch.traces()[0]["root_service"] == "gateway"


def test_remote_parent_roots(ch: ClickHouseStore, duck: DuckStore) -> None:
    tid, other = "b2" * 16, "c3" * 16
    both(
        duck,
        ch,
        [
            started(NODE_B, "billing"),
            rec(
                "span",
                "handle",
                10,
                node=NODE_B,
                trace_id=tid,
                span_id="22" * 8,
                parent_span_id="99" * 8,
                end_ns=T0 + 20 * MS,
            ),
        ],
    )
    assert ch.traces() == duck.traces()
    both(
        duck,
        ch,
        [started(NODE_A, "gateway"), rec("span", "request", 15, trace_id=tid, span_id="11" * 8, end_ns=T0 + 30 * MS)],
        [
            rec(
                "span",
                "skewed",
                500,
                node=NODE_B,
                trace_id=other,
                span_id="44" * 8,
                parent_span_id="98" * 8,
                end_ns=T0 + 501 * MS,
            ),
            rec("span", "entry", 510, trace_id=other, span_id="55" * 8, end_ns=T0 + 520 * MS),
            rec("span", "inner", 505, trace_id=other, span_id="66" * 8, parent_span_id="55" * 8, end_ns=T0 + 506 * MS),
        ],
    )
    assert ch.traces() == duck.traces()
    assert [t["root_name"] for t in ch.traces()] == ["entry", "request"]
    views_agree_with_the_reader(ch)


@pytest.mark.parametrize("order", list(itertools.permutations(range(5)))[::17])
def test_nodes_whatever_the_order_of_arrival(tmp_path: Path, order: tuple[int, ...]) -> None:
    records = node_lifecycle()
    duck = DuckStore(tmp_path / "store.duckdb")
    ch = ClickHouseStore.open(f"chdb://{tmp_path / 'chdb'}", create=True)
    try:
        both(duck, ch, *([records[i]] for i in order))
        assert ch.nodes() == duck.nodes()
        views_agree_with_the_reader(ch)
        (node,) = ch.nodes()
        assert (node["service"], node["stop_cause"], node["lost"]) == (
            "orders",
            "exception",
            {"queue_full": 5, "too_big": 1},
        )
        assert sorted(r["root"] for r in node["repos"]) == ["/src/app", "/src/lib"]
    finally:
        ch.close()
        duck.close()


def test_nodes_paging_and_lookups(ch: ClickHouseStore, duck: DuckStore) -> None:
    both(duck, ch, [started(NODE_A, "old", ts=-9000), started(NODE_B, "new", ts=-1000), *checkout_trace()])
    node_c = uuid7(T0)
    both(duck, ch, [rec("log", "app", 50, node=node_c, message="known by its records only")])
    assert ch.nodes() == duck.nodes()
    assert ch.nodes(limit=1, offset=1) == duck.nodes(limit=1, offset=1)
    assert ch.node(NODE_B) == duck.node(NODE_B)
    assert ch.node(node_c) == duck.node(node_c)
    for store in (ch, duck):
        with pytest.raises(NotFound, match="zoomtrace nodes"):
            store.node("no-such-node")


def test_trace_lookups_and_not_found(ch: ClickHouseStore, duck: DuckStore) -> None:
    both(duck, ch, checkout_trace("a1" * 16), checkout_trace("a2" * 16, start=1000))
    assert ch.trace_rows("A1A1A1A1").trace_id == "a1" * 16  # a unique prefix, any case
    messages = []
    for store in (ch, duck):
        for missing in ("a1", "ffffffff", "a1a", "f" * 32):  # too short, unknown, too short, unknown
            with pytest.raises(NotFound) as info:
                store.trace_rows(missing)
            messages.append(str(info.value))
        with pytest.raises(NotFound) as info:
            store.record("nope")
        messages.append(str(info.value))
        with pytest.raises(NotFound) as info:
            store.tail(after_id="nope")
        messages.append(str(info.value))
    half = len(messages) // 2
    assert messages[:half] == messages[half:]


def test_records_lineage_search_and_tail(ch: ClickHouseStore, duck: DuckStore) -> None:
    a = rec("event", "A", 1)
    b = rec("event", "B", 2, sources=[a.id])
    c = rec("event", "C", 3, sources=[b.id])
    d = rec("event", "D", 4, sources=[c.id, a.id])
    first = [a, b, c, d, rec("log", "app", 5, message="Order 7 shipped"), rec("log", "app", 6, message="50% off")]
    late = [rec("log", "app", 0, message="late"), rec("log", "app", 7, message="x", attrs={"note": "ORDER 7 refunded"})]
    both(duck, ch, first, late)
    # an id made long before its record's time (not how Zoom makes them) is still found
    odd = Record(id=uuid7(T0), kind="log", type="app", ts_ns=10**18, node_id=NODE_A, message="odd")
    both(duck, ch, [odd])
    assert ch.record(odd.id) == duck.record(odd.id)
    ids = [r.id for r in first + late + [odd]]
    assert ch.records(ids) == duck.records(ids)
    assert ch.records([]) == duck.records([]) == []
    many = ids + [uuid7(T0 + i) for i in range(1500)]  # a long list is asked differently (not a literal)
    assert ch.records(many) == duck.records(many)
    assert ch.derived_from([a.id]) == duck.derived_from([a.id])
    assert ch.derived_from([a.id, b.id]) == duck.derived_from([a.id, b.id])
    for text in ("order 7", "0%", "0_ off", "nothing like it"):
        assert ch.search(text) == duck.search(text), text
    assert ch.search("order 7", limit=1) == duck.search("order 7", limit=1)
    assert ch.tail() == duck.tail()
    assert ch.tail(limit=3, last=True) == duck.tail(limit=3, last=True)
    for after in (first[0].id, first[-1].id, late[-1].id):
        assert ch.tail(after_id=after) == duck.tail(after_id=after)
    for record_id in (a.id, d.id):
        assert msgspec.json.encode(query.lineage(ch, record_id)) == msgspec.json.encode(query.lineage(duck, record_id))


def test_search_looks_at_recent_records_first(ch: ClickHouseStore, duck: DuckStore) -> None:
    now = time.time_ns()
    day = 86_400 * 10**9
    records = [
        Record(id=uuid7(now), kind="log", type="app", ts_ns=now, node_id=NODE_A, message="needle now"),
        Record(
            id=uuid7(now - 2 * day), kind="log", type="app", ts_ns=now - 2 * day, node_id=NODE_A, message="needle then"
        ),
        Record(id=uuid7(10**18), kind="log", type="app", ts_ns=10**18, node_id=NODE_A, message="needle long ago"),
    ]
    both(duck, ch, records)
    assert ch.search("NEEDLE") == duck.search("NEEDLE")
    assert [r["message"] for r in ch.search("needle", limit=2)] == ["needle now", "needle then"]


# -- interop views ---------------------------------------------------------------------------------


def test_otel_views_show_spans_and_logs_with_the_exporter_types(ch: ClickHouseStore) -> None:
    ch.ingest([started(NODE_A, "gateway"), started(NODE_B, "billing"), *checkout_trace()])
    columns, rows = ch.sql(
        "SELECT TraceId, SpanName, ServiceName, Duration, StatusCode FROM otel_traces ORDER BY Timestamp"
    )
    assert list(columns) == ["TraceId", "SpanName", "ServiceName", "Duration", "StatusCode"]
    assert rows == [
        ("a1" * 16, "POST /checkout", "gateway", 100 * MS, "STATUS_CODE_UNSET"),
        ("a1" * 16, "place order", "billing", 50 * MS, "STATUS_CODE_UNSET"),
        ("a1" * 16, "charge", "billing", 100 * MS, "STATUS_CODE_ERROR"),
    ]
    _, rows = ch.sql(
        "SELECT SpanAttributes['code.file.path'], SpanAttributes['code.line.number'], SpanAttributes['currency'], "
        "ResourceAttributes['service.name'], ResourceAttributes['host.name'], ResourceAttributes['process.pid'], "
        "ResourceAttributes['vcs.ref.head.revision'], `Links.TraceId`, `Events.Name` "
        "FROM otel_traces ORDER BY Timestamp"
    )
    assert rows[0][:2] == ("shop/pay.py", "88")
    assert rows[1][2:] == ("EUR", "billing", "h1", "4242", "c0ffee", ["12" * 16], [])
    assert rows[2][-1] == ["exception"]
    _, rows = ch.sql(
        "SELECT Body, SeverityText, SeverityNumber, ServiceName, LogAttributes['event.name'] "
        "FROM otel_logs ORDER BY Timestamp"
    )
    assert rows == [
        ("received checkout", "INFO", 9, "gateway", ""),
        ('{"order":7}', "INFO", 9, "billing", "OrderPlaced"),
        ('"just text"', "INFO", 9, "billing", "Note"),
        ("card declined for order 7", "ERROR", 17, "billing", ""),
        ("under a span never recorded", "", 0, "gateway", ""),
    ]
    exporter_types = {
        "otel_traces": {
            "Timestamp": "DateTime64(9)",
            "TraceId": "String",
            "SpanId": "String",
            "ParentSpanId": "String",
            "TraceState": "String",
            "SpanName": "LowCardinality(String)",
            "SpanKind": "LowCardinality(String)",
            "ServiceName": "LowCardinality(String)",
            "ResourceAttributes": "Map(LowCardinality(String), String)",
            "SpanAttributes": "Map(LowCardinality(String), String)",
            "Duration": "UInt64",
            "StatusCode": "LowCardinality(String)",
            "StatusMessage": "String",
            "Events.Timestamp": "Array(DateTime64(9))",
            "Events.Name": "Array(LowCardinality(String))",
            "Events.Attributes": "Array(Map(LowCardinality(String), String))",
            "Links.TraceId": "Array(String)",
            "Links.SpanId": "Array(String)",
            "Links.TraceState": "Array(String)",
            "Links.Attributes": "Array(Map(LowCardinality(String), String))",
        },
        "otel_logs": {
            "Timestamp": "DateTime64(9)",
            "TraceId": "String",
            "SpanId": "String",
            "TraceFlags": "UInt8",
            "SeverityText": "LowCardinality(String)",
            "SeverityNumber": "UInt8",
            "ServiceName": "LowCardinality(String)",
            "Body": "String",
            "ResourceAttributes": "Map(LowCardinality(String), String)",
            "LogAttributes": "Map(LowCardinality(String), String)",
        },
    }
    for view, expected in exporter_types.items():
        described = {name: type_ for name, type_, *_ in ch.sql(f"DESCRIBE {view}")[1]}
        assert {name: described.get(name) for name in expected} == expected


# -- read-only SQL ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO records (id) VALUES ('x')",
        "INSERT INTO records SELECT * FROM records",
        "DELETE FROM records WHERE 1",
        "ALTER TABLE records DELETE WHERE 1",
        "TRUNCATE records",
        "DROP TABLE records",
        "CREATE TABLE t (a Int8) ENGINE = Memory",
        "CREATE TEMPORARY TABLE t (a Int8)",
        "RENAME TABLE records TO gone",
        "OPTIMIZE TABLE records FINAL",
        "SET max_threads = 1",
        "SELECT 1 SETTINGS readonly = 0",
        "SYSTEM DROP MARK CACHE",
        "KILL QUERY WHERE 1",
        "SELECT * FROM records INTO OUTFILE '/tmp/zoomtrace-evil.csv'",
        "SELECT * FROM file('/etc/hostname', LineAsString)",
        "INSERT INTO FUNCTION file('/tmp/zoomtrace-evil.csv') SELECT 1",
        "SELECT 1; DROP TABLE records",
        "SELECT 1; SELECT 2",
        "EXPLAIN AST DROP TABLE records",
    ],
)
def test_sql_refuses_anything_but_one_read(ch: ClickHouseStore, statement: str) -> None:
    ch.ingest([rec("log", "app", 1, message="keep me")])
    with pytest.raises(ReadOnlySQL):
        ch.sql(statement)
    assert ch.sql("SELECT message FROM records")[1] == [("keep me",)]
    assert not Path("/tmp/zoomtrace-evil.csv").exists()


@pytest.mark.parametrize(
    "statement",
    [
        # Data-modifying CTEs (issue 12, item 9): not ClickHouse syntax, and refused whatever they parse as.
        "WITH x AS (DELETE FROM records WHERE 1 RETURNING id) SELECT count() FROM x",
        "WITH x AS (UPDATE records SET message = 'x' WHERE 1 RETURNING id) SELECT count() FROM x",
        "WITH x AS (INSERT INTO records SELECT * FROM records RETURNING id) SELECT count() FROM x",
        "WITH x AS (SELECT 1) INSERT INTO records SELECT * FROM records",
        "WITH (SELECT 1) AS one ALTER TABLE records DELETE WHERE one = 1",
    ],
)
def test_data_modifying_ctes_change_nothing(ch: ClickHouseStore, statement: str) -> None:
    ch.ingest([rec("log", "app", 1, message="keep me")])
    with pytest.raises((ReadOnlySQL, StoreError)):
        ch.sql(statement)
    assert ch.sql("SELECT message FROM records")[1] == [("keep me",)]


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM records WHERE 1",
        "ALTER TABLE records DELETE WHERE 1",
        "ALTER TABLE records UPDATE message = 'x' WHERE 1",
        "INSERT INTO records SELECT * FROM records",
        "TRUNCATE records",
        "DROP TABLE records",
        "CREATE TABLE forged (a Int8) ENGINE = Memory",
    ],
)
def test_read_only_is_a_property_of_the_connection(
    ch: ClickHouseStore, statement: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the syntax-tree check out of the way, ``readonly = 1`` itself refuses to write."""
    from zoomtrace.store.clickhouse import _sql

    ch.ingest([rec("log", "app", 1, message="keep me")])
    monkeypatch.setattr(_sql, "_check_reads", lambda transport, statement: None)
    with pytest.raises(ReadOnlySQL, match="only reads"):
        ch.sql(statement)
    assert ch.sql("SELECT message FROM records")[1] == [("keep me",)]
    assert ch.sql("EXISTS TABLE forged")[1] == [(0,)]


@pytest.mark.parametrize(
    ("statement", "named"),
    [
        ("DELETE FROM records WHERE true", "not DeleteQuery"),
        ("UPDATE records SET message = 'x' WHERE 1", "not UpdateQuery"),
        ("SELECT * FROM records WHERE level = 'INFO' INTO OUTFILE 'out.csv'", "INTO OUTFILE is not allowed"),
    ],
)
def test_a_refusal_names_what_was_refused(ch: ClickHouseStore, statement: str, named: str) -> None:
    with pytest.raises(ReadOnlySQL, match=named):
        ch.sql(statement)
    assert ch.sql("SELECT message FROM records WHERE level = 'INFO' LIMIT 1") == (["message"], [])


def test_sql_reads_with_limits(ch: ClickHouseStore) -> None:
    ch.ingest([rec("log", "app", i, message=f"m{i}", level="INFO") for i in range(5)])
    assert ch.sql("SELECT message FROM records ORDER BY ts_ns", max_rows=2) == (["message"], [("m0",), ("m1",)])
    assert len(ch.sql("SELECT * FROM records")[1]) == 5
    assert ch.sql("  select count() AS n from records ; ") == (["n"], [(5,)])
    assert ch.sql("WITH x AS (SELECT kind FROM records) SELECT DISTINCT * FROM x")[1] == [("log",)]
    assert "trace_id" in [r[0] for r in ch.sql("DESCRIBE records")[1]]
    assert ch.sql("EXISTS TABLE records")[1] == [(1,)]
    assert ch.sql("EXPLAIN SELECT count() FROM records")[1]
    with pytest.raises(StoreError, match="more than 1,000,000 rows"):
        ch.sql("SELECT number FROM system.numbers LIMIT 2000000")
    with pytest.raises(StoreError, match=r"SQL error.*no_such_table"):
        ch.sql("SELECT * FROM no_such_table")
    with pytest.raises(StoreError, match="SQL error"):
        ch.sql("SELEC oops")
    with pytest.raises(StoreError, match="empty query"):
        ch.sql(" ; ")
    assert ch.sql("SELECT 42")[1] == [(42,)]


# -- URLs and the clickhouse:// transport ----------------------------------------------------------


def test_store_urls() -> None:
    target = parse_url("clickhouse://bob:s%40cr%2Ft@db.example:8124/shop?cluster=main")
    assert (target.host, target.port, target.user, target.password, target.database, target.cluster) == (
        "db.example",
        8124,
        "bob",
        "s@cr/t",
        "shop",
        "main",
    )
    assert not target.secure and parse_url("clickhouses://h").secure
    assert parse_url("clickhouses://h").database == "zoomtrace"
    assert target.display == "clickhouse://bob:***@db.example:8124/shop?cluster=main"
    assert "s@cr" not in repr(target)
    assert parse_url("chdb:///var/lib/zt").path == "/var/lib/zt"
    for bad in (
        "mysql://h/db",
        "clickhouse:///db",
        "clickhouse://h:port/db",
        "clickhouse://h/db?shards=2",
        "clickhouse://h/my-db",
        "clickhouse://h/db?cluster=a;b",
        "chdb://",
    ):
        with pytest.raises(ConfigError):
            parse_url(bad)
    with pytest.raises(ConfigError) as info:
        parse_url("clickhouse://bob:hunter2@h:nope/db")
    assert "hunter2" not in str(info.value) and "***" in str(info.value)


def test_a_password_is_never_in_an_error() -> None:
    with pytest.raises(StoreError) as info:
        ClickHouseStore.open("clickhouse://bob:hunter2@127.0.0.1:1/shop")
    assert "hunter2" not in str(info.value)
    assert "clickhouse://bob:***@127.0.0.1:1/shop" in str(info.value)


def test_the_clickhouse_connect_transport(tmp_path: Path, duck: DuckStore) -> None:
    """The clickhouse:// code path (clickhouse-connect's client: raw_query, raw_insert, parameters, settings)
    against clickhouse-connect's in-process chDB interface."""
    import clickhouse_connect

    from zoomtrace.store.clickhouse._migrate import ensure_schema

    client = clickhouse_connect.get_client(interface="chdb", path=str(tmp_path / "via-connect"))
    transport = ConnectTransport(client)
    layout = ensure_schema(transport, Layout("zoomtrace"), create=True, retention_days=0, display="test")
    transport.use("zoomtrace")
    store = ClickHouseStore(transport, layout, "test")
    try:
        records = [started(NODE_A, "gateway"), started(NODE_B, "billing"), *checkout_trace()]
        assert store.ingest(records) == duck.ingest(records)
        assert store.ingest(records) == 0
        assert msgspec.json.encode(query.story(store, "a1a1a1a1")) == msgspec.json.encode(query.story(duck, "a1a1a1a1"))
        assert store.traces() == duck.traces()
        assert store.sql("SELECT count() FROM records")[1] == [(len(records),)]
        with pytest.raises(ReadOnlySQL):
            store.sql("DROP TABLE records")
    finally:
        store.close()
