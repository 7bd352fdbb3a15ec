"""What changed between commits, on ClickHouse: the DuckDB store's queries (``store/duckdb/_findings.py``) in
ClickHouse's dialect, row for row (a test runs the same scenario on both).

A record's *version* is its process run's: the commit of the run's *started* record (HEAD of the entry
point's repository) and whether that repository had uncommitted changes. Records are deduplicated by id
(``LIMIT 1 BY id``) as every query of this store does.
"""

from __future__ import annotations

from typing import Any, Final

from zoomtrace.store.clickhouse._schema import is_error
from zoomtrace.store.clickhouse._transport import Param, Values
from zoomtrace.store.protocols import NOT_APPLICATION, Location

#: Per process run: its service, commit and whether the entry point's repository was dirty.
_RUNS: Final = """runs AS (
    SELECT node_id, nullIf(JSONExtractString(a, 'service'), '') AS service,
        JSONExtract(a, 'commit', 'Nullable(String)') AS commit,
        toBool(arrayExists(r -> JSONExtractString(r, 'head') = ifNull(commit, '') AND JSONLength(r, 'dirty') > 0,
            JSONExtractArrayRaw(a, 'repos'))) AS dirty
    FROM (SELECT node_id, argMax(attrs, (ts_ns, id)) AS a FROM node_records WHERE type = 'started' GROUP BY node_id)
)"""

_ERRORS: Final = f"""errs AS (
    SELECT id, kind, type AS name, ts_ns, trace_id, span_id, parent_span_id, node_id,
        JSONExtract(ifNull(error, '{{}}'), 'type', 'Nullable(String)') AS etype,
        coalesce(JSONExtract(ifNull(error, '{{}}'), 'message', 'Nullable(String)'), message) AS msg,
        template, code_file, code_line, code_function,
        arrayFilter(f -> NOT match(f.1, {{pattern:String}}), JSONExtract(ifNull(error, '{{}}'), 'frames',
            'Array(Tuple(file String, line Int64, function String))')) AS app
    FROM records
    WHERE kind IN ('span', 'log') AND {is_error()}
    LIMIT 1 BY id
)"""

#: One row per occurrence (see the DuckDB store's ``_OCCURRENCES``).
_OCCURRENCES: Final = """covered AS (
    SELECT DISTINCT trace_id, if(kind = 'span', parent_span_id, span_id) AS under, etype, msg
    FROM errs WHERE etype IS NOT NULL
),
occ AS (
    SELECT e.id AS id, e.kind AS kind, e.name AS name, e.ts_ns AS ts_ns, e.trace_id AS trace_id,
        e.node_id AS node_id, e.etype AS etype, e.msg AS msg, runs.service AS service, runs.commit AS commit,
        ifNull(runs.dirty, false) AS dirty,
        if(length(e.app) > 0, toNullable(e.app[-1].1), CAST(e.code_file AS Nullable(String))) AS file,
        if(length(e.app) > 0, toNullable(e.app[-1].2), CAST(e.code_line AS Nullable(Int64))) AS line,
        if(length(e.app) > 0, toNullable(e.app[-1].3), CAST(e.code_function AS Nullable(String))) AS function,
        coalesce(CAST(e.template AS Nullable(String)), replaceRegexpAll(e.msg, '[0-9]+', '<n>')) AS tmpl
    FROM errs AS e LEFT JOIN runs ON runs.node_id = e.node_id
    WHERE NOT (e.kind = 'span' AND e.etype IS NOT NULL
        AND (ifNull(e.trace_id, ''), ifNull(e.span_id, ''), ifNull(e.etype, ''), ifNull(e.msg, '')) IN (
            SELECT ifNull(trace_id, ''), ifNull(under, ''), ifNull(etype, ''), ifNull(msg, '') FROM covered))
)"""

_SEEN: Final = ("ts_ns", "commit", "dirty", "node_id", "trace_id")


