"""Odd files in a spool directory, and writers that die mid-write, against the real ``zoomtrace`` command.

Segments are written by real processes (a node, or the real ``SegmentWriter``); every check runs
``python -m zoomtrace`` as a user would, with a timeout: a command that hangs fails the test.
"""

from __future__ import annotations

import json
import os
import signal
import textwrap
from pathlib import Path

from zoomtrace.wire.record import Record, encoder, uuid7
from zoomtrace.wire.spool import frame

try:
    import helpers as h
except ImportError:  # tests/ imported as a package
    from tests import helpers as h

RECORDER = """
    import zoomtrace as zt
    zt.init("odd-files")
    zt.log.info("recorded before the odd files")
    zt.shutdown()
"""


def record_something(tmp_path: Path, home: Path) -> Path:
    """A real node's spool in ``home``; returns its one segment."""
    script = tmp_path / "recorder.py"
    script.write_text(textwrap.dedent(RECORDER))
    h.run_script(script, home)
    (segment,) = (home / "spool").glob("*.zspool")
    return segment


def ingest(home: Path) -> dict[str, object]:
    out = h.cli(home, "ingest", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert isinstance(report, dict)
    return report


def messages(home: Path) -> list[str]:
    return [r["message"] for r in h.sql(home, "SELECT message FROM records WHERE kind = 'log' ORDER BY ts_ns")]


def test_a_segment_whose_name_is_not_utf8_is_ingested_and_breaks_no_command(tmp_path: Path) -> None:
    home = tmp_path / "home"
    segment = record_something(tmp_path, home)
    # Someone copied a segment under a name that is not UTF-8 (Zoom never writes one), with a record of its own.
    odd = os.fsencode(home / "spool") + b"/copied-\xff\xfe.zspool"
    extra = Record(id=uuid7(), kind="log", type="app", ts_ns=1, node_id=uuid7(), message="in the odd file")
    with open(odd, "wb") as f:
        f.write(segment.read_bytes() + frame(encoder.encode([extra])))
    report = ingest(home)
    assert report["problems"] == []
    assert messages(home) == ["in the odd file", "recorded before the odd files"]
    # Every command works in that home; the segment is known by its name with the odd bytes escaped.
    offsets = h.sql(home, "SELECT segment FROM ingest_offsets ORDER BY segment")
    assert sorted(r["segment"] for r in offsets) == sorted(["copied-\\xff\\xfe.zspool", segment.name])
    for command in (["traces"], ["nodes"], ["ingest"]):
        out = h.cli(home, *command)
        assert out.returncode == 0, (command, out.stderr)
        assert "unexpected error" not in out.stderr
    # Read once: the name is a stable key, so the next ingest finds nothing new.
    assert (ingest(home)["records"], messages(home)[:1]) == (0, ["in the odd file"])


def test_fifos_devices_and_directories_named_like_segments_are_reported_not_read(tmp_path: Path) -> None:
    home = tmp_path / "home"
    record_something(tmp_path, home)
    spool = home / "spool"
    os.mkfifo(spool / "fifo.zspool")  # opening it for reading would wait for a writer forever
    os.symlink("/dev/zero", spool / "zero.zspool")  # reading it would never end
    os.symlink(spool / "fifo.zspool", spool / "link-to-fifo.zspool")
    (spool / "directory.zspool").mkdir()
    out = h.cli(home, "ingest")  # h.TIMEOUT: a hang fails here
    assert out.returncode == 0, out.stderr
    reported = sorted(line for line in out.stderr.splitlines() if line.startswith("problem: "))
    assert reported == [
        "problem: directory.zspool is a directory, not a spool file; skipped",
        "problem: fifo.zspool is a FIFO, not a spool file; skipped",
        "problem: link-to-fifo.zspool is a FIFO, not a spool file; skipped",
        "problem: zero.zspool is a character device, not a spool file; skipped",
    ]
    assert messages(home) == ["recorded before the odd files"]
    # Every command, and the viewer's store sessions alike, goes on working; the store keeps each report once.
    for _ in range(2):
        assert h.cli(home, "traces").returncode == 0
    stored = h.sql(home, "SELECT segment FROM ingest_problems ORDER BY segment")
    assert [r["segment"] for r in stored] == ["directory.zspool", "fifo.zspool", "link-to-fifo.zspool", "zero.zspool"]


TORN_WRITER = """
    import json, signal, sys
    from pathlib import Path
    from zoomtrace.wire.record import Record, encoder, uuid7
    from zoomtrace.wire.spool import SegmentWriter, frame

    node = uuid7()
    writer = SegmentWriter(Path(sys.argv[1]), node)
    writer.write(encoder.encode([Record(id=uuid7(), kind="log", type="app", ts_ns=1, node_id=node, message="whole")]))
    torn = frame(encoder.encode([Record(id=uuid7(), kind="log", type="app", ts_ns=2, node_id=node, message="torn")]))
    with open(writer.segment, "ab") as f:  # half a frame: as a write cut short by the end of the process
        f.write(torn[: len(torn) // 2])
    print("TORN " + json.dumps({"bytes": len(torn) // 2, "segment": writer.segment.name}), flush=True)
    signal.pause()  # alive, holding the segment open, until the test kills it
"""


def test_a_torn_tail_is_pending_while_its_writer_lives_and_reported_once_it_is_gone(tmp_path: Path) -> None:
    home = tmp_path / "home"
    spool = home / "spool"
    script = tmp_path / "torn_writer.py"
    script.write_text(textwrap.dedent(TORN_WRITER))
    child = h.Child(script, home, str(spool))
    try:
        torn = child.expect_json("TORN")
        alive = ingest(home)
        assert (alive["records"], alive["pending_bytes"], alive["problems"]) == (1, torn["bytes"], [])
        child.signal(signal.SIGKILL)
        child.wait()
    finally:
        child.kill()
    gone = ingest(home)
    assert gone["records"] == 0 and gone["pending_bytes"] == 0
    (problem,) = gone["problems"]
    assert problem.startswith(f"{torn['segment']}: the last {torn['bytes']} bytes ")
    assert "incomplete frame" in problem and "no process is writing" in problem
    stored = h.sql(home, "SELECT segment, problem FROM ingest_problems")
    assert stored == [{"segment": torn["segment"], "problem": problem}]
    # Reported once: the offset moved past the torn bytes.
    assert ingest(home)["problems"] == [] and len(h.sql(home, "SELECT * FROM ingest_problems")) == 1
    assert messages(home) == ["whole"]
