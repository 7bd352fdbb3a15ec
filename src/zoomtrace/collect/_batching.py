"""Batches of records into the store: the one write path of spool ingest, the Kafka collector and the OTLP receiver.

Each writer goes through the store's ``StoreWriter`` protocol the same way: ``BatchWriter.batch``
prepares records (the store's pure-Python half, which needs no session, so it runs before the
store lock is taken), ``BatchWriter.write`` stores the batch with the source offsets it reaches and
the problems met reading it, in one transaction of one session. A writer whose source cannot hold
a batch back for long (the Kafka collector) gives it a ``Retry``: a failed write is tried again,
and records the store keeps refusing get a second chance before they are skipped. ``Background``
writes one batch on a helper thread while the caller reads and prepares the next.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Final

from zoomtrace._gil import short_gil_turns
from zoomtrace._stderr import say
from zoomtrace.errors import StoreError
from zoomtrace.store import Prepare, PreparedBatch, Problem, StoreWriter, open_store, prepare_for, resolve_store
from zoomtrace.wire.record import Record

__all__ = [
    "Background",
    "Batch",
    "BatchWriter",
    "KeptSession",
    "Retry",
    "Target",
    "Written",
    "home_target",
    "open_target",
]

#: At most this many records refused twice are reported one by one (all are counted).
_MAX_REFUSED_REPORTS: Final = 20


def _nothing_to_release() -> None:
    """A target whose sessions end with each write holds nothing between writes."""


@dataclass(frozen=True)
class Target:
    """A store to write to: its ``prepare``, a session for each write, and ``release``, which ends a session
    kept open across writes (the writer calls it when it has nothing to write, and when it stops)."""

    prepare: Prepare
    session: Callable[[], AbstractContextManager[StoreWriter]]
    release: Callable[[], None] = _nothing_to_release


def open_target(store: StoreWriter) -> Target:
    """A store the caller holds open: every write goes into that one session."""
    return Target(store.prepare, lambda: contextlib.nullcontext(store))


def home_target(
    home: Path, url: str | None = None, *, retention_days: int | None = None, hold_s: float = 0.0
) -> Target:
    """The store ``open_store(home, url=url)`` opens (created if need be). With ``hold_s`` 0, a short session
    per write; else one session kept across the writes of up to ``hold_s`` seconds (``KeptSession``). Either
    way an embedded store's lock is let go between sessions, so CLI commands, the UI and other writers get
    their turn."""
    home = Path(home)
    resolve_store(home, url).check_retention(retention_days)  # a mistake is reported now, not at the first write
    prepare = prepare_for(home, url)

    def session() -> AbstractContextManager[StoreWriter]:
        return open_store(home, url=url, create=True, retention_days=retention_days)

    if hold_s <= 0:
        return Target(prepare, session)
    kept = KeptSession(session, hold_s=hold_s)
    return Target(prepare, kept.session, kept.release)


class KeptSession:
    """One store session kept open across writes, for a writer that writes batch after batch (the Kafka
    collector): opening and closing a store per batch (lock, connect, schema check, checkpoint on close)
    measured 41 ms of CPU on DuckDB and 125 ms on chDB, as much as writing 4,000–12,000 records.

    A session is closed after a write once it has been open ``hold_s`` seconds, after a write that failed
    (so a retry gets a new one) and on ``release``. The next one is opened no sooner than ``gap_s`` later:
    other sessions of an embedded store poll its lock every 0.1 s at most, so they get their turn within
    ``hold_s`` + the write of a batch. Thread-safe: writes run on a helper thread, ``release`` on the caller's.
    """

    def __init__(
        self, open_session: Callable[[], AbstractContextManager[StoreWriter]], *, hold_s: float, gap_s: float = 0.25
    ) -> None:
        self._open = open_session
        self.hold_s, self.gap_s = hold_s, gap_s
        self._lock = threading.Lock()
        self._stack: contextlib.ExitStack | None = None
        self._store: StoreWriter | None = None
        self._opened = 0.0
        self._closed = -gap_s

    @contextlib.contextmanager
    def session(self) -> Iterator[StoreWriter]:
        """The kept session (opened now if there is none)."""
        with self._lock:
            store = self._store
            if store is None or self._stack is None:
                time.sleep(max(0.0, self._closed + self.gap_s - time.monotonic()))
                stack = contextlib.ExitStack()
                store = stack.enter_context(self._open())
                self._stack, self._store, self._opened = stack, store, time.monotonic()
            try:
                yield store
            except BaseException:
                self._close()
                raise
            if time.monotonic() - self._opened >= self.hold_s:
                self._close()

    def release(self) -> None:
        """Close the kept session, if any (after the write in progress)."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        stack, self._stack, self._store = self._stack, None, None
        if stack is not None:
            self._closed = time.monotonic()
            stack.close()


@dataclass(frozen=True)
class Retry:
    """How a failed write is tried again, for writers whose source cannot hold a batch back for long.

    The whole batch is tried ``attempts`` times, each in a new session, ``delay_s`` apart (four times
    longer each time). If it keeps failing, its records are written one by one; those the store
    refuses get a second chance in a later session, so a passing store hiccup costs nothing, and
    only records refused twice are skipped. A store that refuses every record raises ``StoreError``.
    """

    attempts: int = 3
    delay_s: float = 0.2


@dataclass
class Batch:
    """Records prepared for one write, with the source offsets they reach and the problems met reading them."""

    prepared: PreparedBatch
    #: Records handed to the store (repeated ids included).
    size: int
    offsets: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    #: The records themselves, and the blocks of JSON lines, kept only for a ``Retry``'s writes one by one.
    records: list[Record] = field(default_factory=list)
    lines: Sequence[bytes] = ()


