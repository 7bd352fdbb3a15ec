"""The Kafka sink on a real Apache Kafka broker: round trip, business messages, outages, exit while down."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import pytest
from confluent_kafka import Consumer, KafkaError
from confluent_kafka.admin import AdminClient, NewTopic

import zoomtrace as zt
from support.kafka_broker import KafkaBroker, free_port_pair
from zoomtrace.collect.kafka_collector import run_collector
from zoomtrace.collect.spool_ingest import ingest_spool
from zoomtrace.errors import ConfigError
from zoomtrace.sinks import NodeIdentity
from zoomtrace.sinks.kafka import KafkaSink
from zoomtrace.store import open_store
from zoomtrace.wire import kafka_codec
from zoomtrace.wire.record import Record, uuid7
from zoomtrace.wire.spool import read_segment

pytestmark = pytest.mark.kafka

SRC = Path(__file__).resolve().parents[1] / "src"


# -- helpers -------------------------------------------------------------------------------------


def unique_env() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def consume_all(bootstrap: str, pattern: str, idle_s: float = 4.0, timeout_s: float = 60.0) -> list[Any]:
    """Every message on the topics matching ``pattern``, with a plain confluent-kafka consumer."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"plain-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "topic.metadata.refresh.interval.ms": 1000,
        }
    )
    consumer.subscribe([pattern])
    messages: list[Any] = []
    deadline = time.monotonic() + timeout_s
    last = time.monotonic()
    try:
        while time.monotonic() - last < idle_s and time.monotonic() < deadline:
            for msg in consumer.consume(10_000, 0.5):
                assert msg.error() is None, msg.error()
                messages.append(msg)
                last = time.monotonic()
    finally:
        consumer.close()
    return messages


def collect(bootstrap: str, home: Path, env: str, **kwargs: Any) -> Any:
    """Run the collector in this process until the topics of ``env`` are drained."""
    return run_collector(
        bootstrap,
        home,
        group_id=f"c-{uuid.uuid4().hex}",
        topics_pattern=rf"^{env}\..*\.(log|event|raw|span|node)$",
        stats_interval=0,
        idle_exit_s=4.0,
        config={"topic.metadata.refresh.interval.ms": 1000},
        **kwargs,
    )


def sink_at(broker: KafkaBroker, home: Path, options: str = "") -> KafkaSink:
    """A Kafka sink of a new node, in process, that takes an outage for one after 1 s without acknowledgement."""
    url = f"kafka://{broker.bootstrap}?zoom.spool_after_s=1" + (f"&{options}" if options else "")
    return KafkaSink.from_url(url, home=home, node=NodeIdentity(uuid7()), report_loss=lambda reason, n: None)


def read_jsonl(path: Path) -> list[Record]:
    """Records of a ``file://`` sink (JSON carries bytes payloads as base64: see ``same``)."""
    decoder = msgspec.json.Decoder(Record)
    return [decoder.decode(line) for line in path.read_bytes().splitlines() if line.strip()]


def same(wire: Record, expected: Record) -> bool:
    if isinstance(wire.payload, bytes) and isinstance(expected.payload, str):
        expected = msgspec.structs.replace(expected, payload=base64.b64decode(expected.payload))
    return wire == expected


def child_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("ZOOMTRACE_SINK", None)
    env["PYTHONPATH"] = str(SRC) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    env["ZOOMTRACE_HOME"] = str(home)
    return env


# An application run in its own process; it does PHASES batches of OPS operations (a span and
# a log each), waiting for a line on stdin before each batch after the first.
APP = textwrap.dedent("""
    import sys, time
    import zoomtrace as zt

    url, env, phases, ops = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    zt.init("outage-app", env=env, group="g", sink=url)
    n = 0
    for phase in range(phases):
        if phase:
            sys.stdin.readline()
        for _ in range(ops):
            with zt.span("op", n=n):
                zt.log.info("operation {n}", n=n)
            n += 1
            if n % 50 == 0:
                time.sleep(0.01)
        print(f"phase {phase} done", flush=True)
    t = time.monotonic()
    zt.shutdown()
    print(f"shutdown {time.monotonic() - t:.2f}", flush=True)
""")


