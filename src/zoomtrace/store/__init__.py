"""The store: where records are kept and queried.

``protocols`` says what every backend does: ``StoreWriter`` (what spool ingest, the
Kafka collector and the OTLP receiver write through, with its ``WriteReport``) and
``StoreReader`` (the rows ``zoomtrace.read`` assembles stories from). ``duckdb`` is the
embedded backend, one file per Zoom home: ``<home>/store.duckdb``, one session at a time.

DuckDB lets a single process open a database file. Two CLI commands at once, or the
CLI while the UI answers a request, must wait for each other rather than fail, so every
session holds an exclusive ``flock`` on ``<home>/store.lock`` for its whole life
(sessions are short: open, answer, close). A long-lived program such as the UI must
open a session per request, not keep one open. Ingesting the home's spool on opening
is ``zoomtrace.collect.open_session``'s job, above this package.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

from zoomtrace.errors import StoreError
from zoomtrace.store.protocols import (
    PreparedBatch,
    Problem,
    Store,
    StoreReader,
    StoreWriter,
    TraceFilter,
    WriteReport,
)
from zoomtrace.wire.record import Record
from zoomtrace.wire.spool import SPOOL_DIRS

__all__ = [
    "PreparedBatch",
    "Problem",
    "Store",
    "StoreReader",
    "StoreWriter",
    "TraceFilter",
    "WriteReport",
    "open_store",
    "prepare_for",
    "store_lock",
]

STORE_FILE: Final = "store.duckdb"
LOCK_FILE: Final = "store.lock"
#: How long a session waits for another one to finish before giving up.
LOCK_TIMEOUT_S: Final = 30.0


@contextlib.contextmanager
def store_lock(home: Path, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the exclusive store lock of ``home``, waiting up to ``timeout_s`` for the current holder."""
    fd = os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"the store at {home} is busy: another zoomtrace command or the UI has held it for "
                        f"{timeout_s:.0f} s; try again when it has finished"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def open_store(home: Path, *, create: bool = False, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[Store]:
    """A store session: lock, open, yield, close (``zoomtrace.collect.open_session`` also ingests the spool).

    Raises StoreError when ``home`` holds neither a spool nor a store (unless ``create``), when the
    store file is corrupt, or when another session holds the store for longer than ``timeout_s``.
    """
    home = Path(home).absolute()
    path = home / STORE_FILE
    if not create and not path.exists() and not any((home / name).is_dir() for name in SPOOL_DIRS):
        raise StoreError(
            f"no zoomtrace data at {home}: run a program that calls zoomtrace.init() (it records into "
            f"{home / SPOOL_DIRS[0]}), or point at another home with --home or $ZOOMTRACE_HOME"
        )
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the zoomtrace home {home}: {exc.strerror}") from None
    from zoomtrace.store.duckdb import DuckStore

    with store_lock(home, timeout_s):
        store = DuckStore(path)
        try:
            yield store
        finally:
            store.close()


def prepare_for(home: Path) -> Callable[[list[Record]], PreparedBatch]:
    """``StoreWriter.prepare`` of the store ``open_store(home)`` opens, without opening it: a writer that takes
    a short session per batch (the Kafka collector) prepares the next batch before it takes the lock."""
    from zoomtrace.store.duckdb import prepare

    return prepare
