"""The spool format: append-only segment files of checked frames.

Each process writes its own segment files, so processes on one machine never
contend. A frame is::

    magic b"ZT" | version (1 byte) | flags (1 byte) | payload length (u32 LE) | CRC-32 of payload (u32 LE) | payload

and its version says how the payload holds its records: ``JSON_LINES`` (2), one JSON object per
record, each ended by a newline, exactly as a store's bulk insert reads them, so ingestion hands
the lines on without decoding and encoding every record again (docs/store.md, *Writing*); or
``MSGPACK`` (1), a msgpack array of records, for records whose payload is bytes (JSON has no bytes)
and as every segment was written before version 2. A reader detects a torn or corrupt
frame, reports it and resynchronises on the next magic; an incomplete frame at the
end of a segment is left for later while its writer may still be writing it. A writer
holds an exclusive ``flock`` on its segment for as long as it has it open (the kernel
drops it when the process ends, even by ``SIGKILL``), so a reader that can take the
lock knows that the writer is gone and that such a tail is torn for good.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Final

import msgspec
from zlib_ng.zlib_ng import crc32

from zoomtrace._native import speedups
from zoomtrace.wire.record import BINARY, Record, batch_decoder, encoder, json_decoder, json_encoder

MAGIC: Final = b"ZT"
#: Frame versions: how the payload holds its records.
MSGPACK: Final = 1
JSON_LINES: Final = 2
VERSIONS: Final = frozenset({MSGPACK, JSON_LINES})
HEADER: Final = struct.Struct("<2sBBII")
SUFFIX: Final = ".zspool"
#: Spool directories under a Zoom home: the embedded sink's, and the Kafka sink's records not sent yet.
SPOOL_DIRS: Final = ("spool", "spool-kafka")


def default_home() -> Path:
    """The Zoom home (spool and embedded store): ``$ZOOMTRACE_HOME``, else ``./.zoomtrace``."""
    return Path(os.environ.get("ZOOMTRACE_HOME") or ".zoomtrace").absolute()


#: A frame larger than this is treated as corruption (a writer never produces one).
MAX_FRAME: Final = 256 * 1024 * 1024


def _count_lines_python(data: bytes) -> int:
    return data.count(b"\n")


#: The records of a ``JSON_LINES`` frame (its newlines), in C where the speedups are built: ``bytes.count``
#: reads a byte at a time, ≈ 160 ns for a 400-byte record (12 with ``memchr``), and ingest counts every frame.
count_lines: Callable[[bytes], int] = _count_lines_python if speedups is None else speedups.count_lines


_payload: Final = attrgetter("payload")


def frame_header(payload: bytes, version: int = MSGPACK) -> bytes:
    return HEADER.pack(MAGIC, version, 0, len(payload), crc32(payload))


def frame(payload: bytes, version: int = MSGPACK) -> bytes:
    return frame_header(payload, version) + payload


def encode_records(records: list[Record]) -> list[tuple[int, bytes]]:
    """The frame payloads (with their versions) that hold ``records``: one of JSON lines, and one of msgpack
    for the records whose payload is bytes (rare: raw data, file snapshots), which JSON cannot hold."""
    if not any(type(payload) in BINARY for payload in map(_payload, records)):
        return [(JSON_LINES, json_encoder.encode_lines(records))]
    text = [r for r in records if type(r.payload) not in BINARY]
    binary = [r for r in records if type(r.payload) in BINARY]
    frames = [(JSON_LINES, json_encoder.encode_lines(text))] if text else []
    return [*frames, (MSGPACK, encoder.encode(binary))]


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

    @property
    def size(self) -> int:
        """Bytes written to that segment (0 while every write to it failed, as on a full disk)."""
        return self._size if self._segment is not None else 0

    def _open(self) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        while True:
            self._seq += 1
            path = self.directory / segment_name(self.prefix, self._seq)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
            except FileExistsError:
                continue
            # Held until the segment is closed: readers tell a frame being written from a torn one by it.
            # A reader holds its shared lock only for an instant, and only on a file still empty here. A
            # filesystem without locks costs that distinction only.
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_EX)
            self._fd, self._segment, self._size = fd, path, 0
            if self._on_segment is not None:
                self._on_segment(path)
            return fd

    def write_records(self, records: list[Record]) -> int:
        """Write ``records`` in one frame (two when some payloads are bytes); returns the bytes written."""
        return sum(self.write(payload, version) for version, payload in encode_records(records))

    def write(self, payload: bytes, version: int = MSGPACK) -> int:
        """Write one frame with a single ``writev`` call (header and payload as they are: joining them copied the
        payload into a new buffer, and a write of 128 1 KB events made malloc hand 160 KB back to the system and
        fault it in again every time, 0.54 page faults an event); returns its size in bytes. After a short write the
        segment is abandoned, so a later frame never follows a torn one in the same file, and so it is after
        an error; but a full disk (``ENOSPC``, ``EDQUOT``: nothing was written) keeps it for the next frame,
        rather than leave a new empty file behind at every retry. The error propagates."""
        header = frame_header(payload, version)
        size = len(header) + len(payload)
        fd = self._fd if self._fd is not None and self._size < self.max_bytes else self._roll()
        try:
            written = os.writev(fd, (header, payload))
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                self.close()
            raise
        if written != size:
            self.close()
            raise OSError(f"short write to spool ({written} of {size} bytes)")
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
    #: With ``read_segment(..., decode=False)``: the payloads of the ``JSON_LINES`` frames, not decoded.
    lines: list[bytes] = field(default_factory=list)
    #: Records in ``lines`` (one per line).
    line_count: int = 0
    #: Offset up to which the segment is fully consumed (next read starts here).
    offset: int = 0
    #: Human-readable reports of corrupt data that was skipped.
    problems: list[str] = field(default_factory=list)
    #: Bytes at the end that do not yet form a complete frame (while a writer has the segment open).
    pending_bytes: int = 0
    #: The read stopped at ``max_records`` or ``max_bytes`` with frames left after ``offset`` (read them from there).
    more: bool = False


class NotASegment(OSError):
    """A path named like a segment that is no regular file: a FIFO or a device would block or never end."""


def display_name(path: Path) -> str:
    """``path``'s name as valid UTF-8 text: bytes that are not UTF-8 (a name Zoom never writes) as ``\\xNN``.

    Segment names are keys in the store and appear in reports; Python keeps undecodable bytes of a
    file name as lone surrogates, which no database, JSON document or terminal accepts.
    """
    return os.fsencode(path.name).decode("utf-8", "backslashreplace")


def describe_mode(mode: int) -> str:
    """What a file of this ``st_mode`` is, for a report."""
    for test, what in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    ):
        if test(mode):
            return what
    return "not a regular file"


def check_regular(path: Path, mode: int) -> None:
    """Raise ``NotASegment`` unless ``mode`` is a regular file's (a symbolic link counts as its target)."""
    if not stat.S_ISREG(mode):
        raise NotASegment(f"{display_name(path)} is {describe_mode(mode)}, not a spool file; skipped")


