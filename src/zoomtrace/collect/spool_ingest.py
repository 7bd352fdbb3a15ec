"""Spool -> store: read every segment from where the last ingest stopped.

Segments may still be growing (their writer process may be alive), so a read stops at
the last complete frame and the rest stays *pending* for the next ingest. Corrupt
frames are reported and skipped; the rest of the segment is still ingested. Each
batch of segments is stored in one transaction together with the offsets it was read
up to, so a crash can neither lose records nor count them twice.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from zoomtrace.store._gc import gc_paused
from zoomtrace.wire.record import Record
from zoomtrace.wire.spool import SPOOL_DIRS, read_segment, segments

#: Records per transaction (a segment is never split: its offset covers all of its new frames).
BATCH_RECORDS: Final = 100_000


class SpoolTarget(Protocol):
    """What ingestion needs from a store backend.

    ``prepare`` is the backend's pure-Python work on a batch (no database access); ingestion runs it on
    its reader thread so that it overlaps the database work of the previous batch.
    """

    #: Problem lines for the records the last ingest had to skip (they cannot be stored).
    last_skipped: list[str]

    def ingest_offsets(self) -> dict[str, int]: ...

    def prepare(self, records: list[Record]) -> Any: ...

    def ingest_prepared(
        self,
        batch: Any,
        offsets: dict[str, int] | None = None,
        problems: Sequence[tuple[str | None, str]] = (),
    ) -> int:
        """Store a prepared batch, offsets and problems in one transaction; returns how many records were new."""


@dataclass
class IngestReport:
    #: Complete records read from the spool in this run.
    records: int = 0
    #: Of those, how many were not yet in the store.
    new: int = 0
    #: Corrupt data skipped, one human-readable line each.
    problems: list[str] = field(default_factory=list)
    #: Bytes at segment ends that do not form a complete frame yet (a writer may be mid-write).
    pending_bytes: int = 0
    segments: int = 0


Batch = tuple[Any, dict[str, int], list[tuple[str | None, str]]]


def ingest_spool(store: SpoolTarget, spool_dir: Path, *, batch_records: int = BATCH_RECORDS) -> IngestReport:
    """Ingest everything new in ``spool_dir``; safe while writers append (not alongside another ingest,
    which ``open_store``'s lock prevents).

    Segments are read, decoded and prepared (``store.prepare``) on a helper thread while the store
    writes the previous batch (DuckDB releases the GIL), so with two cores the two halves overlap.
    """
    report = IngestReport()
    offsets = store.ingest_offsets()
    with gc_paused():
        batches = _read_batches(Path(spool_dir), offsets, report, batch_records, store.prepare)
        for prepared, batch_offsets, problems in _prefetch(batches):
            report.new += store.ingest_prepared(prepared, batch_offsets, problems)
            report.problems.extend(store.last_skipped)
    return report


def _read_batches(
    spool_dir: Path,
    offsets: dict[str, int],
    report: IngestReport,
    batch_records: int,
    prepare: Callable[[list[Record]], Any],
) -> Iterator[Batch]:
    """Prepared batches of new records with the offsets they reach; a segment is never split across batches."""
    records: list[Record] = []
    batch_offsets: dict[str, int] = {}
    problems: list[tuple[str | None, str]] = []
    for path in segments(spool_dir):
        name = path.name
        report.segments += 1
        start = offsets.get(name, 0)
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            continue  # removed since listed
        if size < start:
            text = f"{name}: shrank from {start} to {size} bytes (replaced?); reading it again from the start"
            report.problems.append(text)
            problems.append((name, text))
            start = 0
        if size == start and name in offsets:
            continue
        try:
            result = read_segment(path, start)
        except OSError as exc:
            report.problems.append(f"{name}: unreadable ({exc.strerror}); skipped for now")
            continue
        report.records += len(result.records)
        report.pending_bytes += result.pending_bytes
        report.problems.extend(result.problems)
        problems.extend((name, p) for p in result.problems)
        if result.offset != offsets.get(name):
            batch_offsets[name] = result.offset
        records.extend(result.records)
        if len(records) >= batch_records:
            yield prepare(records), batch_offsets, problems
            records, batch_offsets, problems = [], {}, []
    if records or batch_offsets or problems:
        yield prepare(records), batch_offsets, problems


_DONE: Final = object()


def _prefetch(batches: Iterator[Batch]) -> Iterator[Batch]:
    """Run ``batches`` one step ahead on a helper thread; its exceptions are raised here."""
    slot: queue.Queue[Any] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item: Any) -> bool:
        """Hand ``item`` over unless the consumer has gone; never blocks for good."""
        while not stop.is_set():
            try:
                slot.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not put(batch):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, which raises it
            put(exc)

    thread = threading.Thread(target=produce, name="zoomtrace-ingest-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = slot.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            slot.get_nowait()
        thread.join()


def ingest_home(store: SpoolTarget, home: Path) -> IngestReport:
    """Ingest every spool directory of ``home`` (what ``zoomtrace ingest`` and every store session run).

    Records a Kafka sink could not send yet are stored locally too; when they reach Kafka
    later the collector's copy is the same record id, so they are stored once.
    """
    total = IngestReport()
    for name in SPOOL_DIRS:
        directory = Path(home) / name
        if directory.is_dir():
            report = ingest_spool(store, directory)
            total.records += report.records
            total.new += report.new
            total.problems.extend(report.problems)
            total.pending_bytes += report.pending_bytes
            total.segments += report.segments
    return total
