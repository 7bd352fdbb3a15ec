"""Replay: spooled segments back to Kafka, one at a time and in order.

A segment is deleted once every one of its records is acknowledged; until then it stays first
in the spool's queue, so an outage in the middle of a replay sends it again from the start
(delivery is at least once). Besides this node's own segments, the replayer adopts those of
exited processes in the same spool directory (their lock is free) and sends them with the
topics their ``meta.json`` names.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError

from zoomtrace._stderr import WarnOnce
from zoomtrace.sinks.kafka._producer import Lose, RecordProducer, Refused, Route, refusal
from zoomtrace.sinks.kafka._spool import KafkaSpool, read_meta, release, try_lock
from zoomtrace.wire import kafka_codec
from zoomtrace.wire.record import Record
from zoomtrace.wire.spool import SUFFIX, read_segment

#: A node record about the sink itself: ``(type, attrs)``.
Note = Callable[[str, dict[str, Any]], None]


@dataclass
class SegmentReplay:
    """One spool segment being sent to Kafka."""

    path: Path
    node_id: str
    records: list[Record]
    #: The last of this node's queued segments: once it is sent, nothing of ours waits.
    last_own: bool
    index: int = 0
    outstanding: int = 0
    failed: bool = False


@dataclass
class _Adopted:
    """An exited node's segments, adopted for replay, with its lock and route (None: its meta is unreadable)."""

    node_id: str
    lock_fd: int
    route: Route | None
    segments: int
    records: int = 0


