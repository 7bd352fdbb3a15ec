"""The ClickHouse store's schema, as a pure function: (version, database, cluster, retention) -> DDL statements.

Nothing here touches a connection, so the text of every statement (single node and cluster) is
testable, and ``_migrate`` runs the same statements on chDB or a server. docs/store.md ("ClickHouse")
explains each choice; in short:

- ``records``: one row per record, ``ReplacingMergeTree`` ordered by ``(trace_id, ts_ns, id)`` and
  partitioned by day: a trace's records are one primary-key range per day, and a record delivered
  twice is one row after a merge (readers deduplicate before that, see ``_reader``).
- ``records_input`` and ``blobs_input`` are ``Null`` tables in the wire's shape: a JSONEachRow insert
  into them is reshaped into ``records`` and ``blobs`` by materialized views, the same SQL on both
  transports.
- ``trace_parts``, ``node_counts`` and ``node_records`` are fed by materialized views on ``records``:
  partial summaries (one row per trace or node and insert, merged by ``AggregatingMergeTree``) that
  readers fold with ``GROUP BY``; services and environments are looked up in the nodes when read, so a
  node whose start arrives late is seen by every trace at once. ``trace_parts`` is keyed by trace id,
  and its projection ``by_start`` orders the same rows by start for the newest traces.
- ``traces`` and ``nodes`` are views that fold them (for SQL users; the reader folds only what it shows),
  ``otel_traces`` and ``otel_logs`` views shaped like the OpenTelemetry Collector exporter's tables.

With a cluster every table is a ``Replicated*MergeTree`` named ``<table>_local``, created ``ON CLUSTER``,
behind a ``Distributed`` table with the plain name, which readers and writers use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, NamedTuple

from zoomtrace.wire.record import SCHEMA_VERSION as RECORD_VERSION

#: The version of the schema this code reads and writes (``meta`` holds the store's).
SCHEMA_VERSION: Final = 2
#: Days a record is kept when the store is created without ``retention_days`` (0: forever).
DEFAULT_RETENTION_DAYS: Final = 30


class Layout(NamedTuple):
    """Where the schema lives: a database, on one server or ``ON CLUSTER``, with a retention."""

    database: str
    cluster: str | None = None
    retention_days: int = DEFAULT_RETENTION_DAYS

    def name(self, table: str) -> str:
        """The qualified name readers and writers use (the Distributed table on a cluster)."""
        return f"`{self.database}`.`{table}`"

    def storage(self, table: str) -> str:
        """The qualified name of the table that stores the rows (``<table>_local`` on a cluster)."""
        return f"`{self.database}`.`{table}_local`" if self.cluster else self.name(table)

    @property
    def on_cluster(self) -> str:
        return f" ON CLUSTER `{self.cluster}`" if self.cluster else ""


def schema_ddl(layout: Layout, *, from_version: int = 0, to_version: int = SCHEMA_VERSION) -> list[str]:
    """The statements that bring a store at ``from_version`` (0: empty) to ``to_version``.

    Every statement is idempotent (``IF NOT EXISTS``), so running them again after an interrupted
    migration finishes it. A version 2 adds a ``_version_2(layout)`` to ``_STEPS`` (new columns with
    ``ALTER TABLE ... ADD COLUMN IF NOT EXISTS``, views replaced with ``CREATE OR REPLACE VIEW``).
    """
    statements = [f"CREATE DATABASE IF NOT EXISTS `{layout.database}`{layout.on_cluster}"]
    for version in range(from_version + 1, to_version + 1):
        statements.extend(_STEPS[version](layout))
    return statements


def retention_ddl(layout: Layout) -> list[str]:
    """The statements that change the retention of an existing store to ``layout.retention_days``."""
    out = []
    for table, column in _TTL_COLUMNS.items():
        ttl = _ttl(layout, column)
        action = f"MODIFY {ttl.strip()}" if ttl else "REMOVE TTL"
        out.append(f"ALTER TABLE {layout.storage(table)}{layout.on_cluster} {action}")
    return out


# -- building blocks ---------------------------------------------------------------------------


#: The day (UTC) of a nanosecond timestamp: the partition of a row and the unit of retention.
def _day(column: str) -> str:
    return f"toDate(fromUnixTimestamp64Nano({column}, 'UTC'))"


#: Per table, the column its retention counts from (``blobs``: when the content was last stored).
_TTL_COLUMNS: Final = {
    "records": _day("ts_ns"),
    "trace_parts": _day("start_ns"),
    "node_counts": _day("first_seen_ns"),
    "blobs": "toDate(stored)",
    "ingest_problems": _day("ts_ns"),
}


def _ttl(layout: Layout, day: str) -> str:
    return f"\nTTL {day} + INTERVAL {int(layout.retention_days)} DAY" if layout.retention_days > 0 else ""


def _table(
    layout: Layout,
    table: str,
    columns: str,
    engine: str,
    *,
    order_by: str,
    shard_by: str,
    partition_by: str | None = None,
    settings: str = "",
) -> list[str]:
    """A table, or on a cluster its replicated ``_local`` table and the Distributed table in front of it."""
    engine_name, _, engine_args = engine.partition("(")
    engine_args = engine_args.rstrip(")")
    if layout.cluster:
        path = f"'/clickhouse/tables/{{shard}}/{layout.database}/{table}_local', '{{replica}}'"
        engine = f"Replicated{engine_name}({path}{', ' + engine_args if engine_args else ''})"
    ttl = _ttl(layout, _TTL_COLUMNS[table]) if table in _TTL_COLUMNS else ""
    setting_list = [s for s in (settings, "" if layout.cluster else _DEDUP_WINDOW) if s]
    if ttl:
        setting_list.append("ttl_only_drop_parts = 1")
    statement = (
        f"CREATE TABLE IF NOT EXISTS {layout.storage(table)}{layout.on_cluster} (\n{columns}\n) ENGINE = {engine}"
        + (f"\nPARTITION BY {partition_by}" if partition_by else "")
        + f"\nORDER BY {order_by}{ttl}"
        + (f"\nSETTINGS {', '.join(setting_list)}" if setting_list else "")
    )
    if not layout.cluster:
        return [statement]
    front = (
        f"CREATE TABLE IF NOT EXISTS {layout.name(table)}{layout.on_cluster} AS {layout.storage(table)}\n"
        f"ENGINE = Distributed(`{layout.cluster}`, `{layout.database}`, `{table}_local`, {shard_by})"
    )
    return [statement, front]


#: Tables read by lists of random keys (the 50 traces of a page) use small granules and compressed blocks:
#: a key costs a granule and its blocks decompressed (at the defaults, 8,192 rows and 64 KiB blocks, a
#: page's summaries took 44 ms at 10 M records; 19 ms with these). The index grows in proportion.
_LOOKUP_GRANULES: Final = "index_granularity = 1024, min_compress_block_size = 16384, max_compress_block_size = 65536"

#: A server remembers the last inserts' block hashes, so an insert retried with the same deduplication
#: token (the client timed out after the server had stored it) is dropped; replicated tables always do.
_DEDUP_WINDOW: Final = "non_replicated_deduplication_window = 1000"

#: Lists of ids up to this long are given to ``IN`` as a literal array; longer ones as a subquery over it:
#: the literal is planned faster, but its planning grows steeply with the list (minutes at 30,000 ids).
_LITERAL_IDS: Final = 1_000


def among(column: str, param: str, count: int) -> str:
    """``column IN`` the ``Array(String)`` parameter ``param`` of ``count`` elements."""
    if count <= _LITERAL_IDS:
        return f"{column} IN {{{param}:Array(String)}}"
    return f"{column} IN (SELECT arrayJoin({{{param}:Array(String)}}))"


#: A record's message or attributes contain the parameter ``text`` (case-insensitive; ``%`` and ``_`` are
#: plain text), as DuckDB's ``ILIKE`` over ``message`` and ``attrs``.
TEXT_MATCH: Final = (
    "(positionCaseInsensitiveUTF8(ifNull(message, ''), {text:String}) > 0"
    " OR (attrs != '{}' AND positionCaseInsensitiveUTF8(attrs, {text:String}) > 0))"
)


def is_error(r: str = "") -> str:
    """A record (columns prefixed with ``r``) counts as an error: error status, an exception, an error level."""
    return (
        f"(ifNull({r}status = 'error', false) OR {r}error IS NOT NULL"
        f" OR ifNull({r}level IN ('ERROR', 'CRITICAL', 'FATAL'), false))"
    )


# -- version 1 -----------------------------------------------------------------------------------


def _version_1(layout: Layout) -> list[str]:
    name, storage, on = layout.name, layout.storage, layout.on_cluster
    out: list[str] = []
    out += _table(
        layout,
        "meta",
        "    key String,\n    value String,\n    updated_ns Int64",
        "ReplacingMergeTree(updated_ns)",
        order_by="key",
        shard_by="cityHash64(key)",
    )
    out += _table(
        layout,
        "records",
        _RECORD_COLUMNS,
        "ReplacingMergeTree",
        order_by="(trace_id, ts_ns, id)",
        partition_by=_day("ts_ns"),
        shard_by="cityHash64(ifNull(trace_id, id))",
        settings="allow_nullable_key = 1",
    )
    out += _table(
        layout,
        "trace_parts",
        _TRACE_PART_COLUMNS,
        "AggregatingMergeTree",
        order_by="trace_id",
        partition_by=_day("start_ns"),
        shard_by="cityHash64(trace_id)",
        settings=f"deduplicate_merge_projection_mode = 'rebuild', {_LOOKUP_GRANULES}",
    )
    out += _table(
        layout,
        "node_counts",
        _NODE_COUNT_COLUMNS,
        "AggregatingMergeTree",
        order_by="node_id",
        partition_by=_day("first_seen_ns"),
        shard_by="cityHash64(node_id)",
    )
    out += _table(
        layout,
        "node_records",
        _NODE_RECORD_COLUMNS,
        "ReplacingMergeTree",
        order_by="(node_id, id)",
        shard_by="cityHash64(node_id)",
    )
    out += _table(
        layout,
        "blobs",
        "    sha256 String,\n    content String CODEC(ZSTD(3)),\n    size UInt64,\n    stored DateTime DEFAULT now()",
        "ReplacingMergeTree(stored)",
        order_by="sha256",
        shard_by="cityHash64(sha256)",
    )
    out += _table(
        layout,
        "ingest_offsets",
        "    segment String,\n    `offset` Int64,\n    updated_ns Int64",
        "ReplacingMergeTree(updated_ns)",
        order_by="segment",
        shard_by="cityHash64(segment)",
    )
    out += _table(
        layout,
        "ingest_problems",
        "    ts_ns Int64,\n    position UInt32,\n    segment Nullable(String),\n    problem String",
        "MergeTree",
        order_by="(ts_ns, position)",
        partition_by=_day("ts_ns"),
        shard_by="rand()",
    )
    # Wire-shaped entry points: the writers insert JSONEachRow here, views reshape it into the tables.
    out.append(f"CREATE TABLE IF NOT EXISTS {name('records_input')}{on} (\n{_INPUT_COLUMNS}\n) ENGINE = Null")
    out.append(
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {name('records_input_mv')}{on} TO {name('records')}\n"
        f"AS {_RESHAPE_RECORDS.replace('{source}', name('records_input'))}"
    )
    out.append(
        f"CREATE TABLE IF NOT EXISTS {name('blobs_input')}{on} (\n    sha256 String,\n    content String\n) "
        "ENGINE = Null"
    )
    out.append(
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {name('blobs_input_mv')}{on} TO {name('blobs')}\n"
        f"AS SELECT b.sha256 AS sha256, base64Decode(b.content) AS content, length(base64Decode(b.content)) AS size "
        f"FROM {name('blobs_input')} AS b"
    )
    # Summaries, fed per insert block on the node (or shard) that stores the rows.
    for view, target, select in (
        ("trace_parts_mv", "trace_parts", _trace_parts_select(_ROOT_V1)),
        ("node_counts_mv", "node_counts", _NODE_COUNTS_SELECT),
        ("node_records_mv", "node_records", _NODE_RECORDS_SELECT),
    ):
        out.append(
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {name(view)}{on} TO {storage(target)}\n"
            f"AS {select.replace('{source}', storage('records'))}"
        )
    # Views for SQL users and other tools.
    out.append(f"CREATE VIEW IF NOT EXISTS {name('nodes')}{on} AS\n{_nodes_select(layout)}")
    out.append(f"CREATE VIEW IF NOT EXISTS {name('traces')}{on} AS\n{_traces_select(layout)}")
    out.append(f"CREATE VIEW IF NOT EXISTS {name('otel_traces')}{on} AS\n{_otel_traces(layout)}")
    out.append(f"CREATE VIEW IF NOT EXISTS {name('otel_logs')}{on} AS\n{_otel_logs(layout)}")
    return out


_RECORD_COLUMNS: Final = """\
    id String,
    kind LowCardinality(String),
    type LowCardinality(String),
    ts_ns Int64,
    end_ns Nullable(Int64),
    trace_id Nullable(String),
    span_id Nullable(String) CODEC(ZSTD(1)),
    parent_span_id Nullable(String) CODEC(ZSTD(1)),
    links Array(Tuple(trace_id String, span_id String)) CODEC(ZSTD(1)),
    on_behalf_of Nullable(String) CODEC(ZSTD(1)),
    node_id LowCardinality(String),
    code_file LowCardinality(Nullable(String)),
    code_line Nullable(Int32),
    code_function LowCardinality(Nullable(String)),
    code_commit LowCardinality(Nullable(String)),
    code_dirty Nullable(Bool),
    level LowCardinality(Nullable(String)),
    message Nullable(String) CODEC(ZSTD(3)),
    template LowCardinality(Nullable(String)),
    attrs String CODEC(ZSTD(3)),
    payload Nullable(String) CODEC(ZSTD(3)),
    payload_blob Nullable(String),
    sources Array(String) CODEC(ZSTD(1)),
    error Nullable(String) CODEC(ZSTD(3)),
    status LowCardinality(Nullable(String)),
    cpu_ns Nullable(Int64),
    thread LowCardinality(Nullable(String)),
    schema_version Nullable(Int32),
    ingest_seq UInt64,
    INDEX id_bloom id TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX id_range id TYPE minmax GRANULARITY 1,
    INDEX sources_bloom sources TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX seq_range ingest_seq TYPE minmax GRANULARITY 1"""

#: The record as it travels (``zoomtrace.wire.record.Record`` encoded as JSON by msgspec): empty fields
#: are omitted and take these defaults; ``code``, ``links`` and error frames are arrays; ``payload`` is
#: the JSON text of the payload (``prepare`` encodes it, so a string payload stays distinct from a number).
#: Integers are read wider than their columns: ClickHouse would wrap an overflowing number silently,
#: the reshaping view refuses it instead (``OUT_OF_RANGE``).
_INPUT_COLUMNS: Final = """\
    id String,
    kind String,
    type String,
    ts_ns Int128,
    node_id String,
    v Nullable(Int128),
    end_ns Nullable(Int128),
    trace_id Nullable(String),
    span_id Nullable(String),
    parent_span_id Nullable(String),
    links Array(Array(String)),
    on_behalf_of Nullable(String),
    code Array(Nullable(String)),
    level Nullable(String),
    message Nullable(String),
    template Nullable(String),
    attrs String DEFAULT '{}',
    payload Nullable(String),
    payload_blob Nullable(String),
    sources Array(String),
    error Nullable(String),
    status Nullable(String),
    cpu_ns Nullable(Int128),
    thread Nullable(String)"""


#: The message of the engine's error when a record's number does not fit its column.
OUT_OF_RANGE: Final = "zoomtrace: a number of the batch is out of range"


def _checked(column: str, type_: str) -> str:
    """``column`` as ``type_`` (Int64 or Int32), failing the insert if a value does not fit."""
    bits = {"Int64": 63, "Int32": 31}[type_]
    fits = f"{column} BETWEEN {-(2**bits)} AND {2**bits - 1}"
    return f"to{type_}({column} + throwIf(NOT ifNull({fits}, true), '{OUT_OF_RANGE}'))"


def _raw_or_null(expression: str) -> str:
    return f"if(({expression}) = '', 'null', {expression})"


#: Wire shape -> table shape: code flattened, links as tuples, error frames as objects (the error's JSON is
#: DuckDB's: ``{"type", "message", "frames": [{"file", "line", "function"}]}``), arrival time as ingest_seq.
_RESHAPE_RECORDS: Final = f"""SELECT
    id, kind, type,
    {_checked("ts_ns", "Int64")} AS ts_ns,
    {_checked("end_ns", "Int64")} AS end_ns,
    trace_id, span_id, parent_span_id,
    arrayMap(l -> (l[1], l[2]), links) AS links,
    on_behalf_of, node_id,
    code[1] AS code_file,
    toInt32OrNull(code[2]) AS code_line,
    code[3] AS code_function,
    code[4] AS code_commit,
    if(length(code) >= 5, code[5] = 'true', NULL) AS code_dirty,
    level, message, template, attrs, payload, payload_blob, sources,
    if(error IS NULL, NULL, concat(
        '{{"type":', {_raw_or_null("JSONExtractRaw(assumeNotNull(error), 'type')")},
        ',"message":', {_raw_or_null("JSONExtractRaw(assumeNotNull(error), 'message')")},
        ',"frames":[', arrayStringConcat(arrayMap(f -> concat(
            '{{"file":', {_raw_or_null("JSONExtractRaw(f, 1)")},
            ',"line":', {_raw_or_null("JSONExtractRaw(f, 2)")},
            ',"function":', {_raw_or_null("JSONExtractRaw(f, 3)")}, '}}'),
            JSONExtractArrayRaw(assumeNotNull(error), 'frames')), ','), ']}}')) AS error,
    status,
    {_checked("cpu_ns", "Int64")} AS cpu_ns,
    thread,
    {_checked(f"ifNull(v, {RECORD_VERSION})", "Int32")} AS schema_version,
    toUnixTimestamp64Nano(now64(9)) AS ingest_seq
