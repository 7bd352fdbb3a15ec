"""Direct sending: records to Kafka through confluent-kafka producers, confirmed by delivery callbacks.

Two producers. The *quiet* one reports only failures (``delivery.report.only.error``) and carries every
record sent directly: a report per message cost the worker ≈4 µs of CPU a record (confluent-kafka makes a
``Message`` for it, then the callback runs). A quiet message that fails comes back in its report, value and
key but no headers, and its record is decoded from the value (``kafka_codec.decode_message``: a ``json-seq``
line or msgpack); a data event's record is in its headers, so its failure callback holds it (confluent-kafka
calls a message's callback only on a failure, and lets it go on success). Its acknowledgements are counted,
not seen (what left the producer's queue without a failure). The *reporting* one has every delivery reported
(the record it confirms is let go, or handed back at an outage), and carries replays and, after an outage,
every direct record until what it carried is acknowledged, so that they follow the replayed ones in order.

``RecordProducer`` also judges the broker's health from what the producers report (a failed
delivery, all brokers down while messages wait, no acknowledgement for a while, a fatal error)
but decides nothing: it names the outage (``down_reason``) and, when the sink stops sending,
hands back every record not yet confirmed, once each, for the sink to spool.
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
#: Direct records move to the quiet producer once the reporting one has nothing waiting; the sink waits for
#: that at most this long at a time, and tries again no sooner than ``_SETTLE_RETRY_S`` later.
_SETTLE_S: Final = 0.1
_SETTLE_RETRY_S: Final = 1.0
#: A message of ours that failed is decoded back whatever its size (it was produced within the producer's own
#: ``message.max.bytes``).
_OWN_MESSAGE_LIMIT: Final = 2**31
#: After a fatal error, how long the old producers' reports are waited for before they are made anew.
_FATAL_DRAIN_S: Final = 5.0

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
    """The reporting and the quiet confluent-kafka producers, the records not confirmed yet, and the broker's
    health."""

    def __init__(
        self,
        config: dict[str, Any],
        *,
        max_pending: int,
        lose: Lose,
        warn: WarnOnce,
        clock: Callable[[], float],
    ) -> None:
        self._config = config
        self.max_pending = max_pending
        self._lose = lose
        self._warn = warn
        self._clock = clock
        self._producer = self._new_producer()
        self._quiet = self._new_producer(quiet=True)
        #: Messages handed to the quiet producer, those of them it reported failed, and its error reports served.
        self._quiet_produced = 0
        self._quiet_failed = 0
        self._quiet_errors = 0
        #: The highest ``_quiet_progress()`` seen: when it grows, Kafka acknowledged messages.
        self._quiet_progress_seen = 0
        #: Records of the quiet producer's failed messages (not refused), in the order reported.
        self._quiet_unconfirmed: list[Record] = []
        self._settle_after = 0.0
        #: Records go through the quiet producer (closed from an outage until the records it left behind are sent
        #: again: they go through the reporting producer).
        self.quiet_lane = True
        #: When the previous poll ended: a report served now was made since then.
        self._polled_at = clock()
        self._seq = 0
        #: Records sent directly and not confirmed yet, by sequence number (their order).
        self.pending: dict[int, Record] = {}
        self._failed: list[tuple[int, Record]] = []
        #: Messages of ours in the producer: direct and replayed.
        self.outstanding = 0
        #: Messages acknowledged of those sent directly through the reporting producer.
        self._reported_sent = 0
        self.last_progress = clock()
        #: An acknowledgement arrived since the sink last stopped sending.
        self.confirmed = True
        self.all_down = False
        #: Why the broker should be considered away, once something says so.
        self.down_reason: str | None = None
        self._fatal = False

    def _new_producer(self, *, quiet: bool = False) -> Producer:
        config = {**self._config, "error_cb": functools.partial(self._on_error, quiet=quiet)}
        if quiet:
            config["delivery.report.only.error"] = True
        try:
            return Producer(config)
        except (KafkaException, ValueError, TypeError) as exc:
            raise ConfigError(f"bad Kafka producer configuration: {exc}") from None

    @property
    def unconfirmed(self) -> bool:
        """Records the sink wrote (not a replay's) await an acknowledgement, in either producer."""
        return bool(self.pending) or len(self._quiet) > 0

    @property
    def awaiting(self) -> int:
        """Messages of ours waiting for an acknowledgement, in both producers."""
        return self.outstanding + len(self._quiet)

    @property
    def sent(self) -> int:
        """Messages sent directly and acknowledged (the quiet producer's less any error report waiting to be
        served: ``len()`` counts those too)."""
        return self._reported_sent + self._quiet_progress() + self._quiet_errors

    def _quiet_progress(self) -> int:
        """The quiet producer's acknowledged messages less every error report it ever queued. ``len()`` counts
        messages waiting and reports waiting to be served alike, so serving an error report looks like an
        acknowledgement; taking away the reports served makes this grow only when acknowledgements outnumber
        the error reports queued meanwhile (in an outage, none are acknowledged, and it only falls)."""
        return self._quiet_produced - self._quiet_failed - len(self._quiet) - self._quiet_errors

    # -- sending ---------------------------------------------------------------------------

    def send(self, records: list[Record], route: Route) -> tuple[list[Record], str | None]:
        """Hand ``records`` to the producers. Returns the ones they could not take and why: the broker is away.

        Records go through the quiet producer while ``quiet_lane`` holds. After an outage, the quiet lane opens
        again once the reporting producer has no message waiting, so that the quiet one's first records do not
        overtake those it carried.
        """
        if not self.quiet_lane and (self.outstanding == 0 or self._settled()):
            self.quiet_lane = True
        quiet_lane, quiet, pending = self.quiet_lane, self._quiet, self.pending
        for i, record in enumerate(records):
            if self.outstanding + len(quiet) >= self.max_pending and not self._make_room():
                return records[i:], f"more than {self.max_pending} records await acknowledgement"
            try:
                key, value, headers = kafka_codec.encode(record, route.node)
            except Exception as exc:  # a record that cannot be encoded must not stop the others
                self._lose("kafka:encode_error", [record], str(exc))
                continue
            ts = record.ts_ns // 1_000_000
            for topic in route.topics.topics(record.kind):
                if quiet_lane:
                    if not len(quiet):
                        self.last_progress = self._clock()  # waiting for an acknowledgement starts now
                    # A data event's record is in its headers, which a failure report lacks: it is kept with its
                    # message, by its callback (called only on a failure).
                    on_failure = (
                        functools.partial(self._on_quiet_event_failure, record)
                        if record.kind == "event"
                        else self._on_quiet_failure
                    )
                    outcome = self._produce(quiet, topic, value, key, headers, ts, on_failure)
                    if outcome is None:
                        self._quiet_produced += 1
                        continue
                else:
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

    def _settled(self) -> bool:
        """Wait up to ``_SETTLE_S`` for the reporting producer's messages to be acknowledged (not again within
        ``_SETTLE_RETRY_S``). No message is produced meanwhile, so those in flight are soon all acknowledged."""
        now = self._clock()
        if now < self._settle_after:
            return False
        deadline = now + _SETTLE_S
        while self.outstanding and self.down_reason is None and self._clock() < deadline:
            self.poll(0.01)
        if self.outstanding:
            self._settle_after = self._clock() + _SETTLE_RETRY_S
        return self.outstanding == 0

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
        """Hand one message to the reporting producer: None when done, ``Refused`` when Kafka refuses the record
        itself, else why the broker is away. Waits at most ``_MAX_BLOCK_S`` for room in the producer."""
        outcome = self._produce(self._producer, topic, value, key, headers, ts, callback)
        if outcome is None:
            if self.outstanding == 0:
                self.last_progress = self._clock()
            self.outstanding += 1
        return outcome

    def _produce(
        self,
        producer: Producer,
        topic: str,
        value: bytes,
        key: bytes,
        headers: kafka_codec.Headers,
        ts: int,
        callback: DeliveryCallback,
    ) -> Refused | str | None:
        """``produce`` on either producer, without the reporting producer's count of messages awaiting."""
        deadline: float | None = None
        while True:
            try:
                producer.produce(topic, value, key, headers=headers, timestamp=ts, on_delivery=callback)
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
            return None

    def _make_room(self) -> bool:
        """Wait up to ``_MAX_BLOCK_S`` for fewer than ``max_pending`` messages to await acknowledgement."""
        deadline = self._clock() + _MAX_BLOCK_S
        while self.awaiting >= self.max_pending:
            if self._clock() >= deadline or self.down_reason is not None:
                return False
            self.poll(0.05)
        return True

    def poll(self, timeout: float) -> None:
        """Serve delivery callbacks (on the calling thread): the quiet producer's failures, then the reporting
        producer's reports, waiting up to ``timeout`` for those."""
        try:
            self._quiet.poll(0)
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
            self._reported_sent += 1
            return
        assert err is not None
        refused = refusal(err)
        if refused is not None:
            self._lose(refused.reason, [record], refused.detail)
            return
        self._failed.append((seq, record))
        self.down_reason = self.down_reason or f"delivery failed: {err.str()}"

    def _on_quiet_failure(self, err: KafkaError | None, msg: Any) -> None:
        """A message of the quiet producer failed (purged at an outage, too): its record, decoded back from the
        message, is lost if Kafka refuses it, else handed back with the others at ``stop_sending``."""
        if err is None:  # only failures are reported; a report without one would be an acknowledgement
            return
        self._quiet_failed += 1
        try:
            record = kafka_codec.decode_message(msg, max_value_bytes=_OWN_MESSAGE_LIMIT)
        except kafka_codec.MalformedMessage as exc:  # not for a message this sink encoded; counted lost if so
            self._lose("kafka:undecodable", [_UNKNOWN], f"{err.str()}; the message does not decode: {exc}")
            return
        self._quiet_failure(record, err)

    def _on_quiet_event_failure(self, record: Record, err: KafkaError | None, _msg: Any) -> None:
        """A data event of the quiet producer failed: lost if Kafka refuses it, else handed back at
        ``stop_sending``."""
        if err is None:
            return
        self._quiet_failed += 1
        self._quiet_failure(record, err)

    def _quiet_failure(self, record: Record, err: KafkaError) -> None:
        refused = refusal(err)
        if refused is not None:
            self._lose(refused.reason, [record], refused.detail)
            return
        self._quiet_unconfirmed.append(record)
        self.down_reason = self.down_reason or f"delivery failed: {err.str()}"

    def _on_error(self, err: KafkaError, *, quiet: bool) -> None:
        if quiet:
            self._quiet_errors += 1
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
            # The producer new records do not go to, with none of its own waiting, idles: its report (the broker
            # closes idle connections) says nothing of the other's.
            waiting = len(self._quiet) if quiet else self.outstanding
            if waiting or quiet == self.quiet_lane:
                self.all_down = waiting > 0 or self._clock() - self._polled_at < _FRESH_S
        elif code in (KafkaError._AUTHENTICATION, KafkaError._SSL):
            self.down_reason = self.down_reason or f"cannot connect: {err.str()}"

    # -- health ----------------------------------------------------------------------------

    def check(self, now: float, *, online: bool, spool_after_s: float) -> None:
        """Count the quiet producer's acknowledgements; name an outage when our messages wait and the broker
        does not answer."""
        waiting = len(self._quiet)
        progress = self._quiet_progress()
        if progress > self._quiet_progress_seen:
            self._quiet_progress_seen = progress
            self.last_progress = now
            self.confirmed = True
            self.all_down = False
        if self.down_reason is not None or (self.outstanding == 0 and waiting == 0):
            return
        if online and self.all_down:
            self.down_reason = "all brokers are down"
        elif now - self.last_progress > spool_after_s:
            self.down_reason = f"no acknowledgement from Kafka for {now - self.last_progress:.1f}s"

    def stop_sending(self) -> list[Record]:
        """Purge both producers; returns every record sent directly and not confirmed, once each: the reporting
        producer's in the order sent, then the quiet producer's in the order their failures were reported (the
        order sent, for the records of one topic and key: they share a partition).

        After a fatal error both producers are made anew; the old quiet one's failure reports are waited for
        longer first (``_FATAL_DRAIN_S``), since a record whose report is never served cannot be handed back: any
        left then are counted lost (``kafka:unreported``), not dropped unseen."""
        self.all_down = False  # probes are judged by their acknowledgements
        self.confirmed = False
        self.quiet_lane = False  # until the records handed back are sent again
        for producer in (self._producer, self._quiet):
            try:
                producer.purge(in_queue=True, in_flight=True, blocking=True)
            except Exception as exc:
                self._warn("purge", f"Kafka producer purge failed: {exc!r}")
        deadline = self._clock() + (_FATAL_DRAIN_S if self._fatal else 1.0)
        while (self.pending or len(self._quiet)) and self._clock() < deadline:
            try:
                self.poll(0.01)
            except Exception:
                break
        moved = sorted([*self._failed, *self.pending.items()], key=lambda pair: pair[0])
        quiet = self._quiet_unconfirmed
        self._failed = []
        self.pending = {}
        self.outstanding = 0
        self._quiet_unconfirmed = []
        if self._fatal:
            self._fatal = False
            old_quiet = self._quiet
            try:
                self._producer = self._new_producer()
                self._quiet = self._new_producer(quiet=True)
                unreported = len(old_quiet)
                self._quiet_produced -= unreported  # what the old one still held is not counted acknowledged
                if unreported:
                    detail = f"{unreported} delivery reports not served before the producer was made anew"
                    self._lose("kafka:unreported", [_UNKNOWN] * unreported, detail)
            except ConfigError as exc:
                self._warn("recreate", f"cannot recreate the Kafka producer: {exc}")
        self.down_reason = None  # the purged messages' callbacks said so again: this outage is handled
        seen: set[str] = set()
        records = []
        for record in [*(record for _, record in moved), *quiet]:  # a node record went to two topics: once
            if record.id not in seen:
                seen.add(record.id)
                records.append(record)
        return records

    def close(self) -> None:
        """Drop what is still in the producers: the sink has spooled what was not confirmed."""
        for producer in (self._producer, self._quiet):
            with contextlib.suppress(Exception):  # closing must not fail the application's exit
                producer.purge(in_queue=True, in_flight=True, blocking=False)
                producer.poll(0)


#: A stand-in for a record the sink cannot name, to count it lost: a failed message that does not decode back (a
#: delivery report carries no headers), or one whose report a recreated producer never served.
_UNKNOWN: Final = Record(id="?", kind="?", type="?", ts_ns=0, node_id="?")
