"""What the CLI, the UI and the demo ask for, answered in the read model.

A ``StoreReader`` answers in rows (plain dicts); these functions turn them into the read
model's Structs (``zoomtrace.read.model``), so what a reader is shown is exactly the model's
fields whatever the backend, and assemble what the store does not: a trace's story
(``zoomtrace.read._story``), the outline of a big trace (``zoomtrace.read.outline``) and a
record's lineage.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final, NamedTuple, cast

import msgspec

from zoomtrace._gc import gc_paused
from zoomtrace.errors import NotFound, TooLarge
from zoomtrace.read._story import (
    SpanTree,
    Walk,
    assemble,
    copy_rank,
    failed,
    shown,
    span_tree,
    span_views,
    story_nodes,
    tell,
)
from zoomtrace.read.model import (
    HeaderLine,
    Lineage,
    LineageRecord,
    NodeView,
    Outline,
    RecordLine,
    RecordsPage,
    RecordView,
    SpanLine,
    SpanView,
    Story,
    StoryHeader,
    StoryRecord,
    TraceRecord,
    TraceSummary,
)
from zoomtrace.read.outline import build_outline, trace_counts, under_spans
from zoomtrace.store.protocols import RecordFilter, SpanColumns, StoreReader, TraceFilter, TraceSpans

#: The most records a story is told in one piece (``zoomtrace story --json``, ``GET /api/trace/{id}``): about
#: 30 MB of JSON. A bigger trace is read through its outline and pages of records, or streamed (``--ndjson``).
STORY_LIMIT: Final = 50_000
#: The most records of a whole story read in one piece (measured: below it the queries saved count more than
#: the dicts decoded; docs/store.md).
ONE_PIECE: Final = 2_000
#: Every kind of record but spans (a story's spans come from its span tree).
_NOT_SPANS: Final = ("log", "event", "raw")


def trace_filter(**criteria: str | int | bool | None) -> TraceFilter:
    """The ``TraceFilter`` of the criteria asked for: ``None``, ``""`` and ``False`` mean "not asked"."""
    return cast(TraceFilter, {k: v for k, v in criteria.items() if v is not None and v != "" and v is not False})


def traces(
    store: StoreReader, filt: TraceFilter | None = None, *, limit: int = 50, offset: int = 0
) -> list[TraceSummary]:
    """Trace summaries, newest first."""
    return msgspec.convert(store.traces(filt, limit=limit, offset=offset), list[TraceSummary])


def story(
    store: StoreReader,
    trace_id: str,
    *,
    span_id: str | None = None,
    depth: int | None = None,
    max_records: int | None = None,
) -> Story:
    """The story of ``trace_id``, or of the one trace it is a unique prefix of (raises ``NotFound``).

    ``span_id``: of that span's subtree only; ``depth``: down to that many levels of spans (1: the roots),
    with the records of the spans shown (and, of the whole trace, those under no recorded span).
    ``max_records``: raise ``TooLarge`` instead when the story would hold more spans and records.
    A whole trace of up to ``ONE_PIECE`` records is read in one piece (``trace_rows``: the fewest queries).
    A bigger one, or a part, is read by its span tree first, without the logs, then the records shown,
    decoded straight into the story's Structs (which costs a few queries more and half the decoding).
    """
    if span_id is None and depth is None:
        most = ONE_PIECE if max_records is None else min(max_records, ONE_PIECE)
        try:
            rows = store.trace_rows(trace_id, max_records=most)
        except TooLarge:
            if most == max_records:
                raise
        else:
            return assemble(rows.trace_id, rows.records, rows.nodes)
    with gc_paused():
        part = _part(store, trace_id, span_id, depth)
        if max_records is not None and part.size > max_records:
            raise TooLarge(f"trace {part.trace_id} has {part.size:,} records, more than {max_records:,} in one piece")
        records = store.trace_records(part.trace_id, part.filt, limit=None, row_type=StoryRecord, nodes=False).rows
        spans = part.spans
        bounds = (spans.start_ns, spans.end_ns)
        return tell(part.trace_id, part.tree, records, spans.nodes, spans.node_ids, bounds, part.shown)


class StoryStream(NamedTuple):
    """A story told line by line (``zoomtrace story --ndjson``): memory bounded by its spans and one page."""

    #: The first line: the trace at a glance (of the whole trace, whatever part is shown).
    header: HeaderLine
    #: How many lines follow.
    size: int
    #: The spans shown in tree order, then their records in time order, read a page at a time.
    lines: Iterator[SpanLine | RecordLine]


def story_stream(
    store: StoreReader, trace_id: str, *, span_id: str | None = None, depth: int | None = None, page: int = 5000
) -> StoryStream:
    """The story of ``trace_id`` (or a unique prefix), of ``span_id``'s subtree, down to ``depth``, as lines."""
    part = _part(store, trace_id, span_id, depth)
    spans, tree = part.spans, part.tree
    failed_spans = sum(1 for r in tree.spans.values() if failed(r))
    counts, unparented = trace_counts(spans, len(spans.spans), tree.spans.keys(), failed_spans)
    header = StoryHeader(
        trace_id=spans.trace_id,
        start_ns=spans.start_ns,
        end_ns=spans.end_ns,
        duration_ns=spans.end_ns - spans.start_ns,
        counts=counts,
        unparented=unparented,
        nodes=story_nodes({n["node_id"]: n for n in spans.nodes}, spans.node_ids),
    )
    return StoryStream(HeaderLine(header), part.size, _lines(store, part, page))


