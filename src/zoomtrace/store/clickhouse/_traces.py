"""Pages of trace summaries (``TraceSummary`` rows), newest first, from ``trace_parts``.

A trace written by several inserts has a partial row per insert (until ``AggregatingMergeTree`` merges
them, and always across days), so a summary is a fold of its partial rows. A page is found without
folding the whole table:

1. A window of the newest partial rows is read: from the start of the N-th newest (the projection
   ``by_start`` keeps them in start order, so this reads the end of each part), N being 4 times the
   rows wanted, then 8 times more each time the window is too small for the page (filters), until it
   holds every row. A window's answer is exact for the traces that start in it, since all partial rows
   of such a trace start in it too.
2. Within a window the traces are ranked on the window's partial rows alone (cheap columns only), and
   only the page's traces are folded whole. A trace that also has older partial rows started before the
   window: it is dropped when its whole summary shows it, and the ranking asked again without it.
3. Services and environments are looked up in the nodes' *started* records when the page is shown, so a
   node whose start arrives after its traces is seen by all of them at once.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from zoomtrace.store.clickhouse._schema import TEXT_MATCH, among
from zoomtrace.store.clickhouse._transport import Param, Values
from zoomtrace.store.protocols import TraceFilter

#: The partial rows a page looks at first: this many, or so many per trace wanted; 8 times more each time after.
_FIRST_WINDOW: Final = 200
_ROWS_PER_TRACE: Final = 4
_GROWTH: Final = 8
#: Filters on a window's fold of partial rows: ``TraceFilter`` key -> (parameter, condition).
_FOLDED: Final = {
    "min_duration_ns": ("min_duration", "max(end_ns) - min(start_ns) >= {min_duration:Int64}"),
    "max_duration_ns": ("max_duration", "max(end_ns) - min(start_ns) <= {max_duration:Int64}"),
    "until_ns": ("until", "min(start_ns) <= {until:Int64}"),
}


def trace_page(values: Values, filt: TraceFilter, *, limit: int, offset: int) -> list[dict[str, Any]]:
    """The summaries of the traces passing ``filt``, newest first (by start, then trace id)."""
    if limit == 0:
        return []
    nodes: dict[str, list[str]] = {}
    for key in ("service", "env"):
        if filt.get(key):
            nodes[key] = nodes_whose(values, key, str(filt.get(key)))
            if not nodes[key]:
                return []
    since = filt.get("since_ns")
    wanted = offset + limit
    window = max(_FIRST_WINDOW, _ROWS_PER_TRACE * wanted)
    while True:
        lower, complete = _window_start(values, since, window)
        if lower is None:
            return []
        rows = _first_in_window(values, filt, nodes, None if complete and since is None else lower, wanted, complete)
        if rows is not None:
            return rows[offset:]
        window *= _GROWTH


def _window_start(values: Values, since: int | None, rows: int) -> tuple[int | None, bool]:
    """The start of the ``rows``-th newest partial row (of those starting at ``since`` or later), and
    whether that window holds all of them; None when there are none."""
    bound = " WHERE start_ns >= {since:Int64}" if since is not None else ""
    params: dict[str, Param] = {"rows": rows}
    if since is not None:
        params["since"] = int(since)
    ((start, count),) = values(
        f"SELECT min(start_ns), count() FROM (SELECT start_ns FROM trace_parts{bound} "
        "ORDER BY start_ns DESC LIMIT {rows:UInt64})",
        params,
    )
    return (int(start) if count else None), count < rows


def _first_in_window(
    values: Values, filt: TraceFilter, nodes: dict[str, list[str]], lower: int | None, wanted: int, complete: bool
) -> list[dict[str, Any]] | None:
    """The first ``wanted`` summaries of the traces that start at ``lower`` or later and pass ``filt``; None
    when fewer pass and the window is not ``complete`` (a larger window is needed: nothing is folded)."""
    params: dict[str, Param] = {"wanted": wanted}
    where: list[str] = []  # on the partial rows
    having: list[str] = []  # on the window's fold of them
    if lower is not None:
        where.append("start_ns >= {lower:Int64}")
        params["lower"] = lower
    if filt.get("text"):
        bound = " AND ts_ns >= {lower:Int64}" if lower is not None else ""
        where.append(
            "trace_id IN (SELECT assumeNotNull(trace_id) FROM records WHERE trace_id IS NOT NULL"
            f"{bound} AND ({TEXT_MATCH} OR positionCaseInsensitiveUTF8(type, {{text:String}}) > 0))"
        )
        params["text"] = str(filt.get("text"))
    for key, ids in nodes.items():
        having.append(f"hasAny(groupUniqArrayArray(node_ids), {{{key}:Array(String)}})")
        params[key] = ids
    if filt.get("errors_only"):
        having.append("max(error)")
    for key, (name, condition) in _FOLDED.items():
        value = filt.get(key)
        if value is not None:
            having.append(condition)
            params[name] = int(value)  # type: ignore[call-overload]
    older: list[str] = []
    while True:
        params["older"] = older
        ranked = values(
            "SELECT trace_id FROM trace_parts"
            + _clause(" WHERE ", [*where, *([f"NOT {among('trace_id', 'older', len(older))}"] if older else [])])
            + " GROUP BY trace_id"
            + _clause(" HAVING ", having)
            + " ORDER BY min(start_ns) DESC, trace_id DESC LIMIT {wanted:UInt64}",
            params,
        )
        if len(ranked) < wanted and not complete:
            return None
        summaries = trace_summaries(values, [tid for (tid,) in ranked])
        started_before = [t["trace_id"] for t in summaries if lower is not None and t["start_ns"] < lower]
        if not started_before:
            return summaries
        older += started_before


def _clause(keyword: str, conditions: list[str]) -> str:
    return keyword + " AND ".join(conditions) if conditions else ""


def trace_summaries(values: Values, trace_ids: list[str]) -> list[dict[str, Any]]:
    """The summaries of these traces, each folded from all its partial rows, newest first."""
    if not trace_ids:
        return []
    folded = values(
        "SELECT trace_id, min(start_ns), max(end_ns), (min(root) AS first).rank, first.name, first.node_id, "
        "arraySort(groupUniqArrayArray(node_ids)), sum(span_count), sum(log_count), sum(event_count), max(error), "
        f"sum(record_count) FROM trace_parts WHERE {among('trace_id', 'ids', len(trace_ids))} "
        "GROUP BY trace_id",
        {"ids": trace_ids},
    )
    identity = _identities(values, sorted({n for row in folded for n in row[6]}))
    rows = []
    for tid, start, end, rank, root_name, root_node, node_ids, spans, logs, events, error, total in folded:
        known = [identity[n] for n in node_ids if n in identity]
        rows.append(
            {
                "trace_id": tid,
                "start_ns": start,
                "end_ns": end,
                "duration_ns": end - start,
                "root_name": root_name if rank < 2 else None,
                "root_service": identity.get(root_node, (None, None))[0] if rank < 2 else None,
                "services": sorted({service for service, _ in known if service is not None}),
                "envs": sorted({env for _, env in known if env is not None}),
                "span_count": spans,
                "log_count": logs,
                "event_count": events,
                "error": bool(error),
                "record_count": total,
            }
        )
    rows.sort(key=lambda t: (t["start_ns"], t["trace_id"]), reverse=True)
    return rows


def _identities(values: Values, node_ids: list[str]) -> dict[str, tuple[Any, Any]]:
    """Node id -> (service, environment) of the nodes among ``node_ids`` whose *started* record is stored."""
    if not node_ids:
        return {}
    found = values(
        "SELECT node_id, argMax(attrs, (ts_ns, id)) FROM node_records "
        f"WHERE type = 'started' AND {among('node_id', 'ids', len(node_ids))} GROUP BY node_id",
        {"ids": node_ids},
    )
    out = {}
    for node_id, attrs in found:
        started = msgspec.json.decode(attrs)
        if isinstance(started, dict):
            out[node_id] = (started.get("service"), started.get("env"))
    return out


def nodes_whose(values: Values, key: str, value: str) -> list[str]:
    """The nodes whose *started* record has ``key`` (service or env) equal to ``value``."""
    found = values(
        "SELECT node_id FROM node_records WHERE type = 'started' GROUP BY node_id "
        "HAVING JSONExtract(argMax(attrs, (ts_ns, id)), {key:String}, 'Nullable(String)') = {value:String}",
        {"key": key, "value": value},
    )
    return [node_id for (node_id,) in found]
