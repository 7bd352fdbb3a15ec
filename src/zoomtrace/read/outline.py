"""The outline of a trace: its span tree as columns, strings interned, with per-span counts of records.

A viewer draws a trace's waterfall from the outline alone and fetches records by page as they come on
screen (``query.records``), so opening a trace of 20,000 spans and 100,000 records costs what its span
tree costs. Columns of numbers and interned strings are the smallest JSON a browser parses fast
(docs/ui.md, "API for big traces", has the measurements). The rows are the story's spans in the story's
order (``_story.span_tree``): a row's index is the span's place in the waterfall.
"""

from __future__ import annotations

from itertools import chain

import msgspec

from zoomtrace.read._story import SpanTree, span_tree, story_nodes
from zoomtrace.read.model import ErrorInfo, Link, Outline, OutlineCounts, OutlineSpans
from zoomtrace.store.protocols import TraceSpans


class OutlineSpanRecord(msgspec.Struct, kw_only=True, gc=False):
    """What an outline reads of a span's record (``trace_spans(row_type=...)``: the store builds only these)."""

    id: str
    span_id: str | None = None
    parent_span_id: str | None = None
    type: str
    node_id: str
    ts_ns: int
    end_ns: int | None = None
    status: str | None = None
    error: ErrorInfo | None = None
    links: list[Link] = []


def under_spans(spans: TraceSpans) -> dict[str | None, tuple[int, int, int, int]]:
    """Span id (None: no span) -> the records directly under it, the logs, the events and the errors among them."""
    c = spans.counts
    return dict(zip(c.span_id, zip(c.records, c.logs, c.events, c.errors, strict=True), strict=True))


def build_outline(spans: TraceSpans, tree: SpanTree | None = None) -> Outline:
    """The outline of a trace from its spans (``OutlineSpanRecord``s, or ``RecordView``s), counts and nodes
    (``StoreReader.trace_spans``); ``tree``: their ``span_tree`` when the caller has it."""
    tree = tree if tree is not None else span_tree(spans.spans)
    per_span = under_spans(spans)
    service_of = {n["node_id"]: n.get("service") for n in spans.nodes}
    start = spans.start_ns

    walk, children = tree.walk, tree.children
    rows = [tree.spans[sid] for sid in walk.span_ids]
    zero = (0, 0, 0, 0)
    counted = [per_span.get(sid, zero) for sid in walk.span_ids]
    names = [r.type for r in rows]
    services = [service_of.get(r.node_id) for r in rows]
    node_ids = [r.node_id for r in rows]
    statuses = [r.status for r in rows]
    strings = [value for value in dict.fromkeys(chain(names, services, node_ids, statuses)) if value is not None]
    index: dict[str | None, int] = {value: i for i, value in enumerate(strings)}
    columns = OutlineSpans(
        span_id=walk.span_ids,
        record_id=[r.id for r in rows],
        parent=walk.parents,
        depth=walk.depths,
        remote_parent=[r.parent_span_id if d == 0 else None for r, d in zip(rows, walk.depths, strict=True)],
        name=[index[v] for v in names],
        service=[index.get(v, -1) for v in services],
        node_id=[index[v] for v in node_ids],
        start=[r.ts_ns - start for r in rows],
        duration=[r.end_ns - r.ts_ns if r.end_ns is not None else None for r in rows],
        status=[index.get(v, -1) for v in statuses],
        error=[1 if r.status == "error" or r.error is not None else 0 for r in rows],  # ``failed``, inlined
        logs=[c[1] for c in counted],
        events=[c[2] for c in counted],
        errors=[c[3] for c in counted],
        children=[len(children.get(sid, ())) for sid in walk.span_ids],
    )
    links = [(row_index, link.trace_id, link.span_id) for row_index, r in enumerate(rows) for link in r.links]

    records, logs, events, errors = map(sum, spans.counts[1:])
    unparented = sum(c[0] for sid, c in per_span.items() if sid not in tree.spans)
    nodes = story_nodes({n["node_id"]: n for n in spans.nodes}, spans.node_ids)
    return Outline(
        trace_id=spans.trace_id,
        start_ns=start,
        end_ns=spans.end_ns,
        strings=strings,
        spans=columns,
        links=links,
        unparented=unparented,
        counts=OutlineCounts(
            records=records + len(spans.spans),
            spans=len(tree.spans),
            logs=logs,
            events=events,
            raw=records - logs - events,
            errors=errors + sum(columns.error),
        ),
        nodes=nodes,
    )