def _lines(store: StoreReader, part: _Part, page: int) -> Iterator[SpanLine | RecordLine]:
    service_of = {n["node_id"]: n.get("service") for n in part.spans.nodes}
    views = span_views(part.tree, part.shown.span_ids, service_of, SpanView)
    for sid, depth in zip(part.shown.span_ids, part.shown.depths, strict=True):
        yield SpanLine(views[sid], depth)
    # Pages follow each other by time (from the last page's last time, past the records already given at
    # that time), so that each is found from the zone maps or primary key, never by skipping a long offset.
    after: int | None = None
    skip = 0
    while True:
        filt = part.filt if after is None else {**part.filt, "from_ns": after}
        rows = records(store, part.trace_id, filt, offset=skip, limit=page).records
        for r in rows:
            yield RecordLine(r)
        if len(rows) < page:
            return
        last = rows[-1].ts_ns
        skip = skip + len(rows) if last == after else sum(1 for r in rows if r.ts_ns == last)
        after = last


class _Part(NamedTuple):
    """The part of a trace a story shows, and what it is read from."""

    trace_id: str
    spans: TraceSpans
    tree: SpanTree
    #: The spans shown, in tree order.
    shown: Walk[str]
    #: The filter of the records shown.
    filt: RecordFilter
    #: How many spans and records the part shows (a span recorded twice is shown once).
    size: int


def _part(store: StoreReader, trace_id: str, span_id: str | None, depth: int | None) -> _Part:
    """The whole trace, or ``span_id``'s subtree, down to ``depth`` levels, with the records of the spans shown
    (and, unless one span's subtree is shown, those under no recorded span)."""
    spans = store.trace_spans(trace_id, row_type=RecordView)
    tree = span_tree(spans.spans)
    scope = shown(tree, span_id, depth)
    filt: RecordFilter = {"kinds": _NOT_SPANS}
    if span_id is None and depth is None:
        return _Part(spans.trace_id, spans, tree, scope, filt, len(tree.spans) + sum(spans.counts.records))
    under = under_spans(spans)
    size = len(scope.span_ids) + sum(under[sid][0] for sid in scope.span_ids if sid in under)
    if span_id is None:
        size += sum(counted[0] for sid, counted in under.items() if sid not in tree.spans)
    filt["span_ids"] = [*scope.span_ids, *([None] if span_id is None else [])]
    return _Part(spans.trace_id, spans, tree, scope, filt, size)


def outline(store: StoreReader, trace_id: str) -> Outline:
    """The outline of ``trace_id`` (or a unique prefix): its span tree as columns with counts, no records."""
    with gc_paused():
        return build_outline(store.trace_spans(trace_id, row_type=SpanColumns))


