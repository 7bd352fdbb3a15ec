"""docs/kafka.md's list of a data event's headers, held to real messages from a real broker.

Two real applications send a data event each: a bare one (outside any span and any git repository,
without sources or attributes) and a full one (in a git repository with the file changed since its
commit, inside a span done on behalf of someone, with sources and attributes). The headers the
documentation calls *always* present must be exactly those of the bare event; every header of the
full one must be documented, and the ones the issue asked about must be documented as *with a value*.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Message

from support.kafka_broker import KafkaBroker

try:
    import helpers as h
except ImportError:  # tests/ imported as a package
    from tests import helpers as h

pytestmark = pytest.mark.kafka

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
