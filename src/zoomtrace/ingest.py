"""Spool -> store: read every segment from where the last ingest stopped.

Segments may still be growing (their writer process may be alive), so a read stops at
the last complete frame and the rest stays *pending* for the next ingest. Corrupt
frames are reported and skipped; the rest of the segment is still ingested. Each
batch of segments is stored in one transaction together with the offsets it was read
up to, so a crash can neither lose records nor count them twice.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

from zoomtrace.record import Record
from zoomtrace.spool import read_segment, segments
from zoomtrace.store.duckdb import gc_paused

#: Records per transaction (a segment is never split: its offset covers all of its new frames).
BATCH_RECORDS: Final = 200_000


class SpoolTarget(Protocol):
    """What ingestion needs from a store backend."""

    def ingest_offsets(self) -> dict[str, int]: ...

    def ingest_batch(
        self,
        records: list[Record],
        offsets: dict[str, int] | None = None,
        problems: Sequence[tuple[str | None, str]] = (),
    ) -> int: ...


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


def ingest_spool(store: SpoolTarget, spool_dir: Path, *, batch_records: int = BATCH_RECORDS) -> IngestReport:
    """Ingest everything new in ``spool_dir``; safe to run concurrently with writers (not with another ingest,
    which ``open_store``'s lock prevents)."""
    report = IngestReport()
    offsets = store.ingest_offsets()
    pending_records: list[Record] = []
    pending_offsets: dict[str, int] = {}
    pending_problems: list[tuple[str | None, str]] = []

    def flush() -> None:
        if pending_records or pending_offsets or pending_problems:
            report.new += store.ingest_batch(pending_records, pending_offsets, pending_problems)
        pending_records.clear()
        pending_offsets.clear()
        pending_problems.clear()

    with gc_paused():
        for path in segments(Path(spool_dir)):
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
                pending_problems.append((name, text))
                start = 0
            if size == start and name in offsets:
                continue
            try:
                result = read_segment(path, start)
            except OSError as exc:
                text = f"{name}: unreadable ({exc.strerror}); skipped for now"
                report.problems.append(text)
                continue
            report.records += len(result.records)
            report.pending_bytes += result.pending_bytes
            report.problems.extend(result.problems)
            pending_problems.extend((name, p) for p in result.problems)
            if result.offset != offsets.get(name) or result.records:
                pending_offsets[name] = result.offset
            pending_records.extend(result.records)
            if len(pending_records) >= batch_records:
                flush()
        flush()
    return report


def ingest_home(store: SpoolTarget, home: Path) -> IngestReport:
    """Ingest ``<home>/spool`` (what ``zoomtrace ingest`` runs)."""
    return ingest_spool(store, Path(home) / "spool")