def read_segment(
    path: Path, offset: int = 0, *, decode: bool = True, max_records: int | None = None, max_bytes: int | None = None
) -> ReadResult:
    """Read complete frames from ``offset``; corrupt frames are reported and skipped.

    ``decode=False`` leaves the JSON lines of ``JSON_LINES`` frames as they are (``ReadResult.lines``), for
    a store's ``prepare``, which checks them as it reads them; only ``MSGPACK`` frames become ``records``.
    ``max_records`` stops after the frame that reaches it, and ``max_bytes`` after the frame that reaches that many
    bytes read (``ReadResult.more`` says whether frames are left).

    Only a regular file is read (else ``NotASegment``), and it is checked before it is opened: opening a
    FIFO blocks, and reading ``/dev/zero`` never ends. An incomplete frame at the end is *pending* while a
    writer holds the segment; once none does, it is torn for good: reported, and the offset moves past it.
    """
    check_regular(path, os.stat(path).st_mode)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    try:
        st = os.fstat(fd)
        check_regular(path, st.st_mode)  # replaced since the check above
        writer_gone = _writer_gone(fd)  # before reading: a writer that leaves later wrote whole frames
        result = _read_frames(display_name(path), fd, offset, st.st_size, decode, max_records, max_bytes)
    finally:
        os.close(fd)
    if result.pending_bytes and writer_gone:
        result.problems.append(
            f"{display_name(path)}: the last {result.pending_bytes} bytes (from offset {result.offset}) are an "
            f"incomplete frame and no process is writing the file any more (its writer ended mid-write); skipped"
        )
        result.offset += result.pending_bytes
        result.pending_bytes = 0
    return result


