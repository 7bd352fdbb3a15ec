"""The store contract: what every store backend does, run on each of them (DuckDB, and ClickHouse's engine
in-process through chDB).

Every test that builds a store runs once per backend (ids ``duckdb`` and ``chdb``) and uses it through the
``StoreWriter`` and ``StoreReader`` protocols alone (``zoomtrace.store.protocols``, docs/store.md):
idempotent writes, records skipped, payloads and blobs, trace and node summaries whatever the order of
arrival, lookups, lineage, search, tail, and read-only SQL in the statements both SQL dialects share. What
one backend alone does is tested in its own file: DuckDB's file, sessions, locking and SQL dialect in
tests/test_duckdb_store.py; ClickHouse's DDL, merges, URLs and SQL dialect in tests/test_clickhouse_store.py.

Every store is real: a DuckDB file or a chDB directory under tmp_path (chDB opens one directory per process
at a time, so a test closes a store before it opens another). Records are built with the Record struct;
expected values are derived from the inputs written in each test.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from support.records import MS, NODE_A, NODE_B, T0, checkout_trace, rec, started
from support.stores import ENGINES, open_store
from zoomtrace.errors import AmbiguousId, NotFound, ReadOnlySQL, StoreError, TooLarge
from zoomtrace.read import model, query
from zoomtrace.store import Store, StoreWriter, WriteReport
from zoomtrace.store.protocols import SpanColumns, SpanCounts
from zoomtrace.wire.record import Code, Error, Frame, Link, Record, uuid7


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(engine: str, tmp_path: Path) -> Iterator[Store]:
    s = open_store(engine, tmp_path)
    try:
        yield s
    finally:
        s.close()


def ingest(store: StoreWriter, records: Iterable[Record]) -> int:
    """Prepare and write ``records`` as one batch; returns how many were new."""
    return store.write(store.prepare(list(records))).new


def count(store: Store, table: str = "records") -> int:
    return int(store.sql(f"SELECT count(*) FROM {table}")[1][0][0])


# -- ingestion ---------------------------------------------------------------------------------


def test_ingest_is_idempotent_by_id(store: Store) -> None:
    a = rec("log", "app", 1, message="one", level="INFO")
    b = rec("log", "app", 2, message="two", level="INFO")
    # b twice in the same batch, then both again in a later batch
    assert ingest(store, [a, b, b]) == 2
    assert ingest(store, [a, b]) == 0
    assert ingest(store, [b, rec("log", "app", 3, message="three")]) == 1
    assert count(store) == 3
    assert sorted(r[0] for r in store.sql("SELECT message FROM records")[1]) == ["one", "three", "two"]
    # the node counts are not inflated by the repeats
    (node,) = store.nodes()
    assert node["record_count"] == 3
    assert node["log_count"] == 3


def test_record_round_trips_every_field(store: Store) -> None:
    r = rec(
        "span",
        "charge",
        10,
        trace_id="ab" * 16,
        span_id="cd" * 8,
        parent_span_id="ef" * 8,
        end_ns=T0 + 25 * MS,
        links=[Link("12" * 16, "34" * 8)],
        on_behalf_of="user-7",
        code=Code("shop/pay.py", 88, "charge", "deadbeef", True),
        level=None,
        message=None,
        attrs={"amount": 12.5, "currency": "EUR", "nested": {"k": [1, 2]}},
        error=Error("CardDeclined", "insufficient funds", [Frame("shop/pay.py", 90, "charge")]),
        status="error",
        cpu_ns=1234,
        thread="worker-1",
        sources=["src-1", "src-2"],
    )
    ingest(store, [r])
    got = store.record(r.id)
    assert got["kind"] == "span" and got["type"] == "charge"
    assert (got["ts_ns"], got["end_ns"]) == (T0 + 10 * MS, T0 + 25 * MS)
    assert (got["trace_id"], got["span_id"], got["parent_span_id"]) == ("ab" * 16, "cd" * 8, "ef" * 8)
    assert got["links"] == [{"trace_id": "12" * 16, "span_id": "34" * 8}]
    assert got["on_behalf_of"] == "user-7"
    assert got["code"] == {"file": "shop/pay.py", "line": 88, "function": "charge", "commit": "deadbeef", "dirty": True}
    assert got["attrs"] == {"amount": 12.5, "currency": "EUR", "nested": {"k": [1, 2]}}
    assert got["error"] == {
        "type": "CardDeclined",
        "message": "insufficient funds",
        "frames": [{"file": "shop/pay.py", "line": 90, "function": "charge"}],
    }
    assert (got["status"], got["cpu_ns"], got["thread"]) == ("error", 1234, "worker-1")
    assert got["sources"] == ["src-1", "src-2"]
    assert got["node_id"] == NODE_A
    # flattened code columns, as documented for SQL users
    _, rows = store.sql(
        f"SELECT code_file, code_line, code_function, code_commit, code_dirty FROM records WHERE id = '{r.id}'"
    )
    assert rows == [("shop/pay.py", 88, "charge", "deadbeef", True)]


def test_raw_and_snapshot_payloads_go_to_blobs(store: Store) -> None:
    data = b"\x00\x01binary\xff" * 3
    digest = hashlib.sha256(data).hexdigest()
    raw = rec("raw", "Blob", 1, attrs={"raw.format": "bin", "raw.size": len(data), "raw.sha256": digest}, payload=data)
    bare = rec("raw", "Bare", 2, payload=b"no attrs")  # built by hand, without the encoder's raw.* attrs
    source = b"print('dirty')\n"
    snap = rec(
        "node",
        "snapshot",
        3,
        attrs={"file": "app.py", "repo": "/src", "sha256": hashlib.sha256(source).hexdigest()},
        payload=source,
    )
    assert ingest(store, [raw, bare, snap]) == 3
    got = store.record(raw.id)
    assert got["payload"] is None
    assert got["payload_blob"] == digest
    assert got["attrs"]["raw.sha256"] == digest and got["attrs"]["raw.size"] == len(data)
    assert store.blob(digest) == data
    bare_got = store.record(bare.id)
    assert bare_got["attrs"]["raw.sha256"] == hashlib.sha256(b"no attrs").hexdigest()
    assert bare_got["attrs"]["raw.size"] == len(b"no attrs")
    assert store.blob(bare_got["payload_blob"]) == b"no attrs"
    assert store.blob(hashlib.sha256(source).hexdigest()) == source
    assert store.blob("0" * 64) is None
    # the same content again is one blob: the blobs are those of the three contents, each stored once
    # (through SQL a ClickHouse store shows a repeated row until its merge: docs/store.md, so by digest)
    assert ingest(store, [rec("raw", "Blob", 4, payload=data)]) == 1
    assert store.blob(digest) == data
    _, rows = store.sql("SELECT sha256, count(DISTINCT content) FROM blobs GROUP BY sha256 ORDER BY sha256")
    assert rows == sorted(
        (d, 1) for d in (digest, hashlib.sha256(b"no attrs").hexdigest(), hashlib.sha256(source).hexdigest())
    )


def test_event_payloads_of_any_json_shape(store: Store) -> None:
    values: list[Any] = [
        {"order": 7, "items": [{"sku": "A", "qty": 2}]},
        [1, "two", None],
        "just text",
        42,
        None,
        {"big": 2**70, "unicode": "café ☕", "quote": 'he said "hi"\n'},
    ]
    records = [rec("event", "E", i, payload=v) for i, v in enumerate(values)]
    ingest(store, records)
    assert [store.record(r.id)["payload"] for r in records] == values


def test_a_record_the_store_cannot_hold_is_skipped(store: Store) -> None:
    ok = rec("log", "app", 1, message="fine")
    huge = rec("span", "busy", 2, cpu_ns=2**63)  # one more than BIGINT holds
    report = store.write(store.prepare([ok, huge]))
    assert report.new == 1
    assert len(report.skipped) == 1 and huge.id in report.skipped[0] and "cpu_ns" in report.skipped[0]
    assert [p["problem"] for p in store.problems()] == report.skipped
    assert store.write(store.prepare([rec("log", "app", 3)])) == WriteReport(new=1, skipped=[])
    with pytest.raises(NotFound):
        store.record(huge.id)


def test_a_refused_record_costs_the_others_of_its_batch_nothing_not_even_their_blobs(store: Store) -> None:
    data = b"\x00raw bytes"
    raw = rec("raw", "upload", 1, payload=data)
    huge = rec("span", "busy", 2, cpu_ns=2**63)
    report = store.write(store.prepare([raw, huge]))
    assert report.new == 1 and len(report.skipped) == 1
    assert store.blob(store.record(raw.id)["payload_blob"]) == data


def test_a_code_line_beyond_its_column_is_reported_and_the_record_kept(store: Store) -> None:
    lines = {"too-high": 2**31, "too-low": -(2**31) - 1, "far": 2**40, "highest": 2**31 - 1}
    records = {
        name: rec("log", "app", i, message=name, code=Code("app.py", line, "handler"))
        for i, (name, line) in enumerate(lines.items(), 1)
    }
    report = store.write(store.prepare(list(records.values())))
    assert report.new == len(records)  # nothing is lost for want of a line number
    for name, r in records.items():
        stored = store.record(r.id)
        assert stored["message"] == name and stored["code"]["file"] == "app.py"
        assert stored["code"]["line"] == (lines[name] if name == "highest" else None), name
    reported = {name for name, r in records.items() if any(r.id in line for line in report.skipped)}
    assert reported == {"too-high", "too-low", "far"}
    assert all("code.line" in line and "stored without its code line" in line for line in report.skipped)
    assert sorted(p["problem"] for p in store.problems()) == sorted(report.skipped)


# -- traces ------------------------------------------------------------------------------------


def test_trace_summary(store: Store) -> None:
    ingest(store, [started(NODE_A, "gateway"), started(NODE_B, "billing", env="staging"), *checkout_trace()])
    (t,) = store.traces()
    assert t["trace_id"] == "a1" * 16
    assert t["start_ns"] == T0
    assert t["duration_ns"] == 120 * MS  # the grandchild ends last, at +120 ms
    assert t["root_name"] == "POST /checkout"
    assert t["root_service"] == "gateway"
    assert t["services"] == ["billing", "gateway"]
    assert (t["span_count"], t["log_count"], t["event_count"], t["record_count"]) == (3, 2, 1, 6)
    assert t["error"] is True


def test_trace_summary_is_the_same_when_records_arrive_in_pieces(engine: str, tmp_path: Path) -> None:
    records = [started(NODE_A, "gateway"), started(NODE_B, "billing"), *checkout_trace()]
    whole_store = open_store(engine, tmp_path / "whole")
    try:
        ingest(whole_store, records)
        whole = whole_store.traces()
    finally:
        whole_store.close()
    other = open_store(engine, tmp_path / "pieces")
    try:
        # the root span (records[2]) after its descendants, the node identities after the spans they describe
        for piece in (
            [records[3], records[4]],
            [records[6], records[7]],
            [records[1]],
            [records[5], records[2]],
            [records[0]],
        ):
            ingest(other, piece)
        assert other.traces() == whole
    finally:
        other.close()


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (3, 2, 1, 0), (1, 3, 0, 2)])
def test_a_trace_written_node_by_node_lists_every_service_and_env_once(
    engine: str, tmp_path: Path, order: tuple[int, ...]
) -> None:
    # As the Kafka collector writes a trace: its records come from several topics, read at different paces.
    node_c = uuid7(T0 - 8_000 * MS)
    nodes = [(NODE_A, "gateway", "prod"), (NODE_B, "billing", "prod"), (node_c, "audit", "staging")]
    tid = "d4" * 16
    pieces = [
        [rec("span", "request", 0, node=NODE_A, trace_id=tid, span_id="11" * 8, end_ns=T0 + 50 * MS)],
        [rec("span", "charge", 10, node=NODE_B, trace_id=tid, span_id="22" * 8, parent_span_id="11" * 8)],
        [rec("log", "audit", 20, node=node_c, trace_id=tid, span_id="22" * 8, message="seen")],
        [rec("log", "again", 30, node=NODE_B, trace_id=tid, span_id="22" * 8, message="twice")],
    ]
    s = open_store(engine, tmp_path)
    try:
        ingest(s, [started(node, service, env=env) for node, service, env in nodes])
        for at in order:
            ingest(s, pieces[at])
        (trace,) = s.traces()
    finally:
        s.close()
    assert trace["services"] == sorted(service for _, service, _ in nodes)
    assert trace["envs"] == sorted({env for _, _, env in nodes})
    assert trace["record_count"] == len(pieces)


def test_remote_parent_root_is_replaced_by_a_parentless_span(store: Store) -> None:
    tid = "b2" * 16
    ingest(
        store,
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
    assert store.traces()[0]["root_name"] == "handle"  # only a span with an unrecorded (remote) parent so far
    ingest(
        store,
        [started(NODE_A, "gateway"), rec("span", "request", 15, trace_id=tid, span_id="11" * 8, end_ns=T0 + 30 * MS)],
    )
    t = store.traces()[0]
    assert (t["root_name"], t["root_service"]) == ("request", "gateway")  # parentless wins though it started later
    assert t["start_ns"] == T0 + 10 * MS and t["duration_ns"] == 20 * MS
    # the same within one batch (a skewed clock makes the remote-parent span look earlier)
    other = "c3" * 16
    ingest(
        store,
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
    assert store.traces({"text": "entry"})[0]["root_name"] == "entry"


def test_traces_filters_order_and_paging(store: Store) -> None:
    def one(
        tid: str,
        start: int,
        service_node: str,
        *,
        dur: int,
        error: bool = False,
        text: str = "",
        attrs: dict[str, Any] | None = None,
    ) -> list[Record]:
        span = rec(
            "span",
            f"op-{tid[:2]}",
            start,
            node=service_node,
            trace_id=tid,
            span_id=tid[:16],
            end_ns=T0 + (start + dur) * MS,
            status="error" if error else "ok",
        )
        log = rec(
            "log",
            "app",
            start + 1,
            node=service_node,
            trace_id=tid,
            span_id=tid[:16],
            level="INFO",
            message=text or "nothing special",
            attrs=attrs or {},
        )
        return [span, log]

    t1, t2, t3, t4, t5 = ("01" * 16, "02" * 16, "03" * 16, "04" * 16, "05" * 16)
    ingest(
        store,
        [
            started(NODE_A, "gateway", env="prod"),
            started(NODE_B, "billing", env="staging"),
            *one(t1, 0, NODE_A, dur=10),
            *one(t2, 100, NODE_B, dur=500, error=True, text="Payment DECLINED 100%"),
            *one(t3, 200, NODE_A, dur=50, attrs={"customer": "ACME_corp"}),
            *one(t4, 300, NODE_B, dur=5),
            *one(t5, 300, NODE_A, dur=7),  # same start as t4: trace id breaks the tie (descending)
        ],
    )

    def ids(**filt: Any) -> list[str]:
        return [t["trace_id"] for t in store.traces(filt)]  # type: ignore[arg-type]

    assert ids() == [t5, t4, t3, t2, t1]
    assert ids(service="billing") == [t4, t2]
    assert ids(env="prod") == [t5, t3, t1]
    assert ids(errors_only=True) == [t2]
    assert ids(min_duration_ns=10 * MS) == [t3, t2, t1]
    assert ids(max_duration_ns=10 * MS) == [t5, t4, t1]
    assert ids(min_duration_ns=8 * MS, max_duration_ns=60 * MS) == [t3, t1]
    assert ids(since_ns=T0 + 100 * MS, until_ns=T0 + 200 * MS) == [t3, t2]
    assert ids(text="declined 100%") == [t2]  # case-insensitive, % taken literally
    assert ids(text="100_") == []  # _ taken literally too
    assert ids(text="acme_CORP") == [t3]  # attrs
    assert ids(text="op-04") == [t4]  # span names
    assert ids(service="billing", errors_only=True) == [t2]
    assert [t["trace_id"] for t in store.traces(limit=2)] == [t5, t4]
    assert [t["trace_id"] for t in store.traces(limit=2, offset=2)] == [t3, t2]
    assert [t["trace_id"] for t in store.traces(limit=2, offset=4)] == [t1]
    row = store.traces({"service": "billing", "errors_only": True})[0]
    assert set(row) >= {
        "trace_id",
        "start_ns",
        "duration_ns",
        "root_name",
        "root_service",
        "services",
        "span_count",
        "log_count",
        "event_count",
        "error",
        "record_count",
    }
    assert (row["root_service"], row["services"], row["duration_ns"]) == ("billing", ["billing"], 500 * MS)


# -- a trace in parts: its spans and counts, pages of its records --------------------------------

PAGED = "d4" * 16
DAY_MS = 86_400_000
#: Levels as ``RecordFilter.min_level`` ranks them (a level not listed ranks as INFO).
RANK = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50, "FATAL": 50}


def paged_trace() -> list[Record]:
    """One trace across two services and two days: a gateway root with three billing children, logs of every
    level (and none, a lower-case one, one not listed), events, raw data, failures, two records at the same
    instant, a record under an unrecorded span, one under none, and a chain of spans 12 deep that starts a
    day later; plus a record of another trace and a node record, which belong to no page."""
    root = "a0" * 8
    children = [f"b{i}" * 8 for i in range(3)]
    out = [
        started(NODE_A, "gateway"),
        started(NODE_B, "billing"),
        rec("span", "GET /pay", 0, trace_id=PAGED, span_id=root, end_ns=T0 + 5000 * MS, attrs={"route": "/pay"}),
        rec("log", "app", 1, trace_id=PAGED, span_id=root, message="received 100% of it", level="info"),
        rec("log", "app", 2, trace_id=PAGED, span_id=root, message="no level at all"),
        rec("event", "OrderPlaced", 3, trace_id=PAGED, span_id=root, payload={"order": 7}),
        rec("raw", "Blob", 4, trace_id=PAGED, span_id=root, payload=b"\x00raw"),
        rec("log", "app", 5, trace_id=PAGED, span_id=None, message="under no span", level="WARNING"),
        rec("log", "app", 6, trace_id=PAGED, span_id="ee" * 8, message="under a span never recorded"),
    ]
    for i, child in enumerate(children):
        start = 100 * (i + 1)
        out.append(
            rec(
                "span",
                f"charge-{i}",
                start,
                node=NODE_B,
                trace_id=PAGED,
                span_id=child,
                parent_span_id=root,
                end_ns=T0 + (start + 50) * MS,
                status="error" if i == 1 else "ok",
            )
        )
        for j, level in enumerate(("DEBUG", "INFO", "WARNING", "ERROR", "NOTICE", "CRITICAL")):
            out.append(
                rec(
                    "log",
                    "billing",
                    start + 1 + j,
                    node=NODE_B,
                    trace_id=PAGED,
                    span_id=child,
                    level=level,
                    message=f"charge {i} step_{j}",
                    attrs={"customer": "ACME" if j == 2 else "zenith"},
                )
            )
    out.append(rec("log", "billing", 110, node=NODE_B, trace_id=PAGED, span_id=children[0], message="same instant"))
    twin = rec("log", "billing", 110, node=NODE_B, trace_id=PAGED, span_id=children[0], message="same instant too")
    out.append(twin)
    out.append(
        rec(
            "event",
            "Declined",
            212,
            node=NODE_B,
            trace_id=PAGED,
            span_id=children[1],
            error=Error("Declined", "no funds", []),
            payload={"order": 7},
        )
    )
    parent = children[2]
    for depth in range(12):  # a chain deep in the tree, a day later
        span_id = f"{depth:02d}" * 8
        start = DAY_MS + 1000 * depth
        out.append(
            rec(
                "span",
                "deep",
                start,
                trace_id=PAGED,
                span_id=span_id,
                parent_span_id=parent,
                end_ns=T0 + (start + 20_000) * MS,
            )
        )
        out.append(rec("log", "app", start + 1, trace_id=PAGED, span_id=span_id, message=f"deep {depth}"))
        parent = span_id
    out.append(rec("log", "app", 7, trace_id="ff" * 16, message="another trace"))
    return out


def in_trace(records: list[Record]) -> list[Record]:
    """The records a page of PAGED may hold, in time order (then by id)."""
    return sorted((r for r in records if r.trace_id == PAGED and r.kind != "node"), key=lambda r: (r.ts_ns, r.id))


def is_error(r: Record) -> bool:
    return r.status == "error" or r.error is not None or r.level in ("ERROR", "CRITICAL", "FATAL")


def passing(records: list[Record], filt: dict[str, Any]) -> list[str]:
    """The ids of the records of PAGED passing ``filt``, in time order: the filter's rules, written out."""
    spans = {r.span_id for r in records if r.kind == "span" and r.trace_id == PAGED}
    service = {NODE_A: "gateway", NODE_B: "billing"}
    out = []
    for r in in_trace(records):
        if r.kind not in filt.get("kinds", ("log", "event", "span", "raw")):
            continue
        if "span_ids" in filt:
            under = r.span_id in filt["span_ids"] or (None in filt["span_ids"] and r.span_id not in spans)
            if r.kind == "span" or not under:
                continue
        if "from_ns" in filt and r.ts_ns < filt["from_ns"]:
            continue
        if "to_ns" in filt and r.ts_ns >= filt["to_ns"]:
            continue
        if "min_level" in filt and r.level is not None and RANK.get(r.level.upper(), 20) < RANK[filt["min_level"]]:
            continue
        if "service" in filt and service.get(r.node_id) != filt["service"]:
            continue
        text = filt.get("text", "").lower()
        if text and not any(text in (v or "").lower() for v in (r.message, r.type, json_text(r.attrs))):
            continue
        if filt.get("errors_only") and not is_error(r):
            continue
        out.append(r.id)
    return out


