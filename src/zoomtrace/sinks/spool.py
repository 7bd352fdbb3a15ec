"""The embedded default sink: this process's own segment files in the spool directory."""

from __future__ import annotations

from pathlib import Path

from zoomtrace.wire.record import Record
from zoomtrace.wire.spool import SegmentWriter


class SpoolSink:
    def __init__(self, directory: Path, node_id: str) -> None:
        self.directory = directory
        self._writer = SegmentWriter(directory, node_id)

    def write(self, records: list[Record]) -> None:
        self._writer.write_records(records)

    def flush(self) -> None:
        """Data is in the OS page cache after each write; nothing is buffered here."""

    def close(self) -> None:
        self._writer.close()