def start_app(tmp_path: Path, home: Path, url: str, env: str, phases: int, ops: int) -> subprocess.Popen[str]:
    script = tmp_path / "app.py"
    script.write_text(APP)
    return subprocess.Popen(
        [sys.executable, str(script), url, env, str(phases), str(ops)],
        cwd=tmp_path,
        env=child_env(home),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def expect_line(proc: subprocess.Popen[str], prefix: str, timeout_s: float = 60.0) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"app ended before {prefix!r}: {proc.stderr.read() if proc.stderr else ''}")
        if line.startswith(prefix):
            return line.strip()
    raise AssertionError(f"no {prefix!r} within {timeout_s}s")


def store_rows(home: Path, query: str) -> list[tuple[Any, ...]]:
    with open_store(home) as store:
        return store.sql(query)[1]


# -- round trip ----------------------------------------------------------------------------------


def test_every_kind_round_trips_through_kafka_into_the_store(kafka_broker: KafkaBroker, tmp_path: Path) -> None:
    env = unique_env()
    jsonl = tmp_path / "same.jsonl"
    zt.init(
        "shop-orders",
        env=env,
        group="shop",
        home=tmp_path / "app-home",
        sink=[f"kafka://{kafka_broker.bootstrap}?linger.ms=5", f"file://{jsonl}"],
    )
    with zt.span("checkout", user="u1", on_behalf_of="customer-42") as span:
        zt.log.info("charged {amount} for {user}", amount=12.5, user="u1")
        placed = zt.event(
            {"order": 7, "total": 12.5, "items": [{"sku": "A-1", "qty": 2}], "note": "ünïcode"},
            type="OrderPlaced",
            channel="web",
        )
        zt.event({"order": 7, "paid": True}, type="PaymentCaptured", sources=[placed])
        zt.raw(b"\x00\x01\x02 binary \xff", format="bin", type="card-response")
        try:
            raise ValueError("card declined")
        except ValueError:
            zt.log.exception("payment failed")
    assert zt.flush(10)
    zt.shutdown()

    expected = {r.id: r for r in read_jsonl(jsonl)}
    assert {r.kind for r in expected.values()} == {"log", "event", "raw", "span", "node"}

    # On the wire: every record decodes back equal, field for field.
    messages = consume_all(kafka_broker.bootstrap, rf"^{env}\..*")
    topics = Counter(m.topic() for m in messages)
    assert set(topics) == {
        f"{env}.shop.log",
        f"{env}.shop.event",
        f"{env}.shop.raw",
        f"{env}.shop.span",
        f"{env}.shop.node",
        f"{env}.zoom.node",
    }
    wire: dict[str, Record] = {}
    for msg in messages:
        record = kafka_codec.decode(msg.value(), msg.headers())
        assert msg.key() == (record.trace_id or record.node_id).encode()
        assert msg.topic() in (f"{env}.shop.{record.kind}", f"{env}.zoom.node")
        wire[record.id] = record
    for rid, record in expected.items():
        assert same(wire[rid], record), f"{record.kind} record changed on its way through Kafka"
    assert topics[f"{env}.zoom.node"] == topics[f"{env}.shop.node"]  # node lifecycle on both topics

    # In the store: every record once, fields intact.
    home = tmp_path / "store-home"
    stats = collect(kafka_broker.bootstrap, home, env)
    assert stats.malformed == 0
    with open_store(home) as store:
        for rid, r in expected.items():
            got = store.record(rid)
            assert (got["kind"], got["type"], got["ts_ns"], got["node_id"]) == (r.kind, r.type, r.ts_ns, r.node_id)
            assert (got["trace_id"], got["span_id"], got["parent_span_id"]) == (r.trace_id, r.span_id, r.parent_span_id)
            assert got["on_behalf_of"] == r.on_behalf_of
            assert got["attrs"] == r.attrs
            assert got["sources"] == r.sources
            assert (got["level"], got["message"], got["template"]) == (r.level, r.message, r.template)
            assert (got["end_ns"], got["status"], got["cpu_ns"], got["thread"]) == (
                r.end_ns,
                r.status,
                r.cpu_ns,
                r.thread,
            )
            if r.code is not None:
                assert got["code"] == msgspec.structs.asdict(r.code)
            if r.error is not None:
                assert got["error"]["type"] == r.error.type and got["error"]["message"] == r.error.message
            if isinstance(wire[rid].payload, bytes):  # raw data, file snapshots: kept as blobs
                assert store.blob(got["payload_blob"]) == wire[rid].payload
            elif r.payload is not None:
                assert got["payload"] == r.payload
        (count,) = store.sql(
            f"SELECT count(*) FROM records WHERE node_id = '{next(iter(expected.values())).node_id}'"
            f" AND type NOT LIKE 'kafka.%'"
        )[1][0]
        assert count == len(expected)
    assert span.on_behalf_of == "customer-42"