def json_text(value: Any) -> str:
    return msgspec.json.encode(value).decode() if value else ""


def all_pages(store: Store, filt: dict[str, Any], limit: int) -> list[str]:
    """Every record passing ``filt``, read page after page."""
    ids: list[str] = []
    offset = 0
    while True:
        page = store.trace_records(PAGED, filt, offset=offset, limit=limit)  # type: ignore[arg-type]
        assert page.offset == offset
        ids += [r["id"] for r in page.rows]
        offset += limit
        if offset >= page.total:
            assert len(ids) == page.total
            return ids


def test_trace_spans_reads_the_spans_and_counts_the_rest(store: Store) -> None:
    records = paged_trace()
    ingest(store, records)
    got = store.trace_spans(PAGED[:8])  # a unique prefix
    assert got.trace_id == PAGED
    mine = in_trace(records)
    spans = [r for r in mine if r.kind == "span"]
    assert sorted(s["id"] for s in got.spans) == sorted(s.id for s in spans)
    assert all(list(s) == list(model.RecordView.__struct_fields__) for s in got.spans)
    by_id = {s["id"]: s for s in got.spans}
    assert by_id[spans[0].id]["attrs"] == {"route": "/pay"} and by_id[spans[0].id]["type"] == "GET /pay"
    assert got.start_ns == min(r.ts_ns for r in mine)
    assert got.end_ns == max(max(r.ts_ns, r.end_ns or r.ts_ns) for r in mine) == T0 + (DAY_MS + 11_000 + 20_000) * MS
    expected: dict[str | None, tuple[int, int, int, int]] = {}
    for r in mine:
        if r.kind != "span":
            records, logs, events, errors = expected.get(r.span_id, (0, 0, 0, 0))
            counted = (records + 1, logs + (r.kind == "log"), events + (r.kind == "event"), errors + is_error(r))
            expected[r.span_id] = counted
    c = got.counts
    assert sorted(zip(c.span_id, zip(c.records, c.logs, c.events, c.errors)), key=lambda x: x[0] or "") == sorted(
        expected.items(), key=lambda x: x[0] or ""
    )
    assert expected["b1" * 8] == (7, 6, 1, 3)  # six logs and an event, two error logs and the exception
    assert got.node_ids == sorted([NODE_A, NODE_B])
    assert sorted(n["node_id"] for n in got.nodes) == sorted([NODE_A, NODE_B])
    with pytest.raises(NotFound, match="zoomtrace traces"):
        store.trace_spans("0000" * 8)


