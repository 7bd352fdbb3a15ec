"""Bringing a store's schema to this code's version when it is opened.

``meta`` holds the store's ``schema_version`` and ``retention_days``. A store without them is created
(only when asked to); an older one is migrated by the statements of ``_schema.schema_ddl`` from its
version on; a newer one is refused. The version is written last, after every statement has run, so an
interrupted creation or migration is finished by the next open (every statement is idempotent).
"""

from __future__ import annotations

import time
from typing import Final

import msgspec

from zoomtrace.errors import ConfigError, StoreError
from zoomtrace.store.clickhouse._schema import (
    DEFAULT_RETENTION_DAYS,
    SCHEMA_VERSION,
    Layout,
    retention_ddl,
    schema_ddl,
)
from zoomtrace.store.clickhouse._transport import EngineError, Transport

#: ClickHouse error codes of a missing table and a missing database.
_UNKNOWN_TABLE, _UNKNOWN_DATABASE = 60, 81
_META_SETTINGS: Final[dict[str, int | str]] = {"distributed_foreground_insert": 1}
_encoder: Final = msgspec.json.Encoder()


def ensure_schema(
    transport: Transport, layout: Layout, *, create: bool, retention_days: int | None, display: str
) -> Layout:
    """Create or migrate the store's schema; returns its layout with the retention in force."""
    try:
        meta = _read_meta(transport, layout)
    except EngineError as exc:
        raise StoreError(f"cannot read the store {display}: {exc}") from None
    if meta is None and not create:
        raise StoreError(
            f"no zoomtrace store at {display}: ingest records into it first (e.g. zoomtrace ingest --store "
            f"{display}), or check the URL"
        )
    meta = meta or {}
    version = int(meta.get("schema_version", "0"))
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the store {display} has schema version {version}, this zoomtrace knows {SCHEMA_VERSION}: "
            "upgrade zoomtrace to read it"
        )
    stored_retention = int(meta["retention_days"]) if "retention_days" in meta else None
    retention = next(d for d in (retention_days, stored_retention, DEFAULT_RETENTION_DAYS) if d is not None)
    if retention < 0:
        raise ConfigError(f"retention must be 0 (keep forever) or a number of days, not {retention}")
    layout = layout._replace(retention_days=retention)
    try:
        if version < SCHEMA_VERSION:
            # New tables get the retention in force; existing ones keep theirs until changed below.
            existing = layout if stored_retention is None else layout._replace(retention_days=stored_retention)
            for statement in schema_ddl(existing, from_version=version):
                transport.query(statement)
        if stored_retention is not None and retention != stored_retention:
            for statement in retention_ddl(layout):
                transport.query(statement)
        if version < SCHEMA_VERSION or retention != stored_retention:
            _write_meta(transport, layout, {"retention_days": str(retention), "schema_version": str(SCHEMA_VERSION)})
    except EngineError as exc:
        raise StoreError(f"cannot create or migrate the schema of {display}: {exc}") from None
    return layout


def _read_meta(transport: Transport, layout: Layout) -> dict[str, str] | None:
    """The store's ``meta`` (key -> latest value), or None when it has no ``meta`` table."""
    try:
        data = transport.query(
            f"SELECT key, argMax(value, updated_ns) FROM {layout.name('meta')} GROUP BY key", fmt="JSONCompactEachRow"
        )
    except EngineError as exc:
        if exc.code in (_UNKNOWN_TABLE, _UNKNOWN_DATABASE):
            return None
        raise
    rows = msgspec.json.decode(b"[" + data.rstrip(b"\n").replace(b"\n", b",") + b"]") if data else []
    return {key: value for key, value in rows}


def _write_meta(transport: Transport, layout: Layout, values: dict[str, str]) -> None:
    now = time.time_ns()
    lines = _encoder.encode_lines([{"key": k, "value": v, "updated_ns": now} for k, v in values.items()])
    transport.insert(layout.name("meta"), lines, settings=_META_SETTINGS)
