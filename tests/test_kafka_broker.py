"""The real Kafka broker of scripts/kafka-broker: produce, consume, survive a restart; test sessions
leave alone the brokers they did not start."""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from support.kafka_broker import SESSIONS_DIR, KafkaBroker, free_port_pair, stop_orphaned_session_brokers


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


def test_a_test_session_stops_only_the_brokers_of_sessions_that_died(kafka_broker: KafkaBroker, tmp_path: Path) -> None:
    mine = KafkaBroker(port=free_port_pair(), data_dir=tmp_path / "mine")  # a developer's own broker
    # A session that died before its teardown: its directory is named by a pid no process can have.
    orphan = KafkaBroker(port=free_port_pair(), data_dir=SESSIONS_DIR / str(2**22 + 1))
    mine.start()
    try:
        orphan.start()
        stop_orphaned_session_brokers()
        assert not orphan.is_running()
        assert not orphan.dir.exists()
        assert mine.is_running()
        assert kafka_broker.is_running()  # this session's own
        assert kafka_broker.dir.parent == SESSIONS_DIR and kafka_broker.port != 19092
    finally:
        mine.stop()
        if orphan.is_running():
            orphan.stop()
        shutil.rmtree(orphan.dir, ignore_errors=True)
