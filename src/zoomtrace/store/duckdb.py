"""The DuckDB store: every record of one home in ``<home>/store.duckdb``.

DuckDB lets one process open a database file at a time, so ``zoomtrace.store.open_store``
serialises sessions with a file lock; this module is the database itself. Ingestion
is bulk: records are written as NDJSON by msgspec and loaded with one
``INSERT ... SELECT FROM read_json(...)`` per chunk (the Python appender and
``executemany`` convert value by value and measured slower). Summaries (``traces``,
``nodes``) are merged incrementally from the rows each transaction added, found
cheaply through their shared ``ingest_seq``. docs/store.md explains the schema and
the measurements behind these choices.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Final

import duckdb
import msgspec

from zoomtrace import story as _story
from zoomtrace.errors import NotFound, ReadOnlySQL, StoreError
from zoomtrace.record import Record
from zoomtrace.store.base import TraceFilter

#: Version of the tables in schema.sql; a store written with another version is refused.
STORE_SCHEMA: Final = 1
#: Records per NDJSON chunk (one INSERT each); bounds the staging file and DuckDB's working memory.
CHUNK: Final = 100_000
#: Replaced trace summaries that make close() vacuum (also at least a quarter of the traces table).
VACUUM_MIN_ROWS: Final = 100_000
#: A single record may be as large as a spool frame.
_MAX_OBJECT: Final = 512 * 1024 * 1024

#: Records encoded per slice when staging (small enough for the CPU cache).
_SLICE: Final = 2_000
_BYTES: Final[frozenset[type]] = frozenset({bytes, bytearray, memoryview})

_json_encoder: Final = msgspec.json.Encoder()
_json_decode: Final = msgspec.json.decode


class _Row(Record, kw_only=True, omit_defaults=True):
    """A record whose bytes payload was moved to ``blobs`` (only such records pay for the copy)."""

    payload_blob: str | None = None


_READ_COLUMNS: Final = (
    "{id: 'VARCHAR', kind: 'VARCHAR', type: 'VARCHAR', ts_ns: 'BIGINT', end_ns: 'BIGINT', trace_id: 'VARCHAR', "
    "span_id: 'VARCHAR', parent_span_id: 'VARCHAR', links: 'VARCHAR[][]', on_behalf_of: 'VARCHAR', "
    "node_id: 'VARCHAR', code: 'VARCHAR[]', level: 'VARCHAR', message: 'VARCHAR', template: 'VARCHAR', "
    "attrs: 'JSON', payload: 'JSON', payload_blob: 'VARCHAR', sources: 'VARCHAR[]', "
    "error: 'STRUCT(type VARCHAR, message VARCHAR, frames VARCHAR[][])', status: 'VARCHAR', cpu_ns: 'BIGINT', "
    "thread: 'VARCHAR', v: 'INTEGER'}"
)

#: Wire shape -> table shape: code flattened, links and error frames as objects, empties as NULL.
#: Records already stored are skipped by an anti-join restricted to the batch's id range, which zone
#: maps answer from a few row groups (UUIDv7 ids grow with time, and the spool is read in time order).
_INSERT_RECORDS: Final = f"""
INSERT INTO records
SELECT id, kind, type, ts_ns, end_ns, trace_id, span_id, parent_span_id,
    CASE WHEN len(links) > 0 THEN to_json(list_transform(links, lambda l: {{'trace_id': l[1], 'span_id': l[2]}})) END,
    on_behalf_of, node_id,
    code[1], TRY_CAST(code[2] AS INTEGER), code[3], code[4], TRY_CAST(code[5] AS BOOLEAN),
    level, message, template, attrs, payload, payload_blob,
    CASE WHEN len(sources) > 0 THEN sources END,
    CASE WHEN error IS NOT NULL THEN to_json({{
        'type': error.type, 'message': error.message,
        'frames': list_transform(coalesce(error.frames, []),
                                 lambda f: {{'file': f[1], 'line': TRY_CAST(f[2] AS BIGINT), 'function': f[3]}})
    }}) END,
    status, cpu_ns, thread, v, $seq