def error_groups(values: Values, *, service: str | None, since_ns: int | None, limit: int) -> list[dict[str, Any]]:
    """Error groups with an occurrence since ``since_ns``, most recently seen first (``StoreReader.error_groups``)."""
    seen = f"tuple({', '.join(_SEEN)})"
    params: dict[str, Param] = {
        "pattern": NOT_APPLICATION,
        "since": since_ns if since_ns is not None else -(2**63),
        "limit": max(0, limit),
    }
    where = ""
    if service:
        where = "WHERE service = {service:String}"
        params["service"] = service
    rows = values(
        f"""WITH {_RUNS}, {_ERRORS}, {_OCCURRENCES}
        SELECT etype, tmpl, file, line, function, argMax(msg, (ts_ns, id)), countIf(ts_ns >= {{since:Int64}}),
            arraySort(groupUniqArrayIf(assumeNotNull(service), service IS NOT NULL)),
            argMin(tuple(service), (ts_ns, id)).1, argMin(tuple(if(kind = 'span', name, NULL)), (ts_ns, id)).1,
            argMin({seen}, (ts_ns, id)), argMax({seen}, (ts_ns, id))
        FROM occ {where}
        GROUP BY etype, tmpl, file, line, function
        HAVING countIf(ts_ns >= {{since:Int64}}) > 0
        ORDER BY max(ts_ns) DESC, etype, tmpl
        LIMIT {{limit:UInt64}}""",
        params,
    )
    keys = ("type", "template", "file", "line", "function", "message", "count", "services", "first_service", "span")
    out = []
    for row in rows:
        group = dict(zip(keys, row[:10], strict=True))
        group["first_seen"] = dict(zip(_SEEN, row[10], strict=True))
        group["last_seen"] = dict(zip(_SEEN, row[11], strict=True))
        out.append(group)
    return out


def code_versions(values: Values, *, service: str | None, since_ns: int | None) -> list[dict[str, Any]]:
    """Per service, the versions (commit, dirty) its runs had, first run first (``StoreReader.code_versions``)."""
    where, params = _window(service, since_ns)
    # Per node first (a few rows), then per version: joining every record with its run took four times longer.
    rows = values(
        f"""WITH {_RUNS}
        SELECT runs.service, runs.commit, runs.dirty, min(n.first_ns), max(n.last_ns), sum(n.records)
        FROM (SELECT node_id, min(ts_ns) AS first_ns, max(last_ns) AS last_ns, count() AS records
              FROM (SELECT id, node_id, ts_ns, coalesce(end_ns, ts_ns) AS last_ns FROM records
                    WHERE kind != 'node'{where.records} LIMIT 1 BY id)
              GROUP BY node_id) AS n
        INNER JOIN runs ON runs.node_id = n.node_id
        WHERE runs.commit IS NOT NULL AND runs.service IS NOT NULL{where.runs}
        GROUP BY runs.service, runs.commit, runs.dirty
        ORDER BY runs.service, min(n.first_ns), runs.commit, runs.dirty""",
        params,
    )
    keys = ("service", "commit", "dirty", "first_seen_ns", "last_seen_ns", "records")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def location_stats(
    values: Values, *, service: str | None, since_ns: int | None, sample: int, location: Location | None = None
) -> list[dict[str, Any]]:
    """Per service, version and code location, the statistics of its finished spans
    (``StoreReader.location_stats``)."""
    where, params = _window(service, since_ns)
    at = _at(location, params, "s.")
    params["sample"] = max(0, sample)
    rows = values(
        f"""WITH {_RUNS},
        spans AS (
            SELECT id, trace_id, span_id, parent_span_id, node_id, type, code_file, code_function, cpu_ns, status,
                end_ns - ts_ns AS duration, {is_error()} AS failed
            FROM records
            WHERE kind = 'span' AND end_ns IS NOT NULL{where.records}
            LIMIT 1 BY id
        ),
        kids AS (
            SELECT trace_id, parent_span_id AS under, sum(duration) AS child_ns, countIf(failed) AS child_errors
            FROM spans WHERE parent_span_id IS NOT NULL
            GROUP BY trace_id, parent_span_id
        )
        SELECT runs.service, runs.commit, runs.dirty, s.type, s.code_file, s.code_function, count(),
            countIf(s.failed AND ifNull(k.child_errors, 0) = 0),
            quantileExact(0.5)(s.duration), quantileExact(0.95)(s.duration),
            quantileExact(0.95)(greatest(s.duration - ifNull(k.child_ns, 0), 0)),
            quantileExact(0.5)(s.cpu_ns), quantileExact(0.95)(s.cpu_ns),
            arraySlice(arrayMap(x -> x.2, arraySort(x -> x.1,
                groupArray((cityHash64(s.id), greatest(s.duration - ifNull(k.child_ns, 0), 0))))), 1, {{sample:UInt64}})
        FROM spans AS s
        INNER JOIN runs ON runs.node_id = s.node_id
        LEFT JOIN kids AS k ON k.trace_id = s.trace_id AND k.under = s.span_id
        WHERE ifNull(s.status, '') != 'interrupted' AND runs.commit IS NOT NULL AND runs.service IS NOT NULL
            {where.runs}{at}
        GROUP BY runs.service, runs.commit, runs.dirty, s.type, s.code_file, s.code_function
        ORDER BY runs.service, runs.commit, runs.dirty, s.type, s.code_file, s.code_function""",
        params,
    )
    keys = (
        "service",
        "commit",
        "dirty",
        "span",
        "file",
        "function",
        "count",
        "errors",
        "p50_ns",
        "p95_ns",
        "self_p95_ns",
        "cpu_p50_ns",
        "cpu_p95_ns",
        "sample",
    )
    return [dict(zip(keys, row, strict=True)) for row in rows]