def test_event_is_the_business_message_with_zoom_headers(kafka_broker: KafkaBroker, tmp_path: Path) -> None:
    env = unique_env()
    payload = {"order": 7, "total": 12.5, "currency": "EUR", "lines": [{"sku": "A-1", "qty": 2}]}
    zt.init("orders", env=env, group="shop", home=tmp_path / "home", sink=f"kafka://{kafka_broker.bootstrap}")
    with zt.span("place order") as span:
        event_id = zt.event(payload, type="OrderPlaced", sources=["upstream-1"], channel="web")
    zt.shutdown()

    (msg,) = consume_all(kafka_broker.bootstrap, f"^{env}\\.shop\\.event$")
    # The value is the application's JSON, nothing added: a business consumer reads it as is.
    assert json.loads(msg.value()) == payload
    assert msg.value() == json.dumps(payload, separators=(",", ":")).encode()
    headers = dict(msg.headers())
    assert headers["zoom.id"] == event_id.encode()
    assert headers["zoom.type"] == b"OrderPlaced"
    assert headers["zoom.kind"] == b"event"
    assert headers["zoom.encoding"] == b"json"
    assert headers["zoom.trace_id"] == span.trace_id.encode()
    assert headers["zoom.span_id"] == span.span_id.encode()
    assert headers["zoom.service"] == b"orders"
    assert json.loads(headers["zoom.sources"]) == ["upstream-1"]
    assert json.loads(headers["zoom.attrs"]) == {"channel": "web"}
    assert headers["zoom.code.file"].endswith(b"test_kafka_sink.py")
    assert int(headers["zoom.code.line"]) > 0
    assert headers["traceparent"] == f"00-{span.trace_id}-{span.span_id}-01".encode()
    assert msg.key() == span.trace_id.encode()
    # Any consumer continues the trace: Zoom's own extract and OpenTelemetry's propagator alike.
    ctx = zt.extract(msg.headers())
    assert ctx is not None and (ctx.trace_id, ctx.span_id) == (span.trace_id, span.span_id)
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    otel = trace.get_current_span(
        TraceContextTextMapPropagator().extract({k: v.decode() for k, v in msg.headers()})
    ).get_span_context()
    assert f"{otel.trace_id:032x}" == span.trace_id and f"{otel.span_id:016x}" == span.span_id


