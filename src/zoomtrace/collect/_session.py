"""A store session for readers: open the home's store and bring it up to date with the home's spool first."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from zoomtrace.collect.spool_ingest import ingest_home
from zoomtrace.store import LOCK_TIMEOUT_S, Store, open_store


@contextlib.contextmanager
def open_session(
    home: Path, *, ingest: bool = True, create: bool = False, timeout_s: float = LOCK_TIMEOUT_S
) -> Iterator[Store]:
    """Lock and open the store of ``home``, ingest new spool data (so a query right after a run sees it all),
    yield it, close it. Every command that reads a store opens it this way."""
    with open_store(home, create=create, timeout_s=timeout_s) as store:
        if ingest:
            ingest_home(store, Path(home).absolute())
        yield store
