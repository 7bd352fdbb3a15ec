"""What changed between commits, on DuckDB: error groups, the versions a service ran and per-location span
statistics, each one SQL query (``zoomtrace.read.changes`` compares them; docs/changes.md).

A record's *version* is its process run's: the run's commit (``nodes.commit``, HEAD of the entry point's
repository) and whether that repository had uncommitted changes (a *dirty* run).
"""

from __future__ import annotations

from typing import Any, Final

import duckdb

from zoomtrace.store._decode import decode_rows
from zoomtrace.store.duckdb._common import IS_ERROR
from zoomtrace.store.protocols import NOT_APPLICATION, Location

#: Per process run: its service, commit and whether the entry point's repository was dirty.
_RUNS: Final = """runs AS (
    SELECT node_id, service, commit,
        coalesce(len(list_filter(json_transform(repos, '[{"head": "VARCHAR", "dirty": ["VARCHAR"]}]'),
            lambda r: r.head = commit AND len(r.dirty) > 0)) > 0, false) AS dirty
    FROM nodes
)"""

#: Error records with their exception's type, message and frames.
_ERRORS: Final = f"""errs AS (
    SELECT r.id, r.kind, r.type AS name, r.ts_ns, r.trace_id, r.span_id, r.parent_span_id, r.node_id,
        json_extract_string(r.error, '$.type') AS etype,
        coalesce(json_extract_string(r.error, '$.message'), r.message) AS msg,
        r.template, r.code_file, r.code_line, r.code_function,
        list_filter(coalesce(json_transform(r.error -> '$.frames',
            '[{{"file": "VARCHAR", "line": "BIGINT", "function": "VARCHAR"}}]'), []),
            lambda f: NOT regexp_matches(coalesce(f.file, ''), '{NOT_APPLICATION}')) AS app
    FROM records AS r
    WHERE r.kind IN ('span', 'log') AND {IS_ERROR}
)"""

#: One row per occurrence: a failed span whose exception a record directly under it holds as well (the same
#: exception on its way out) is that record's occurrence, not another one.
_OCCURRENCES: Final = """covered AS (
    SELECT DISTINCT trace_id, CASE WHEN kind = 'span' THEN parent_span_id ELSE span_id END AS under, etype, msg
    FROM errs WHERE etype IS NOT NULL
),
occ AS (
    SELECT e.*, runs.service, runs.commit, coalesce(runs.dirty, false) AS dirty,
        CASE WHEN len(e.app) > 0 THEN e.app[-1].file ELSE e.code_file END AS file,
        CASE WHEN len(e.app) > 0 THEN e.app[-1].line ELSE e.code_line END AS line,
        CASE WHEN len(e.app) > 0 THEN e.app[-1].function ELSE e.code_function END AS function,
        coalesce(e.template, regexp_replace(e.msg, '[0-9]+', '<n>', 'g')) AS tmpl
    FROM errs AS e LEFT JOIN runs USING (node_id)
    WHERE NOT (e.kind = 'span' AND e.etype IS NOT NULL AND EXISTS (
        SELECT 1 FROM covered AS c
        WHERE c.trace_id = e.trace_id AND c.under = e.span_id AND c.etype = e.etype AND c.msg = e.msg))
)"""

_SEEN: Final = "{'ts_ns': ts_ns, 'commit': commit, 'dirty': dirty, 'node_id': node_id, 'trace_id': trace_id}"


def error_groups(
    con: duckdb.DuckDBPyConnection, *, service: str | None, since_ns: int | None, limit: int
) -> list[dict[str, Any]]:
    """Error groups with an occurrence since ``since_ns``, most recently seen first (``StoreReader.error_groups``)."""
    where = "WHERE service = $service" if service else ""
    query = f"""WITH {_RUNS}, {_ERRORS}, {_OCCURRENCES}
    SELECT to_json({{'type': etype, 'template': tmpl, 'file': file, 'line': line, 'function': function,
        'message': arg_max(msg, (ts_ns, id)), 'count': count(*) FILTER (WHERE ts_ns >= $since),
        'services': list_sort(list(DISTINCT service) FILTER (WHERE service IS NOT NULL)),
        'first_service': arg_min(service, (ts_ns, id)),
        'span': arg_min(CASE WHEN kind = 'span' THEN name END, (ts_ns, id)),
        'first_seen': arg_min({_SEEN}, (ts_ns, id)), 'last_seen': arg_max({_SEEN}, (ts_ns, id))}})
    FROM occ {where}
    GROUP BY etype, tmpl, file, line, function
    HAVING count(*) FILTER (WHERE ts_ns >= $since) > 0
    ORDER BY max(ts_ns) DESC, etype, tmpl
    LIMIT $limit"""
    params: dict[str, Any] = {"since": since_ns if since_ns is not None else -(2**63), "limit": max(0, limit)}
    if service:
        params["service"] = service
    return _decoded(con.execute(query, params).fetchall())