class Replayer:
    """Sends the spool's queued segments, oldest first, ``batch`` records per step at most."""

    def __init__(
        self,
        spool: KafkaSpool,
        producer: RecordProducer,
        route: Route,
        *,
        bootstrap: str,
        batch: int,
        lose: Lose,
        note: Note,
        warn: WarnOnce,
    ) -> None:
        self._spool = spool
        self._producer = producer
        self._route = route
        self._bootstrap = bootstrap
        self.batch = batch
        self._lose = lose
        self._note = note
        self._warn = warn
        self.current: SegmentReplay | None = None
        #: Records replayed (their segment done) so far.
        self.replayed = 0
        self._adopted: dict[str, _Adopted] = {}

    # -- adopting exited nodes' segments --------------------------------------------------

    def adopt_leftovers(self) -> bool:
        """Queue the segments of exited processes (their lock is free), oldest node first; True if any."""
        directory = self._spool.directory
        if not directory.is_dir():
            return False
        by_node: dict[str, list[Path]] = {}
        try:
            for path in directory.iterdir():
                if path.name.endswith(SUFFIX):
                    by_node.setdefault(path.name.split(".", 1)[0], []).append(path)
        except OSError as exc:
            self._warn("scan", f"cannot list the Kafka spool {directory}: {exc}")
            return False
        adopted: list[Path] = []
        for node_id in sorted(by_node):
            if node_id == self._spool.node_id:
                continue
            try:
                fd = try_lock(directory, node_id)
            except OSError:
                continue
            if fd is None:
                continue  # a live process (or another replayer) owns these segments
            paths = sorted(by_node[node_id])
            self._adopted[node_id] = _Adopted(node_id, fd, self._route_from_meta(node_id), segments=len(paths))
            adopted.extend(paths)
        self._spool.adopt(adopted)
        return bool(adopted)

    def _route_from_meta(self, node_id: str) -> Route | None:
        try:
            meta = read_meta(self._spool.directory, node_id)
            topics = kafka_codec.TopicStrategy(
                str(meta.get("env") or "local"),
                str(meta.get("group") or "default"),
                str(meta.get("service") or ""),
                str(meta.get("topic") or kafka_codec.DEFAULT_TOPIC),
                str(meta.get("node_topic", kafka_codec.DEFAULT_NODE_TOPIC)),
            )
        except Exception:
            return None
        return Route.of(topics)

    def _route_for(self, node_id: str) -> Route:
        adopted = self._adopted.get(node_id)
        return adopted.route if adopted is not None and adopted.route is not None else self._route

    def release_adopted(self) -> None:
        """At close: let go of the adopted nodes not fully replayed (the next process takes them up)."""
        for adopted in list(self._adopted.values()):
            self._release(adopted, done=False)

    def _release(self, adopted: _Adopted, *, done: bool) -> None:
        self._adopted.pop(adopted.node_id, None)
        release(self._spool.directory, adopted.node_id, adopted.lock_fd, forget=done)
        if done:
            self._note(
                "kafka.replayed",
                {
                    "from_node_id": adopted.node_id,
                    "replayed": adopted.records,
                    "segments": adopted.segments,
                    "bootstrap": self._bootstrap,
                },
            )

    # -- replaying ------------------------------------------------------------------------

    def start(self) -> SegmentReplay | None:
        """Read the oldest queued segment for replay (None when none is left)."""
        spool = self._spool
        while spool.queue:
            path = spool.queue[0]
            node_id = path.name.split(".", 1)[0]
            own = node_id == spool.node_id
            if own and path == spool.current:
                if spool.current_is_empty:
                    # Every write to it failed (a full disk): closing it would only make the next write open
                    # another empty file, and replaying nothing would take the broker for back.
                    return None
                spool.complete_current()
            last_own = own and not spool.own_queued(skip_first=True)
            try:
                result = read_segment(path)
            except FileNotFoundError:
                spool.queue.popleft()  # read (and removed) by someone else, e.g. zoomtrace ingest
                continue
            except OSError as exc:
                self._warn("replay-read", f"cannot read spool segment {path}: {exc}")
                spool.queue.popleft()
                continue
            for problem in result.problems:
                self._warn(f"problem:{path.name}", f"Kafka spool: {problem}")
            if result.pending_bytes:
                self._warn(
                    f"torn:{path.name}",
                    f"Kafka spool: {path.name} ends with {result.pending_bytes} bytes of an incomplete frame",
                )
            self.current = SegmentReplay(path, node_id, result.records, last_own)
            return self.current
        return None

    def step(self) -> SegmentReplay | None:
        """Send up to ``batch`` more records of the current segment; returns it once it is done and removed."""
        replay = self.current
        assert replay is not None
        producer = self._producer
        route = self._route_for(replay.node_id)
        budget = self.batch
        while replay.index < len(replay.records) and budget > 0:
            record = replay.records[replay.index]
            try:
                key, value, headers = kafka_codec.encode(record, route.node)
            except Exception as exc:
                self._lose("kafka:encode_error", [record], str(exc))
                replay.index += 1
                continue
            ts = record.ts_ns // 1_000_000
            callback = functools.partial(self._on_delivery, replay, record)
            for topic in route.topics.topics(record.kind):
                outcome = producer.produce(topic, value, key, headers, ts=ts, callback=callback)
                if outcome is None:
                    replay.outstanding += 1
                elif isinstance(outcome, Refused):
                    self._lose(outcome.reason, [record], outcome.detail)
                    break
                else:  # the broker is away: the sink goes offline; this segment stays queued
                    producer.down_reason = producer.down_reason or outcome
                    return None
            replay.index += 1
            budget -= 1
        producer.poll(0)
        return self.finish_if_done()

    def finish_if_done(self) -> SegmentReplay | None:
        """Remove the current segment once every one of its records is acknowledged; returns it then."""
        replay = self.current
        if replay is None or replay.failed or replay.outstanding or replay.index < len(replay.records):
            return None
        self.current = None
        self._spool.remove(replay.path)
        n = len(replay.records)
        self.replayed += n
        adopted = self._adopted.get(replay.node_id)
        if adopted is not None:
            adopted.records += n
            if not any(p.name.startswith(replay.node_id + ".") for p in self._spool.queue):
                self._release(adopted, done=True)
        return replay

    def abandon(self) -> None:
        """An outage: forget the replay in progress; its segment, still first in the queue, is sent again later."""
        self.current = None

    def _on_delivery(self, replay: SegmentReplay, record: Record, err: KafkaError | None, _msg: Any) -> None:
        if replay is not self.current:
            return  # a replay abandoned at an outage
        replay.outstanding -= 1
        if self._producer.delivered(err):
            return
        assert err is not None
        refused = refusal(err)
        if refused is not None:
            self._lose(refused.reason, [record], refused.detail)
            return
        replay.failed = True
        self._producer.down_reason = self._producer.down_reason or f"replay delivery failed: {err.str()}"