def test_client_options_pass_through_the_url(kafka_broker: KafkaBroker, tmp_path: Path) -> None:
    env = unique_env()
    url = (
        f"kafka://{kafka_broker.bootstrap}?linger.ms=1&compression.type=zstd&acks=all"
        f"&zoom.topic={env}.custom.{{kind}}&zoom.node_topic="
    )
    zt.init("svc", env=env, group="g", home=tmp_path / "home", sink=url)
    zt.log.info("hello")
    zt.shutdown()
    topics = {m.topic() for m in consume_all(kafka_broker.bootstrap, rf"^{env}\..*")}
    assert topics == {f"{env}.custom.log", f"{env}.custom.node"}

    def open_sink(query: str) -> KafkaSink:
        url = f"kafka://{kafka_broker.bootstrap}?{query}"
        return KafkaSink.from_url(url, home=tmp_path, node=NodeIdentity("n"), report_loss=lambda reason, n: None)

    with pytest.raises(ConfigError, match=r"zoom\.nope"):
        open_sink("zoom.nope=1")
    with pytest.raises(ConfigError, match="producer configuration"):
        open_sink("no.such.option=1")
    with pytest.raises(ConfigError, match="topic template"):
        open_sink("zoom.topic={nope}")


# -- broker down ---------------------------------------------------------------------------------


def test_broker_stopped_mid_run_every_record_arrives_exactly_once(own_broker: KafkaBroker, tmp_path: Path) -> None:
    env = unique_env()
    home = tmp_path / "app-home"
    ops = 3000
    app = start_app(tmp_path, home, f"kafka://{own_broker.bootstrap}?zoom.spool_after_s=2", env, 3, ops)
    try:
        expect_line(app, "phase 0 done")
        own_broker.kill()  # SIGKILL: an outage, not a goodbye
        app.stdin.write("go\n")  # type: ignore[union-attr]
        app.stdin.flush()  # type: ignore[union-attr]
        expect_line(app, "phase 1 done")
        time.sleep(3)  # the broker stays down for a while after the records were written
        spool = home / "spool-kafka"
        assert any(p.suffix == ".zspool" for p in spool.iterdir()), "records were not spooled while down"
        own_broker.start(reuse=True)
        # The idle application replays its spool once the broker is back, before recording again.
        deadline = time.monotonic() + 60
        while any(p.suffix == ".zspool" for p in spool.iterdir()):
            assert time.monotonic() < deadline, "the spool was not replayed within 60 s of the broker's return"
            time.sleep(0.2)
        app.stdin.write("go\n")  # type: ignore[union-attr]
        app.stdin.flush()  # type: ignore[union-attr]
        expect_line(app, "phase 2 done")
        expect_line(app, "shutdown")
        assert app.wait(30) == 0
    finally:
        if app.poll() is None:
            app.kill()
    stderr = app.stderr.read() if app.stderr else ""
    assert "unavailable" in stderr and "is back" in stderr, stderr
    assert not [p for p in (home / "spool-kafka").iterdir() if p.suffix == ".zspool"], "spool not fully replayed"

    store_home = tmp_path / "store-home"
    stats = collect(own_broker.bootstrap, store_home, env)
    assert stats.malformed == 0
    total = 3 * ops
    rows = store_rows(
        store_home,
        "SELECT kind, count(*), count(DISTINCT id), count(DISTINCT attrs->>'n') "
        "FROM records WHERE kind IN ('span', 'log') GROUP BY kind ORDER BY kind",
    )
    assert rows == [("log", total, total, total), ("span", total, total, total)]
    notes = store_rows(store_home, "SELECT type, attrs FROM records WHERE type LIKE 'kafka.%' ORDER BY ts_ns")
    types = [t for t, _ in notes]
    assert "kafka.spooling" in types and "kafka.replayed" in types and types[-1] == "kafka.sink"
    replayed = [json.loads(a) for t, a in notes if t == "kafka.replayed"]
    assert sum(a["replayed"] for a in replayed) >= 1000
    assert json.loads(notes[-1][1])["lost"] == {}


