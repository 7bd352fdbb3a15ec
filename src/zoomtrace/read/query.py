"""What the CLI, the UI and the demo ask for, answered in the read model.

A ``StoreReader`` answers in rows (plain dicts); these functions turn them into the read
model's Structs (``zoomtrace.read.model``), so what a reader is shown is exactly the model's
fields whatever the backend, and assemble what the store does not: a trace's story
(``zoomtrace.read._story``) and a record's lineage.
"""

from __future__ import annotations

from typing import cast

import msgspec

from zoomtrace.read._story import assemble
from zoomtrace.read.model import Lineage, LineageRecord, NodeView, RecordView, Story, TraceSummary
from zoomtrace.store.protocols import StoreReader, TraceFilter


def trace_filter(**criteria: str | int | bool | None) -> TraceFilter:
    """The ``TraceFilter`` of the criteria asked for: ``None``, ``""`` and ``False`` mean "not asked"."""
    return cast(TraceFilter, {k: v for k, v in criteria.items() if v is not None and v != "" and v is not False})


def traces(
    store: StoreReader, filt: TraceFilter | None = None, *, limit: int = 50, offset: int = 0
) -> list[TraceSummary]:
    """Trace summaries, newest first."""
    return msgspec.convert(store.traces(filt, limit=limit, offset=offset), list[TraceSummary])


def story(store: StoreReader, trace_id: str) -> Story:
    """The story of ``trace_id``, or of the one trace it is a unique prefix of (raises ``NotFound``)."""
    rows = store.trace_rows(trace_id)
    return assemble(rows.trace_id, rows.records, rows.nodes)


def nodes(store: StoreReader, *, limit: int = 100, offset: int = 0) -> list[NodeView]:
    """Process runs, newest first."""
    return msgspec.convert(store.nodes(limit=limit, offset=offset), list[NodeView])


def record(store: StoreReader, record_id: str) -> RecordView:
    """One record by id (raises ``NotFound``)."""
    return msgspec.convert(store.record(record_id), RecordView)


def tail(store: StoreReader, *, after_id: str | None = None, limit: int = 100, last: bool = False) -> list[RecordView]:
    """Records stored after ``after_id`` in arrival order (``last``: the newest ``limit``)."""
    return msgspec.convert(store.tail(after_id=after_id, limit=limit, last=last), list[RecordView])


def lineage(store: StoreReader, record_id: str, *, depth: int = 20) -> Lineage:
    """Where ``record_id`` came from and what was derived from it, through ``sources`` (raises ``NotFound``).

    Each direction is walked one step at a time, up to ``depth`` steps; every record appears once, at its
    shortest distance (``depth``, 1 = direct), in time order within a step.
    """
    root = record(store, record_id)
    seen = {record_id}
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
    frontier = [record_id]
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