FROM {{source}}"""

_TRACE_PART_COLUMNS: Final = """\
    trace_id String,
    start_ns SimpleAggregateFunction(min, Int64),
    end_ns SimpleAggregateFunction(max, Int64),
    root SimpleAggregateFunction(min, Tuple(rank UInt8, start_ns Int64, name String, span_id String, node_id String)),
    node_ids SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    span_count SimpleAggregateFunction(sum, UInt64),
    log_count SimpleAggregateFunction(sum, UInt64),
    event_count SimpleAggregateFunction(sum, UInt64),
    error SimpleAggregateFunction(max, Bool),
    record_count SimpleAggregateFunction(sum, UInt64),
    PROJECTION by_start (SELECT * ORDER BY start_ns)"""

#: The root of a trace is the least ``root`` tuple: a span without a parent (rank 0) before one whose
#: parent is remote (rank 1), then the earliest; rank 2 stands for "no span". Version 1 built the tuple for
#: every record (``(2, 0, '', '', '')`` for those not spans), which measured two thirds of the view's cost;
#: version 2 builds it for the spans alone, with the same result.
_SPAN_ROOT: Final = """(toUInt8(r.parent_span_id IS NOT NULL), r.ts_ns, toString(r.type), ifNull(r.span_id, ''),
            toString(r.node_id))"""
_ROOT_V1: Final = f"min(if(r.kind = 'span',\n           {_SPAN_ROOT},\n           (2, 0, '', '', '')))"
_ROOT: Final = f"if(countIf(r.kind = 'span') = 0, (2, 0, '', '', ''),\n       minIf({_SPAN_ROOT}, r.kind = 'span'))"


def _trace_parts_select(root: str) -> str:
    """The partial summary of each trace of an insert into ``{source}``, its root computed by ``root``."""
    return f"""SELECT
    assumeNotNull(r.trace_id) AS trace_id,
    min(r.ts_ns) AS start_ns,
    max(greatest(r.ts_ns, ifNull(r.end_ns, r.ts_ns))) AS end_ns,
    {root} AS root,
    groupUniqArray(toString(r.node_id)) AS node_ids,
    countIf(r.kind = 'span') AS span_count,
    countIf(r.kind = 'log') AS log_count,
    countIf(r.kind = 'event') AS event_count,
    max({is_error("r.")}) AS error,
    count() AS record_count
