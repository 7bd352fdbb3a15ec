"""The collector: a Kafka consumer group that stores Zoom records (``zoomtrace collect``).

It subscribes to the Zoom topics by pattern (default ``^.*\\.(log|event|raw|span|node)$``; topics
created later are picked up within ``topic.metadata.refresh.interval.ms``, 10 s by default),
decodes each message (``zoomtrace.wire.kafka_codec``), writes each batch to the store in one
transaction (``zoomtrace.collect._batching``, on a helper thread while the next batch is read) and
only then commits the batch's offsets (``enable.auto.commit=false``). A collector killed at
any point therefore loses nothing: what it stored but did not commit is read again, and the
store keeps one copy per record id. Collectors with the same group id share the partitions.

Malformed messages (no or bad ``zoom.*`` headers, a value that is not JSON, a JSON text sequence or msgpack
of a record, a value over ``max_value_bytes``) are reported on stderr, counted and skipped; their
offsets are committed like the others. Every ``stats_interval`` seconds the collector reports
throughput and lag (one line on stderr, or one JSON object per line on stdout with ``json_stats``).
SIGTERM and SIGINT stop it cleanly: the batch in hand is stored and committed, the consumer
leaves its group (its partitions move to the other collectors at once) and the store is closed.

Run it as ``zoomtrace [--store URL] collect --from kafka://host:9092 [--to HOME] [--group-id ID]`` or
``python -m zoomtrace.collect.kafka_collector [--store URL] ...`` (same options). The store is the
URL's (``zoomtrace.store.urls``: ``chdb://DIR``, ``clickhouse://…``), else the home's DuckDB file.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl, urlsplit

from zoomtrace._args import positive, seconds, seconds_or_zero
from zoomtrace._stderr import say
from zoomtrace.collect._batching import Background, BatchWriter, Retry, Target, Written, home_target, open_target
from zoomtrace.collect._signals import stop_on_signals
from zoomtrace.errors import ConfigError, ZoomError
from zoomtrace.store import Problem, StoreWriter, refused_line
from zoomtrace.store.urls import add_store_arguments, parse_retention
from zoomtrace.wire import kafka_codec
from zoomtrace.wire.record import Record

if TYPE_CHECKING:
    from confluent_kafka import Consumer, KafkaError, TopicPartition

# confluent-kafka (the ``kafka`` extra) is imported when the collector runs, not with this module,
# so the CLI can offer ``zoomtrace collect``'s options without it.

__all__ = ["DEFAULT_GROUP_ID", "DEFAULT_TOPICS_PATTERN", "CollectorStats", "main", "parse_bootstrap", "run_collector"]

DEFAULT_TOPICS_PATTERN: Final = r"^.*\.(log|event|raw|span|node)$"
DEFAULT_GROUP_ID: Final = "zoomtrace-collector"

DEFAULT_CONSUMER_CONFIG: Final[dict[str, Any]] = {
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
    # Pattern subscriptions see new topics at the next metadata refresh.
    "topic.metadata.refresh.interval.ms": 10_000,
    # A collector that died (SIGKILL) gives up its partitions after this long.
    "session.timeout.ms": 10_000,
    "heartbeat.interval.ms": 2_000,
    # Fetch up to 8 MiB per partition (librdkafka's default is 1 MiB): reading a backlog, the consumer alone
    # then delivers 210,000-410,000 messages/s instead of 150,000-180,000, and the broker spends half the CPU
    # per message (bench/README.md, Kafka). Memory stays bounded by queued.max.messages.kbytes (64 MiB).
    "max.partition.fetch.bytes": 8 * 1024 * 1024,
    # librdkafka would print every failed connection attempt; errors come through error_cb instead.
    "log_level": 0,
}

#: Report at most this many malformed messages per reason on stderr (all are counted).
_MAX_REPORTS: Final = 20
#: ``idle_exit_s`` starts counting once partitions are assigned, or after this long without any.
_JOIN_GRACE_S: Final = 15.0
#: The same Kafka client error is reported at most once per this many seconds.
_ERROR_REPORT_INTERVAL_S: Final = 30.0


@dataclass
class CollectorStats:
    consumed: int = 0  # messages read
    # records handed to the store: decoded ones after in-batch de-duplication by id, record lines as they came
    # (a node record's two copies, from its two topics, count twice; the store keeps one)
    stored: int = 0
    new: int = 0  # records the store did not have yet
    malformed: int = 0
    malformed_by_reason: dict[str, int] = field(default_factory=dict)
    rejected: int = 0  # records the store refused even one by one
    batches: int = 0
    commits: int = 0
    commit_failures: int = 0
    partitions: int = 0
    lag: int | None = None
    elapsed_s: float = 0.0


def parse_bootstrap(source: str) -> tuple[str, dict[str, str]]:
    """``kafka://h1:9092,h2:9092?opt=v`` (or plain ``h1:9092``) -> bootstrap servers and client options."""
    if "://" not in source:
        return source, {}
    parts = urlsplit(source)
    if parts.scheme != "kafka" or not parts.netloc:
        raise ConfigError(f"not a Kafka address: {source!r} (use kafka://host:9092 or host:9092)")
    return parts.netloc, dict(parse_qsl(parts.query, keep_blank_values=True))


