"""One trace read in parts: its spans and counts (``trace_spans``) and pages of its records (``trace_records``).

Records are ordered by ``(trace_id, ts_ns, id)`` and partitioned by day, so every query here reads one
primary-key range per day between the trace's first and last record, and a page in time order is read in
that order. As everywhere in this store, records are deduplicated by id (``LIMIT 1 BY id``, ``uniqExact``)
before a merge has done it. A page's positions are found on the cheap columns (``ts_ns``, ``id``) and only
its own rows are built as JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import msgspec

from zoomtrace.errors import NotFound
from zoomtrace.store._decode import fields_of
from zoomtrace.store.clickhouse import _rows
from zoomtrace.store.clickhouse._nodes import node_rows
from zoomtrace.store.clickhouse._schema import TEXT_MATCH, among, is_error
from zoomtrace.store.clickhouse._traces import nodes_whose
from zoomtrace.store.clickhouse._transport import Param, Values
from zoomtrace.store.protocols import (
    LEVELS,
    TRACE_KINDS,
    RecordFilter,
    RecordPage,
    SpanColumns,
    SpanCounts,
    TraceSpans,
    no_record_in_trace,
    span_columns,
)

#: A query answering one JSON object per line (``TabSeparatedRaw`` of a row expression).
Raw = Callable[[str, Mapping[str, Param] | None], bytes]

#: The trace's range of the primary key (parameters ``trace``, ``start``, ``end``).
_TRACE: Final = "trace_id = {trace:String} AND ts_ns >= {start:Int64} AND ts_ns <= {end:Int64}"

_NO_COUNTS: Final = SpanCounts([], [], [], [], [])


class _Link(msgspec.Struct, gc=False):
    trace_id: str | None
    span_id: str | None


class _SpanRow(msgspec.Struct, kw_only=True, gc=False):
    """What ``SpanColumns`` holds of a span record (the store builds only these fields)."""

    id: str
    span_id: str | None = None
    parent_span_id: str | None = None
    type: str
    node_id: str
    ts_ns: int
    end_ns: int | None = None
    status: str | None = None
    error: Any = None
    links: list[_Link] = []


#: In one pass over the trace's records, each once: per span, its spans' and its other records' counts
#: (``SpanCounts``), first and last time and nodes, from which the trace's bounds and nodes are folded.
_PER_SPAN: Final = f"""SELECT span_id, kind = 'span' AS is_span, count(), countIf(kind = 'log'),
    countIf(kind = 'event'), countIf({is_error()}), min(ts_ns), max(greatest(ts_ns, ifNull(end_ns, ts_ns))),
    groupUniqArray(toString(node_id))
FROM (SELECT id, span_id, kind, status, error, level, ts_ns, end_ns, node_id FROM records
      WHERE {_TRACE} AND kind != 'node' LIMIT 1 BY id)
GROUP BY span_id, is_span"""


def trace_spans(raw: Raw, values: Values, trace: tuple[str, int, int], row_type: type[Any]) -> TraceSpans:
    """The span records of ``trace`` (id, first and last record time), its counts and its nodes."""
    params = _trace_params(trace)
    as_rows = _SpanRow if row_type is SpanColumns else row_type
    row = _rows.record(fields_of(as_rows))
    spans: Any = _rows.decode_rows(
        # In time order: the span tree sorts them so, and sorts a sorted list in a fraction of the time.
        raw(f"SELECT {row} FROM records WHERE {_TRACE} AND kind = 'span' ORDER BY ts_ns, id LIMIT 1 BY id", params),
        as_rows,
    )
    if row_type is SpanColumns:
        spans = span_columns(spans)
    groups = values(_PER_SPAN, params)
    if not groups:
        return TraceSpans(trace[0], trace[1], trace[2], spans, _NO_COUNTS, [], [])
    first = min(group[6] for group in groups)
    last = max(group[7] for group in groups)
    node_ids = sorted({node for group in groups for node in group[8]})
    counted = [group[:1] + group[2:6] for group in groups if not group[1]]
    counts = SpanCounts(*(list(column) for column in zip(*counted, strict=True))) if counted else _NO_COUNTS
    return TraceSpans(trace[0], first, last, spans, counts, node_ids, node_rows(values, node_ids))


def trace_records(
    raw: Raw,
    values: Values,
    trace: tuple[str, int, int],
    filt: RecordFilter,
    *,
    offset: int,
    limit: int | None,
    around: str | None,
    row_type: type[Any],
    nodes: bool,
) -> RecordPage:
    """A page of ``trace``'s records passing ``filt``, in time order (``StoreReader.trace_records``)."""
    params = _trace_params(trace)
    conditions = _conditions(values, filt, params)
    if conditions is None:  # a service without process runs: nothing passes
        return RecordPage(0, 0, [], [])
    where = " AND ".join([_TRACE, *conditions])
    everything = limit is None and not offset and around is None
    # Reading every passing record, their number is that of the rows read.
    total = 0 if everything else values(f"SELECT uniqExact(id) FROM records WHERE {where}", params)[0][0]
    offset = max(0, int(offset))
    if around is not None:
        position = _position(values, where, params, around)
        offset = position - position % limit if limit else 0
    order = "ORDER BY ts_ns, id LIMIT 1 BY id"
    row = _rows.record(fields_of(row_type))
    if limit is None and offset == 0:
        query = f"SELECT {row} FROM records WHERE {where} {order}"
    else:
        params.update(offset=offset, limit=max(0, int(limit)) if limit is not None else 0)
        page = " LIMIT {limit:UInt64}" if limit is not None else ""
        query = (
            f"SELECT {row} FROM records WHERE {_TRACE} AND id IN (SELECT id FROM records WHERE {where} "
            f"{order}{page} OFFSET {{offset:UInt64}}) {order}"
        )
    rows = _rows.decode_rows(raw(query, params), row_type)
    if not nodes:
        return RecordPage(len(rows) if everything else int(total), offset, rows, [])
    node_ids = sorted({r["node_id"] if row_type is dict else r.node_id for r in rows})
    return RecordPage(len(rows) if everything else int(total), offset, rows, node_rows(values, node_ids))