def test_trace_records_pages_cover_the_trace_in_time_order(store: Store) -> None:
    records = paged_trace()
    ingest(store, records)
    everything = passing(records, {})
    assert len(everything) == len(in_trace(records)) == 55
    first = store.trace_records(PAGED)
    assert (first.total, first.offset) == (len(everything), 0)
    assert [r["id"] for r in first.rows] == everything  # 500 by default: all of them
    assert all(list(r) == list(model.RecordView.__struct_fields__) for r in first.rows)
    assert sorted(n["node_id"] for n in first.nodes) == sorted([NODE_A, NODE_B])
    for limit in (1, 7, 50):
        assert all_pages(store, {}, limit) == everything
    beyond = store.trace_records(PAGED, offset=100, limit=10)
    assert (beyond.total, beyond.offset, beyond.rows) == (len(everything), 100, [])
    assert store.trace_records(PAGED, limit=None).rows == first.rows
    twins = [r.id for r in records if r.message in ("same instant", "same instant too")]
    assert [i for i in everything if i in twins] == sorted(twins)  # the same instant: by id
    with pytest.raises(NotFound):
        store.trace_records("0000" * 8)


#: Filters of a trace's records, alone and combined.
FILTERS: list[dict[str, Any]] = [
    {"span_ids": ["b0" * 8]},
    {"span_ids": ["b0" * 8, "b2" * 8, "a0" * 8]},
    {"span_ids": [None]},
    {"span_ids": ["a0" * 8, None]},
    {"span_ids": ["11" * 8]},  # far down the tree, a day later
    {"span_ids": []},
    {"from_ns": T0 + 100 * MS, "to_ns": T0 + 110 * MS},
    {"from_ns": T0 + DAY_MS * MS},
    {"to_ns": T0 + 5 * MS},
    {"kinds": ["span"]},
    {"kinds": ["event", "raw"]},
    {"min_level": "WARNING"},
    {"min_level": "ERROR", "kinds": ["log"]},
    {"min_level": "INFO"},
    {"service": "billing"},
    {"service": "nobody"},
    {"text": "ACME"},
    {"text": "orderplaced"},
    {"text": "100%"},
    {"text": "0_"},
    {"text": "step_3"},
    {"errors_only": True},
    {"errors_only": True, "service": "billing", "kinds": ["log"]},
    {"span_ids": ["b1" * 8], "min_level": "WARNING", "text": "charge"},
]


