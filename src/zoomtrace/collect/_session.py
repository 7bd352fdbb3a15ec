"""A store session for readers: open the store and bring it up to date with the home's spool first."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from zoomtrace.collect.spool_ingest import ingest_home
from zoomtrace.store import LOCK_TIMEOUT_S, Store, open_store


@contextlib.contextmanager
def open_session(
    home: Path,
    *,
    store: str | None = None,
    ingest: bool = True,
    create: bool = False,
    timeout_s: float = LOCK_TIMEOUT_S,
    retention_days: int | None = None,
) -> Iterator[Store]:
    """Lock and open the store (``store``: a store URL, else ``$ZOOMTRACE_STORE``, else the DuckDB file of
    ``home``), ingest the new spool data of ``home`` into it (so a query right after a run sees it all),
    yield it, close it. Every command that reads a store opens it this way."""
    with open_store(home, url=store, create=create, timeout_s=timeout_s, retention_days=retention_days) as opened:
        if ingest:
            ingest_home(opened, Path(home).absolute())
        yield opened