def _trace_params(trace: tuple[str, int, int]) -> dict[str, Param]:
    trace_id, start, end = trace
    return {"trace": trace_id, "start": start, "end": end}


def _conditions(values: Values, filt: RecordFilter, params: dict[str, Param]) -> list[str] | None:
    """Conditions of the records passing ``filt`` (its values added to ``params``); None when none can."""
    where = ["kind IN {kinds:Array(String)}"]
    params["kinds"] = list(filt.get("kinds", TRACE_KINDS))
    if "span_ids" in filt:
        span_ids = [s for s in filt["span_ids"] if s is not None]
        under = [among("span_id", "span_ids", len(span_ids))]
        params["span_ids"] = span_ids
        if None in filt["span_ids"]:
            under.append(
                "span_id IS NULL OR span_id NOT IN (SELECT assumeNotNull(span_id) FROM records "
                f"WHERE {_TRACE} AND kind = 'span' AND span_id IS NOT NULL)"
            )
        where.append(f"kind != 'span' AND ({' OR '.join(under)})")
    if "own_spans" in filt:
        where.append(f"kind = 'span' AND {among('span_id', 'own_spans', len(filt['own_spans']))}")
        params["own_spans"] = list(filt["own_spans"])
    if filt.get("from_ns") is not None:
        where.append("ts_ns >= {from_ns:Int64}")
        params["from_ns"] = int(filt["from_ns"])
    if filt.get("to_ns") is not None:
        where.append("ts_ns < {to_ns:Int64}")
        params["to_ns"] = int(filt["to_ns"])
    if filt.get("min_level"):
        names = list(LEVELS)
        ranks = ", ".join(str(LEVELS[name]) for name in names)
        where.append(
            f"(level IS NULL OR transform(upper(assumeNotNull(level)), {{level_names:Array(String)}}, [{ranks}], "
            f"{LEVELS['INFO']}) >= {{min_level:Int64}})"
        )
        params.update(level_names=names, min_level=LEVELS.get(str(filt["min_level"]).upper(), LEVELS["INFO"]))
    if filt.get("service"):
        node_ids = nodes_whose(values, "service", str(filt["service"]))
        if not node_ids:
            return None
        where.append(among("node_id", "service_nodes", len(node_ids)))
        params["service_nodes"] = node_ids
    if filt.get("text"):
        where.append(f"({TEXT_MATCH} OR positionCaseInsensitiveUTF8(type, {{text:String}}) > 0)")
        params["text"] = str(filt["text"])
    if filt.get("errors_only"):
        where.append(is_error())
    return where


def _position(values: Values, where: str, params: dict[str, Param], record_id: str) -> int:
    """How many records passing ``where`` come before the trace's record ``record_id`` in time order (where it
    is, or would be were it passing; raises NotFound when the trace has no such record)."""
    found = values(
        f"SELECT ts_ns FROM records WHERE {_TRACE} AND id = {{around:String}} LIMIT 1", {**params, "around": record_id}
    )
    if not found:
        raise NotFound(no_record_in_trace(record_id))
    ((before,),) = values(
        f"SELECT uniqExact(id) FROM records WHERE {where} AND (ts_ns < {{at:Int64}} OR "
        "(ts_ns = {at:Int64} AND id < {around:String}))",
        {**params, "at": found[0][0], "around": record_id},
    )
    return int(before)