def test_trace_records_filters(store: Store) -> None:
    records = paged_trace()
    ingest(store, records)
    for filt in FILTERS:
        expected = passing(records, filt)
        page = store.trace_records(PAGED, filt)  # type: ignore[arg-type]
        assert [r["id"] for r in page.rows] == expected, filt
        assert page.total == len(expected), filt
        assert all_pages(store, filt, 4) == expected, filt


def test_trace_records_filters_select_what_they_say(store: Store) -> None:
    """The expectations of the filter test are not empty where they matter (it would pass on nothing)."""
    records = paged_trace()
    ingest(store, records)

    def count(**filt: Any) -> int:
        return store.trace_records(PAGED, filt).total  # type: ignore[arg-type]

    assert count(span_ids=["b0" * 8]) == 8  # six levels, two at the same instant
    assert count(span_ids=[None]) == 2  # under no span, under a span never recorded
    assert count(span_ids=["11" * 8]) == 1
    assert count(kinds=["span"]) == 16
    without_level = [r for r in in_trace(records) if r.kind == "log" and r.level is None]
    assert len(without_level) == 16
    assert count(min_level="ERROR", kinds=["log"]) == 6 + 16  # ERROR and CRITICAL of three children; no level
    assert count(text="100%") == 1 and count(text="0_") == 0
    assert count(text="ACME") == 3
    assert count(errors_only=True) == 8  # 6 error logs, a failed span, an event with an exception
    assert count(service="billing") == len([r for r in in_trace(records) if r.node_id == NODE_B])