#: Bytes of message values per store write, at most (``--batch-bytes``): 100,000 messages of up to
#: ``--max-value-bytes`` (8 MiB) would otherwise be a batch of gigabytes, held twice (read, and handed to the store).
DEFAULT_BATCH_BYTES: Final = 128 * 1024 * 1024
#: Messages taken from the consumer per call, at most.
_CONSUME_MAX: Final = 10_000
#: How often the collector collects cyclic garbage itself (automatic collections, which walk every
#: record of the batches in hand, are off while it runs).
_GC_INTERVAL_S: Final = 30.0
#: ``json-seq`` record lines per block handed to the store: the store's passes over a block stay in the cache,
#: and its bulk insert reads the blocks in parallel (one block of a whole batch is one part, read by one thread).
_LINES_PER_BLOCK: Final = 2_000
#: A block's bytes, at most (a longer line is a block of its own): lines of up to ``--max-value-bytes`` (8 MiB)
#: would otherwise make blocks of gigabytes, each copied whole by the join.
_BLOCK_BYTES: Final = 4 * 1024 * 1024
#: A store session is kept across the batches of this long (then closed, so other commands get the store).
_SESSION_HOLD_S: Final = 2.0


#: Where a message is: its topic, partition and offset.
Place = tuple[str, int, int]


@dataclass
class _Batch:
    """Messages waiting for the store, with the offsets they reach: records decoded (data events, msgpack
    records) and the JSON lines of ``json-seq`` records, which the store reads as they are (the spool's way),
    with the place of each (so that a line the store would leave out is reported by it)."""

    records: dict[str, Record] = field(default_factory=dict)
    lines: list[bytes] = field(default_factory=list)
    line_places: list[Place] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    messages: int = 0
    #: The messages' values, in bytes.
    size: int = 0

    def full(self, batch_size: int, batch_bytes: int) -> bool:
        """Whether the batch holds ``batch_size`` messages or ``batch_bytes`` of their values."""
        return self.messages >= batch_size or self.size >= batch_bytes


def _blocks(lines: list[bytes]) -> list[bytes]:
    """Record lines joined into blocks of ``_LINES_PER_BLOCK`` and ``_BLOCK_BYTES`` at most, as the store's
    ``prepare`` takes them."""
    blocks = []
    for at in range(0, len(lines), _LINES_PER_BLOCK):
        part = lines[at : at + _LINES_PER_BLOCK]
        if sum(map(len, part)) <= _BLOCK_BYTES:
            blocks.append(b"".join(part))
            continue
        block: list[bytes] = []
        size = 0
        for line in part:
            if block and size + len(line) > _BLOCK_BYTES:
                blocks.append(b"".join(block))
                block, size = [], 0
            block.append(line)
            size += len(line)
        blocks.append(b"".join(block))
    return blocks