FROM read_json($path, format = 'newline_delimited', columns = {_READ_COLUMNS}, maximum_object_size = {_MAX_OBJECT})
WHERE id NOT IN (SELECT id FROM records WHERE id BETWEEN $lo AND $hi)
"""

_INSERT_BLOBS: Final = f"""
INSERT OR IGNORE INTO blobs
SELECT sha256, from_base64(content), octet_length(from_base64(content))
FROM read_json($path, format = 'newline_delimited', columns = {{sha256: 'VARCHAR', content: 'VARCHAR'}},
               maximum_object_size = {_MAX_OBJECT})
"""

_IS_ERROR: Final = "coalesce(status = 'error' OR error IS NOT NULL OR level IN ('ERROR', 'CRITICAL', 'FATAL'), false)"

_UPSERT_NODE_COUNTS: Final = f"""
INSERT INTO nodes (node_id, first_seen_ns, record_count, span_count, log_count, event_count, raw_count, error_count)
SELECT node_id, min(ts_ns), count(*), count(*) FILTER (kind = 'span'), count(*) FILTER (kind = 'log'),
       count(*) FILTER (kind = 'event'), count(*) FILTER (kind = 'raw'), count(*) FILTER ({_IS_ERROR})
FROM records WHERE ingest_seq = $seq GROUP BY node_id
ON CONFLICT (node_id) DO UPDATE SET
    first_seen_ns = least(nodes.first_seen_ns, excluded.first_seen_ns),
    record_count = nodes.record_count + excluded.record_count,
    span_count = nodes.span_count + excluded.span_count,
    log_count = nodes.log_count + excluded.log_count,
    event_count = nodes.event_count + excluded.event_count,
    raw_count = nodes.raw_count + excluded.raw_count,
    error_count = nodes.error_count + excluded.error_count
"""

#: The root of a trace: a span without a parent if there is one, else the earliest (remote parent).
#: One HUGEINT orders candidates (parentless first, then by start) far faster than a struct key.
_ROOT_KEY: Final = "((parent_span_id IS NOT NULL)::HUGEINT << 64) + ts_ns"

#: Per trace, what this transaction added (services and environments through the nodes known now).
#: Aggregated per (trace, node) first, so that only those pairs, not all records, are joined with nodes.
_BATCH_TRACES: Final = f"""
CREATE OR REPLACE TEMP TABLE zt_batch_traces AS
WITH per_node AS (
    SELECT trace_id, node_id, min(ts_ns) AS start_ns, max(greatest(ts_ns, coalesce(end_ns, ts_ns))) AS end_ns,
           arg_min({{'name': type, 'span_id': span_id, 'start_ns': ts_ns, 'is_top': parent_span_id IS NULL}},
                   {_ROOT_KEY}) FILTER (kind = 'span') AS root,
           min({_ROOT_KEY}) FILTER (kind = 'span') AS root_key,
           count(*) FILTER (kind = 'span') AS span_count, count(*) FILTER (kind = 'log') AS log_count,
           count(*) FILTER (kind = 'event') AS event_count, bool_or({_IS_ERROR}) AS error,
           count(*) AS record_count
    FROM records WHERE ingest_seq = $seq AND trace_id IS NOT NULL
    GROUP BY trace_id, node_id
)
SELECT p.trace_id, min(p.start_ns) AS start_ns, max(p.end_ns) AS end_ns,
       arg_min({{'name': p.root.name, 'service': n.service, 'span_id': p.root.span_id, 'node_id': p.node_id,
                'start_ns': p.root.start_ns, 'is_top': p.root.is_top}}, p.root_key) AS root,
       coalesce(list_sort(list_distinct(list(n.service) FILTER (n.service IS NOT NULL))), []) AS services,
       coalesce(list_sort(list_distinct(list(n.env) FILTER (n.env IS NOT NULL))), []) AS envs,
       list_sort(list(p.node_id)) AS node_ids,
       sum(p.span_count)::BIGINT AS span_count, sum(p.log_count)::BIGINT AS log_count,
       sum(p.event_count)::BIGINT AS event_count, bool_or(p.error) AS error,
       sum(p.record_count)::BIGINT AS record_count