def test_trace_records_around_a_record(store: Store) -> None:
    records = paged_trace()
    ingest(store, records)
    everything = passing(records, {})
    for position in (0, 6, 7, 30, len(everything) - 1):
        page = store.trace_records(PAGED, around=everything[position], limit=7)
        assert page.offset == position - position % 7
        assert [r["id"] for r in page.rows] == everything[page.offset : page.offset + 7]
        assert everything[position] in [r["id"] for r in page.rows]
    assert store.trace_records(PAGED, around=everything[30], limit=None).offset == 0
    # A record the filter leaves out: the page where it would be.
    logs = passing(records, {"kinds": ["log"]})
    span = next(r for r in in_trace(records) if r.kind == "span" and r.type == "charge-1")
    at = {r.id: r.ts_ns for r in records}
    before = sum(1 for i in logs if at[i] < span.ts_ns)
    page = store.trace_records(PAGED, {"kinds": ["log"]}, around=span.id, limit=5)
    assert page.offset == before - before % 5
    with pytest.raises(NotFound, match="no record"):
        store.trace_records(PAGED, around="not-a-record")
    other = next(r for r in records if r.trace_id == "ff" * 16)
    with pytest.raises(NotFound):
        store.trace_records(PAGED, around=other.id)


class _Slim(msgspec.Struct):
    id: str
    ts_ns: int
    message: str | None = None
    code: model.Code | None = None
    node_id: str = ""


