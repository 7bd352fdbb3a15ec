"""The shared write path (``zoomtrace.collect._batching``) on a real DuckDB store and on stores that fail on purpose:
retries, the second chance of refused records, and the helper thread that writes one batch at a time."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from zoomtrace._gil import SHORT_TURN_S
from zoomtrace.collect._batching import (
    Background,
    BatchWriter,
    KeptSession,
    Retry,
    Target,
    Written,
    home_target,
    open_target,
)
from zoomtrace.errors import StoreError
from zoomtrace.store import Problem, WriteReport, open_store, prepare_for
from zoomtrace.store.duckdb import DuckStore
from zoomtrace.wire.record import Record, json_encoder, uuid7

T0 = 1_800_000_000_000_000_000
NO_WAIT = Retry(attempts=2, delay_s=0.0)


def logs(n: int, start: int = 0) -> list[Record]:
    return [
        Record(id=uuid7(T0 + i), kind="log", type="app", ts_ns=T0 + i, node_id="n", message=f"m{i}")
        for i in range(start, start + n)
    ]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckStore]:
    s = DuckStore(tmp_path / "store.duckdb")
    try:
        yield s
    finally:
        s.close()


class Flaky:
    """A store in front of a real one that fails its first ``fail_batches`` writes and refuses the records in
    ``refuse`` (each up to ``times`` times, counted per record id)."""

    def __init__(self, real: DuckStore, *, fail_batches: int = 0, refuse: Sequence[str] = (), times: int = 1) -> None:
        self.real, self.fail_batches, self.times = real, fail_batches, times
        self.refusals = dict.fromkeys(refuse, 0)
        self.sessions = 0

    def prepare(self, records: list[Record], lines: Sequence[bytes] = ()) -> tuple[list[str], Any]:
        return [r.id for r in records], self.real.prepare(records, lines)

    def write(
        self, batch: Any, *, offsets: Mapping[str, int] | None = None, problems: Sequence[Problem] = ()
    ) -> WriteReport:
        ids, prepared = batch
        if self.fail_batches:
            self.fail_batches -= 1
            raise OSError("disk hiccup")
        for record_id in ids:
            if record_id in self.refusals and self.refusals[record_id] < self.times:
                self.refusals[record_id] += 1
                raise OSError(f"refusing {record_id}")
        return self.real.write(prepared, offsets=offsets, problems=problems)

    def target(self) -> Target:
        @contextlib.contextmanager
        def session() -> Iterator[Flaky]:
            self.sessions += 1
            yield self

        return Target(self.prepare, session)


def stored_ids(store: DuckStore) -> set[str]:
    return {row[0] for row in store.sql("SELECT id FROM records")[1]}


def test_a_batch_with_its_offsets_and_problems_in_one_write(store: DuckStore) -> None:
    writer = BatchWriter(open_target(store))
    records = logs(3)
    batch = writer.batch(records + records[:1], offsets={"seg-1": 120}, problems=[("seg-1", "bad frame")])
    assert batch.records == []  # without a Retry the records are not kept
    assert writer.write(batch) == Written(new=3, stored=4, skipped=[])
    assert store.offsets() == {"seg-1": 120}
    assert [p["problem"] for p in store.problems()] == ["bad frame"]
    assert writer.write(writer.batch(records)).new == 0  # idempotent by id


def test_without_retry_a_failed_write_raises_at_once(store: DuckStore) -> None:
    flaky = Flaky(store, fail_batches=1)
    writer = BatchWriter(flaky.target())
    with pytest.raises(OSError, match="disk hiccup"):
        writer.write(writer.batch(logs(2)))
    assert flaky.sessions == 1 and stored_ids(store) == set()


def test_a_failed_write_is_tried_again_in_a_new_session(store: DuckStore, capsys: pytest.CaptureFixture[str]) -> None:
    flaky = Flaky(store, fail_batches=1)
    writer = BatchWriter(flaky.target(), retry=NO_WAIT)
    assert writer.write(writer.batch(logs(3))) == Written(new=3, stored=3)
    assert flaky.sessions == 2
    assert "store write of 3 records failed (attempt 1): disk hiccup" in capsys.readouterr().err


def test_a_record_refused_once_gets_a_second_chance(store: DuckStore, capsys: pytest.CaptureFixture[str]) -> None:
    records = logs(4)
    flaky = Flaky(store, fail_batches=2, refuse=[records[1].id], times=1)
    writer = BatchWriter(flaky.target(), retry=NO_WAIT)
    written = writer.write(writer.batch(records, problems=[("kafka:t[0]@7", "malformed message skipped")]))
    assert written == Written(new=4, stored=4, skipped=[], refused=0)
    assert stored_ids(store) == {r.id for r in records}
    assert [p["problem"] for p in store.problems()] == ["malformed message skipped"]  # kept after one by one
    assert "refused" not in capsys.readouterr().err


def test_json_lines_are_written_one_by_one_too(store: DuckStore) -> None:
    records = logs(6)
    lenient = json_encoder.encode(records[5]).replace(b'"message":"m5"', b'"message":5')  # stored as its text
    block = json_encoder.encode_lines(records[2:5]) + b'{"not": "a record"}\n' + lenient + b"\n"
    flaky = Flaky(store, fail_batches=2, refuse=[records[1].id], times=1)  # its second chance comes after the lines
    writer = BatchWriter(flaky.target(), retry=NO_WAIT)
    batch = writer.batch(records[:2], lines=[block], line_count=5)
    assert batch.size == 7 and batch.lines == [block]  # kept for the Retry
    written = writer.write(batch)
    assert (written.new, written.stored, written.refused) == (6, 7, 0)  # the bad line was handed on, and left out
    assert len(written.skipped) == 1 and "does not decode" in written.skipped[0]
    assert stored_ids(store) == {r.id for r in records}
    assert store.record(records[5].id)["message"] == "5"  # as the batch would have stored it
    assert [p["problem"] for p in store.problems()] == written.skipped  # kept among the store's problems


def test_a_record_refused_twice_is_skipped_and_reported(store: DuckStore, capsys: pytest.CaptureFixture[str]) -> None:
    records = logs(4)
    flaky = Flaky(store, fail_batches=2, refuse=[records[2].id], times=2)
    writer = BatchWriter(flaky.target(), retry=NO_WAIT)
    assert writer.write(writer.batch(records)) == Written(new=3, stored=3, skipped=[], refused=1)
    assert stored_ids(store) == {r.id for r in records} - {records[2].id}
    assert f"store refused record {records[2].id} (log/app) twice" in capsys.readouterr().err


def test_a_store_refusing_everything_stops_the_writer(store: DuckStore) -> None:
    records = logs(2)
    flaky = Flaky(store, fail_batches=2, refuse=[r.id for r in records], times=2)
    writer = BatchWriter(flaky.target(), retry=NO_WAIT)
    with pytest.raises(StoreError, match=r"refuses every record \(2\); stopping without committing"):
        writer.write(writer.batch(records))
    assert stored_ids(store) == set()


def test_background_writes_in_order_and_reports_on_the_callers_thread(store: DuckStore) -> None:
    writer = BatchWriter(open_target(store))
    seen: list[tuple[int, str]] = []
    before = threading.active_count()
    with Background(writer, name="test-store") as background:
        for start in (0, 10, 20):
            batch = writer.batch(logs(5, start))
            background.submit(batch, lambda w: seen.append((w.new, threading.current_thread().name)))
    assert seen == [(5, threading.current_thread().name)] * 3
    assert len(stored_ids(store)) == 15
    assert threading.active_count() == before


def test_background_raises_a_write_error_at_the_next_hand_over(store: DuckStore) -> None:
    flaky = Flaky(store, fail_batches=1)
    writer = BatchWriter(flaky.target())
    background = Background(writer, name="test-store")
    with pytest.raises(OSError, match="disk hiccup"), background:
        background.submit(writer.batch(logs(1)), lambda w: None)
        background.submit(writer.batch(logs(1, 5)), lambda w: None)
    assert stored_ids(store) == set()  # the batch after the failed one was never written


def test_background_shortens_the_gil_turn_while_it_runs_and_gives_the_old_one_back(store: DuckStore) -> None:
    """The writing thread needs the GIL between two of the store's statements, the reading one holds it: turns
    are SHORT_TURN_S while a Background runs (overlapping ones too), the old turn after, on an error too."""
    old = sys.getswitchinterval()
    writer = BatchWriter(open_target(store))
    turns: list[float] = []
    with Background(writer, name="test-store") as background:
        turns.append(sys.getswitchinterval())
        with Background(writer, name="test-store-2"):
            turns.append(sys.getswitchinterval())
        turns.append(sys.getswitchinterval())  # the first one still runs
        background.submit(writer.batch(logs(2)), lambda w: turns.append(sys.getswitchinterval()))
    assert turns == [pytest.approx(SHORT_TURN_S, rel=0.05)] * 4  # kept in whole microseconds
    assert sys.getswitchinterval() == old
    with pytest.raises(RuntimeError, match="reader failed"), Background(writer, name="test-store"):
        raise RuntimeError("reader failed")
    assert sys.getswitchinterval() == old


def test_a_turn_shorter_already_is_left_as_it_is(store: DuckStore) -> None:
    old = sys.getswitchinterval()
    sys.setswitchinterval(SHORT_TURN_S / 5)
    try:
        with Background(BatchWriter(open_target(store)), name="test-store"):
            assert sys.getswitchinterval() == pytest.approx(SHORT_TURN_S / 5, rel=0.05)
        assert sys.getswitchinterval() == pytest.approx(SHORT_TURN_S / 5, rel=0.05)
    finally:
        sys.setswitchinterval(old)


def busy(home: Path) -> bool:
    """Whether another session holds the store of ``home`` (an embedded store's lock)."""
    try:
        with open_store(home, timeout_s=0.05):
            return False
    except StoreError as exc:
        assert "busy" in str(exc)
        return True


def test_a_kept_session_holds_the_store_across_writes_until_released(tmp_path: Path) -> None:
    target = home_target(tmp_path, hold_s=60)
    writer = BatchWriter(target)
    records = logs(4)
    assert writer.write(writer.batch(records[:2])) == Written(new=2, stored=2)
    assert busy(tmp_path)  # still open after the write
    assert writer.write(writer.batch(records[2:])) == Written(new=2, stored=2)
    target.release()
    assert not busy(tmp_path)
    with open_store(tmp_path) as store:
        assert {row[0] for row in store.sql("SELECT id FROM records")[1]} == {r.id for r in records}


def test_a_kept_session_ends_once_held_long_enough_and_after_a_failed_write(tmp_path: Path) -> None:
    kept = KeptSession(lambda: open_store(tmp_path, create=True), hold_s=1e-9, gap_s=0.0)
    target = Target(prepare_for(tmp_path), kept.session, kept.release)
    writer = BatchWriter(target)
    assert writer.write(writer.batch(logs(1))) == Written(new=1, stored=1)
    assert not busy(tmp_path)  # held past hold_s: closed after the write
    kept.hold_s = 60
    with pytest.raises(OSError, match="disk hiccup"), kept.session():
        assert busy(tmp_path)
        raise OSError("disk hiccup")
    assert not busy(tmp_path)  # a retry gets a new session
