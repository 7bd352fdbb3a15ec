"""Records as JSON lines (the spool's ``JSON_LINES`` frames, version 2): ``encode_records`` and
``SegmentWriter.write_records`` write them, ``read_segment(decode=False)`` hands them on undecoded, and both
stores' ``prepare(records, lines)`` store them as they would the same records given as ``Record`` objects.

Every store is real (a DuckDB file or a chDB directory under tmp_path; chDB opens one directory per process at
a time, so a store is closed before another is opened) and every spool is written by the real
``SegmentWriter``. Expected values are derived from the records written.
"""

from __future__ import annotations

import hashlib
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest

from support.records import MS, NODE_A, NODE_B, T0, checkout_trace, rec, started
from support.stores import ENGINES, open_store
from zoomtrace.collect.spool_ingest import ingest_spool
from zoomtrace.read import query
from zoomtrace.store import Store, WriteReport
from zoomtrace.wire.record import Code, Error, Frame, Link, Record, encoder, uuid7
from zoomtrace.wire.spool import (
    HEADER,
    JSON_LINES,
    MAGIC,
    MSGPACK,
    SegmentWriter,
    encode_records,
    read_segment,
    segment_name,
)

_json = msgspec.json.Encoder()


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(engine: str, tmp_path: Path) -> Iterator[Store]:
    s = open_store(engine, tmp_path / "store")
    try:
        yield s
    finally:
        s.close()


def json_blocks(records: Sequence[Record], size: int) -> list[bytes]:
    """``records`` as blocks of JSON lines of ``size`` records each, as ``encode_records`` frames them."""
    blocks = []
    for at in range(0, len(records), size):
        ((version, payload),) = encode_records(list(records[at : at + size]))
        assert version == JSON_LINES
        blocks.append(payload)
    return blocks


def write(store: Store, records: Sequence[Record] = (), lines: Sequence[bytes] = ()) -> WriteReport:
    return store.write(store.prepare(list(records), lines))


def stored_ids(store: Store) -> list[str]:
    return sorted(str(r[0]) for r in store.sql("SELECT DISTINCT id FROM records")[1])


# -- the records ------------------------------------------------------------------------------------

TID = "7a" * 16
ROOT, CHILD, GRAND = "a1" * 8, "b2" * 8, "c3" * 8


def varied() -> list[Record]:
    """Records of every kind and of many shapes (node records, spans with links, errors and code, logs with
    nested attributes and awkward text, events with payloads of every JSON shape), one id repeated."""
    records = [
        started(NODE_A, "gateway"),
        started(NODE_B, "billing", env="staging", ts=-4000),
        rec(
            "node",
            "repo",
            -3900,
            attrs={"root": "/src/lib", "head": "beef", "branch": "dev", "dirty": ["x.py"], "problem": None},
        ),
        rec("node", "lost", -3500, node=NODE_B, attrs={"lost": {"queue_full": 2}, "total": 2}),
        rec(
            "span",
            "POST /checkout",
            0,
            trace_id=TID,
            span_id=ROOT,
            end_ns=T0 + 100 * MS,
            links=[Link("12" * 16, "34" * 8), Link("56" * 16, "78" * 8)],
            code=Code("gw/app.py", 10, "checkout", "c0ffee", True),
            attrs={"http.method": "POST", "http.status_code": 200},
            cpu_ns=1234,
            thread="MainThread",
            on_behalf_of="user-7",
            sources=["src-1", "src-2"],
        ),
        rec(
            "span",
            "charge",
            20,
            node=NODE_B,
            trace_id=TID,
            span_id=CHILD,
            parent_span_id=ROOT,
            end_ns=T0 + 120 * MS,
            status="error",
            code=Code("billing/pay.py", 88, "charge", "deadbeef"),  # not dirty: the field is omitted
            error=Error("CardDeclined", 'insufficient "funds"\nretry', [Frame("billing/pay.py", 90, "charge")]),
        ),
        rec(
            "span",
            "ledger",
            30,
            node=NODE_B,
            trace_id=TID,
            span_id=GRAND,
            parent_span_id=CHILD,
            end_ns=T0 + 40 * MS,
            code=Code("/abs/ledger.py", 1, "write"),
        ),
        rec(
            "log",
            "app",
            5,
            trace_id=TID,
            span_id=ROOT,
            level="INFO",
            message='line one\nline "two"\ttab \\ back\\slash café ☕ \u2028 \x01 end',
            template="line {n}",
            attrs={"nested": {"list": [1, 2.5, None, True, "ü"], "deep": {"k": {"x": []}}}, "n": 1},
            code=Code("gw/app.py", 12, "checkout"),
        ),
        rec("log", "app", 25, node=NODE_B, trace_id=TID, span_id=CHILD, level="ERROR", message="card declined 😱"),
        rec("log", "print", 50, level="WARNING", message=""),  # outside any trace
    ]
    payloads: list[Any] = [
        {"order": 7, "items": [{"sku": "A", "qty": 2}], "note": 'naïve\n"quoted"'},
        [1, "two", None, 3.5, {"k": "v"}],
        "just text",
        'a "string" with\nescapes \\ and ☕',
        "",
        42,
        -7,
        2.5,
        0.1,
        1e-7,
        True,
        False,
        None,
        {"big": 2**70, "unicode": "日本語", "emoji": "🎉", "ctl": "\x00\x1f"},
        [],
        {},
    ]
    records += [
        rec("event", f"E{i}", 60 + i, trace_id=TID if i % 2 else None, span_id=GRAND if i % 2 else None, payload=p)
        for i, p in enumerate(payloads)
    ]
    records.append(records[7])  # a repeated id: the first copy counts (both copies are the same)
    return records