class _Collector:
    #: Set once created (its error callback belongs to this object, so it is made after it).
    consumer: Consumer

    def __init__(
        self,
        target: Target,
        *,
        batch_size: int,
        batch_bytes: int,
        batch_timeout_s: float,
        max_value_bytes: int,
        stats_interval: float,
        json_stats: bool,
        stop: threading.Event,
        idle_exit_s: float | None,
        out: IO[str] | None,
    ) -> None:
        self.batch_size, self.batch_bytes, self.batch_timeout_s = batch_size, batch_bytes, batch_timeout_s
        self.max_value_bytes = max_value_bytes
        self.stats_interval, self.json_stats = stats_interval, json_stats
        self.stop, self.idle_exit_s = stop, idle_exit_s
        self.out = out if out is not None else (sys.stdout if json_stats else sys.stderr)
        self.stats = CollectorStats()
        self._assignment: set[tuple[str, int]] = set()
        self._rebalancing = False  # between giving partitions up and getting the new ones
        self._assigned = False  # the group has handed this member its partitions (maybe none) once
        self._reported_at: dict[str, float] = {}
        # One batch is written to the store (on a helper thread) while the next one is consumed and decoded;
        # the next one grows until the store is free (up to batch_size), so a slow store gets big batches
        # and a quiet topic gets its records stored at once.
        self._writer = BatchWriter(target, retry=Retry())
        self._background = Background(self._writer, name="zoomtrace-collect-store")
        self._batch = _Batch()

    # -- rebalance callbacks (run inside consume()) ------------------------------------------

    def on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assignment = {(tp.topic, tp.partition) for tp in partitions}
        self.stats.partitions = len(self._assignment)
        self._rebalancing = False
        self._assigned = True

    def on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Store and commit what was read before the partitions go to another collector, so that it
        # does not read them again.
        self._submit()
        self._background.settle()
        self._rebalancing = True
        self._assignment -= {(tp.topic, tp.partition) for tp in partitions}
        self.stats.partitions = len(self._assignment)

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> CollectorStats:
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            with self._background:
                return self._run()
        finally:
            self._writer.target.release()
            if gc_was_enabled:
                gc.enable()

    def _run(self) -> CollectorStats:
        started = last_report = last_message = last_gc = time.monotonic()
        reported = CollectorStats()
        while not self.stop.is_set():
            busy = self._background.busy
            if not busy:
                self._background.settle()  # a batch just stored: count it and commit its offsets now
            room = max(1, min(_CONSUME_MAX, self.batch_size - self._batch.messages))
            # While the store is busy, keep reading in short steps, to hand over the moment it is free.
            timeout = min(self.batch_timeout_s, 0.05) if busy else self.batch_timeout_s
            messages = self.consumer.consume(num_messages=room, timeout=timeout)
            now = time.monotonic()
            if messages:
                last_message = now
                self._decode(messages)
            if self._batch.messages and (not busy or self._batch.full(self.batch_size, self.batch_bytes)):
                self._submit()
            elif not messages and not busy and not self._batch.messages:
                self._writer.target.release()  # nothing to write: let other sessions have the store
            if self.stats_interval > 0 and now - last_report >= self.stats_interval:
                self._report(now - last_report, reported, now - started)
                reported = CollectorStats(**{**asdict(self.stats), "malformed_by_reason": {}})
                last_report = now
            if now - last_gc >= _GC_INTERVAL_S:
                gc.collect()
                last_gc = now
            if self._rebalancing or (not self._assigned and now - started < _JOIN_GRACE_S):
                last_message = now  # waiting for the group to hand out partitions is not being idle
            if self.idle_exit_s is not None and now - last_message >= self.idle_exit_s:
                break
        self._submit()
        self._background.settle()
        now = time.monotonic()
        self.stats.elapsed_s = round(now - started, 3)
        self._report(now - last_report, reported, now - started, final=True)
        return self.stats

    def _decode(self, messages: list[Any]) -> None:
        """Add ``messages`` to the batch (the loop runs once per record: nothing in it that can be done once)."""
        decode, record_line = kafka_codec.decode_message, kafka_codec.record_line
        limit = self.max_value_bytes
        batch = self._batch
        records, offsets = batch.records, batch.offsets
        add_line, add_line_place = batch.lines.append, batch.line_places.append
        errors = size = 0
        for msg in messages:
            if msg.error() is not None:
                self._kafka_error(msg.error())
                errors += 1
                continue
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            offsets[topic, partition] = offset + 1
            value = msg.value()
            size += len(value or b"")
            line = record_line(value, limit)
            if line is not None:
                add_line(line)
                add_line_place((topic, partition, offset))
                continue
            try:
                record = decode(msg, max_value_bytes=limit)
            except kafka_codec.MalformedMessage as exc:
                batch.problems.append(self._malformed((topic, partition, offset), exc))
                continue
            records[record.id] = record  # a node record arrives from two topics: store it once
        self.stats.consumed += len(messages) - errors
        batch.messages += len(messages) - errors
        batch.size += size

    def _submit(self) -> None:
        """Prepare the batch read so far and hand it to the store thread, once the previous one is stored and
        its offsets committed (a store error propagates from here, uncommitted)."""
        batch = self._batch
        if not batch.messages:
            return
        self._batch = _Batch()
        records, lines = list(batch.records.values()), batch.lines
        prepared = self._writer.batch(records, lines=_blocks(lines), line_count=len(lines), problems=batch.problems)
        if lines and prepared.prepared.skipped:
            good = self._lines_kept(batch)  # rare: the store left lines out (a producer that is not Zoom's)
            if len(good) < len(lines):
                prepared = self._writer.batch(
                    records, lines=_blocks(good), line_count=len(good), problems=batch.problems
                )
        self.stats.batches += 1
        offsets = batch.offsets  # only these are kept until the batch is stored
        self._background.submit(prepared, lambda written: self._stored(written, offsets))

    def _lines_kept(self, batch: _Batch) -> list[bytes]:
        """The batch's record lines that the store keeps; each message whose line it leaves out is reported as
        malformed by its place, as the others are (``refused_line`` is the stores' own test of a line)."""
        good = []
        for line, place in zip(batch.lines, batch.line_places, strict=True):
            why = refused_line(line)
            if why is None:
                good.append(line)
            else:
                batch.problems.append(self._malformed(place, kafka_codec.MalformedMessage("bad value", why)))
        return good

    def _stored(self, written: Written, offsets: dict[tuple[str, int], int]) -> None:
        self.stats.stored += written.stored
        self.stats.new += written.new
        self.stats.rejected += written.refused
        self._commit(offsets)

    def _commit(self, offsets: dict[tuple[str, int], int]) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        tps = [TopicPartition(topic, partition, offset) for (topic, partition), offset in offsets.items()]
        try:
            self.consumer.commit(offsets=tps, asynchronous=False)
            self.stats.commits += 1
        except KafkaException as exc:
            # A rebalance took these partitions away: their new owner reads the batch again and
            # the store keeps one copy, so this is safe; it is reported because it costs work.
            self.stats.commit_failures += 1
            self._say(f"offset commit failed ({exc}); the batch will be read again by the partitions' owner")

    def on_error(self, error: KafkaError) -> None:
        """Client-level errors (broker down, authentication): librdkafka retries; report, rate-limited."""
        if error.fatal():
            self._say(f"fatal Kafka client error: {error.str()}")
            self.stop.set()
            return
        self._say(f"Kafka: {error.str()} (retrying)", key=f"kafka:{error.code()}")

    def _kafka_error(self, error: KafkaError) -> None:
        from confluent_kafka import KafkaError, KafkaException

        if error.code() == KafkaError._PARTITION_EOF:
            return
        if error.fatal():
            raise KafkaException(error)
        self._say(f"Kafka: {error.str()}", key=f"kafka:{error.code()}")

    def _malformed(self, place: Place, exc: kafka_codec.MalformedMessage) -> Problem:
        """Count and report the malformed message at ``place``; the problem to keep in the store."""
        stats = self.stats
        stats.malformed += 1
        count = stats.malformed_by_reason[exc.reason] = stats.malformed_by_reason.get(exc.reason, 0) + 1
        topic, partition, offset = place
        if count <= _MAX_REPORTS:
            suffix = " (further ones counted, not shown)" if count == _MAX_REPORTS else ""
            self._say(f"skipped malformed message {topic}[{partition}]@{offset}: {exc}{suffix}")
        return f"kafka:{topic}[{partition}]@{offset}", f"malformed message skipped: {exc}"

    # -- reporting -----------------------------------------------------------------------------

    def _lag(self) -> int | None:
        from confluent_kafka import KafkaException

        try:
            assignment = self.consumer.assignment()
            if not assignment:
                return 0
            positions = self.consumer.position(assignment)
        except KafkaException:
            return None
        lag = 0
        for tp in positions:
            try:
                low, high = self.consumer.get_watermark_offsets(tp, cached=True)
                if high < 0:
                    low, high = self.consumer.get_watermark_offsets(tp, timeout=1.0, cached=False)
            except KafkaException:
                return None
            if high < 0:
                return None
            lag += max(0, high - (tp.offset if tp.offset >= 0 else low))
        return lag

    def _report(self, interval: float, before: CollectorStats, elapsed: float, *, final: bool = False) -> None:
        stats = self.stats
        stats.lag = self._lag()
        stats.elapsed_s = round(elapsed, 3)
        stored = stats.stored - before.stored
        rate = stored / interval if interval > 0 else 0.0
        if self.json_stats:
            line = json.dumps(
                {
                    "event": "final" if final else "stats",
                    **asdict(stats),
                    "interval_s": round(interval, 3),
                    "records_per_s": round(rate, 1),
                }
            )
        else:
            lag = "?" if stats.lag is None else str(stats.lag)
            line = (
                f"collector: {stats.stored} records stored ({stats.new} new), +{stored} at {rate:.0f}/s, "
                f"{stats.malformed} malformed, lag {lag} on {stats.partitions} partitions"
                + (" — stopped" if final else "")
            )
        with contextlib.suppress(Exception):
            self.out.write(line + "\n")
            self.out.flush()

    def _say(self, message: str, key: str | None = None) -> None:
        """Report on stderr; with a ``key``, at most once per ``_ERROR_REPORT_INTERVAL_S``."""
        if key is not None:
            now = time.monotonic()
            if now - self._reported_at.get(key, -_ERROR_REPORT_INTERVAL_S) < _ERROR_REPORT_INTERVAL_S:
                return
            self._reported_at[key] = now
        say(message)


