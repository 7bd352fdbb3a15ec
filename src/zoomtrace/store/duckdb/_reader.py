"""Reading the DuckDB store: trace summaries, a trace's rows, nodes, records, search, tail and read-only SQL.

Rows are plain dicts named as the read model's fields (``zoomtrace.read.model``). DuckDB
builds each row as a JSON object and msgspec decodes them in one call: for the 100,000
records of a big story that is several times faster than converting DuckDB's tuples in
Python. A row's fields follow the table's columns, so a column added to ``schema.sql``
is shown as itself without a change here; ``_SHOWN`` lists the columns shown otherwise.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Sequence
from typing import Any, Final

import duckdb
import msgspec

from zoomtrace.errors import NotFound, ReadOnlySQL, StoreError
from zoomtrace.store._decode import decode_rows, fields_of
from zoomtrace.store.duckdb import _findings
from zoomtrace.store.duckdb._common import IS_ERROR, _one_line
from zoomtrace.store.ids import CANDIDATES, short_enough, the_one, unknown
from zoomtrace.store.protocols import (
    LEVELS,
    TRACE_KINDS,
    Location,
    RecordFilter,
    RecordPage,
    SpanColumns,
    SpanCounts,
    TraceFilter,
    TraceRows,
    TraceSpans,
    no_record_in_trace,
    too_large,
)

#: Per table, the columns a reader does not see as themselves: ``column -> (field, SQL expression)``,
#: or ``None`` for a column that is internal or folded into another field. JSON and list columns
#: hold NULL for an empty value (schema.sql); a row shows the empty value again.
_SHOWN: Final[dict[str, dict[str, tuple[str, str] | None]]] = {
    "records": {
        "links": ("links", "coalesce(links, '[]'::JSON)"),
        "code_file": (
            "code",
            "CASE WHEN code_file IS NULL THEN NULL ELSE {'file': code_file, 'line': code_line, "
            "'function': code_function, 'commit': code_commit, 'dirty': coalesce(code_dirty, false)} END",
        ),
        "code_line": None,
        "code_function": None,
        "code_commit": None,
        "code_dirty": None,
        "attrs": ("attrs", "coalesce(attrs, '{}'::JSON)"),
        "sources": ("sources", "coalesce(sources, []::VARCHAR[])"),
        "schema_version": ("v", "schema_version"),
        "ingest_seq": None,
    },
    "nodes": {
        "grp": ("group", "grp"),
        "repos": ("repos", "coalesce(repos, '[]'::JSON)"),
    },
    "traces": {
        "trace_key": None,
        "root_span_id": None,
        "root_node_id": None,
        "root_start_ns": None,
        "root_is_top": None,
        "node_ids": None,
        "services": ("services", "coalesce(services, []::VARCHAR[])"),
        "envs": ("envs", "coalesce(envs, []::VARCHAR[])"),
    },
}


def _rows(fetched: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Rows fetched with their JSON object first (see ``DuckReader._row``), decoded in one call."""
    if not fetched:
        return []
    return decode_rows("[" + ",".join([r[0] for r in fetched]) + "]")


def _array(row: str, order: str | None = None) -> str:
    """SQL for the JSON array of a query's rows, joined by the engine (one string, not one per row: for
    100,000 records half a second less than joining them in Python)."""
    within = f" ORDER BY {order}" if order else ""
    return f"'[' || coalesce(string_agg({row}, ','{within}), '') || ']'"


def _level_rank(column: str) -> str:
    """SQL ranking a level as ``LEVELS`` does (a level not listed ranks as INFO)."""
    cases = " ".join(f"WHEN '{name}' THEN {rank}" for name, rank in LEVELS.items())
    return f"CASE upper({column}) {cases} ELSE {LEVELS['INFO']} END"


