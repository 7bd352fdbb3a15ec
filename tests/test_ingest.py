"""Spool -> store ingestion: incremental, growing segments, corrupt and torn frames, crash safety.

Spools are written with the real SegmentWriter (or byte by byte where a torn write is the point),
and ingested into a real DuckDB file.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from zoomtrace.collect import open_session
from zoomtrace.collect.spool_ingest import IngestReport, ingest_home, ingest_spool
from zoomtrace.store import WriteReport, open_store
from zoomtrace.store.duckdb import DuckStore
from zoomtrace.wire.record import Record, encoder, uuid7
from zoomtrace.wire.spool import HEADER, SegmentWriter, frame, segment_name

T0 = 1_800_000_000_000_000_000
MS = 1_000_000
NODE = uuid7(T0 - 60_000 * MS)
OTHER = uuid7(T0 - 50_000 * MS)


def logs(start: int, n: int, *, node: str = NODE, trace: str | None = None) -> list[Record]:
    return [
        Record(
            id=uuid7(T0 + (start + i) * MS),
            kind="log",
            type="app",
            ts_ns=T0 + (start + i) * MS,
            node_id=node,
            message=f"m{start + i}",
            trace_id=trace,
            span_id="aa" * 8 if trace else None,
        )
        for i in range(n)
    ]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckStore]:
    s = DuckStore(tmp_path / "store.duckdb")
    try:
        yield s
    finally:
        s.close()


@contextmanager
def held_by_a_writer(path: Path) -> Iterator[None]:
    """``path`` open and locked as a live ``SegmentWriter`` holds its segment (so a torn tail may yet be completed)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def messages(store: DuckStore) -> list[str]:
    return [r[0] for r in store.sql("SELECT message FROM records ORDER BY ts_ns")[1]]


def stored_offsets(store: DuckStore) -> dict[str, int]:
    return {str(k): int(v) for k, v in store.sql('SELECT segment, "offset" FROM ingest_offsets')[1]}


def test_ingests_every_segment_once(tmp_path: Path, store: DuckStore) -> None:
    spool = tmp_path / "spool"
    for node, start in ((NODE, 0), (OTHER, 100)):
        w = SegmentWriter(spool, node)
        w.write(encoder.encode(logs(start, 3, node=node)))
        w.write(encoder.encode(logs(start + 3, 2, node=node)))
        w.close()
    report = ingest_spool(store, spool)
    assert (report.records, report.new, report.problems, report.pending_bytes) == (10, 10, [], 0)
    assert messages(store) == [f"m{i}" for i in range(5)] + [f"m{i}" for i in range(100, 105)]
    sizes = {p.name: p.stat().st_size for p in spool.iterdir()}
    assert stored_offsets(store) == sizes
    again = ingest_spool(store, spool)
    assert (again.records, again.new) == (0, 0)
    assert len(messages(store)) == 10


def test_growing_segment_is_read_incrementally(tmp_path: Path, store: DuckStore) -> None:
    spool = tmp_path / "spool"
    w = SegmentWriter(spool, NODE)  # stays open, as in a live process
    w.write(encoder.encode(logs(0, 4)))
    first = ingest_spool(store, spool)
    assert (first.records, first.new) == (4, 4)
    w.write(encoder.encode(logs(4, 3)))
    w.write(encoder.encode(logs(7, 1)))
    second = ingest_spool(store, spool)
    assert (second.records, second.new) == (4, 4)  # only the frames written since
    assert messages(store) == [f"m{i}" for i in range(8)]
    assert stored_offsets(store) == {segment_name(NODE, 1): (spool / segment_name(NODE, 1)).stat().st_size}
    w.close()


def test_incomplete_frame_at_the_end_stays_pending(tmp_path: Path, store: DuckStore) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    path = spool / segment_name(NODE, 1)
    complete = frame(encoder.encode(logs(0, 2)))
    torn = frame(encoder.encode(logs(2, 3)))
    path.write_bytes(complete + torn[:20])  # the writer is mid-write
    with held_by_a_writer(path):
        report = ingest_spool(store, spool)
        assert (report.records, report.new, report.problems) == (2, 2, [])
        assert report.pending_bytes == 20
        assert stored_offsets(store) == {path.name: len(complete)}
        with open(path, "ab") as f:  # the writer finishes its frame
            f.write(torn[20:])
        report = ingest_spool(store, spool)
    assert (report.records, report.new, report.pending_bytes, report.problems) == (3, 3, 0, [])
    assert messages(store) == [f"m{i}" for i in range(5)]


