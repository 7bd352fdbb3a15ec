"""aiokafka (issue 14, item 4): the helpers of ``zt.kafka`` for asyncio, between real processes on the real broker.

A producer process and a consumer process, each with its own node; what they did is read back through the CLI.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from helpers import PY, child_env, cli, cli_json, marker_line_in_text, result, run_script, write_files
from support.kafka_broker import KafkaBroker

pytestmark = pytest.mark.kafka

PRODUCER = """
import asyncio
import json
import os

import zoomtrace as zt
from aiokafka import AIOKafkaProducer
from zoomtrace.integrations import aiokafka as zt_aiokafka

TOPIC = os.environ["TOPIC"]


async def main():
    zt.init("orders")
    producer = AIOKafkaProducer(bootstrap_servers=os.environ["BOOTSTRAP"])
    await producer.start()
    try:
        with zt.span("place order") as placing:
            await zt_aiokafka.send_and_wait(producer, TOPIC, b"order 7", key=b"order-7", headers={"app": "v1"})  # @send
            delivery = await zt_aiokafka.send(producer, TOPIC, b"order 8", key=b"order-7")
            await delivery
    finally:
        await producer.stop()
    print("RESULT", json.dumps({"trace_id": placing.trace_id, "span_id": placing.span_id}))


asyncio.run(main())
"""

CONSUMER = """
import asyncio
import contextlib
import json
import os

import zoomtrace as zt
from aiokafka import AIOKafkaConsumer
from zoomtrace.integrations import aiokafka as zt_aiokafka


