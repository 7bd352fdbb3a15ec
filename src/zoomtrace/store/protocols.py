"""What every store backend does, written once: ``StoreWriter`` and ``StoreReader``.

Writers (spool ingest, the Kafka collector, the OTLP receiver) go through
``StoreWriter`` by way of ``zoomtrace.collect._batching``; readers (``zoomtrace.read``,
and through it the CLI, the UI and the demo) through ``StoreReader``. The DuckDB store
implements both; a distributed backend (ClickHouse) implements the same two, with the
same table and column names (docs/store.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, NamedTuple, Protocol, TypeAlias, TypedDict

import msgspec

from zoomtrace.errors import TooLarge
from zoomtrace.wire.record import Record


class TraceFilter(TypedDict, total=False):
    service: str
    env: str
    errors_only: bool
    min_duration_ns: int
    max_duration_ns: int
    since_ns: int
    until_ns: int
    text: str


#: A problem met reading a source: ``(source name, or None when it concerns no source, what happened)``.
Problem: TypeAlias = tuple[str | None, str]

#: What ``StoreWriter.prepare`` returns, meant only for ``write`` of the same backend; opaque to callers but for
#: its ``skipped`` (``list[str]``): a line per record left out, or to be stored without a value its column cannot
#: hold, which ``write`` keeps among the store's problems (``WriteReport.skipped``).
PreparedBatch: TypeAlias = Any


class Prepare(Protocol):
    """A store's ``StoreWriter.prepare``, also offered without a store (``zoomtrace.store.prepare_for``)."""

    def __call__(self, records: list[Record], lines: Sequence[bytes] = ()) -> PreparedBatch: ...


class WriteReport(msgspec.Struct, frozen=True):
    """What one ``StoreWriter.write`` did."""

    #: Records of the batch whose id the store did not hold before this write.
    new: int
    #: One line per record left out because the store cannot hold it (also kept among the store's problems).
    skipped: list[str] = []


class StoreWriter(Protocol):
    """How records get into a store: prepared batches, written idempotently, one transaction each.

    The contract of every backend (spool ingest, the Kafka collector and the OTLP receiver rely on
    it, through ``zoomtrace.collect._batching``):

    - **Idempotent by record id.** A record whose ``id`` is stored already is not stored again,
      whatever its content; within one batch the first copy of an id counts. Writers re-send freely
      because of it: a collector that crashed after writing a batch but before committing its Kafka
      offsets reads the batch again, and the Kafka sink's local spool and Kafka may both deliver a record.
    - **One transaction per write.** ``write`` stores the records, the source ``offsets`` and the
      ``problems`` of a batch together: after a crash either all of them are stored or none. Spool
      ingest resumes from the offsets, so offsets stored without their records would lose those
      records (records stored without their offsets are merely read again, and kept once).
    - **"New" means not stored before.** ``WriteReport.new`` is exactly the number of the batch's
      distinct ids the store did not hold before this write (``zoomtrace ingest``, the collector's
      stats and the tests report it).
    - **A record the store cannot hold is skipped, not fatal.** A value outside its column's range or
      one that cannot be encoded leaves that record out: one line for it in ``WriteReport.skipped``,
      kept among the store's problems in the same transaction, and the rest of the batch is stored.
      A ``code.line`` beyond its 32-bit column is the exception: the record is stored without its line,
      and ``WriteReport.skipped`` has a line saying so (``store._columns``).
      Any other failure raises and stores nothing of the batch.
    - **One thread at a time** uses a store object (``prepare`` excepted, see there).
    """

    def prepare(self, records: list[Record], lines: Sequence[bytes] = ()) -> PreparedBatch:
        """The backend's pure-Python work on a batch (dropping repeated ids, encoding), before ``write``.

        ``lines`` are more records of the batch, as blocks of JSON lines (msgspec's JSON of ``Record``, one
        record a line, each ended by a newline: the spool's ``JSON_LINES`` frames), which a backend hands on
        without decoding them whole (``store._lines``): a line whose id, kind, numbers, lists, error or
        attributes are not a record's is left out and reported, a value the engine refuses is found as for
        ``records``, and a text field is not decoded (a number there is stored as its text).

        It touches no connection and no session state: it may run on any thread, while a session of
        the same backend writes, and ``zoomtrace.store.prepare_for`` offers it without opening the
        store (the Kafka collector prepares the next batch before it takes the store lock). It does not
        raise for a bad record: one it cannot encode is left out, and reported by the ``write``.
        """

    def write(
        self, batch: PreparedBatch, *, offsets: Mapping[str, int] | None = None, problems: Sequence[Problem] = ()
    ) -> WriteReport:
        """Store a prepared batch, the source ``offsets`` it was read up to and the ``problems`` met reading
        it, in one transaction.

        ``offsets`` maps a source name (a spool segment's file name) to the byte offset up to which it
        is now stored, replacing the source's earlier offset. ``problems`` are kept for
        ``StoreReader.problems``. The batch may hold no records (offsets or problems only).
        """

    def offsets(self) -> dict[str, int]:
        """Source name -> offset up to which it is stored (the last one ``write`` was given for it)."""

    def close(self) -> None: ...