def test_corrupt_frame_is_reported_and_the_rest_ingested(tmp_path: Path, store: DuckStore) -> None:
    spool = tmp_path / "spool"
    w = SegmentWriter(spool, NODE)
    for start in (0, 10, 20):
        w.write(encoder.encode(logs(start, 2)))
    w.close()
    path = spool / segment_name(NODE, 1)
    data = bytearray(path.read_bytes())
    first_len = len(frame(encoder.encode(logs(0, 2))))
    middle_payload = first_len + HEADER.size + 5
    data[middle_payload : middle_payload + 4] = bytes(b ^ 0xFF for b in data[middle_payload : middle_payload + 4])
    path.write_bytes(bytes(data))
    report = ingest_spool(store, spool)
    assert report.records == 4 and report.new == 4
    assert len(report.problems) == 1 and path.name in report.problems[0]
    assert "checksum" in report.problems[0]
    assert messages(store) == ["m0", "m1", "m20", "m21"]
    problems = store.problems()
    assert [(p["segment"], p["problem"]) for p in problems] == [(path.name, report.problems[0])]
    # reported once: the offset moved past it
    assert ingest_spool(store, spool).problems == []
    assert len(store.problems()) == 1


def test_garbage_between_frames_and_a_torn_tail(tmp_path: Path, store: DuckStore) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    path = spool / segment_name(NODE, 1)
    good1 = frame(encoder.encode(logs(0, 1)))
    good2 = frame(encoder.encode(logs(1, 1)))
    tail = frame(encoder.encode(logs(2, 1)))
    path.write_bytes(good1 + b"\x00garbage\x00" + good2 + tail[:-3])
    with held_by_a_writer(path):
        report = ingest_spool(store, spool)
    assert messages(store) == ["m0", "m1"]
    assert len(report.problems) == 1 and "unreadable data" in report.problems[0]
    assert report.pending_bytes == len(tail) - 3


