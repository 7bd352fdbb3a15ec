"""The pipeline's worker in slices (issue 13, item 3): it writes at most ``write_records`` records at a time, in
order, keeping flush and loss counts across slices; and a caller's ``put`` hands the GIL back to a worker whose
turn has come. The time a slice takes is measured by ``bench/gil_hold.py``, not here."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from zoomtrace.runtime.pipeline import Pipeline
from zoomtrace.sinks import ReportLoss, Sink
from zoomtrace.sinks.spool import SpoolSink
from zoomtrace.wire.record import Record, uuid7
from zoomtrace.wire.spool import read_segment, segments

T0 = 1_800_000_000_000_000_000


def log(i: int) -> Record:
    return Record(id=uuid7(T0 + i), kind="log", type="app", ts_ns=T0 + i, node_id="n", message=f"m{i}")


def encode(item: tuple[Any, ...]) -> Record | None:
    """The item carries its record; ``None`` stands for an item that cannot be encoded."""
    if item[0] is None:
        raise ValueError("unencodable")
    record: Record = item[0]
    return record


class Batches:
    """A real spool sink that keeps the size of every batch it is given."""

    def __init__(self, real: SpoolSink) -> None:
        self.real = real
        self.sizes: list[int] = []

    def write(self, records: list[Record]) -> None:
        self.sizes.append(len(records))
        self.real.write(records)

    def flush(self) -> None:
        self.real.flush()

    def close(self) -> None:
        self.real.close()


@pytest.fixture
def sink(tmp_path: Path) -> Batches:
    return Batches(SpoolSink(tmp_path / "spool", "n"))


@pytest.fixture
def pipeline(sink: Batches) -> Iterator[Pipeline]:
    def open_sinks(report_loss: ReportLoss) -> list[Sink]:
        return [sink]

    # The worker wakes only on flush (an hour's interval): every item is queued before it drains.
    p = Pipeline(encode, open_sinks, interval_s=3600, write_records=5)
    try:
        yield p
    finally:
        p.close()


def written(tmp_path: Path) -> list[str | None]:
    return [record.message for path in segments(tmp_path / "spool") for record in read_segment(path).records]


def test_writes_take_at_most_write_records_records_in_order(pipeline: Pipeline, sink: Batches, tmp_path: Path) -> None:
    for i in range(12):
        pipeline.put((log(i),))
    pipeline.put((None,))  # fails to encode in the middle of a slice: counted, the rest written
    for i in range(12, 23):
        pipeline.put((log(i),))
    assert pipeline.flush()
    assert written(tmp_path) == [f"m{i}" for i in range(23)]
    assert sink.sizes and max(sink.sizes) <= 5
    assert pipeline.lost == {"encode_error": 1}
    assert pipeline.written == 23


def test_flush_between_slices_writes_everything_before_it(pipeline: Pipeline, tmp_path: Path) -> None:
    for i in range(7):
        pipeline.put((log(i),))
    assert pipeline.flush()
    assert written(tmp_path) == [f"m{i}" for i in range(7)]
    for i in range(7, 9):
        pipeline.put((log(i),))
    assert pipeline.flush()
    assert written(tmp_path) == [f"m{i}" for i in range(9)]


def test_a_put_gives_the_worker_its_turn_once_it_is_due(pipeline: Pipeline) -> None:
    pipeline.put.turn_at = time.monotonic() + 3600  # the worker waits, but the caller's turn is not over
    pipeline.put((log(0),))
    assert pipeline.put.turn_at != 0.0
    pipeline.put.turn_at = time.monotonic()  # the caller's turn is over: this put hands the GIL over
    pipeline.put((log(1),))
    assert pipeline.put.turn_at == 0.0


def test_extras_are_written_with_nothing_queued(tmp_path: Path) -> None:
    """A loss counted on a sink's thread (the node's ``lost`` record, an extra) is written by the worker's next
    wake-up, without waiting for an item or a flush."""
    written_extra = threading.Event()
    extras: list[Record] = []

    class Signalling(Batches):
        def write(self, records: list[Record]) -> None:
            super().write(records)
            if any(record.message == "extra" for record in records):
                written_extra.set()

    signalling = Signalling(SpoolSink(tmp_path / "spool", "n"))
    p = Pipeline(
        encode, lambda report_loss: [signalling], interval_s=0.01, extras=lambda: [extras.pop()] if extras else []
    )
    try:
        extras.append(Record(id=uuid7(T0), kind="node", type="lost", ts_ns=T0, node_id="n", message="extra"))
        assert written_extra.wait(30)
    finally:
        p.close()


def test_the_worker_is_woken_once_per_burst_and_again_after_it_drained(tmp_path: Path) -> None:
    """Puts past a quarter of the bound wake the worker once (``woken``), not each (``Event.set`` is ≈0.5 µs, and a
    burst makes tens of thousands of such puts while the worker drains); the worker resets that once it has cleared
    its event, so the next burst wakes it again. With an hour's interval, only those wake-ups get anything written."""
    counts: list[int] = []
    arrived = threading.Condition()

    class Counting(Batches):
        def write(self, records: list[Record]) -> None:
            super().write(records)
            with arrived:
                counts.append(len(records))
                arrived.notify_all()

    counting = Counting(SpoolSink(tmp_path / "spool", "n"))
    p = Pipeline(encode, lambda report_loss: [counting], maxsize=8, interval_s=3600)  # wakes past 2 queued
    try:
        for burst in range(3):
            for i in range(3 * burst, 3 * burst + 3):
                p.put((log(i),))
            with arrived:
                assert arrived.wait_for(lambda burst=burst: sum(counts) == 3 * (burst + 1), timeout=30)
        assert written(tmp_path) == [f"m{i}" for i in range(9)]
    finally:
        p.close()
