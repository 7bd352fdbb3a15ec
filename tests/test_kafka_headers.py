"""A data event's headers: docs/kafka.md's list of them, and how the collector reads them.

Two real applications send a data event each: a bare one (outside any span and any git repository,
without sources or attributes) and a full one (in a git repository with the file changed since its
commit, inside a span done on behalf of someone, with sources and attributes). The headers the
documentation calls *always* present must be exactly those of the bare event; every header of the
full one must be documented, and the ones the issue asked about must be documented as *with a value*.

The collector reads an event's headers in one go once it has seen their layout (``kafka_codec._read_event``);
whatever the headers hold, it reads the record the careful path reads header by header, or leaves the
message to it.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import msgspec
import pytest
from confluent_kafka import Consumer, Message
from hypothesis import given, settings
from hypothesis import strategies as st

from support.kafka_broker import KafkaBroker
from support.records import rec
from zoomtrace.wire import kafka_codec
from zoomtrace.wire.record import Code, Error, Frame, Link, Record

try:
    import helpers as h
except ImportError:  # tests/ imported as a package
    from tests import helpers as h

DOC = h.REPO / "docs" / "kafka.md"

APP = """
    import sys
    import zoomtrace as zt

    zt.init("headers", env=sys.argv[2], group="g", sink=sys.argv[1])
    if sys.argv[3] == "bare":
        zt.event({"n": 1}, type="Bare")
    else:
        with zt.span("serve", on_behalf_of="customer-7"):
            zt.event({"n": 2}, type="Full", sources=["upstream-1"], channel="web")
    zt.shutdown()
"""


def documented() -> dict[str, set[str]]:
    """The headers of the table of data-event headers in docs/kafka.md, by their *present* column."""
    found: dict[str, set[str]] = {"always": set(), "with a value": set(), "other fields": set()}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[1].startswith(("always", "with a value")):
            continue
        presence = "always" if cells[1].startswith("always") else "with a value"
        names = set(re.findall(r"`([a-z_.]+)`", cells[0]))
        found[presence] |= names
        if cells[2].startswith("any other field"):  # documented as never set on an event made by zt.event
            found["other fields"] |= names
    assert found["always"] and found["with a value"], f"no header table found in {DOC}"
    assert not found["always"] & found["with a value"]
    return found


def the_one_message(bootstrap: str, topic: str) -> Message:
    """The message an application sent to ``topic`` (it has exited, so the message is there)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"headers-{uuid.uuid4().hex}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    try:
        for _ in range(120):  # polls of at most 0.5 s: a minute in all
            msg = consumer.poll(0.5)
            if msg is not None:
                assert msg.error() is None, msg.error()
                return msg
    finally:
        consumer.close()
    raise AssertionError(f"no message on {topic}")


def headers_of_an_event(tmp_path: Path, bootstrap: str, kind: str) -> set[str]:
    env = f"h{uuid.uuid4().hex[:10]}"
    where = tmp_path / kind
    files = {"app.py": APP}
    if kind == "full":
        h.make_repo(where, files)
        (where / "app.py").write_text((where / "app.py").read_text() + "# changed since the commit\n")
    else:
        h.write_files(where, files)
    h.run_script(where / "app.py", where / "home", f"kafka://{bootstrap}", env, kind, cwd=where)
    msg = the_one_message(bootstrap, f"{env}.g.event")
    names = [name for name, _ in msg.headers() or []]
    assert len(names) == len(set(names)), names
    return set(names)