class TraceRows(NamedTuple):
    """A trace's raw material, which ``zoomtrace.read._story`` assembles into its story."""

    #: The trace's full id (the reader may have asked with a unique prefix).
    trace_id: str
    #: Every record of the trace, in no particular order (read model: ``RecordView``).
    records: list[dict[str, Any]]
    #: The stored process runs among the records' nodes (read model: ``NodeView``).
    nodes: list[dict[str, Any]]


#: Log levels, lowest first, as ``RecordFilter.min_level`` ranks them (the OTLP spellings ``WARN`` and
#: ``FATAL`` included); a level not listed ranks as ``INFO``.
LEVELS: Final = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50, "FATAL": 50}
#: The kinds of record a trace's pages hold (``node`` records belong to no trace).
TRACE_KINDS: Final = ("log", "event", "span", "raw")


def no_record_in_trace(record_id: str) -> str:
    """The message of ``trace_records``' ``NotFound`` for an ``around`` record the trace does not have."""
    return f"no record {record_id!r} in this trace; its records are listed by `zoomtrace story ID --ndjson`"


def too_large(trace_id: str, records: int, max_records: int) -> TooLarge:
    """``trace_rows``' refusal of a trace of more than ``max_records`` records."""
    return TooLarge(f"trace {trace_id} has {records:,} records, more than {max_records:,} in one piece")


class RecordFilter(TypedDict, total=False):
    """Which of a trace's records a page holds: every criterion given must hold."""

    #: Records directly under one of these spans, ``None`` standing for "under no recorded span of the trace"
    #: (span records themselves excluded).
    span_ids: Sequence[str | None]
    #: The span records of these span ids themselves (a span recorded twice: each copy), for one span's own
    #: record without its record id.
    own_spans: Sequence[str]
    #: ``from_ns <= ts_ns < to_ns`` (epoch ns).
    from_ns: int
    to_ns: int
    #: Of these kinds (``TRACE_KINDS``; all of them when not given).
    kinds: Sequence[str]
    #: This level and above (``LEVELS``); records without a level pass.
    min_level: str
    #: Recorded by a process run of this service.
    service: str
    #: In the message, type or attributes, case-insensitive.
    text: str
    #: Only records that count as errors: a failed span, an exception, level ERROR and above.
    errors_only: bool


class SpanCounts(NamedTuple):
    """A trace's records other than spans, counted per span id, as columns: one entry per span id that has any
    (``None``: the records without a span id). Columns, not rows: a trace may have 200,000 spans."""

    span_id: list[str | None]
    records: list[int]
    logs: list[int]
    events: list[int]
    #: Records that count as errors: an exception, level ERROR and above (``TraceFilter``'s rule).
    errors: list[int]


class SpanColumns(NamedTuple):
    """A trace's span records as columns, in time order (``ts_ns``, then id), one entry per record (a span
    recorded twice is two entries): ``trace_spans(row_type=SpanColumns)``, what a big trace's outline is built
    from without an object per span (200,000 spans: a few lists, not 200,000 rows)."""

    id: list[str]
    span_id: list[str | None]
    parent_span_id: list[str | None]
    type: list[str]
    node_id: list[str]
    ts_ns: list[int]
    end_ns: list[int | None]
    status: list[str | None]
    #: 1 when the span failed: its status is ``error`` or it carries an exception.
    failed: list[int]
    #: Its follows-from links: ``(position in these columns, linked trace id, linked span id)``.
    links: list[tuple[int, str | None, str | None]]


