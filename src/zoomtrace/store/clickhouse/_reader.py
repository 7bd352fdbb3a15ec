"""Reading the ClickHouse store: the ``StoreReader`` protocol, row for row as the DuckDB store answers.

Two rules make every answer idempotent whatever a merge has done yet:

- **Records are deduplicated by id** in each query (``LIMIT 1 BY id``): a record delivered twice is two
  rows until ``ReplacingMergeTree`` merges them, and always one row here.
- **Summaries are folded** from their partial rows (``GROUP BY trace_id`` / ``node_id``): a trace written
  in several inserts has a partial row per insert until ``AggregatingMergeTree`` merges them.

Trace pages are ``_traces``', a trace's spans and record pages ``_trace``'s and node rows ``_nodes``'; this
module has the records.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec

from zoomtrace.errors import NotFound, StoreError
from zoomtrace.store.clickhouse import _rows
from zoomtrace.store.clickhouse._nodes import node_page, node_rows
from zoomtrace.store.clickhouse._schema import TEXT_MATCH, Layout, among
from zoomtrace.store.clickhouse._sql import run_sql
from zoomtrace.store.clickhouse._trace import trace_records, trace_spans
from zoomtrace.store.clickhouse._traces import trace_page
from zoomtrace.store.clickhouse._transport import EngineError, Param, Transport
from zoomtrace.store.ids import CANDIDATES, short_enough, the_one, unknown
from zoomtrace.store.protocols import RecordFilter, RecordPage, TraceFilter, TraceRows, TraceSpans, too_large

_HOUR: Final = 3_600_000_000_000
_DAY: Final = 24 * _HOUR
#: How far back ``search`` looks first, then further (None: everything).
_WINDOWS: Final = (_HOUR, 24 * _HOUR, 30 * 24 * _HOUR, None)
#: The order of ``tail``: by insert, then by time, a span before the other records of its instant (its own
#: records, which start with it), then by id.
_TAIL: Final = "(ingest_seq, ts_ns, kind != 'span', id)"
#: Record lookups by id name the ids in a set; a large set is checked without the bloom filter (which
#: tests every id against every granule).
_BLOOM_IDS: Final = 1_000


class ClickHouseReader:
    """The read half of ``ClickHouseStore``."""

    _transport: Transport
    _layout: Layout
    _display: str

    def _rows(self, sql: str, params: Mapping[str, Param] | None = None) -> list[dict[str, Any]]:
        """Rows of a query whose one column is a row's JSON object."""
        return _rows.decode_rows(self._run(sql, params, fmt="TabSeparatedRaw"))

    def _raw(self, sql: str, params: Mapping[str, Param] | None = None) -> bytes:
        """A query's rows, each one JSON object on a line."""
        return self._run(sql, params, fmt="TabSeparatedRaw")

    def _values(self, sql: str, params: Mapping[str, Param] | None = None) -> list[list[Any]]:
        """Rows of a small result as lists of values."""
        data = self._run(sql, params, fmt="JSONCompactEachRow")
        return msgspec.json.decode(b"[" + data.rstrip(b"\n").replace(b"\n", b",") + b"]") if data else []

    def _run(self, sql: str, params: Mapping[str, Param] | None, *, fmt: str) -> bytes:
        try:
            return self._transport.query(sql, params, fmt=fmt)
        except EngineError as exc:
            raise StoreError(f"cannot read the store {self._display}: {exc}") from None

    # -- traces ------------------------------------------------------------------------------------

    def traces(self, filt: TraceFilter | None = None, *, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        """Trace summaries, newest first (by start time, then trace id, for a deterministic order)."""
        return trace_page(self._values, filt or {}, limit=max(0, int(limit)), offset=max(0, int(offset)))

    def trace_rows(self, trace_id: str, *, max_records: int | None = None) -> TraceRows:
        """A trace's records and the nodes that recorded them, by full id or a unique prefix (raises NotFound):
        three queries, for a whole story."""
        tid, start, end, count = self._find_trace(trace_id)
        if max_records is not None and count > max_records:
            raise too_large(tid, count, max_records)
        # One primary-key range per day partition between the trace's first and last record.
        records = self._rows(
            f"SELECT {_rows.RECORD} FROM records WHERE trace_id = {{t:String}} "
            "AND ts_ns >= {start:Int64} AND ts_ns <= {end:Int64} LIMIT 1 BY id",
            {"t": tid, "start": start, "end": end},
        )
        return TraceRows(tid, records, node_rows(self._values, sorted({r["node_id"] for r in records})))

    def trace_spans(self, trace_id: str, *, row_type: type[Any] = dict) -> TraceSpans:
        """A trace's span records, its records counted per span and node (one GROUP BY), and its nodes."""
        return trace_spans(self._raw, self._values, self._resolve_trace(trace_id), row_type)

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
        """A page of a trace's records passing ``filt`` in time order (see ``StoreReader.trace_records``)."""
        return trace_records(
            self._raw,
            self._values,
            self._resolve_trace(trace_id),
            filt or {},
            offset=offset,
            limit=limit,
            around=around,
            row_type=row_type,
            nodes=nodes,
        )

    def _resolve_trace(self, trace_id: str) -> tuple[str, int, int]:
        """A trace's full id, first and last record time, by full id or a unique prefix (raises NotFound, or
        ConfigError for a prefix too short or ambiguous)."""
        return self._find_trace(trace_id)[:3]

    def _find_trace(self, trace_id: str) -> tuple[str, int, int, int]:
        """``_resolve_trace`` and the trace's number of records (as its summary counts them)."""
        summary = "trace_id, min(start_ns), max(end_ns), sum(record_count) FROM trace_parts"
        found = self._values(f"SELECT {summary} WHERE trace_id = {{t:String}} GROUP BY trace_id", {"t": trace_id})
        if not found and len(trace_id) >= 32:
            raise unknown("trace", trace_id)
        if not found:
            found = self._values(
                f"SELECT {summary} WHERE startsWith(trace_id, {{p:String}}) GROUP BY trace_id ORDER BY trace_id "
                "LIMIT {n:UInt64}",
                {"p": short_enough("trace", trace_id), "n": CANDIDATES + 1},
            )
        tid = the_one("trace", trace_id, [str(row[0]) for row in found])
        _, start, end, count = next(row for row in found if str(row[0]) == tid)
        return tid, int(start), int(end), int(count)

    # -- nodes -------------------------------------------------------------------------------------

    def nodes(self, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Process runs, newest first (by start; by first record for a run whose start is not stored)."""
        return node_page(self._values, limit=max(0, int(limit)), offset=max(0, int(offset)))

    def node(self, node_id: str) -> dict[str, Any]:
        """One process run by id (raises NotFound)."""
        rows = node_rows(self._values, [node_id])
        if not rows:
            raise NotFound(f"no node {node_id!r} in the store; list process runs with `zoomtrace nodes`")
        return rows[0]

    def snapshots(self, node_id: str) -> list[dict[str, Any]]:
        """The node's snapshots of dirty files: ``{file, repo, sha256 | problem}``, oldest first."""
        found = self._values(
            "SELECT attrs FROM node_records WHERE node_id = {n:String} AND type = 'snapshot' ORDER BY id LIMIT 1 BY id",
            {"n": node_id},
        )
        snapshots = [msgspec.json.decode(attrs) for (attrs,) in found]
        return [a for a in snapshots if isinstance(a, dict)]

    # -- records -----------------------------------------------------------------------------------

    def record(self, record_id: str) -> dict[str, Any]:
        """One record by id, or by the start or end of one id only (raises NotFound, or ConfigError for a
        shortened id too short or ambiguous)."""
        rows = self.records([record_id])
        if rows:
            return rows[0]
        if len(record_id) >= 36:
            raise unknown("record", record_id)
        found = self._values(
            "SELECT DISTINCT id FROM records WHERE startsWith(id, {s:String}) OR endsWith(id, {s:String}) "
            "ORDER BY id LIMIT {n:UInt64}",
            {"s": short_enough("record", record_id), "n": CANDIDATES + 1},
        )
        return self.records([the_one("record", record_id, [str(row[0]) for row in found])])[0]

    def records(self, record_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The records of these ids that are stored, in time order (then by id).

        Zoom's ids are UUIDv7, whose first 48 bits are the time they were made, within moments of the
        record's own time: the days around them are looked in first (the other partitions are skipped),
        and everything only for ids not found there.
        """
        ids = sorted(set(record_ids))
        times = [t for t in map(_uuid7_ns, ids) if t is not None]
        found = self._records_among(ids, (min(times) - _DAY, max(times) + _DAY) if times else None)
        missing = set(ids).difference(r["id"] for r in found)
        if missing and times:
            found += self._records_among(sorted(missing), None)
            found.sort(key=lambda r: (r["ts_ns"], r["id"]))
        return found

    def _records_among(self, ids: list[str], between: tuple[int, int] | None) -> list[dict[str, Any]]:
        if not ids:
            return []
        params: dict[str, Param] = {"ids": ids}
        bound = ""
        if between is not None:
            bound = " AND ts_ns >= {lo:Int64} AND ts_ns <= {hi:Int64}"
            params.update(lo=between[0], hi=between[1])
        skip = "" if len(ids) <= _BLOOM_IDS else " SETTINGS ignore_data_skipping_indices = 'id_bloom'"
        return self._rows(
            f"SELECT {_rows.RECORD} FROM records WHERE {among('id', 'ids', len(ids))}{bound} "
            f"ORDER BY ts_ns, id LIMIT 1 BY id{skip}",
            params,
        )

    def derived_from(self, record_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Records whose ``sources`` name any of these ids, in time order (then by id)."""
        ids = sorted(set(record_ids))
        if not ids:
            return []
        return self._rows(
            f"SELECT {_rows.RECORD} FROM records WHERE hasAny(sources, {{ids:Array(String)}}) "
            "ORDER BY ts_ns, id LIMIT 1 BY id",
            {"ids": ids},
        )

    def search(self, text: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """Records whose message or attrs contain ``text`` (case-insensitive), newest first.

        Scans the last hour, day and month before everything else (partitions by day are skipped).
        """
        limit = max(0, int(limit))
        now = time.time_ns()
        out: list[dict[str, Any]] = []
        upper: int | None = None
        for window in _WINDOWS:
            if len(out) >= limit:
                break
            lower = None if window is None else now - window
            where = [TEXT_MATCH]
            params: dict[str, Param] = {"text": text, "limit": limit - len(out)}
            if lower is not None:
                where.append("ts_ns >= {lower:Int64}")
                params["lower"] = lower
            if upper is not None:
                where.append("ts_ns < {upper:Int64}")
                params["upper"] = upper
            out.extend(
                self._rows(
                    f"SELECT {_rows.RECORD} FROM records WHERE {' AND '.join(where)} "
                    "ORDER BY ts_ns DESC, id DESC LIMIT 1 BY id LIMIT {limit:UInt64}",
                    params,
                )
            )
            upper = lower
        return out

    def tail(self, *, after_id: str | None = None, limit: int = 100, last: bool = False) -> list[dict[str, Any]]:
        """Records stored after ``after_id``, oldest first: by arrival (the insert's time), then in time order
        (``ts_ns``, a span before the other records of its instant, id).

        Ordering by arrival rather than by id alone means a late segment's older records are not skipped
        by ``tail -f``. ``last=True`` gives the newest ``limit`` records instead (still oldest first).

        The records are found in two steps: the arrival times of the page (one small column, and a
        min-max index that skips older inserts), then the ids among them, then the rows of those ids.
        """
        params: dict[str, Param] = {"limit": max(0, int(limit))}
        after = "1"
        if after_id is not None:
            found = self._values(
                f"SELECT {_TAIL[1:-1]} FROM records WHERE id = {{id:String}} ORDER BY ingest_seq LIMIT 1",
                {"id": after_id},
            )
            if not found:
                raise NotFound(f"no record {after_id!r} in the store to tail after")
            after = f"{_TAIL} > ({{seq:UInt64}}, {{ts:Int64}}, {{later:UInt8}}, {{id:String}})"
            params.update(seq=found[0][0], ts=found[0][1], later=int(found[0][2]), id=after_id)
        order, edge, beyond = ("DESC", "min", ">=") if last else ("ASC", "max", "<=")
        arrivals = f"SELECT ingest_seq FROM records WHERE {after} ORDER BY ingest_seq {order} LIMIT {{limit:UInt64}}"
        page = self._values(
            f"SELECT id, ingest_seq FROM records WHERE {after} AND ingest_seq {beyond} (SELECT {edge}(ingest_seq) "
            f"FROM ({arrivals})) ORDER BY {_TAIL} {order} LIMIT 1 BY id LIMIT {{limit:UInt64}}",
            params,
        )
        if not page:
            return []
        rows = {
            row["id"]: row
            for row in self._rows(
                f"SELECT {_rows.RECORD} FROM records WHERE {among('id', 'ids', len(page))} "
                "AND ingest_seq >= {lo:UInt64} AND ingest_seq <= {hi:UInt64} LIMIT 1 BY id",
                {"ids": [i for i, _ in page], "lo": min(s for _, s in page), "hi": max(s for _, s in page)},
            )
        }
        ordered = [rows[i] for i, _ in page if i in rows]
        return ordered[::-1] if last else ordered

    # -- the rest ----------------------------------------------------------------------------------

    def blob(self, digest: str) -> bytes | None:
        """Content-addressed file snapshot or raw payload."""
        found = self._values(
            "SELECT base64Encode(content) FROM blobs WHERE sha256 = {d:String} LIMIT 1", {"d": digest.lower()}
        )
        return base64.b64decode(found[0][0]) if found else None

    def problems(self, *, limit: int = 100) -> list[dict[str, Any]]:
        """Source data that could not be ingested, newest first."""
        found = self._values(
            "SELECT ts_ns, segment, problem FROM ingest_problems ORDER BY ts_ns DESC, position LIMIT {n:UInt64}",
            {"n": max(0, int(limit))},
        )
        return [{"ts_ns": t, "segment": s, "problem": p} for t, s, p in found]

    def sql(self, query: str, *, max_rows: int | None = None) -> tuple[Sequence[str], list[tuple[Any, ...]]]:
        """Run one read-only ClickHouse SQL statement; at most ``max_rows`` rows are returned when given.

        ClickHouse's own parser classifies it, and it runs with ``readonly = 1`` and row and time limits
        (``_sql``); a write raises ``ReadOnlySQL``.
        """
        return run_sql(self._transport, query, max_rows)


def _uuid7_ns(record_id: str) -> int | None:
    """The time (ns, to the millisecond) a UUIDv7 was made, None for another kind of id."""
    if len(record_id) != 36 or record_id[14] != "7":
        return None
    try:
        return int(record_id[:8] + record_id[9:13], 16) * 1_000_000
    except ValueError:
        return None