def test_trace_spans_as_columns(store: Store) -> None:
    """``row_type=SpanColumns``: every span record, one entry each, in time order, links by position."""
    records = paged_trace()
    links = [Link(trace_id="ab" * 16, span_id="cd" * 8), Link(trace_id=PAGED, span_id="b1" * 8)]
    linked = rec("span", "retry", 120, trace_id=PAGED, span_id="f1" * 8, status="error", links=links)
    failing = rec("span", "charge", 121, trace_id=PAGED, span_id="f2" * 8, error=Error("Declined", "no", []))
    records += [linked, failing, rec("span", "no span id", 122, trace_id=PAGED, span_id=None)]
    ingest(store, records)
    got = store.trace_spans(PAGED, row_type=SpanColumns)
    spans = sorted((r for r in in_trace(records) if r.kind == "span"), key=lambda r: (r.ts_ns, r.id))
    c = got.spans
    assert isinstance(c, SpanColumns)
    assert c.id == [r.id for r in spans]
    assert c.span_id == [r.span_id for r in spans]
    assert c.parent_span_id == [r.parent_span_id for r in spans]
    assert c.type == [r.type for r in spans]
    assert c.node_id == [r.node_id for r in spans]
    assert c.ts_ns == [r.ts_ns for r in spans]
    assert c.end_ns == [r.end_ns for r in spans]
    assert c.status == [r.status for r in spans]
    assert c.failed == [int(r.status == "error" or r.error is not None) for r in spans]
    assert c.failed[c.id.index(failing.id)] == 1 and c.failed[c.id.index(linked.id)] == 1
    at = c.id.index(linked.id)
    assert c.links == [(at, "ab" * 16, "cd" * 8), (at, PAGED, "b1" * 8)]
    # Counts per span id are a set of rows: their order is the engine's (a GROUP BY), so compare them by span id.
    assert _by_span(got.counts) == _by_span(store.trace_spans(PAGED).counts)


def _by_span(counts: SpanCounts) -> dict[str | None, tuple[int, ...]]:
    return {row[0]: tuple(row[1:]) for row in zip(*counts, strict=True)}


def test_rows_of_a_struct_type_carry_its_fields(store: Store) -> None:
    records = paged_trace()
    ingest(store, records)
    page = store.trace_records(PAGED, {"kinds": ["log"]}, limit=None, row_type=_Slim)
    logs = [r for r in in_trace(records) if r.kind == "log"]
    assert page.rows == [_Slim(r.id, r.ts_ns, r.message, None, r.node_id) for r in logs]
    spans = store.trace_spans(PAGED, row_type=_Slim).spans
    assert sorted(s.id for s in spans) == sorted(r.id for r in in_trace(records) if r.kind == "span")


# -- nodes -------------------------------------------------------------------------------------


def node_records() -> list[Record]:
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


EXPECTED_NODE = {
    "node_id": NODE_A,
    "service": "orders",
    "env": "prod",
    "group": "shop",
    "version": "1.2",
    "host": "h1",
    "pid": 4242,
    "parent_node_id": None,
    "python": "3.11.7",
    "platform": "Linux",
    "commit": "c0ffee",
    "branch": "main",
    "started_ns": T0 - 5000 * MS,
    "stopped_ns": T0 - 1000 * MS,
    "stop_cause": "exception",
    "stop_error": {
        "type": "ValueError",
        "message": "bad order",
        "frames": [{"file": "orders/app.py", "line": 12, "function": "main"}],
    },
    "lost": {"queue_full": 5, "too_big": 1},
    "argv": "app.py --serve",
}


@pytest.mark.parametrize("order", list(itertools.permutations(range(5)))[::7])
def test_nodes_are_derived_whatever_the_order_of_arrival(store: Store, order: tuple[int, ...]) -> None:
    records = node_records()
    for i in order:  # one record per ingest transaction, in this order
        ingest(store, [records[i]])
    (node,) = store.nodes()
    for key, value in EXPECTED_NODE.items():
        assert node[key] == value, key
    assert sorted(r["root"] for r in node["repos"]) == ["/src/app", "/src/lib"]
    assert node["record_count"] == 5


def test_nodes_newest_first_with_counts(store: Store) -> None:
    ingest(store, [started(NODE_A, "old", ts=-9000), started(NODE_B, "new", ts=-1000), *checkout_trace()])
    rows = store.nodes()
    assert [n["service"] for n in rows] == ["new", "old"]
    by_service = {n["service"]: n for n in rows}
    # checkout_trace: node A has the root span and one log, node B two spans, one log, one event
    assert (by_service["old"]["span_count"], by_service["old"]["log_count"]) == (1, 1)
    assert (by_service["new"]["span_count"], by_service["new"]["log_count"], by_service["new"]["event_count"]) == (
        2,
        1,
        1,
    )
    assert by_service["new"]["error_count"] == 2  # the error span and the ERROR log
    assert by_service["old"]["record_count"] == 3  # started + span + log
    assert [n["service"] for n in store.nodes(limit=1, offset=1)] == ["old"]
    assert store.node(NODE_B)["service"] == "new" and store.node(NODE_B)["group"] == "shop"
    with pytest.raises(NotFound, match="zoomtrace nodes"):
        store.node("no-such-node")


def test_service_of_a_node_whose_start_arrives_after_its_traces(store: Store) -> None:
    ingest(store, checkout_trace())
    assert store.traces({"service": "billing"}) == []
    assert store.traces()[0]["services"] == []
    ingest(store, [started(NODE_B, "billing")])
    (t,) = store.traces({"service": "billing"})
    assert t["services"] == ["billing"] and t["root_service"] is None  # the root's node is still unknown
    ingest(store, [started(NODE_A, "gateway")])
    (t,) = store.traces({"service": "gateway"})
    assert t["services"] == ["billing", "gateway"] and t["root_service"] == "gateway"


# -- single records ----------------------------------------------------------------------------


def test_record_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="no record"):
        store.record("nope")