# -- 1. the same records, as records or as lines, make the same store -------------------------------


def columns_but_arrival(store: Store) -> list[str]:
    """The columns of ``records`` but the arrival order (``ingest_seq``), which differs between two writes."""
    columns, _ = store.sql("SELECT * FROM records LIMIT 1")
    assert "ingest_seq" in columns
    return [c for c in columns if c != "ingest_seq"]


def snapshot(store: Store, records: Sequence[Record]) -> dict[str, Any]:
    """What a store holds of ``records``: every row (but arrival order), nodes, traces, each record."""
    cols = columns_but_arrival(store)
    got_cols, rows = store.sql(f"SELECT {', '.join(cols)} FROM records ORDER BY id")
    return {
        "columns": list(got_cols),
        "rows": rows,
        "nodes": store.nodes(),
        "traces": store.traces(),
        "records": {r.id: store.record(r.id) for r in records},
    }


@pytest.mark.parametrize("block_size", [1, 7, 100])
def test_records_and_lines_make_the_same_store(engine: str, tmp_path: Path, block_size: int) -> None:
    records = varied()
    distinct = len({r.id for r in records})
    assert distinct == len(records) - 1

    s = open_store(engine, tmp_path / "as-records")
    try:
        by_records = write(s, records)
        assert stored_ids(s) == sorted({r.id for r in records})
        as_records = snapshot(s, records)
    finally:
        s.close()

    blocks = json_blocks(records, block_size)
    assert b"".join(blocks) == _json.encode_lines(records)  # the same lines, however they are cut
    s = open_store(engine, tmp_path / "as-lines")
    try:
        by_lines = write(s, [], blocks)
        assert stored_ids(s) == sorted({r.id for r in records})
        as_lines = snapshot(s, records)
    finally:
        s.close()

    assert by_records == by_lines == WriteReport(new=distinct, skipped=[])
    assert as_lines["columns"] == as_records["columns"]
    assert len(as_lines["rows"]) == len(as_records["rows"]) == distinct
    for a, b in zip(as_lines["rows"], as_records["rows"], strict=True):
        assert a == b
    assert as_lines["nodes"] == as_records["nodes"]
    assert as_lines["traces"] == as_records["traces"]
    for r in records:
        assert as_lines["records"][r.id] == as_records["records"][r.id], r.type
    # and both are the records written: payloads, text and code come back as given
    for r in records:
        got = as_lines["records"][r.id]
        assert (got["kind"], got["type"], got["ts_ns"], got["node_id"]) == (r.kind, r.type, r.ts_ns, r.node_id)
        assert got["payload"] == r.payload, r.type
        assert got["message"] == r.message
        assert got["attrs"] == r.attrs
        if r.code is not None:
            assert got["code"] == {
                "file": r.code.file,
                "line": r.code.line,
                "function": r.code.function,
                "commit": r.code.commit,
                "dirty": r.code.dirty,
            }
        if r.links:
            assert got["links"] == [{"trace_id": link.trace_id, "span_id": link.span_id} for link in r.links]
    services = {n["node_id"]: n["service"] for n in as_lines["nodes"]}
    assert services == {NODE_A: "gateway", NODE_B: "billing"}
    (trace,) = as_lines["traces"]
    in_trace = [r for r in records[:-1] if r.trace_id == TID]
    assert trace["trace_id"] == TID
    assert trace["span_count"] == sum(r.kind == "span" for r in in_trace)
    assert trace["record_count"] == len(in_trace)
    assert trace["error"] is True