def test_nothing_lost_at_exit_while_the_broker_is_down(own_broker: KafkaBroker, tmp_path: Path) -> None:
    env = unique_env()
    home = tmp_path / "app-home"
    url = f"kafka://{own_broker.bootstrap}?zoom.spool_after_s=2"
    own_broker.kill()
    started = time.monotonic()
    first = start_app(tmp_path, home, url, env, 1, 2000)
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert time.monotonic() - started < 30, "the run took too long with the broker down"
    shutdown_s = float(out.split("shutdown ")[1].split()[0])
    assert shutdown_s < 5, f"zt.shutdown() took {shutdown_s}s with the broker down"

    # Everything is in the spool, in the standard spool format.
    segments = sorted((home / "spool-kafka").glob("*.zspool"))
    assert segments
    spooled = [r for path in segments for r in read_segment(path).records]
    assert Counter(r.kind for r in spooled if r.kind in ("span", "log")) == {"span": 2000, "log": 2000}
    first_node = spooled[0].node_id
    assert (home / "spool-kafka" / f"{first_node}.meta.json").exists()
    # ... so the local ingest reads it too, e.g. when the broker is gone for good.
    local = tmp_path / "local-store"
    with open_store(local, create=True) as store:
        report = ingest_spool(store, home / "spool-kafka")
    assert report.problems == [] and report.new == len(spooled)

    # The next run (broker back) sends it, then removes the segments.
    own_broker.start(reuse=True)
    second = start_app(tmp_path, home, url, env, 1, 10)
    _out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert not list((home / "spool-kafka").glob("*.zspool")), "leftover spool not replayed by the next run"
    assert not list((home / "spool-kafka").glob(f"{first_node}.*")), "dead node's lock/meta left behind"

    store_home = tmp_path / "store-home"
    collect(own_broker.bootstrap, store_home, env)
    rows = store_rows(
        store_home,
        f"SELECT kind, count(DISTINCT id) FROM records WHERE node_id = '{first_node}' "
        "AND kind IN ('span', 'log') GROUP BY kind ORDER BY kind",
    )
    assert rows == [("log", 2000), ("span", 2000)]
    adopted = store_rows(
        store_home,
        f"SELECT attrs FROM records WHERE type = 'kafka.replayed' AND attrs->>'from_node_id' = '{first_node}'",
    )
    assert adopted and json.loads(adopted[0][0])["replayed"] >= 4000


def test_write_never_blocks_and_memory_stays_bounded_without_a_broker(tmp_path: Path) -> None:
    port = free_port_pair()  # nothing listens there
    reported: Counter[str] = Counter()
    sink = KafkaSink.from_url(
        f"kafka://127.0.0.1:{port}?zoom.max_pending=500&zoom.spool_after_s=1&zoom.close_timeout_s=1",
        home=tmp_path,
        node=NodeIdentity(uuid7()),
        report_loss=lambda reason, n: reported.update({reason: n}),
    )
    node_id = sink.node.node_id
    records = [
        Record(id=uuid7(), kind="log", type="app", ts_ns=time.time_ns(), node_id=node_id, message=f"m{i}")
        for i in range(20_000)
    ]
    slowest = 0.0
    for i in range(0, len(records), 1000):
        t = time.monotonic()
        sink.write(records[i : i + 1000])
        slowest = max(slowest, time.monotonic() - t)
        assert sink.producer.awaiting <= 500
    t = time.monotonic()
    sink.flush()
    sink.close()
    assert slowest < 2.0 and time.monotonic() - t < 6.0
    spooled = [r for path in sorted((tmp_path / "spool-kafka").glob("*.zspool")) for r in read_segment(path).records]
    assert [r.id for r in spooled if r.type == "app"] == [r.id for r in records]  # all of them, in order
    assert sink.counts.lost == {} and reported == {}


