"""What every store backend does, written once: ``StoreWriter`` and ``StoreReader``.

Writers (spool ingest, the Kafka collector, the OTLP receiver) go through
``StoreWriter`` by way of ``zoomtrace.collect.batching``; readers (``zoomtrace.read``,
and through it the CLI, the UI and the demo) through ``StoreReader``. The DuckDB store
implements both; a distributed backend (ClickHouse) implements the same two, with the
same table and column names (docs/store.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypedDict

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


class StoreWriter(Protocol):
    """Bulk, idempotent writes: prepare a batch, write it with its source offsets and problems, report what was new."""

    #: Problem lines for the records the last write had to skip (they cannot be stored).
    last_skipped: list[str]

    def prepare(self, records: list[Record]) -> Any:
        """The backend's pure-Python work on a batch (no database access), so it can run on another thread."""

    def ingest_prepared(
        self,
        batch: Any,
        offsets: dict[str, int] | None = None,
        problems: Sequence[tuple[str | None, str]] = (),
    ) -> int:
        """Store a prepared batch, the source ``offsets`` it was read up to and the ``problems`` met reading it,
        in one transaction; returns how many records were new."""

    def ingest_offsets(self) -> dict[str, int]:
        """Source (spool segment) name -> offset up to which it is stored."""

    def close(self) -> None: ...


class StoreReader(Protocol):
    """Queries; rows come back as plain values, and ``zoomtrace.read`` makes the story of them."""

    def traces(self, filt: TraceFilter | None = None, *, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        """Trace summaries, newest first (by start time, then trace id, for a deterministic order)."""

    def story(self, trace_id: str) -> dict[str, Any]:
        """The story of one trace (raises ``zoomtrace.errors.NotFound`` for an unknown trace id)."""

    def nodes(self, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Process runs, newest first."""

    def node(self, node_id: str) -> dict[str, Any]:
        """One process run by id (raises NotFound)."""

    def record(self, record_id: str) -> dict[str, Any]:
        """One record by id (raises NotFound)."""

    def lineage(self, record_id: str, *, depth: int = 20) -> dict[str, Any]:
        """``{"record": ..., "upstream": [...], "downstream": [...]}`` through ``sources``."""

    def search(self, text: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """Records whose message or attrs contain ``text``, newest first."""

    def tail(self, *, after_id: str | None = None, limit: int = 100, last: bool = False) -> list[dict[str, Any]]:
        """Records newer than ``after_id`` in arrival order."""

    def snapshots(self, node_id: str) -> list[dict[str, Any]]:
        """The node's snapshots of dirty files: ``{file, repo, sha256 | problem}``."""

    def blob(self, digest: str) -> bytes | None:
        """Content-addressed file snapshot or raw payload."""

    def problems(self, *, limit: int = 100) -> list[dict[str, Any]]:
        """Source data that could not be ingested, newest first."""

    def sql(self, query: str, *, max_rows: int | None = None) -> tuple[Sequence[str], list[tuple[Any, ...]]]:
        """Run a read-only query; raises ``zoomtrace.errors.ReadOnlySQL`` for writes."""

    def close(self) -> None: ...


class Store(StoreReader, StoreWriter, Protocol):
    """A backend that both writes and reads (every backend, so far)."""