def run_collector(
    bootstrap: str,
    store_home: Path | str,
    group_id: str = DEFAULT_GROUP_ID,
    topics_pattern: str = DEFAULT_TOPICS_PATTERN,
    stats_interval: float = 10.0,
    json_stats: bool = False,
    *,
    config: dict[str, Any] | None = None,
    batch_size: int = 100_000,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    batch_timeout_s: float = 0.5,
    max_value_bytes: int = kafka_codec.DEFAULT_MAX_VALUE_BYTES,
    idle_exit_s: float | None = None,
    stop: threading.Event | None = None,
    store: StoreWriter | None = None,
    store_url: str | None = None,
    retention_days: int | None = None,
    out: IO[str] | None = None,
) -> CollectorStats:
    """Consume the Zoom topics into the store of ``store_home`` until stopped; returns the totals.

    ``bootstrap`` is ``host:port[,host:port]`` or ``kafka://...?option=value`` (options go to the
    consumer). Stops on SIGTERM/SIGINT (when called from the main thread), when ``stop`` is set,
    or after ``idle_exit_s`` seconds without a message. The store is ``store_url``, else
    ``$ZOOMTRACE_STORE``, else the DuckDB file of ``store_home`` (a ClickHouse store is created with
    ``retention_days`` if need be); one store session is kept across the batches of up to 2 s
    and closed whenever nothing is left to write, so the store stays usable by
    other commands while the collector runs. ``store`` replaces opening one (the caller
    then owns it). A store write takes what arrived while the previous write ran, up to ``batch_size``
    messages and about ``batch_bytes`` of their values (the batch ends with the consumer call that reaches
    it: librdkafka's prefetch, 64 MiB, bounds what that call adds). Automatic garbage
    collection is off while the collector runs (it collects every 30 s itself).
    """
    servers, url_options = parse_bootstrap(bootstrap)
    if not topics_pattern.startswith("^"):
        topics_pattern = "^" + topics_pattern  # librdkafka treats only ^-prefixed names as patterns
    stop = stop or threading.Event()
    consumer_config = {
        **DEFAULT_CONSUMER_CONFIG,
        "client.id": f"zoomtrace-collector-{group_id}",
        **url_options,
        **(config or {}),
        "bootstrap.servers": servers,
        "group.id": group_id,
        "enable.auto.commit": False,
    }
    if store is not None:
        target = open_target(store)
    else:
        target = home_target(Path(store_home), store_url, retention_days=retention_days, hold_s=_SESSION_HOLD_S)
    with stop_on_signals(stop):
        collector = _Collector(
            target,
            batch_size=batch_size,
            batch_bytes=batch_bytes,
            batch_timeout_s=batch_timeout_s,
            max_value_bytes=max_value_bytes,
            stats_interval=stats_interval,
            json_stats=json_stats,
            stop=stop,
            idle_exit_s=idle_exit_s,
            out=out,
        )
        consumer_config.setdefault("error_cb", collector.on_error)
        from confluent_kafka import Consumer, KafkaException

        try:
            consumer = collector.consumer = Consumer(consumer_config)
        except (KafkaException, ValueError, TypeError) as exc:
            raise ConfigError(f"bad Kafka consumer configuration: {exc}") from None
        try:
            consumer.subscribe([topics_pattern], on_assign=collector.on_assign, on_revoke=collector.on_revoke)
            return collector.run()
        finally:
            with contextlib.suppress(Exception):
                consumer.close()  # leave the group: partitions move to the other collectors now