def test_a_record_a_topic_refuses_is_counted_lost_not_the_others(kafka_broker: KafkaBroker, tmp_path: Path) -> None:
    env = unique_env()
    admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap})
    big_topic = NewTopic(
        f"{env}.big.raw", num_partitions=1, replication_factor=1, config={"max.message.bytes": str(4 * 1024 * 1024)}
    )
    for future in admin.create_topics([big_topic]).values():
        future.result(30)
    payload = os.urandom(1024 * 1024)  # the default raw limit, incompressible: over the broker's default 1 MiB

    for group in ("small", "big"):  # "small": auto-created topics with the broker's default limit
        zt.init("uploader", env=env, group=group, home=tmp_path / group, sink=f"kafka://{kafka_broker.bootstrap}")
        with zt.span("upload"):
            zt.log.info("before")
            raw_id = zt.raw(payload, format="bin")
            zt.log.info("after")
        zt.shutdown()
        records = {}
        for msg in consume_all(kafka_broker.bootstrap, rf"^{env}\.{group}\..*"):
            record = kafka_codec.decode(msg.value(), msg.headers())
            records[record.id] = record
        logs = [r.message for r in records.values() if r.kind == "log"]
        assert sorted(logs) == ["after", "before"]  # the neighbours of the big record arrive either way
        if group == "big":
            assert records[raw_id].payload == payload
            continue
        assert raw_id not in records
        (lost,) = [r for r in records.values() if r.type == "kafka.lost"]
        assert lost.attrs["reason"] == "kafka:MSG_SIZE_TOO_LARGE" and lost.attrs["ids"] == [raw_id]
        (summary,) = [r for r in records.values() if r.type == "kafka.sink"]
        assert summary.attrs["lost"] == {"kafka:MSG_SIZE_TOO_LARGE": 1}


def test_records_failed_by_the_quiet_producer_come_back_whole_and_it_carries_them_again_after(
    own_broker: KafkaBroker, tmp_path: Path
) -> None:
    """Records go through the producer that reports only failures; at an outage its messages come back in their
    failure reports, are decoded into their records (logs, bytes), or, for a data event (whose record is in
    headers that a report lacks), handed back by its own failure callback, and spooled; once the spool is
    replayed, records go through the quiet producer again. Every record reaches Kafka, none is lost."""
    env = unique_env()
    sink = sink_at(own_broker, tmp_path, f"zoom.flush_timeout_s=2&zoom.retry_interval_s=0.2&zoom.env={env}")
    node_id = sink.node.node_id

    def batch(tag: str) -> list[Record]:
        trace = uuid.uuid4().hex
        base = {"ts_ns": time.time_ns(), "node_id": node_id, "trace_id": trace, "span_id": trace[:16]}
        return [
            *(Record(id=uuid7(), kind="log", type="app", message=f"{tag}{i}", **base) for i in range(50)),
            Record(id=uuid7(), kind="event", type="OrderPlaced", payload={"order": tag, "total": 1.5}, **base),
            Record(id=uuid7(), kind="raw", type="upload", payload=os.urandom(64), **base),
        ]

    before, during, after = batch("a"), batch("b"), batch("c")
    try:
        sink.write(before)
        sink.flush()
        assert sink.producer.quiet_lane and sink.counts.spooled == 0

        own_broker.kill()
        sink.write(during)
        assert not sink.producer.pending  # nothing, not even the data event, went through the reporting producer
        sink.flush()  # no acknowledgement: the quiet producer's messages are purged, and spooled as records
        segments = sorted((tmp_path / "spool-kafka").glob("*.zspool"))
        spooled = [r for path in segments for r in read_segment(path).records]
        assert {r.id: r for r in spooled if r.type != "kafka.spooling"} == {r.id: r for r in during}

        own_broker.start(reuse=True)
        deadline = time.monotonic() + 60
        while list((tmp_path / "spool-kafka").glob("*.zspool")):  # the sink's helper thread replays them
            assert time.monotonic() < deadline, "the spool was not replayed within 60 s of the broker's return"
            time.sleep(0.2)
        sink.write(after)
        sink.flush()
        assert sink.producer.quiet_lane
    finally:
        sink.close()
    assert sink.counts.lost == {}
    got: dict[str, Record] = {}
    for msg in consume_all(own_broker.bootstrap, rf"^{env}\..*"):
        record = kafka_codec.decode(msg.value(), msg.headers())
        got[record.id] = record
    for record in [*before, *during, *after]:
        assert record.id in got, record
        assert same(got[record.id], record)


