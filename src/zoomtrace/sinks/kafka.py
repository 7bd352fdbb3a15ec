"""Apache Kafka sink: every record to Kafka, and to a durable local spool while the broker is away.

URL: ``kafka://host:9092[,host2:9092][?option=value&...]``. Options named ``zoom.*`` are the
sink's own (see ``ZOOM_OPTIONS``); every other option is passed to librdkafka as is, e.g.
``kafka://k1:9092?linger.ms=5&compression.type=zstd&security.protocol=SSL``.

Delivery: an idempotent producer with ``acks=all``, lz4 compression and batching; the message
key is the record's trace id (``zoomtrace.wire.kafka_codec`` has the topic and message format).

Broker down: ``write`` runs on the pipeline's worker thread and never waits for the broker
beyond a bounded time. Deliveries are confirmed by callbacks; when the broker stops confirming
(no acknowledgement for ``zoom.spool_after_s`` while messages are outstanding, all brokers
down, a failed delivery, a full producer queue, or a ``flush`` that times out), every
unconfirmed record and every later one goes to the *Kafka spool*: segment files in the standard
spool format (``zoomtrace.wire.spool``) under ``<home>/spool-kafka/<node_id>.kafka.<seq>.zspool``. Every
``zoom.retry_interval_s`` (doubling up to 30 s) the sink replays the oldest segment; once the
broker acknowledges again, the segments are replayed in order, each deleted once all of its
records are acknowledged, and new records go directly to Kafka again. Memory stays bounded:
at most ``zoom.max_pending`` records await acknowledgement and one segment (``zoom.segment_bytes``)
is replayed at a time. Node records ``kafka.spooling``, ``kafka.replayed`` and, at close,
``kafka.sink`` carry the counts of spooled, replayed and lost records.

At close, records not acknowledged within ``zoom.close_timeout_s`` are written to the spool;
nothing is lost while the broker is down. Segments of a process that has exited are replayed by
the next process that uses this spool directory (a lock file ``<node_id>.lock`` held by a live
sink keeps others off its segments), or read into a local store by ``zoomtrace ingest``. A
``<node_id>.meta.json`` beside the segments keeps the node's topics for that replay.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from confluent_kafka import KafkaError, KafkaException, Producer

from zoomtrace.errors import ConfigError
from zoomtrace.wire import kafka_codec
from zoomtrace.wire.record import Record, encoder, uuid7
from zoomtrace.wire.spool import SUFFIX, frame, read_segment, segment_name

#: The sink's own URL options (``zoom.<name>``), with their types.
ZOOM_OPTIONS: Final[dict[str, type]] = {
    "topic": str,  # topic template, default {env}.{group}.{kind}
    "node_topic": str,  # extra topic of node lifecycle records, default {env}.zoom.node ("" disables)
    "env": str,  # override the node's env in topic names
    "group": str,  # override the node's group in topic names
    "spool": str,  # spool directory, default <home>/spool-kafka
    "spool_after_s": float,  # no acknowledgement for this long -> spool
    "flush_timeout_s": float,  # flush(): wait this long for acknowledgements, then spool the rest
    "close_timeout_s": float,  # close(): same
    "retry_interval_s": float,  # first retry after an outage (then doubling up to 30 s)
    "max_pending": int,  # records awaiting acknowledgement, at most
    "segment_bytes": int,  # size of a spool segment (and of the replay unit)
    "spool_max_bytes": int,  # spool size limit; records beyond it are counted lost
    "replay_batch": int,  # records replayed per write() call, at most
}

DEFAULT_PRODUCER_CONFIG: Final[dict[str, Any]] = {
    "enable.idempotence": True,
    "acks": "all",
    "compression.type": "lz4",
    "linger.ms": 20,
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 200_000,
    "queue.buffering.max.kbytes": 65_536,
    "message.timeout.ms": 60_000,
    # Room for a raw payload at the default limit (1 MiB) with its record; topics need max.message.bytes
    # to match (the broker default is 1 MiB): a record a topic refuses is counted in kafka.lost.
    "message.max.bytes": 4 * 1024 * 1024,
    # Java clients' default partitioner: the same key lands on the same partition from any language.
    "partitioner": "murmur2_random",
    # librdkafka would print every failed connection; the sink reports outages itself, once.
    "log_level": 0,
    "log.connection.close": False,
}

#: Delivery errors that belong to the record itself: retrying or spooling it cannot help.
_RECORD_ERRORS: Final = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.INVALID_MSG,
        KafkaError.INVALID_TIMESTAMP,
    }
)
_MAX_BACKOFF_S: Final = 10.0
#: While records wait in the spool, a helper thread probes and replays this often even if the
#: application records nothing (write() does the same work when it is called).
_TICK_S: Final = 0.2
#: At most one ``kafka.lost`` node record per reason this often (the close summary has every count).
_LOST_NOTE_INTERVAL_S: Final = 10.0
#: How long write() may wait for the producer's queue to drain before spooling instead.
_MAX_BLOCK_S: Final = 0.5


@dataclass
class _Replay:
    """One spool segment being sent to Kafka."""

    path: Path
    node_id: str
    records: list[Record]
    index: int = 0
    outstanding: int = 0
    acked: int = 0
    failed: bool = False


@dataclass
class _Foreign:
    """A dead node's segments adopted for replay, with its lock and topics."""

    node_id: str
    lock_fd: int
    strategy: kafka_codec.TopicStrategy | None
    node: dict[str, str]
    segments: int = 0
    records: int = 0