FROM {{source}} AS r
WHERE r.trace_id IS NOT NULL
GROUP BY r.trace_id"""


_NODE_COUNT_COLUMNS: Final = """\
    node_id String,
    first_seen_ns SimpleAggregateFunction(min, Int64),
    record_count SimpleAggregateFunction(sum, UInt64),
    span_count SimpleAggregateFunction(sum, UInt64),
    log_count SimpleAggregateFunction(sum, UInt64),
    event_count SimpleAggregateFunction(sum, UInt64),
    raw_count SimpleAggregateFunction(sum, UInt64),
    error_count SimpleAggregateFunction(sum, UInt64)"""

_NODE_COUNTS_SELECT: Final = f"""SELECT
    toString(r.node_id) AS node_id,
    min(r.ts_ns) AS first_seen_ns,
    count() AS record_count,
    countIf(r.kind = 'span') AS span_count,
    countIf(r.kind = 'log') AS log_count,
    countIf(r.kind = 'event') AS event_count,
    countIf(r.kind = 'raw') AS raw_count,
    countIf({is_error("r.")}) AS error_count
FROM {{source}} AS r
GROUP BY r.node_id"""

#: Node lifecycle records (started, stopped, repo, lost, snapshot), kept apart (and without retention:
#: a long-running service keeps its identity) so that nodes are folded from a small table.
_NODE_RECORD_COLUMNS: Final = """\
    node_id String,
    id String,
    type LowCardinality(String),
    ts_ns Int64,
    attrs String CODEC(ZSTD(3)),
    error Nullable(String)"""

_NODE_RECORDS_SELECT: Final = """SELECT toString(r.node_id) AS node_id, r.id AS id, r.type AS type, r.ts_ns AS ts_ns,
    r.attrs AS attrs, r.error AS error