FROM per_node AS p LEFT JOIN nodes AS n ON n.node_id = p.node_id
GROUP BY p.trace_id
"""

#: The stored summaries of those traces, which are replaced by their merge with the batch's.
_OLD_TRACES: Final = """
CREATE OR REPLACE TEMP TABLE zt_old_traces AS
SELECT * FROM traces WHERE trace_id IN (SELECT trace_id FROM zt_batch_traces)
"""

_NEW_ROOT_WINS: Final = (
    "(b.root.span_id IS NOT NULL AND (o.root_span_id IS NULL OR (b.root.is_top AND NOT o.root_is_top)"
    " OR (b.root.is_top = o.root_is_top AND b.root.start_ns < o.root_start_ns)))"
)


def _root(field: str) -> str:
    return f"CASE WHEN {_NEW_ROOT_WINS} THEN b.root.{field} ELSE o.root_{field} END AS root_{field}"


_MERGE_TRACES: Final = f"""
INSERT INTO traces BY NAME
SELECT b.trace_id,
       CASE WHEN regexp_full_match(substr(b.trace_id, 1, 15), '[0-9a-fA-F]+')
            THEN CAST('0x' || substr(b.trace_id, 1, 15) AS BIGINT) END AS trace_key,
       least(o.start_ns, b.start_ns) AS start_ns,
       greatest(o.end_ns, b.end_ns) AS end_ns,
       greatest(o.end_ns, b.end_ns) - least(o.start_ns, b.start_ns) AS duration_ns,
       {_root("name")}, {_root("service")}, {_root("span_id")}, {_root("node_id")}, {_root("start_ns")},
       {_root("is_top")},
       list_sort(list_distinct(list_concat(coalesce(o.services, []), b.services))) AS services,
       list_sort(list_distinct(list_concat(coalesce(o.envs, []), b.envs))) AS envs,
       list_sort(list_distinct(list_concat(coalesce(o.node_ids, []), b.node_ids))) AS node_ids,
       coalesce(o.span_count, 0) + b.span_count AS span_count,
       coalesce(o.log_count, 0) + b.log_count AS log_count,
       coalesce(o.event_count, 0) + b.event_count AS event_count,
       coalesce(o.error, false) OR b.error AS error,
       coalesce(o.record_count, 0) + b.record_count AS record_count
FROM zt_batch_traces AS b LEFT JOIN zt_old_traces AS o ON o.trace_id = b.trace_id
"""

#: When a node's *started* record arrives after some of its traces were stored, those traces learn its
#: service and environment here. A trace holding the node's records ends no earlier than the node's
#: first record, which keeps this scan to recent row groups.
_REFRESH_TRACE_NODES: Final = """
UPDATE traces SET services = s.services, envs = s.envs, root_service = s.root_service
FROM (
    SELECT t.trace_id,
           coalesce(list_sort(list_distinct(list(n.service) FILTER (n.service IS NOT NULL))), []) AS services,
           coalesce(list_sort(list_distinct(list(n.env) FILTER (n.env IS NOT NULL))), []) AS envs,
           any_value(n.service) FILTER (n.node_id = t.root_node_id) AS root_service
    FROM (
        SELECT trace_id, root_node_id, unnest(node_ids) AS node_id FROM traces
        WHERE end_ns >= $since AND list_has_any(node_ids, $nodes)
    ) AS t
    JOIN nodes n ON n.node_id = t.node_id
    GROUP BY t.trace_id
) AS s
WHERE traces.trace_id = s.trace_id
"""

_RECORD_COLUMNS: Final = (
    "id, kind, type, ts_ns, end_ns, trace_id, span_id, parent_span_id, links, on_behalf_of, node_id, code_file, "
    "code_line, code_function, code_commit, code_dirty, level, message, template, attrs, payload, payload_blob, "
    "sources, error, status, cpu_ns, thread, schema_version"
)

_NODE_COLUMNS: Final = (
    "node_id, service, env, grp, version, host, pid, parent_node_id, python, platform, commit, branch, repos, "
    "started_ns, stopped_ns, stop_cause, stop_error, lost, argv, attrs, first_seen_ns, record_count, span_count, "
    "log_count, event_count, raw_count, error_count"
)
_NODE_JSON: Final = frozenset({"repos", "stop_error", "lost", "attrs"})
#: Node fields a node record may set (everything but the id and the counts, which ingestion maintains).
_NODE_FIELDS: Final = (
    "service",
    "env",
    "grp",
    "version",
    "host",
    "pid",
    "parent_node_id",
    "python",
    "platform",
    "commit",
    "branch",
    "repos",
    "started_ns",
    "stopped_ns",
    "stop_cause",
    "stop_error",
    "lost",
    "argv",
    "attrs",
)


def _json_or_none(text: str | None) -> Any:
    return None if text is None else _json_decode(text)


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


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: its passes over millions of fresh records cost more than decoding them."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _like(text: str) -> str:
    r"""An ILIKE pattern matching ``text`` literally anywhere (``\`` escapes)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _open_error(path: Path, exc: duckdb.Error) -> StoreError:
    text = _one_line(exc) or type(exc).__name__
    if "lock" in text.lower():
        return StoreError(f"the store at {path} is busy: another process has it open ({text}); try again")
    return StoreError(
        f"the store file {path} is corrupt or unreadable ({text}). Move it away (mv {path} {path}.bad) and run any "
        f"zoomtrace command to rebuild it from the spool: the spool files are the source of truth, keep them"
    )