def _like(text: str) -> str:
    r"""An ILIKE pattern matching ``text`` literally anywhere (``\`` escapes)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class DuckReader:
    """The read half of ``DuckStore``: the ``StoreReader`` protocol on DuckDB."""

    _con: duckdb.DuckDBPyConnection

    @functools.cached_property
    def _row_sql(self) -> dict[tuple[str, frozenset[str] | None], str]:
        """Per table and fields, the SQL of ``_row`` (filled on first use: the columns are asked of the database
        once)."""
        return {}

    def _row(self, table: str, fields: frozenset[str] | None = None) -> str:
        """SQL for one row of ``table`` as the JSON object a reader sees (each column as itself but ``_SHOWN``),
        with only ``fields`` when given."""
        key = (table, fields)
        if key not in self._row_sql:
            shown = _SHOWN[table]
            pairs = []
            for column, *_ in self._con.execute(f"SELECT * FROM {table} LIMIT 0").description or ():
                field = shown.get(column, (column, f'"{column}"'))
                if field is not None and (fields is None or field[0] in fields):
                    pairs.append(f"'{field[0]}': {field[1]}")
            self._row_sql[key] = f"to_json({{{', '.join(pairs)}}})"
        return self._row_sql[key]

    def traces(self, filt: TraceFilter | None = None, *, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        """Trace summaries, newest first (by start time, then trace id, for a deterministic order)."""
        filt = filt or {}
        where: list[str] = []
        params: dict[str, Any] = {"limit": max(0, int(limit)), "offset": max(0, int(offset))}
        if filt.get("service"):
            where.append("list_contains(services, $service)")
            params["service"] = filt["service"]
        if filt.get("env"):
            where.append("list_contains(envs, $env)")
            params["env"] = filt["env"]
        if filt.get("errors_only"):
            where.append("error")
        if filt.get("min_duration_ns") is not None:
            where.append("duration_ns >= $min_duration")
            params["min_duration"] = int(filt["min_duration_ns"])
        if filt.get("max_duration_ns") is not None:
            where.append("duration_ns <= $max_duration")
            params["max_duration"] = int(filt["max_duration_ns"])
        if filt.get("since_ns") is not None:
            where.append("start_ns >= $since")
            params["since"] = int(filt["since_ns"])
        if filt.get("until_ns") is not None:
            where.append("start_ns <= $until")
            params["until"] = int(filt["until_ns"])
        if filt.get("text"):
            # A trace's records are no older than its start: the bound lets zone maps skip old row groups.
            bound = " AND ts_ns >= $since" if "since" in params else ""
            where.append(
                "trace_id IN (SELECT trace_id FROM records WHERE trace_id IS NOT NULL"
                + bound
                + " AND (message ILIKE $text ESCAPE '\\' OR CAST(attrs AS VARCHAR) ILIKE $text ESCAPE '\\'"
                " OR type ILIKE $text ESCAPE '\\'))"
            )
            params["text"] = _like(filt["text"])
        query = (
            f"SELECT {self._row('traces')} FROM traces"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY start_ns DESC, trace_id DESC LIMIT $limit OFFSET $offset"
        )
        return _rows(self._con.execute(query, params).fetchall())

    def _resolve_trace(self, trace_id: str) -> tuple[str, int, int]:
        return self._find_trace(trace_id)[:3]

    def _find_trace(self, trace_id: str) -> tuple[str, int, int, int]:
        """A trace's full id, first and last record time and number of records, by full id or a unique prefix
        (raises NotFound, or ConfigError for a prefix too short or ambiguous)."""
        key = _trace_key(trace_id)
        summary = "SELECT trace_id, start_ns, end_ns, record_count FROM traces"
        row = self._con.execute(
            f"{summary} WHERE trace_key IS NOT DISTINCT FROM ? AND trace_id = ?", [key, trace_id]
        ).fetchone()
        if row is not None:
            return row[0], row[1], row[2], row[3]
        if len(trace_id) >= 32:
            raise unknown("trace", trace_id)
        found = self._con.execute(
            f"{summary} WHERE starts_with(trace_id, ?) ORDER BY trace_id LIMIT ?",
            [short_enough("trace", trace_id), CANDIDATES + 1],
        ).fetchall()
        tid = the_one("trace", trace_id, [r[0] for r in found])
        row = next(r for r in found if r[0] == tid)
        return row[0], row[1], row[2], row[3]

    def trace_rows(self, trace_id: str, *, max_records: int | None = None) -> TraceRows:
        """A trace's records and the nodes that recorded them, by full id or a unique prefix (raises NotFound)."""
        tid, start, end, count = self._find_trace(trace_id)
        if max_records is not None and count > max_records:
            raise too_large(tid, count, max_records)
        # The ts_ns range lets zone maps skip row groups before trace_id is compared.
        (array,) = self._fetch_one(
            f"SELECT {_array(self._row('records'))} FROM records WHERE ts_ns BETWEEN ? AND ? AND trace_id = ?",
            [start, end, tid],
        )
        records = decode_rows(array)
        return TraceRows(tid, records, self._nodes_among({r["node_id"] for r in records}))

    def trace_spans(self, trace_id: str, *, row_type: type[Any] = dict) -> TraceSpans:
        """A trace's span records, its other records counted per span (one GROUP BY), and its nodes."""
        tid, start, end = self._resolve_trace(trace_id)
        params = {"start": start, "end": end, "trace": tid}
        if row_type is SpanColumns:
            spans: Any = self._span_columns(params)
        else:
            row = self._row("records", fields_of(row_type))
            # In time order: the span tree sorts them so, and sorts a sorted list in a fraction of the time.
            (array,) = self._fetch_one(
                f"SELECT {_array(row, 'ts_ns, id')} FROM records WHERE {_IN_TRACE} AND kind = 'span'", params
            )
            spans = decode_rows(array, row_type)
        first, last, node_ids = self._fetch_one(
            "SELECT coalesce(min(ts_ns), $start), coalesce(max(greatest(ts_ns, coalesce(end_ns, ts_ns))), $end), "
            f"coalesce(list(DISTINCT node_id ORDER BY node_id), []) FROM records WHERE {_IN_TRACE} AND kind <> 'node'",
            params,
        )
        counted = self._con.execute(
            "SELECT span_id, count(*), count(*) FILTER (kind = 'log'), count(*) FILTER (kind = 'event'), "
            f"count(*) FILTER ({IS_ERROR}) FROM records WHERE {_IN_TRACE} AND kind NOT IN ('span', 'node') "
            "GROUP BY span_id",
            params,
        ).fetchall()
        counts = SpanCounts(*(list(column) for column in zip(*counted, strict=True))) if counted else _NO_COUNTS
        return TraceSpans(tid, first, last, spans, counts, node_ids, self._nodes_among(set(node_ids)))

    def _span_columns(self, params: dict[str, Any]) -> SpanColumns:
        """A trace's span records as ``SpanColumns``: plain values, not JSON (at 200,000 spans, building JSON
        rows and decoding them took twice as long)."""
        rows = self._con.execute(
            "SELECT id, span_id, parent_span_id, type, node_id, ts_ns, end_ns, status, "
            "CAST(coalesce(status = 'error', false) OR error IS NOT NULL AS INTEGER), links "
            f"FROM records WHERE {_IN_TRACE} AND kind = 'span' ORDER BY ts_ns, id",
            params,
        ).fetchall()
        if not rows:
            return SpanColumns([], [], [], [], [], [], [], [], [], [])
        *columns, links = (list(column) for column in zip(*rows, strict=True))
        linked = [
            (i, link.get("trace_id"), link.get("span_id"))
            for i, text in enumerate(links)
            if text is not None
            for link in msgspec.json.decode(text)
        ]
        return SpanColumns._make([*columns, linked])

    def trace_records(
        self,
        trace_id: str,
        filt: RecordFilter | None = None,
        *,
        offset: int = 0,
        limit: int | None = 500,
        around: str | None = None,
        row_type: type[Any] = dict,
        nodes: bool = True,
    ) -> RecordPage:
        """A page of a trace's records passing ``filt`` in time order (see ``StoreReader.trace_records``).

        The page's positions are found on two cheap columns (``ts_ns``, ``id``) and only its rows are built
        as JSON: a page deep in a 100,000-record trace takes 20 ms, where building every row first took 200.
        """
        tid, start, end = self._resolve_trace(trace_id)
        params: dict[str, Any] = {"start": start, "end": end, "trace": tid}
        where = " AND ".join([_IN_TRACE, *_record_conditions(filt or {}, params)])
        (total,) = self._fetch_one(f"SELECT count(*) FROM records WHERE {where}", params)
        offset = max(0, int(offset))
        if around is not None:
            position = self._position(where, params, around)
            offset = position - position % limit if limit else 0
        rows_sql = _array(self._row("records", fields_of(row_type)), "ts_ns, id")
        if limit is None and offset == 0:
            query = f"SELECT {rows_sql} FROM records WHERE {where}"
        else:
            page = "" if limit is None else f" LIMIT {max(0, int(limit))}"
            query = (
                f"WITH page AS (SELECT rowid AS r FROM records WHERE {where} ORDER BY ts_ns, id{page} OFFSET {offset}) "
                f"SELECT {rows_sql} FROM records WHERE rowid IN (SELECT r FROM page)"
            )
        (array,) = self._fetch_one(query, params)
        rows = decode_rows(array, row_type)
        node_ids = {r["node_id"] if row_type is dict else r.node_id for r in rows}
        return RecordPage(total, offset, rows, self._nodes_among(node_ids) if nodes else [])

    def _position(self, where: str, params: dict[str, Any], record_id: str) -> int:
        """How many records passing ``where`` come before the trace's record ``record_id`` in time order (where
        it is, or would be were it passing; raises NotFound when the trace has no such record)."""
        trace = {key: params[key] for key in ("start", "end", "trace")}
        found = self._con.execute(
            f"SELECT ts_ns FROM records WHERE {_IN_TRACE} AND id = $around", {**trace, "around": record_id}
        ).fetchone()
        if found is None:
            raise NotFound(no_record_in_trace(record_id))
        (before,) = self._fetch_one(
            f"SELECT count(*) FROM records WHERE {where} AND (ts_ns < $at OR (ts_ns = $at AND id < $around))",
            {**params, "at": found[0], "around": record_id},
        )
        return int(before)

    def _fetch_one(self, query: str, params: Any) -> tuple[Any, ...]:
        row = self._con.execute(query, params).fetchone()
        assert row is not None  # an aggregate always has a row
        return row

    def _nodes_among(self, node_ids: set[str]) -> list[dict[str, Any]]:
        """The rows of these nodes that the store has."""
        return _rows(
            self._con.execute(
                f"SELECT {self._row('nodes')} FROM nodes WHERE node_id = ANY(?)", [sorted(node_ids)]
            ).fetchall()
        )

    def nodes(self, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Process runs, newest first (by start; by first record for a run whose start is not stored)."""
        return _rows(
            self._con.execute(
                f"SELECT {self._row('nodes')} FROM nodes ORDER BY coalesce(started_ns, first_seen_ns) DESC NULLS LAST, "
                "node_id DESC LIMIT ? OFFSET ?",
                [max(0, int(limit)), max(0, int(offset))],
            ).fetchall()
        )

    def node(self, node_id: str) -> dict[str, Any]:
        """One process run by id (raises NotFound)."""
        rows = _rows(
            self._con.execute(f"SELECT {self._row('nodes')} FROM nodes WHERE node_id = ?", [node_id]).fetchall()
        )
        if not rows:
            raise NotFound(f"no node {node_id!r} in the store; list process runs with `zoomtrace nodes`")
        return rows[0]

    def snapshots(self, node_id: str) -> list[dict[str, Any]]:
        """The node's snapshots of dirty files: ``{file, repo, sha256 | problem}``, oldest first."""
        rows = self._con.execute(
            "SELECT attrs FROM records WHERE kind = 'node' AND type = 'snapshot' AND node_id = ? ORDER BY id",
            [node_id],
        ).fetchall()
        snapshots = [msgspec.json.decode(value) if isinstance(value, str) else value for (value,) in rows]
        return [a for a in snapshots if isinstance(a, dict)]

    def record(self, record_id: str) -> dict[str, Any]:
        """One record by id, or by the start or end of one id only (raises NotFound, or ConfigError for a
        shortened id too short or ambiguous)."""
        rows = self.records([record_id])
        if rows:
            return rows[0]
        if len(record_id) >= 36:
            raise unknown("record", record_id)
        short = short_enough("record", record_id)
        found = self._con.execute(
            "SELECT DISTINCT id FROM records WHERE starts_with(id, $s) OR ends_with(id, $s) ORDER BY id LIMIT $n",
            {"s": short, "n": CANDIDATES + 1},
        ).fetchall()
        return self.records([the_one("record", record_id, [r[0] for r in found])])[0]

    def records(self, record_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The records of these ids that are stored, in time order (then by id)."""
        return _rows(
            self._con.execute(
                f"SELECT {self._row('records')} FROM records WHERE id = ANY(?) ORDER BY ts_ns, id", [list(record_ids)]
            ).fetchall()
        )

    def derived_from(self, record_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Records whose ``sources`` name any of these ids, in time order (then by id)."""
        return _rows(
            self._con.execute(
                f"SELECT {self._row('records')} FROM records WHERE sources IS NOT NULL AND list_has_any(sources, ?) "
                "ORDER BY ts_ns, id",
                [list(record_ids)],
            ).fetchall()
        )

    def search(self, text: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """Records whose message or attrs contain ``text`` (case-insensitive), newest first.

        Scans the last hour, day and month before everything else, so finding something recent stays fast
        in a large store (zone maps on ts_ns skip the rest).
        """
        limit = max(0, int(limit))
        now = time.time_ns()
        hour = 3_600_000_000_000
        out: list[dict[str, Any]] = []
        upper: int | None = None
        for lower in (now - hour, now - 24 * hour, now - 30 * 24 * hour, None):
            where = ["(message ILIKE $p ESCAPE '\\' OR CAST(attrs AS VARCHAR) ILIKE $p ESCAPE '\\')"]
            params: dict[str, Any] = {"p": _like(text), "limit": limit - len(out)}
            if lower is not None:
                where.append("ts_ns >= $lower")
                params["lower"] = lower
            if upper is not None:
                where.append("ts_ns < $upper")
                params["upper"] = upper
            out.extend(
                _rows(
                    self._con.execute(
                        f"SELECT {self._row('records')} FROM records WHERE {' AND '.join(where)} "
                        "ORDER BY ts_ns DESC, id DESC LIMIT $limit",
                        params,
                    ).fetchall()
                )
            )
            if len(out) >= limit:
                break
            upper = lower
        return out

    def tail(self, *, after_id: str | None = None, limit: int = 100, last: bool = False) -> list[dict[str, Any]]:
        """Records stored after ``after_id``, oldest first: by ingest transaction, then in time order (``_TAIL``).

        Ordering by arrival rather than by time alone means a late segment's older records are not skipped
        by ``tail -f``. ``last=True`` gives the newest ``limit`` records instead (still oldest first).
        """
        limit = max(0, int(limit))
        row = self._row("records")
        if last:
            fetched = self._con.execute(
                f"SELECT row FROM (SELECT {row} AS row, {_TAIL} AS arrival FROM records ORDER BY arrival DESC LIMIT ?) "
                "ORDER BY arrival",
                [limit],
            ).fetchall()
        elif after_id is None:
            fetched = self._con.execute(f"SELECT {row} FROM records ORDER BY {_TAIL} LIMIT ?", [limit]).fetchall()
        else:
            found = self._con.execute(f"SELECT {_TAIL[1:-1]} FROM records WHERE id = ?", [after_id]).fetchone()
            if found is None:
                raise NotFound(f"no record {after_id!r} in the store to tail after")
            fetched = self._con.execute(
                f"SELECT {row} FROM records WHERE {_TAIL} > ($seq, $ts, $later, $id) ORDER BY {_TAIL} LIMIT $limit",
                {"seq": found[0], "ts": found[1], "later": found[2], "id": found[3], "limit": limit},
            ).fetchall()
        return _rows(fetched)

    def blob(self, digest: str) -> bytes | None:
        """Content-addressed file snapshot or raw payload."""
        row = self._con.execute("SELECT content FROM blobs WHERE sha256 = ?", [digest.lower()]).fetchone()
        return bytes(row[0]) if row else None

    def problems(self, *, limit: int = 100) -> list[dict[str, Any]]:
        """Spool data that could not be ingested, newest first."""
        rows = self._con.execute(
            "SELECT ts_ns, segment, problem FROM ingest_problems ORDER BY ts_ns DESC LIMIT ?", [limit]
        ).fetchall()
        return [{"ts_ns": t, "segment": s, "problem": p} for t, s, p in rows]

    def error_groups(
        self, *, service: str | None = None, since_ns: int | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Error groups, most recently seen first (``StoreReader.error_groups``)."""
        return _findings.error_groups(self._con, service=service, since_ns=since_ns, limit=limit)

    def code_versions(self, *, service: str | None = None, since_ns: int | None = None) -> list[dict[str, Any]]:
        """Per service, the versions its runs had, first run first (``StoreReader.code_versions``)."""
        return _findings.code_versions(self._con, service=service, since_ns=since_ns)

    def location_stats(
        self,
        *,
        service: str | None = None,
        since_ns: int | None = None,
        sample: int = 2000,
        location: Location | None = None,
    ) -> list[dict[str, Any]]:
        """Span statistics per service, version and location (``StoreReader.location_stats``)."""
        return _findings.location_stats(self._con, service=service, since_ns=since_ns, sample=sample, location=location)

    def location_traces(
        self, *, service: str, location: Location, commit: str, dirty: bool, limit: int = 5
    ) -> list[dict[str, Any]]:
        """The slowest spans of a location in one version (``StoreReader.location_traces``)."""
        return _findings.location_traces(
            self._con, service=service, location=location, commit=commit, dirty=dirty, limit=limit
        )

    def _read_only(self) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
        """A read-only connection to the store (``DuckStore._read_only``)."""
        raise NotImplementedError

    def sql(self, query: str, *, max_rows: int | None = None) -> tuple[Sequence[str], list[tuple[Any, ...]]]:
        """Run one read-only statement (SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN);
        at most ``max_rows`` rows are returned when given.

        Two independent guards: statements are classified by DuckDB's own parser (``check_read_only``,
        for a clear refusal), and the query runs on a connection opened read-only, which DuckDB keeps
        from changing anything whatever the statement -- a data-modifying CTE such as
        ``WITH x AS (DELETE ... RETURNING id) SELECT ...``, which the parser calls a SELECT, included --
        and which cannot reach files, extensions or the network. It is closed after the query, with
        whatever the query set or created in it.
        """
        check_read_only(query)
        with self._read_only() as con:
            try:
                cur = con.execute(query)
                columns = [d[0] for d in cur.description or ()]
                rows = cur.fetchall() if max_rows is None else cur.fetchmany(max(0, max_rows))
            except duckdb.Error as exc:
                text = _one_line(exc)
                if "read-only mode" in text:
                    raise ReadOnlySQL(
                        f"the SQL interface only reads the store, and this query would change it ({text})"
                    ) from None
                raise StoreError(f"SQL error: {text}") from None
        return columns, rows


def check_read_only(query: str) -> None:
    """Raise ReadOnlySQL unless ``query`` is exactly one statement that only reads."""
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise StoreError(f"SQL error: {_one_line(exc)}") from None
    if not statements:
        raise StoreError("empty query: give one SELECT statement, e.g. SELECT count(*) FROM records")
    if len(statements) != 1:
        raise ReadOnlySQL(
            f"one statement at a time, please ({len(statements)} given); the SQL interface only reads the store"
        )
    statement = statements[0]
    if statement.type == duckdb.StatementType.SELECT:
        return
    if statement.type == duckdb.StatementType.EXPLAIN:
        inner = _explained(statement.query)
        if inner is not None:
            check_read_only(inner)
            return
    raise ReadOnlySQL(
        f"only SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE and EXPLAIN SELECT are allowed, not "
        f"{statement.type.name}: the store is changed by ingestion only"
    )


def _explained(query: str) -> str | None:
    """The statement after ``EXPLAIN [ANALYZE] [(options)]`` (EXPLAIN ANALYZE runs it, so it must be checked)."""
    keyword = duckdb.token_type.keyword
    comment = duckdb.token_type.comment
    tokens = [(pos, kind) for pos, kind in duckdb.tokenize(query) if kind != comment]
    i = 0
    if i < len(tokens) and tokens[i][1] == keyword and _word(query, tokens[i][0]) == "explain":
        i += 1
    else:
        return None
    if i < len(tokens) and tokens[i][1] == keyword and _word(query, tokens[i][0]) == "analyze":
        i += 1
    if i < len(tokens) and query[tokens[i][0]] == "(":
        depth = 0
        while i < len(tokens):
            ch = query[tokens[i][0]]
            depth += ch == "("
            depth -= ch == ")"
            i += 1
            if depth == 0:
                break
    return query[tokens[i][0] :] if i < len(tokens) else None


def _word(query: str, pos: int) -> str:
    end = pos
    while end < len(query) and (query[end].isalnum() or query[end] == "_"):
        end += 1
    return query[pos:end].lower()


_NO_COUNTS: Final = SpanCounts([], [], [], [], [])

#: The order of ``tail``: by write, then by time, a span before the other records of its instant (its own
#: records, which start with it), then by id.
_TAIL: Final = "(ingest_seq, ts_ns, kind <> 'span', id)"

#: A record of the trace (parameters ``start``, ``end``: its first and last record's time, ``trace``: its id);
#: the ts_ns range lets zone maps skip row groups before trace_id is compared.
_IN_TRACE: Final = "ts_ns BETWEEN $start AND $end AND trace_id = $trace"


def _record_conditions(filt: RecordFilter, params: dict[str, Any]) -> list[str]:
    """SQL conditions of a trace's records passing ``filt`` (its values added to ``params``)."""
    where = ["kind = ANY($kinds)"]
    params["kinds"] = list(filt.get("kinds", TRACE_KINDS))
    if "span_ids" in filt:
        under = ["span_id = ANY($span_ids)"]
        params["span_ids"] = [s for s in filt["span_ids"] if s is not None]
        if None in filt["span_ids"]:
            under.append(
                "span_id IS NULL OR span_id NOT IN (SELECT span_id FROM records WHERE ts_ns BETWEEN $start AND $end "
                "AND trace_id = $trace AND kind = 'span' AND span_id IS NOT NULL)"
            )
        where.append(f"kind <> 'span' AND ({' OR '.join(under)})")
    if "own_spans" in filt:
        where.append("kind = 'span' AND span_id = ANY($own_spans)")
        params["own_spans"] = list(filt["own_spans"])
    if filt.get("from_ns") is not None:
        where.append("ts_ns >= $from_ns")
        params["from_ns"] = int(filt["from_ns"])
    if filt.get("to_ns") is not None:
        where.append("ts_ns < $to_ns")
        params["to_ns"] = int(filt["to_ns"])
    if filt.get("min_level"):
        where.append(f"(level IS NULL OR {_level_rank('level')} >= $min_level)")
        params["min_level"] = LEVELS.get(str(filt["min_level"]).upper(), LEVELS["INFO"])
    if filt.get("service"):
        where.append("node_id IN (SELECT node_id FROM nodes WHERE service = $service)")
        params["service"] = filt["service"]
    if filt.get("text"):
        where.append(
            "(message ILIKE $text ESCAPE '\\' OR type ILIKE $text ESCAPE '\\' "
            "OR CAST(attrs AS VARCHAR) ILIKE $text ESCAPE '\\')"
        )
        params["text"] = _like(filt["text"])
    if filt.get("errors_only"):
        where.append(IS_ERROR)
    return where


def _trace_key(trace_id: str) -> int | None:
    """``traces.trace_key`` of a trace id (as the SQL in _MERGE_TRACES computes it)."""
    head = trace_id[:15]
    if not head or any(c not in "0123456789abcdefABCDEF" for c in head):
        return None
    return int(head, 16)