FROM {source} AS r
WHERE r.kind = 'node'"""


#: What a *started* record's attributes say of its node (missing keys and a node without one: NULL).
_STARTED: Final = (
    "Tuple(service Nullable(String), env Nullable(String), group Nullable(String), version Nullable(String), "
    "host Nullable(String), pid Nullable(Int64), parent_node_id Nullable(String), python Nullable(String), "
    "platform Nullable(String), commit Nullable(String), branch Nullable(String), argv Nullable(String), "
    "started_ns Nullable(Int64))"
)


def _node_fold(layout: Layout) -> str:
    """Per node, what its lifecycle records say, folded whatever their order of arrival (as DuckDB's
    ingestion does): the *started* record's identity, its repositories and those of *repo* records (the
    first per root, in time order), the latest *stopped* record, the *lost* report with the largest total.
    A node without such records gets NULLs (and ``started = ''``)."""
    return f"""SELECT
    node_id,
    argMaxIf(attrs, (ts_ns, id), type = 'started') AS started,
    argMaxIf(ts_ns, (ts_ns, id), type = 'started') AS started_ts,
    JSONExtract(started, '{_STARTED}') AS identity,
    arrayMap(x -> x.3, arraySort(groupArrayIf((ts_ns, id, attrs), type = 'repo'))) AS repo_records,
    arrayFilter(r -> JSONType(r) = 'Object', JSONExtractArrayRaw(started, 'repos')) AS listed,
    arrayMap(r -> JSONExtractRaw(r, 'root'), listed) AS listed_roots,
    arrayMap(r -> JSONExtractRaw(r, 'root'), repo_records) AS repo_roots,
    if(started != '' OR notEmpty(repo_records),
       concat('[', arrayStringConcat(arrayConcat(listed, arrayFilter(
           (r, root, pos) -> NOT has(listed_roots, root) AND indexOf(repo_roots, root) = pos,
           repo_records, repo_roots, arrayEnumerate(repo_records))), ','), ']'),
       NULL) AS repos,
    argMaxIf((toNullable(coalesce(nullIf(JSONExtract(attrs, 'stopped_ns', 'Nullable(Int64)'), 0), ts_ns) AS stop_ns),
              JSONExtract(attrs, 'cause', 'Nullable(String)'), error),
             (stop_ns, ts_ns, id), type = 'stopped') AS stop,
    argMaxIf(toNullable(JSONExtractRaw(attrs, 'lost')),
             (arraySum(x -> x.2, JSONExtractKeysAndValues(attrs, 'lost', 'Int64')), ts_ns, id),
             type = 'lost' AND JSONType(attrs, 'lost') = 'Object') AS lost
