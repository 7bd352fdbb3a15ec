"""The store interface: what ingest, the CLI and the UI need from any backend.

DuckDB implements it for one machine (``zoomtrace.store.duckdb``); a distributed
backend (ClickHouse) is meant to satisfy the same interface with the same table
and column names (see docs/ARCHITECTURE.md, "Store schema").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol, TypedDict

from zoomtrace.record import Record


class TraceFilter(TypedDict, total=False):
    service: str
    env: str
    errors_only: bool
    min_duration_ns: int
    max_duration_ns: int
    since_ns: int
    until_ns: int
    text: str


class Store(Protocol):
    def ingest(self, records: Iterable[Record]) -> int:
        """Store records idempotently (by id); returns how many were new."""

    def traces(self, filt: TraceFilter | None = None, *, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        """Trace summaries, newest first (by start time, then trace id, for a deterministic order)."""

    def story(self, trace_id: str) -> dict[str, Any]:
        """The story of one trace, in the shape documented for ``zoomtrace story --json``.

        Raises ``zoomtrace.errors.NotFound`` for an unknown trace id.
        """

    def nodes(self, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Process runs, newest first."""

    def record(self, record_id: str) -> dict[str, Any]:
        """One record by id (raises NotFound)."""

    def lineage(self, record_id: str) -> dict[str, Any]:
        """``{"record": ..., "upstream": [...], "downstream": [...]}`` through ``sources``."""

    def search(self, text: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """Records whose message or attrs contain ``text``, newest first."""

    def tail(self, *, after_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Records newer than ``after_id`` in id (time) order."""

    def node(self, node_id: str) -> dict[str, Any]:
        """One process run by id (raises NotFound)."""

    def snapshots(self, node_id: str) -> list[dict[str, Any]]:
        """The node's snapshots of dirty files: ``{file, repo, sha256 | problem}``."""

    def blob(self, digest: str) -> bytes | None:
        """Content-addressed file snapshot or raw payload."""

    def sql(self, query: str) -> tuple[Sequence[str], list[tuple[Any, ...]]]:
        """Run a read-only query; raises ``zoomtrace.errors.ReadOnlySQL`` for writes."""

    def close(self) -> None: ...
