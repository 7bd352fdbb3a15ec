"""The pipeline: a bounded queue on the caller's side, one background worker on the other.

The caller's thread only appends a tuple to a ``deque`` (atomic, no lock). The
worker wakes every ``interval_s`` (or sooner when the queue fills up or someone
flushes), turns items into records with the encoder and writes them to the sinks
in batches, in slices of half a millisecond with the GIL handed over between them,
so that the application never waits for it long (``_drain``). A full queue drops
(or blocks up to a deadline, if so configured); every dropped or unwritable record
is counted and the counts are themselves recorded, never silent. The sinks count here too: the pipeline opens them with
``count_lost`` as their loss reporter, so ``lost`` is the one count of the process.
A few records are *held* instead when a sink cannot write them (``hold`` names them: the
node's *started* record, its latest ``lost`` count): they go ahead of that sink's next
batch, until it takes them (a full disk that has space again, say).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Literal, Protocol

from zoomtrace._native import speedups
from zoomtrace._stderr import WarnOnce
from zoomtrace.sinks import ReportLoss, Sink
from zoomtrace.wire.record import Record

OnFull = Literal["drop", "block"]


class _Flush:
    """A marker in the queue: everything before it is written when ``done`` is set."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class Put(Protocol):
    """The caller's side of the queue (``Pipeline.put``). The queue owns what it is given: a tuple must be one
    made for it, which nothing else refers to (the C ``Putter`` leaves it to reference counting, untracked by
    the garbage collector, which then need not walk the queue). An object of the pipeline's ``untracked`` type
    (a span) waits untracked too, and the encoder tracks it again when the worker takes it out."""

    turn_at: float
    woken: bool

    def __call__(self, item: object, /) -> None: ...


class PythonPutter:
    """``Pipeline.put``: append to the queue, wake the worker past ``wake_at`` items, hand a full queue's item
    to ``full``. The reference for the C ``Putter`` (``_speedups_caller.c``), which a log call made in C
    calls without a Python call (docs/ARCHITECTURE.md, "Native code")."""

    __slots__ = ("_full", "_maxsize", "_queue", "_wake", "_wake_at", "turn_at", "woken")

    def __init__(
        self, queue: deque[Any], maxsize: int, wake_at: int, wake: Callable[[], None], full: Callable[[object], None]
    ) -> None:
        self._queue, self._maxsize, self._wake_at, self._wake, self._full = queue, maxsize, wake_at, wake, full
        #: When the worker, waiting for the GIL after a slice, is to get it from the caller's next put
        #: (``time.monotonic()``; 0: it is not waiting).
        self.turn_at = 0.0
        #: ``wake`` was called since the worker last cleared its event (the worker resets it then): the puts past
        #: ``wake_at`` call it once, not each of them (``Event.set`` takes a lock and notifies, ≈0.5 µs, and a burst
        #: puts tens of thousands of items past it while the worker drains).
        self.woken = False

    def __call__(self, item: object, /) -> None:
        queue = self._queue
        if len(queue) < self._maxsize:
            queue.append(item)
            if len(queue) > self._wake_at and not self.woken:
                self.woken = True
                self._wake()
        else:
            self._full(item)
        if self.turn_at and time.monotonic() >= self.turn_at:
            self._give_turn()

    def _give_turn(self) -> None:
        """The worker waits for the GIL and the caller has had its turn: let the worker have it now.

        A thread that releases the GIL and takes it again at once (an event loop between callbacks)
        keeps it from a waiting thread until the interpreter's switch interval forces a switch; a real
        sleep (the shortest the timer gives, some 50 µs) is the one release that lets the worker in.
        The caller then waits for the worker's slice, which is short; holds no lock (signal-safe).
        """
        self.turn_at = 0.0
        time.sleep(1e-6)


