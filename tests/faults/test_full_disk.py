"""A genuinely full filesystem: a small tmpfs, filled to the last byte, is the home of a real process.

Mounting needs root (CI runs the tests as root); elsewhere these tests are skipped, saying so.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from zoomtrace.wire.spool import read_segment

try:
    import helpers as h
except ImportError:  # tests/ imported as a package
    from tests import helpers as h

APP = """
    import json, os, signal, threading
    import zoomtrace as zt

    space_back = threading.Event()
    signal.signal(signal.SIGUSR1, lambda signum, frame: space_back.set())
    zt.init("full-disk", env="ci", group="faults", version="1.2.3")
    zt.log.info("while the disk is full")
    flushed = zt.flush(10)  # the worker has tried to write the started record and this one
    print("FULL " + json.dumps({"pid": os.getpid(), "flushed": flushed}), flush=True)
    if not space_back.wait(60):
        raise SystemExit("no SIGUSR1 from the test")
    zt.log.info("after space returned")
    print("RESULT " + json.dumps({"pid": os.getpid()}), flush=True)
"""


class SmallFilesystem:
    """A tmpfs of ``size`` mounted at ``path``, which ``fill`` fills to the last byte and ``free`` empties."""

    def __init__(self, path: Path, size: str) -> None:
        self.path = path
        self.filler = path / "filler"
        path.mkdir()
        out = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise AssertionError(f"could not mount a tmpfs at {path} as root: {out.stderr.strip()}")

    def fill(self) -> None:
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            block = b"\0" * 65536
            while True:
                try:
                    if os.write(fd, block) < len(block):
                        block = block[:1]  # the last pages: byte by byte until the filesystem refuses
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    if len(block) == 1:
                        break
                    block = block[:1]
        finally:
            os.close(fd)
        assert os.statvfs(self.path).f_bavail == 0

    def free(self) -> None:
        self.filler.unlink()

    def leave(self, size: int) -> None:
        """Free ``size`` bytes of what ``fill`` took (a tmpfs gives them back a page at a time)."""
        os.truncate(self.filler, self.filler.stat().st_size - size)

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True, check=False)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[SmallFilesystem]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root (CI runs the tests as root); not root here")
    fs = SmallFilesystem(tmp_path / "small", "16m")
    try:
        yield fs
    finally:
        fs.unmount()


def records_in(spool: Path) -> list[Any]:
    return [r for path in sorted(spool.glob("*.zspool")) for r in read_segment(path).records]


def test_the_started_record_lost_to_a_full_disk_is_written_once_space_returns(
    small_fs: SmallFilesystem, tmp_path: Path
) -> None:
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(APP).lstrip("\n"))
    home = small_fs.path / "home"
    small_fs.fill()
    child = h.Child(script, home)
    try:
        full = child.expect_json("FULL")
        assert full["flushed"] is True
        # The disk really was full: nothing of the node reached its spool.
        assert records_in(home / "spool") == []
        small_fs.free()
        child.signal(signal.SIGUSR1)
        ran = child.expect_json("RESULT")
    finally:
        with contextlib.suppress(AssertionError):
            child.wait()
        child.kill()
    assert child.proc.returncode == 0, child.stderr
    (node,) = h.nodes(home)
    assert node["pid"] == ran["pid"]
    assert (node["service"], node["env"], node["group"], node["version"]) == ("full-disk", "ci", "faults", "1.2.3")
    assert node["stop_cause"] == "exit"
    started = h.sql(home, "SELECT attrs FROM records WHERE kind = 'node' AND type = 'started'")
    assert len(started) == 1, "the started record is written once, after the space returned"
    logs = [r["message"] for r in h.sql(home, "SELECT message FROM records WHERE kind = 'log'")]
    assert logs == ["after space returned"]
    # The record written while the disk was full is counted, not silently gone.
    lost = [h.as_json(r["attrs"]) for r in h.sql(home, "SELECT attrs FROM records WHERE type = 'lost'")]
    assert lost, "the record lost to the full disk is not counted"
    latest = max(lost, key=lambda a: a["total"])
    assert latest == {"lost": {"sink_error:SpoolSink": 1}, "total": 1}, lost
    # Retrying on the full disk reused the segment it had opened, instead of leaving an empty file each time.
    assert len(list((home / "spool").glob("*.zspool"))) == 1


RECORDER = """
    import zoomtrace as zt
    zt.init("store-on-a-full-disk")
    zt.log.info("recorded while there was space")
    zt.shutdown()
