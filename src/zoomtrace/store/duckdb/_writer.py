"""Writing into the DuckDB store: bulk, idempotent ingestion and the summaries it maintains.

Records are written as NDJSON by msgspec and loaded with one ``INSERT ... SELECT FROM
read_json(...)`` per chunk (the Python appender and ``executemany`` convert value by value and
measured slower). Summaries (``traces``, ``nodes``) are merged incrementally from the rows each
transaction added, found cheaply through their shared ``ingest_seq``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from operator import attrgetter
from pathlib import Path
from typing import Any, Final, get_args

import duckdb
import msgspec

from zoomtrace._gc import gc_paused
from zoomtrace.errors import StoreError
from zoomtrace.store._columns import line_problems
from zoomtrace.store._lines import scan
from zoomtrace.store._slices import SLICE, first_of_each_id, record_id
from zoomtrace.store.duckdb._common import (
    _NODE_COLUMNS,
    _NODE_FIELDS,
    _NODE_JSON,
    IS_ERROR,
    _json_encoder,
    _json_or_none,
)
from zoomtrace.store.protocols import Problem, WriteReport
from zoomtrace.wire.record import BINARY, Record
from zoomtrace.wire.record import SCHEMA_VERSION as RECORD_VERSION

#: Records per NDJSON chunk (one INSERT each); bounds the staging file (≈ 200 MB) and DuckDB's working memory.
#: A batch (spool ingest and the Kafka collector write 100,000 records and more) is one chunk: DuckDB writes an
#: INSERT's rows straight to the file only as far as each of its threads fills row groups; the rest goes through
#: the write-ahead log and a checkpoint at commit, which made a second, smaller chunk cost 2 µs a record more.
CHUNK: Final = 500_000
#: A single record may be as large as a spool frame.
_MAX_OBJECT: Final = 512 * 1024 * 1024
#: The least ``maximum_object_size`` given to ``read_json``. DuckDB parses a file in buffers of twice that size,
#: one buffer per thread, so the bound given is the chunk's longest line (``_widest_line``) rather than
#: _MAX_OBJECT, whose 1 GiB buffer held a whole chunk: one thread parsed it all, and more slowly (docs/store.md,
#: "Ingestion").
_MIN_OBJECT_BOUND: Final = 4 * 1024 * 1024
#: Buffers per ``writev`` call, at most.
_IOV_MAX: Final = os.sysconf("SC_IOV_MAX")


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
    status, cpu_ns, thread, coalesce(v, {RECORD_VERSION}), $seq
FROM read_json($path, format = 'newline_delimited', columns = {_READ_COLUMNS}, maximum_object_size = $widest)
WHERE id NOT IN (SELECT id FROM records WHERE id BETWEEN $lo AND $hi)
"""

_INSERT_BLOBS: Final = f"""
INSERT OR IGNORE INTO blobs
SELECT sha256, from_base64(content), octet_length(from_base64(content))
FROM read_json($path, format = 'newline_delimited', columns = {{sha256: 'VARCHAR', content: 'VARCHAR'}},
               maximum_object_size = {_MAX_OBJECT})
"""

_UPSERT_NODE_COUNTS: Final = f"""
INSERT INTO nodes (node_id, first_seen_ns, record_count, span_count, log_count, event_count, raw_count, error_count)
SELECT node_id, min(ts_ns), count(*), count(*) FILTER (kind = 'span'), count(*) FILTER (kind = 'log'),
       count(*) FILTER (kind = 'event'), count(*) FILTER (kind = 'raw'), count(*) FILTER ({IS_ERROR})
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

#: Per trace, what this transaction added, in one pass over its records. Its nodes are not listed here:
#: a trace almost always has one (``node_lo = node_hi``), which a join names; a list aggregate per trace
#: measured four times the cost of the rest, so the traces of several nodes get theirs apart
#: (``_BATCH_TRACE_NODES``).
_BATCH_TRACES: Final = f"""
CREATE OR REPLACE TEMP TABLE zt_batch_traces AS
SELECT trace_id, min(ts_ns) AS start_ns, max(greatest(ts_ns, coalesce(end_ns, ts_ns))) AS end_ns,
       arg_min({{'name': type, 'span_id': span_id, 'node_id': node_id, 'start_ns': ts_ns,
                 'is_top': parent_span_id IS NULL}}, {_ROOT_KEY}) FILTER (kind = 'span') AS root,
       min(node_id) AS node_lo, max(node_id) AS node_hi,
       count(*) FILTER (kind = 'span') AS span_count, count(*) FILTER (kind = 'log') AS log_count,
       count(*) FILTER (kind = 'event') AS event_count, bool_or({IS_ERROR}) AS error, count(*) AS record_count