FROM {layout.name("node_records")}
GROUP BY node_id"""


def _identity(field: str) -> str:
    return f"tupleElement(i.identity, '{field}')"


#: nodes' columns (as DuckDB's ``nodes`` table), from the node's identity fold ``i`` and counts ``c``.
_NODE_COLUMNS: Final = f"""    c.node_id AS node_id,
    {_identity("service")} AS service,
    {_identity("env")} AS env,
    {_identity("group")} AS grp,
    {_identity("version")} AS version,
    {_identity("host")} AS host,
    {_identity("pid")} AS pid,
    {_identity("parent_node_id")} AS parent_node_id,
    {_identity("python")} AS python,
    {_identity("platform")} AS platform,
    {_identity("commit")} AS commit,
    {_identity("branch")} AS branch,
    i.repos AS repos,
    if(i.started = '', NULL, coalesce(nullIf({_identity("started_ns")}, 0), i.started_ts)) AS started_ns,
    i.stop.1 AS stopped_ns,
    i.stop.2 AS stop_cause,
    i.stop.3 AS stop_error,
    i.lost AS lost,
    {_identity("argv")} AS argv,
    nullIf(i.started, '') AS attrs,
    c.first_seen_ns AS first_seen_ns,
    c.record_count AS record_count,
    c.span_count AS span_count,
    c.log_count AS log_count,
    c.event_count AS event_count,
    c.raw_count AS raw_count,
    c.error_count AS error_count"""


def _nodes_select(layout: Layout) -> str:
    """Process runs as DuckDB's ``nodes`` table has them: counts folded, identity from lifecycle records
    (the reader folds the few nodes it shows in Python, ``_nodes``; a test keeps the two equal)."""
    return f"""SELECT
{_NODE_COLUMNS}
FROM (
    SELECT node_id, min(first_seen_ns) AS first_seen_ns, sum(record_count) AS record_count,
           sum(span_count) AS span_count, sum(log_count) AS log_count, sum(event_count) AS event_count,
           sum(raw_count) AS raw_count, sum(error_count) AS error_count
    FROM {layout.name("node_counts")}
    GROUP BY node_id
) AS c
LEFT JOIN ({_node_fold(layout)}) AS i ON i.node_id = c.node_id"""


def _started(layout: Layout) -> str:
    """Per node whose *started* record is stored: ``identity``, what it says (``_STARTED``)."""
    return (
        f"(SELECT node_id, JSONExtract(argMax(attrs, (ts_ns, id)), '{_STARTED}') AS identity "
        f"FROM {layout.name('node_records')} WHERE type = 'started' GROUP BY node_id)"
    )


def _services_of(layout: Layout) -> str:
    """Scalar subqueries: node id -> service, node id -> environment, for the nodes whose start is stored."""
    maps = []
    for field, name in (("service", "service_of"), ("env", "env_of")):
        value = f"tupleElement(identity, '{field}')"
        maps.append(
            f"(SELECT mapFromArrays(groupArray(node_id), groupArray(assumeNotNull({value}))) "
            f"FROM {_started(layout)} WHERE {value} IS NOT NULL) AS {name}"
        )
    return ",\n".join(maps)


def _traces_fold(layout: Layout) -> str:
    """Trace summaries folded from their partial rows."""
    return f"""SELECT
        trace_id, min(start_ns) AS start_ns, max(end_ns) AS end_ns, end_ns - start_ns AS duration_ns,
        min(root) AS root, arraySort(groupUniqArrayArray(node_ids)) AS node_ids,
        sum(span_count) AS span_count, sum(log_count) AS log_count, sum(event_count) AS event_count,
        max(error) AS error, sum(record_count) AS record_count
    FROM {layout.name("trace_parts")}
    GROUP BY trace_id"""


#: DuckDB's ``traces`` columns from a folded row ``t`` and the maps of ``_services_of``.
_TRACE_COLUMNS: Final = """t.trace_id AS trace_id, t.start_ns AS start_ns, t.end_ns AS end_ns,
    t.duration_ns AS duration_ns,
    if(t.root.rank < 2, t.root.name, NULL) AS root_name,
    if(t.root.rank < 2 AND mapContains(service_of, t.root.node_id), service_of[t.root.node_id], NULL) AS root_service,
    arraySort(arrayDistinct(arrayMap(n -> service_of[n], arrayFilter(n -> mapContains(service_of, n), t.node_ids))))
        AS services,
    arraySort(arrayDistinct(arrayMap(n -> env_of[n], arrayFilter(n -> mapContains(env_of, n), t.node_ids))))
        AS envs,
    t.span_count AS span_count, t.log_count AS log_count, t.event_count AS event_count,
    t.error AS error, t.record_count AS record_count"""


def _traces_select(layout: Layout) -> str:
    """Every trace summary, as DuckDB's ``traces`` table (a full fold: readers fold only what they show)."""
    return f"WITH {_services_of(layout)}\nSELECT {_TRACE_COLUMNS}\nFROM ({_traces_fold(layout)}) AS t"


