"""A trace's story: its spans as a tree, each with its own logs, events and raw data in time order.

Backend-independent: the store hands over plain record and node dicts, so every backend
(and the UI, the CLI and ``zoomtrace story --json``) tells the same story.

Shape::

    {"trace_id", "start_ns", "end_ns", "duration_ns",
     "nodes": [{"node_id", "service", "env", "group", "version", "host", "pid", "commit",
                "started_ns", "stopped_ns", "stop_cause"}],
     "spans": [{"id", "span_id", "parent_span_id", "name", "service", "node_id", "start_ns", "end_ns",
                "duration_ns", "status", "error", "cpu_ns", "thread", "attrs", "links": [{"trace_id", "span_id"}],
                "on_behalf_of", "code": {"file", "line", "function", "commit", "dirty"} | None,
                "remote_parent": bool, "records": [record, ...], "children": [span, ...]}],
     "records": [record, ...]}   # records that belong to no recorded span of the trace

    record = {"id", "kind", "type", "level", "message", "template", "attrs", "payload", "payload_blob",
              "ts_ns", "sources", "code", "error", "span_id", "node_id", "service"}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: Node fields a story shows for each process run of the trace.
NODE_FIELDS = (
    "node_id",
    "service",
    "env",
    "group",
    "version",
    "host",
    "pid",
    "commit",
    "started_ns",
    "stopped_ns",
    "stop_cause",
)


def _code(code: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not code:
        return None
    return {
        "file": code.get("file"),
        "line": code.get("line"),
        "function": code.get("function"),
        "commit": code.get("commit"),
        "dirty": bool(code.get("dirty")),
    }


def _story_record(r: Mapping[str, Any], service: str | None) -> dict[str, Any]:
    return {
        "id": r["id"],
        "kind": r["kind"],
        "type": r["type"],
        "level": r.get("level"),
        "message": r.get("message"),
        "template": r.get("template"),
        "attrs": r.get("attrs") or {},
        "payload": r.get("payload"),
        "payload_blob": r.get("payload_blob"),
        "ts_ns": r["ts_ns"],
        "sources": list(r.get("sources") or ()),
        "code": _code(r.get("code")),
        "error": r.get("error"),
        "span_id": r.get("span_id"),
        "node_id": r.get("node_id"),
        "service": service,
    }


def _span(r: Mapping[str, Any], service: str | None) -> dict[str, Any]:
    end = r.get("end_ns")
    return {
        "id": r["id"],
        "span_id": r["span_id"],
        "parent_span_id": r.get("parent_span_id"),
        "name": r["type"],
        "service": service,
        "node_id": r.get("node_id"),
        "start_ns": r["ts_ns"],
        "end_ns": end,
        "duration_ns": end - r["ts_ns"] if end is not None else None,
        "status": r.get("status"),
        "error": r.get("error"),
        "cpu_ns": r.get("cpu_ns"),
        "thread": r.get("thread"),
        "attrs": r.get("attrs") or {},
        "links": [dict(link) for link in r.get("links") or ()],
        "on_behalf_of": r.get("on_behalf_of"),
        "code": _code(r.get("code")),
        "remote_parent": False,
        "records": [],
        "children": [],
    }


def _better_span(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """When a span was recorded twice (e.g. *interrupted* at stop, then again): keep the ended, later one."""
    return (a.get("end_ns") is not None, a.get("end_ns") or 0, a["id"]) > (
        b.get("end_ns") is not None,
        b.get("end_ns") or 0,
        b["id"],
    )


def assemble(
    trace_id: str, records_rows: Iterable[Mapping[str, Any]], nodes_rows: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """Build the story of ``trace_id`` from its records (store record dicts) and the nodes they came from.

    Spans whose parent is not in the trace (a remote parent that was not recorded) are roots, marked
    ``remote_parent``; children, roots and records are in time order (ties broken by id).
    """
    nodes = {n["node_id"]: n for n in nodes_rows}
    rows = [r for r in records_rows if r.get("trace_id") in (None, trace_id) and r.get("kind") != "node"]

    def service_of(r: Mapping[str, Any]) -> str | None:
        node = nodes.get(r.get("node_id") or "")
        return node.get("service") if node else None

    span_rows: dict[str, Mapping[str, Any]] = {}
    for r in rows:
        if r["kind"] == "span" and r.get("span_id"):
            old = span_rows.get(r["span_id"])
            if old is None or _better_span(r, old):
                span_rows[r["span_id"]] = r
    spans = {sid: _span(r, service_of(r)) for sid, r in span_rows.items()}

    loose: list[dict[str, Any]] = []
    for r in rows:
        if r["kind"] == "span":
            continue
        owner = spans.get(r.get("span_id") or "")
        (owner["records"] if owner is not None else loose).append(_story_record(r, service_of(r)))

    roots: list[dict[str, Any]] = []
    for s in spans.values():
        parent = spans.get(s["parent_span_id"] or "")
        if parent is None or parent is s:
            s["remote_parent"] = s["parent_span_id"] is not None
            roots.append(s)
        else:
            parent["children"].append(s)
    # Spans caught in a parent cycle (corrupt data) are reachable from no root: show them as roots.
    reached: set[str] = set()
    stack = list(roots)
    while stack:
        s = stack.pop()
        reached.add(s["span_id"])
        stack.extend(s["children"])
    for sid, s in spans.items():
        if sid not in reached:
            parent = spans.get(s["parent_span_id"] or "")
            if parent is not None:
                parent["children"] = [c for c in parent["children"] if c is not s]
            s["remote_parent"] = True
            roots.append(s)
            stack = [s]
            while stack:
                x = stack.pop()
                reached.add(x["span_id"])
                stack.extend(c for c in x["children"] if c["span_id"] not in reached)

    def order(items: list[dict[str, Any]], key: str) -> None:
        items.sort(key=lambda x: (x[key], x["id"]))

    for s in spans.values():
        order(s["children"], "start_ns")
        order(s["records"], "ts_ns")
    order(roots, "start_ns")
    order(loose, "ts_ns")

    starts = [r["ts_ns"] for r in rows]
    ends = [max(r["ts_ns"], r.get("end_ns") or r["ts_ns"]) for r in rows]
    node_ids = {r.get("node_id") for r in rows if r.get("node_id")}
    story_nodes = [{k: nodes.get(nid, {}).get(k) for k in NODE_FIELDS} | {"node_id": nid} for nid in node_ids]
    story_nodes.sort(key=lambda n: (n["started_ns"] is None, n["started_ns"] or 0, n["node_id"]))
    start = min(starts) if starts else None
    end = max(ends) if ends else None
    return {
        "trace_id": trace_id,
        "start_ns": start,
        "end_ns": end,
        "duration_ns": end - start if start is not None and end is not None else None,
        "nodes": story_nodes,
        "spans": roots,
        "records": loose,
    }
