"""The story of a trace: span tree, records attached to their spans, remote-parent roots, orphans, nodes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from zoomtrace.collect import open_session
from zoomtrace.errors import NotFound
from zoomtrace.read import model, query
from zoomtrace.read._story import assemble
from zoomtrace.store.duckdb import DuckStore
from zoomtrace.store.protocols import StoreReader
from zoomtrace.wire.record import Code, Error, Frame, Link, Record, encoder, uuid7
from zoomtrace.wire.spool import SegmentWriter

T0 = 1_800_000_000_000_000_000
MS = 1_000_000
TID = "5e" * 16
GW = uuid7(T0 - 5000 * MS)  # gateway node
BL = uuid7(T0 - 4000 * MS)  # billing node
ROOT, CHILD1, CHILD2, GRAND, REMOTE, MISSING = ("a0" * 8, "b1" * 8, "b2" * 8, "c3" * 8, "d4" * 8, "ee" * 8)

SPAN_KEYS = set(model.StorySpan.__struct_fields__)
RECORD_KEYS = set(model.StoryRecord.__struct_fields__)
NODE_KEYS = set(model.StoryNode.__struct_fields__)
CODE_KEYS = set(model.Code.__struct_fields__)


def story_json(store: StoreReader, trace_id: str) -> dict[str, Any]:
    """The story as ``zoomtrace story --json`` and the UI's API show it."""
    told = msgspec.json.decode(msgspec.json.encode(query.story(store, trace_id)))
    assert isinstance(told, dict)
    return told


def assemble_json(trace_id: str, records: list[dict[str, Any]], nodes: list[dict[str, Any]]) -> dict[str, Any]:
    told = msgspec.json.decode(msgspec.json.encode(assemble(trace_id, records, nodes)))
    assert isinstance(told, dict)
    return told


def rec(kind: str, type_: str, ts: int, *, node: str = GW, **fields: Any) -> Record:
    fields.setdefault("trace_id", TID)
    return Record(id=uuid7(T0 + ts * MS), kind=kind, type=type_, ts_ns=T0 + ts * MS, node_id=node, **fields)


def node_started(node: str, service: str, pid: int) -> Record:
    return Record(
        id=uuid7(T0 - 4500 * MS),
        kind="node",
        type="started",
        ts_ns=T0 - 4500 * MS,
        node_id=node,
        attrs={
            "node_id": node,
            "service": service,
            "env": "prod",
            "group": "shop",
            "version": "2.0",
            "host": f"host-{service}",
            "pid": pid,
            "started_ns": T0 - 4500 * MS - pid,
            "commit": f"commit-{service}",
            "repos": [],
        },
    )


def trace_records() -> list[Record]:
    """gateway ROOT (0-100 ms) has children CHILD2 (starts 40) and CHILD1 (starts 10, on billing), CHILD1 has GRAND.
    REMOTE's parent was never recorded. Two logs belong to no recorded span."""
    code = Code("gw/app.py", 12, "handle", "c0mmit", True)
    return [
        rec(
            "span",
            "GET /pay",
            0,
            span_id=ROOT,
            end_ns=T0 + 100 * MS,
            code=code,
            attrs={"http.route": "/pay"},
            status="ok",
            cpu_ns=777,
            thread="MainThread",
            on_behalf_of="user-1",
            links=[Link("77" * 16, "88" * 8)],
        ),
        rec("span", "second step", 40, span_id=CHILD2, parent_span_id=ROOT, end_ns=T0 + 60 * MS),
        rec(
            "span",
            "charge",
            10,
            node=BL,
            span_id=CHILD1,
            parent_span_id=ROOT,
            end_ns=T0 + 90 * MS,
            status="error",
            error=Error("Declined", "no funds", [Frame("bl/pay.py", 7, "charge")]),
        ),
        rec("span", "db", 20, node=BL, span_id=GRAND, parent_span_id=CHILD1, end_ns=T0 + 30 * MS),
        rec("span", "callback", 200, node=BL, span_id=REMOTE, parent_span_id=MISSING, end_ns=T0 + 210 * MS),
        # records of ROOT, deliberately out of time order
        rec("log", "app", 50, span_id=ROOT, level="INFO", message="later", code=code),
        rec("log", "app", 5, span_id=ROOT, level="INFO", message="earlier", attrs={"k": "v"}),
        rec("event", "Payment", 25, node=BL, span_id=GRAND, payload={"amount": 3}, sources=["src-id"]),
        rec(
            "log",
            "app",
            26,
            node=BL,
            span_id=CHILD1,
            level="ERROR",
            message="declined",
            error=Error("Declined", "no funds", []),
        ),
        rec("log", "app", 300, span_id=MISSING, level="WARNING", message="orphan of unknown span"),
        rec("log", "app", 1, span_id=None, level="INFO", message="no span at all"),
    ]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckStore]:
    s = DuckStore(tmp_path / "store.duckdb")
    s.ingest(
        [
            node_started(GW, "gateway", 11),
            node_started(BL, "billing", 22),
            *trace_records(),
            rec("log", "app", 3, trace_id="ff" * 16, message="another trace"),
        ]
    )
    try:
        yield s
    finally:
        s.close()


