"""The spool format: a corrupt length in the middle of a segment costs that frame only, and a segment read frame
by frame gives what parsing it whole gives."""

from __future__ import annotations

import fcntl
import os
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoomtrace.wire import spool
from zoomtrace.wire.record import Record, encoder, json_encoder
from zoomtrace.wire.spool import HEADER, JSON_LINES, MAGIC, MSGPACK, SegmentWriter, _parse, _read_frames, read_segment


def write_frames(directory: Path, n: int) -> tuple[Path, list[int]]:
    writer = SegmentWriter(directory, "node")
    offsets = []
    size = 0
    for i in range(n):
        payload = encoder.encode([Record(id=f"r{i}", kind="log", type="t", ts_ns=i, node_id="node")])
        offsets.append(size)
        size += HEADER.size + len(payload)
        writer.write(payload)
    writer.close()
    return next(directory.iterdir()), offsets


def test_corrupt_length_mid_segment_skips_only_that_frame(tmp_path: Path) -> None:
    path, offsets = write_frames(tmp_path, 4)
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, offsets[1] + 4, 10_000)  # frame 2 claims a longer payload than it has
    path.write_bytes(bytes(data))
    result = read_segment(path)
    assert [r.id for r in result.records] == ["r0", "r2", "r3"]
    assert len(result.problems) == 1 and f"offset {offsets[1]}" in result.problems[0]
    assert result.pending_bytes == 0


@contextmanager
def held_by_a_writer(path: Path) -> Iterator[None]:
    """``path`` open and locked as a live ``SegmentWriter`` holds its segment."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def test_torn_last_frame_stays_pending_while_its_writer_holds_the_segment(tmp_path: Path) -> None:
    path, offsets = write_frames(tmp_path, 3)
    data = path.read_bytes()
    path.write_bytes(data[: offsets[2] + HEADER.size + 2])  # the writer is mid-frame
    with held_by_a_writer(path):
        result = read_segment(path)
    assert [r.id for r in result.records] == ["r0", "r1"]
    assert result.problems == []
    assert result.offset == offsets[2] and result.pending_bytes == HEADER.size + 2


def test_torn_last_frame_of_a_writer_that_is_gone_is_reported_and_passed(tmp_path: Path) -> None:
    path, offsets = write_frames(tmp_path, 3)
    data = path.read_bytes()
    path.write_bytes(data[: offsets[2] + HEADER.size + 2])  # the writer was killed mid-frame
    result = read_segment(path)
    assert [r.id for r in result.records] == ["r0", "r1"]
    assert result.pending_bytes == 0 and result.offset == len(path.read_bytes())
    (problem,) = result.problems
    assert problem.startswith(f"{path.name}: the last {HEADER.size + 2} bytes (from offset {offsets[2]}) ")


def test_writer_names_rolls_and_tells_each_new_segment(tmp_path: Path) -> None:
    opened: list[Path] = []
    writer = SegmentWriter(tmp_path, "node.kafka", max_bytes=100, on_segment=opened.append)
    payload = encoder.encode([Record(id="r", kind="log", type="t", ts_ns=1, node_id="node", message="x" * 80)])
    sizes = [writer.write(payload) for _ in range(3)]  # each frame fills a segment
    assert sizes == [HEADER.size + len(payload)] * 3
    assert [p.name for p in opened] == [f"node.kafka.00000{i}.zspool" for i in (1, 2, 3)]
    assert writer.segment == opened[-1]
    writer.close(sync=True)
    assert writer.segment is None
    assert [len(read_segment(p).records) for p in opened] == [1, 1, 1]


def _frame_bytes(kind: str, i: int) -> bytes:
    """One piece of a segment: a valid frame of either version, one whose checksum fails, garbage, a frame cut short."""
    records = [Record(id=f"r{i}.{j}", kind="log", type="t", ts_ns=j, node_id="node") for j in range(i % 3 + 1)]
    version, payload = (MSGPACK, encoder.encode(records)) if i % 2 else (JSON_LINES, json_encoder.encode_lines(records))
    frame = HEADER.pack(MAGIC, version, 0, len(payload), zlib.crc32(payload)) + payload
    if kind == "bad checksum":
        return frame[:-1] + bytes([frame[-1] ^ 1])
    if kind == "garbage":
        return b"\x00garbage" + MAGIC[:1]
    if kind == "cut":
        return frame[: len(frame) // 2]
    return frame


@settings(max_examples=150, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(["frame", "frame", "frame", "bad checksum", "garbage", "cut"]), max_size=8),
    start=st.integers(0, 8),
    max_records=st.one_of(st.none(), st.integers(0, 12)),
    max_bytes=st.one_of(st.none(), st.integers(0, 2000)),
    decode=st.booleans(),
)
def test_reading_frame_by_frame_gives_what_parsing_the_whole_gives(
    tmp_path_factory: pytest.TempPathFactory,
    kinds: list[str],
    start: int,
    max_records: int | None,
    max_bytes: int | None,
    decode: bool,
) -> None:
    """``_read_frames`` reads valid frames one by one and hands the rest to ``_parse`` from the first that is not:
    the same records, lines, offsets, problems and pending bytes as ``_parse`` of the whole, from any frame."""
    pieces = [_frame_bytes(kind, i) for i, kind in enumerate(kinds)]
    data = b"".join(pieces)
    offset = sum(map(len, pieces[:start]))
    path = tmp_path_factory.mktemp("segment") / "s.zspool"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        got = _read_frames("s", fd, offset, len(data), decode, max_records, max_bytes)
    finally:
        os.close(fd)
    assert got == _parse("s", data[offset:], offset, decode, max_records, max_bytes=max_bytes)


@given(st.binary(max_size=3000), st.integers(0, 2**32 - 1))
def test_the_frames_checksum_is_zlibs_crc32(data: bytes, start: int) -> None:
    """Frames are checked with zlib-ng's CRC-32: the stdlib's ``zlib.crc32``, which the format names, on any bytes."""
    assert spool.crc32(data) == zlib.crc32(data)
    assert spool.crc32(data, start) == zlib.crc32(data, start)


@pytest.mark.parametrize("past_first", [-1, 0, 1])
def test_a_read_stops_after_the_frame_that_reaches_max_bytes(tmp_path: Path, past_first: int) -> None:
    """``max_bytes`` short of the first frame's end, or at it, reads that frame alone; one byte beyond, the next
    one too (the read stops after the frame that reaches the bound, and says more frames are left)."""
    w = SegmentWriter(tmp_path, "node")
    for i in range(3):
        w.write_records([Record(id=f"r{i}", kind="log", type="t", ts_ns=i, node_id="node")])
    w.close()
    (path,) = tmp_path.iterdir()
    first_end = read_segment(path, max_records=1).offset
    got = read_segment(path, max_bytes=first_end + past_first)
    frames = 2 if past_first > 0 else 1
    assert [r.id for r in got.records] == [f"r{i}" for i in range(frames)]
    assert got.more and got.offset == read_segment(path, max_records=frames).offset
