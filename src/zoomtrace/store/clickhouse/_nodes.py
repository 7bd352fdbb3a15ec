"""Process runs (``NodeView`` rows) folded from their lifecycle records and record counts.

The fold is done here rather than in SQL: for the few nodes of a page or a story, two plain queries and
a Python loop take a few milliseconds, where the engine spent about 20 ms planning the SQL fold. The
rules are the DuckDB store's (``store/duckdb/_writer.py``), applied in time order so that any order of
arrival gives the same row: *started* fills the identity, ``repos`` is the *started* list and then the
*repo* records of other roots, the latest *stopped* record wins, and the *lost* report with the largest
total (counts are cumulative). The ``nodes`` view (``_schema``) is the same fold in SQL for SQL users; a test
keeps them equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgspec

from zoomtrace.store.clickhouse._schema import among
from zoomtrace.store.clickhouse._transport import Param, Values

#: Identity fields of a *started* record's attributes -> the node row's field (``None`` is not copied).
_IDENTITY: Final = (
    ("service", "service"),
    ("env", "env"),
    ("group", "group"),
    ("version", "version"),
    ("host", "host"),
    ("pid", "pid"),
    ("parent_node_id", "parent_node_id"),
    ("python", "python"),
    ("platform", "platform"),
    ("commit", "commit"),
    ("branch", "branch"),
)
_COUNTS: Final = ("record_count", "span_count", "log_count", "event_count", "raw_count", "error_count")


def node_page(values: Values, *, limit: int, offset: int) -> list[dict[str, Any]]:
    """Process runs, newest first: by start, or by first record for a run whose start is not stored."""
    page = values(
        "SELECT c.node_id FROM (SELECT node_id, min(first_seen_ns) AS first_seen FROM node_counts "
        "GROUP BY node_id) AS c LEFT JOIN (SELECT node_id, argMax(coalesce(nullIf(JSONExtract(attrs, "
        "'started_ns', 'Nullable(Int64)'), 0), ts_ns), (ts_ns, id)) AS started FROM node_records "
        "WHERE type = 'started' GROUP BY node_id) AS s ON s.node_id = c.node_id "
        "ORDER BY if(s.node_id = '', c.first_seen, s.started) DESC, c.node_id DESC "
        "LIMIT {limit:UInt64} OFFSET {offset:UInt64}",
        {"limit": limit, "offset": offset},
    )
    return node_rows(values, [node_id for (node_id,) in page])


def node_rows(values: Values, node_ids: list[str]) -> list[dict[str, Any]]:
    """The rows of these nodes (those the store knows), in the order given: two plain queries and a fold."""
    if not node_ids:
        return []
    params: dict[str, Param] = {"ids": node_ids}
    counts = {
        row[0]: row[1:]
        for row in values(
            "SELECT node_id, min(first_seen_ns), sum(record_count), sum(span_count), sum(log_count), "
            "sum(event_count), sum(raw_count), sum(error_count) FROM node_counts "
            f"WHERE {among('node_id', 'ids', len(node_ids))} GROUP BY node_id",
            params,
        )
    }
    lifecycle: dict[str, list[Any]] = {}
    for node_id, *record in values(
        "SELECT node_id, type, ts_ns, id, attrs, error FROM node_records "
        f"WHERE {among('node_id', 'ids', len(node_ids))} AND type IN ('started', 'stopped', 'repo', 'lost') "
        "ORDER BY node_id, ts_ns, id LIMIT 1 BY node_id, id",
        params,
    ):
        lifecycle.setdefault(node_id, []).append(record)
    return [_fold(n, counts.get(n), lifecycle.get(n, [])) for n in node_ids if n in counts or n in lifecycle]


def _fold(node_id: str, counts: Sequence[Any] | None, lifecycle: list[Any]) -> dict[str, Any]:
    """A ``NodeView`` row from the node's ``counts`` (``first_seen_ns`` and ``_COUNTS``, summed) and its
    lifecycle records ``[type, ts_ns, id, attrs JSON, error JSON]`` in time order."""
    row: dict[str, Any] = {"node_id": node_id, **dict.fromkeys(k for _, k in _IDENTITY)}
    row.update(repos=None, started_ns=None, stopped_ns=None, stop_cause=None, stop_error=None, lost=None)
    row.update(argv=None, attrs=None)
    for type_, ts_ns, _, attrs_text, error_text in lifecycle:
        attrs = msgspec.json.decode(attrs_text)
        if not isinstance(attrs, dict):
            continue
        if type_ == "started":
            for key, field in (*_IDENTITY, ("argv", "argv")):
                if attrs.get(key) is not None:
                    row[field] = attrs[key]
            row["started_ns"] = attrs.get("started_ns") or ts_ns
            repos = [repo for repo in attrs.get("repos") or [] if isinstance(repo, dict)]
            roots = {repo.get("root") for repo in repos}
            row["repos"] = repos + [repo for repo in row["repos"] or [] if repo.get("root") not in roots]
            row["attrs"] = attrs
        elif type_ == "stopped":
            stopped_ns = attrs.get("stopped_ns") or ts_ns
            if row["stopped_ns"] is None or stopped_ns >= row["stopped_ns"]:
                row["stopped_ns"] = stopped_ns
                row["stop_cause"] = attrs.get("cause")
                row["stop_error"] = msgspec.json.decode(error_text) if error_text is not None else None
        elif type_ == "repo":
            repos = row["repos"] or []
            if attrs.get("root") not in {repo.get("root") for repo in repos}:
                row["repos"] = [*repos, attrs]
        elif type_ == "lost":
            lost = attrs.get("lost")
            if isinstance(lost, dict):
                old = row["lost"] or {}
                if _total(lost) >= _total(old):
                    row["lost"] = lost
    row["repos"] = row["repos"] or []
    first_seen, *totals = counts if counts is not None else (None, *(0 for _ in _COUNTS))
    row["first_seen_ns"] = first_seen
    row.update(zip(_COUNTS, totals, strict=True))
    return {field: row[field] for field in _FIELDS}


def _total(lost: dict[str, Any]) -> int:
    return sum(v for v in lost.values() if isinstance(v, int))


#: The order of a ``NodeView`` row's fields.
_FIELDS: Final = (
    "node_id",
    *(field for _, field in _IDENTITY),
    "repos",
    "started_ns",
    "stopped_ns",
    "stop_cause",
    "stop_error",
    "lost",
    "argv",
    "attrs",
    "first_seen_ns",
    *_COUNTS,
)