def test_records_and_lines_in_one_batch(store: Store) -> None:
    records = varied()[:-1]
    half = len(records) // 2
    report = write(store, records[:half], json_blocks(records[half:], 5))
    assert report == WriteReport(new=len(records), skipped=[])
    assert stored_ids(store) == sorted(r.id for r in records)
    assert [store.record(r.id)["payload"] for r in records] == [r.payload for r in records]


# -- 2. repeated ids ----------------------------------------------------------------------------------


def logs(start: int, n: int) -> list[Record]:
    return [rec("log", "app", start + i, message=f"m{start + i}", level="INFO") for i in range(n)]


def test_repeats_within_and_across_blocks_and_records_count_once(store: Store) -> None:
    a, b, c, d, e, f = logs(0, 6)
    block1 = _json.encode_lines([a, b, a, c])  # a twice in one block
    block2 = _json.encode_lines([c, d])  # c again, in another block
    report = write(store, [e, b], [block1, block2, _json.encode_lines([e, f, f])])  # e and b: records and lines
    assert report == WriteReport(new=6, skipped=[])
    assert stored_ids(store) == sorted(r.id for r in (a, b, c, d, e, f))


def test_lines_already_stored_are_not_new(store: Store) -> None:
    old = logs(0, 4)
    assert write(store, old[:2], [_json.encode_lines(old[2:])]).new == 4
    fresh = logs(10, 3)
    # every old one again, in lines and records, and the new ones among them, some twice
    block = _json.encode_lines([old[0], fresh[0], old[3], fresh[1], fresh[0]])
    report = write(store, [old[1], fresh[2], old[2]], [block, _json.encode_lines([fresh[2], old[0]])])
    assert report == WriteReport(new=len(fresh), skipped=[])
    assert write(store, [], [_json.encode_lines([*old, *fresh])]) == WriteReport(new=0, skipped=[])
    assert count_rows(store) == len(old) + len(fresh)
    assert [store.record(r.id)["message"] for r in (*old, *fresh)] == [r.message for r in (*old, *fresh)]


def count_rows(store: Store) -> int:
    return int(store.sql("SELECT count(DISTINCT id) FROM records")[1][0][0])


def test_a_repeated_line_keeps_its_first_copy(store: Store) -> None:
    first = rec("log", "app", 1, message="first")
    second = msgspec.structs.replace(first, message="second")
    report = write(store, [], [_json.encode_lines([first]), _json.encode_lines([second, first])])
    assert report.new == 1
    assert store.record(first.id)["message"] == "first"


# -- 3. a block that is not all records ------------------------------------------------------------


def test_lines_that_are_no_record_are_skipped_and_reported(store: Store) -> None:
    good = logs(0, 4)
    no_id = _json.encode({"kind": "log", "type": "app", "ts_ns": T0, "node_id": NODE_A, "message": "no id"})
    wrong_type = _json.encode({**msgspec.to_builtins(good[0]), "id": uuid7(T0), "ts_ns": "soon"})
    block = b"".join(
        [
            _json.encode(good[0]) + b"\n",
            b"this is not json\n",
            _json.encode(good[1]) + b"\n",
            no_id + b"\n",
            b"[1, 2, 3]\n",
            _json.encode(good[2]) + b"\n",
            wrong_type + b"\n",
            b"\n",  # an empty line is no record and no problem either
        ]
    )
    bad = 4
    report = write(store, [], [block, _json.encode_lines(good[3:])])
    assert report.new == len(good)
    assert len(report.skipped) == bad
    assert all("does not decode" in line for line in report.skipped)
    assert stored_ids(store) == sorted(r.id for r in good)
    assert [store.record(r.id)["message"] for r in good] == [r.message for r in good]