class DuckStore:
    """The Store protocol on one DuckDB file. Not thread-safe: one session per process at a time."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.staging = self.path.parent / "tmp"
        #: Problem lines for the records the last ingest_batch() had to skip.
        self.last_skipped: list[str] = []
        try:
            self._con = duckdb.connect(str(self.path))
        except duckdb.Error as exc:
            raise _open_error(self.path, exc) from exc
        try:
            self._setup()
        except duckdb.Error as exc:
            self._con.close()
            raise _open_error(self.path, exc) from exc
        except BaseException:
            self._con.close()
            raise

    def _setup(self) -> None:
        con = self._con
        self.staging.mkdir(parents=True, exist_ok=True)
        # User SQL may read the store and nothing else: no files, no extensions, no network.
        con.execute("SET autoinstall_known_extensions = false")
        con.execute("SET autoload_known_extensions = false")
        con.execute(f"SET allowed_directories = ['{_sql_string(str(self.staging))}/']")
        con.execute("SET enable_external_access = false")
        # Each large ingest transaction ends with a partly filled row group; DuckDB's checkpoint would merge
        # them by rewriting everything after them (measured: +1.1 us per record ingested). Vacuuming is
        # done by maintain() instead, when replaced trace summaries have piled up.
        con.execute("SET max_vacuum_tasks = 0")
        schema = resources.files("zoomtrace.store").joinpath("schema.sql").read_text()
        con.execute("BEGIN TRANSACTION")
        try:
            for statement in duckdb.extract_statements(schema):
                con.execute(statement.query)
            con.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema', ?), ('ingest_seq', '0'), ('replaced_rows', '0')",
                [str(STORE_SCHEMA)],
            )
            row = con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        found = row[0] if row else None
        if found != str(STORE_SCHEMA):
            raise StoreError(
                f"the store {self.path} has schema version {found}, this zoomtrace expects {STORE_SCHEMA}: move "
                f"it away and run any command to rebuild it from the spool (keep the spool files)"
            )

    def close(self) -> None:
        with contextlib.suppress(duckdb.Error):
            self.maintain()
        with contextlib.suppress(duckdb.Error):
            self._con.close()

    def maintain(self, *, force: bool = False) -> bool:
        """Vacuum (reclaim replaced trace summaries, merge small row groups) once replaced rows reach a
        quarter of the traces table, or when ``force``d. Returns whether it ran."""
        con = self._con
        row = con.execute(
            "SELECT CAST(value AS BIGINT), (SELECT count(*) FROM traces) FROM meta WHERE key = 'replaced_rows'"
        ).fetchone()
        replaced, total = (row[0], row[1]) if row else (0, 0)
        if not force and replaced < max(VACUUM_MIN_ROWS, total // 4):
            return False
        con.execute("SET max_vacuum_tasks = 100")
        try:
            con.execute("CHECKPOINT")
            con.execute("UPDATE meta SET value = '0' WHERE key = 'replaced_rows'")
            con.execute("CHECKPOINT")
        finally:
            con.execute("SET max_vacuum_tasks = 0")
        return True

    # -- ingestion ----------------------------------------------------------------------

    def ingest(self, records: Iterable[Record]) -> int:
        """Store records idempotently (by id); returns how many were new. Records that cannot be stored
        (a number too large for its column, nesting too deep to encode) are skipped and logged in
        ``ingest_problems`` (and in ``last_skipped``)."""
        return self.ingest_batch(list(records))

    def ingest_offsets(self) -> dict[str, int]:
        """Spool segment name -> offset up to which it is stored."""
        return dict(self._con.execute('SELECT segment, "offset" FROM ingest_offsets').fetchall())

    @staticmethod
    def prepare(records: list[Record]) -> Prepared:
        """The Python half of ingestion (no database access, so it can run on another thread)."""
        return prepare(records)

    def ingest_batch(
        self,
        records: list[Record],
        offsets: dict[str, int] | None = None,
        problems: Sequence[tuple[str | None, str]] = (),
    ) -> int:
        """Store ``records`` and, in the same transaction, the spool ``offsets`` they were read up to and the
        ``problems`` met reading them: a crash leaves either all of it or none. Returns how many were new."""
        return self.ingest_prepared(prepare(records), offsets, problems)

    def ingest_prepared(
        self,
        batch: Prepared,
        offsets: dict[str, int] | None = None,
        problems: Sequence[tuple[str | None, str]] = (),
    ) -> int:
        """``ingest_batch`` for records already prepared (see ``prepare``).

        One bad record must not block the segment behind it forever: when the bulk insert fails, the
        records are checked one by one, the bad ones skipped (``last_skipped`` says which and why, as
        does ``ingest_problems``) and the batch retried once.
        """
        self.last_skipped = list(batch.skipped)
        with gc_paused():
            try:
                return self._store_batch(batch, offsets, [*problems, *((None, t) for t in batch.skipped)])
            except (duckdb.ConversionException, duckdb.InvalidInputException, duckdb.OutOfRangeException):
                good, skipped = _storable(batch.records())
                if not skipped:
                    raise
            retry = prepare(good)
            self.last_skipped = [*batch.skipped, *skipped, *retry.skipped]
            return self._store_batch(retry, offsets, [*problems, *((None, t) for t in self.last_skipped)])

    def _store_batch(
        self, batch: Prepared, offsets: dict[str, int] | None, problems: Sequence[tuple[str | None, str]]
    ) -> int:
        con = self._con
        now = time.time_ns()
        con.execute("BEGIN TRANSACTION")
        try:
            new = self._insert(batch) if batch.chunks else 0
            if offsets:
                con.executemany(
                    "INSERT OR REPLACE INTO ingest_offsets VALUES (?, ?, ?)",
                    [[segment, offset, now] for segment, offset in offsets.items()],
                )
            if problems:
                con.executemany(
                    "INSERT INTO ingest_problems VALUES (?, ?, ?)", [[now, seg, text] for seg, text in problems]
                )
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
        return new

    def _insert(self, batch: Prepared) -> int:
        con = self._con
        row = con.execute(
            "UPDATE meta SET value = CAST(CAST(value AS BIGINT) + 1 AS VARCHAR) WHERE key = 'ingest_seq' "
            "RETURNING CAST(value AS BIGINT)"
        ).fetchone()
        if row is None:
            raise StoreError(f"the store {self.path} lacks its ingest counter; move it away and rebuild it")
        seq: int = row[0]
        new = 0
        self.staging.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="ingest-", suffix=".ndjson", dir=self.staging)
        try:
            for data, lo, hi in batch.chunks:
                _write_file(fd, data)
                result = con.execute(_INSERT_RECORDS, {"path": name, "seq": seq, "lo": lo, "hi": hi}).fetchone()
                new += result[0] if result else 0
            if batch.blobs:
                _write_file(fd, batch.blobs)
                con.execute(_INSERT_BLOBS, {"path": name})
        finally:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(name)
        if new:
            self._summarise(seq, batch.node_records)
        return new

    def _summarise(self, seq: int, node_records: list[Record]) -> None:
        """Merge what this transaction added into ``nodes`` and ``traces``."""
        con = self._con
        con.execute(_UPSERT_NODE_COUNTS, {"seq": seq})
        started: set[str] = set()
        if node_records:
            new_ids = {
                rid
                for (rid,) in con.execute(
                    "SELECT id FROM records WHERE ingest_seq = ? AND kind = 'node'", [seq]
                ).fetchall()
            }
            started = self._apply_node_records([r for r in node_records if r.id in new_ids])
        con.execute(_BATCH_TRACES, {"seq": seq})
        con.execute(_OLD_TRACES)
        row = con.execute("SELECT count(*) FROM zt_old_traces").fetchone()
        if row and row[0]:
            con.execute("DELETE FROM traces WHERE trace_id IN (SELECT trace_id FROM zt_old_traces)")
            con.execute(
                "UPDATE meta SET value = CAST(CAST(value AS BIGINT) + ? AS VARCHAR) WHERE key = 'replaced_rows'",
                [row[0]],
            )
        con.execute(_MERGE_TRACES)
        con.execute("DROP TABLE zt_batch_traces")
        con.execute("DROP TABLE zt_old_traces")
        if started:
            row = con.execute(
                "SELECT min(first_seen_ns) FROM nodes WHERE node_id = ANY($nodes)", {"nodes": sorted(started)}
            ).fetchone()
            since = row[0] if row and row[0] is not None else 0
            con.execute(_REFRESH_TRACE_NODES, {"nodes": sorted(started), "since": since})

    def _apply_node_records(self, records: list[Record]) -> set[str]:
        """Fold node lifecycle records into ``nodes`` so that any order of arrival gives the same row.

        Returns the node ids whose identity (service, env) is now known, so traces can show them.
        """
        con = self._con
        by_node: dict[str, list[Record]] = {}
        for r in records:
            by_node.setdefault(r.node_id, []).append(r)
        identified: set[str] = set()
        names = [c.strip() for c in _NODE_COLUMNS.split(",")]
        for node_id, recs in by_node.items():
            found = con.execute(f"SELECT {_NODE_COLUMNS} FROM nodes WHERE node_id = ?", [node_id]).fetchone()
            current = dict(zip(names, found, strict=True)) if found else {"node_id": node_id}
            row = {k: (_json_or_none(v) if k in _NODE_JSON else v) for k, v in current.items()}
            for r in sorted(recs, key=lambda r: (r.ts_ns, r.id)):
                if _fold_node_record(row, r):
                    identified.add(node_id)
            values = [
                _json_encoder.encode(row.get(k)).decode() if k in _NODE_JSON and row.get(k) is not None else row.get(k)
                for k in _NODE_FIELDS
            ]
            assignments = ", ".join(f"{k} = ?" for k in _NODE_FIELDS)
            con.execute("INSERT OR IGNORE INTO nodes (node_id) VALUES (?)", [node_id])
            con.execute(f"UPDATE nodes SET {assignments} WHERE node_id = ?", [*values, node_id])
        return identified

    # -- queries ------------------------------------------------------------------------

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
        """The story of one trace (see ``zoomtrace.story.assemble`` for its shape)."""
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


def _one_line(exc: BaseException) -> str:
    """DuckDB's message (which may point at the error over several lines) on one line."""
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip())


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