def test_a_trace_is_found_by_the_start_of_its_id(store: Store) -> None:
    """At least 8 characters, any case; a start shared by several traces names them, and a longer one picks one."""
    twins = ["abcdef01" + "23" * 12, "abcdef01" + "45" * 12]
    ingest(store, [*checkout_trace(twins[0]), *checkout_trace(twins[1], start=1000), *checkout_trace("c3" * 16)])
    assert store.trace_spans(twins[1][:10].upper()).trace_id == twins[1]
    assert store.trace_rows("c3" * 4).trace_id == "c3" * 16
    with pytest.raises(AmbiguousId) as info:
        store.trace_spans(twins[0][:8])
    assert info.value.candidates == twins
    assert all(t in str(info.value) for t in twins) and "\n" not in str(info.value)
    with pytest.raises(NotFound, match="at least its first 8 characters"):
        store.trace_records("abcdef0")
    with pytest.raises(NotFound, match="no trace 'abcdef09'"):
        store.trace_spans("abcdef09")


def test_a_record_is_found_by_the_start_or_the_end_of_its_id(store: Store) -> None:
    """A UUIDv7 starts with its millisecond, the same for every record of a moment: ``story`` and ``tail`` print
    an id's end, which names it as well as its start does."""
    same_moment = [rec("log", "app", 1, message=f"m{i}") for i in range(3)]
    same_end = [
        msgspec.structs.replace(rec("log", "app", 2, message="first"), id="0000aaaa-0000-7000-8000-123456789abc"),
        msgspec.structs.replace(rec("log", "app", 3, message="second"), id="0000bbbb-0000-7000-8000-123456789abc"),
    ]
    ingest(store, [*same_moment, *same_end])
    for r in same_moment:
        assert store.record(r.id[-12:])["message"] == r.message
        assert store.record(r.id[:-4].upper())["message"] == r.message
    with pytest.raises(AmbiguousId) as info:
        store.record(same_moment[0].id[:13])
    assert info.value.candidates == sorted(r.id for r in same_moment)
    with pytest.raises(AmbiguousId) as info:
        store.record("123456789abc")
    assert info.value.candidates == sorted(r.id for r in same_end)
    assert store.record("0000bbbb")["message"] == "second"
    with pytest.raises(NotFound, match="at least its first 8 characters"):
        store.record(same_moment[0].id[-7:])


def test_rows_carry_exactly_the_read_model_fields(store: Store) -> None:
    """The store's rows are named as the read model's fields, in its order (the JSON contract)."""
    records = [started(NODE_A, "gateway"), *checkout_trace()]
    ingest(store, records)
    record_fields = list(model.RecordView.__struct_fields__)
    node_fields = list(model.NodeView.__struct_fields__)
    assert list(store.record(records[1].id)) == record_fields
    assert [list(r) for r in store.tail()] == [record_fields] * len(records)
    assert [list(n) for n in store.nodes()] == [node_fields, node_fields]  # NODE_B is known by its records only
    assert list(store.node(NODE_A)) == node_fields
    assert [list(t) for t in store.traces()] == [list(model.TraceSummary.__struct_fields__)]
    rows = store.trace_rows("a1" * 16)
    assert rows.trace_id == "a1" * 16 and len(rows.records) == len(records) - 1
    assert all(list(r) == record_fields for r in rows.records)
    assert sorted(n["node_id"] for n in rows.nodes) == sorted([NODE_A, NODE_B])
    # Rows converted to the read model and back are the same values.
    for rows_of, view in (
        (rows.records, model.RecordView),
        (rows.nodes, model.NodeView),
        (store.traces(), model.TraceSummary),
    ):
        assert [msgspec.to_builtins(msgspec.convert(row, view)) for row in rows_of] == rows_of


def test_trace_rows_refuses_a_trace_above_max_records_before_reading_it(store: Store) -> None:
    records = checkout_trace()
    ingest(store, records)
    size = len(records)  # every record of checkout_trace is in the trace
    assert len(store.trace_rows("a1" * 16, max_records=size).records) == size
    with pytest.raises(TooLarge, match=f"has {size} records, more than {size - 1} in one piece"):
        store.trace_rows("a1a1a1a1", max_records=size - 1)  # by a prefix too


def test_lineage_is_transitive_both_ways_with_a_depth_limit(store: Store) -> None:
    a = rec("event", "A", 1)
    b = rec("event", "B", 2, sources=[a.id])
    c = rec("event", "C", 3, sources=[b.id])
    d = rec("event", "D", 4, sources=[c.id, a.id])
    e = rec("event", "E", 5, sources=[d.id])
    unrelated = rec("event", "X", 6)
    ingest(store, [a, b, c, d, e, unrelated])

    def lineage(record_id: str, **depth: int) -> Any:
        return msgspec.to_builtins(query.lineage(store, record_id, **depth))

    lin = lineage(c.id)
    assert lin["record"]["id"] == c.id
    assert [(r["id"], r["depth"]) for r in lin["upstream"]] == [(b.id, 1), (a.id, 2)]
    assert [(r["id"], r["depth"]) for r in lin["downstream"]] == [(d.id, 1), (e.id, 2)]
    lin_a = lineage(a.id)
    assert lin_a["upstream"] == []
    # d derives from a directly and through b, c: listed once, at its shortest distance
    assert [(r["id"], r["depth"]) for r in lin_a["downstream"]] == [(b.id, 1), (d.id, 1), (c.id, 2), (e.id, 2)]
    assert [r["id"] for r in lineage(a.id, depth=1)["downstream"]] == [b.id, d.id]
    with pytest.raises(NotFound):
        lineage("missing")


def test_search_message_and_attrs_newest_first(store: Store) -> None:
    old = rec("log", "app", 1, message="Order 7 shipped")
    new = rec("log", "app", 2, message="order 7 cancelled")
    attr = rec("log", "app", 3, message="other", attrs={"note": "ORDER 7 refunded"})
    miss = rec("log", "app", 4, message="order 8")
    pct = rec("log", "app", 5, message="50% off")
    ingest(store, [old, new, attr, miss, pct])
    assert [r["id"] for r in store.search("order 7")] == [attr.id, new.id, old.id]
    assert [r["id"] for r in store.search("order 7", limit=2)] == [attr.id, new.id]
    assert [r["id"] for r in store.search("0%")] == [pct.id]
    assert store.search("0_ off") == []


