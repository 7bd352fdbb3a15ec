"""The read model: what a reader sees, declared once.

The store answers in rows named as these fields (``zoomtrace.store.protocols.StoreReader``);
``zoomtrace.read`` turns them into these Structs, and their JSON is the contract of
``zoomtrace story --json``, the other ``--json`` outputs and the UI's API: fields are encoded
in the order declared here, ``None`` as ``null``. A test checks that the store's rows carry
exactly these fields, so a new record field is declared here, in the write model
(``zoomtrace.wire.record``) and in the store's schema, and nowhere else.

Every Struct is ``gc=False``: a story of 100,000 records is a tree, never a cycle, and
tracking it would make the collector walk it again and again while it is built.
"""

from __future__ import annotations

from typing import Any

import msgspec


class Code(msgspec.Struct, gc=False):
    """Where a record was computed: file (relative to its repository), line, function, commit, dirty."""

    file: str | None
    line: int | None
    function: str | None
    commit: str | None
    dirty: bool


class Link(msgspec.Struct, gc=False):
    """A follows-from link to another span."""

    trace_id: str | None
    span_id: str | None


class Frame(msgspec.Struct, gc=False):
    file: str | None
    line: int | None
    function: str | None


class ErrorInfo(msgspec.Struct, gc=False):
    """An exception: its type, message and stack frames (innermost last)."""

    type: str | None
    message: str | None
    frames: list[Frame] = []


class RecordView(msgspec.Struct, kw_only=True, gc=False):
    """One record as stored and shown (``record``, ``tail``, ``search``; a lineage's records)."""

    id: str
    kind: str
    type: str
    ts_ns: int
    end_ns: int | None = None
    trace_id: str | None = None
    span_id: str | None = None
    parent_span_id: str | None = None
    links: list[Link] = []
    on_behalf_of: str | None = None
    node_id: str
    code: Code | None = None
    level: str | None = None
    message: str | None = None
    template: str | None = None
    attrs: dict[str, Any] = {}
    payload: Any = None
    #: sha256 of a bytes payload, kept as a blob (``StoreReader.blob``).
    payload_blob: str | None = None
    sources: list[str] = []
    error: ErrorInfo | None = None
    status: str | None = None
    cpu_ns: int | None = None
    thread: str | None = None
    #: The record schema version it was written with.
    v: int | None = None


class NodeView(msgspec.Struct, kw_only=True, gc=False):
    """One process run (``zoomtrace nodes``, the nodes page): identity, code, lifecycle and record counts."""

    node_id: str
    service: str | None = None
    env: str | None = None
    group: str | None = None
    version: str | None = None
    host: str | None = None
    pid: int | None = None
    parent_node_id: str | None = None
    python: str | None = None
    platform: str | None = None
    commit: str | None = None
    branch: str | None = None
    repos: list[dict[str, Any]] = []
    started_ns: int | None = None
    stopped_ns: int | None = None
    stop_cause: str | None = None
    stop_error: ErrorInfo | None = None
    #: Records lost by the node, by reason (the highest total it reported).
    lost: dict[str, Any] | None = None
    argv: str | None = None
    #: The node's ``started`` record attributes.
    attrs: dict[str, Any] | None = None
    #: Time of the earliest record seen from the node (its start when that is not stored).
    first_seen_ns: int | None = None
    record_count: int = 0
    span_count: int = 0
    log_count: int = 0
    event_count: int = 0
    raw_count: int = 0
    error_count: int = 0


class TraceSummary(msgspec.Struct, kw_only=True, gc=False):
    """One row of the traces list."""

    trace_id: str
    start_ns: int
    end_ns: int
    duration_ns: int
    root_name: str | None = None
    root_service: str | None = None
    services: list[str] = []
    envs: list[str] = []
    span_count: int = 0
    log_count: int = 0
    event_count: int = 0
    error: bool = False
    record_count: int = 0


class TraceRecord(RecordView, kw_only=True, gc=False):
    """A record of a trace's records page (``GET /api/trace/{id}/records``, ``story --ndjson``): the record as
    stored, with the service of its node."""

    #: The service of the record's node, when the node's start is stored.
    service: str | None = None


class RecordsPage(msgspec.Struct, gc=False):
    """A page of a trace's records in time order."""

    #: How many records pass the page's filters.
    total: int
    #: The position of the page's first record among them.
    offset: int
    records: list[TraceRecord]


class LineageRecord(RecordView, kw_only=True, gc=False):
    """A record upstream or downstream of another, ``depth`` steps away (1 = direct)."""

    depth: int


class Lineage(msgspec.Struct, gc=False):
    """Where a record came from (``upstream``) and what was derived from it (``downstream``), via ``sources``."""

    record: RecordView
    upstream: list[LineageRecord]
    downstream: list[LineageRecord]


# -- the story ---------------------------------------------------------------------------------