def _sql_string(text: str) -> str:
    return text.replace("'", "''")


_INT64: Final = range(-(2**63), 2**63)
_INT32: Final = range(-(2**31), 2**31)
_row_decoder: Final = msgspec.json.Decoder(_Row)


class Prepared(msgspec.Struct):
    """Records ready for the database: NDJSON chunks (with their lowest and highest id), the blobs they
    point to, the node records to fold into ``nodes``, and records that could not even be encoded."""

    chunks: list[tuple[bytes, str, str]]
    blobs: bytes
    node_records: list[Record]
    skipped: list[str]

    def records(self) -> list[Record]:
        """The records back from their NDJSON (only needed when the database refuses a batch)."""
        return [_row_decoder.decode(line) for data, _, _ in self.chunks for line in data.splitlines() if line]


def prepare(records: list[Record]) -> Prepared:
    """Drop repeated ids, move bytes payloads to blobs and encode NDJSON chunks of CHUNK records.

    Pure Python (no database), so ``ingest_spool`` runs it on its reader thread, and the Record
    objects are released there too: the database thread then hardly needs the GIL.
    """
    seen: set[str] = set()
    rows: list[Record] = []
    node_records: list[Record] = []
    blobs: dict[str, bytes] = {}
    for r in records:
        if r.id in seen:
            continue  # given twice in one batch: the first copy counts
        seen.add(r.id)
        if r.kind == "node":
            node_records.append(r)
        rows.append(_move_payload(r, blobs) if type(r.payload) in _BYTES else r)
    skipped: list[str] = []
    chunks = []
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        data = _encode_lines(chunk, skipped)
        if data:
            ids = [r.id for r in chunk]
            chunks.append((data, min(ids), max(ids)))
    blob_lines = _json_encoder.encode_lines([{"sha256": k, "content": v} for k, v in blobs.items()]) if blobs else b""
    return Prepared(chunks, blob_lines, node_records, skipped)


