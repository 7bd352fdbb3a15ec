"""A new, empty store of each backend, for the tests that run on every one of them (``ENGINES``)."""

from __future__ import annotations

from pathlib import Path

from zoomtrace.store import Store
from zoomtrace.store.clickhouse import ClickHouseStore
from zoomtrace.store.duckdb import DuckStore

#: The backends the store tests run on (the parameter ids).
ENGINES = ("duckdb", "chdb")


def open_store(engine: str, directory: Path) -> Store:
    """A new, empty store of ``engine`` in ``directory`` (keeping records of any age: no retention)."""
    directory.mkdir(parents=True, exist_ok=True)
    if engine == "duckdb":
        return DuckStore(directory / "store.duckdb")
    return ClickHouseStore.open(f"chdb://{directory / 'chdb'}", create=True, retention_days=0)