# -- interop: the OpenTelemetry Collector ClickHouse exporter's tables, as views ---------------------


def _map(pairs: str) -> str:
    """The exporter's ``Map(LowCardinality(String), String)`` of an array of ``(name, value)`` pairs."""
    return (
        f"CAST(mapFromArrays(arrayMap(kv -> kv.1, {pairs}), arrayMap(kv -> kv.2, {pairs})), "
        "'Map(LowCardinality(String), String)')"
    )


def _attributes(extra: str) -> str:
    """A record's attributes (strings unquoted, other values as JSON text) and the ``extra`` pairs (an array
    of ``(name, Nullable(String))``) whose value is not NULL."""
    own = (
        "arrayMap(kv -> (kv.1, if(JSONType(kv.2) = 'String', JSONExtractString(kv.2), kv.2)), "
        "JSONExtractKeysAndValuesRaw(r.attrs))"
    )
    given = f"arrayMap(kv -> (kv.1, assumeNotNull(kv.2)), arrayFilter(kv -> kv.2 IS NOT NULL, {extra}))"
    return _map(f"arrayConcat({own}, {given})")


#: Zoom's own fields of a record ``r`` under semantic-convention names (and ``zoom.*``, as in
#: ``zoomtrace.wire.otlp_mapping``).
_CODE_ATTRIBUTES: Final = """('code.file.path', toNullable(toString(r.code_file))),
    ('code.line.number', toString(r.code_line)),
    ('code.function.name', toNullable(toString(r.code_function))),
    ('zoom.code.commit', toNullable(toString(r.code_commit))),
    ('zoom.record.id', toNullable(r.id)),
    ('thread.name', toNullable(toString(r.thread)))"""