def _writer_gone(fd: int) -> bool:
    """Whether no writer holds the segment open (its exclusive lock is free). A filesystem without locks
    cannot tell: the tail stays pending, as if its writer were alive."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return False
    return True  # released when the file is closed


def _read_frames(
    name: str, fd: int, offset: int, size: int, decode: bool, max_records: int | None, max_bytes: int | None = None
) -> ReadResult:
    """The frames of the segment ``name`` (open as ``fd``) from ``offset`` to ``size`` (up to ``max_records`` and
    ``max_bytes``).

    Valid frames are read one at a time, each payload straight into its own bytes, so a read that stops at
    ``max_records`` reads no further and nothing is copied twice (reading the whole rest of a 64 MB segment and
    slicing frames out of it cost a fifth of ingestion's reading thread). From the first frame that is not
    whole and valid, the rest is read at once and ``_parse`` resynchronises on it.
    """
    result = ReadResult(offset=offset)
    hsize = HEADER.size
    pos = offset
    while size - pos >= hsize:
        magic, version, _flags, length, crc = HEADER.unpack(os.pread(fd, hsize, pos))
        if magic != MAGIC or version not in VERSIONS or length > min(MAX_FRAME, size - pos - hsize):
            break
        payload = os.pread(fd, length, pos + hsize)
        if len(payload) != length or crc32(payload) != crc:
            break
        _take_frame(result, name, version, payload, pos, decode)
        pos += hsize + length
        result.offset = pos
        if pos < size and _enough(result, max_records, pos - offset, max_bytes):
            result.more = True
            return result
    if pos < size:
        left = None if max_bytes is None else max_bytes - (pos - offset)
        _parse(name, os.pread(fd, size - pos, pos), pos, decode, max_records, result, left)
    return result


def _enough(result: ReadResult, max_records: int | None, read: int, max_bytes: int | None) -> bool:
    """Whether a read that has read ``read`` bytes into ``result`` stops here."""
    if max_records is not None and len(result.records) + result.line_count >= max_records:
        return True
    return max_bytes is not None and read >= max_bytes


def _take_frame(result: ReadResult, name: str, version: int, payload: bytes, at: int, decode: bool) -> None:
    """Add a valid frame's records (or, not decoded, its JSON lines) to ``result``."""
    try:
        if version == MSGPACK:
            result.records.extend(batch_decoder.decode(payload))
        elif decode:
            result.records.extend(_json_records(payload, name, at, result.problems))
        else:
            result.lines.append(payload)
            result.line_count += count_lines(payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        result.problems.append(f"{name}: frame at offset {at} does not decode ({exc}); skipped")


def _parse(
    name: str,
    data: bytes,
    offset: int,
    decode: bool,
    max_records: int | None = None,
    into: ReadResult | None = None,
    max_bytes: int | None = None,
) -> ReadResult:
    """The frames of ``data``, which starts at ``offset`` of the segment ``name``, added to ``into`` if given (up
    to ``max_records`` in all, and to ``max_bytes`` of ``data``)."""
    result = into if into is not None else ReadResult(offset=offset)
    pos = 0
    end = len(data)
    hsize = HEADER.size
    while pos < end:
        if end - pos < hsize:
            break
        magic, version, _flags, length, crc = HEADER.unpack_from(data, pos)
        if magic != MAGIC or version not in VERSIONS or length > MAX_FRAME:
            nxt = data.find(MAGIC, pos + 1)
            skipped = (nxt if nxt >= 0 else end) - pos
            result.problems.append(f"{name}: {skipped} bytes of unreadable data at offset {offset + pos} skipped")
            pos += skipped
            continue
        if end - pos - hsize < length:
            resume = _next_valid_frame(data, pos + 1)
            if resume is None:
                break  # incomplete: its writer may still be writing it
            # A complete frame follows, so this one's length is corrupt, not still being written.
            result.problems.append(f"{name}: frame at offset {offset + pos} has a corrupt length; skipped")
            pos = resume
            continue
        payload = data[pos + hsize : pos + hsize + length]
        if crc32(payload) != crc:
            result.problems.append(f"{name}: frame at offset {offset + pos} fails its checksum; skipped")
            nxt = data.find(MAGIC, pos + 1)
            pos = nxt if nxt >= 0 else end
            continue
        _take_frame(result, name, version, payload, offset + pos, decode)
        pos += hsize + length
        if pos < end and _enough(result, max_records, pos, max_bytes):
            result.more = True
            break
    result.offset = offset + pos
    result.pending_bytes = 0 if result.more else end - pos
    return result


def _json_records(payload: bytes, name: str, at: int, problems: list[str]) -> list[Record]:
    """The records of a ``JSON_LINES`` payload; one line that is no record costs only itself (reported)."""
    try:
        return json_decoder.decode_lines(payload)
    except (msgspec.DecodeError, msgspec.ValidationError):
        pass
    records = []
    for number, line in enumerate(payload.split(b"\n"), 1):
        if line.strip():
            try:
                records.append(json_decoder.decode(line))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                problems.append(f"{name}: line {number} of the frame at offset {at} does not decode ({exc}); skipped")
    return records


def _next_valid_frame(data: bytes, start: int) -> int | None:
    """Position of the next complete frame that passes its checksum, if any."""
    hsize = HEADER.size
    pos = data.find(MAGIC, start)
    while pos >= 0 and len(data) - pos >= hsize:
        _magic, version, _flags, length, crc = HEADER.unpack_from(data, pos)
        body = data[pos + hsize : pos + hsize + length]
        if version in VERSIONS and len(body) == length and crc32(body) == crc:
            return pos
        pos = data.find(MAGIC, pos + 1)
    return None


def segments(directory: Path) -> Iterator[Path]:
    """Segment files in name order (node id, then sequence)."""
    if directory.is_dir():
        yield from sorted(p for p in directory.iterdir() if p.name.endswith(SUFFIX))
