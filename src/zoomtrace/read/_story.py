"""A trace's story: its spans as a tree, each with its own logs, events and raw data in time order.

Assembled here, above the store, from a trace's rows (``StoreReader.trace_rows``, asked by
``zoomtrace.read.query.story``), so every backend tells the same story to the CLI, the UI and
``zoomtrace story --json``. Its shape is the read model's ``Story``: a span or a story record
takes the fields it shares with its record by name, so a new record field reaches the story by
being declared in ``zoomtrace.read.model``, not here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import msgspec

from zoomtrace._gc import gc_paused
from zoomtrace.read.model import Story, StoryNode, StoryRecord, StorySpan

#: The fields a span takes from its record under another name: ``field -> record field``.
_SPAN_RENAMED: Final = {"name": "type", "start_ns": "ts_ns"}


def _story_span(row: Mapping[str, Any], service: str | None) -> StorySpan:
    fields = dict(row)
    for field, source in _SPAN_RENAMED.items():
        fields[field] = row[source]
    end = row.get("end_ns")
    fields["duration_ns"] = end - row["ts_ns"] if end is not None else None
    fields["service"] = service
    return msgspec.convert(fields, StorySpan)


def _story_record(row: Mapping[str, Any], service: str | None) -> StoryRecord:
    record = msgspec.convert(row, StoryRecord)
    record.service = service
    return record


def _better_span(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """When a span was recorded twice (e.g. *interrupted* at stop, then again): keep the ended, later one."""
    return (a.get("end_ns") is not None, a.get("end_ns") or 0, a["id"]) > (
        b.get("end_ns") is not None,
        b.get("end_ns") or 0,
        b["id"],
    )


def assemble(trace_id: str, record_rows: Iterable[Mapping[str, Any]], node_rows: Iterable[Mapping[str, Any]]) -> Story:
    """Build the story of ``trace_id`` from its record rows and the rows of the nodes they came from.

    Spans whose parent is not in the trace (a remote parent that was not recorded) are roots, marked
    ``remote_parent``; children, roots and records are in time order (ties broken by id).
    """
    with gc_paused():
        return _assemble(trace_id, record_rows, node_rows)


def _assemble(trace_id: str, record_rows: Iterable[Mapping[str, Any]], node_rows: Iterable[Mapping[str, Any]]) -> Story:
    nodes = {n["node_id"]: n for n in node_rows}
    rows = [r for r in record_rows if r.get("trace_id") in (None, trace_id) and r.get("kind") != "node"]

    def service_of(r: Mapping[str, Any]) -> str | None:
        node = nodes.get(r.get("node_id") or "")
        return node.get("service") if node else None

    span_rows: dict[str, Mapping[str, Any]] = {}
    for r in rows:
        if r["kind"] == "span" and r.get("span_id"):
            old = span_rows.get(r["span_id"])
            if old is None or _better_span(r, old):
                span_rows[r["span_id"]] = r
    spans = {sid: _story_span(r, service_of(r)) for sid, r in span_rows.items()}

    loose: list[StoryRecord] = []
    for r in rows:
        if r["kind"] == "span":
            continue
        owner = spans.get(r.get("span_id") or "")
        (owner.records if owner is not None else loose).append(_story_record(r, service_of(r)))

    roots: list[StorySpan] = []
    for s in spans.values():
        parent = spans.get(s.parent_span_id or "")
        if parent is None or parent is s:
            s.remote_parent = s.parent_span_id is not None
            roots.append(s)
        else:
            parent.children.append(s)
    # Spans caught in a parent cycle (corrupt data) are reachable from no root: show them as roots.
    reached: set[str] = set()
    stack = list(roots)
    while stack:
        s = stack.pop()
        reached.add(s.span_id)
        stack.extend(s.children)
    for sid, s in spans.items():
        if sid not in reached:
            parent = spans.get(s.parent_span_id or "")
            if parent is not None:
                parent.children = [c for c in parent.children if c is not s]
            s.remote_parent = True
            roots.append(s)
            stack = [s]
            while stack:
                x = stack.pop()
                reached.add(x.span_id)
                stack.extend(c for c in x.children if c.span_id not in reached)

    for s in spans.values():
        s.children.sort(key=lambda c: (c.start_ns, c.id))
        s.records.sort(key=lambda r: (r.ts_ns, r.id))
    roots.sort(key=lambda c: (c.start_ns, c.id))
    loose.sort(key=lambda r: (r.ts_ns, r.id))

    starts = [r["ts_ns"] for r in rows]
    ends = [max(r["ts_ns"], r.get("end_ns") or r["ts_ns"]) for r in rows]
    node_ids = {r.get("node_id") for r in rows if r.get("node_id")}
    story_nodes = [msgspec.convert({**nodes.get(nid, {}), "node_id": nid}, StoryNode) for nid in node_ids]
    story_nodes.sort(key=lambda n: (n.started_ns is None, n.started_ns or 0, n.node_id))
    start = min(starts) if starts else None
    end = max(ends) if ends else None
    return Story(
        trace_id=trace_id,
        start_ns=start,
        end_ns=end,
        duration_ns=end - start if start is not None and end is not None else None,
        nodes=story_nodes,
        spans=roots,
        records=loose,
    )