def test_search_finds_recent_and_old_records(store: Store) -> None:
    now = time.time_ns()
    recent = Record(id=uuid7(now), kind="log", type="app", ts_ns=now, node_id=NODE_A, message="needle now")
    day_old = Record(
        id=uuid7(now - 2 * 86_400 * 10**9),
        kind="log",
        type="app",
        ts_ns=now - 2 * 86_400 * 10**9,
        node_id=NODE_A,
        message="needle then",
    )
    ancient = rec("log", "app", 1, message="needle long ago")
    ancient.ts_ns = 10**18  # 2001
    ingest(store, [ancient, day_old, recent])
    assert [r["message"] for r in store.search("NEEDLE")] == ["needle now", "needle then", "needle long ago"]
    assert [r["message"] for r in store.search("needle", limit=2)] == ["needle now", "needle then"]


def test_tail_follows_ingestion_order(store: Store) -> None:
    first = [rec("log", "app", i, message=f"m{i}") for i in (5, 1, 3)]
    late_but_old = rec("log", "app", 0, message="late")  # older timestamp, ingested later
    ingest(store, first)
    ingest(store, [late_but_old])
    assert [r["message"] for r in store.tail()] == ["m1", "m3", "m5", "late"]
    assert [r["message"] for r in store.tail(after_id=first[0].id)] == ["late"]  # m5 was the last of batch 1
    assert [r["message"] for r in store.tail(after_id=first[1].id)] == ["m3", "m5", "late"]
    assert [r["message"] for r in store.tail(limit=2, last=True)] == ["m5", "late"]
    assert store.tail(after_id=late_but_old.id) == []
    with pytest.raises(NotFound):
        store.tail(after_id="unknown")


def test_tail_gives_the_records_of_one_write_in_time_order(store: Store) -> None:
    """Not in the order of their ids: within a millisecond a UUIDv7 is random. A span comes before the records of
    its own instant (it starts before what happens in it)."""
    at = T0 + 7 * MS

    def made(id_: str, kind: str, ts: int, message: str) -> Record:
        return Record(id=id_, kind=kind, type="t", ts_ns=ts, node_id=NODE_A, message=message, trace_id="d4" * 16)

    batch = [  # ids in the opposite order of time
        made("id-1", "log", at + 900, "last"),
        made("id-2", "log", at + 500, "in the span"),
        made("id-3", "log", at + 100, "same instant as the span"),
        made("id-4", "span", at + 100, "span"),
        made("id-5", "log", at, "first"),
    ]
    ingest(store, batch)
    ingest(store, [made("id-0", "log", at - 5000, "written later")])
    expected = ["first", "span", "same instant as the span", "in the span", "last", "written later"]
    assert [r["message"] for r in store.tail()] == expected
    assert [r["message"] for r in store.tail(limit=3, last=True)] == expected[-3:]
    assert [r["message"] for r in store.tail(after_id="id-4")] == expected[2:]
    assert [r["message"] for r in store.tail(after_id="id-3", limit=2)] == expected[3:5]


# -- read-only SQL: what both dialects do (each store's own SQL is tested in its file) ---------


# Statements both SQL dialects read as writes (DuckDB-only and ClickHouse-only ones are in their files).
@pytest.mark.parametrize(
    "query",
    [
        "INSERT INTO records (id) VALUES ('x')",
        "INSERT INTO meta SELECT 'k', 'v'",
        "WITH x AS (SELECT 1) INSERT INTO meta SELECT 'k', 'v' FROM x",
        "DELETE FROM records WHERE true",
        "UPDATE records SET message = 'x' WHERE true",
        "TRUNCATE records",
        "DROP TABLE records",
        "CREATE TABLE t (a INT)",
        "ALTER TABLE records ADD COLUMN x INT",
        "SET threads = 1",
        "BEGIN TRANSACTION",
        "SELECT 1; DELETE FROM records",
        "SELECT 1; SELECT 2",
        "DELETE FROM records; SELECT 1",
    ],
)
def test_sql_rejects_anything_but_one_read(store: Store, query: str) -> None:
    ingest(store, [rec("log", "app", 1, message="keep me")])
    meta = store.sql("SELECT * FROM meta ORDER BY key")[1]
    with pytest.raises(ReadOnlySQL):
        store.sql(query)
    assert store.sql("SELECT message FROM records")[1] == [("keep me",)]
    assert store.sql("SELECT * FROM meta ORDER BY key")[1] == meta


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT message FROM records", [("hello",)]),
        ("  select count(*) AS n from records ; ", [(1,)]),
        ("WITH x AS (SELECT kind FROM records) SELECT * FROM x", [("log",)]),
        ("FROM records SELECT level", [("INFO",)]),
    ],
)
def test_sql_reads(store: Store, query: str, expected: list[tuple[Any, ...]]) -> None:
    ingest(store, [rec("log", "app", 1, message="hello", level="INFO")])
    assert store.sql(query)[1] == expected


def test_sql_max_rows(store: Store) -> None:
    ingest(store, [rec("log", "app", i, message=f"m{i}") for i in range(5)])
    columns, rows = store.sql("SELECT message FROM records ORDER BY ts_ns", max_rows=2)
    assert list(columns) == ["message"] and rows == [("m0",), ("m1",)]
    assert len(store.sql("SELECT * FROM records")[1]) == 5


def test_sql_errors(store: Store) -> None:
    with pytest.raises(StoreError, match=r"(?i)SQL error.*no_such_table"):
        store.sql("SELECT * FROM no_such_table")
    with pytest.raises(StoreError, match=r"(?i)SQL error"):
        store.sql("SELEC oops")
    # the session still works after failed queries
    assert store.sql("SELECT 42")[1] == [(42,)]