def location_traces(
    values: Values, *, service: str, location: Location, commit: str, dirty: bool, limit: int
) -> list[dict[str, Any]]:
    """The slowest spans of a location in one version of a service (``StoreReader.location_traces``)."""
    where, params = _window(service, None)
    at = _at(location, params, "r.")
    params.update({"commit": commit, "dirty": int(dirty), "limit": max(0, limit)})
    rows = values(
        f"""WITH {_RUNS}
        SELECT r.trace_id, r.span_id, r.ts_ns, r.end_ns - r.ts_ns AS duration, r.status
        FROM (SELECT id, trace_id, span_id, ts_ns, end_ns, status, node_id, type, code_file, code_function
              FROM records WHERE kind = 'span' AND end_ns IS NOT NULL LIMIT 1 BY id) AS r
        INNER JOIN runs ON runs.node_id = r.node_id
        WHERE runs.commit = {{commit:String}} AND runs.dirty = toBool({{dirty:UInt8}}){where.runs}{at}
        ORDER BY duration DESC, r.id
        LIMIT {{limit:UInt64}}""",
        params,
    )
    keys = ("trace_id", "span_id", "ts_ns", "duration_ns", "status")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def _at(location: Location | None, params: dict[str, Param], r: str) -> str:
    """Conditions on the spans of ``location`` (columns prefixed with ``r``; its values added to ``params``)."""
    if location is None:
        return ""
    params.update({"span": location.span, "file": location.file or "", "function": location.function or ""})
    return (
        f" AND {r}type = {{span:String}} AND ifNull({r}code_file, '') = {{file:String}}"
        f" AND ifNull({r}code_function, '') = {{function:String}}"
    )


class _Where:
    """Conditions on the records read (``records``) and on their runs (``runs``)."""

    def __init__(self, records: str, runs: str) -> None:
        self.records = records
        self.runs = runs


def _window(service: str | None, since_ns: int | None) -> tuple[_Where, dict[str, Param]]:
    params: dict[str, Param] = {}
    records = runs = ""
    if since_ns is not None:
        records = " AND ts_ns >= {since:Int64}"
        params["since"] = since_ns
    if service:
        runs = " AND runs.service = {service:String}"
        params["service"] = service
    return _Where(records, runs), params