def records(
    store: StoreReader,
    trace_id: str,
    filt: RecordFilter | None = None,
    *,
    offset: int = 0,
    limit: int = 500,
    around: str | None = None,
) -> RecordsPage:
    """A page of the records of ``trace_id`` (or a unique prefix) passing ``filt``, in time order, each with its
    service; ``around``: the page holding that record, or where it would be were it passing (raises
    ``NotFound`` when the trace has no such record)."""
    page = store.trace_records(trace_id, filt, offset=offset, limit=limit, around=around, row_type=TraceRecord)
    service_of = {n["node_id"]: n.get("service") for n in page.nodes}
    rows: list[TraceRecord] = page.rows
    for r in rows:
        r.service = service_of.get(r.node_id)
    return RecordsPage(total=page.total, offset=page.offset, records=rows)


def nodes(store: StoreReader, *, limit: int = 100, offset: int = 0) -> list[NodeView]:
    """Process runs, newest first."""
    return msgspec.convert(store.nodes(limit=limit, offset=offset), list[NodeView])


def record(store: StoreReader, record_id: str) -> RecordView:
    """One record by id, or by the start or end of one id only (raises ``NotFound``)."""
    return msgspec.convert(store.record(record_id), RecordView)


def span(store: StoreReader, trace_id: str, span_id: str) -> RecordView:
    """The record of span ``span_id`` of ``trace_id`` (or a unique prefix): of a span recorded twice the copy
    the story keeps (``copy_rank``; raises ``NotFound`` when the trace has no such span)."""
    copies = store.trace_records(trace_id, {"own_spans": [span_id]}, limit=None, nodes=False).rows
    if not copies:
        raise NotFound(f"no span {span_id} in trace {trace_id}")
    return msgspec.convert(max(copies, key=lambda r: copy_rank(r["end_ns"], r["id"])), RecordView)


def tail(
    store: StoreReader, *, after_id: str | None = None, limit: int = 100, last: bool = False, services: bool = False
) -> list[TraceRecord]:
    """Records stored after ``after_id`` in arrival order, then time order (``last``: the newest ``limit``);
    ``services``: each with the service of its process run (one lookup per run)."""
    rows = msgspec.convert(store.tail(after_id=after_id, limit=limit, last=last), list[TraceRecord])
    service_of: dict[str, str | None] = {}
    for r in rows if services else ():
        if r.node_id not in service_of:
            try:
                service_of[r.node_id] = store.node(r.node_id).get("service")
            except NotFound:  # a process run the store knows nothing of but its records
                service_of[r.node_id] = None
        r.service = service_of[r.node_id]
    return rows


def lineage(store: StoreReader, record_id: str, *, depth: int = 20) -> Lineage:
    """Where ``record_id`` (or the one record it is the start or end of) came from and what was derived from it,
    through ``sources`` (raises ``NotFound``).

    Each direction is walked one step at a time, up to ``depth`` steps; every record appears once, at its
    shortest distance (``depth``, 1 = direct), in time order within a step.
    """
    root = record(store, record_id)
    seen = {root.id}
    upstream: list[LineageRecord] = []
    frontier = [s for s in root.sources if s not in seen]
    level = 1
    while frontier and level <= depth:
        seen.update(frontier)
        found = _at(store.records(frontier), level)
        upstream.extend(found)
        frontier = sorted({s for r in found for s in r.sources if s not in seen})
        level += 1
    downstream: list[LineageRecord] = []
    frontier = [root.id]
    level = 1
    while frontier and level <= depth:
        found = _at([row for row in store.derived_from(frontier) if row["id"] not in seen], level)
        seen.update(r.id for r in found)
        downstream.extend(found)
        frontier = [r.id for r in found]
        level += 1
    return Lineage(record=root, upstream=upstream, downstream=downstream)


def _at(rows: list[dict[str, object]], level: int) -> list[LineageRecord]:
    return msgspec.convert([{**row, "depth": level} for row in rows], list[LineageRecord])