def test_records_written_just_before_an_idle_stretch_reach_the_spool_when_the_broker_is_gone(
    own_broker: KafkaBroker, tmp_path: Path
) -> None:
    """The broker dies after a quiet while (its "all brokers are down" report is then stale), the application
    writes once more and goes idle: the records' missing acknowledgements are judged without another write."""
    sink = sink_at(own_broker, tmp_path)
    node_id = sink.node.node_id

    def logs(n: int) -> list[Record]:
        return [Record(id=uuid7(), kind="log", type="app", ts_ns=time.time_ns(), node_id=node_id) for _ in range(n)]

    try:
        sink.write(logs(10))
        sink.flush()
        time.sleep(1.5)  # the sink's last poll is now older than a report it would take as current
        own_broker.kill()
        last = logs(100)
        sink.write(last)
        deadline = time.monotonic() + 30
        while sink.counts.spooled < len(last):  # no further write: the sink's helper thread notices
            assert time.monotonic() < deadline, "records awaiting acknowledgement were not spooled in an idle process"
            time.sleep(0.1)
        spooled = [
            r for path in sorted((tmp_path / "spool-kafka").glob("*.zspool")) for r in read_segment(path).records
        ]
        assert {r.id for r in last} <= {r.id for r in spooled}
    finally:
        sink.close()


def test_a_fatal_producer_error_hands_every_record_back_and_new_producers_send_them(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    """A fatal error (reported through the producer's ``error_cb``, called here as librdkafka calls it) makes the
    sink stop sending and make its producers anew: every record waiting in them, the data event too, is handed
    back and spooled, none is counted lost, and the new producers carry them to Kafka."""
    env = unique_env()
    # The records wait a second in the producers before a batch leaves: none is acknowledged before the error
    # (and the sink waits longer than that for an acknowledgement before it calls the broker away).
    options = f"linger.ms=1000&zoom.spool_after_s=10&zoom.flush_timeout_s=2&zoom.retry_interval_s=0.2&zoom.env={env}"
    sink = sink_at(kafka_broker, tmp_path, options)
    node_id = sink.node.node_id
    trace = uuid.uuid4().hex
    base = {"ts_ns": time.time_ns(), "node_id": node_id, "trace_id": trace, "span_id": trace[:16]}
    waiting = [
        *(Record(id=uuid7(), kind="log", type="app", message=f"m{i}", **base) for i in range(20)),
        Record(id=uuid7(), kind="event", type="OrderPlaced", payload={"order": "f", "total": 2.5}, **base),
    ]
    try:
        sink.write(waiting)
        assert sink.producer.awaiting == len(waiting)
        old = sink.producer._quiet
        sink.producer._on_error(KafkaError(KafkaError._FATAL, "injected", fatal=True), quiet=True)
        sink.flush()
        assert sink.producer._quiet is not old  # made anew
        segments = sorted((tmp_path / "spool-kafka").glob("*.zspool"))
        spooled = [r for path in segments for r in read_segment(path).records]
        assert {r.id: r for r in spooled if r.id in {w.id for w in waiting}} == {r.id: r for r in waiting}
        deadline = time.monotonic() + 60
        while list((tmp_path / "spool-kafka").glob("*.zspool")):  # the sink's helper thread replays them
            assert time.monotonic() < deadline, "the spool was not replayed within 60 s"
            time.sleep(0.2)
    finally:
        sink.close()
    assert sink.counts.lost == {}
    got = {kafka_codec.decode(m.value(), m.headers()).id for m in consume_all(kafka_broker.bootstrap, rf"^{env}\..*")}
    assert {r.id for r in waiting} <= got