# -- command line --------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser, *, json_option: bool = True) -> None:
    """The Kafka options of ``zoomtrace collect`` (``--home``, ``--store`` and ``--retention`` are the CLI's own).

    ``--from`` is optional here so that the command can offer other sources too; :func:`run_from_args`
    needs it. ``json_option=False`` when the parser already has ``--json``.
    """
    parser.add_argument(
        "--from",
        dest="source",
        metavar="KAFKA",
        help="read the Zoom topics of the Kafka cluster kafka://host:9092[,host:9092][?option=value&...]",
    )
    parser.add_argument(
        "--to",
        metavar="HOME",
        help="Zoom home whose store to write to (default: --home; --store names another store)",
    )
    parser.add_argument(
        "--group-id",
        default=DEFAULT_GROUP_ID,
        help="consumer group; collectors sharing one split the partitions (default: %(default)s)",
    )
    parser.add_argument(
        "--topics",
        default=DEFAULT_TOPICS_PATTERN,
        metavar="REGEX",
        help="topics to read, a regular expression (default: %(default)s)",
    )
    parser.add_argument(
        "--stats-interval",
        type=seconds_or_zero,
        default=10.0,
        metavar="SECONDS",
        help="report throughput and lag this often; 0 for only at the end (default: 10)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive,
        default=100_000,
        help="messages per store write, at most (batches grow to it while the store is busy)",
    )
    parser.add_argument(
        "--batch-bytes",
        type=positive,
        default=DEFAULT_BATCH_BYTES,
        help="bytes of message values per store write, about (the consumer call reaching it ends the batch; 128 MiB)",
    )
    parser.add_argument(
        "--max-value-bytes",
        type=positive,
        default=kafka_codec.DEFAULT_MAX_VALUE_BYTES,
        help="skip (and report) messages with a larger value",
    )
    parser.add_argument(
        "--exit-when-idle",
        type=seconds,
        metavar="SECONDS",
        help="stop after this long without a message while holding partitions (batch runs)",
    )
    parser.add_argument(
        "-X",
        dest="options",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a librdkafka consumer option, e.g. -X security.protocol=SSL (repeatable)",
    )
    if json_option:
        parser.add_argument("--json", action="store_true", help="stats as JSON lines on stdout")


