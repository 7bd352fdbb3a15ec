-- The zoomtrace store schema (version 1), executed by zoomtrace.store.duckdb on every open.
-- A ClickHouse backend uses the same table and column names; docs/store.md explains each choice.
-- JSON columns hold NULL (not '{}' or '[]') when the record field is empty.

CREATE TABLE IF NOT EXISTS meta (
    key VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);

-- One row per record, whatever its kind. Rows of one ingest transaction share ingest_seq,
-- and within it are in time order, so zone maps on ts_ns and id prune well.
-- id is the primary key, kept unique by ingestion (an anti-join) rather than by an ART index:
-- the index made ingestion four times slower and had to be loaded by every session.
CREATE TABLE IF NOT EXISTS records (
    id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    type VARCHAR NOT NULL,
    ts_ns BIGINT NOT NULL,
    end_ns BIGINT,
    trace_id VARCHAR,
    span_id VARCHAR,
    parent_span_id VARCHAR,
    links JSON,
    on_behalf_of VARCHAR,
    node_id VARCHAR NOT NULL,
    code_file VARCHAR,
    code_line INTEGER,
    code_function VARCHAR,
    code_commit VARCHAR,
    code_dirty BOOLEAN,
    level VARCHAR,
    message VARCHAR,
    template VARCHAR,
    attrs JSON,
    payload JSON,
    payload_blob VARCHAR,
    sources VARCHAR[],
    error JSON,
    status VARCHAR,
    cpu_ns BIGINT,
    thread VARCHAR,
    schema_version INTEGER,
    ingest_seq BIGINT NOT NULL
);

-- Process runs, derived from node records (and record counts) whatever their order of arrival.
CREATE TABLE IF NOT EXISTS nodes (
    node_id VARCHAR PRIMARY KEY,
    service VARCHAR,
    env VARCHAR,
    grp VARCHAR,
    version VARCHAR,
    host VARCHAR,
    pid BIGINT,
    parent_node_id VARCHAR,
    python VARCHAR,
    platform VARCHAR,
    commit VARCHAR,
    branch VARCHAR,
    repos JSON,
    started_ns BIGINT,
    stopped_ns BIGINT,
    stop_cause VARCHAR,
    stop_error JSON,
    lost JSON,
    argv VARCHAR,
    attrs JSON,
    first_seen_ns BIGINT,
    record_count BIGINT NOT NULL DEFAULT 0,
    span_count BIGINT NOT NULL DEFAULT 0,
    log_count BIGINT NOT NULL DEFAULT 0,
    event_count BIGINT NOT NULL DEFAULT 0,
    raw_count BIGINT NOT NULL DEFAULT 0,
    error_count BIGINT NOT NULL DEFAULT 0
);

-- Content-addressed bytes: file snapshots and raw payloads (records point here with payload_blob).
CREATE TABLE IF NOT EXISTS blobs (
    sha256 VARCHAR PRIMARY KEY,
    content BLOB NOT NULL,
    size BIGINT NOT NULL
);

-- One summary row per trace, merged incrementally at each ingest for the traces it touches
-- (trace_id is its key, unique by construction; like records it has no ART index).
-- trace_key (the first 15 hex digits of trace_id as a number) makes finding one trace an integer scan.
CREATE TABLE IF NOT EXISTS traces (
    trace_id VARCHAR NOT NULL,
    trace_key BIGINT,
    start_ns BIGINT NOT NULL,
    end_ns BIGINT NOT NULL,
    duration_ns BIGINT NOT NULL,
    root_name VARCHAR,
    root_service VARCHAR,
    root_span_id VARCHAR,
    root_node_id VARCHAR,
    root_start_ns BIGINT,
    root_is_top BOOLEAN,
    services VARCHAR[],
    envs VARCHAR[],
    node_ids VARCHAR[],
    span_count BIGINT NOT NULL,
    log_count BIGINT NOT NULL,
    event_count BIGINT NOT NULL,
    error BOOLEAN NOT NULL,
    record_count BIGINT NOT NULL
);

-- How far each spool segment has been ingested; written in the same transaction as its records.
CREATE TABLE IF NOT EXISTS ingest_offsets (
    segment VARCHAR PRIMARY KEY,
    "offset" BIGINT NOT NULL,
    updated_ns BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS ingest_problems (
    ts_ns BIGINT NOT NULL,
    segment VARCHAR,
    problem VARCHAR NOT NULL
);