class StoryRecord(msgspec.Struct, kw_only=True, gc=False):
    """A log, data event or raw record in a story, under its span (or loose)."""

    id: str
    kind: str
    type: str
    level: str | None = None
    message: str | None = None
    template: str | None = None
    attrs: dict[str, Any] = {}
    payload: Any = None
    payload_blob: str | None = None
    ts_ns: int
    sources: list[str] = []
    code: Code | None = None
    error: ErrorInfo | None = None
    span_id: str | None = None
    node_id: str | None = None
    #: The service of the record's node, when the node's start is stored.
    service: str | None = None


class SpanView(msgspec.Struct, kw_only=True, gc=False):
    """A span: its record's fields under a span's names (a line of ``story --ndjson``)."""

    id: str
    span_id: str
    parent_span_id: str | None = None
    #: The span's name (its record's ``type``).
    name: str
    service: str | None = None
    node_id: str | None = None
    start_ns: int
    end_ns: int | None = None
    duration_ns: int | None = None
    status: str | None = None
    error: ErrorInfo | None = None
    cpu_ns: int | None = None
    thread: str | None = None
    attrs: dict[str, Any] = {}
    links: list[Link] = []
    on_behalf_of: str | None = None
    code: Code | None = None
    #: True for a root whose parent is not in the trace (a remote parent that was not recorded).
    remote_parent: bool = False


class StorySpan(SpanView, kw_only=True, gc=False):
    """A span in a story, with its own records and its child spans, both in time order."""

    records: list[StoryRecord] = []
    children: list[StorySpan] = []


class StoryNode(msgspec.Struct, kw_only=True, gc=False):
    """A process run that recorded part of the story (fields ``None`` when its start is not stored)."""

    node_id: str
    service: str | None = None
    env: str | None = None
    group: str | None = None
    version: str | None = None
    host: str | None = None
    pid: int | None = None
    commit: str | None = None
    started_ns: int | None = None
    stopped_ns: int | None = None
    stop_cause: str | None = None


class Story(msgspec.Struct, gc=False):
    """A trace's story: its process runs, its spans as a tree, and the records of no recorded span."""

    trace_id: str
    start_ns: int | None
    end_ns: int | None
    duration_ns: int | None
    nodes: list[StoryNode]
    spans: list[StorySpan]
    #: Records that belong to no recorded span of the trace.
    records: list[StoryRecord]


# -- the outline of a big trace ------------------------------------------------------------------


class OutlineSpans(msgspec.Struct, gc=False):
    """A trace's spans as columns, one entry per span in depth-first tree order (a row of the waterfall);
    ``name``, ``service``, ``node_id`` and ``status`` are indexes into ``Outline.strings`` (-1: none)."""

    #: A span's own record (its id, attributes, code) is read when it is selected: ``query.span``.
    span_id: list[str]
    #: The row of the parent span, -1 for a root.
    parent: list[int]
    depth: list[int]
    #: The parent span id of a root whose parent is not in the trace, else null.
    remote_parent: list[str | None]
    name: list[int]
    service: list[int]
    node_id: list[int]
    #: ns after the trace's start.
    start: list[int]
    #: ns, null when the span has no end.
    duration: list[int | None]
    status: list[int]
    #: 1 when the span failed or has an exception.
    error: list[int]
    #: Records directly under the span, by kind.
    logs: list[int]
    events: list[int]
    #: Records directly under the span that count as errors (an exception, level ERROR and above).
    errors: list[int]
    #: Direct child spans.
    children: list[int]


class OutlineCounts(msgspec.Struct, gc=False):
    """A trace's records by kind (``records`` is all of them, spans included)."""

    records: int
    spans: int
    logs: int
    events: int
    raw: int
    #: Records that count as errors: failed spans, exceptions, level ERROR and above.
    errors: int


class Outline(msgspec.Struct, gc=False):
    """A big trace at a glance: its span tree as columns with per-span counts, no log or event
    (``GET /api/trace/{id}/outline``; the records come in pages, ``RecordsPage``)."""

    trace_id: str
    start_ns: int
    end_ns: int
    #: The interned strings the columns point into.
    strings: list[str]
    spans: OutlineSpans
    #: Follows-from links of spans: ``[row, linked trace id, linked span id]``.
    links: list[tuple[int, str | None, str | None]]
    #: Records of the trace under no recorded span.
    unparented: int
    counts: OutlineCounts
    nodes: list[StoryNode]


# -- the story as a stream (``zoomtrace story --ndjson``) -----------------------------------------


class StoryHeader(msgspec.Struct, gc=False):
    """The trace at a glance, as its outline has it."""

    trace_id: str
    start_ns: int
    end_ns: int
    duration_ns: int
    counts: OutlineCounts
    unparented: int
    nodes: list[StoryNode]


class HeaderLine(msgspec.Struct, gc=False):
    """The first line: ``{"trace": {...}}``."""

    trace: StoryHeader


class SpanLine(msgspec.Struct, gc=False):
    """A span, in tree order: ``{"span": {...}, "depth": 0}`` (0 for a root of what is shown)."""

    span: SpanView
    depth: int


class RecordLine(msgspec.Struct, gc=False):
    """A record under a shown span (or under none), in time order: ``{"record": {...}}``."""

    record: TraceRecord
