"""The ClickHouse store: the ``Store`` protocol on ClickHouse, in process (chDB) or on a server or cluster.

``ClickHouseStore.open(url)`` takes ``chdb://DIR`` (the engine in this process, data in DIR; one process
at a time per DIR, which the caller's lock ensures) or ``clickhouse[s]://[user[:password]@]host[:port]/
database[?cluster=NAME]`` (HTTP or HTTPS, with clickhouse-connect). The SQL is the same on both.

``_target`` parses the URL, ``_transport`` talks to the engine, ``_schema`` is the DDL and ``_migrate``
brings a store to it, ``_writer`` ingests; ``_reader`` answers with ``_rows`` (record rows), ``_traces``
(trace pages), ``_nodes`` (process runs) and ``_sql`` (user SQL). docs/store.md ("ClickHouse") explains
the schema and how ingestion stays idempotent.
"""

from __future__ import annotations

from pathlib import Path

from zoomtrace.errors import StoreError
from zoomtrace.store.clickhouse._migrate import ensure_schema
from zoomtrace.store.clickhouse._reader import ClickHouseReader
from zoomtrace.store.clickhouse._schema import DEFAULT_RETENTION_DAYS, SCHEMA_VERSION, Layout, schema_ddl
from zoomtrace.store.clickhouse._target import Target, parse_url
from zoomtrace.store.clickhouse._transport import (
    ChdbTransport,
    ConnectTransport,
    EngineError,
    Transport,
)
from zoomtrace.store.clickhouse._writer import ClickHouseWriter, Prepared, prepare

__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "SCHEMA_VERSION",
    "ClickHouseStore",
    "Layout",
    "Prepared",
    "Target",
    "parse_url",
    "prepare",
    "schema_ddl",
]


class ClickHouseStore(ClickHouseReader, ClickHouseWriter):
    """The Store protocol on ClickHouse. One thread at a time uses a store object."""

    def __init__(self, transport: Transport, layout: Layout, display: str) -> None:
        self._transport = transport
        self._layout = layout
        self._display = display

    @classmethod
    def open(cls, url: str, *, create: bool = False, retention_days: int | None = None) -> ClickHouseStore:
        """Connect to the store at ``url``, creating its database, tables and views when ``create`` is given
        and migrating an older schema; raises ``StoreError`` (without the password) when that fails.

        ``retention_days`` changes how long records are kept (0: forever); None keeps the store's setting
        (``DEFAULT_RETENTION_DAYS`` for a new store).
        """
        target = parse_url(url)
        transport = _connect(target, create=create)
        try:
            layout = ensure_schema(
                transport,
                Layout(target.database, target.cluster),
                create=create,
                retention_days=retention_days,
                display=target.display,
            )
            transport.use(target.database)
        except EngineError as exc:
            transport.close()
            raise StoreError(f"cannot open the ClickHouse store {target.display}: {exc}") from None
        except BaseException:
            transport.close()
            raise
        return cls(transport, layout, target.display)

    @property
    def retention_days(self) -> int:
        """How many days records are kept (0: forever)."""
        return self._layout.retention_days

    def close(self) -> None:
        self._transport.close()

    def __repr__(self) -> str:
        return f"ClickHouseStore({self._display!r})"


def _connect(target: Target, *, create: bool) -> Transport:
    """A transport to ``target``; a ``chdb://`` directory that does not exist is not created unless asked."""
    try:
        if target.scheme != "chdb":
            return ConnectTransport.connect(target)
        assert target.path is not None
        if not create and not Path(target.path).is_dir():
            raise StoreError(
                f"no zoomtrace store at {target.display}: ingest records into it first, or check the directory"
            )
        return ChdbTransport(target.path, target.database)
    except EngineError as exc:
        hint = (
            "another chdb:// directory is open in this process, or the directory is not usable"
            if target.scheme == "chdb"
            else "check the host, port, user and password, and that the server is running"
        )
        raise StoreError(f"cannot open the ClickHouse store {target.display}: {exc} ({hint})") from None
