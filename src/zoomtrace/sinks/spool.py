"""The embedded default sink: this process's own segment files in the spool directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final

import msgspec

from zoomtrace.wire.record import Record
from zoomtrace.wire.spool import SegmentWriter, encode_records

#: What encoding a record may raise (a value no encoder takes: a lone surrogate, an int beyond 64 bits in msgpack).
_ENCODE_ERRORS: Final = (msgspec.EncodeError, UnicodeEncodeError, OverflowError, TypeError, ValueError, RecursionError)


class SpoolSink:
    def __init__(self, directory: Path, node_id: str, report_loss: Callable[[str, int], None] | None = None) -> None:
        self.directory = directory
        self._writer = SegmentWriter(directory, node_id)
        self._report_loss = report_loss

    def write(self, records: list[Record]) -> None:
        """Write ``records`` as one frame (two when some payloads are bytes). A record that cannot be encoded
        costs only itself: the others are written and it is counted lost (``encode_error``)."""
        try:
            frames = encode_records(records)
        except _ENCODE_ERRORS:
            encodable = [r for r in records if _encodes(r)]
            if self._report_loss is not None:
                self._report_loss("encode_error", len(records) - len(encodable))
            frames = encode_records(encodable) if encodable else []
        for version, payload in frames:
            self._writer.write(payload, version)

    def flush(self) -> None:
        """Data is in the OS page cache after each write; nothing is buffered here."""

    def close(self) -> None:
        self._writer.close()


def _encodes(record: Record) -> bool:
    try:
        encode_records([record])
    except _ENCODE_ERRORS:
        return False
    return True