def span_columns(span_records: Sequence[Any]) -> SpanColumns:
    """``SpanColumns`` of span records read as rows (objects with a ``RecordView``'s fields), for a store that
    reads them so, in time order."""
    rows = sorted(span_records, key=lambda r: (r.ts_ns, r.id))
    linked = [(at, link.trace_id, link.span_id) for at, r in enumerate(rows) for link in r.links]
    return SpanColumns(
        [r.id for r in rows],
        [r.span_id for r in rows],
        [r.parent_span_id for r in rows],
        [r.type for r in rows],
        [r.node_id for r in rows],
        [r.ts_ns for r in rows],
        [r.end_ns for r in rows],
        [r.status for r in rows],
        [1 if r.status == "error" or r.error is not None else 0 for r in rows],
        linked,
    )


class TraceSpans(NamedTuple):
    """A trace without its logs and events: what its outline, and its story's span tree, are built from."""

    #: The trace's full id (the reader may have asked with a unique prefix).
    trace_id: str
    #: The earliest ``ts_ns`` and the latest ``end_ns`` or ``ts_ns`` of its records.
    start_ns: int
    end_ns: int
    #: Every span record of the trace (a span recorded twice is two rows), in no particular order (``RecordView``
    #: rows, or of the ``row_type`` asked for); for ``row_type=SpanColumns``, one ``SpanColumns``.
    spans: Any
    counts: SpanCounts
    #: The nodes of its records, and the stored process runs among them (``NodeView``).
    node_ids: list[str]
    nodes: list[dict[str, Any]]


class RecordPage(NamedTuple):
    """A page of a trace's records in time order (``ts_ns``, then id)."""

    #: How many records pass the filter (the height of a list showing them all).
    total: int
    #: The position of the page's first record among them.
    offset: int
    #: The page's records (``RecordView`` rows, or of the ``row_type`` asked for).
    rows: list[Any]
    #: The stored process runs among the page's nodes (``NodeView``).
    nodes: list[dict[str, Any]]


#: A frame's file that is not the application's (``code.file`` of the Python library, an installed distribution,
#: ``<string>``), as a regular expression both stores understand: errors are grouped by their innermost other frame.
NOT_APPLICATION: Final = r"^(<|python[0-9.]+:|site-packages:|[^/:]+==[^/:]*:)"


class Location(NamedTuple):
    """A code location as ``zoomtrace changes`` compares it: span name, file and function of the call site."""

    span: str
    file: str | None
    function: str | None


