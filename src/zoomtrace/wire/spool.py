"""The spool format: append-only segment files of checked frames.

Each process writes its own segment files, so processes on one machine never
contend. A frame is::

    magic b"ZT" | version (1 byte) | flags (1 byte) | payload length (u32 LE) | CRC-32 of payload (u32 LE) | payload

and its payload is a msgpack array of records. A reader detects a torn or corrupt
frame, reports it and resynchronises on the next magic; an incomplete frame at the
end of a segment is left for later (its writer may still be writing it).
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import msgspec

from zoomtrace.wire.record import Record, batch_decoder

MAGIC: Final = b"ZT"
FORMAT_VERSION: Final = 1
HEADER: Final = struct.Struct("<2sBBII")
SUFFIX: Final = ".zspool"
#: Spool directories under a Zoom home: the embedded sink's, and the Kafka sink's records not sent yet.
SPOOL_DIRS: Final = ("spool", "spool-kafka")


def default_home() -> Path:
    """The Zoom home (spool and embedded store): ``$ZOOMTRACE_HOME``, else ``./.zoomtrace``."""
    return Path(os.environ.get("ZOOMTRACE_HOME") or ".zoomtrace").absolute()


#: A frame larger than this is treated as corruption (a writer never produces one).
MAX_FRAME: Final = 256 * 1024 * 1024


def frame(payload: bytes) -> bytes:
    return HEADER.pack(MAGIC, FORMAT_VERSION, 0, len(payload), zlib.crc32(payload)) + payload


def segment_name(prefix: str, seq: int) -> str:
    return f"{prefix}.{seq:06d}{SUFFIX}"


class SegmentWriter:
    """Appends frames to ``dir/<prefix>.<seq>.zspool``, rolling to a new segment by size or after an error.

    ``prefix`` is the writing node's id; a second writer of the same node in the same directory
    adds a suffix (the Kafka sink's ``<node_id>.kafka``), so that segment names never collide.
    ``on_segment`` is told each new segment's path as soon as the file exists.
    """

    def __init__(
        self,
        directory: Path,
        prefix: str,
        max_bytes: int = 64 * 1024 * 1024,
        on_segment: Callable[[Path], None] | None = None,
    ) -> None:
        self.directory = directory
        self.prefix = prefix
        self.max_bytes = max_bytes
        self._on_segment = on_segment
        self._seq = 0
        self._fd: int | None = None
        self._segment: Path | None = None
        self._size = 0

    @property
    def segment(self) -> Path | None:
        """The segment being written, until it is closed (later frames then start a new one)."""
        return self._segment

    def _open(self) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        while True:
            self._seq += 1
            path = self.directory / segment_name(self.prefix, self._seq)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
            except FileExistsError:
                continue
            self._fd, self._segment, self._size = fd, path, 0
            if self._on_segment is not None:
                self._on_segment(path)
            return fd

    def write(self, payload: bytes) -> int:
        """Write one frame with a single ``write`` call; returns its size in bytes. After a short write the
        segment is abandoned, so a later frame never follows a torn one in the same file, and so it is after
        an error; but a full disk (``ENOSPC``, ``EDQUOT``: nothing was written) keeps it for the next frame,
        rather than leave a new empty file behind at every retry. The error propagates."""
        data = frame(payload)
        fd = self._fd if self._fd is not None and self._size < self.max_bytes else self._roll()
        try:
            written = os.write(fd, data)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                self.close()
            raise
        if written != len(data):
            self.close()
            raise OSError(f"short write to spool ({written} of {len(data)} bytes)")
        self._size += written
        return written

    def _roll(self) -> int:
        self.close()
        return self._open()

    def close(self, *, sync: bool = False) -> None:
        """Close the segment; ``sync`` first makes it durable (for records that exist nowhere else)."""
        fd, self._fd, self._segment = self._fd, None, None
        if fd is not None:
            with contextlib.suppress(OSError):
                if sync:
                    os.fsync(fd)
                os.close(fd)


@dataclass
class ReadResult:
    records: list[Record] = field(default_factory=list)
    #: Offset up to which the segment is fully consumed (next read starts here).
    offset: int = 0
    #: Human-readable reports of corrupt data that was skipped.
    problems: list[str] = field(default_factory=list)
    #: Bytes at the end that do not yet form a complete frame.
    pending_bytes: int = 0


def read_segment(path: Path, offset: int = 0) -> ReadResult:
    """Read complete frames from ``offset``; corrupt frames are reported and skipped."""
    result = ReadResult(offset=offset)
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    pos = 0
    end = len(data)
    hsize = HEADER.size
    while pos < end:
        if end - pos < hsize:
            break
        magic, version, _flags, length, crc = HEADER.unpack_from(data, pos)
        if magic != MAGIC or version != FORMAT_VERSION or length > MAX_FRAME:
            nxt = data.find(MAGIC, pos + 1)
            skipped = (nxt if nxt >= 0 else end) - pos
            result.problems.append(f"{path.name}: {skipped} bytes of unreadable data at offset {offset + pos} skipped")
            pos += skipped
            continue
        if end - pos - hsize < length:
            resume = _next_valid_frame(data, pos + 1)
            if resume is None:
                break  # incomplete: its writer may still be writing it
            # A complete frame follows, so this one's length is corrupt, not still being written.
            result.problems.append(f"{path.name}: frame at offset {offset + pos} has a corrupt length; skipped")
            pos = resume
            continue
        payload = data[pos + hsize : pos + hsize + length]
        if zlib.crc32(payload) != crc:
            result.problems.append(f"{path.name}: frame at offset {offset + pos} fails its checksum; skipped")
            nxt = data.find(MAGIC, pos + 1)
            pos = nxt if nxt >= 0 else end
            continue
        try:
            result.records.extend(batch_decoder.decode(payload))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            result.problems.append(f"{path.name}: frame at offset {offset + pos} does not decode ({exc}); skipped")
        pos += hsize + length
    result.offset = offset + pos
    result.pending_bytes = end - pos
    return result


def _next_valid_frame(data: bytes, start: int) -> int | None:
    """Position of the next complete frame that passes its checksum, if any."""
    hsize = HEADER.size
    pos = data.find(MAGIC, start)
    while pos >= 0 and len(data) - pos >= hsize:
        _magic, version, _flags, length, crc = HEADER.unpack_from(data, pos)
        body = data[pos + hsize : pos + hsize + length]
        if version == FORMAT_VERSION and len(body) == length and zlib.crc32(body) == crc:
            return pos
        pos = data.find(MAGIC, pos + 1)
    return None


def segments(directory: Path) -> Iterator[Path]:
    """Segment files in name order (node id, then sequence)."""
    if directory.is_dir():
        yield from sorted(p for p in directory.iterdir() if p.name.endswith(SUFFIX))