FROM records WHERE ingest_seq = $seq AND trace_id IS NOT NULL
GROUP BY trace_id
"""

#: The nodes, services and environments of the batch's traces that span several nodes.
_BATCH_TRACE_NODES: Final = """
CREATE OR REPLACE TEMP TABLE zt_batch_trace_nodes AS
SELECT p.trace_id, list_sort(list(p.node_id)) AS node_ids,
       coalesce(list_sort(list_distinct(list(n.service) FILTER (n.service IS NOT NULL))), []) AS services,
       coalesce(list_sort(list_distinct(list(n.env) FILTER (n.env IS NOT NULL))), []) AS envs
FROM (
    SELECT DISTINCT trace_id, node_id FROM records
    WHERE ingest_seq = $seq AND trace_id IN (SELECT trace_id FROM zt_batch_traces WHERE node_lo <> node_hi)
) AS p LEFT JOIN nodes AS n ON n.node_id = p.node_id
GROUP BY p.trace_id
"""

#: The stored summaries of those traces, which are replaced by their merge with the batch's.
_OLD_TRACES: Final = """
CREATE OR REPLACE TEMP TABLE zt_old_traces AS
SELECT * FROM traces WHERE trace_id IN (SELECT trace_id FROM zt_batch_traces)
"""

_NEW_ROOT_WINS: Final = (
    "(b.root_span_id IS NOT NULL AND (o.root_span_id IS NULL OR (b.root_is_top AND NOT o.root_is_top)"
    " OR (b.root_is_top = o.root_is_top AND b.root_start_ns < o.root_start_ns)))"
)


def _root(field: str) -> str:
    return f"CASE WHEN {_NEW_ROOT_WINS} THEN b.root_{field} ELSE o.root_{field} END AS root_{field}"


def _merged_list(name: str) -> str:
    """A list column of the batch's summary merged with the stored one. Both are sorted and distinct, so when
    they are equal (a trace of one node, on the stored trace's node: the usual case) the merge is either; only
    other stored traces pay for the list functions, which took half the merge's time for traces split across
    batches (the Kafka collector's, whose records of one trace come from several topics)."""
    merged = f"list_sort(list_distinct(list_concat(coalesce(o.{name}, []), b.{name})))"
    return f"CASE WHEN o.trace_id IS NULL OR o.{name} = b.{name} THEN b.{name} ELSE {merged} END AS {name}"


#: The batch's summaries with their nodes' names, merged with the stored ones (traces seen before: few).
_MERGE_TRACES: Final = f"""
INSERT INTO traces BY NAME
WITH b AS (
    SELECT t.trace_id, t.start_ns, t.end_ns, t.root.name AS root_name, rn.service AS root_service,
           t.root.span_id AS root_span_id, t.root.node_id AS root_node_id, t.root.start_ns AS root_start_ns,
           t.root.is_top AS root_is_top,
           coalesce(m.node_ids, [t.node_lo]) AS node_ids,
           coalesce(m.services, CASE WHEN n.service IS NULL THEN [] ELSE [n.service] END) AS services,
           coalesce(m.envs, CASE WHEN n.env IS NULL THEN [] ELSE [n.env] END) AS envs,
           t.span_count, t.log_count, t.event_count, t.error, t.record_count
    FROM zt_batch_traces AS t
    LEFT JOIN zt_batch_trace_nodes AS m ON m.trace_id = t.trace_id
    LEFT JOIN nodes AS n ON n.node_id = t.node_lo
    LEFT JOIN nodes AS rn ON rn.node_id = t.root.node_id
)
SELECT b.trace_id,
       CASE WHEN regexp_full_match(substr(b.trace_id, 1, 15), '[0-9a-fA-F]+')
            THEN CAST('0x' || substr(b.trace_id, 1, 15) AS BIGINT) END AS trace_key,
       least(o.start_ns, b.start_ns) AS start_ns,
       greatest(o.end_ns, b.end_ns) AS end_ns,
       greatest(o.end_ns, b.end_ns) - least(o.start_ns, b.start_ns) AS duration_ns,
       {_root("name")}, {_root("service")}, {_root("span_id")}, {_root("node_id")}, {_root("start_ns")},
       {_root("is_top")},
       {_merged_list("services")}, {_merged_list("envs")}, {_merged_list("node_ids")},
       coalesce(o.span_count, 0) + b.span_count AS span_count,
       coalesce(o.log_count, 0) + b.log_count AS log_count,
       coalesce(o.event_count, 0) + b.event_count AS event_count,
       coalesce(o.error, false) OR b.error AS error,
       coalesce(o.record_count, 0) + b.record_count AS record_count
FROM b LEFT JOIN zt_old_traces AS o ON o.trace_id = b.trace_id
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


class DuckWriter:
    """The write half of ``DuckStore``: the ``StoreWriter`` protocol on DuckDB."""

    _con: duckdb.DuckDBPyConnection
    path: Path
    staging: Path

    def ingest(self, records: Iterable[Record]) -> int:
        """``prepare`` and ``write`` in one call, for tests and scripts; returns how many records were new."""
        return self.write(prepare(list(records))).new

    def offsets(self) -> dict[str, int]:
        """Spool segment name -> offset up to which it is stored."""
        return dict(self._con.execute('SELECT segment, "offset" FROM ingest_offsets').fetchall())

    @staticmethod
    def prepare(records: list[Record], lines: Sequence[bytes] = ()) -> Prepared:
        """The Python half of a write (no database access, so it can run on another thread)."""
        return prepare(records, lines)

    def write(
        self, batch: Prepared, *, offsets: Mapping[str, int] | None = None, problems: Sequence[Problem] = ()
    ) -> WriteReport:
        """Store ``batch`` and, in the same transaction, the spool ``offsets`` it was read up to and the
        ``problems`` met reading it: a crash leaves either all of it or none.

        One bad record must not block the segment behind it forever: when the bulk insert fails, the
        records are checked one by one, the bad ones skipped (reported in ``WriteReport.skipped`` and kept
        in ``ingest_problems``) and the batch written once more.
        """
        with gc_paused():
            try:
                new = self._store_batch(batch, offsets, [*problems, *((None, t) for t in batch.skipped)])
                return WriteReport(new, list(batch.skipped))
            except (duckdb.ConversionException, duckdb.InvalidInputException, duckdb.OutOfRangeException):
                records, undecodable = batch.records()
                good, refused = _storable(records)
                refused += undecodable
                if not refused:
                    raise
            retry = prepare(good)
            retry.blobs = batch.blobs  # the records came back with their blobs' digests, not their bytes
            skipped = [*batch.skipped, *refused, *(t for t in retry.skipped if t not in batch.skipped)]
            new = self._store_batch(retry, offsets, [*problems, *((None, t) for t in skipped)])
            return WriteReport(new, skipped)

    def _store_batch(self, batch: Prepared, offsets: Mapping[str, int] | None, problems: Sequence[Problem]) -> int:
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
            for parts, lo, hi in batch.chunks:
                _write_file(fd, parts)
                widest = _widest_line(parts)
                params = {"path": name, "seq": seq, "lo": lo, "hi": hi, "widest": widest}
                result = con.execute(_INSERT_RECORDS, params).fetchone()
                new += result[0] if result else 0
            if batch.blobs:
                _write_file(fd, [batch.blobs])
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
        if started:  # before the batch's own summaries are stored: they name the nodes known now already
            row = con.execute(
                "SELECT min(first_seen_ns) FROM nodes WHERE node_id = ANY($nodes)", {"nodes": sorted(started)}
            ).fetchone()
            since = row[0] if row and row[0] is not None else 0
            con.execute(_REFRESH_TRACE_NODES, {"nodes": sorted(started), "since": since})
        con.execute(_BATCH_TRACES, {"seq": seq})
        con.execute(_BATCH_TRACE_NODES, {"seq": seq})
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
        con.execute("DROP TABLE zt_batch_trace_nodes")
        con.execute("DROP TABLE zt_old_traces")

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


_INT64: Final = range(-(2**63), 2**63)
_INT32: Final = range(-(2**31), 2**31)
_row_decoder: Final = msgspec.json.Decoder(_Row)
_payload: Final = attrgetter("payload")


class Prepared(msgspec.Struct):
    """Records ready for the database: NDJSON chunks (with their lowest and highest id), the blobs they
    point to, the node records to fold into ``nodes``, and a problem line for each record that could not
    even be encoded, or will be stored without a value its column cannot hold (``store._columns``)."""

    chunks: list[tuple[list[bytes], str, str]]
    blobs: bytes
    node_records: list[Record]
    skipped: list[str]

    def records(self) -> tuple[list[Record], list[str]]:
        """The records back from their NDJSON (only needed when the database refuses a batch), and a problem
        line for each line that is no record (JSON lines from a spool are not checked field by field)."""
        records: list[Record] = []
        problems: list[str] = []
        for parts, _, _ in self.chunks:
            for data in parts:
                for line in data.splitlines():
                    try:
                        records.append(_row_decoder.decode(line))
                    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                        problems.append(f"a record line does not decode ({exc}): {line[:120]!r}; skipped")
        return records, problems


def prepare(records: list[Record], lines: Sequence[bytes] = ()) -> Prepared:
    """Drop repeated ids, move bytes payloads to blobs and encode NDJSON chunks of CHUNK records; ``lines``
    (blocks of records as JSON lines, the spool's frames) join the chunks as they are (``store._lines``).

    Pure Python (no database), so spool ingest runs it on its reading thread while another thread
    writes the previous batch, and the Record objects are released there too: the writing thread
    then hardly needs the GIL. Every step runs on one slice at a time (``store._slices``).
    """
    seen: set[str] = set()
    node_records: list[Record] = []
    blobs: dict[str, bytes] = {}
    skipped: list[str] = []
    chunks = _Chunks()
    for at in range(0, len(records), SLICE):
        piece = first_of_each_id(records[at : at + SLICE], seen)
        node_records += [r for r in piece if r.kind == "node"]
        if any(type(payload) in BINARY for payload in map(_payload, piece)):
            piece = [_move_payload(r, blobs) if type(r.payload) in BINARY else r for r in piece]
        skipped += line_problems(piece)
        data = _encode_lines(piece, skipped)
        if data:
            chunks.add(data, list(map(record_id, piece)))
    for block in lines:
        got = scan(block, seen, skipped)
        if got.facts:
            node_records += got.nodes
            chunks.add(got.data, got.ids)
    blob_lines = _json_encoder.encode_lines([{"sha256": k, "content": v} for k, v in blobs.items()]) if blobs else b""
    return Prepared(chunks.done(), blob_lines, node_records, skipped)


class _Chunks:
    """NDJSON parts gathered into chunks of about CHUNK records, each with its lowest and highest id."""

    def __init__(self) -> None:
        self.chunks: list[tuple[list[bytes], str, str]] = []
        self._parts: list[bytes] = []
        self._ids: list[str] = []

    def add(self, data: bytes, ids: list[str]) -> None:
        self._parts.append(data)
        self._ids += ids
        if len(self._ids) >= CHUNK:
            self._close()

    def done(self) -> list[tuple[list[bytes], str, str]]:
        if self._ids:
            self._close()
        return self.chunks

    def _close(self) -> None:
        self.chunks.append((self._parts, min(self._ids), max(self._ids)))
        self._parts, self._ids = [], []


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
    """NDJSON of ``records``; a record that cannot be encoded is left out and reported in ``skipped``."""
    try:
        return _json_encoder.encode_lines(records)
    except (msgspec.EncodeError, RecursionError, OverflowError, ValueError):
        good, bad = _storable(records)
        skipped.extend(bad)
        return _json_encoder.encode_lines(good)


def _is_int(annotation: Any) -> bool:
    return annotation is int or int in get_args(annotation)


#: The record's integer fields, stored as BIGINT (all but the schema version, an INTEGER).
_BIGINT_FIELDS: Final = tuple(f.name for f in msgspec.structs.fields(Record) if f.name != "v" and _is_int(f.type))


def _storable(records: list[Record]) -> tuple[list[Record], list[str]]:
    """Split records into those the store can hold and a problem line for each of the others."""
    good: list[Record] = []
    skipped: list[str] = []
    for r in records:
        reason = None
        for name in _BIGINT_FIELDS:
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


def _widest_line(parts: list[bytes]) -> int:
    """The longest line of ``parts``, and no less than ``_MIN_OBJECT_BOUND``: ``read_json``'s
    ``maximum_object_size``. A part no longer than that bound holds no longer line, so only the rare longer part
    is looked into. Given the part's length, a slice of 2,000 records of 1 MiB made DuckDB parse in buffers of
    4 GiB, and a part of 4 GiB or more is a value it refuses, which would have stopped that batch for good."""
    widest = _MIN_OBJECT_BOUND
    for data in parts:
        if len(data) <= widest:
            continue
        start = 0
        while start < len(data):
            end = data.find(b"\n", start)
            end = len(data) if end < 0 else end
            widest = max(widest, end - start)
            start = end + 1
    return widest


def _write_file(fd: int, parts: list[bytes]) -> None:
    """Replace the staging file's content with ``parts`` (never joined in memory); overwritten rather than
    truncated first, so its pages are reused instead of being freed and allocated again for every chunk.

    ``writev`` takes up to ``_IOV_MAX`` parts a call: the writing thread gives the GIL up for each call and waits
    for it after, while spool ingest's reader holds it, so a write per part (a spool frame: ≈500 for 200,000
    records) kept 83 MB of writing 0.2 s on the clock for 0.06 s of CPU."""
    os.lseek(fd, 0, os.SEEK_SET)
    size = 0
    for at in range(0, len(parts), _IOV_MAX):
        views = [memoryview(data) for data in parts[at : at + _IOV_MAX]]
        size += sum(map(len, views))
        while views:
            written = os.writev(fd, views)
            done = 0
            while done < len(views) and written >= len(views[done]):
                written -= len(views[done])
                done += 1
            views = views[done:]  # after a short write, what is left of the parts
            if views:
                views[0] = views[0][written:]
    os.ftruncate(fd, size)


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
