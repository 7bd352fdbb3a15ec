"""JSON-lines file sink: one record per line, appended."""

from __future__ import annotations

import os
from pathlib import Path

from zoomtrace.wire.record import Record, json_encoder


class FileSink:
    """Opened on the first write, so an unwritable path costs counted records, never ``init()``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def write(self, records: list[Record]) -> None:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        buf = bytearray()
        for record in records:
            json_encoder.encode_into(record, buf, -1)
            buf += b"\n"
        os.write(self._fd, buf)

    def flush(self) -> None:
        """Each batch is one ``write``; nothing is buffered here."""

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