def _move_payload(r: Record, blobs: dict[str, bytes]) -> _Row:
    """Bytes payloads (raw data, file snapshots) go to ``blobs``; the record keeps their digest."""
    data = bytes(r.payload)
    digest = hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    fields = msgspec.structs.asdict(r)
    fields["payload"] = None
    if r.kind == "raw" and ("raw.sha256" not in r.attrs or "raw.size" not in r.attrs):
        fields["attrs"] = {"raw.sha256": digest, "raw.size": len(data), **r.attrs}
    return _Row(**fields, payload_blob=digest)


def _encode_lines(records: list[Record], skipped: list[str]) -> bytes:
    """NDJSON of ``records``, in slices that stay in the CPU cache; a record that cannot be encoded is
    left out and reported in ``skipped``."""
    parts = []
    encode = _json_encoder.encode_lines
    for start in range(0, len(records), _SLICE):
        piece = records[start : start + _SLICE]
        try:
            parts.append(encode(piece))
        except (msgspec.EncodeError, RecursionError, OverflowError, ValueError):
            good, bad = _storable(piece)
            skipped.extend(bad)
            parts.append(encode(good))
    return b"".join(parts)


def _storable(records: list[Record]) -> tuple[list[Record], list[str]]:
    """Split records into those the store can hold and a problem line for each of the others."""
    good: list[Record] = []
    skipped: list[str] = []
    for r in records:
        reason = None
        for name in ("ts_ns", "end_ns", "cpu_ns"):
            value = getattr(r, name)
            if value is not None and value not in _INT64:
                reason = f"{name} {value} is out of range"
        if r.v not in _INT32:
            reason = f"schema version {r.v} is out of range"
        if reason is None:
            try:
                _json_encoder.encode(r)
            except (msgspec.EncodeError, RecursionError, OverflowError, ValueError) as exc:
                reason = f"it cannot be encoded ({type(exc).__name__}: {exc})"
        if reason is None:
            good.append(r)
        else:
            skipped.append(f"record {r.id} ({r.kind} {r.type!r} of node {r.node_id}) skipped: {reason}")
    return good, skipped


