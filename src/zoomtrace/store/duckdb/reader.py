"""Reading the DuckDB store: trace summaries, a trace's rows, nodes, lineage, search, tail and read-only SQL."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any, Final

import duckdb
import msgspec

from zoomtrace.errors import NotFound, ReadOnlySQL, StoreError
from zoomtrace.read import story as _story
from zoomtrace.store.duckdb._common import _NODE_COLUMNS, _NODE_JSON, _json_or_none, _one_line
from zoomtrace.store.protocols import TraceFilter

_RECORD_COLUMNS: Final = (
    "id, kind, type, ts_ns, end_ns, trace_id, span_id, parent_span_id, links, on_behalf_of, node_id, code_file, "
    "code_line, code_function, code_commit, code_dirty, level, message, template, attrs, payload, payload_blob, "
    "sources, error, status, cpu_ns, thread, schema_version"
)


def record_dict(row: Sequence[Any]) -> dict[str, Any]:
    """A ``records`` row (selected as ``_RECORD_COLUMNS``) in the JSON shape the CLI and UI show."""
    (
        rid,
        kind,
        type_,
        ts_ns,
        end_ns,
        trace_id,
        span_id,
        parent_span_id,
        links,
        on_behalf_of,
        node_id,
        code_file,
        code_line,
        code_function,
        code_commit,
        code_dirty,
        level,
        message,
        template,
        attrs,
        payload,
        payload_blob,
        sources,
        error,
        status,
        cpu_ns,
        thread,
        version,
    ) = row
    code = None
    if code_file is not None:
        code = {
            "file": code_file,
            "line": code_line,
            "function": code_function,
            "commit": code_commit,
            "dirty": bool(code_dirty),
        }
    return {
        "id": rid,
        "kind": kind,
        "type": type_,
        "ts_ns": ts_ns,
        "end_ns": end_ns,
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent_span_id,
        "links": _json_or_none(links) or [],
        "on_behalf_of": on_behalf_of,
        "node_id": node_id,
        "code": code,
        "level": level,
        "message": message,
        "template": template,
        "attrs": _json_or_none(attrs) or {},
        "payload": _json_or_none(payload),
        "payload_blob": payload_blob,
        "sources": list(sources or ()),
        "error": _json_or_none(error),
        "status": status,
        "cpu_ns": cpu_ns,
        "thread": thread,
        "v": version,
    }


def node_dict(row: Sequence[Any]) -> dict[str, Any]:
    """A ``nodes`` row (selected as ``_NODE_COLUMNS``); ``grp`` is shown as ``group``."""
    names = [c.strip() for c in _NODE_COLUMNS.split(",")]
    out = {
        ("group" if n == "grp" else n): (_json_or_none(v) if n in _NODE_JSON else v)
        for n, v in zip(names, row, strict=True)
    }
    out["repos"] = out["repos"] or []
    return out


def _like(text: str) -> str:
    r"""An ILIKE pattern matching ``text`` literally anywhere (``\`` escapes)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class DuckReader:
    """The read half of ``DuckStore``."""

    _con: duckdb.DuckDBPyConnection

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
            "SELECT trace_id, start_ns, end_ns, duration_ns, root_name, root_service, services, envs, span_count, "
            "log_count, event_count, error, record_count FROM traces"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY start_ns DESC, trace_id DESC LIMIT $limit OFFSET $offset"
        )
        cur = self._con.execute(query, params)
        names = [d[0] for d in cur.description or ()]
        out = []
        for row in cur.fetchall():
            item = dict(zip(names, row, strict=True))
            item["services"] = list(item["services"] or ())
            item["envs"] = list(item["envs"] or ())
            out.append(item)
        return out

    def _resolve_trace(self, trace_id: str) -> tuple[str, int, int]:
        key = _trace_key(trace_id)
        row = self._con.execute(
            "SELECT trace_id, start_ns, end_ns FROM traces WHERE trace_key IS NOT DISTINCT FROM ? AND trace_id = ?",
            [key, trace_id],
        ).fetchone()
        if row is None and 4 <= len(trace_id) < 32:
            rows = self._con.execute(
                "SELECT trace_id, start_ns, end_ns FROM traces WHERE starts_with(trace_id, ?) LIMIT 2",
                [trace_id.lower()],
            ).fetchall()
            if len(rows) == 1:
                row = rows[0]
        if row is None:
            raise NotFound(f"no trace {trace_id!r} in the store; list traces with `zoomtrace traces`")
        return row[0], row[1], row[2]

    def story(self, trace_id: str) -> dict[str, Any]:
        """The story of one trace (see ``zoomtrace.read.story.assemble`` for its shape)."""
        tid, start, end = self._resolve_trace(trace_id)
        # The ts_ns range lets zone maps skip row groups before trace_id is compared.
        rows = self._con.execute(
            f"SELECT {_RECORD_COLUMNS} FROM records WHERE ts_ns BETWEEN ? AND ? AND trace_id = ?", [start, end, tid]
        ).fetchall()
        records = [record_dict(r) for r in rows]
        node_ids = sorted({r["node_id"] for r in records})
        nodes = [
            node_dict(r)
            for r in self._con.execute(
                f"SELECT {_NODE_COLUMNS} FROM nodes WHERE node_id = ANY(?)", [node_ids]
            ).fetchall()
        ]
        return _story.assemble(tid, records, nodes)

    def nodes(self, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Process runs, newest first (by start; by first record for a run whose start is not stored)."""
        rows = self._con.execute(
            f"SELECT {_NODE_COLUMNS} FROM nodes ORDER BY coalesce(started_ns, first_seen_ns) DESC NULLS LAST, "
            "node_id DESC LIMIT ? OFFSET ?",
            [max(0, int(limit)), max(0, int(offset))],
        ).fetchall()
        return [node_dict(r) for r in rows]

    def node(self, node_id: str) -> dict[str, Any]:
        """One process run by id (raises NotFound)."""
        row = self._con.execute(f"SELECT {_NODE_COLUMNS} FROM nodes WHERE node_id = ?", [node_id]).fetchone()
        if row is None:
            raise NotFound(f"no node {node_id!r} in the store; list process runs with `zoomtrace nodes`")
        return node_dict(row)

    def snapshots(self, node_id: str) -> list[dict[str, Any]]:
        """The node's snapshots of dirty files: ``{file, repo, sha256 | problem}``, oldest first."""
        rows = self._con.execute(
            "SELECT attrs FROM records WHERE kind = 'node' AND type = 'snapshot' AND node_id = ? ORDER BY id",
            [node_id],
        ).fetchall()
        snapshots = [msgspec.json.decode(value) if isinstance(value, str) else value for (value,) in rows]
        return [a for a in snapshots if isinstance(a, dict)]

    def record(self, record_id: str) -> dict[str, Any]:
        """One record by id (raises NotFound)."""
        row = self._con.execute(f"SELECT {_RECORD_COLUMNS} FROM records WHERE id = ?", [record_id]).fetchone()
        if row is None:
            raise NotFound(f"no record {record_id!r} in the store; find record ids with `zoomtrace story` or `tail`")
        return record_dict(row)

    def lineage(self, record_id: str, *, depth: int = 20) -> dict[str, Any]:
        """``{"record", "upstream", "downstream"}`` through ``sources``, each direction transitive up to ``depth``
        steps. Every record appears once, with ``depth`` (1 = direct) added."""
        record = self.record(record_id)
        seen = {record_id}
        upstream: list[dict[str, Any]] = []
        frontier = [s for s in record["sources"] if s not in seen]
        level = 1
        while frontier and level <= depth:
            seen.update(frontier)
            rows = self._con.execute(
                f"SELECT {_RECORD_COLUMNS} FROM records WHERE id = ANY(?) ORDER BY ts_ns, id", [frontier]
            ).fetchall()
            found = [record_dict(r) for r in rows]
            upstream.extend({**r, "depth": level} for r in found)
            frontier = sorted({s for r in found for s in r["sources"] if s not in seen})
            level += 1
        downstream: list[dict[str, Any]] = []
        frontier = [record_id]
        level = 1
        while frontier and level <= depth:
            rows = self._con.execute(
                f"SELECT {_RECORD_COLUMNS} FROM records WHERE sources IS NOT NULL AND list_has_any(sources, ?) "
                "ORDER BY ts_ns, id",
                [frontier],
            ).fetchall()
            found = [record_dict(r) for r in rows if r[0] not in seen]
            seen.update(r["id"] for r in found)
            downstream.extend({**r, "depth": level} for r in found)
            frontier = [r["id"] for r in found]
            level += 1
        return {"record": record, "upstream": upstream, "downstream": downstream}

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
            rows = self._con.execute(
                f"SELECT {_RECORD_COLUMNS} FROM records WHERE {' AND '.join(where)} "
                "ORDER BY ts_ns DESC, id DESC LIMIT $limit",
                params,
            ).fetchall()
            out.extend(record_dict(r) for r in rows)
            if len(out) >= limit:
                break
            upper = lower
        return out

    def tail(self, *, after_id: str | None = None, limit: int = 100, last: bool = False) -> list[dict[str, Any]]:
        """Records stored after ``after_id``, oldest first: by ingest transaction, then id (time).

        Ordering by arrival rather than by id alone means a late segment's older records are not skipped
        by ``tail -f``. ``last=True`` gives the newest ``limit`` records instead (still oldest first).
        """
        limit = max(0, int(limit))
        if last:
            rows = self._con.execute(
                f"SELECT * FROM (SELECT {_RECORD_COLUMNS}, ingest_seq FROM records ORDER BY ingest_seq DESC, id DESC "
                "LIMIT ?) ORDER BY ingest_seq, id",
                [limit],
            ).fetchall()
        elif after_id is None:
            rows = self._con.execute(
                f"SELECT {_RECORD_COLUMNS}, ingest_seq FROM records ORDER BY ingest_seq, id LIMIT ?", [limit]
            ).fetchall()
        else:
            found = self._con.execute("SELECT ingest_seq FROM records WHERE id = ?", [after_id]).fetchone()
            if found is None:
                raise NotFound(f"no record {after_id!r} in the store to tail after")
            rows = self._con.execute(
                f"SELECT {_RECORD_COLUMNS}, ingest_seq FROM records WHERE ingest_seq > $seq "
                "OR (ingest_seq = $seq AND id > $id) ORDER BY ingest_seq, id LIMIT $limit",
                {"seq": found[0], "id": after_id, "limit": limit},
            ).fetchall()
        return [record_dict(r[:-1]) for r in rows]

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

    def sql(self, query: str, *, max_rows: int | None = None) -> tuple[Sequence[str], list[tuple[Any, ...]]]:
        """Run one read-only statement (SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN);
        at most ``max_rows`` rows are returned when given.

        Statements are classified by DuckDB's own parser, and the query runs in a transaction that is
        rolled back, on a connection that cannot touch files: three independent guards.
        """
        check_read_only(query)
        cur = self._con.cursor()
        try:
            cur.execute("BEGIN TRANSACTION")
            try:
                cur.execute(query)
                columns = [d[0] for d in cur.description or ()]
                rows = cur.fetchall() if max_rows is None else cur.fetchmany(max(0, max_rows))
            finally:
                with contextlib.suppress(duckdb.Error):
                    cur.execute("ROLLBACK")
        except duckdb.Error as exc:
            raise StoreError(f"SQL error: {_one_line(exc)}") from None
        finally:
            cur.close()
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


def _trace_key(trace_id: str) -> int | None:
    """``traces.trace_key`` of a trace id (as the SQL in _MERGE_TRACES computes it)."""
    head = trace_id[:15]
    if not head or any(c not in "0123456789abcdefABCDEF" for c in head):
        return None
    return int(head, 16)
