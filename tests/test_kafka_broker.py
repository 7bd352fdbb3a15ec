"""The real Kafka broker of scripts/kafka-broker: produce, consume, survive a restart."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer

try:  # tests/ is on sys.path under pytest's default rootdir-less import mode
    from support.kafka_broker import KafkaBroker
except ImportError:  # tests/ imported as a package
    from tests.support.kafka_broker import KafkaBroker


def _produce(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    errors: list[object] = []
    producer.produce(topic, key=key, value=value, on_delivery=lambda err, _msg: err and errors.append(err))
    assert producer.flush(30) == 0, "message not delivered within 30 s"
    assert not errors, errors


def _consume_one(bootstrap: str, topic: str, timeout: float = 30.0) -> tuple[bytes | None, bytes | None]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            return msg.key(), msg.value()
        raise AssertionError(f"no message on {topic} within {timeout} s")
    finally:
        consumer.close()


@pytest.mark.kafka
def test_produce_consume_and_survive_restart(own_broker: KafkaBroker) -> None:
    broker = own_broker
    try:
        topic = f"zt-test-{uuid.uuid4().hex[:8]}"  # auto-created, 3 partitions
        _produce(broker.bootstrap, topic, b"k1", b"hello kafka")
        assert _consume_one(broker.bootstrap, topic) == (b"k1", b"hello kafka")

        broker.restart()  # stop --keep, then start --reuse: same port, same data
        assert broker.is_running()
        assert _consume_one(broker.bootstrap, topic) == (b"k1", b"hello kafka")
    finally:
        broker.stop()
    assert not broker.is_running()