def test_two_records_on_one_line_are_no_record_even_beside_a_repeated_id(store: Store) -> None:
    """msgspec reads values that share a line: such a line must be left out and reported, not taken for two
    records (nor break the pairing of lines and records that repeated ids need)."""
    a, b, c = logs(0, 3)
    shared = _json.encode(b) + _json.encode(c) + b"\n"
    block = _json.encode_lines([a]) + shared + _json.encode_lines([a])  # a twice: its repeat is dropped
    report = write(store, [], [block])
    assert report.new == 1 and len(report.skipped) == 1 and "does not decode" in report.skipped[0]
    assert stored_ids(store) == [a.id]


def test_a_block_of_nothing_but_bad_lines(store: Store) -> None:
    report = write(store, [], [b"{}\n", b"not json at all\n"])
    assert report.new == 0 and len(report.skipped) == 2
    assert count_rows(store) == 0
    assert write(store, logs(0, 1)).new == 1  # the store still takes records


# -- 4. values a column cannot hold ------------------------------------------------------------------


def test_a_code_line_beyond_its_column_in_lines(store: Store) -> None:
    lines = {"too-high": 2**31, "too-low": -(2**31) - 1, "far": 2**40, "highest": 2**31 - 1, "lowest": -(2**31)}
    records = {
        name: rec("log", "app", i, message=name, code=Code("app.py", line, "handler"))
        for i, (name, line) in enumerate(lines.items(), 1)
    }
    report = write(store, [], json_blocks(list(records.values()), 2))
    assert report.new == len(records)
    for name, r in records.items():
        got = store.record(r.id)
        assert got["message"] == name and got["code"]["file"] == "app.py"
        assert got["code"]["line"] == (lines[name] if lines[name] in range(-(2**31), 2**31) else None), name
    reported = {name for name, r in records.items() if any(r.id in line for line in report.skipped)}
    assert reported == {name for name, line in lines.items() if line not in range(-(2**31), 2**31)}
    assert len(report.skipped) == len(reported)
    assert all("stored without its code line" in line for line in report.skipped)


def test_a_time_beyond_its_column_in_lines_is_skipped_and_the_rest_stored(store: Store) -> None:
    good = logs(0, 3)
    bad_time = Record(id=uuid7(T0), kind="log", type="app", ts_ns=2**63 + 5, node_id=NODE_A, message="future")
    block = _json.encode_lines([good[0], bad_time, good[1]])
    assert str(2**63 + 5).encode() in block
    report = write(store, [], [block, _json.encode_lines(good[2:])])
    assert report.new == len(good)
    assert len(report.skipped) == 1
    assert bad_time.id in report.skipped[0] and "ts_ns" in report.skipped[0]
    assert stored_ids(store) == sorted(r.id for r in good)
    assert sorted(p["problem"] for p in store.problems()) == sorted(report.skipped)


def test_a_time_beyond_its_column_in_a_hand_written_line(store: Store) -> None:
    good = logs(0, 2)
    rid = uuid7(T0 + 5 * MS)
    hand = f'{{"id":"{rid}","kind":"log","type":"app","ts_ns":{2**63 + 5},"node_id":"{NODE_A}","message":"x"}}'
    report = write(store, [], [_json.encode(good[0]) + b"\n" + hand.encode() + b"\n" + _json.encode(good[1]) + b"\n"])
    assert report.new == 2
    assert len(report.skipped) == 1 and rid in report.skipped[0]
    assert stored_ids(store) == sorted(r.id for r in good)


# -- 5. the spool, end to end ------------------------------------------------------------------------