def test_story_shape_and_nesting(store: DuckStore) -> None:
    story = story_json(store, TID)
    assert story["trace_id"] == TID
    # roots in start order: the gateway root (0 ms), the remote-parent span (200 ms)
    assert [s["span_id"] for s in story["spans"]] == [ROOT, REMOTE]
    root, remote = story["spans"]
    assert [c["span_id"] for c in root["children"]] == [CHILD1, CHILD2]  # sorted by start, not by arrival
    assert [g["span_id"] for g in root["children"][0]["children"]] == [GRAND]
    assert root["children"][1]["children"] == []
    assert remote["parent_span_id"] == MISSING and remote["children"] == []

    assert (root["name"], root["service"], root["node_id"]) == ("GET /pay", "gateway", GW)
    assert (root["start_ns"], root["end_ns"], root["duration_ns"]) == (T0, T0 + 100 * MS, 100 * MS)
    assert root["code"] == {"file": "gw/app.py", "line": 12, "function": "handle", "commit": "c0mmit", "dirty": True}
    assert root["links"] == [{"trace_id": "77" * 16, "span_id": "88" * 8}]
    assert (root["status"], root["cpu_ns"], root["thread"], root["on_behalf_of"]) == ("ok", 777, "MainThread", "user-1")
    assert root["attrs"] == {"http.route": "/pay"}
    charge = root["children"][0]
    assert (charge["service"], charge["status"]) == ("billing", "error")
    assert charge["error"] == {
        "type": "Declined",
        "message": "no funds",
        "frames": [{"file": "bl/pay.py", "line": 7, "function": "charge"}],
    }

    assert [r["message"] for r in root["records"]] == ["earlier", "later"]
    assert root["records"][0]["attrs"] == {"k": "v"}
    assert root["records"][1]["code"]["file"] == "gw/app.py"
    (event,) = charge["children"][0]["records"]
    assert (event["kind"], event["type"], event["payload"], event["sources"]) == (
        "event",
        "Payment",
        {"amount": 3},
        ["src-id"],
    )
    (declined,) = charge["records"]
    assert declined["error"] == {"type": "Declined", "message": "no funds", "frames": []}
    assert [r["message"] for r in story["records"]] == ["no span at all", "orphan of unknown span"]

    def walk(spans: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for s in spans:
            yield s
            yield from walk(s["children"])

    for s in walk(story["spans"]):
        assert set(s) >= SPAN_KEYS, SPAN_KEYS - set(s)
        assert s["code"] is None or set(s["code"]) == CODE_KEYS
        for r in s["records"]:
            assert set(r) >= RECORD_KEYS
    for r in story["records"]:
        assert set(r) >= RECORD_KEYS

    assert [n["service"] for n in story["nodes"]] == ["billing", "gateway"]  # by start: billing 11 ns earlier
    for n in story["nodes"]:
        assert set(n) >= NODE_KEYS
    billing = story["nodes"][0]
    assert (billing["node_id"], billing["pid"], billing["host"], billing["commit"], billing["group"]) == (
        BL,
        22,
        "host-billing",
        "commit-billing",
        "shop",
    )
    assert billing["stop_cause"] is None and billing["stopped_ns"] is None


def test_story_of_unknown_trace(store: DuckStore) -> None:
    with pytest.raises(NotFound, match="zoomtrace traces"):
        query.story(store, "00" * 16)


def test_story_by_unique_prefix(store: DuckStore) -> None:
    assert query.story(store, TID[:10]).trace_id == TID
    with pytest.raises(NotFound):
        query.story(store, "5f5f5f5f")


def test_story_of_records_written_through_the_spool(tmp_path: Path) -> None:
    home = tmp_path / "home"
    w = SegmentWriter(home / "spool", GW)
    records = [node_started(GW, "gateway", 11), *trace_records()]
    w.write(encoder.encode(records[:5]))
    w.write(encoder.encode(records[5:]))
    w.close()
    with open_session(home) as s:
        story = story_json(s, TID)
    assert [sp["span_id"] for sp in story["spans"]] == [ROOT, REMOTE]
    assert story["spans"][0]["children"][0]["service"] is None  # billing's start was never recorded
    assert [n["node_id"] for n in story["nodes"]] == [GW, BL]  # known start first, then unknown


# -- assemble on plain rows --------------------------------------------------------------------


def span(span_id: str, start: int, parent: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"id-{span_id}",
        "kind": "span",
        "type": f"op-{span_id}",
        "ts_ns": start,
        "end_ns": start + 5,
        "trace_id": "t",
        "span_id": span_id,
        "parent_span_id": parent,
        "node_id": "n1",
        **extra,
    }


def log(rid: str, ts: int, span_id: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "id": rid,
        "kind": "log",
        "type": "app",
        "ts_ns": ts,
        "trace_id": "t",
        "span_id": span_id,
        "node_id": "n1",
        "message": rid,
        **extra,
    }


def test_assemble_orders_ties_by_id_and_fills_defaults() -> None:
    story = assemble_json(
        "t",
        [span("b", 10, "r"), span("a", 10, "r"), span("r", 0), log("y", 7, "r"), log("x", 7, "r")],
        [{"node_id": "n1", "service": "svc"}],
    )
    (root,) = story["spans"]
    assert [c["span_id"] for c in root["children"]] == ["a", "b"]
    assert [r["id"] for r in root["records"]] == ["x", "y"]
    assert root["links"] == [] and root["attrs"] == {} and root["code"] is None
    assert root["records"][0]["sources"] == [] and root["records"][0]["attrs"] == {}
    assert root["service"] == "svc"
    assert (story["start_ns"], story["end_ns"], story["duration_ns"]) == (0, 15, 15)
    assert story["nodes"] == [
        {
            "node_id": "n1",
            "service": "svc",
            "env": None,
            "group": None,
            "version": None,
            "host": None,
            "pid": None,
            "commit": None,
            "started_ns": None,
            "stopped_ns": None,
            "stop_cause": None,
        }
    ]


def test_assemble_survives_a_parent_cycle_and_self_parent() -> None:
    story = assemble_json("t", [span("a", 1, "b"), span("b", 2, "a"), span("s", 3, "s"), log("l", 4, "a")], [])
    seen: list[str] = []

    def walk(spans: list[dict[str, Any]]) -> None:
        for s in spans:
            seen.append(s["span_id"])
            walk(s["children"])

    walk(story["spans"])
    assert sorted(seen) == ["a", "b", "s"]  # every span shown exactly once
    assert len(story["spans"]) == 2


def test_assemble_keeps_the_ended_copy_of_a_span_recorded_twice() -> None:
    interrupted = span("r", 0, status="interrupted", end_ns=None, id="id-1")
    ended = span("r", 0, status="ok", end_ns=50, id="id-2")
    story = assemble_json("t", [ended, interrupted], [])
    (root,) = story["spans"]
    assert (root["status"], root["end_ns"], root["duration_ns"]) == ("ok", 50, 50)


def test_assemble_ignores_records_of_other_traces_and_node_records() -> None:
    other = log("o", 1, None, trace_id="other")
    node = {"id": "n", "kind": "node", "type": "started", "ts_ns": 0, "node_id": "n1", "trace_id": None}
    story = assemble_json("t", [other, node, log("mine", 2, None)], [])
    assert [r["id"] for r in story["records"]] == ["mine"]
