"""Trace context through the application's own Kafka messages (``zt.kafka``), on a real broker."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from confluent_kafka import Consumer, Producer

import zoomtrace as zt
import zoomtrace.integrations.kafka as ztk
from support.kafka_broker import KafkaBroker
from zoomtrace.wire.record import Record

pytestmark = pytest.mark.kafka


def read_jsonl(path: Path) -> list[Record]:
    decoder = msgspec.json.Decoder(Record)
    return [decoder.decode(line) for line in path.read_bytes().splitlines() if line.strip()]


def spans(path: Path) -> dict[str, Record]:
    return {r.type: r for r in read_jsonl(path) if r.kind == "span"}


def consume(bootstrap: str, topic: str, n: int, timeout_s: float = 30.0) -> list[Any]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"p-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    out: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < n and time.monotonic() < deadline:
            for msg in consumer.consume(n - len(out), 0.5):
                assert msg.error() is None, msg.error()
                out.append(msg)
    finally:
        consumer.close()
    assert len(out) == n, f"got {len(out)} of {n} messages from {topic}"
    return sorted(out, key=lambda m: (m.partition(), m.offset()))


@pytest.fixture
def traced_node(tmp_path: Path) -> Path:
    """A node recording into a JSON-lines file; returns the file."""
    path = tmp_path / "records.jsonl"
    zt.init("prop-test", env="test", group="prop", home=tmp_path / "home", sink=f"file://{path}")
    return path


@pytest.fixture
def producer(kafka_broker: KafkaBroker) -> Producer:
    return Producer({"bootstrap.servers": kafka_broker.bootstrap, "linger.ms": 1})


def topic_name() -> str:
    return f"app-{uuid.uuid4().hex[:10]}"


def test_produce_injects_context_and_consume_span_continues_it(
    kafka_broker: KafkaBroker, producer: Producer, traced_node: Path
) -> None:
    topic = topic_name()
    with zt.span("send order") as sender:
        ztk.produce(producer, topic, value=b'{"order": 7}', key=b"order-7", headers={"app": "v1"})
    assert producer.flush(10) == 0
    (msg,) = consume(kafka_broker.bootstrap, topic, 1)
    headers = dict(msg.headers())
    assert headers["app"] == b"v1"  # the application's own headers are kept
    assert headers["traceparent"] == f"00-{sender.trace_id}-{sender.span_id}-01".encode()

    with ztk.consume_span(msg) as span:
        zt.log.info("handling order")
    assert (span.trace_id, span.parent_span_id) == (sender.trace_id, sender.span_id)
    assert zt.flush(5)
    record = spans(traced_node)[f"process {topic}"]
    assert record.trace_id == sender.trace_id and record.parent_span_id == sender.span_id
    assert record.attrs["messaging.system"] == "kafka"
    assert record.attrs["messaging.destination.name"] == topic
    assert record.attrs["messaging.destination.partition.id"] == str(msg.partition())
    assert record.attrs["messaging.kafka.offset"] == msg.offset()
    assert record.attrs["messaging.kafka.message.key"] == "order-7"
    assert record.code is not None and record.code.file.endswith("test_kafka_propagation.py")
    (log,) = [r for r in read_jsonl(traced_node) if r.kind == "log"]
    assert (log.trace_id, log.span_id) == (span.trace_id, span.span_id)


def test_follows_from_links_instead_of_parenting(
    kafka_broker: KafkaBroker, producer: Producer, traced_node: Path
) -> None:
    topic = topic_name()
    with zt.span("send") as sender:
        ztk.produce(producer, topic, value=b"x")
    assert producer.flush(10) == 0
    (msg,) = consume(kafka_broker.bootstrap, topic, 1)

    with zt.span("batch") as batch, ztk.consume_span(msg, follows_from=True, name="handle") as linked:
        pass
    assert linked.trace_id == batch.trace_id and linked.parent_span_id == batch.span_id
    assert linked.links == [(sender.trace_id, sender.span_id)]

    with ztk.consume_span(msg, follows_from=True, name="alone") as alone:  # no current span: a new trace
        pass
    assert alone.trace_id != sender.trace_id and alone.parent_span_id is None
    assert alone.links == [(sender.trace_id, sender.span_id)]

    ztk.configure(follows_from=True)
    try:
        with ztk.consume_span(msg, name="configured") as configured:
            pass
    finally:
        ztk.configure(follows_from=False)
    assert configured.links == [(sender.trace_id, sender.span_id)] and configured.trace_id != sender.trace_id
    assert zt.flush(5)
    recorded = spans(traced_node)["handle"]
    assert [(link.trace_id, link.span_id) for link in recorded.links] == [(sender.trace_id, sender.span_id)]


def test_traced_gives_each_message_its_span(kafka_broker: KafkaBroker, producer: Producer, traced_node: Path) -> None:
    topic = topic_name()
    senders = []
    for i in range(3):
        with zt.span(f"send {i}") as sender:
            ztk.produce(producer, topic, value=str(i).encode(), key=b"same-key")  # one partition, in order
        senders.append(sender)
    assert producer.flush(10) == 0
    messages = consume(kafka_broker.bootstrap, topic, 3)

    seen = []
    for msg in ztk.traced(messages):
        current = zt.current_span()
        assert current is not None
        seen.append((msg.value(), current.trace_id, current.parent_span_id))
        zt.log.info("got {value}", value=msg.value().decode())
        if msg.value() == b"1":
            break  # leaving the loop ends the span normally
    assert zt.current_span() is None
    assert seen == [(b"0", senders[0].trace_id, senders[0].span_id), (b"1", senders[1].trace_id, senders[1].span_id)]
    assert zt.flush(5)
    recorded = [r for r in read_jsonl(traced_node) if r.kind == "span" and r.type == f"process {topic}"]
    assert len(recorded) == 2 and all(r.status == "ok" for r in recorded)
    logs = [r for r in read_jsonl(traced_node) if r.kind == "log"]
    assert {log.span_id for log in logs} == {r.span_id for r in recorded}


def test_headers_helper_and_baggage(kafka_broker: KafkaBroker, producer: Producer, traced_node: Path) -> None:
    assert ztk.headers({"a": "b"}) == [("a", b"b")]  # no current span: nothing added
    assert ztk.headers() == []
    topic = topic_name()
    with zt.span("on behalf", on_behalf_of="customer-42") as sender:
        hdrs = ztk.headers([("a", b"1"), ("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")])
        producer.produce(topic, value=b"v", headers=hdrs)
    assert producer.flush(10) == 0
    assert [name for name, _ in hdrs].count("traceparent") == 1  # a stale traceparent is replaced
    (msg,) = consume(kafka_broker.bootstrap, topic, 1)
    ctx = zt.extract(msg.headers())
    assert ctx is not None and (ctx.trace_id, ctx.span_id) == (sender.trace_id, sender.span_id)
    assert ctx.on_behalf_of == "customer-42"
    with ztk.consume_span(msg) as span:
        pass
    assert span.on_behalf_of == "customer-42"


def test_messages_without_context_start_a_new_trace(
    kafka_broker: KafkaBroker, producer: Producer, traced_node: Path
) -> None:
    topic = topic_name()
    producer.produce(topic, value=b"plain", headers=[("traceparent", b"garbage")])
    producer.produce(topic, value=b"plain")
    assert producer.flush(10) == 0
    for msg in consume(kafka_broker.bootstrap, topic, 2):
        with ztk.consume_span(msg) as span:
            pass
        assert span.parent_span_id is None and span.links == []
        assert ztk.record_id(msg) is None


@dataclass
class AiokafkaStyleRecord:
    """The attribute shape of aiokafka's ConsumerRecord, filled from a real consumed message."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


