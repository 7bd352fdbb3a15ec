"""The outline of a trace: its span tree as columns, strings interned, with per-span counts of records.

A viewer draws a trace's waterfall from the outline alone and fetches records by page as they come on
screen (``query.records``), so opening a trace of 20,000 spans and 100,000 records costs what its span
tree costs. Columns of numbers and interned strings are the smallest JSON a browser parses fast
(docs/ui.md, "API for big traces", has the measurements). The rows are the story's spans in the story's
order (``_story.tree_order``, as ``span_tree``): a row's index is the span's place in the waterfall.

It is built from the store's columns (``SpanColumns``), never an object per span: at 200,000 spans the
span tree of 200,000 Structs and the columns read off them were half of the outline's time (docs/ui.md).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from itertools import chain, repeat
from operator import itemgetter
from typing import TypeVar, cast

from zoomtrace.read._story import copy_rank, story_nodes, tree_order
from zoomtrace.read.model import Outline, OutlineCounts, OutlineSpans
from zoomtrace.store.protocols import SpanColumns, TraceSpans

T = TypeVar("T")


def under_spans(spans: TraceSpans) -> dict[str | None, tuple[int, int, int, int]]:
    """Span id (None: no span) -> the records directly under it, the logs, the events and the errors among them."""
    c = spans.counts
    return dict(zip(c.span_id, zip(c.records, c.logs, c.events, c.errors, strict=True), strict=True))


def trace_counts(
    spans: TraceSpans, span_records: int, span_ids: Collection[str], failed_spans: int
) -> tuple[OutlineCounts, int]:
    """The trace's records by kind, and how many are under no recorded span, from its counts per span
    (``span_records``: its span records, a span recorded twice counted twice; ``span_ids``: its spans)."""
    records, logs, events, errors = map(sum, spans.counts[1:])
    under = zip(spans.counts.span_id, spans.counts.records, strict=True)
    unparented = sum(records for sid, records in under if sid not in span_ids)
    counts = OutlineCounts(
        records=records + span_records,
        spans=len(span_ids),
        logs=logs,
        events=events,
        raw=records - logs - events,
        errors=errors + failed_spans,
    )
    return counts, unparented


def build_outline(spans: TraceSpans) -> Outline:
    """The outline of a trace from ``StoreReader.trace_spans(row_type=SpanColumns)``."""
    recorded: SpanColumns = spans.spans
    col = _each_span_once(recorded)
    ids = cast(list[str], col.span_id)  # each once, none missing
    tree = tree_order(ids, col.parent_span_id)
    rows, depths = tree.walk.span_ids, tree.walk.depths

    # In C (itemgetter, map) rather than a Python loop per column: 16 columns of up to 200,000 entries.
    take = itemgetter(*rows) if len(rows) > 1 else None

    def pick(column: Sequence[T]) -> list[T]:
        return list(take(column)) if take is not None else [column[at] for at in rows]

    span_ids = pick(ids)
    names, node_ids, statuses = pick(col.type), pick(col.node_id), pick(col.status)
    service_of = {n["node_id"]: n.get("service") for n in spans.nodes}
    services = list(map(service_of.get, node_ids))
    strings = [v for v in dict.fromkeys(chain(names, services, node_ids, statuses)) if v is not None]
    index: dict[str | None, int] = {value: i for i, value in enumerate(strings)}
    none = repeat(-1)
    start = spans.start_ns
    ts, ends = pick(col.ts_ns), pick(col.end_ns)
    logs, events, errors = _counts_under(spans, tree.position)
    error = pick(col.failed)
    columns = OutlineSpans(
        span_id=span_ids,
        parent=tree.walk.parents,
        depth=depths,
        remote_parent=[col.parent_span_id[at] if d == 0 else None for at, d in zip(rows, depths, strict=True)],
        name=list(map(index.__getitem__, names)),
        service=list(map(index.get, services, none)),
        node_id=list(map(index.__getitem__, node_ids)),
        start=list(map(start.__rsub__, ts)),
        duration=[end - t if end is not None else None for t, end in zip(ts, ends, strict=True)],
        status=list(map(index.get, statuses, none)),
        error=error,
        logs=pick(logs),
        events=pick(events),
        errors=pick(errors),
        children=[len(tree.children.get(at, ())) for at in rows],
    )
    row_of = {at: row for row, at in enumerate(rows)} if col.links else {}
    links = sorted(((row_of[at], trace, span) for at, trace, span in col.links), key=itemgetter(0))
    counts, unparented = trace_counts(spans, len(recorded.id), tree.position, sum(error))
    return Outline(
        trace_id=spans.trace_id,
        start_ns=start,
        end_ns=spans.end_ns,
        strings=strings,
        spans=columns,
        links=links,
        unparented=unparented,
        counts=counts,
        nodes=story_nodes({n["node_id"]: n for n in spans.nodes}, spans.node_ids),
    )


def _counts_under(spans: TraceSpans, position: dict[str, int]) -> tuple[list[int], list[int], list[int]]:
    """The logs, events and errors directly under each span, by its position."""
    logs, events, errors = ([0] * len(position) for _ in range(3))
    find = position.get
    c = spans.counts
    for sid, n_logs, n_events, n_errors in zip(c.span_id, c.logs, c.events, c.errors, strict=True):
        at = find(sid) if sid is not None else None
        if at is not None:
            logs[at], events[at], errors[at] = n_logs, n_events, n_errors
    return logs, events, errors


def _each_span_once(col: SpanColumns) -> SpanColumns:
    """The columns without the records of no span id, and of a span recorded twice only its copy that
    ``span_tree`` keeps (``copy_rank``), still in time order."""
    if all(col.span_id) and len(set(col.span_id)) == len(col.span_id):
        return col
    kept: dict[str, int] = {}
    for at, sid in enumerate(col.span_id):
        if sid:
            other = kept.get(sid)
            if other is None or copy_rank(col.end_ns[at], col.id[at]) > copy_rank(col.end_ns[other], col.id[other]):
                kept[sid] = at
    positions = sorted(kept.values())
    new_at = {at: i for i, at in enumerate(positions)}
    columns = ([column[at] for at in positions] for column in col[:-1])
    links = [(new_at[at], trace, span) for at, trace, span in col.links if at in new_at]
    return SpanColumns._make([*columns, links])