"""


def test_a_store_that_cannot_be_created_on_a_full_disk_says_so_and_leaves_no_file(
    small_fs: SmallFilesystem, tmp_path: Path
) -> None:
    script = tmp_path / "recorder.py"
    script.write_text(textwrap.dedent(RECORDER).lstrip("\n"))
    home = small_fs.path / "home"
    h.run_script(script, home)  # a spool, and no store yet
    store = home / "store.duckdb"
    assert not store.exists()
    small_fs.fill()
    line = h.assert_one_line_error(h.cli(home, "nodes"))
    assert "disk is full" in line and "Free some space" in line, line
    assert "corrupt" not in line, line
    assert not store.exists(), "an invalid store file was left behind"
    small_fs.free()
    (node,) = h.nodes(home)  # created now, from the spool: nothing was lost
    assert node["service"] == "store-on-a-full-disk"


KAFKA_APP = """
    import json, signal, sys, threading, time
    import zoomtrace as zt

    space_back = threading.Event()
    signal.signal(signal.SIGUSR1, lambda signum, frame: space_back.set())
    zt.init("kafka-full-disk", sink=sys.argv[1])
    n = 0
    end = time.monotonic() + 3  # the sink probes the absent broker again and again meanwhile
    while time.monotonic() < end:
        zt.log.info("while the disk is full {n}", n=n)
        n += 1
        zt.flush(1)
    print("FULL " + json.dumps({"records": n}), flush=True)
    if not space_back.wait(60):
        raise SystemExit("no SIGUSR1 from the test")
    zt.log.info("after space returned")
"""


@pytest.mark.parametrize("room", [0, 4096], ids=["no-room", "room-for-the-meta-file-only"])
def test_the_kafka_spool_on_a_full_disk_leaves_no_file_per_try_and_keeps_what_follows(
    small_fs: SmallFilesystem, tmp_path: Path, room: int
) -> None:
    from support.kafka_broker import free_port_pair

    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(KAFKA_APP).lstrip("\n"))
    home = small_fs.path / "home"
    spool = home / "spool-kafka"
    port = free_port_pair()  # no broker there: every record goes to the Kafka spool
    url = (
        f"kafka://127.0.0.1:{port}?zoom.spool_after_s=0.1&zoom.retry_interval_s=0.05"
        "&zoom.flush_timeout_s=0.2&zoom.close_timeout_s=1"
    )
    small_fs.fill()
    small_fs.leave(room)  # one page: the node's meta file can be written, no segment's frame
    child = h.Child(script, home, url)
    try:
        full = child.expect_json("FULL")
        assert full["records"] > 1
        names = sorted(p.name for p in spool.iterdir()) if spool.is_dir() else []
        segments = [n for n in names if n.endswith(".zspool")]
        # No new (empty) segment for every try: at most the one the first try opened, and nothing half-made.
        assert len(segments) <= 1 and all(n.endswith(".kafka.000001.zspool") for n in segments), names
        assert not [n for n in names if n.endswith(".tmp")], names
        small_fs.free()
        child.signal(signal.SIGUSR1)
        assert child.wait() == 0, child.stderr
    finally:
        child.kill()
    assert "is back" not in child.stderr, "the broker never answered: " + child.stderr
    # What was recorded once space returned is in the spool with what another process needs to send it.
    (meta,) = spool.glob("*.meta.json")
    assert json.loads(meta.read_text())["service"] == "kafka-full-disk"
    kept = [r.message for r in records_in(spool) if r.kind == "log"]
    assert kept == ["after space returned"]
