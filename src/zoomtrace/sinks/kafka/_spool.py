"""The Kafka sink's durable spool: records the broker has not confirmed, on local disk, in order.

In the spool directory (``<home>/spool-kafka`` by default):

``<node_id>.kafka.<seq>.zspool``
    segments in the standard spool format, written by the shared ``SegmentWriter``; the names
    never collide with the node's embedded spool segments, so ``zoomtrace ingest`` reads both.
``<node_id>.lock``
    held (``flock``) by the live sink, so that no other process adopts its segments.
``<node_id>.meta.json``
    the node's identity and topic templates, for a replay by another process after this one exits.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections import deque
from pathlib import Path
from typing import Any

from zoomtrace._stderr import WarnOnce
from zoomtrace.wire.record import Record
from zoomtrace.wire.spool import SegmentWriter


class SpoolFull(Exception):
    """The spool holds ``max_bytes`` already: the records are lost."""


def try_lock(directory: Path, node_id: str) -> int | None:
    """The node's lock, taken (an open descriptor); None while a live process holds it."""
    fd = os.open(directory / f"{node_id}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def release(directory: Path, node_id: str, lock_fd: int, *, forget: bool) -> None:
    """Let go of a node's lock; ``forget`` removes its lock and meta files (no segment of it is left)."""
    if forget:
        for name in (f"{node_id}.meta.json", f"{node_id}.lock"):
            with contextlib.suppress(OSError):
                (directory / name).unlink()
    with contextlib.suppress(OSError):
        os.close(lock_fd)


def read_meta(directory: Path, node_id: str) -> dict[str, Any]:
    """What ``KafkaSpool`` wrote about a node (raises ``OSError`` or ``ValueError`` when unreadable)."""
    meta = json.loads((directory / f"{node_id}.meta.json").read_text())
    if not isinstance(meta, dict):
        raise ValueError(f"{node_id}.meta.json is not a JSON object")
    return meta


class KafkaSpool:
    """This node's segments, and ``queue``: every segment waiting for replay (own and adopted), oldest first."""

    def __init__(
        self,
        directory: Path,
        node_id: str,
        meta: dict[str, Any],
        *,
        segment_bytes: int,
        max_bytes: int,
        warn: WarnOnce,
    ) -> None:
        self.directory = directory
        self.node_id = node_id
        self._meta = meta
        self.max_bytes = max_bytes
        self._warn = warn
        # "<node_id>.kafka.<seq>.zspool": never the name of one of the node's embedded spool segments,
        # so `zoomtrace ingest`, which remembers offsets by segment name, can read both directories.
        self.queue: deque[Path] = deque()
        self._writer = SegmentWriter(directory, f"{node_id}.kafka", segment_bytes, on_segment=self.queue.append)
        self._lock_fd: int | None = None
        #: Bytes in the queued segments.
        self.bytes = 0
        #: Records written to the spool.
        self.spooled = 0

    def write(self, records: list[Record]) -> None:
        """Append ``records`` as one frame (two when some payloads are bytes). Raises ``SpoolFull``, or
        ``OSError`` when the disk refuses."""
        if self.bytes >= self.max_bytes:
            raise SpoolFull(f"the Kafka spool {self.directory} holds {self.bytes} bytes")
        if self._lock_fd is None:
            self._take_lock()
        self.bytes += self._writer.write_records(records)
        self.spooled += len(records)

    @property
    def current(self) -> Path | None:
        """The segment being written."""
        return self._writer.segment

    @property
    def current_is_empty(self) -> bool:
        """Whether nothing could be written to that segment yet (a full disk): there is nothing to replay."""
        return self._writer.size == 0

    def complete_current(self) -> None:
        """Close the segment being written (to replay it): later records go to a new one."""
        self._writer.close()

    def is_own(self, path: Path) -> bool:
        return path.name.startswith(self.node_id + ".")

    def own_queued(self, *, skip_first: bool = False) -> bool:
        """Whether segments of this node wait for replay (besides the first in the queue, with ``skip_first``)."""
        return any(self.is_own(p) for i, p in enumerate(self.queue) if i or not skip_first)

    def adopt(self, paths: list[Path]) -> None:
        """Queue an exited node's segments for replay, ahead of this node's (they are older)."""
        self.queue.extendleft(reversed(paths))
        for path in paths:
            with contextlib.suppress(OSError):
                self.bytes += path.stat().st_size

    def remove(self, path: Path) -> None:
        """A segment fully replayed: out of the queue and off the disk."""
        if self.queue and self.queue[0] == path:
            self.queue.popleft()
        try:
            size = path.stat().st_size
            path.unlink()
            self.bytes = max(0, self.bytes - size)
        except FileNotFoundError:
            pass
        except OSError as exc:
            self._warn("unlink", f"cannot remove replayed spool segment {path}: {exc}")

    def close(self) -> None:
        """Make the last segment durable and let go of the lock (and the meta file, if no segment is left)."""
        self._writer.close(sync=True)
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            release(self.directory, self.node_id, fd, forget=not self.own_queued())

    def _take_lock(self) -> None:
        """Lock the node's segments and write its meta file; both or neither (a full disk: tried again at the
        next write), so that no segment is ever written that another process could not send."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = try_lock(self.directory, self.node_id)
        if fd is None:
            raise OSError(f"another process holds {self.directory / f'{self.node_id}.lock'}")
        tmp = self.directory / f".{self.node_id}.meta.json.tmp"
        try:
            tmp.write_text(json.dumps(self._meta))
            tmp.replace(self.directory / f"{self.node_id}.meta.json")
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            release(self.directory, self.node_id, fd, forget=False)
            raise
        self._lock_fd = fd