class StoreReader(Protocol):
    """Queries. Rows are plain dicts whose keys are the fields of the read model
    (``zoomtrace.read.model``: ``RecordView``, ``NodeView``, ``TraceSummary``), empty JSON values
    as ``[]``/``{}``; ``zoomtrace.read`` assembles stories and lineage from them."""

    def traces(self, filt: TraceFilter | None = None, *, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        """Trace summaries, newest first (by start time, then trace id, for a deterministic order)."""

    def trace_rows(self, trace_id: str, *, max_records: int | None = None) -> TraceRows:
        """A trace's records and nodes, by full id or a unique prefix of at least 8 characters
        (``zoomtrace.store.ids``: raises ``zoomtrace.errors.NotFound`` for an unknown id, ``ConfigError`` for a
        prefix too short, ``AmbiguousId`` naming the candidates for one of several): the whole trace as dicts, in
        the fewest queries, for a whole story. ``max_records``: raise ``zoomtrace.errors.TooLarge``
        (``too_large``) instead, before reading any, when the trace's summary counts more records; a bigger trace
        is read in parts (``trace_spans``, ``trace_records``)."""

    def trace_spans(self, trace_id: str, *, row_type: type[Any] = dict) -> TraceSpans:
        """A trace's span records, its records counted per span and node, and its nodes: by full id or a unique
        prefix (raises ``NotFound``). It reads the spans' rows and a ``GROUP BY`` of the others, never their rows,
        so it costs what the span tree costs however many logs the trace holds. ``row_type``: as in
        ``trace_records``, or ``SpanColumns`` for the spans as columns (``TraceSpans.spans`` is then one
        ``SpanColumns``)."""

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
        """A page of the records of ``trace_id`` (full id or a unique prefix; raises ``NotFound``) passing
        ``filt``, in time order (``ts_ns``, then id): ``limit`` of them (None: all) from ``offset``.
        ``nodes=False`` leaves ``RecordPage.nodes`` empty, for a caller that has them already.

        ``around``: a record id, instead of ``offset``: the page that holds this record, or would hold it were
        it passing ``filt`` (raises ``NotFound`` when the trace has no such record).

        ``row_type``: what each row is decoded into, ``dict`` (every field) or a msgspec Struct whose fields
        are named as the read model's: only those fields are built and decoded, and no dict, which makes
        reading a whole trace of 100,000 records several times faster.
        """

    def nodes(self, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Process runs, newest first."""

    def node(self, node_id: str) -> dict[str, Any]:
        """One process run by id (raises NotFound)."""

    def record(self, record_id: str) -> dict[str, Any]:
        """One record by id, or by the start or the end of one id only, of at least 8 characters (``story`` and
        ``tail`` print an id's last 12; raises as ``trace_rows`` does)."""

    def records(self, record_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The stored records among ``record_ids``, in time order (then by id)."""

    def derived_from(self, record_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Records whose ``sources`` name any of ``record_ids``, in time order (then by id)."""

    def search(self, text: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """Records whose message or attrs contain ``text``, newest first."""

    def tail(self, *, after_id: str | None = None, limit: int = 100, last: bool = False) -> list[dict[str, Any]]:
        """Records stored after ``after_id``, oldest first: in arrival order (by write), and within one write in
        time order (``ts_ns``, then a span before the other records of its instant, then id)."""

    def snapshots(self, node_id: str) -> list[dict[str, Any]]:
        """The node's snapshots of dirty files: ``{file, repo, sha256 | problem}``."""

    def blob(self, digest: str) -> bytes | None:
        """Content-addressed file snapshot or raw payload."""

    def problems(self, *, limit: int = 100) -> list[dict[str, Any]]:
        """Source data that could not be ingested, newest first."""

    def sql(self, query: str, *, max_rows: int | None = None) -> tuple[Sequence[str], list[tuple[Any, ...]]]:
        """Run a read-only query; raises ``zoomtrace.errors.ReadOnlySQL`` for writes."""

    def error_groups(
        self, *, service: str | None = None, since_ns: int | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Error records (failed spans, exceptions, logs at ERROR and above) grouped by exception type, message
        template and innermost application frame, most recently seen first: those with an occurrence since
        ``since_ns`` (of ``service``). A failed span whose exception a record directly under it holds too is
        not counted again. Rows: ``{type, template, file, line, function, message (the latest), count (since
        since_ns), services, first_service, span (the first occurrence's span name, if a span), first_seen,
        last_seen}``, ``*_seen`` over all time: ``{ts_ns, commit, dirty, node_id, trace_id}`` (docs/changes.md).
        """

    def code_versions(self, *, service: str | None = None, since_ns: int | None = None) -> list[dict[str, Any]]:
        """Per service, each version its runs had -- ``{service, commit, dirty, first_seen_ns, last_seen_ns,
        records}`` -- in the order they first ran. A run's version is its commit and whether its entry
        point's repository was dirty; runs without a commit are left out."""

    def location_stats(
        self,
        *,
        service: str | None = None,
        since_ns: int | None = None,
        sample: int = 2000,
        location: Location | None = None,
    ) -> list[dict[str, Any]]:
        """Per service, version and code location (span name, file, function): its finished spans'
        ``{count, errors, p50_ns, p95_ns, self_p95_ns, cpu_p50_ns, cpu_p95_ns}`` and a ``sample`` of at most
        ``sample`` of their own times (a fixed pseudo-random choice by record id), for the statistical tests.
        A span's own time is its duration less its child spans' (at least 0); its error counts only when no
        child span failed (the same failure on its way out). ``location``: that location only."""

    def location_traces(
        self, *, service: str, location: Location, commit: str, dirty: bool, limit: int = 5
    ) -> list[dict[str, Any]]:
        """The slowest finished spans of a location in a service's runs of one version:
        ``{trace_id, span_id, ts_ns, duration_ns, status}``, slowest first."""

    def close(self) -> None: ...


class Store(StoreReader, StoreWriter, Protocol):
    """A backend that both writes and reads (every backend, so far)."""