def code_versions(con: duckdb.DuckDBPyConnection, *, service: str | None, since_ns: int | None) -> list[dict[str, Any]]:
    """Per service, the versions (commit, dirty) its runs had, first run first (``StoreReader.code_versions``)."""
    where, params = _window(service, since_ns)
    query = f"""WITH {_RUNS}
    SELECT to_json({{'service': service, 'commit': commit, 'dirty': dirty, 'first_seen_ns': min(r.ts_ns),
        'last_seen_ns': max(coalesce(r.end_ns, r.ts_ns)), 'records': count(*)}})
    FROM records AS r JOIN runs USING (node_id)
    WHERE r.kind <> 'node' AND runs.commit IS NOT NULL AND runs.service IS NOT NULL {where}
    GROUP BY service, commit, dirty
    ORDER BY service, min(r.ts_ns), commit, dirty"""
    return _decoded(con.execute(query, params).fetchall())


def location_stats(
    con: duckdb.DuckDBPyConnection,
    *,
    service: str | None,
    since_ns: int | None,
    sample: int,
    location: Location | None = None,
) -> list[dict[str, Any]]:
    """Per service, version and code location, the statistics of its finished spans
    (``StoreReader.location_stats``)."""
    where, params = _window(service, since_ns)
    where += _at(location, params)
    params["sample"] = max(0, sample)
    kids_since = " AND ts_ns >= $since" if since_ns is not None else ""
    query = f"""WITH {_RUNS},
    kids AS (
        SELECT trace_id, parent_span_id AS span_id, sum(end_ns - ts_ns) AS child_ns,
            count(*) FILTER (WHERE {IS_ERROR}) AS child_errors
        FROM records
        WHERE kind = 'span' AND end_ns IS NOT NULL AND parent_span_id IS NOT NULL{kids_since}
        GROUP BY trace_id, parent_span_id
    ),
    spans AS (
        SELECT runs.service, runs.commit, runs.dirty, r.id, r.type, r.code_file, r.code_function, r.cpu_ns,
            r.end_ns - r.ts_ns AS duration,
            greatest(r.end_ns - r.ts_ns - coalesce(kids.child_ns, 0), 0) AS own,
            {IS_ERROR} AND coalesce(kids.child_errors, 0) = 0 AS failed
        FROM records AS r JOIN runs USING (node_id) LEFT JOIN kids USING (trace_id, span_id)
        WHERE r.kind = 'span' AND r.end_ns IS NOT NULL AND coalesce(r.status, '') <> 'interrupted'
            AND runs.commit IS NOT NULL AND runs.service IS NOT NULL{where}
    )
    SELECT to_json({{'service': service, 'commit': commit, 'dirty': dirty, 'span': type, 'file': code_file,
        'function': code_function, 'count': count(*), 'errors': count(*) FILTER (WHERE failed),
        'p50_ns': quantile_disc(duration, 0.5), 'p95_ns': quantile_disc(duration, 0.95),
        'self_p95_ns': quantile_disc(own, 0.95),
        'cpu_p50_ns': quantile_disc(cpu_ns, 0.5), 'cpu_p95_ns': quantile_disc(cpu_ns, 0.95),
        'sample': list(own ORDER BY hash(id))[1:$sample]}})
    FROM spans
    GROUP BY service, commit, dirty, type, code_file, code_function
    ORDER BY service, commit, dirty, type, code_file, code_function"""
    return _decoded(con.execute(query, params).fetchall())


def location_traces(
    con: duckdb.DuckDBPyConnection, *, service: str, location: Location, commit: str, dirty: bool, limit: int
) -> list[dict[str, Any]]:
    """The slowest spans of a location in one version of a service (``StoreReader.location_traces``)."""
    where, params = _window(service, None)
    where += _at(location, params)
    params.update({"commit": commit, "dirty": dirty, "limit": max(0, limit)})
    query = f"""WITH {_RUNS}
    SELECT to_json({{'trace_id': r.trace_id, 'span_id': r.span_id, 'ts_ns': r.ts_ns,
        'duration_ns': r.end_ns - r.ts_ns, 'status': r.status}})
    FROM records AS r JOIN runs USING (node_id)
    WHERE r.kind = 'span' AND r.end_ns IS NOT NULL AND runs.commit = $commit AND runs.dirty = $dirty{where}
    ORDER BY r.end_ns - r.ts_ns DESC, r.id
    LIMIT $limit"""
    return _decoded(con.execute(query, params).fetchall())


def _at(location: Location | None, params: dict[str, Any]) -> str:
    """Conditions on the spans of ``location`` (its values added to ``params``)."""
    if location is None:
        return ""
    params.update({"span": location.span, "file": location.file, "function": location.function})
    return (
        " AND r.type = $span AND r.code_file IS NOT DISTINCT FROM $file"
        " AND r.code_function IS NOT DISTINCT FROM $function"
    )


def _window(service: str | None, since_ns: int | None) -> tuple[str, dict[str, Any]]:
    where = ""
    params: dict[str, Any] = {}
    if service:
        where += " AND runs.service = $service"
        params["service"] = service
    if since_ns is not None:
        where += " AND r.ts_ns >= $since"
        params["since"] = since_ns
    return where, params


def _decoded(fetched: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return decode_rows("[" + ",".join(row[0] for row in fetched) + "]") if fetched else []
