"""Fuzzing what Zoom reads from outside: spool frames and Kafka messages (issue 12, "Done when").

Whatever the bytes, reading never raises anything but the one error it documents, never invents a
record, and loses no record that the damage did not touch. (tracestate and baggage are fuzzed in
tests/test_propagation.py.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from confluent_kafka import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.records import checkout_trace, rec
from zoomtrace.wire import kafka_codec
from zoomtrace.wire.record import Record, encoder
from zoomtrace.wire.spool import JSON_LINES, MSGPACK, ReadResult, frame, read_segment

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

#: Five frames of real records (a trace, then one record a frame), as a writer lays them out: JSON lines
#: and msgpack, one after the other (both versions are written: msgpack for records with bytes payloads).
FRAMES: list[list[Record]] = [checkout_trace(), *[[rec("log", "line", 200 + i, message=f"line {i}")] for i in range(4)]]
_ENCODED = [
    frame(encoder.encode(batch), MSGPACK) if i % 2 else frame(msgspec.json.Encoder().encode_lines(batch), JSON_LINES)
    for i, batch in enumerate(FRAMES)
]
SEGMENT = b"".join(_ENCODED)
#: Where each frame's bytes are in SEGMENT.
SPANS: list[range] = []
_at = 0
for _frame in _ENCODED:
    SPANS.append(range(_at, _at + len(_frame)))
    _at += len(_frame)


def read(tmp_path: Path, data: bytes) -> ReadResult:
    path = tmp_path / "fuzz.000001.zspool"
    path.write_bytes(data)
    got = read_segment(path)
    assert got.offset + got.pending_bytes == len(data)
    assert got.pending_bytes >= 0
    return got


@FUZZ
@given(data=st.binary(max_size=4096))
def test_any_bytes_read_as_a_segment_raise_nothing(tmp_path: Path, data: bytes) -> None:
    read(tmp_path, data)


@FUZZ
@given(data=st.binary(max_size=512), at=st.integers(0, len(SEGMENT)))
def test_bytes_around_real_frames_lose_none_of_them(tmp_path: Path, data: bytes, at: int) -> None:
    """Garbage inserted between two frames (or anywhere: it then damages one frame) costs at most that frame."""
    records = read(tmp_path, SEGMENT[:at] + data + SEGMENT[at:]).records
    originals = [r for batch in FRAMES for r in batch]
    assert all(r in originals for r in records)  # nothing invented
    damaged = {i for i, span in enumerate(SPANS) if span.start < at < span.stop}
    for i, batch in enumerate(FRAMES):
        if i not in damaged:
            assert all(r in records for r in batch), f"frame {i} lost"


@FUZZ
@given(position=st.integers(0, len(SEGMENT) - 1), flip=st.integers(1, 255))
def test_one_damaged_byte_costs_at_most_its_own_frame(tmp_path: Path, position: int, flip: int) -> None:
    data = bytearray(SEGMENT)
    data[position] ^= flip
    records = read(tmp_path, bytes(data)).records
    originals = [r for batch in FRAMES for r in batch]
    assert all(r in originals for r in records)
    for i, batch in enumerate(FRAMES):
        if position not in SPANS[i]:
            assert all(r in records for r in batch), f"frame {i} lost to a byte of another frame"


@FUZZ
@given(cut=st.integers(0, len(SEGMENT)))
def test_a_torn_tail_keeps_every_complete_frame_and_reports_the_rest(tmp_path: Path, cut: int) -> None:
    """No writer holds the segment (its lock is free), so a torn tail is reported and passed, not left pending."""
    got = read(tmp_path, SEGMENT[:cut])
    complete = [i for i, span in enumerate(SPANS) if span.stop <= cut]
    assert got.records == [r for i in complete for r in FRAMES[i]]
    torn = cut - (SPANS[complete[-1]].stop if complete else 0)
    assert (got.offset, got.pending_bytes) == (cut, 0)
    assert bool(got.problems) == (torn > 0), got.problems


# -- Kafka messages ----------------------------------------------------------------------------------

HEADER_NAMES = st.sampled_from(
    [
        kafka_codec.ENCODING,
        "zoom.id",
        "zoom.kind",
        "zoom.type",
        "zoom.ts_ns",
        "zoom.node_id",
        "zoom.v",
        "zoom.code.line",
        "zoom.code.dirty",
        "zoom.sources",
        "zoom.attrs",
        "zoom.on_behalf_of",
        "traceparent",
        "tracestate",
        "baggage",
    ]
) | st.text(max_size=20)
HEADER_VALUES = (
    st.none() | st.binary(max_size=64) | st.sampled_from([b"json", b"msgpack", b"", b"-1", b"1e999", b"\xff"])
)
HEADERS = st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=12)
VALUES = (
    st.none()
    | st.binary(max_size=256)
    | st.builds(lambda r: encoder.encode(r), st.sampled_from(checkout_trace()))
    | st.builds(lambda r: kafka_codec.encode(r)[1], st.sampled_from(checkout_trace()))  # json-seq or a data event
    | st.binary(max_size=256).map(lambda b: b"\x1e" + b + b"\n")  # framed as one JSON text, any content
)


def message(value: bytes | None, headers: list[tuple[str, bytes | None]]) -> Message:
    return Message(topic="zoom.events.shop", partition=0, offset=1, key=None, value=value, headers=headers)


def decoded_or_refused(msg: Message) -> Record | None:
    """The record of a message, or None when it is refused as malformed: anything else fails the test."""
    try:
        record = kafka_codec.decode_message(msg, max_value_bytes=1024)
    except kafka_codec.MalformedMessage:
        return None
    assert record.id and record.kind and record.node_id
    msgspec.msgpack.encode(record)  # what the collector stores next: it must encode
    return record


@FUZZ
@given(value=VALUES, headers=HEADERS)
def test_any_message_is_a_record_or_refused_as_malformed(value: bytes | None, headers: list[Any]) -> None:
    decoded_or_refused(message(value, headers))


@pytest.mark.parametrize("kind", ["event", "log"])
@FUZZ
@given(index=st.integers(0, 30), replacement=HEADER_VALUES)
def test_one_bad_header_of_a_real_message_is_a_record_or_refused(kind: str, index: int, replacement: Any) -> None:
    original = (
        rec("event", "OrderPlaced", 1, payload={"order": 7}, trace_id="ab" * 16, span_id="cd" * 8)
        if kind == "event"
        else rec("log", "app", 1, message="hello", trace_id="ab" * 16, span_id="cd" * 8)
    )
    _key, value, headers = kafka_codec.encode(original, {"service": "shop", "env": "test", "group": "g"})
    assert decoded_or_refused(message(value, list(headers))) is not None  # the control: it decodes as sent
    headers = list(headers)
    name, _ = headers[index % len(headers)]
    headers[index % len(headers)] = (name, replacement)
    decoded_or_refused(message(value, headers))


#: The JSON lines of real records, as ``json-seq`` values carry them (the node's, whose id repeats, among them).
_LINES = [kafka_codec.encode(r)[1][1:] for r in checkout_trace() if r.kind != "event"]


@FUZZ
@given(
    line=st.sampled_from(_LINES),
    at=st.integers(0, max(map(len, _LINES))),
    cut=st.integers(0, 8),
    junk=st.binary(max_size=8) | st.sampled_from([b"{}", b'{"id":"x"}', b" ", b"\r", b"\n", b"\x1e", b'"']),
)
def test_any_json_seq_line_is_kept_or_reported_by_the_store(line: bytes, at: int, cut: int, junk: bytes) -> None:
    """A value the collector takes as a line (real record lines damaged anywhere) is kept by the store's
    ``prepare`` exactly when ``refused_line`` says so, never raises, and never becomes two records."""
    from zoomtrace.store import refused_line
    from zoomtrace.store.duckdb import DuckStore
    from zoomtrace.wire.spool import count_lines

    damaged = kafka_codec.record_line(b"\x1e" + line[:at] + junk + line[at + cut :])
    if damaged is None:
        return  # not framed as one JSON text: decode() refuses it with a reason (tested above)
    prepared = DuckStore.prepare([], [_LINES[0], damaged, _LINES[0]])  # a repeated id around it
    kept = sum(count_lines(part) for parts, _, _ in prepared.chunks for part in parts)
    if refused_line(damaged) is not None:
        assert kept == 1
    else:  # one record: kept unless it has the first line's id
        first_id = msgspec.json.decode(_LINES[0])["id"]
        assert kept == 1 + (msgspec.json.decode(damaged)["id"] != first_id)
        damaged.decode()  # UTF-8 all through: the store's bulk insert reads it
