"""Direct sending: records to Kafka through one confluent-kafka producer, confirmed by delivery callbacks.

``RecordProducer`` also judges the broker's health from what the producer reports (a failed
delivery, all brokers down while messages wait, no acknowledgement for a while, a fatal error)
but decides nothing: it names the outage (``down_reason``) and, when the sink stops sending,
hands back every record not yet confirmed, in order, for the sink to spool.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from confluent_kafka import KafkaError, KafkaException, Producer

from zoomtrace._stderr import WarnOnce
from zoomtrace.errors import ConfigError
from zoomtrace.wire import kafka_codec
from zoomtrace.wire.record import Record

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
    # After an outage, try the broker again at least every second (librdkafka: up to 10 s), so that
    # records written once it is back are acknowledged within the sink's flush and close timeouts.
    "reconnect.backoff.max.ms": 1000,
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
#: How long sending may wait for the producer's queue to drain before the sink spools instead.
_MAX_BLOCK_S: Final = 0.5

#: An "all brokers are down" report made within this time is taken as current even with no record waiting.
_FRESH_S: Final = 1.0

#: The sink's account of records it gives up on: ``(reason, records, detail)``.
Lose = Callable[[str, list[Record], str], None]
DeliveryCallback = Callable[[KafkaError | None, Any], None]


@dataclass(frozen=True, eq=False)
class Route:
    """Where one node's records go: its topics, and the node named in data events' headers."""

    topics: kafka_codec.TopicStrategy
    node: dict[str, str]

    @classmethod
    def of(cls, topics: kafka_codec.TopicStrategy) -> Route:
        return cls(topics, {"service": topics.service, "env": topics.env, "group": topics.group})


@dataclass(frozen=True)
class Refused:
    """Kafka refuses this record itself (too large, invalid): sending it again cannot help."""

    reason: str
    detail: str


def refusal(err: KafkaError) -> Refused | None:
    """The refusal, when Kafka's error is about the record itself rather than the broker."""
    return Refused(f"kafka:{err.name()}", err.str()) if err.code() in _RECORD_ERRORS else None