def frames(path: Path) -> list[tuple[int, int, int]]:
    """(version, payload offset, payload length) of each frame of the segment ``path``, read by hand."""
    data = path.read_bytes()
    out, pos = [], 0
    while pos < len(data):
        magic, version, _flags, length, crc = HEADER.unpack_from(data, pos)
        assert magic == MAGIC
        payload = data[pos + HEADER.size : pos + HEADER.size + length]
        assert len(payload) == length and zlib.crc32(payload) == crc
        out.append((version, pos + HEADER.size, length))
        pos += HEADER.size + length
    return out


def raw(ts: int, data: bytes, node: str = NODE_A) -> Record:
    return rec("raw", "upload", ts, node=node, attrs={"raw.format": "bin"}, payload=data)


def key(r: Record) -> str:
    """A record as a hashable value (``repr`` keeps a bytes payload apart from a string, 1 apart from 1.0)."""
    return repr(r)


def spooled() -> list[Record]:
    """Records for a spool: varied ones, and raw ones whose payload is bytes."""
    records = varied()[:-1]
    blobs = [b"\x00\x01binary\xff" * 3, b"", "café".encode(), bytes(range(256))]
    return [*records[:8], *(raw(200 + i, data) for i, data in enumerate(blobs)), *records[8:]]


def test_write_records_makes_frames_of_both_versions(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    records = spooled()
    text = [r for r in records if not isinstance(r.payload, bytes)]
    binary = [r for r in records if isinstance(r.payload, bytes)]
    w = SegmentWriter(spool, NODE_A)
    w.write_records(records)
    w.write_records(text[:3])
    w.write_records(binary[:1])
    w.close()
    path = spool / segment_name(NODE_A, 1)
    assert [v for v, _, _ in frames(path)] == [JSON_LINES, MSGPACK, JSON_LINES, MSGPACK]
    data = path.read_bytes()
    (_, at, n) = frames(path)[0]
    assert data[at : at + n] == _json.encode_lines(text)  # one line a record, each ended by a newline
    assert data[at : at + n].count(b"\n") == len(text)

    everything = [*records, *text[:3], *binary[:1]]
    got = read_segment(path)
    assert got.problems == [] and got.lines == [] and got.line_count == 0
    assert Counter(map(key, got.records)) == Counter(map(key, everything))

    undecoded = read_segment(path, decode=False)
    assert undecoded.problems == []
    assert undecoded.lines == [_json.encode_lines(text), _json.encode_lines(text[:3])]
    assert undecoded.line_count == len(text) + 3
    assert Counter(map(key, undecoded.records)) == Counter(map(key, [*binary, *binary[:1]]))
    assert undecoded.offset == got.offset == path.stat().st_size


def test_records_without_bytes_make_one_json_frame_and_bytes_alone_one_msgpack(tmp_path: Path) -> None:
    logs3 = logs(0, 3)
    assert encode_records(logs3) == [(JSON_LINES, _json.encode_lines(logs3))]
    only = [raw(1, b"\xff")]
    assert encode_records(only) == [(MSGPACK, encoder.encode(only))]


def test_ingest_spool_stores_both_versions_with_blobs(store: Store, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    records = spooled()
    w = SegmentWriter(spool, NODE_A)
    w.write_records(records[:10])
    w.write_records(records[10:])
    w.write_records(records[3:6])  # repeats, already in the spool
    w.close()
    report = ingest_spool(store, spool)
    assert report.problems == []
    assert report.records == len(records) + 3
    assert report.new == len(records)
    assert stored_ids(store) == sorted(r.id for r in records)
    for r in records:
        got = store.record(r.id)
        if isinstance(r.payload, bytes):
            digest = hashlib.sha256(r.payload).hexdigest()
            assert got["payload"] is None and got["payload_blob"] == digest
            assert store.blob(digest) == r.payload
            assert got["attrs"]["raw.sha256"] == digest and got["attrs"]["raw.size"] == len(r.payload)
        else:
            assert got["payload"] == r.payload, r.type
            assert got["message"] == r.message
    again = ingest_spool(store, spool)
    assert (again.records, again.new, again.problems) == (0, 0, [])


def test_legacy_msgpack_frames_and_new_frames_in_one_segment(store: Store, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    records = spooled()
    old, new = records[:9], records[9:]
    w = SegmentWriter(spool, NODE_B)
    w.write(encoder.encode(old[:4]))  # as every segment was written before version 2
    w.write_records(new[:5])
    w.write(encoder.encode(old[4:]))
    w.write_records(new[5:])
    w.close()
    path = spool / segment_name(NODE_B, 1)
    versions = [v for v, _, _ in frames(path)]
    assert versions.count(JSON_LINES) >= 2 and versions.count(MSGPACK) >= 3
    report = ingest_spool(store, spool)
    assert (report.records, report.new, report.problems) == (len(records), len(records), [])
    assert stored_ids(store) == sorted(r.id for r in records)
    for r in records:
        if isinstance(r.payload, bytes):
            assert store.blob(hashlib.sha256(r.payload).hexdigest()) == r.payload
        else:
            assert store.record(r.id)["payload"] == r.payload


def test_a_corrupt_json_frame_is_reported_and_the_frames_after_it_ingested(store: Store, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    parts = [logs(0, 3), logs(10, 4), [raw(20, b"\x00after")], logs(30, 2)]
    w = SegmentWriter(spool, NODE_A)
    for part in parts:
        w.write_records(part)
    w.close()
    path = spool / segment_name(NODE_A, 1)
    layout = frames(path)
    assert [v for v, _, _ in layout] == [JSON_LINES, JSON_LINES, MSGPACK, JSON_LINES]
    data = bytearray(path.read_bytes())
    _, at, n = layout[1]
    data[at + n // 2] ^= 0xFF  # a byte inside the second frame's payload
    path.write_bytes(bytes(data))
    report = ingest_spool(store, spool)
    kept = [*parts[0], *parts[2], *parts[3]]
    assert report.new == len(kept) and report.records == len(kept)
    assert len(report.problems) == 1 and path.name in report.problems[0] and "checksum" in report.problems[0]
    assert stored_ids(store) == sorted(r.id for r in kept)
    assert store.blob(hashlib.sha256(b"\x00after").hexdigest()) == b"\x00after"
    assert [p["problem"] for p in store.problems()] == report.problems
    assert ingest_spool(store, spool).problems == []  # reported once


def test_a_json_frame_of_a_bad_line_with_a_right_checksum(store: Store, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    good = logs(0, 3)
    w = SegmentWriter(spool, NODE_A)
    w.write(_json.encode_lines(good[:2]) + b'{"id": "x"}\n', JSON_LINES)  # a writer that wrote something else
    w.write_records(good[2:])
    w.close()
    report = ingest_spool(store, spool)
    assert report.new == len(good)
    assert len(report.problems) == 1 and "does not decode" in report.problems[0]
    assert stored_ids(store) == sorted(r.id for r in good)
    # read decoded, the bad line is reported and costs only itself
    decoded = read_segment(spool / segment_name(NODE_A, 1))
    assert len(decoded.problems) == 1 and "line 3 of the frame" in decoded.problems[0]
    assert sorted(r.id for r in decoded.records) == sorted(r.id for r in good)


# -- 6. the story is the same -------------------------------------------------------------------------


def story_records() -> list[Record]:
    """A trace across two nodes, with its node records, a raw record in it and an event of every shape."""
    records = [started(NODE_A, "gateway"), started(NODE_B, "billing", env="staging", ts=-4000)]
    records += checkout_trace(TID)
    records += [r for r in varied() if r.trace_id == TID]
    records.append(raw(70, b"\x00\x01trace blob", NODE_B))
    records[-1].trace_id, records[-1].span_id = TID, "22" * 8
    return records


def told(store: Store) -> Any:
    return msgspec.json.decode(msgspec.json.encode(query.story(store, TID)))


def test_the_story_from_a_spool_of_lines_is_the_story_from_records(engine: str, tmp_path: Path) -> None:
    records = story_records()
    distinct = {r.id for r in records}
    s = open_store(engine, tmp_path / "records")
    try:
        assert write(s, records).new == len(distinct)
        expected = told(s)
    finally:
        s.close()

    spool = tmp_path / "spool"
    for node in (NODE_A, NODE_B):  # each node writes its own segment, in frames of a few records
        mine = [r for r in records if r.node_id == node]
        w = SegmentWriter(spool, node)
        for at in range(0, len(mine), 4):
            w.write_records(mine[at : at + 4])
        w.close()
    versions = {v for p in spool.iterdir() for v, _, _ in frames(p)}
    assert versions == {JSON_LINES, MSGPACK}
    s = open_store(engine, tmp_path / "spool-store")
    try:
        report = ingest_spool(s, spool)
        assert (report.new, report.problems) == (len(distinct), [])
        got = told(s)
    finally:
        s.close()

    assert got == expected
    # and it is the story of the records written: both nodes, every span, every record of the trace
    assert got["trace_id"] == TID
    assert {n["node_id"]: n["service"] for n in got["nodes"]} == {NODE_A: "gateway", NODE_B: "billing"}
    spans, shown = walk(got["spans"])
    in_trace = [r for r in records if r.trace_id == TID]
    assert sorted(spans) == sorted(r.span_id for r in in_trace if r.kind == "span")
    shown += [r["id"] for r in got["records"]]
    assert sorted(shown) == sorted({r.id for r in in_trace if r.kind != "span"})  # varied() repeats an id
    blob = next(r for r in records if isinstance(r.payload, bytes))
    assert hashlib.sha256(blob.payload).hexdigest() in str(got)


def walk(spans: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The span ids of a story's span tree and the ids of the records attached to them."""
    ids: list[str] = []
    records: list[str] = []
    for span in spans:
        ids.append(span["span_id"])
        records += [r["id"] for r in span.get("records", [])]
        more_ids, more_records = walk(span.get("children", []))
        ids += more_ids
        records += more_records
    return ids, records


# -- blocks as no Zoom writer writes them --------------------------------------------------------------


def test_a_blank_line_in_a_block_costs_no_record(engine: str, tmp_path: Path) -> None:
    s = open_store(engine, tmp_path / "store")
    try:
        a, b, c, d = logs(0, 4)
        assert write(s, [a]).new == 1
        report = write(s, [], [_json.encode_lines([b]) + b"\n", _json.encode_lines([a, c, d])])
        assert report == WriteReport(new=3, skipped=[])
        assert stored_ids(s) == sorted(r.id for r in (a, b, c, d))
        bad = Record(id=uuid7(T0 + 50 * MS), kind="log", type="app", ts_ns=2**63 + 5, node_id=NODE_A)
        e, f = logs(10, 2)
        report = write(s, [], [_json.encode(e) + b"\n\n" + _json.encode(bad) + b"\n" + _json.encode(f) + b"\n"])
        assert report.new == 2 and len(report.skipped) == 1 and bad.id in report.skipped[0]
        assert stored_ids(s) == sorted(r.id for r in (a, b, c, d, e, f))
    finally:
        s.close()


@pytest.mark.parametrize(
    ("field", "value"), [("links", 3), ("sources", 3), ("error", "boom"), ("attrs", [1]), ("cpu_ns", "12")]
)
def test_a_line_with_a_field_of_the_wrong_type_is_skipped(store: Store, field: str, value: object) -> None:
    good, bad = logs(0, 2)
    line = _json.encode({**msgspec.to_builtins(bad), field: value})
    report = write(store, [], [_json.encode(good) + b"\n" + line + b"\n"])
    assert report.new == 1 and len(report.skipped) == 1
    assert stored_ids(store) == [good.id]


# -- 7. long parts and long lines (DuckDB's read_json is told the longest line) ----------------------------


def test_read_json_is_told_the_longest_line_not_the_longest_part() -> None:
    from zoomtrace.store.duckdb._writer import _MIN_OBJECT_BOUND, _widest_line

    line = b"x" * 1000
    many = (line + b"\n") * (3 * _MIN_OBJECT_BOUND // len(line))  # a part three times the bound, of short lines
    assert _widest_line([many, line]) == _MIN_OBJECT_BOUND
    long = b"y" * (_MIN_OBJECT_BOUND + 12_345)
    for parts in ([many, line + b"\n" + long + b"\n" + line + b"\n"], [long], [long + b"\n" + many]):
        assert _widest_line(parts) == len(long)
