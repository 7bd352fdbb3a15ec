"""Records other than data events travel on Kafka as JSON text sequences (RFC 7464): 0x1E, the record's JSON,
a line feed (``zoom.encoding: json-seq``).

What the collector relies on: the first byte tells such a value from a business payload, without the headers;
the line it hands to the store is the record's JSON (a plain JSON parser reads the record's fields back from
it); a value that is not exactly one such text is refused with a reason; records whose payload is bytes, and the
msgpack records of earlier producers, still travel and decode; and the store's own test of a line
(``refused_line``) says exactly which lines its ``prepare`` leaves out, so the collector can tell them by their
place.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from confluent_kafka import Message

from support.records import NODE_A, rec, started
from zoomtrace.store import refused_line
from zoomtrace.store.duckdb import DuckStore
from zoomtrace.wire import kafka_codec
from zoomtrace.wire.kafka_codec import MalformedMessage
from zoomtrace.wire.record import Code, Record, encoder
from zoomtrace.wire.spool import count_lines

SPAN = rec("span", "GET /orders", 0, trace_id="ab" * 16, span_id="cd" * 8, end_ns=2, attrs={"route": "/orders"})
LOG = rec(
    "log",
    "app",
    1,
    trace_id="ab" * 16,
    span_id="ef" * 8,
    level="INFO",
    message='charged 12.5 for "7"\n',
    template="charged {amount} for {order}",
    attrs={"amount": 12.5, "order": "7", "ünï": "\x1e"},
    code=Code("app/orders.py", 42, "charge", "c0ffee", True),
)
RAW_TEXT = rec("raw", "body", 2, payload="plain text body")
RAW_BYTES = rec("raw", "body", 3, payload=b"\x00\x1e\xffbinary")
NODE = started(NODE_A, "shop")


def message(value: bytes | None, headers: list[tuple[str, bytes]] | None) -> Message:
    return Message(topic="prod.shop.log", partition=0, offset=7, key=None, value=value, headers=headers)


def header_map(headers: list[tuple[str, Any]]) -> dict[str, bytes]:
    return dict(headers)


@pytest.mark.parametrize("record", [SPAN, LOG, RAW_TEXT, NODE], ids=["span", "log", "raw text", "node"])
def test_a_record_is_one_json_text_of_a_sequence(record: Record) -> None:
    _, value, headers = kafka_codec.encode(record)
    assert header_map(headers)["zoom.encoding"] == b"json-seq"
    assert value[:1] == b"\x1e" and value.endswith(b"\n") and value.count(b"\n") == 1
    fields = json.loads(value[1:])  # any JSON parser reads the record back
    assert (fields["id"], fields["kind"], fields["type"], fields["node_id"], fields["ts_ns"]) == (
        record.id,
        record.kind,
        record.type,
        record.node_id,
        record.ts_ns,
    )
    assert fields.get("attrs", {}) == record.attrs
    assert kafka_codec.decode(value, headers) == record
    assert kafka_codec.decode_message(message(value, headers)) == record
    assert kafka_codec.decode_message(message(value, None)) == record  # the first byte is enough
    assert kafka_codec.record_line(value) == value[1:]


def test_a_bytes_payload_travels_as_msgpack() -> None:
    _, value, headers = kafka_codec.encode(RAW_BYTES)
    assert header_map(headers)["zoom.encoding"] == b"msgpack"
    assert kafka_codec.record_line(value) is None
    decoded = kafka_codec.decode_message(message(value, headers))
    assert decoded == RAW_BYTES and decoded.payload == b"\x00\x1e\xffbinary"


def test_earlier_producers_msgpack_records_are_still_read() -> None:
    headers = [("zoom.encoding", b"msgpack"), ("zoom.kind", b"log"), ("zoom.id", LOG.id.encode())]
    value = encoder.encode(LOG)
    assert kafka_codec.decode(value, headers) == LOG
    assert kafka_codec.decode_message(message(value, headers)) == LOG


GOOD_LINE = kafka_codec.encode(LOG)[1][1:]
BAD_FRAMES = {
    "no record separator": GOOD_LINE,
    "no line feed at the end": b"\x1e" + GOOD_LINE[:-1],
    "two texts": b"\x1e" + GOOD_LINE + b"\x1e" + GOOD_LINE,
    "two lines": b"\x1e" + GOOD_LINE + GOOD_LINE,
    "a line feed inside": b"\x1e" + GOOD_LINE[:20] + b"\n" + GOOD_LINE[20:],
    "empty": b"",
    "only the separator": b"\x1e",
    "nothing between": b"\x1e\n",
    "blank": b"\x1e  \n",
    "not an object": b'\x1e["a", 1]\n',
    "a space before the object": b"\x1e " + GOOD_LINE,
    "not UTF-8": b"\x1e" + GOOD_LINE.replace(b"charged", b"charg\xffd"),
}
BAD_RECORDS = {
    "a separator inside": b"\x1e" + GOOD_LINE[:20] + b"\x1e" + GOOD_LINE[20:],
    "two records on one line": b"\x1e" + GOOD_LINE[:-1] + GOOD_LINE,
    "two records apart on one line": b"\x1e" + GOOD_LINE[:-1] + b" \r " + GOOD_LINE,
    "not JSON": b"\x1e{not json}\n",
    "no id": b'\x1e{"kind": "log", "type": "t", "ts_ns": 1, "node_id": "n"}\n',
    "an empty id": b'\x1e{"id": "", "kind": "log", "type": "t", "ts_ns": 1, "node_id": "n"}\n',
    "a time as text": b'\x1e{"id": "x", "kind": "log", "type": "t", "ts_ns": "soon", "node_id": "n"}\n',
}


@pytest.mark.parametrize("value", [*BAD_FRAMES.values(), *BAD_RECORDS.values()], ids=[*BAD_FRAMES, *BAD_RECORDS])
def test_a_value_that_is_not_one_record_text_is_refused_with_a_reason(value: bytes) -> None:
    headers = [("zoom.encoding", b"json-seq")]
    with pytest.raises(MalformedMessage) as refused:
        kafka_codec.decode(value, headers)
    assert refused.value.reason == "bad value"
    with pytest.raises(MalformedMessage):
        kafka_codec.decode_message(message(value, headers))


@pytest.mark.parametrize("value", BAD_FRAMES.values(), ids=BAD_FRAMES)
def test_only_a_value_framed_as_one_text_gives_a_line(value: bytes) -> None:
    assert kafka_codec.record_line(value) is None


def test_a_value_over_the_limit_gives_no_line_and_is_refused_as_huge() -> None:
    value = b"\x1e" + GOOD_LINE
    assert kafka_codec.record_line(value, len(value)) == GOOD_LINE
    assert kafka_codec.record_line(value, len(value) - 1) is None
    with pytest.raises(MalformedMessage) as refused:
        kafka_codec.decode(value, [("zoom.encoding", b"json-seq")], max_value_bytes=len(value) - 1)
    assert refused.value.reason == "huge value"


def _line(**fields: Any) -> bytes:
    return json.dumps(fields).encode() + b"\n"


BASE = {"id": "0190c8e2-0000-7000-8000-000000000001", "type": "t", "ts_ns": 1, "node_id": "n"}
LINES = {
    "a log": GOOD_LINE,
    "a node record": kafka_codec.encode(NODE)[1][1:],
    "a code line beyond its column (stored without it)": _line(**BASE, kind="log", code=["f.py", 2**40, "f"]),
    "a number as a log's message (stored as its text)": _line(**BASE, kind="log", message=5),
    "a number as a node record's message": _line(**BASE, kind="node", message=5),
    "attributes that are no object": _line(**BASE, kind="log", attrs=[1, 2]),
    "no node": _line(**{k: v for k, v in BASE.items() if k != "node_id"}, kind="log"),
    "an empty id": _line(**{**BASE, "id": ""}, kind="log"),
    "an empty kind": _line(**BASE, kind=""),
    "an empty node": _line(**{**BASE, "node_id": ""}, kind="log"),
    "two records on one line": GOOD_LINE[:-1] + GOOD_LINE,
    "not JSON": b"{not json}\n",
}


@pytest.mark.parametrize("line", LINES.values(), ids=LINES)
def test_refused_line_is_what_the_stores_prepare_leaves_out(line: bytes) -> None:
    prepared = DuckStore.prepare([], [line])
    kept = sum(count_lines(part) for parts, _, _ in prepared.chunks for part in parts)
    assert kept in (0, 1)
    assert (refused_line(line) is None) == (kept == 1), prepared.skipped


@pytest.mark.parametrize(
    "name", ["an empty id", "an empty kind", "an empty node", "no node", "two records on one line", "not JSON"]
)
def test_a_line_that_is_no_record_is_refused(name: str) -> None:
    """``decode`` refuses these (an empty id would make all such records one): the store leaves them out too."""
    assert refused_line(LINES[name]) is not None
    with pytest.raises(MalformedMessage):
        kafka_codec.decode_line(LINES[name])


def test_the_collector_hands_the_store_blocks_bounded_by_lines_and_bytes() -> None:
    from zoomtrace.collect.kafka_collector import _BLOCK_BYTES, _LINES_PER_BLOCK, _blocks

    small = [b'{"n":%d}\n' % i for i in range(2 * _LINES_PER_BLOCK + 7)]
    big = [b'{"m":"' + bytes([97 + i]) * (_BLOCK_BYTES // 3) + b'"}\n' for i in range(7)]
    huge = b'{"h":"' + b"h" * _BLOCK_BYTES + b'"}\n'
    for lines in (small, big, [*small[:5], huge, *big, *small[5:]], [huge, huge]):
        blocks = _blocks(lines)
        assert b"".join(blocks) == b"".join(lines)  # every line, in order, none split
        assert all(block.endswith(b"\n") for block in blocks)
        for block in blocks:
            count = block.count(b"\n")
            assert count <= _LINES_PER_BLOCK
            assert len(block) <= _BLOCK_BYTES or count == 1  # only a line longer than the bound stands alone
    assert len(_blocks(small)) == 3
    assert len(_blocks(big)) == 4  # two of a third of the bound fit in a block, three do not