def test_a_crash_before_commit_loses_nothing_and_counts_nothing_twice(
    tmp_path: Path, store: DuckStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = tmp_path / "spool"
    w = SegmentWriter(spool, NODE)
    w.write(encoder.encode(logs(0, 5, trace="cc" * 16)))
    w.close()

    def crash(*args: Any) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr(store, "_summarise", crash)  # after the records are inserted, before the commit
    with pytest.raises(RuntimeError, match="power cut"):
        ingest_spool(store, spool)
    assert messages(store) == [] and stored_offsets(store) == {}
    monkeypatch.undo()
    report = ingest_spool(store, spool)
    assert (report.records, report.new) == (5, 5)
    (trace,) = store.traces()
    assert trace["record_count"] == 5 and trace["log_count"] == 5


def test_records_of_one_trace_in_many_batches(tmp_path: Path, store: DuckStore) -> None:
    spool = tmp_path / "spool"
    w = SegmentWriter(spool, NODE, max_bytes=400)  # rolls to a new segment every frame or two
    for start in range(0, 30, 3):
        w.write(encoder.encode(logs(start, 3, trace="dd" * 16)))
    w.close()
    assert len(list(spool.iterdir())) > 3
    report = ingest_spool(store, spool, batch_records=4)  # several transactions
    assert (report.records, report.new) == (30, 30)
    (trace,) = store.traces()
    assert (trace["record_count"], trace["start_ns"], trace["duration_ns"]) == (30, T0, 29 * MS)


def test_replaced_segment_is_read_again(tmp_path: Path, store: DuckStore) -> None:
    spool = tmp_path / "spool"
    first = logs(0, 5)
    w = SegmentWriter(spool, NODE)
    w.write(encoder.encode(first))
    w.close()
    ingest_spool(store, spool)
    path = spool / segment_name(NODE, 1)
    path.write_bytes(frame(encoder.encode(first[:1] + logs(50, 1))))  # smaller: a different file now
    report = ingest_spool(store, spool)
    assert report.new == 1 and any("shrank" in p for p in report.problems)
    assert len(messages(store)) == 6


def test_a_session_ingests_first_so_a_query_right_after_a_run_sees_everything(tmp_path: Path) -> None:
    home = tmp_path / "home"
    w = SegmentWriter(home / "spool", NODE)
    w.write(encoder.encode(logs(0, 3)))
    with open_session(home) as s:
        assert len(s.tail()) == 3
    w.write(encoder.encode(logs(3, 2)))
    with open_session(home) as s:
        assert [r["message"] for r in s.tail()] == ["m0", "m1", "m2", "m3", "m4"]
    w.write(encoder.encode(logs(5, 1)))
    with open_store(home) as s:
        assert len(s.tail()) == 5  # not ingested on request
        report = ingest_home(s, home)
        assert isinstance(report, IngestReport) and (report.records, report.new) == (1, 1)
        assert len(s.tail()) == 6
    w.close()


def test_empty_and_missing_spool(tmp_path: Path, store: DuckStore) -> None:
    assert ingest_spool(store, tmp_path / "missing") == IngestReport()
    (tmp_path / "spool").mkdir()
    (tmp_path / "spool" / segment_name(NODE, 1)).write_bytes(b"")
    report = ingest_spool(store, tmp_path / "spool")
    assert (report.records, report.new, report.problems, report.pending_bytes) == (0, 0, [], 0)


def test_reader_errors_surface_in_the_caller(tmp_path: Path, store: DuckStore, monkeypatch: pytest.MonkeyPatch) -> None:
    spool = tmp_path / "spool"
    w = SegmentWriter(spool, NODE)
    w.write(encoder.encode(logs(0, 1)))
    w.close()

    def broken(path: Path, offset: int = 0, **kwargs: Any) -> Any:
        raise MemoryError("decoder exploded")

    monkeypatch.setattr("zoomtrace.collect.spool_ingest.read_segment", broken)
    with pytest.raises(MemoryError, match="decoder exploded"):
        ingest_spool(store, spool)


def test_a_record_the_store_cannot_hold_is_skipped_not_blocking(tmp_path: Path, store: DuckStore) -> None:
    spool = tmp_path / "spool"
    good = logs(0, 3)
    bad_time = Record(id=uuid7(T0), kind="log", type="app", ts_ns=2**63 + 5, node_id=NODE, message="from the future")
    bad_cpu = Record(id=uuid7(T0), kind="span", type="busy", ts_ns=T0, node_id=NODE, cpu_ns=2**64 - 1)
    w = SegmentWriter(spool, NODE)
    w.write(encoder.encode([good[0], bad_time, good[1]]))
    w.write(encoder.encode([bad_cpu, good[2]]))
    w.close()
    report = ingest_spool(store, spool)
    assert (report.records, report.new) == (5, 3)
    assert messages(store) == ["m0", "m1", "m2"]
    assert len(report.problems) == 2
    assert bad_time.id in report.problems[0] and "ts_ns" in report.problems[0]
    assert bad_cpu.id in report.problems[1] and "cpu_ns" in report.problems[1]
    assert sorted(p["problem"] for p in store.problems()) == sorted(report.problems)
    again = ingest_spool(store, spool)  # the offset moved on: nothing is retried or reported twice
    assert (again.records, again.new, again.problems) == (0, 0, [])


def test_a_store_failure_mid_ingest_stops_reading_and_keeps_earlier_batches(
    tmp_path: Path, store: DuckStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    spool = tmp_path / "spool"
    for i, node in enumerate((NODE, OTHER, uuid7(T0 - 40_000 * MS), uuid7(T0 - 30_000 * MS))):
        w = SegmentWriter(spool, node)
        w.write(encoder.encode(logs(10 * i, 3, node=node)))
        w.close()
    real = store.write
    calls = []

    def failing(*args: Any, **kwargs: Any) -> WriteReport:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "write", failing)
    before = threading.active_count()
    with pytest.raises(OSError, match="disk full"):
        ingest_spool(store, spool, batch_records=3)  # one segment per batch
    assert threading.active_count() == before  # the writing thread is gone
    assert messages(store) == ["m0", "m1", "m2"]  # the first batch was committed, nothing after it
    monkeypatch.undo()
    report = ingest_spool(store, spool)
    assert (report.records, report.new) == (9, 9)
    assert len(messages(store)) == 12


def frames_of_two(tmp_path: Path, n: int) -> tuple[Path, Path]:
    """A spool of one segment holding ``n`` log records (m0, m1, …) in frames of two."""
    spool = tmp_path / "spool"
    w = SegmentWriter(spool, NODE)
    for start in range(0, n, 2):
        w.write_records(logs(start, 2))
    w.close()
    (segment,) = spool.iterdir()
    return spool, segment


def recorded_writes(store: DuckStore) -> list[tuple[int, dict[str, int]]]:
    """Each write of ``store`` from now on: how many records it added, and the offsets it stored."""
    writes: list[tuple[int, dict[str, int]]] = []
    real = store.write

    def recording(batch: Any, **kwargs: Any) -> WriteReport:
        report = real(batch, **kwargs)
        writes.append((report.new, dict(kwargs.get("offsets") or {})))
        return report

    store.write = recording  # type: ignore[method-assign]
    return writes


def test_a_batch_stops_at_the_frame_that_reaches_its_bytes(tmp_path: Path, store: DuckStore) -> None:
    """Batches are bounded by bytes as well as records: large records must not make a batch of gigabytes."""
    spool, segment = frames_of_two(tmp_path, 20)
    writes = recorded_writes(store)
    report = ingest_spool(store, spool, batch_records=1_000, batch_bytes=1)  # every frame reaches it
    assert (report.records, report.new) == (20, 20)
    assert [new for new, _ in writes] == [2] * 10
    offsets = [o[segment.name] for _, o in writes]
    assert offsets == sorted(set(offsets)) and offsets[-1] == segment.stat().st_size
    assert sorted(messages(store)) == sorted(f"m{i}" for i in range(20))


def test_a_segment_larger_than_a_batch_is_split_at_a_frame(tmp_path: Path, store: DuckStore) -> None:
    """Each transaction stores the offset it read up to: a crash between two loses nothing and stores nothing
    twice."""
    spool, segment = frames_of_two(tmp_path, 20)
    writes = recorded_writes(store)
    report = ingest_spool(store, spool, batch_records=6)
    assert (report.records, report.new) == (20, 20)
    news = [new for new, _ in writes]
    assert news == [6, 6, 6, 2] and sum(news) == 20  # whole frames of 2: batches stop at the first frame reaching 6
    offsets = [o[segment.name] for _, o in writes]
    assert offsets == sorted(offsets) and offsets[-1] == segment.stat().st_size
    assert sorted(messages(store)) == sorted(f"m{i}" for i in range(20))