class RecordProducer:
    """One confluent-kafka producer, the records it has not confirmed yet, and the broker's health."""

    def __init__(
        self,
        config: dict[str, Any],
        *,
        max_pending: int,
        lose: Lose,
        warn: WarnOnce,
        clock: Callable[[], float],
    ) -> None:
        self._config = {**config, "error_cb": self._on_error}
        self.max_pending = max_pending
        self._lose = lose
        self._warn = warn
        self._clock = clock
        self._producer = self._new_producer()
        #: When the previous poll ended: a report served now was made since then.
        self._polled_at = clock()
        self._seq = 0
        #: Records sent directly and not confirmed yet, by sequence number (their order).
        self.pending: dict[int, Record] = {}
        self._failed: list[tuple[int, Record]] = []
        #: Messages of ours in the producer: direct and replayed.
        self.outstanding = 0
        #: Messages acknowledged of those sent directly.
        self.sent = 0
        self.last_progress = clock()
        #: An acknowledgement arrived since the sink last stopped sending.
        self.confirmed = True
        self.all_down = False
        #: Why the broker should be considered away, once something says so.
        self.down_reason: str | None = None
        self._fatal = False

    def _new_producer(self) -> Producer:
        try:
            return Producer(self._config)
        except (KafkaException, ValueError, TypeError) as exc:
            raise ConfigError(f"bad Kafka producer configuration: {exc}") from None

    # -- sending ---------------------------------------------------------------------------

    def send(self, records: list[Record], route: Route) -> tuple[list[Record], str | None]:
        """Hand ``records`` to the producer. Returns the ones it could not take and why: the broker is away."""
        pending = self.pending
        for i, record in enumerate(records):
            if len(pending) >= self.max_pending and not self._make_room():
                return records[i:], f"more than {self.max_pending} records await acknowledgement"
            try:
                key, value, headers = kafka_codec.encode(record, route.node)
            except Exception as exc:  # a record that cannot be encoded must not stop the others
                self._lose("kafka:encode_error", [record], str(exc))
                continue
            ts = record.ts_ns // 1_000_000
            for topic in route.topics.topics(record.kind):
                self._seq += 1
                seq = self._seq
                pending[seq] = record
                callback = functools.partial(self._on_direct, seq)
                outcome = self.produce(topic, value, key, headers, ts=ts, callback=callback)
                if outcome is None:
                    continue
                pending.pop(seq, None)
                if isinstance(outcome, Refused):
                    self._lose(outcome.reason, [record], outcome.detail)
                    break
                return records[i:], outcome
        self.poll(0)
        return [], None

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes,
        headers: kafka_codec.Headers,
        *,
        ts: int,
        callback: DeliveryCallback,
    ) -> Refused | str | None:
        """Hand one message to the producer: None when done, ``Refused`` when Kafka refuses the record
        itself, else why the broker is away. Waits at most ``_MAX_BLOCK_S`` for room in the producer."""
        deadline: float | None = None
        while True:
            try:
                self._producer.produce(topic, value, key, headers=headers, timestamp=ts, on_delivery=callback)
            except BufferError:
                now = self._clock()
                if deadline is None:
                    deadline = now + _MAX_BLOCK_S
                if now >= deadline or self.down_reason is not None:
                    return self.down_reason or "the producer queue stayed full"
                self.poll(0.05)
                continue
            except KafkaException as exc:
                err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
                refused = refusal(err) if err is not None else None
                if refused is not None:
                    return refused
                if err is not None and err.fatal():
                    self._fatal = True
                return f"produce failed: {exc}"
            if self.outstanding == 0:
                self.last_progress = self._clock()
            self.outstanding += 1
            return None

    def _make_room(self) -> bool:
        deadline = self._clock() + _MAX_BLOCK_S
        while len(self.pending) >= self.max_pending:
            if self._clock() >= deadline or self.down_reason is not None:
                return False
            self.poll(0.05)
        return True

    def poll(self, timeout: float) -> None:
        """Serve delivery callbacks (on the calling thread)."""
        try:
            self._producer.poll(timeout)
        finally:
            self._polled_at = self._clock()

    # -- delivery callbacks ----------------------------------------------------------------

    def delivered(self, err: KafkaError | None) -> bool:
        """Account for one delivery report of ours; True when Kafka acknowledged the message."""
        self.outstanding -= 1
        if err is not None:
            return False
        self.last_progress = self._clock()
        self.confirmed = True
        self.all_down = False
        return True

    def _on_direct(self, seq: int, err: KafkaError | None, _msg: Any) -> None:
        record = self.pending.pop(seq, None)
        if record is None:
            return  # already handed back (at an outage or at close)
        if self.delivered(err):
            self.sent += 1
            return
        assert err is not None
        refused = refusal(err)
        if refused is not None:
            self._lose(refused.reason, [record], refused.detail)
            return
        self._failed.append((seq, record))
        self.down_reason = self.down_reason or f"delivery failed: {err.str()}"

    def _on_error(self, err: KafkaError) -> None:
        code = err.code()
        if err.fatal():
            self._fatal = True
            self.down_reason = self.down_reason or f"fatal producer error: {err.str()}"
        elif code == KafkaError._ALL_BROKERS_DOWN:
            # Reported when the last connection fails, and nothing reports the broker's return; it waits for
            # the next poll. An outage when records of ours wait (an acknowledgement clears it), or when the
            # report is recent (the previous poll was less than _FRESH_S ago: a process started while the
            # broker is down). Served after an idle stretch, it may be long stale (the broker back since):
            # the records that come next are then judged by their own acknowledgements, or a new report.
            self.all_down = self.outstanding > 0 or self._clock() - self._polled_at < _FRESH_S
        elif code in (KafkaError._AUTHENTICATION, KafkaError._SSL):
            self.down_reason = self.down_reason or f"cannot connect: {err.str()}"

    # -- health ----------------------------------------------------------------------------

    def check(self, now: float, *, online: bool, spool_after_s: float) -> None:
        """Name an outage when our messages wait and the broker does not answer."""
        if self.down_reason is not None or self.outstanding == 0:
            return
        if online and self.all_down:
            self.down_reason = "all brokers are down"
        elif now - self.last_progress > spool_after_s:
            self.down_reason = f"no acknowledgement from Kafka for {now - self.last_progress:.1f}s"

    def stop_sending(self) -> list[Record]:
        """Purge the producer; returns every record sent directly and not confirmed, in order, once each."""
        self.all_down = False  # probes are judged by their acknowledgements
        self.confirmed = False
        try:
            self._producer.purge(in_queue=True, in_flight=True, blocking=True)
        except Exception as exc:
            self._warn("purge", f"Kafka producer purge failed: {exc!r}")
        deadline = self._clock() + 1.0
        while self.pending and self._clock() < deadline:
            try:
                self.poll(0.01)
            except Exception:
                break
        moved = sorted([*self._failed, *self.pending.items()], key=lambda pair: pair[0])
        self._failed = []
        self.pending = {}
        self.outstanding = 0
        if self._fatal:
            self._fatal = False
            try:
                self._producer = self._new_producer()
            except ConfigError as exc:
                self._warn("recreate", f"cannot recreate the Kafka producer: {exc}")
        self.down_reason = None  # the purged messages' callbacks said so again: this outage is handled
        seen: set[str] = set()
        records = []
        for _, record in moved:  # a node record went to two topics: hand it back once
            if record.id not in seen:
                seen.add(record.id)
                records.append(record)
        return records

    def close(self) -> None:
        """Drop what is still in the producer: the sink has spooled what was not confirmed."""
        with contextlib.suppress(Exception):  # closing must not fail the application's exit
            self._producer.purge(in_queue=True, in_flight=True, blocking=False)
            self._producer.poll(0)