def _with_nodes(layout: Layout) -> str:
    """The records ``r`` with the identity of their node ``n`` (NULLs when its start is not stored)."""
    return f"""FROM {layout.name("records")} AS r
LEFT JOIN {_started(layout)} AS n ON n.node_id = toString(r.node_id)"""


def _node(field: str) -> str:
    return f"tupleElement(n.identity, '{field}')"


#: The resource attributes of a record's node ``n`` (empty values left out), as the exporter's map.
_RESOURCE: Final = f"""arrayFilter(kv -> kv.2 != '', [
    ('service.name', ifNull({_node("service")}, '')), ('service.version', ifNull({_node("version")}, '')),
    ('deployment.environment.name', ifNull({_node("env")}, '')), ('host.name', ifNull({_node("host")}, '')),
    ('process.pid', ifNull(toString({_node("pid")}), '')), ('vcs.ref.head.revision', ifNull({_node("commit")}, '')),
    ('vcs.ref.head.name', ifNull({_node("branch")}, '')), ('zoom.node.id', toString(r.node_id))])"""
_SERVICE_NAME: Final = f"CAST(ifNull({_node('service')}, ''), 'LowCardinality(String)') AS ServiceName"


def _otel_traces(layout: Layout) -> str:
    span_kind = "upper(JSONExtractString(r.attrs, 'span.kind'))"
    return f"""SELECT
    fromUnixTimestamp64Nano(r.ts_ns) AS Timestamp,
    ifNull(r.trace_id, '') AS TraceId,
    ifNull(r.span_id, '') AS SpanId,
    ifNull(r.parent_span_id, '') AS ParentSpanId,
    '' AS TraceState,
    CAST(r.type, 'LowCardinality(String)') AS SpanName,
    CAST(if({span_kind} IN ('SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'), concat('SPAN_KIND_', {span_kind}),
            'SPAN_KIND_INTERNAL'), 'LowCardinality(String)') AS SpanKind,
    {_SERVICE_NAME},
    {_map(_RESOURCE)} AS ResourceAttributes,
    'zoomtrace' AS ScopeName,
    '' AS ScopeVersion,
    {_attributes(f"[{_CODE_ATTRIBUTES}]")} AS SpanAttributes,
    toUInt64(greatest(ifNull(r.end_ns, r.ts_ns) - r.ts_ns, 0)) AS Duration,
    CAST(multiIf(r.status = 'error', 'STATUS_CODE_ERROR', r.status = 'ok', 'STATUS_CODE_OK', 'STATUS_CODE_UNSET'),
         'LowCardinality(String)') AS StatusCode,
    ifNull(concat(JSONExtractString(r.error, 'type'), ': ', JSONExtractString(r.error, 'message')), '')
        AS StatusMessage,
    CAST(if(r.error IS NULL, [], [fromUnixTimestamp64Nano(ifNull(r.end_ns, r.ts_ns))]),
         'Array(DateTime64(9))') AS `Events.Timestamp`,
    CAST(if(r.error IS NULL, [], ['exception']), 'Array(LowCardinality(String))') AS `Events.Name`,
    CAST(if(r.error IS NULL, [], [map('exception.type', JSONExtractString(r.error, 'type'),
                                      'exception.message', JSONExtractString(r.error, 'message'))]),
         'Array(Map(LowCardinality(String), String))') AS `Events.Attributes`,
    arrayMap(l -> l.trace_id, r.links) AS `Links.TraceId`,
    arrayMap(l -> l.span_id, r.links) AS `Links.SpanId`,
    arrayMap(l -> '', r.links) AS `Links.TraceState`,
    CAST(arrayMap(l -> map(), r.links), 'Array(Map(LowCardinality(String), String))') AS `Links.Attributes`
{_with_nodes(layout)}
WHERE r.kind = 'span'"""


