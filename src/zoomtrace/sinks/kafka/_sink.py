"""The Kafka sink itself: sends directly while the broker answers, spools while it does not, replays after.

When the ``producer`` names an outage, the sink moves what was not confirmed to the ``spool``
and sends later records there too; ``replay`` sends the spool back once the broker answers, and
the sink tells what it did in node records of its own (``kafka.spooling``, ``kafka.replayed``, ``kafka.lost``,
``kafka.sink``). The package docstring (``zoomtrace.sinks.kafka``) describes the behaviour.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from zoomtrace._redact import redacted
from zoomtrace._stderr import WarnOnce, say
from zoomtrace.errors import ConfigError
from zoomtrace.sinks import NodeIdentity, ReportLoss
from zoomtrace.sinks.kafka._producer import DEFAULT_PRODUCER_CONFIG, RecordProducer, Route
from zoomtrace.sinks.kafka._replay import Replayer, SegmentReplay
from zoomtrace.sinks.kafka._spool import KafkaSpool, SpoolFull
from zoomtrace.wire import kafka_codec
from zoomtrace.wire.record import Record, uuid7

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
    "retry_interval_s": float,  # first retry after an outage (then doubling up to 10 s)
    "max_pending": int,  # records awaiting acknowledgement, at most
    "segment_bytes": int,  # size of a spool segment (and of the replay unit)
    "spool_max_bytes": int,  # spool size limit; records beyond it are counted lost
    "replay_batch": int,  # records replayed per write() call, at most
}

_MAX_BACKOFF_S: Final = 10.0
#: While records wait in the spool or for their acknowledgement, a helper thread probes, replays and judges
#: the broker's health this often even if the application records nothing (write() does the same work).
_TICK_S: Final = 0.2
#: At most one ``kafka.lost`` node record per reason this often (the close summary has every count).
_LOST_NOTE_INTERVAL_S: Final = 10.0
#: At close, the spool is not tried again if the broker failed the sink less than this long ago.
_JUST_FAILED_S: Final = 1.0
#: Losses of records that could not be spooled either: no ``kafka.lost`` record could be written.
_SPOOL_LOSSES: Final = frozenset({"kafka:spool_full", "kafka:spool_error"})


@dataclass
class Counts:
    """What the sink did with the records it was given (the ``kafka.sink`` summary)."""

    sent: int = 0
    spooled: int = 0
    replayed: int = 0
    lost: dict[str, int] = field(default_factory=dict)


class KafkaSink:
    """Every record to Kafka, through the spool while the broker is away (see ``zoomtrace.sinks.kafka``)."""

    def __init__(
        self,
        bootstrap: str,
        *,
        home: Path,
        node: NodeIdentity,
        report_loss: ReportLoss,
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
        self.node = node
        self.spool_after_s, self.flush_timeout_s, self.close_timeout_s = spool_after_s, flush_timeout_s, close_timeout_s
        self.retry_interval_s = retry_interval_s
        self._clock = clock
        self._report_loss = report_loss
        self._warn = WarnOnce()
        # Built now, so a bad topic template fails init(), not the worker.
        self.route = Route.of(
            kafka_codec.TopicStrategy(env or node.env, group or node.group, node.service, topic, node_topic)
        )
        self.producer = RecordProducer(
            {
                **DEFAULT_PRODUCER_CONFIG,
                "client.id": f"zoomtrace-{node.node_id}",
                **(config or {}),
                "bootstrap.servers": bootstrap,
            },
            max_pending=max_pending,
            lose=self._lose,
            warn=self._warn,
            clock=clock,
        )
        meta = {
            "node_id": node.node_id,
            **self.route.node,
            "topic": topic,
            "node_topic": node_topic,
            "bootstrap": bootstrap,
        }
        self.spool = KafkaSpool(
            Path(spool) if spool else home / "spool-kafka",
            node.node_id,
            meta,
            segment_bytes=segment_bytes,
            max_bytes=spool_max_bytes,
            warn=self._warn,
        )
        self.replayer = Replayer(
            self.spool,
            self.producer,
            self.route,
            bootstrap=bootstrap,
            batch=replay_batch,
            lose=self._lose,
            note=self._note,
            warn=self._warn,
        )
        self._lock = threading.RLock()
        self._lost: dict[str, int] = {}
        self._lost_noted: dict[str, float] = {}
        self._notes: list[Record] = []
        # -- outages
        self._online = True
        self._next_probe = 0.0
        self._backoff = retry_interval_s
        self._offline_since: float | None = None
        self._offline_counts = (0, 0)  # (spooled, replayed) at the start of the outage
        self._failed_at = float("-inf")  # when the sink last went (or stayed) offline
        self._ticker: threading.Thread | None = None
        self._closing = False
        self._closed = False
        if self.replayer.adopt_leftovers():
            self._ensure_ticker()

    @classmethod
    def from_url(cls, url: str, *, home: Path, node: NodeIdentity, report_loss: ReportLoss) -> KafkaSink:
        parts = urlsplit(url)
        if parts.scheme != "kafka":
            raise ConfigError(f"not a Kafka sink URL: {redacted(url)!r} (use kafka://host:9092)")
        bootstrap = parts.netloc
        if not bootstrap or "@" in bootstrap:
            raise ConfigError(
                f"Kafka sink URL {redacted(url)!r} needs host:port[,host:port] (credentials go in options)"
            )
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
        return cls(bootstrap, home=home, node=node, report_loss=report_loss, config=config, **kwargs)

    @property
    def counts(self) -> Counts:
        return Counts(self.producer.sent, self.spool.spooled, self.replayer.replayed, dict(self._lost))

    # -- Sink protocol -------------------------------------------------------------------

    def write(self, records: list[Record]) -> None:
        with self._lock:
            if self._closed:
                self._spool(records)
                return
            self._service(self._clock())
            (self._send if self._online else self._spool)(records)
            self._write_notes()
            self._service(self._clock())
            if self.producer.awaiting:
                # Judged while they wait even if the application records nothing more: an outage noticed
                # only by their missing acknowledgements (zoom.spool_after_s) moves them to the spool then.
                self._ensure_ticker()

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
            deadline = self._clock() + self.close_timeout_s
            self._replay_before_close(deadline)
            self._closing = True  # finish what is in flight, start no new replay
            self._note("kafka.sink", self._summary())
            self._drain(max(0.0, deadline - self._clock()), "not acknowledged before close")
            self._closed = True
            self._write_notes()  # the summary record, when it had to go to the spool
            self.replayer.release_adopted()
            self.spool.close()
            self.producer.close()
        finally:
            self._lock.release()

    # -- sending, outages and replay ----------------------------------------------------------

    def _send(self, records: list[Record]) -> None:
        unsent, reason = self.producer.send(records, self.route)
        if reason is not None:
            # The broker is unreachable or the producer is stuck: these records and the rest go to the spool.
            self._go_offline(reason)
            self._spool(unsent)

    def _service(self, now: float) -> None:
        try:
            self.producer.poll(0)
        except Exception as exc:  # a failing callback must not stop the worker
            self._warn("poll", f"Kafka producer poll failed: {exc!r}")
        self.producer.check(now, online=self._online, spool_after_s=self.spool_after_s)
        if self.producer.down_reason is not None:
            self._go_offline(self.producer.down_reason)
        self._replay_step(now)

    def _go_offline(self, reason: str) -> None:
        """Stop sending: move every unconfirmed record to the spool, in order; probe again after a back-off."""
        was_online = self._online
        self._online = False
        now = self._failed_at = self._clock()
        unconfirmed = self.producer.stop_sending()
        self.replayer.abandon()
        self._next_probe = now + self._backoff
        self._backoff = min(self._backoff * 2, _MAX_BACKOFF_S)
        self._ensure_ticker()
        if was_online:
            counts = self.counts
            self._offline_since = now
            self._offline_counts = (counts.spooled, counts.replayed)
            self._warn(
                "offline", f"Kafka at {self.bootstrap} unavailable ({reason}); spooling to {self.spool.directory}"
            )
        self._spool(unconfirmed)
        if was_online or unconfirmed:
            self._note(
                "kafka.spooling",
                {
                    "reason": reason,
                    "moved": len(unconfirmed),
                    "spool": str(self.spool.directory),
                    "bootstrap": self.bootstrap,
                },
            )

    def _replay_step(self, now: float) -> None:
        replayer = self.replayer
        if replayer.current is None:
            if self._closing or not self.spool.queue:
                return
            if not self._online and not self.producer.confirmed and now < self._next_probe:
                return
            started = replayer.start()
            if started is None:
                return
            if started.last_own and not self._online and self.producer.confirmed:
                # The broker answers again and this is the last of our segments: new records can go
                # directly, behind this segment's in the producer's queue, so order is kept.
                self._online = True
        done = replayer.step()
        if done is not None:
            self._replayed(done)

    def _replayed(self, replay: SegmentReplay) -> None:
        self._backoff = self.retry_interval_s
        own = replay.node_id == self.node.node_id
        if own and not self.spool.own_queued() and self.spool.current is None:
            self._online = True
            if self._offline_since is not None:
                self._recovered()

    def _recovered(self) -> None:
        """Every record of the outage is in Kafka: record how many went through the spool."""
        since, self._offline_since = self._offline_since, None
        spooled0, replayed0 = self._offline_counts
        counts = self.counts
        attrs = {
            "spooled": counts.spooled - spooled0,
            "replayed": counts.replayed - replayed0,
            "offline_s": round(self._clock() - since, 3) if since is not None else None,
            "bootstrap": self.bootstrap,
        }
        self._note("kafka.replayed", attrs)
        self._warn.forget("offline")
        say(f"Kafka at {self.bootstrap} is back; {attrs['replayed']} spooled records replayed")

    def _drain(self, timeout: float, reason: str) -> None:
        """Wait up to ``timeout`` for the records sent directly; spool those still unconfirmed then.

        A replay in progress is waited for only while the broker answers (its records are safe in
        their segment anyway, which stays queued until every one of them is acknowledged).
        """
        producer = self.producer
        deadline = self._clock() + timeout
        self._service(self._clock())
        if self._online:
            self._write_notes()

        def waiting() -> bool:
            replay = self.replayer.current
            if producer.unconfirmed:
                return True
            return self._online and replay is not None and replay.outstanding > 0

        while waiting() and self._clock() < deadline and producer.down_reason is None:
            try:
                producer.poll(min(0.05, max(0.0, deadline - self._clock())))
            except Exception:
                break
            if self._online and producer.all_down and producer.unconfirmed:
                producer.down_reason = "all brokers are down"
            if self.replayer.current is not None and self._online:
                self._replay_step(self._clock())
        if producer.unconfirmed or producer.down_reason is not None:
            self._go_offline(producer.down_reason or reason)
        else:
            done = self.replayer.finish_if_done()
            if done is not None:
                self._replayed(done)

    def _replay_before_close(self, deadline: float) -> None:
        """At close, send the spooled segments (oldest first: exited processes' adopted ones, then this
        node's) if the broker answers before ``deadline``.

        Otherwise they stay on local disk until the next process with this spool directory sends them,
        or ``zoomtrace ingest`` reads them: the helper thread's next retry (up to 10 s away) will not come.
        """
        if not self.spool.queue:
            return
        if not self._online and self._clock() - self._failed_at < _JUST_FAILED_S:
            return  # the broker failed us a moment ago: a short program ending in an outage need not wait
        self._next_probe = min(self._next_probe, self._clock())  # try now, whatever the back-off
        while self.spool.queue and (now := self._clock()) < deadline:
            self._service(now)
            if not self._online and self.replayer.current is None:
                return  # the try failed (no acknowledgement within zoom.spool_after_s): still away
            try:
                self.producer.poll(min(0.05, max(0.0, deadline - self._clock())))
            except Exception:
                return

    def _ensure_ticker(self) -> None:
        """Start the helper thread unless it runs: the spool must drain, and an outage be noticed, in an idle
        process too."""
        if self._ticker is None and not self._closing:
            self._ticker = threading.Thread(target=self._tick_loop, name="zoomtrace-kafka-helper", daemon=True)
            self._ticker.start()

    def _tick_loop(self) -> None:
        while True:
            time.sleep(_TICK_S)
            if not self._lock.acquire(timeout=_TICK_S):
                continue  # write() is at work: it does the same
            try:
                idle = (
                    self._online
                    and not self.spool.queue
                    and self.replayer.current is None
                    and self.producer.awaiting == 0
                )
                if self._closing or self._closed or (idle and not self._notes):
                    self._ticker = None
                    return
                self._service(self._clock())
                self._write_notes()
            except Exception as exc:  # the helper must not die with records in the spool
                self._warn("ticker", f"Kafka sink replay helper: {exc!r}")
            finally:
                self._lock.release()

    def _spool(self, records: list[Record]) -> None:
        if not records:
            return
        try:
            self.spool.write(records)
        except SpoolFull as exc:
            self._lose("kafka:spool_full", records, str(exc))
        except OSError as exc:
            self._lose("kafka:spool_error", records, str(exc))

    # -- reporting ------------------------------------------------------------------------

    def _summary(self) -> dict[str, Any]:
        counts = self.counts
        return {
            "sent": counts.sent,
            "spooled": counts.spooled,
            "replayed": counts.replayed,
            "lost": counts.lost,
            "spool_segments": sum(1 for p in self.spool.queue if self.spool.is_own(p)),
            "awaiting_ack": self.producer.awaiting,
            "online": self._online,
            "bootstrap": self.bootstrap,
        }

    def _note(self, type_: str, attrs: dict[str, Any]) -> None:
        """A node record about the sink itself, written with the next batch (to Kafka or the spool)."""
        ts = time.time_ns()
        self._notes.append(
            Record(id=uuid7(ts), kind="node", type=type_, ts_ns=ts, node_id=self.node.node_id, attrs=attrs)
        )

    def _write_notes(self) -> None:
        if self._notes:
            notes, self._notes = self._notes, []
            (self._send if self._online and not self._closed else self._spool)(notes)

    def _lose(self, reason: str, records: list[Record], detail: str) -> None:
        """Records given up on: reported to the node's loss count, tallied for the summary, noted (rate-limited)."""
        n = len(records)
        self._lost[reason] = self._lost.get(reason, 0) + n
        self._report_loss(reason, n)
        self._warn(f"lost:{reason}", f"Kafka sink lost {n} records ({reason}: {detail})")
        if reason in _SPOOL_LOSSES or all(r.type.startswith("kafka.") for r in records):
            return  # these could not be written either; the counts go into the kafka.sink summary
        now = self._clock()
        if now - self._lost_noted.get(reason, -_LOST_NOTE_INTERVAL_S) >= _LOST_NOTE_INTERVAL_S:
            self._lost_noted[reason] = now
            self._note(
                "kafka.lost",
                {
                    "reason": reason,
                    "count": n,
                    "detail": detail[:500],
                    "ids": [r.id for r in records[:10]],
                    "total": self._lost[reason],
                },
            )
