"""Spool -> store: read every segment from where the last ingest stopped.

Segments may still be growing (their writer process may be alive), so a read stops at
the last complete frame and the rest stays *pending* for the next ingest, until no
writer holds the segment any more: then it is a torn write, reported once. Corrupt
frames are reported and skipped; the rest of the segment is still ingested. Only
regular files are read (a FIFO or a device named ``*.zspool`` is reported, not
opened), and a segment is known by its name as UTF-8 text. Each
batch of segments is stored in one transaction together with the offsets it was read
up to, so a crash can neither lose records nor count them twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from zoomtrace._gc import gc_paused
from zoomtrace.collect._batching import Background, Batch, BatchWriter, Written, open_target
from zoomtrace.store import Problem, StoreWriter
from zoomtrace.wire.record import Record
from zoomtrace.wire.spool import SPOOL_DIRS, NotASegment, check_regular, display_name, read_segment, segments

#: Records per transaction, at most: a segment is split between two at a frame if need be (each stores the
#: offset it read up to), so a batch's memory does not grow with the segments' size. 200,000 rather than
#: 100,000 measured 10-17 % more records/s into both stores at 800,000 records (fewer, larger inserts: less
#: of the engines' work per record), for about 100 MB more memory at the peak (bench/README.md, "Ingest").
BATCH_RECORDS: Final = 200_000
#: Spool bytes per transaction, at most (to the frame that reaches it): 200,000 records of a few hundred bytes are
#: ≈80 MB, but of raw data or large events they could be gigabytes, all in memory at once, twice (read, and
#: handed to the store).
BATCH_BYTES: Final = 128 * 1024 * 1024
#: The first transaction's records, at most: the store starts writing while the next batch is read, so little
#: of the reading waits for nothing (with a first batch as large as the others, a 300,000-record ingest was
#: a fifth slower).
FIRST_BATCH_RECORDS: Final = 25_000


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

    def add(self, written: Written) -> None:
        """Count a stored batch."""
        self.new += written.new
        self.problems.extend(written.skipped)


def ingest_spool(
    store: StoreWriter, spool_dir: Path, *, batch_records: int = BATCH_RECORDS, batch_bytes: int = BATCH_BYTES
) -> IngestReport:
    """Ingest everything new in ``spool_dir``; safe while writers append (not alongside another ingest,
    which ``open_store``'s lock prevents).

    Segments are read, decoded and prepared on this thread while a helper thread writes the previous
    batch (DuckDB releases the GIL), so with two cores the two halves overlap.
    """
    report = IngestReport()
    writer = BatchWriter(open_target(store))
    with gc_paused(), Background(writer, name="zoomtrace-ingest-store") as background:
        batches = _read_batches(
            Path(spool_dir), store.offsets(), report, writer, batch_records=batch_records, batch_bytes=batch_bytes
        )
        for batch in batches:
            background.submit(batch, report.add)
    return report


def _read_batches(
    spool_dir: Path,
    offsets: dict[str, int],
    report: IngestReport,
    writer: BatchWriter,
    *,
    batch_records: int,
    batch_bytes: int,
) -> Iterator[Batch]:
    """Prepared batches of up to ``batch_records`` records and ``batch_bytes`` of frames (to the frame that reaches
    either; the first of up to ``FIRST_BATCH_RECORDS`` records) with the offsets they reach, a segment split between
    batches if need be.

    JSON-lines frames are handed to the store's ``prepare`` as they are (``read_segment(decode=False)``).
    """
    records: list[Record] = []
    lines: list[bytes] = []
    line_count = 0
    batch_offsets: dict[str, int] = {}
    problems: list[Problem] = []
    limit = min(FIRST_BATCH_RECORDS, batch_records)
    read = 0  # bytes of the batch's frames
    for path in segments(spool_dir):
        name = display_name(path)
        report.segments += 1
        start = offsets.get(name, 0)
        try:
            st = os.stat(path)
            check_regular(path, st.st_mode)
        except FileNotFoundError:
            continue  # removed since listed (or a symbolic link to nothing)
        except NotASegment as exc:
            report.problems.append(str(exc))
            if name not in offsets:  # stored once: its offset says it was seen
                problems.append((name, str(exc)))
                batch_offsets[name] = 0
            continue
        size = st.st_size
        if size < start:
            text = f"{name}: shrank from {start} to {size} bytes (replaced?); reading it again from the start"
            report.problems.append(text)
            problems.append((name, text))
            start = 0
        if size == start and name in offsets:
            continue
        more = True
        while more:
            try:
                result = read_segment(
                    path,
                    start,
                    decode=False,
                    max_records=limit - len(records) - line_count,
                    max_bytes=batch_bytes - read,
                )
            except FileNotFoundError:
                break
            except NotASegment as exc:  # replaced since the check above
                report.problems.append(str(exc))
                break
            except OSError as exc:
                report.problems.append(f"{name}: unreadable ({exc.strerror}); skipped for now")
                break
            report.records += len(result.records) + result.line_count
            report.pending_bytes += result.pending_bytes
            report.problems.extend(result.problems)
            problems.extend((name, p) for p in result.problems)
            if result.offset != offsets.get(name):
                batch_offsets[name] = result.offset
            records.extend(result.records)
            lines.extend(result.lines)
            line_count += result.line_count
            read += result.offset - start
            more, start = result.more, result.offset
            if len(records) + line_count >= limit or read >= batch_bytes:
                limit = batch_records
                yield writer.batch(
                    records, lines=lines, line_count=line_count, offsets=batch_offsets, problems=problems
                )
                records, lines, line_count, batch_offsets, problems, read = [], [], 0, {}, [], 0
    if records or lines or batch_offsets or problems:
        yield writer.batch(records, lines=lines, line_count=line_count, offsets=batch_offsets, problems=problems)


def ingest_home(store: StoreWriter, home: Path) -> IngestReport:
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