@dataclass(frozen=True)
class Written:
    """What writing one batch did."""

    #: Records the store did not hold before.
    new: int
    #: Records the store took (new or already there).
    stored: int
    #: One line per record the store cannot hold, skipped (the store keeps these lines among its problems).
    skipped: list[str] = field(default_factory=list)
    #: Records the store refused twice under a ``Retry``, skipped.
    refused: int = 0


class BatchWriter:
    """Prepares batches and writes them to one ``Target``, retrying as its ``Retry`` says (without one, a
    failed write raises at once: the source still holds the batch, e.g. spool offsets or an OTLP
    exporter that retries)."""

    def __init__(self, target: Target, *, retry: Retry | None = None) -> None:
        self.target = target
        self.retry = retry

    def batch(
        self,
        records: list[Record],
        *,
        lines: Sequence[bytes] = (),
        line_count: int = 0,
        offsets: Mapping[str, int] | None = None,
        problems: Sequence[Problem] = (),
    ) -> Batch:
        """Prepare ``records`` and ``lines``, blocks of ``line_count`` records as JSON lines (``StoreWriter.prepare``);
        no session is opened, so it is safe on any thread."""
        kept = self.retry is not None  # else released here, not on the writing thread
        return Batch(
            self.target.prepare(records, lines),
            len(records) + line_count,
            dict(offsets or {}),
            list(problems),
            records if kept else [],
            lines if kept else (),
        )

    def write(self, batch: Batch) -> Written:
        """Store ``batch`` in one transaction of a new session."""
        retry = self.retry
        if retry is None:
            return self._write(batch)
        delay = retry.delay_s
        for attempt in range(1, retry.attempts + 1):
            try:
                return self._write(batch)
            except Exception as exc:
                say(f"store write of {batch.size} records failed (attempt {attempt}): {exc}")
                if attempt < retry.attempts:
                    time.sleep(delay)
                    delay *= 4
        return self._one_by_one(batch, delay)

    def _write(self, batch: Batch) -> Written:
        with self.target.session() as store:
            report = store.write(batch.prepared, offsets=batch.offsets, problems=batch.problems)
        return Written(report.new, batch.size, report.skipped)

    def _one_by_one(self, batch: Batch, delay: float) -> Written:
        """The batch keeps failing: store the records the store takes, give the others a second chance in a
        later session, skip those refused twice; then the batch's offsets and problems."""
        items: list[Record | bytes] = [*batch.records, *_lines_of(batch.lines)]
        new, skipped, refused = self._singly(items)
        if refused:
            time.sleep(delay)
            more, skipped_too, refused = self._singly([item for item, _ in refused])
            new, skipped = new + more, skipped + skipped_too
        for item, why in refused[:_MAX_REFUSED_REPORTS]:
            say(f"store refused {_described(item)} twice: {why}; skipped")
        if items and len(refused) == len(items):
            # Nothing at all can be written: the store is broken. Stop before the source moves on (no loss).
            raise StoreError(f"the store refuses every record ({len(refused)}); stopping without committing")
        self._write(Batch(self.target.prepare([]), 0, batch.offsets, batch.problems))
        return Written(new, len(items) - len(refused), skipped, len(refused))

    def _singly(self, items: list[Record | bytes]) -> tuple[int, list[str], list[tuple[Record | bytes, Exception]]]:
        """Store records (or record lines) one at a time in one session: how many were new, the store's skipped
        lines, and the records it refused, with why. A line goes through the store's ``prepare`` as a line, so
        it is read as the batch would have read it."""
        new, skipped, refused = 0, [], []
        prepare = self.target.prepare
        try:
            with self.target.session() as store:
                for item in items:
                    try:
                        report = store.write(prepare([item]) if isinstance(item, Record) else prepare([], [item]))
                    except Exception as exc:
                        refused.append((item, exc))
                        continue
                    new += report.new
                    skipped += report.skipped
        except Exception as exc:
            raise StoreError(f"cannot write to the store ({exc}); stopping without committing") from exc
        return new, skipped, refused


def _lines_of(blocks: Sequence[bytes]) -> list[bytes]:
    """The record lines of blocks of JSON lines, one by one (each with its line feed)."""
    return [line + b"\n" for block in blocks for line in block.split(b"\n") if line.strip()]


def _described(item: Record | bytes) -> str:
    if isinstance(item, Record):
        return f"record {item.id} ({item.kind}/{item.type})"
    return f"record line {item[:120]!r}"


class Background:
    """Writes one batch at a time on a helper thread, so that the caller reads and prepares the next one
    meanwhile (DuckDB releases the GIL: on two cores the halves overlap).

    Used as a context manager: leaving it normally waits for the last batch (and raises its error);
    leaving it on an error waits for the batch being written and lets the first error through.
    """

    def __init__(self, writer: BatchWriter, *, name: str) -> None:
        self.writer = writer
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending: tuple[Future[Written], Callable[[Written], None]] | None = None
        self._turns = short_gil_turns()

    @property
    def busy(self) -> bool:
        """A batch is being written."""
        return self._pending is not None and not self._pending[0].done()

    def submit(self, batch: Batch, then: Callable[[Written], None]) -> None:
        """Settle the batch being written, then start writing ``batch``; ``then`` gets what it did, on the
        caller's thread, at the next ``submit`` or ``settle``."""
        self.settle()
        self._pending = (self._pool.submit(self.writer.write, batch), then)

    def settle(self) -> None:
        """Wait for the batch being written and call its ``then``; its write error is raised here instead."""
        if self._pending is None:
            return
        future, then = self._pending
        self._pending = None
        then(future.result())

    def __enter__(self) -> Background:
        # The writing thread needs the GIL between two of the store's statements: it gets it within 0.5 ms.
        self._turns.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc is None:
                self.settle()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._turns.__exit__(None, None, None)