def _write_file(fd: int, data: bytes) -> None:
    """Replace the staging file's content with ``data``; overwritten rather than truncated first, so its
    pages are reused instead of being freed and allocated again for every chunk."""
    os.lseek(fd, 0, os.SEEK_SET)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.ftruncate(fd, len(data))


def _fold_node_record(row: dict[str, Any], r: Record) -> bool:
    """Apply one node record to a nodes row (a dict). True if it identified the node (a *started* record)."""
    attrs = r.attrs
    if r.type == "started":
        for key, column in (
            ("service", "service"),
            ("env", "env"),
            ("group", "grp"),
            ("version", "version"),
            ("host", "host"),
            ("pid", "pid"),
            ("parent_node_id", "parent_node_id"),
            ("python", "python"),
            ("platform", "platform"),
            ("commit", "commit"),
            ("branch", "branch"),
            ("argv", "argv"),
        ):
            if attrs.get(key) is not None:
                row[column] = attrs[key]
        row["started_ns"] = attrs.get("started_ns") or r.ts_ns
        repos = [repo for repo in attrs.get("repos") or [] if isinstance(repo, dict)]
        roots = {repo.get("root") for repo in repos}
        row["repos"] = repos + [repo for repo in row.get("repos") or [] if repo.get("root") not in roots]
        row["attrs"] = attrs
        return True
    if r.type == "stopped":
        stopped_ns = attrs.get("stopped_ns") or r.ts_ns
        if row.get("stopped_ns") is None or stopped_ns >= row["stopped_ns"]:
            row["stopped_ns"] = stopped_ns
            row["stop_cause"] = attrs.get("cause")
            row["stop_error"] = msgspec.to_builtins(r.error) if r.error is not None else None
            if row["stop_error"] is not None:
                row["stop_error"]["frames"] = [
                    {"file": f[0], "line": f[1], "function": f[2]} for f in row["stop_error"].get("frames", [])
                ]
    elif r.type == "repo":
        repos = row.get("repos") or []
        if attrs.get("root") not in {repo.get("root") for repo in repos}:
            row["repos"] = [*repos, attrs]
    elif r.type == "lost":
        lost = attrs.get("lost")
        if isinstance(lost, dict):
            total = sum(v for v in lost.values() if isinstance(v, int))
            old = row.get("lost") or {}
            if total >= sum(v for v in old.values() if isinstance(v, int)):
                row["lost"] = lost
    return False