async def main():
    zt.init("shipping")
    consumer = AIOKafkaConsumer(
        os.environ["TOPIC"], bootstrap_servers=os.environ["BOOTSTRAP"], group_id="shipping",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    seen = []
    try:
        async with contextlib.aclosing(zt_aiokafka.traced(consumer)) as messages:
            async for msg in messages:
                zt.log.info("shipping {order}", order=msg.value.decode())  # @handle
                seen.append({"headers": {k: v.decode() for k, v in msg.headers}, "span": zt.current_span().span_id})
                if len(seen) == 2:
                    break  # leaving the loop ends the last message's span here
    finally:
        await consumer.stop()
    print("RESULT", json.dumps({"seen": seen, "after": zt.current_span() is not None}))


asyncio.run(asyncio.wait_for(main(), 60))
"""


def env(home: Path | None, broker: KafkaBroker, topic: str) -> dict[str, str]:
    return child_env(home, BOOTSTRAP=broker.bootstrap, TOPIC=topic)


def walk(spans: list[dict[str, Any]], parent: dict[str, Any] | None = None) -> list[tuple[dict, dict | None]]:
    out: list[tuple[dict, dict | None]] = []
    for span in spans:
        out.append((span, parent))
        out += walk(span["children"], span)
    return out


def test_a_message_carries_the_trace_from_an_aiokafka_producer_to_an_aiokafka_consumer(
    tmp_path: Path, kafka_broker: KafkaBroker
) -> None:
    home, topic = tmp_path / "home", f"orders-{uuid.uuid4().hex[:10]}"
    write_files(tmp_path, {"producer.py": PRODUCER, "consumer.py": CONSUMER})
    sent = result(run_script(tmp_path / "producer.py", home, env=env(home, kafka_broker, topic)))
    got = result(run_script(tmp_path / "consumer.py", home, env=env(home, kafka_broker, topic)))

    assert got["after"] is False  # no span left current after the loop
    first, second = got["seen"]
    assert first["headers"]["app"] == "v1"  # the application's own header is kept
    assert first["headers"]["traceparent"] == f"00-{sent['trace_id']}-{sent['span_id']}-01"
    assert second["headers"]["traceparent"] == first["headers"]["traceparent"]

    nodes = {n["node_id"]: n["service"] for n in cli_json(home, "nodes")}
    story = cli_json(home, "story", sent["trace_id"])
    spans = walk(story["spans"])
    placing, _ = spans[0]
    assert placing["name"] == "place order" and nodes[placing["node_id"]] == "orders"
    processed = [(s, parent) for s, parent in spans if s["name"] == f"process {topic}"]
    assert [s["span_id"] for s, _ in processed] == [first["span"], second["span"]]
    for (span, parent), order in zip(processed, ("order 7", "order 8"), strict=True):
        assert parent is placing and nodes[span["node_id"]] == "shipping"
        assert span["attrs"]["messaging.system"] == "kafka" and span["attrs"]["messaging.destination.name"] == topic
        assert span["attrs"]["messaging.kafka.message.key"] == "order-7"
        assert span["status"] == "ok" and span["code"]["file"].endswith("consumer.py")
        (log,) = span["records"]
        assert log["message"] == f"shipping {order}"
        assert log["code"]["line"] == marker_line_in_text(CONSUMER, "handle")
    assert [s["attrs"]["messaging.kafka.offset"] for s, _ in processed] == [0, 1]


EVENT_PRODUCER = """
import json
import os

import zoomtrace as zt

zt.init("orders", env=os.environ["ENV"], group="shop", sink=[f"kafka://{os.environ['BOOTSTRAP']}?linger.ms=1", "spool"])
with zt.span("place order") as placing:
    order_id = zt.event({"order": 7, "total": 12.5}, type="OrderPlaced")
print("RESULT", json.dumps({"trace_id": placing.trace_id, "order_id": order_id}))
"""

EVENT_CONSUMER = """
import asyncio
import json
import os

import zoomtrace as zt
from aiokafka import AIOKafkaConsumer
from zoomtrace.integrations import aiokafka as zt_aiokafka


async def main():
    zt.init("billing")
    consumer = AIOKafkaConsumer(
        f"{os.environ['ENV']}.shop.event", bootstrap_servers=os.environ["BOOTSTRAP"], group_id="billing",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        msg = await consumer.getone()
    finally:
        await consumer.stop()
    with zt_aiokafka.consume_span(msg, name="bill order"):
        order = json.loads(msg.value)  # the business message is the event's payload
        payment_id = zt.event({"order": order["order"], "captured": order["total"]}, type="PaymentCaptured",
                              sources=[zt_aiokafka.record_id(msg)])
    print("RESULT", json.dumps({"payment_id": payment_id, "order": order}))


asyncio.run(asyncio.wait_for(main(), 60))
"""


def test_a_data_event_keeps_its_lineage_across_the_hop(tmp_path: Path, kafka_broker: KafkaBroker) -> None:
    home, name = tmp_path / "home", f"t{uuid.uuid4().hex[:10]}"
    write_files(tmp_path, {"producer.py": EVENT_PRODUCER, "consumer.py": EVENT_CONSUMER})
    placed = result(
        run_script(tmp_path / "producer.py", home, env=child_env(home, BOOTSTRAP=kafka_broker.bootstrap, ENV=name))
    )
    billed = result(
        run_script(tmp_path / "consumer.py", home, env=child_env(home, BOOTSTRAP=kafka_broker.bootstrap, ENV=name))
    )
    assert billed["order"] == {"order": 7, "total": 12.5}

    story = cli_json(home, "story", placed["trace_id"])
    spans = walk(story["spans"])
    ((billing, parent),) = [(s, p) for s, p in spans if s["name"] == "bill order"]
    assert parent is not None and parent["name"] == "place order"
    assert billing["attrs"]["messaging.message.id"] == placed["order_id"]
    (payment,) = [r for r in billing["records"] if r["kind"] == "event"]
    assert payment["id"] == billed["payment_id"] and payment["sources"] == [placed["order_id"]]
    lineage = cli_json(home, "lineage", billed["payment_id"])
    (upstream,) = lineage["upstream"]
    assert (upstream["id"], upstream["type"], upstream["depth"]) == (placed["order_id"], "OrderPlaced", 1)


ZERO_CODE_APP = """
import contextlib
import os
import threading
import time

import httpx
import uvicorn
from aiokafka import AIOKafkaProducer
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

producer = None
HEADERS = [("app", b"v2")]  # the application's own, reused for every message


async def order(request):
    await producer.send_and_wait(os.environ["TOPIC"], b"order 9", headers=HEADERS)
    return PlainTextResponse("sent")


@contextlib.asynccontextmanager
async def lifespan(app):
    global producer
    producer = AIOKafkaProducer(bootstrap_servers=os.environ["BOOTSTRAP"])
    await producer.start()
    yield
    await producer.stop()


app = Starlette(routes=[Route("/order", order, methods=["POST"])], lifespan=lifespan)
server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
thread = threading.Thread(target=server.run, daemon=True)
thread.start()
while not server.started:  # the application's own start-up wait
    time.sleep(0.01)
port = server.servers[0].sockets[0].getsockname()[1]
print(httpx.post(f"http://127.0.0.1:{port}/order", timeout=30).text)
server.should_exit = True
thread.join()
print(HEADERS)
"""


def consume_one(bootstrap: str, topic: str) -> dict[str, bytes]:
    """The headers of the one message on ``topic``, read with confluent-kafka (the test is another client)."""
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    try:
        for _ in range(60):
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is None:
                return dict(msg.headers() or [])
    finally:
        consumer.close()
    raise AssertionError(f"no message on {topic}")


@pytest.mark.parametrize("integrations", ["all", "starlette,httpx"])
def test_zoomtrace_run_makes_aiokafka_producers_carry_the_trace(
    tmp_path: Path, kafka_broker: KafkaBroker, integrations: str
) -> None:
    home, topic = tmp_path / "home", f"orders-{uuid.uuid4().hex[:10]}"
    write_files(tmp_path, {"api.py": ZERO_CODE_APP})
    done = cli(
        home,
        "run",
        "--integrations",
        integrations,
        "--",
        PY,
        "api.py",
        cwd=tmp_path,
        env=env(None, kafka_broker, topic),
    )
    assert done.returncode == 0 and done.stdout.splitlines() == ["sent", "[('app', b'v2')]"], done.stderr
    assert "zoomtrace" not in done.stderr, done.stderr  # every integration installed
    headers = consume_one(kafka_broker.bootstrap, topic)
    assert headers["app"] == b"v2"
    (trace,) = cli_json(home, "traces")
    spans = walk(cli_json(home, "story", trace["trace_id"])["spans"])
    (server,) = [s for s, _ in spans if s["attrs"].get("span.kind") == "server"]
    if integrations == "all":  # the message continues the request's trace
        assert headers["traceparent"] == f"00-{trace['trace_id']}-{server['span_id']}-01".encode()
    else:  # without the aiokafka integration, the message goes as the application sent it
        assert "traceparent" not in headers