def test_attribute_style_records_work_too(kafka_broker: KafkaBroker, producer: Producer, traced_node: Path) -> None:
    topic = topic_name()
    with zt.span("send") as sender:
        producer.produce(topic, value=b"v", key=b"k", headers=ztk.headers())
    assert producer.flush(10) == 0
    (msg,) = consume(kafka_broker.bootstrap, topic, 1)
    record = AiokafkaStyleRecord(
        msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value(), tuple(msg.headers())
    )
    with ztk.consume_span(record) as span:
        pass
    assert (span.trace_id, span.parent_span_id) == (sender.trace_id, sender.span_id)
    assert span.attrs["messaging.kafka.offset"] == msg.offset()


def test_consumer_continues_a_zoom_data_event_with_lineage(kafka_broker: KafkaBroker, tmp_path: Path) -> None:
    """orders publishes OrderPlaced through the Kafka sink; billing consumes it and derives PaymentCaptured."""
    env = f"t{uuid.uuid4().hex[:10]}"
    path = tmp_path / "records.jsonl"
    zt.init(
        "orders",
        env=env,
        group="shop",
        home=tmp_path / "home",
        sink=[f"kafka://{kafka_broker.bootstrap}?linger.ms=1", f"file://{path}"],
    )
    with zt.span("place order") as placing:
        order_id = zt.event({"order": 7, "total": 12.5}, type="OrderPlaced")
    assert zt.flush(10)

    (msg,) = consume(kafka_broker.bootstrap, f"{env}.shop.event", 1)
    assert ztk.record_id(msg) == order_id
    with ztk.consume_span(msg, name="bill order") as billing:
        payment_id = zt.event({"order": 7, "captured": 12.5}, type="PaymentCaptured", sources=[ztk.record_id(msg)])
    assert zt.flush(10)
    assert (billing.trace_id, billing.parent_span_id) == (placing.trace_id, placing.span_id)
    assert billing.attrs["messaging.message.id"] == order_id
    records = {r.id: r for r in read_jsonl(path)}
    payment = records[payment_id]
    assert payment.sources == [order_id] and payment.trace_id == placing.trace_id
    assert payment.span_id == billing.span_id