class Pipeline:
    """The queue and its worker; ``open_sinks`` is given ``count_lost`` and returns the sinks to write to."""

    def __init__(
        self,
        encode: Callable[[tuple[Any, ...]], Record | None],
        open_sinks: Callable[[ReportLoss], list[Sink]],
        *,
        maxsize: int = 100_000,
        on_full: OnFull = "drop",
        block_timeout_s: float = 0.1,
        batch_size: int = 4096,
        interval_s: float = 0.05,
        slice_s: float = 0.0005,
        write_records: int = 128,
        extras: Callable[[], list[Record]] = list,
        hold: Callable[[Record], str | None] = lambda record: None,
        untracked: type | None = None,
    ) -> None:
        self._encode = encode
        self._extras = extras
        self._maxsize = maxsize
        self._wake_at = maxsize // 4
        self._on_full = on_full
        self._block_timeout_s = block_timeout_s
        self._batch_size = batch_size
        self._interval_s = interval_s
        self._slice_s = slice_s
        self._write_records = write_records
        self._queue: deque[Any] = deque()
        self._wake = threading.Event()
        #: Enqueue one item; never raises, never blocks longer than the configured deadline. Its ``turn_at``
        #: says when the worker, waiting for the GIL after a slice, is to get it from the caller's next put.
        #: With the C ``Putter``, objects of the ``untracked`` type wait in the queue untracked by the collector;
        #: ``encode`` must track them again (the encoder's C ``Dispatch`` does, for spans).
        self.put: Put = (
            PythonPutter(self._queue, maxsize, self._wake_at, self._wake.set, self._full)
            if speedups is None
            else speedups.Putter(self._queue, maxsize, self._wake_at, self._wake.set, self._full, untracked=untracked)
        )
        self._space = threading.Event()
        self._stopping = False
        #: Records lost, by reason ("queue_full", "encode_error", "sink_error:<sink>", and the sinks' own).
        self.lost: dict[str, int] = {}
        self.written = 0
        self._warn = WarnOnce()
        self._hold = hold
        self.sinks = open_sinks(self.count_lost)
        #: Per sink, the records it failed to write that it must get all the same, by ``hold``'s key (a newer
        #: record of the same key replaces the older): sent again ahead of that sink's next batch.
        self._held: list[dict[str, Record]] = [{} for _ in self.sinks]
        self._thread = threading.Thread(target=self._run, name="zoomtrace-pipeline", daemon=True)
        self._thread.start()

    # -- caller side ---------------------------------------------------------------

    def put_unbounded(self, item: object) -> None:
        """Enqueue past the bound: for the few lifecycle records (stopped, interrupted spans) that must not drop."""
        self._queue.append(item)
        self._wake.set()

    def _full(self, item: object) -> None:
        if self._on_full == "block" and threading.current_thread() is not self._thread:
            deadline = time.monotonic() + self._block_timeout_s
            while (left := deadline - time.monotonic()) > 0:
                self._space.clear()
                self._wake.set()
                if len(self._queue) < self._maxsize:  # the worker may have drained before the clear
                    self._queue.append(item)
                    return
                self._space.wait(left)
        self.count_lost("queue_full", 1)

    def count_lost(self, reason: str, n: int) -> None:
        """Count ``n`` records lost for ``reason``: the node's next ``lost`` record reports them."""
        # No lock: this runs on the caller's thread, possibly re-entered from a signal handler
        # (SIGTERM while the queue is full), where a lock held by the same thread would deadlock;
        # and on the sinks' threads.
        self.lost[reason] = self.lost.get(reason, 0) + n

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Write everything enqueued before this call; True if done within ``timeout``."""
        if threading.current_thread() is self._thread or not self._thread.is_alive():
            return False
        marker = _Flush()
        self._queue.append(marker)
        self._wake.set()
        return marker.done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Drain, stop the worker and close the sinks."""
        self._stopping = True
        self._wake.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
            if self._thread.is_alive():
                # Still writing (a stuck sink): closing under it could tear a frame; the OS closes files at exit.
                self._warn(
                    "close", f"the pipeline did not finish within {timeout:g} s; {len(self._queue)} items unsent"
                )
                return
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # a sink failing to close must not break the application's exit
                self._warn(f"close:{type(sink).__name__}", f"could not close {type(sink).__name__}: {exc}")

    # -- worker side ---------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval_s)
            self._wake.clear()
            self.put.woken = False  # after the clear: a put past wake_at from now on wakes it again
            try:
                self._drain()
            except Exception as exc:  # never let the worker die: records would pile up unseen
                self._warn("worker", f"pipeline worker error: {exc!r}")
            if self._stopping and not self._queue:
                return

    def _drain(self) -> None:
        """Encode and write everything queued, in slices of about ``slice_s`` of work each.

        The worker shares the GIL with the application, which waits up to the interpreter's switch
        interval (5 ms by default; the application's setting, left alone) for a thread that holds it.
        So the worker holds it for one slice at a time (a write takes at most ``write_records``
        records, its encoding holds the GIL too) and between slices hands it over (``_pause``).
        """
        queue = self._queue
        encode = self._encode
        clock = time.perf_counter
        records: list[Record] = []
        while True:
            stop = clock() + self._slice_s
            for _ in range(min(len(queue), self._batch_size)):
                item = queue.popleft()
                if type(item) is _Flush:
                    records.extend(self._extras())  # snapshots and repositories met while encoding
                    self._write(records)
                    records = []
                    self._flush_sinks()
                    item.done.set()
                else:
                    try:  # inline, not a helper: a Python call per record costs ~0.1 µs
                        record = encode(item)
                    except Exception as exc:
                        self.count_lost("encode_error", 1)
                        self._warn("encode", f"could not encode a record: {exc!r}")
                        record = None
                    if record is not None:
                        records.append(record)
                if clock() >= stop or len(records) >= self._write_records:
                    break
            self._space.set()
            if len(records) >= self._write_records or not queue:
                if records:
                    self._pause()
                # Even with nothing queued: a loss counted by a sink's thread, the records held for a sink.
                records.extend(self._extras())
                self._write(records)
                records = []
            if not queue:
                return
            self._pause()

    def _pause(self) -> None:
        """Between two slices: an application thread waiting for the GIL gets it, and the worker gets it
        back at the application's first ``put`` after its turn, a slice long, shorter as the backlog grows.
        Past a quarter of the queue's bound the worker catches up instead: no pause, the switch interval
        alone shares the GIL (and no switch every slice costs the worker its caches)."""
        backlog = len(self._queue)
        if backlog >= self._wake_at:
            return
        self.put.turn_at = time.monotonic() + self._slice_s * (1.0 - backlog / self._wake_at)
        time.sleep(0)
        self.put.turn_at = 0.0

    def _write(self, records: list[Record]) -> None:
        """Write a batch to every sink; a sink that fails loses it (counted), except the records held for it."""
        for sink, held in zip(self.sinks, self._held, strict=True):
            batch = [*held.values(), *records] if held else records
            if not batch:
                continue
            try:
                sink.write(batch)
            except Exception as exc:
                lost = 0
                for record in records:
                    key = self._hold(record)
                    if key is None:
                        lost += 1
                    else:
                        held[key] = record
                name = type(sink).__name__
                if lost:
                    self.count_lost(f"sink_error:{name}", lost)
                self._warn(
                    f"sink:{name}",
                    f"{name} could not write {len(batch)} records ({exc}); counting them as lost "
                    "(the node's started record and loss count are kept for the next write)",
                )
            else:
                held.clear()
        self.written += len(records)

    def _flush_sinks(self) -> None:
        for sink in self.sinks:
            try:
                sink.flush()
            except Exception as exc:
                self._warn(f"flush:{type(sink).__name__}", f"could not flush {type(sink).__name__}: {exc}")