@pytest.mark.kafka
def test_the_documented_headers_of_a_data_event_are_those_of_real_messages(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    doc = documented()
    bare = headers_of_an_event(tmp_path, kafka_broker.bootstrap, "bare")
    full = headers_of_an_event(tmp_path, kafka_broker.bootstrap, "full")
    assert bare == doc["always"], "the bare event carries exactly the headers documented as always present"
    assert full - doc["always"] - doc["with a value"] == set(), "a header of a real message is not documented"
    asked = {"zoom.code.dirty", "zoom.sources", "zoom.attrs", "zoom.on_behalf_of", "baggage"}
    assert asked <= doc["with a value"]
    assert asked <= full and not asked & bare
    assert not full & doc["other fields"]


# -- reading them --------------------------------------------------------------------------------

NODE = {"service": "shop", "env": "prod", "group": "checkout"}
#: Data events with every kind of field a header can carry, as ``zt.event`` makes them and beyond.
EVENTS: list[Record] = [
    rec("event", "Bare", 1, payload={"n": 1}),
    rec(
        "event",
        "OrderPlaced",
        2,
        payload={"order": 7, "lines": [{"sku": "A-1", "qty": 2}], "note": 'say "hi"'},
        trace_id="ab" * 16,
        span_id="cd" * 8,
        parent_span_id="ef" * 8,
        on_behalf_of="customer-7",
        code=Code("shop/orders.py", 42, "place", "c0ffee" * 6 + "beef", dirty=True),
        attrs={"channel": "web", "n": 3},
        sources=["01a2372e-1529-7fd8-8856-d1693b3958a0"],
        links=[Link("12" * 16, "34" * 8)],
    ),
    rec(
        "event",
        "Odd",
        3,
        payload=["é", None, 1.5],
        end_ns=-5,
        cpu_ns=0,
        level="WARNING",
        message="née, ünïcode",
        template="{x}",
        status="error",
        thread="worker-1",
        code=Code("dist==1.0:pkg/mod.py", 1, "<module>"),
        error=Error("ValueError", "bad", [Frame("pkg/mod.py", 1, "<module>")]),
    ),
]
#: An event whose text a JSON document cannot hold as it is: the careful path reads it.
ESCAPED = rec("event", "Escaped", 4, payload={}, message='multi\nline, "quoted" and back\\slashed')

#: Header values that a JSON document would read otherwise than the careful path, or that it refuses.
ODD_VALUES = [
    *(b"", b'"', b"\\", b"a\\nb", b'x","kind":"log', b'1,"kind":"log"', b"\x01", b"\n", b"\xff", b"\xc3\xa9", b"\xc3"),
    *(b" 1", b"1 ", b"01", b"-1", b"-0", b"+1", b"1e3", b"1.0", b"9" * 20, b"9" * 21),
    *(b"null", b"true", b"false", b"[]", b"{}", b'{"a":1}', b'["x"]', b"json", b"msgpack"),
]


def read_carefully(value: bytes, headers: list[tuple[str, bytes]]) -> Record | str:
    """What ``decode``, the careful path, makes of a message: its record, or why it refuses it."""
    try:
        return kafka_codec.decode(value, headers)
    except kafka_codec.MalformedMessage as exc:
        return exc.reason


@pytest.mark.parametrize("event", EVENTS, ids=lambda r: r.type)
def test_an_event_is_read_in_one_go_into_the_record_sent(event: Record) -> None:
    _key, value, headers = kafka_codec.encode(event, NODE)
    assert kafka_codec._read_event(value, headers) == event
    message = Message(topic="prod.checkout.event", partition=0, offset=0, value=value, headers=headers)
    assert kafka_codec.decode_message(message) == event


def test_an_event_with_text_to_escape_is_read_by_the_careful_path() -> None:
    _key, value, headers = kafka_codec.encode(ESCAPED, NODE)
    assert kafka_codec._read_event(value, headers) is None
    message = Message(topic="prod.checkout.event", partition=0, offset=0, value=value, headers=headers)
    assert kafka_codec.decode_message(message) == ESCAPED


def changed(event: Record, changes: list[tuple[int, str, bytes]]) -> list[tuple[str, bytes]]:
    """The headers of ``event`` with each ``(index, change, value)``: the header at ``index`` replaced by
    ``value``, dropped, or sent again with ``value`` before it."""
    _key, _value, sent = kafka_codec.encode(event, NODE)
    headers = [(name, bytes(value or b"")) for name, value in sent]
    for index, change, odd in changes:
        at = index % len(headers)
        name = headers[at][0]
        if change == "replace":
            headers[at] = (name, odd)
        elif change == "drop":
            del headers[at]
        else:
            headers.insert(at, (name, odd))
    return headers


def assert_read_alike(value: bytes | None, headers: list[tuple[str, bytes]]) -> None:
    """The record read in one go is the careful path's, or there is none and the careful path reads the message
    (to a record, or to the reason it refuses it)."""
    careful = read_carefully(value, headers)
    fast = kafka_codec._read_event(value, headers) if value is not None else None
    assert fast is None or fast == careful, (headers, careful)
    message = Message(topic="prod.checkout.event", partition=0, offset=0, value=value, headers=headers)
    try:
        got: Record | str = kafka_codec.decode_message(message)
    except kafka_codec.MalformedMessage as exc:
        got = exc.reason
    assert got == careful
    if isinstance(got, Record):
        msgspec.json.encode(got)  # what the store does next: it must encode


@pytest.mark.parametrize("event", [*EVENTS, ESCAPED], ids=lambda r: r.type)
def test_every_header_changed_alone_is_read_as_the_careful_path_reads_it(event: Record) -> None:
    _key, value, sent = kafka_codec.encode(event, NODE)
    for index in range(len(sent)):
        assert_read_alike(value, changed(event, [(index, "drop", b"")]))
        for odd in ODD_VALUES:
            assert_read_alike(value, changed(event, [(index, "replace", odd)]))
            assert_read_alike(value, changed(event, [(index, "twice", odd)]))


@settings(max_examples=300, deadline=None)
@given(
    event=st.sampled_from([*EVENTS, ESCAPED]),
    changes=st.lists(
        st.tuples(
            st.integers(0, 40),
            st.sampled_from(["replace", "drop", "twice"]),
            st.sampled_from(ODD_VALUES) | st.binary(max_size=24),
        ),
        max_size=3,
    ),
    payload=st.sampled_from([None, b'{"a": 1}', b"[1,2", b'"\xff"', b"null", b'{"a": 1}\n{"b": 2}']),
)
def test_headers_changed_together_are_read_as_the_careful_path_reads_them(
    event: Record, changes: list[tuple[int, str, bytes]], payload: bytes | None
) -> None:
    _key, value, _sent = kafka_codec.encode(event, NODE)
    assert_read_alike(payload or value, changed(event, changes))


def test_a_layout_seen_once_is_read_in_one_go_from_then_on() -> None:
    _key, value, headers = kafka_codec.encode(EVENTS[1], NODE)
    headers = [("x-app-" + uuid.uuid4().hex, b"1"), *headers]  # a layout never seen before
    for _ in range(2):
        assert kafka_codec._read_event(value, headers) == EVENTS[1]
    assert tuple(name for name, _ in headers) in kafka_codec._plans
    for n in range(kafka_codec._MAX_PLANS + 10):  # an application whose header names keep changing
        kafka_codec._read_event(value, [(f"x-app-{n}", b"1"), *headers])
    assert len(kafka_codec._plans) <= kafka_codec._MAX_PLANS
