"""Writing into the ClickHouse store: prepared JSONEachRow batches, idempotent by record id.

``prepare`` (pure Python, any thread) encodes a batch with msgspec in the wire's own shape; the engine
reshapes it into ``records`` (the ``records_input`` view) and feeds the summaries from the rows stored.

ClickHouse has no transaction over several statements, so ``write`` keeps the protocol's promises
its own way (docs/store.md, "ClickHouse"):

- **Idempotent.** The ids of the batch already stored are asked first (only in the batch's id range,
  which a min-max index answers from recent parts) and left out, so ``WriteReport.new`` is exactly the
  number of ids not stored before. Each insert carries a deduplication token (a digest of its records'
  ids; of its bytes for the other tables): an insert retried after a lost answer is dropped by the
  server, summaries included. Two writers
  racing with the same records may both store them: readers still show each record once, and
  ``ReplacingMergeTree`` keeps one copy at its next merge (the summaries may count it twice).
- **One insert per batch.** The records of a batch are one insert, one block of up to a million rows:
  a refused record or a lost connection stores nothing of it.
- **Nothing dropped unseen.** A record older than the store's retention would be dropped by the TTL as it
  is inserted; it is left out and reported instead (``WriteReport.skipped``), so the trace summaries are
  fed only by the records kept.
- **Records before offsets.** Blobs, then records, then problems, then the source offsets: after a
  crash the source is read again from its previous offset and the records already stored are skipped.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import time
from collections.abc import Iterable, Mapping, Sequence
from operator import attrgetter
from typing import Final

import msgspec

from zoomtrace._gc import gc_paused
from zoomtrace.errors import StoreError
from zoomtrace.store._columns import line_problems
from zoomtrace.store._lines import LineFacts, Lines, scan
from zoomtrace.store._slices import SLICE, first_of_each_id, record_id
from zoomtrace.store.clickhouse._schema import OUT_OF_RANGE, Layout, among
from zoomtrace.store.clickhouse._transport import EngineError, Param, Transport
from zoomtrace.store.protocols import Problem, WriteReport
from zoomtrace.wire.record import BINARY, Record, json_decoder

#: Stored ids fetched to find a batch's repeats by range; beyond it the batch's ids are sent instead.
_RANGE_ROWS: Final = 200_000
_ENCODE_ERRORS: Final = (msgspec.EncodeError, RecursionError, OverflowError, ValueError, TypeError)
_encoder: Final = msgspec.json.Encoder()
_payload: Final = attrgetter("payload")
_ts_ns: Final = attrgetter("ts_ns")

#: Settings of every insert. JSON objects and arrays may be read into String columns (attrs, error), and
#: numbers or booleans into Array(String) (code); rows go to every day they belong to; a block is not
#: merged with itself on insert (``prepare`` dropped repeated ids already, and that merge measured half
#: of the cost of writing ``records``); views of a deduplicated insert are deduplicated too; on a cluster
#: the Distributed table stores the rows before the insert returns.
_INSERT_SETTINGS: Final[dict[str, int | str]] = {
    "optimize_on_insert": 0,
    "input_format_json_read_objects_as_strings": 1,
    "input_format_json_read_numbers_as_strings": 1,
    "input_format_json_read_bools_as_strings": 1,
    "input_format_skip_unknown_fields": 1,
    "max_partitions_per_insert_block": 0,
    "deduplicate_blocks_in_dependent_materialized_views": 1,
    "distributed_foreground_insert": 1,
}


class _Row(Record, kw_only=True, omit_defaults=True):
    """A record whose bytes payload was moved to ``blobs``."""

    payload_blob: str | None = None


class _Numbers(msgspec.Struct):
    """What a line of a prepared batch says about its integers (checked when the engine refuses one)."""

    id: str
    kind: str
    type: str
    node_id: str
    ts_ns: int
    end_ns: int | None = None
    cpu_ns: int | None = None
    v: int = 1


_INT64: Final = range(-(2**63), 2**63)
_INT32: Final = range(-(2**31), 2**31)


class Prepared(msgspec.Struct):
    """A batch ready for ``write``: the records' JSONEachRow lines and their ids (in the same order), the
    blobs they point to (JSONEachRow, content in base64), a line for each record left out, and the time of
    its oldest record (to find records beyond the retention without decoding the lines)."""

    data: bytes
    ids: list[str]
    blobs: bytes
    skipped: list[str]
    oldest_ns: int = 0


def prepare(records: list[Record], lines: Sequence[bytes] = ()) -> Prepared:
    """Drop repeated ids (the first copy counts), move bytes payloads to blobs, encode JSONEachRow; ``lines``
    (blocks of records as JSON lines, the spool's frames) are added as they are (``store._lines``).

    Pure Python (no connection), so a writer prepares the next batch on another thread, and
    ``zoomtrace.store.prepare_for`` offers it without opening the store. A payload is encoded as JSON
    text first, so the engine stores it as written (a string payload stays distinct from a number); in
    ``lines`` the engine reads any other payload as its text already (``input_format_json_read_*_as_strings``),
    so only a line with a string payload is encoded again.
    Numbers too large for their column are found by the engine (``write``), not here. Every step runs
    on one slice at a time (``store._slices``).
    """
    with gc_paused():
        seen: set[str] = set()
        blobs: dict[str, bytes] = {}
        skipped: list[str] = []
        parts: list[bytes] = []
        ids: list[str] = []
        oldest_ns: int | None = None
        for at in range(0, len(records), SLICE):
            piece = first_of_each_id(records[at : at + SLICE], seen)
            skipped += line_problems(piece)
            if any(payload is not None for payload in map(_payload, piece)):
                piece = _payloads_as_text(piece, blobs, skipped)
            if not piece:
                continue
            try:
                parts.append(_encoder.encode_lines(piece))
            except _ENCODE_ERRORS:
                piece = _encodable(piece, skipped)
                parts.append(_encoder.encode_lines(piece))
            ids += map(record_id, piece)
            oldest = min(map(_ts_ns, piece), default=None)
            if oldest is not None and (oldest_ns is None or oldest < oldest_ns):
                oldest_ns = oldest
        for block in lines:
            got = scan(block, seen, skipped)
            if not got.facts:
                continue
            if any(map(_is_string, got.facts)):
                got = _string_payloads_as_text(got, skipped)
                if not got.facts:
                    continue
            parts.append(got.data)
            ids += got.ids
            oldest = min(map(_ts_ns, got.facts))
            if oldest_ns is None or oldest < oldest_ns:
                oldest_ns = oldest
        blob_lines = (
            _encoder.encode_lines([{"sha256": k, "content": base64.b64encode(v).decode()} for k, v in blobs.items()])
            if blobs
            else b""
        )
        return Prepared(b"".join(parts), ids, blob_lines, skipped, oldest_ns or 0)


def _payloads_as_text(records: list[Record], blobs: dict[str, bytes], skipped: list[str]) -> list[Record]:
    """``records`` with each payload as its JSON text, or moved to ``blobs`` (bytes); a record whose payload
    cannot be encoded is left out and reported in ``skipped``."""
    out = []
    for r in records:
        payload = r.payload
        if payload is None:
            out.append(r)
        elif type(payload) in BINARY:
            out.append(_move_payload(r, blobs))
        else:
            try:
                out.append(msgspec.structs.replace(r, payload=_encoder.encode(payload).decode()))
            except _ENCODE_ERRORS as exc:
                skipped.append(_skip_line(r, f"its payload cannot be encoded ({type(exc).__name__}: {exc})"))
    return out


def _is_string(fact: LineFacts) -> bool:
    """Whether the line's payload is a JSON string."""
    raw = memoryview(fact.payload)
    return len(raw) > 0 and raw[0] == 0x22  # '"'


def _string_payloads_as_text(got: Lines, skipped: list[str]) -> Lines:
    """``got`` with each string payload as its JSON text (the engine would store the string itself); a line
    that does not decode whole is left out and reported in ``skipped``."""
    lines, facts = [], []
    for line, fact in zip(got.split(), got.facts, strict=True):
        if _is_string(fact):
            try:
                r = json_decoder.decode(line)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                skipped.append(_skip_line(fact, f"it does not decode ({exc})"))
                continue
            lines.append(_encoder.encode(msgspec.structs.replace(r, payload=bytes(fact.payload).decode())))
        else:
            lines.append(line)
        facts.append(fact)
    return Lines(b"".join(line + b"\n" for line in lines), facts, got.nodes, list(map(record_id, facts)))


class ClickHouseWriter:
    """The write half of ``ClickHouseStore``: the ``StoreWriter`` protocol on ClickHouse."""

    _transport: Transport
    _display: str
    _layout: Layout

    def ingest(self, records: Iterable[Record]) -> int:
        """``prepare`` and ``write`` in one call, for tests and scripts; returns how many records were new."""
        return self.write(prepare(list(records))).new

    @staticmethod
    def prepare(records: list[Record], lines: Sequence[bytes] = ()) -> Prepared:
        """The Python half of a write (no connection, so it can run on another thread)."""
        return prepare(records, lines)

    def offsets(self) -> dict[str, int]:
        """Source name -> offset up to which it is stored (the latest written)."""
        rows = self._values("SELECT segment, argMax(`offset`, updated_ns) FROM ingest_offsets GROUP BY segment")
        return {str(segment): int(offset) for segment, offset in rows}

    def write(
        self, batch: Prepared, *, offsets: Mapping[str, int] | None = None, problems: Sequence[Problem] = ()
    ) -> WriteReport:
        """Store ``batch``, then the ``problems`` met reading it, then the source ``offsets`` it was read up to.

        The records come first: a crash before the offsets are stored means the source is read again,
        and its records already stored are skipped. A record with a number its column cannot hold makes
        the engine refuse the insert; those records are then found, left out and reported, and the rest
        is stored.
        """
        now = time.time_ns()
        skipped = list(batch.skipped)
        try:
            if batch.blobs:
                self._insert("blobs_input", batch.blobs)
            new = self._insert_records(batch, skipped) if batch.ids else 0
            notes = [*problems, *((None, text) for text in skipped)]
            if notes:
                self._insert(
                    "ingest_problems",
                    _encoder.encode_lines(
                        [
                            {"ts_ns": now, "position": i, "segment": source, "problem": text}
                            for i, (source, text) in enumerate(notes)
                        ]
                    ),
                )
            if offsets:
                self._insert(
                    "ingest_offsets",
                    _encoder.encode_lines(
                        [{"segment": name, "offset": offset, "updated_ns": now} for name, offset in offsets.items()]
                    ),
                )
        except EngineError as exc:
            raise StoreError(f"cannot write to the store {self._display}: {exc}") from None
        return WriteReport(new, skipped)

    def _insert_records(self, batch: Prepared, skipped: list[str]) -> int:
        """Insert the batch's records not stored yet; returns their number (``skipped`` gets the refused and
        the expired)."""
        expired = self._expired(batch, skipped)
        stored = self._stored_among(batch.ids) | expired
        try:
            self._insert_lines(batch, stored)
        except EngineError as exc:
            if OUT_OF_RANGE not in str(exc):
                raise
            # Left out below: the records that do not fit, and any block of a large batch stored before
            # the failing one (counted as new: this write stored it).
            refused = set()
            for line in batch.data.split(b"\n")[: len(batch.ids)]:
                reason = _out_of_range(line)
                if reason is not None:
                    refused.add(_decode_numbers(line).id)
                    skipped.append(reason)
            self._insert_lines(batch, self._stored_among(batch.ids) | expired | refused)
            return len(batch.ids) - len(stored) - len(refused)
        return len(batch.ids) - len(stored)

    def _expired(self, batch: Prepared, skipped: list[str]) -> set[str]:
        """The ids of the batch's records older than the retention (the TTL would drop them as inserted:
        rows of a day D are kept while D + retention days is after today, UTC); ``skipped`` says so."""
        days = self._layout.retention_days
        if days <= 0:
            return set()
        today = datetime.datetime.now(datetime.UTC).date()
        first_kept = today - datetime.timedelta(days=days - 1)
        cutoff_ns = (
            int(datetime.datetime(first_kept.year, first_kept.month, first_kept.day, tzinfo=datetime.UTC).timestamp())
            * 10**9
        )
        if batch.oldest_ns >= cutoff_ns:
            return set()
        expired = set()
        for line in batch.data.split(b"\n")[: len(batch.ids)]:
            r = _decode_numbers(line)
            if r.ts_ns < cutoff_ns:
                expired.add(r.id)
                skipped.append(_skip_line(r, f"it is older than the store's retention of {days} days"))
        return expired

    def _stored_among(self, ids: list[str]) -> set[str]:
        """The ids of ``ids`` the store holds: those stored in their range, else (a busy range) asked by id."""
        lo, hi = min(ids), max(ids)
        found = self._values(
            "SELECT DISTINCT id FROM records WHERE id >= {lo:String} AND id <= {hi:String} LIMIT {n:UInt64} "
            "SETTINGS ignore_data_skipping_indices = 'id_bloom'",
            {"lo": lo, "hi": hi, "n": _RANGE_ROWS + 1},
        )
        if len(found) <= _RANGE_ROWS:
            return {row[0] for row in found}.intersection(ids)
        found = self._values(
            "SELECT DISTINCT id FROM records WHERE id >= {lo:String} AND id <= {hi:String} "
            f"AND {among('id', 'ids', len(ids))} SETTINGS ignore_data_skipping_indices = 'id_bloom'",
            {"lo": lo, "hi": hi, "ids": ids},
        )
        return {row[0] for row in found}

    def _insert_lines(self, batch: Prepared, leave_out: set[str]) -> None:
        """Insert the batch's records but those of ``leave_out``. The deduplication token is a digest of the
        records' ids, which name what is inserted as well as its bytes do (a record is stored once per id)
        and are a tenth of them to hash (the bytes' digest measured ≈0.5 µs per record)."""
        ids = [i for i in batch.ids if i not in leave_out] if leave_out else batch.ids
        if ids:
            data = _without(batch, leave_out) if leave_out else batch.data
            self._insert("records_input", data, token_of="\n".join(ids).encode())

    def _insert(self, table: str, data: bytes, *, token_of: bytes | None = None) -> None:
        """Insert ``data`` with a deduplication token: a digest of ``token_of``, else of ``data``."""
        if not data:
            return
        token = hashlib.blake2b(data if token_of is None else token_of, digest_size=16).hexdigest()
        self._transport.insert(table, data, settings={**_INSERT_SETTINGS, "insert_deduplication_token": token})

    def _values(self, sql: str, params: Mapping[str, Param] | None = None) -> list[list[str]]:
        """Rows of a small result (JSONCompactEachRow), e.g. ids or offsets."""
        data = self._transport.query(sql, params, fmt="JSONCompactEachRow")
        return msgspec.json.decode(b"[" + data.rstrip(b"\n").replace(b"\n", b",") + b"]") if data else []


def _without(batch: Prepared, ids: set[str]) -> bytes:
    """The batch's lines but those of ``ids`` (a JSON line holds no raw newline)."""
    lines = batch.data.split(b"\n")
    return b"".join(line + b"\n" for line, rid in zip(lines, batch.ids, strict=False) if rid not in ids)


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


def _encodable(records: list[Record], skipped: list[str]) -> list[Record]:
    """The records msgspec can encode; a line in ``skipped`` for each of the others."""
    good = []
    for r in records:
        try:
            _encoder.encode(r)
        except _ENCODE_ERRORS as exc:
            skipped.append(_skip_line(r, f"it cannot be encoded ({type(exc).__name__}: {exc})"))
        else:
            good.append(r)
    return good


_decode_numbers: Final = msgspec.json.Decoder(_Numbers).decode


def _out_of_range(line: bytes) -> str | None:
    """The problem line of a prepared record with a number its column cannot hold, else None."""
    r = _decode_numbers(line)
    for name in ("ts_ns", "end_ns", "cpu_ns"):
        value = getattr(r, name)
        if value is not None and value not in _INT64:
            return _skip_line(r, f"{name} {value} is out of range")
    if r.v not in _INT32:
        return _skip_line(r, f"schema version {r.v} is out of range")
    return None


def _skip_line(r: Record | _Numbers | LineFacts, reason: str) -> str:
    return f"record {r.id} ({r.kind} {r.type!r} of node {r.node_id}) skipped: {reason}"