@dataclass
class Counts:
    sent: int = 0
    spooled: int = 0
    replayed: int = 0
    lost: dict[str, int] = field(default_factory=dict)


class KafkaSink:
    def __init__(
        self,
        bootstrap: str,
        *,
        home: Path,
        node_id: str,
        config: dict[str, Any] | None = None,
        topic: str = kafka_codec.DEFAULT_TOPIC,
        node_topic: str = kafka_codec.DEFAULT_NODE_TOPIC,
        env: str | None = None,
        group: str | None = None,
        spool: Path | str | None = None,
        spool_after_s: float = 5.0,
        flush_timeout_s: float = 3.0,
        close_timeout_s: float = 3.0,
        retry_interval_s: float = 1.0,
        max_pending: int = 50_000,
        segment_bytes: int = 4 * 1024 * 1024,
        spool_max_bytes: int = 1024 * 1024 * 1024,
        replay_batch: int = 20_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not bootstrap:
            raise ConfigError("kafka sink needs a bootstrap server: kafka://host:9092")
        self.bootstrap = bootstrap
        self.node_id = node_id
        self.spool_dir = Path(spool) if spool else home / "spool-kafka"
        self.topic_template, self.node_topic_template = topic, node_topic
        self._env_override, self._group_override = env, group
        self.spool_after_s, self.flush_timeout_s, self.close_timeout_s = spool_after_s, flush_timeout_s, close_timeout_s
        self.retry_interval_s, self.max_pending = retry_interval_s, max_pending
        self.segment_bytes, self.spool_max_bytes, self.replay_batch = segment_bytes, spool_max_bytes, replay_batch
        self._clock = clock
        self._config: dict[str, Any] = {
            **DEFAULT_PRODUCER_CONFIG,
            "client.id": f"zoomtrace-{node_id}",
            **(config or {}),
            "bootstrap.servers": bootstrap,
            "error_cb": self._on_error,
        }
        # Validate the strategy now so a bad template fails init(), not the worker.
        kafka_codec.TopicStrategy(env or "local", group or "default", "", topic, node_topic)
        self._producer = self._new_producer()
        self._lock = threading.RLock()
        self.counts = Counts()
        # -- direct sending
        self._seq = 0
        self._pending: dict[int, Record] = {}
        self._failed: list[tuple[int, Record]] = []
        self._strategy: kafka_codec.TopicStrategy | None = None
        self._node: dict[str, str] = {}
        # -- health
        self._online = True
        self._down_reason: str | None = None
        self._fatal = False
        self._all_down = False
        self._last_progress = clock()
        self._outstanding = 0  # our messages in the producer (direct + replay)
        self._confirmed = True  # an acknowledgement arrived since the last outage
        self._next_probe = 0.0
        self._backoff = retry_interval_s
        self._offline_since: float | None = None
        self._offline_counts = (0, 0)  # (spooled, replayed) at the start of the outage
        # -- spool
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._segment: Path | None = None
        self._segment_size = 0
        self._segment_seq = 0
        self._queue: deque[Path] = deque()  # segments awaiting replay, oldest first
        self._replay: _Replay | None = None
        self._foreign: dict[str, _Foreign] = {}
        self._scanned = False
        self._spool_bytes = 0
        self._closed = False
        self._closing = False
        self._warned: set[str] = set()
        self._notes: list[Record] = []
        self._ticker: threading.Thread | None = None
        self._lost_noted: dict[str, float] = {}
        self._record_error = ("", "")

    # -- construction --------------------------------------------------------------------

    @classmethod
    def from_url(cls, url: str, *, home: Path, node_id: str) -> KafkaSink:
        parts = urlsplit(url)
        if parts.scheme != "kafka":
            raise ConfigError(f"not a Kafka sink URL: {url!r} (use kafka://host:9092)")
        bootstrap = parts.netloc
        if not bootstrap or "@" in bootstrap:
            raise ConfigError(f"Kafka sink URL {url!r} needs host:port[,host:port] (credentials go in options)")
        kwargs: dict[str, Any] = {}
        config: dict[str, Any] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key.startswith("zoom."):
                name = key[5:]
                kind = ZOOM_OPTIONS.get(name)
                if kind is None:
                    raise ConfigError(
                        f"unknown Kafka sink option {key!r}: use one of " + ", ".join(f"zoom.{n}" for n in ZOOM_OPTIONS)
                    )
                try:
                    kwargs[name] = kind(value)
                except ValueError:
                    raise ConfigError(f"Kafka sink option {key}={value!r} is not a {kind.__name__}") from None
            else:
                config[key] = value
        return cls(bootstrap, home=home, node_id=node_id, config=config, **kwargs)

    def _new_producer(self) -> Producer:
        try:
            return Producer(self._config)
        except (KafkaException, ValueError, TypeError) as exc:
            raise ConfigError(f"bad Kafka producer configuration: {exc}") from None

    # -- Sink protocol -------------------------------------------------------------------

    def write(self, records: list[Record]) -> None:
        with self._lock:
            if self._strategy is None:
                self._learn_node(records)
            if self._closed:
                self._spool(records)
                return
            now = self._clock()
            self._service(now)
            if self._online:
                self._send(records)
            else:
                self._spool(records)
            if self._notes:
                notes, self._notes = self._notes, []
                (self._send if self._online else self._spool)(notes)
            self._service(self._clock())

    def flush(self) -> None:
        """Wait up to ``zoom.flush_timeout_s`` for acknowledgements; what is still unconfirmed then goes
        to the spool, so after flush every record is in Kafka or on local disk."""
        with self._lock:
            if self._closed:
                return
            self._drain(self.flush_timeout_s, "flush timed out")

    def close(self) -> None:
        if not self._lock.acquire(timeout=self.close_timeout_s + 5):
            self._warn("close", "Kafka sink busy at close; unsent records stay in the producer and may be lost")
            return
        try:
            if self._closed:
                return
            if self._strategy is None:
                self._learn_node([])
            self._closing = True  # finish what is in flight, start no new replay
            self._note("kafka.sink", self._summary())
            self._drain(self.close_timeout_s, "not acknowledged before close")
            self._closed = True
            if self._notes:  # the summary record, when it had to go to the spool
                notes, self._notes = self._notes, []
                self._spool(notes)
            self._close_segment(sync=True)
            for foreign in list(self._foreign.values()):
                self._release_foreign(foreign, done=False)
            self._release_own_lock()
            with contextlib.suppress(Exception):
                self._producer.purge(in_queue=True, in_flight=True, blocking=False)
                self._producer.poll(0)
        finally:
            self._lock.release()

    # -- node identity -------------------------------------------------------------------

    def _learn_node(self, records: list[Record]) -> None:
        attrs: dict[str, Any] | None = None
        for record in records:
            if record.kind == "node" and record.type == "started" and record.node_id == self.node_id:
                attrs = record.attrs
                break
        if attrs is None:
            from zoomtrace.runtime import lifecycle as _node

            active = _node.running()
            if active is not None and active.node_id == self.node_id:
                attrs = {"env": active.env, "group": active.group, "service": active.service}
        attrs = attrs or {}
        env = self._env_override or str(attrs.get("env") or "local")
        group = self._group_override or str(attrs.get("group") or "default")
        service = str(attrs.get("service") or "")
        self._node = {"service": service, "env": env, "group": group}
        self._strategy = kafka_codec.TopicStrategy(env, group, service, self.topic_template, self.node_topic_template)
        self._scan_leftovers()

    # -- direct sending ------------------------------------------------------------------

    def _send(self, records: list[Record]) -> None:
        strategy = self._strategy
        assert strategy is not None
        node = self._node
        pending = self._pending
        on_delivery = self._on_direct
        for i, record in enumerate(records):
            if len(pending) >= self.max_pending and not self._make_room():
                self._go_offline(f"more than {self.max_pending} records await acknowledgement")
                self._spool(records[i:])
                return
            try:
                key, value, headers = kafka_codec.encode(record, node)
            except Exception as exc:  # a record that cannot be encoded must not stop the others
                self._lose("encode_error", [record], str(exc))
                continue
            ts = record.ts_ns // 1_000_000
            for topic in strategy.topics(record.kind):
                self._seq += 1
                seq = self._seq
                pending[seq] = record
                outcome = self._produce(topic, value, key, headers, ts=ts, callback=functools.partial(on_delivery, seq))
                if outcome is None:
                    continue
                pending.pop(seq, None)
                if outcome == "record":
                    reason, detail = self._record_error
                    self._lose(reason, [record], detail)
                    break
                # The broker is unreachable or the producer is stuck: this record and the rest go to the spool.
                self._go_offline(outcome)
                self._spool(records[i:])
                return
        self._producer.poll(0)

    def _produce(
        self,
        topic: str,
        value: bytes,
        key: bytes,
        headers: kafka_codec.Headers,
        *,
        ts: int,
        callback: Callable[[KafkaError | None, Any], None],
    ) -> str | None:
        """Hand one message to the producer: None when done, "record" when Kafka refuses this record itself
        (``_record_error`` says why), else the reason the sink should go offline. Waits at most ``_MAX_BLOCK_S``."""
        deadline: float | None = None
        while True:
            try:
                self._producer.produce(topic, value, key, headers=headers, timestamp=ts, on_delivery=callback)
            except BufferError:
                now = self._clock()
                if deadline is None:
                    deadline = now + _MAX_BLOCK_S
                if now >= deadline or self._down_reason is not None:
                    return self._down_reason or "the producer queue stayed full"
                self._producer.poll(0.05)
                continue
            except KafkaException as exc:
                err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
                if err is not None and err.code() in _RECORD_ERRORS:
                    self._record_error = (f"kafka:{err.name()}", err.str())
                    return "record"
                if err is not None and err.fatal():
                    self._fatal = True
                return f"produce failed: {exc}"
            if self._outstanding == 0:
                self._last_progress = self._clock()
            self._outstanding += 1
            return None

    def _make_room(self) -> bool:
        deadline = self._clock() + _MAX_BLOCK_S
        while len(self._pending) >= self.max_pending:
            if self._clock() >= deadline or self._down_reason is not None:
                return False
            self._producer.poll(0.05)
        return True

    def _on_direct(self, seq: int, err: KafkaError | None, _msg: Any) -> None:
        record = self._pending.pop(seq, None)
        if record is None:
            return  # already spooled (abandoned at an outage or at close)
        self._outstanding -= 1
        if err is None:
            self.counts.sent += 1
            self._last_progress = self._clock()
            self._confirmed = True
            self._all_down = False
            return
        if err.code() in _RECORD_ERRORS:
            self._lose(f"kafka:{err.name()}", [record], err.str())
            return
        self._failed.append((seq, record))
        if self._down_reason is None:
            self._down_reason = f"delivery failed: {err.str()}"

    def _on_error(self, err: KafkaError) -> None:
        code = err.code()
        if err.fatal():
            self._fatal = True
            self._down_reason = self._down_reason or f"fatal producer error: {err.str()}"
        elif code == KafkaError._ALL_BROKERS_DOWN:
            # Reported once, when the last connection fails; an outage as soon as records wait for it
            # (until then it may be an idle connection closed by the broker). An acknowledgement clears it.
            self._all_down = True
        elif code in (KafkaError._AUTHENTICATION, KafkaError._SSL):
            self._down_reason = self._down_reason or f"cannot connect: {err.str()}"

    # -- health, outages and replay -------------------------------------------------------

    def _service(self, now: float) -> None:
        try:
            self._producer.poll(0)
        except Exception as exc:  # a failing callback must not stop the worker
            self._warn("poll", f"Kafka producer poll failed: {exc!r}")
        if self._down_reason is None and self._outstanding > 0:
            if self._online and self._all_down:
                self._down_reason = "all brokers are down"
            elif now - self._last_progress > self.spool_after_s:
                self._down_reason = f"no acknowledgement from Kafka for {now - self._last_progress:.1f}s"
        if self._down_reason is not None:
            self._go_offline(self._down_reason)
        self._replay_step(now)

    def _go_offline(self, reason: str) -> None:
        """Stop sending: purge the producer and move every unconfirmed record to the spool, in order."""
        self._down_reason = None
        self._all_down = False  # probes are judged by their acknowledgements
        was_online = self._online
        self._online = False
        self._confirmed = False
        now = self._clock()
        try:
            self._producer.purge(in_queue=True, in_flight=True, blocking=True)
        except Exception as exc:
            self._warn("purge", f"Kafka producer purge failed: {exc!r}")
        deadline = now + 1.0
        while self._pending and self._clock() < deadline:
            try:
                self._producer.poll(0.01)
            except Exception:
                break
        moved = sorted([*self._failed, *self._pending.items()], key=lambda pair: pair[0])
        self._failed = []
        self._pending = {}
        self._outstanding = 0
        if self._replay is not None:
            self._replay = None  # its segment is still first in the queue: replayed again later
        if self._fatal:
            self._fatal = False
            try:
                self._producer = self._new_producer()
            except ConfigError as exc:
                self._warn("recreate", f"cannot recreate the Kafka producer: {exc}")
        self._next_probe = now + self._backoff
        self._backoff = min(self._backoff * 2, _MAX_BACKOFF_S)
        self._ensure_ticker()
        if was_online:
            self._offline_since = now
            self._offline_counts = (self.counts.spooled, self.counts.replayed)
            self._warn("offline", f"Kafka at {self.bootstrap} unavailable ({reason}); spooling to {self.spool_dir}")
        seen: set[str] = set()
        records = []
        for _, record in moved:  # a node record went to two topics: spool it once
            if record.id not in seen:
                seen.add(record.id)
                records.append(record)
        if records:
            self._spool(records)
        if was_online or records:
            self._note(
                "kafka.spooling",
                {"reason": reason, "moved": len(records), "spool": str(self.spool_dir), "bootstrap": self.bootstrap},
            )
        self._down_reason = None  # set again by the purged messages' callbacks: this outage is handled

    def _replay_step(self, now: float) -> None:
        replay = self._replay
        if replay is None:
            if self._closing or not self._queue:
                return
            if not self._online and not self._confirmed and now < self._next_probe:
                return
            replay = self._start_replay()
            if replay is None:
                return
        budget = self.replay_batch
        strategy, node = self._strategy_for(replay.node_id)
        callback = functools.partial(self._on_replay, replay)
        while replay.index < len(replay.records) and budget > 0:
            record = replay.records[replay.index]
            try:
                key, value, headers = kafka_codec.encode(record, node)
            except Exception as exc:
                self._lose("encode_error", [record], str(exc))
                replay.index += 1
                continue
            ts = record.ts_ns // 1_000_000
            stop = False
            for topic in strategy.topics(record.kind):
                outcome = self._produce(topic, value, key, headers, ts=ts, callback=callback)
                if outcome is None:
                    replay.outstanding += 1
                elif outcome == "record":
                    reason, detail = self._record_error
                    self._lose(reason, [record], detail)
                    break
                else:
                    self._down_reason = self._down_reason or outcome
                    stop = True
                    break
            if stop:
                return
            replay.index += 1
            budget -= 1
        self._producer.poll(0)
        if replay.failed:
            return  # _service takes the sink offline; the segment stays queued
        if replay.index >= len(replay.records) and replay.outstanding == 0:
            self._finish_replay(replay)

    def _start_replay(self) -> _Replay | None:
        while self._queue:
            path = self._queue[0]
            node_id = path.name.split(".", 1)[0]
            own = node_id == self.node_id
            if own and path == self._segment:
                self._close_segment()  # complete it: later records go to a fresh segment
            last_own = own and not self._own_queued(skip_first=True)
            try:
                result = read_segment(path)
            except FileNotFoundError:
                self._queue.popleft()  # read (and removed) by someone else, e.g. zoomtrace ingest
                continue
            except OSError as exc:
                self._warn("replay-read", f"cannot read spool segment {path}: {exc}")
                self._queue.popleft()
                continue
            for problem in result.problems:
                self._warn(f"problem:{path.name}", f"Kafka spool: {problem}")
            if result.pending_bytes:
                self._warn(
                    f"torn:{path.name}",
                    f"Kafka spool: {path.name} ends with {result.pending_bytes} bytes of an incomplete frame",
                )
            replay = _Replay(path, node_id, result.records)
            self._replay = replay
            if last_own and not self._online and self._confirmed:
                # The broker answers again and this is the last of our segments: new records can go
                # directly, behind this segment's in the producer's queue, so order is kept.
                self._online = True
            return replay
        return None

    def _on_replay(self, replay: _Replay, err: KafkaError | None, _msg: Any) -> None:
        if replay is not self._replay:
            return  # a replay abandoned at an outage
        replay.outstanding -= 1
        self._outstanding -= 1
        if err is None:
            replay.acked += 1
            self._last_progress = self._clock()
            self._confirmed = True
            self._all_down = False
            return
        if err.code() in _RECORD_ERRORS:
            self._count_lost(f"kafka:{err.name()}", 1, err.str())
            return
        replay.failed = True
        self._down_reason = self._down_reason or f"replay delivery failed: {err.str()}"

    def _finish_replay(self, replay: _Replay) -> None:
        self._replay = None
        if self._queue and self._queue[0] == replay.path:
            self._queue.popleft()
        try:
            size = replay.path.stat().st_size
            replay.path.unlink()
            self._spool_bytes = max(0, self._spool_bytes - size)
        except FileNotFoundError:
            pass
        except OSError as exc:
            self._warn("unlink", f"cannot remove replayed spool segment {replay.path}: {exc}")
        n = len(replay.records)
        self.counts.replayed += n
        self._backoff = self.retry_interval_s
        foreign = self._foreign.get(replay.node_id)
        if foreign is not None:
            foreign.records += n
            if not any(p.name.startswith(replay.node_id + ".") for p in self._queue):
                self._release_foreign(foreign, done=True)
        elif replay.node_id == self.node_id and not self._own_queued() and self._fd is None:
            self._online = True
            if self._offline_since is not None:
                self._recovered()

    def _own_queued(self, *, skip_first: bool = False) -> bool:
        prefix = self.node_id + "."
        return any(p.name.startswith(prefix) for i, p in enumerate(self._queue) if i or not skip_first)

    def _recovered(self) -> None:
        """Every record of the outage is in Kafka: record how many went through the spool."""
        since, self._offline_since = self._offline_since, None
        spooled0, replayed0 = self._offline_counts
        attrs = {
            "spooled": self.counts.spooled - spooled0,
            "replayed": self.counts.replayed - replayed0,
            "offline_s": round(self._clock() - since, 3) if since is not None else None,
            "bootstrap": self.bootstrap,
        }
        self._note("kafka.replayed", attrs)
        self._warned.discard("offline")
        with contextlib.suppress(Exception):
            sys.stderr.write(
                f"zoomtrace: Kafka at {self.bootstrap} is back; {attrs['replayed']} spooled records replayed\n"
            )

    def _ensure_ticker(self) -> None:
        """Start the replay helper thread unless it runs (the spool must drain in an idle process too)."""
        if self._ticker is None and not self._closing:
            self._ticker = threading.Thread(target=self._tick_loop, name="zoomtrace-kafka-replay", daemon=True)
            self._ticker.start()

    def _tick_loop(self) -> None:
        while True:
            time.sleep(_TICK_S)
            if not self._lock.acquire(timeout=_TICK_S):
                continue  # write() is at work: it does the same
            try:
                idle = self._online and not self._queue and self._replay is None and self._outstanding == 0
                if self._closing or self._closed or (idle and not self._notes):
                    self._ticker = None
                    return
                self._service(self._clock())
                if self._notes:
                    notes, self._notes = self._notes, []
                    (self._send if self._online else self._spool)(notes)
            except Exception as exc:  # the helper must not die with records in the spool
                self._warn("ticker", f"Kafka sink replay helper: {exc!r}")
            finally:
                self._lock.release()

    def _drain(self, timeout: float, reason: str) -> None:
        """Wait up to ``timeout`` for the records sent directly; spool those still unconfirmed then.

        A replay in progress is waited for only while the broker answers (its records are safe in
        their segment anyway, which stays queued until every one of them is acknowledged).
        """
        deadline = self._clock() + timeout
        self._service(self._clock())
        if self._online and self._notes:
            notes, self._notes = self._notes, []
            self._send(notes)

        def waiting() -> bool:
            replaying = self._online and self._replay is not None and self._replay.outstanding > 0
            return bool(self._pending) or replaying

        while waiting() and self._clock() < deadline and self._down_reason is None:
            try:
                self._producer.poll(min(0.05, max(0.0, deadline - self._clock())))
            except Exception:
                break
            if self._online and self._all_down and self._pending:
                self._down_reason = "all brokers are down"
            if self._replay is not None and self._online:
                self._replay_step(self._clock())
        if self._pending or self._down_reason is not None:
            self._go_offline(self._down_reason or reason)
        elif (
            self._replay is not None
            and self._replay.outstanding == 0
            and self._replay.index >= len(self._replay.records)
        ):
            self._finish_replay(self._replay)

    # -- the spool ------------------------------------------------------------------------

    def _spool(self, records: list[Record]) -> None:
        if not records:
            return
        if self._spool_bytes >= self.spool_max_bytes:
            self._lose("spool_full", records, f"the Kafka spool {self.spool_dir} holds {self._spool_bytes} bytes")
            return
        data = frame(encoder.encode(records))
        try:
            fd = self._segment_fd()
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(f"short write to the Kafka spool ({written} of {len(data)} bytes)")
        except OSError as exc:
            self._close_segment()
            self._lose("spool_error", records, str(exc))
            return
        self._segment_size += written
        self._spool_bytes += written
        self.counts.spooled += len(records)

    def _segment_fd(self) -> int:
        if self._fd is not None and self._segment_size < self.segment_bytes:
            return self._fd
        self._close_segment()
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self._take_own_lock()
        while True:
            self._segment_seq += 1
            # "<node_id>.kafka.<seq>.zspool": never the name of one of the node's embedded spool segments,
            # so `zoomtrace ingest`, which remembers offsets by segment name, can read both directories.
            path = self.spool_dir / segment_name(f"{self.node_id}.kafka", self._segment_seq)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
            except FileExistsError:
                continue
            self._fd, self._segment, self._segment_size = fd, path, 0
            self._queue.append(path)
            return fd

    def _close_segment(self, sync: bool = False) -> None:
        fd, self._fd = self._fd, None
        self._segment = None
        if fd is not None:
            with contextlib.suppress(OSError):
                if sync:
                    os.fsync(fd)
                os.close(fd)

    def _take_own_lock(self) -> None:
        if self._lock_fd is not None:
            return
        fd = os.open(self.spool_dir / f"{self.node_id}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._lock_fd = fd
        meta = {
            "node_id": self.node_id,
            **self._node,
            "topic": self.topic_template,
            "node_topic": self.node_topic_template,
            "bootstrap": self.bootstrap,
        }
        tmp = self.spool_dir / f".{self.node_id}.meta.json.tmp"
        tmp.write_text(json.dumps(meta))
        tmp.replace(self.spool_dir / f"{self.node_id}.meta.json")

    def _release_own_lock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is None:
            return
        if not any(p.name.startswith(self.node_id + ".") for p in self._queue):
            for name in (f"{self.node_id}.meta.json", f"{self.node_id}.lock"):
                with contextlib.suppress(OSError):
                    (self.spool_dir / name).unlink()
        with contextlib.suppress(OSError):
            os.close(fd)

    def _scan_leftovers(self) -> None:
        """Adopt the segments of exited processes (their lock is free) for replay, oldest node first."""
        if self._scanned:
            return
        self._scanned = True
        if not self.spool_dir.is_dir():
            return
        by_node: dict[str, list[Path]] = {}
        try:
            for path in self.spool_dir.iterdir():
                if path.name.endswith(SUFFIX):
                    by_node.setdefault(path.name.split(".", 1)[0], []).append(path)
        except OSError as exc:
            self._warn("scan", f"cannot list the Kafka spool {self.spool_dir}: {exc}")
            return
        adopted: list[Path] = []
        for node_id in sorted(by_node):
            if node_id == self.node_id:
                continue
            try:
                fd = os.open(self.spool_dir / f"{node_id}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)  # a live process (or another replayer) owns these segments
                continue
            strategy, node = self._foreign_strategy(node_id)
            paths = sorted(by_node[node_id])
            self._foreign[node_id] = _Foreign(node_id, fd, strategy, node, segments=len(paths))
            adopted.extend(paths)
            for path in paths:
                with contextlib.suppress(OSError):
                    self._spool_bytes += path.stat().st_size
        self._queue.extendleft(reversed(adopted))
        if adopted:
            self._ensure_ticker()

    def _foreign_strategy(self, node_id: str) -> tuple[kafka_codec.TopicStrategy | None, dict[str, str]]:
        try:
            meta = json.loads((self.spool_dir / f"{node_id}.meta.json").read_text())
            node = {k: str(meta.get(k) or "") for k in ("service", "env", "group")}
            strategy = kafka_codec.TopicStrategy(
                node["env"] or "local",
                node["group"] or "default",
                node["service"],
                str(meta.get("topic") or kafka_codec.DEFAULT_TOPIC),
                str(meta.get("node_topic", kafka_codec.DEFAULT_NODE_TOPIC)),
            )
            return strategy, node
        except Exception:
            return None, {}

    def _strategy_for(self, node_id: str) -> tuple[kafka_codec.TopicStrategy, dict[str, str]]:
        foreign = self._foreign.get(node_id)
        if foreign is not None and foreign.strategy is not None:
            return foreign.strategy, foreign.node
        assert self._strategy is not None
        return self._strategy, self._node

    def _release_foreign(self, foreign: _Foreign, *, done: bool) -> None:
        self._foreign.pop(foreign.node_id, None)
        if done:
            for name in (f"{foreign.node_id}.meta.json", f"{foreign.node_id}.lock"):
                with contextlib.suppress(OSError):
                    (self.spool_dir / name).unlink()
            self._note(
                "kafka.replayed",
                {
                    "from_node_id": foreign.node_id,
                    "replayed": foreign.records,
                    "segments": foreign.segments,
                    "bootstrap": self.bootstrap,
                },
            )
        with contextlib.suppress(OSError):
            os.close(foreign.lock_fd)

    # -- reporting ------------------------------------------------------------------------

    def _summary(self) -> dict[str, Any]:
        in_spool = sum(1 for p in self._queue if p.name.startswith(self.node_id + "."))
        return {
            "sent": self.counts.sent,
            "spooled": self.counts.spooled,
            "replayed": self.counts.replayed,
            "lost": dict(self.counts.lost),
            "spool_segments": in_spool,
            "awaiting_ack": self._outstanding,
            "online": self._online,
            "bootstrap": self.bootstrap,
        }

    def _note(self, type_: str, attrs: dict[str, Any]) -> None:
        """A node record about the sink itself, written with the next batch (to Kafka or the spool)."""
        ts = time.time_ns()
        self._notes.append(Record(id=uuid7(ts), kind="node", type=type_, ts_ns=ts, node_id=self.node_id, attrs=attrs))

    def _lose(self, reason: str, records: list[Record], detail: str) -> None:
        self._count_lost(reason, len(records), detail)
        if reason in ("spool_error", "spool_full") or all(r.type.startswith("kafka.") for r in records):
            return  # these could not be written either; the counts go into the kafka.sink summary
        now = self._clock()
        if now - self._lost_noted.get(reason, -_LOST_NOTE_INTERVAL_S) >= _LOST_NOTE_INTERVAL_S:
            self._lost_noted[reason] = now
            self._note(
                "kafka.lost",
                {
                    "reason": reason,
                    "count": len(records),
                    "detail": detail[:500],
                    "ids": [r.id for r in records[:10]],
                    "total": self.counts.lost[reason],
                },
            )

    def _count_lost(self, reason: str, n: int, detail: str) -> None:
        self.counts.lost[reason] = self.counts.lost.get(reason, 0) + n
        self._warn(f"lost:{reason}", f"Kafka sink lost {n} records ({reason}: {detail})")

    def _warn(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            with contextlib.suppress(Exception):
                sys.stderr.write(f"zoomtrace: {message}\n")
