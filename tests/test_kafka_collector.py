"""The collector on a real Apache Kafka broker: bulk store, idempotence, malformed input, crashes, scaling."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest
from confluent_kafka import Producer

from support.kafka_broker import KafkaBroker
from zoomtrace.collect.kafka_collector import CollectorStats, run_collector
from zoomtrace.sinks import NodeIdentity
from zoomtrace.sinks.kafka import KafkaSink
from zoomtrace.store import WriteReport, open_store
from zoomtrace.wire import kafka_codec
from zoomtrace.wire.record import Code, Record, encoder, new_span_id, new_trace_id, uuid7

pytestmark = pytest.mark.kafka

SRC = Path(__file__).resolve().parents[1] / "src"


# -- helpers -------------------------------------------------------------------------------------


def unique_env() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def pattern(env: str) -> str:
    return rf"^{env}\..*\.(log|event|raw|span|node)$"


def make_records(n: int, node_id: str) -> list[Record]:
    """``n`` records of every kind but node, spread over many traces (so over every partition)."""
    out: list[Record] = []
    trace, span = new_trace_id(), new_span_id()
    for i in range(n):
        if i % 10 == 0:
            trace, span = new_trace_id(), new_span_id()
        ts = time.time_ns()
        common: dict[str, Any] = {
            "id": uuid7(ts),
            "ts_ns": ts,
            "node_id": node_id,
            "trace_id": trace,
            "span_id": span,
            "code": Code("app/handler.py", 10 + i % 7, "handle", "c0ffee"),
        }
        kind = ("log", "span", "event", "log", "raw")[i % 5]
        if kind == "log":
            out.append(Record(kind="log", type="app", level="INFO", message=f"step {i}", attrs={"i": i}, **common))
        elif kind == "span":
            out.append(Record(kind="span", type="work", end_ns=ts + 1000, status="ok", attrs={"i": i}, **common))
        elif kind == "event":
            out.append(Record(kind="event", type="Thing", payload={"i": i, "name": f"thing {i}"}, **common))
        else:
            out.append(
                Record(kind="raw", type="blob", payload=f"raw {i}".encode(), attrs={"raw.format": "bin"}, **common)
            )
    return out


def publish(bootstrap: str, env: str, records: list[Record], tmp_path: Path) -> None:
    """Send ``records`` through the Kafka sink, as an instrumented service would."""
    node_id = records[0].node_id
    sink = KafkaSink.from_url(
        f"kafka://{bootstrap}?linger.ms=5&zoom.env={env}&zoom.group=app",
        home=tmp_path / f"sink-{uuid.uuid4().hex[:6]}",
        node=NodeIdentity(node_id),
        report_loss=lambda reason, n: None,  # counted in sink.counts.lost too, asserted empty below
    )
    for i in range(0, len(records), 5000):
        sink.write(records[i : i + 5000])
    sink.flush()
    assert sink.counts.spooled == 0 and sink.counts.lost == {}, sink.counts
    sink.close()


def collect(bootstrap: str, home: Path, env: str, group_id: str | None = None, **kwargs: Any) -> CollectorStats:
    kwargs.setdefault("idle_exit_s", 4.0)
    kwargs.setdefault("stats_interval", 0)
    return run_collector(
        bootstrap,
        home,
        group_id=group_id or f"c-{uuid.uuid4().hex}",
        topics_pattern=pattern(env),
        config={"topic.metadata.refresh.interval.ms": 1000},
        **kwargs,
    )


def sql(home: Path, query: str) -> list[tuple[Any, ...]]:
    with open_store(home) as store:
        return store.sql(query)[1]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


class CollectorProcess:
    """``python -m zoomtrace.collect.kafka_collector`` in its own process, its JSON stats read as they come."""

    def __init__(self, bootstrap: str, home: Path, env: str, group_id: str, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "zoomtrace.collect.kafka_collector",
                "--from",
                f"kafka://{bootstrap}",
                "--to",
                str(home),
                "--group-id",
                group_id,
                "--topics",
                pattern(env),
                "--json",
                "--stats-interval",
                "0.2",
                "-X",
                "topic.metadata.refresh.interval.ms=1000",
                *extra,
            ],
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.last: dict[str, Any] = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def wait_for(self, check: Any, timeout_s: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                self.last = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise AssertionError(f"collector exited {self.proc.returncode}: {self.stderr()}") from None
                continue
            if check(self.last):
                return self.last
        raise AssertionError(f"collector stats never matched; last {self.last}; stderr: {self.stderr()}")

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return "(running)"
        return self.proc.stderr.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def collectors() -> Iterator[list[CollectorProcess]]:
    started: list[CollectorProcess] = []
    yield started
    for c in started:
        c.kill()


# -- tests ---------------------------------------------------------------------------------------


def test_collector_stores_everything_once_and_is_idempotent(kafka_broker: KafkaBroker, tmp_path: Path) -> None:
    env = unique_env()
    records = make_records(10_000, uuid7())
    publish(kafka_broker.bootstrap, env, records, tmp_path)
    home = tmp_path / "store"

    group = f"c-{uuid.uuid4().hex}"
    first = collect(kafka_broker.bootstrap, home, env, group_id=group)
    assert first.malformed == 0 and first.commit_failures == 0
    assert first.new >= len(records)  # + the sink's own kafka.sink node record
    assert sql(home, "SELECT count(*), count(DISTINCT id) FROM records WHERE type <> 'kafka.sink'") == [
        (len(records), len(records))
    ]
    (event,) = [r for r in records if r.kind == "event"][:1]
    with open_store(home) as store:
        got = store.record(event.id)
    assert got["payload"] == event.payload and got["code"]["file"] == "app/handler.py"

    # A second group reads everything again: the store keeps one copy of each record.
    again = collect(kafka_broker.bootstrap, home, env)
    assert again.consumed == first.consumed and again.new == 0
    # The first group committed its offsets: it has nothing left to read.
    assert collect(kafka_broker.bootstrap, home, env, group_id=group, idle_exit_s=3).consumed == 0
    assert sql(home, "SELECT count(*) FROM records WHERE type <> 'kafka.sink'") == [(len(records),)]


def test_new_topics_are_picked_up_without_restart(kafka_broker: KafkaBroker, tmp_path: Path) -> None:
    env = unique_env()
    home = tmp_path / "store"
    publish(kafka_broker.bootstrap, env, make_records(10, uuid7()), tmp_path)  # one service exists
    stop = threading.Event()
    result: list[CollectorStats] = []
    thread = threading.Thread(
        target=lambda: result.append(
            run_collector(
                kafka_broker.bootstrap,
                home,
                group_id=f"c-{uuid.uuid4().hex}",
                topics_pattern=pattern(env),
                stats_interval=0,
                stop=stop,
                config={"topic.metadata.refresh.interval.ms": 1000},
            )
        )
    )
    thread.start()
    try:
        time.sleep(3)
        # A new service (new group, so new topics) starts publishing while the collector runs.
        late = make_records(50, uuid7())
        sink = KafkaSink.from_url(
            f"kafka://{kafka_broker.bootstrap}?zoom.env={env}&zoom.group=newcomer",
            home=tmp_path / "late",
            node=NodeIdentity(late[0].node_id),
            report_loss=lambda reason, n: None,
        )
        sink.write(late)
        sink.close()
        deadline = time.monotonic() + 60
        while True:
            ids = {r[0] for r in sql(home, "SELECT id FROM records")} if (home / "store.duckdb").exists() else set()
            if {r.id for r in late} <= ids:
                break
            assert time.monotonic() < deadline, "records on new topics not collected within 60 s"
            time.sleep(0.5)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive() and result


def test_malformed_messages_are_reported_and_skipped(
    kafka_broker: KafkaBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = unique_env()
    good = make_records(20, uuid7())
    event = next(r for r in good if r.kind == "event")
    log = next(r for r in good if r.kind == "log")
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap})
    bad_topic, log_topic = f"{env}.bad.event", f"{env}.bad.log"
    valid_event_headers = [
        ("zoom.encoding", b"json"),
        ("zoom.id", uuid7().encode()),
        ("zoom.type", b"T"),
        ("zoom.ts_ns", b"1"),
        ("zoom.node_id", b"n"),
    ]
    producer.produce(bad_topic, b'{"a": 1}', headers=[("zoom.encoding", b"json"), ("zoom.type", b"T")])  # no id
    producer.produce(
        bad_topic, b'{"a": 1}', headers=[*valid_event_headers[:4], ("zoom.ts_ns", b"soon"), ("zoom.node_id", b"n")]
    )  # bad ts, twice ts
    producer.produce(bad_topic, b"\xff\xfe not json", headers=valid_event_headers)  # non-JSON value
    producer.produce(bad_topic, b'{"plain": "business message without zoom headers"}')
    producer.produce(log_topic, b"x" * 300_000, headers=[("zoom.encoding", b"msgpack")])  # huge value
    producer.produce(log_topic, b"\x93garbage", headers=[("zoom.encoding", b"msgpack")])  # not a record
    producer.produce(
        log_topic, encoder.encode(log), headers=[("zoom.encoding", b"msgpack"), ("zoom.id", b"\xff\xfe")]
    )  # bad header, ignored
    json_seq = [("zoom.encoding", b"json-seq")]
    producer.produce(log_topic, b'\x1e{"id": "x", "kind": "log"}\n', headers=json_seq)  # framed, not a record
    line = kafka_codec.encode(log)[1][1:]
    producer.produce(log_topic, b"\x1e" + line + line, headers=json_seq)  # two lines in one message
    producer.produce(log_topic, b"\x1e" + line[:-1] + line, headers=json_seq)  # two records on one line
    assert producer.flush(10) == 0
    publish(kafka_broker.bootstrap, env, good, tmp_path)  # the good ones come after the bad ones

    home = tmp_path / "store"
    capsys.readouterr()
    stats = collect(kafka_broker.bootstrap, home, env, max_value_bytes=100_000)
    assert stats.malformed == 9, stats
    assert stats.malformed_by_reason == {"bad headers": 3, "non-JSON value": 1, "huge value": 1, "bad value": 4}
    report = capsys.readouterr().err
    assert report.count("skipped malformed message") == 9
    assert report.count(f"{log_topic}[") == 5 and "not a record" in report
    assert f"{bad_topic}[" in report and "huge value" in report and "non-JSON value" in report
    stored = {row[0] for row in sql(home, "SELECT id FROM records")}
    assert {r.id for r in good} <= stored and log.id in stored and event.id in stored
    with open_store(home) as store:
        problems = store.problems()
    assert len(problems) == 9 and all(p["segment"].startswith(f"kafka:{env}.bad.") for p in problems)


def test_collector_killed_mid_batch_loses_nothing_duplicates_nothing(
    kafka_broker: KafkaBroker, tmp_path: Path, collectors: list[CollectorProcess]
) -> None:
    env = unique_env()
    records = make_records(60_000, uuid7())
    publish(kafka_broker.bootstrap, env, records, tmp_path)
    home = tmp_path / "store"
    group = f"c-{uuid.uuid4().hex}"

    # Static membership: the restarted collector takes the dead one's partitions at once instead
    # of waiting for its session to time out.
    static = ("-X", "group.instance.id=collector-1")
    first = CollectorProcess(kafka_broker.bootstrap, home, env, group, "--batch-size", "2000", *static)
    collectors.append(first)
    first.wait_for(lambda s: s["stored"] >= 4000)
    first.proc.send_signal(signal.SIGKILL)  # between or inside batches: no chance to clean up
    first.proc.wait(10)
    (partial,) = sql(home, "SELECT count(*) FROM records")[0]
    assert 0 < partial < len(records), "the kill should land mid-run"

    second = CollectorProcess(kafka_broker.bootstrap, home, env, group, "--exit-when-idle", "4", *static)
    collectors.append(second)
    second.proc.wait(120)
    assert second.proc.returncode == 0, second.stderr()
    rows = sql(home, "SELECT count(*), count(DISTINCT id) FROM records WHERE type <> 'kafka.sink'")
    assert rows == [(len(records), len(records))]
    assert {r[0] for r in sql(home, "SELECT id FROM records")} >= {r.id for r in records}


def test_two_collectors_share_partitions_and_store_each_record_once(
    kafka_broker: KafkaBroker, tmp_path: Path, collectors: list[CollectorProcess]
) -> None:
    env = unique_env()
    warmup = make_records(100, uuid7())
    publish(kafka_broker.bootstrap, env, warmup, tmp_path)  # creates the topics (15 partitions)
    home = tmp_path / "store"
    group = f"c-{uuid.uuid4().hex}"
    a = CollectorProcess(kafka_broker.bootstrap, home, env, group)
    b = CollectorProcess(kafka_broker.bootstrap, home, env, group)
    collectors.extend([a, b])
    # Both hold partitions once the group has settled (and neither holds all of them).
    deadline = time.monotonic() + 60
    while True:
        sa, sb = a.wait_for(lambda s: True), b.wait_for(lambda s: True)
        if sa["partitions"] > 0 and sb["partitions"] > 0:
            break
        assert time.monotonic() < deadline, f"partitions never shared: {sa} {sb}"

    records = make_records(30_000, uuid7())
    publish(kafka_broker.bootstrap, env, records, tmp_path)
    expected = {r.id for r in records} | {r.id for r in warmup}
    deadline = time.monotonic() + 120
    while True:
        (count,) = sql(home, "SELECT count(*) FROM records WHERE type <> 'kafka.sink'")[0]
        if count >= len(expected):
            break
        assert time.monotonic() < deadline, f"only {count} of {len(expected)} records stored"
        time.sleep(0.5)

    for c in (a, b):  # SIGTERM: a clean stop with a final report
        c.proc.send_signal(signal.SIGTERM)
    finals = []
    for c in (a, b):
        assert c.proc.wait(30) == 0, c.stderr()
        finals.append(c.wait_for(lambda s: s["event"] == "final", timeout_s=10))
    assert all(f["new"] > 0 for f in finals), f"one collector did all the work: {finals}"
    rows = sql(home, "SELECT count(*), count(DISTINCT id) FROM records WHERE type <> 'kafka.sink'")
    assert rows == [(len(expected), len(expected))]
    # Their offsets were committed at the stop: the group has nothing left to read.
    leftover = collect(kafka_broker.bootstrap, home, env, group_id=group, idle_exit_s=3)
    assert leftover.new == 0


def test_store_write_failure_commits_nothing(kafka_broker: KafkaBroker, tmp_path: Path) -> None:
    """A store that refuses every record stops the collector before any offset is committed."""
    env = unique_env()
    records = make_records(50, uuid7())
    publish(kafka_broker.bootstrap, env, records, tmp_path)
    group = f"c-{uuid.uuid4().hex}"

    class Refused(msgspec.Struct):
        """A prepared batch: opaque but for what it left out (store.protocols.PreparedBatch)."""

        records: list[Record]
        lines: Sequence[bytes]
        skipped: list[str] = []

    class Refusing:
        def prepare(self, records: list[Record], lines: Sequence[bytes] = ()) -> Refused:
            return Refused(records, lines)

        def write(self, batch: Any, **kwargs: Any) -> WriteReport:
            raise OSError("disk full")

        def offsets(self) -> dict[str, int]:
            return {}

        def close(self) -> None:
            pass

    from zoomtrace.errors import StoreError

    with pytest.raises(StoreError, match="without committing"):
        collect(kafka_broker.bootstrap, tmp_path / "unused", env, group_id=group, store=Refusing())
    stats = collect(kafka_broker.bootstrap, tmp_path / "store", env, group_id=group)
    assert stats.new >= len(records)


def test_command_line_entry_stops_cleanly_on_sigterm(
    kafka_broker: KafkaBroker, tmp_path: Path, collectors: list[CollectorProcess]
) -> None:
    env = unique_env()
    publish(kafka_broker.bootstrap, env, make_records(100, uuid7()), tmp_path)
    c = CollectorProcess(kafka_broker.bootstrap, tmp_path / "store", env, f"c-{uuid.uuid4().hex}")
    collectors.append(c)
    c.wait_for(lambda s: s["stored"] >= 100)
    t = time.monotonic()
    c.proc.send_signal(signal.SIGTERM)
    assert c.proc.wait(15) == 0
    assert time.monotonic() - t < 10
    final = c.wait_for(lambda s: s["event"] == "final", timeout_s=5)
    assert final["stored"] >= 100 and final["lag"] == 0
    assert msgspec.json.decode(json.dumps(final)) == final


def test_a_busy_store_gets_batches_bounded_by_bytes(kafka_broker: KafkaBroker, tmp_path: Path) -> None:
    """While the store writes, the next batch grows only to ``batch_bytes`` (here, any message reaches it): the
    collector hands it over and waits, rather than reading on to ``batch_size`` messages of any size."""
    from zoomtrace.collect.kafka_collector import _CONSUME_MAX

    env = unique_env()
    records = make_records(3 * _CONSUME_MAX, uuid7())
    publish(kafka_broker.bootstrap, env, records, tmp_path)
    sizes: list[int] = []
    with open_store(tmp_path / "store", create=True) as store:
        real = store.write

        def slow_first(batch: Any, **kwargs: Any) -> WriteReport:
            if not sizes:
                # Time for the collector to read everything while the store is busy, if it would.
                threading.Event().wait(2.0)
            report = real(batch, **kwargs)
            sizes.append(report.new)
            return report

        store.write = slow_first  # type: ignore[method-assign]
        stats = collect(kafka_broker.bootstrap, tmp_path / "unused", env, store=store, batch_bytes=1)
    assert stats.new == sum(sizes) >= len(records)
    assert len(sizes) >= 3 and max(sizes) <= _CONSUME_MAX, sizes