#: Python logging levels -> OpenTelemetry SeverityNumber (as ``zoomtrace.wire.otlp_mapping``).
_SEVERITY: Final = (
    "multiIf(r.level = 'DEBUG', 5, r.level = 'INFO', 9, r.level IN ('WARNING', 'WARN'), 13, "
    "r.level = 'ERROR', 17, r.level IN ('CRITICAL', 'FATAL'), 21, r.kind = 'log', 0, 9)"
)


#: A log record's fields besides its code: a data event's type as ``event.name`` (semantic conventions).
_LOG_ATTRIBUTES: Final = f"""{_CODE_ATTRIBUTES},
    ('event.name', if(r.kind = 'log', NULL, toString(r.type))),
    ('zoom.kind', toNullable(toString(r.kind))),
    ('zoom.payload_blob', r.payload_blob)"""


def _otel_logs(layout: Layout) -> str:
    return f"""SELECT
    fromUnixTimestamp64Nano(r.ts_ns) AS Timestamp,
    toDateTime(intDiv(r.ts_ns, 1000000000)) AS TimestampTime,
    ifNull(r.trace_id, '') AS TraceId,
    ifNull(r.span_id, '') AS SpanId,
    toUInt8(r.trace_id IS NOT NULL) AS TraceFlags,
    CAST(ifNull(r.level, if(r.kind = 'log', '', 'INFO')), 'LowCardinality(String)') AS SeverityText,
    toUInt8({_SEVERITY}) AS SeverityNumber,
    {_SERVICE_NAME},
    multiIf(r.kind = 'log', ifNull(r.message, ''), r.payload IS NOT NULL, assumeNotNull(r.payload),
            ifNull(r.message, '')) AS Body,
    CAST('', 'LowCardinality(String)') AS ResourceSchemaUrl,
    {_map(_RESOURCE)} AS ResourceAttributes,
    CAST('', 'LowCardinality(String)') AS ScopeSchemaUrl,
    'zoomtrace' AS ScopeName,
    CAST('', 'LowCardinality(String)') AS ScopeVersion,
    CAST(map(), 'Map(LowCardinality(String), String)') AS ScopeAttributes,
    {_attributes(f"[{_LOG_ATTRIBUTES}]")} AS LogAttributes
{_with_nodes(layout)}
WHERE r.kind IN ('log', 'event', 'raw')"""


# -- version 2: cheaper inserts -------------------------------------------------------------------

#: An insert's part of ``records`` is written compact (all columns in one file) rather than wide (two or
#: three files per column, ≈150 for a part): creating those files measured ≈0.5 µs per record of a batch of
#: 150,000 (45 MB uncompressed). Parts beyond 128 MiB (≈400,000 such records; merged parts, and inserts of
#: a million synthesised rows) are wide, as scanning large parts wants: with compact parts of ≈256 MB, a
#: scan of 10 M records (``zoomtrace errors``) measured 1.7 times slower.
_COMPACT_INSERTS: Final = "min_bytes_for_wide_part = 134217728"


def _version_2(layout: Layout) -> list[str]:
    """Version 1 with cheaper inserts: ``records`` parts compact until merged large, and the trace summaries'
    root built from the spans alone (``_ROOT``). Both statements change no stored row."""
    on = layout.on_cluster
    select = _trace_parts_select(_ROOT).replace("{source}", layout.storage("records"))
    return [
        f"ALTER TABLE {layout.storage('records')}{on} MODIFY SETTING {_COMPACT_INSERTS}",
        f"ALTER TABLE {layout.name('trace_parts_mv')}{on} MODIFY QUERY\n{select}",
    ]


_STEPS: Final[dict[int, Callable[[Layout], list[str]]]] = {1: _version_1, 2: _version_2}
