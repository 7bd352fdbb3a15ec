"""The store: where records are kept and queried.

``protocols`` says what every backend does: ``StoreWriter`` (what spool ingest, the
Kafka collector and the OTLP receiver write through, with its ``WriteReport``) and
``StoreReader`` (the rows ``zoomtrace.read`` assembles stories from). ``open_store``
chooses the backend from a store URL (``urls``): ``duckdb``, the default, is one file per
Zoom home, ``<home>/store.duckdb``; ``chdb://DIR`` and ``clickhouse://…`` are ClickHouse
(``zoomtrace.store.clickhouse``, imported only when chosen: its engine is large).

DuckDB and chDB let a single process open their data at a time. Two CLI commands at once,
or the CLI while the UI answers a request, must wait for each other rather than fail, so
every session of an embedded store holds an exclusive ``flock`` on ``store.lock`` beside
its data for its whole life (sessions are short: open, answer, close). A long-lived
program such as the UI must open a session per request, not keep one open. A ClickHouse
server takes concurrent sessions itself: no lock. Ingesting the home's spool on opening
is ``zoomtrace.collect.open_session``'s job, above this package.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from zoomtrace.errors import StoreError, ZoomError
from zoomtrace.store._lines import refused_line
from zoomtrace.store.protocols import (
    Prepare,
    PreparedBatch,
    Problem,
    Store,
    StoreReader,
    StoreWriter,
    TraceFilter,
    WriteReport,
)
from zoomtrace.store.urls import STORE_ENV, STORE_FILE, StoreUrl, redacted, resolve_store
from zoomtrace.wire.spool import SPOOL_DIRS

__all__ = [
    "STORE_ENV",
    "STORE_FILE",
    "Prepare",
    "PreparedBatch",
    "Problem",
    "Store",
    "StoreReader",
    "StoreUrl",
    "StoreWriter",
    "TraceFilter",
    "WriteReport",
    "open_store",
    "prepare_for",
    "redacted",
    "refused_line",
    "resolve_store",
    "store_lock",
]

LOCK_FILE: Final = "store.lock"
#: How long a session waits for another one to finish before giving up.
LOCK_TIMEOUT_S: Final = 30.0


@contextlib.contextmanager
def store_lock(directory: Path, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the exclusive lock of the embedded store in ``directory`` (``store.lock``), waiting up to
    ``timeout_s`` for the current holder."""
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
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
                        f"the store at {directory} is busy: another zoomtrace command or the UI has held it for "
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
def open_store(
    home: Path,
    *,
    url: str | None = None,
    create: bool = False,
    timeout_s: float = LOCK_TIMEOUT_S,
    retention_days: int | None = None,
) -> Iterator[Store]:
    """A store session: lock (an embedded store), open, yield, close (``zoomtrace.collect.open_session`` also
    ingests the spool).

    The store is ``url``, else ``$ZOOMTRACE_STORE``, else ``<home>/store.duckdb`` (``zoomtrace.store.urls``).
    ``create`` makes a store that does not exist yet even when ``home`` has no spool; ``retention_days``
    is how long a ClickHouse store created now keeps records (None: the store's default).

    Raises ConfigError for a bad URL or a missing client package, StoreError when there is neither a
    spool in ``home`` nor a store (unless ``create``), when the store is corrupt or unreachable, or when
    another session holds an embedded store for longer than ``timeout_s``. Messages never hold the
    URL's password.
    """
    home = Path(home).absolute()
    where = resolve_store(home, url)
    where.check_retention(retention_days)
    try:
        if where.backend == "duckdb":
            session = _duckdb_session(home, where, create=create, timeout_s=timeout_s)
        else:
            session = _clickhouse_session(
                home, where, create=create, timeout_s=timeout_s, retention_days=retention_days
            )
        with session as store:
            yield store
    except ZoomError as exc:
        hidden = where.hide(str(exc))
        if hidden == str(exc):
            raise
        raise type(exc)(hidden) from None


def _has_spool(home: Path) -> bool:
    return any((home / name).is_dir() for name in SPOOL_DIRS)


@contextlib.contextmanager
def _duckdb_session(home: Path, where: StoreUrl, *, create: bool, timeout_s: float) -> Iterator[Store]:
    """A session on a DuckDB file, under the lock beside it."""
    assert where.path is not None and where.lock_dir is not None
    path, directory = where.path, where.lock_dir
    if not create and not path.exists() and not _has_spool(home):
        if where.default:
            raise StoreError(
                f"no zoomtrace data at {home}: run a program that calls zoomtrace.init() (it records into "
                f"{home / SPOOL_DIRS[0]}), or point at another home with --home or $ZOOMTRACE_HOME"
            )
        raise StoreError(
            f"no store at {path} and no spool at {home}: run a program that calls zoomtrace.init(), or "
            f"point at another store with --store or ${STORE_ENV}"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        what = "the zoomtrace home" if where.default else "the directory of the store"
        raise StoreError(f"cannot create {what} {directory}: {exc.strerror}") from None
    from zoomtrace.store.duckdb import DuckStore

    with store_lock(directory, timeout_s):
        store = DuckStore(path)
        try:
            yield store
        finally:
            store.close()


@contextlib.contextmanager
def _clickhouse_session(
    home: Path, where: StoreUrl, *, create: bool, timeout_s: float, retention_days: int | None
) -> Iterator[Store]:
    """A session on ClickHouse: chDB under the lock in its data directory, a server without one.

    The store is created when asked to, or when the home has a spool to ingest into it.
    """
    where.require_client()
    create = create or _has_spool(home)
    lock: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if where.lock_dir is not None:
        if not create and not where.lock_dir.is_dir():
            raise StoreError(
                f"no store at {where.redacted} and no spool at {home}: run a program that calls "
                f"zoomtrace.init(), or point at another store with --store or ${STORE_ENV}"
            )
        try:
            where.lock_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the store's directory {where.lock_dir}: {exc.strerror}") from None
        lock = store_lock(where.lock_dir, timeout_s)
    from zoomtrace.store.clickhouse import ClickHouseStore

    with lock:
        store = ClickHouseStore.open(where.url, create=create, retention_days=retention_days)
        try:
            yield store
        finally:
            store.close()


def prepare_for(home: Path, url: str | None = None) -> Prepare:
    """``StoreWriter.prepare`` of the store ``open_store(home, url=url)`` opens, without opening it: a writer
    that takes a short session per batch (the Kafka collector) prepares the next batch before it takes the
    lock."""
    where = resolve_store(Path(home), url)
    if where.backend == "clickhouse":
        where.require_client()
        from zoomtrace.store.clickhouse import prepare as prepare_clickhouse

        return prepare_clickhouse
    from zoomtrace.store.duckdb import prepare

    return prepare