def run_from_args(args: argparse.Namespace) -> int:
    """``zoomtrace collect --from kafka://...``: run the collector; 0 after a clean stop."""
    if not getattr(args, "source", None):
        raise ConfigError("collect needs --from kafka://HOST:PORT (the Kafka cluster to read)")
    options: dict[str, str] = {}
    for item in args.options:
        name, equals, value = item.partition("=")
        if not equals:
            raise ConfigError(f"-X needs NAME=VALUE, got {item!r}")
        options[name] = value
    from confluent_kafka import KafkaException

    try:
        run_collector(
            args.source,
            Path(args.to or args.home),
            group_id=args.group_id,
            topics_pattern=args.topics,
            stats_interval=args.stats_interval,
            json_stats=getattr(args, "json", False),
            config=options,
            batch_size=args.batch_size,
            batch_bytes=args.batch_bytes,
            max_value_bytes=args.max_value_bytes,
            idle_exit_s=args.exit_when_idle,
            store_url=args.store,
            retention_days=parse_retention(args.retention) if args.retention else None,
        )
    except KafkaException as exc:  # a fatal client error: one line, like every other failure of the CLI
        raise ZoomError(f"Kafka: {exc}") from None
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from zoomtrace.wire.spool import default_home

    description = "store Zoom records from Kafka (a consumer group)"
    parser = argparse.ArgumentParser(prog="zoomtrace collect", description=description)
    parser.add_argument("--home", default=str(default_home()), help=argparse.SUPPRESS)
    add_store_arguments(parser)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_from_args(args)
    except ZoomError as exc:
        print(f"zoomtrace collect: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1


if __name__ == "__main__":
    sys.exit(main())
