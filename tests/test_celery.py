"""Celery (issue 14, item 4): a real worker (prefork, 2 children) and a real publisher on a real Redis.

The worker runs under ``zoomtrace run`` with no line of Zoom in the application; the publisher calls
``zt.init`` and ``integrations.celery.instrument()`` itself. What they did is read back through the CLI.
"""

from __future__ import annotations

import json
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import PY, TIMEOUT, child_env, cli_json, marker_line_in_text, result, run_script, write_files
from support.kafka_broker import KafkaBroker
from support.redis_server import RedisServer

TASKS = """
import asyncio
import logging
import os

from aiokafka import AIOKafkaProducer
from celery import Celery

app = Celery("proj", broker=os.environ["REDIS_URL"] + "/0", backend=os.environ["REDIS_URL"] + "/1")
app.conf.broker_connection_retry_on_startup = True
log = logging.getLogger("proj.tasks")


@app.task
def add(x, y):
    log.info("adding %s and %s", x, y)  # @task-log
    return x + y


@app.task
def fail(order):
    raise LookupError(f"no stock for {order}")


@app.task(bind=True, max_retries=1)
def flaky(self):
    if self.request.retries == 0:
        raise self.retry(exc=TimeoutError("first try"), countdown=0)
    log.info("second try worked")
    return "ok"


@app.task
def ship(bootstrap, topic, order):
    async def send():
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(topic, order.encode())  # no Zoom here: zoomtrace run adds the trace
        finally:
            await producer.stop()

    asyncio.run(send())
    log.info("shipped %s", order)
"""

PUBLISHER = """
import json

import celery.exceptions
import zoomtrace as zt
from zoomtrace.integrations import celery as zt_celery

from proj import add, fail, flaky

zt.init("shop")
zt_celery.instrument()
zt_celery.instrument()  # idempotent
with zt.span("checkout") as checkout:
    total = add.delay(2, 3).get(timeout=60)  # @publish
with zt.span("doomed") as doomed:
    try:
        fail.delay("order-7").get(timeout=60)
    except LookupError:
        pass
with zt.span("patient") as patient:
    answer = flaky.delay().get(timeout=60)
print("RESULT", json.dumps({"total": total, "answer": answer, "checkout": checkout.trace_id,
                            "doomed": doomed.trace_id, "patient": patient.trace_id}))
"""


#: The worker's application when Zoom is started in code: the module ``celery -A`` imports.
ZOOMED = """
import zoomtrace as zt
from zoomtrace.integrations import celery as zt_celery

zt.init("celery")
zt_celery.instrument()

from proj import app
"""


@pytest.fixture(params=["zoomtrace run", "in code"])
def worker(
    request: pytest.FixtureRequest, tmp_path: Path, redis_server: RedisServer
) -> Iterator[subprocess.Popen[str]]:
    """A Celery worker (prefork, 2 children) recording into ``tmp_path / "home"``, stopped with SIGTERM (warm
    shutdown) after the test body: ``zoomtrace run -- celery -A proj worker``, or the same worker of
    an application module that starts Zoom itself."""
    write_files(tmp_path, {"proj.py": TASKS, "publisher.py": PUBLISHER, "zoomed.py": ZOOMED})
    home = tmp_path / "home"
    if request.param == "zoomtrace run":
        celery = str(Path(PY).parent / "celery")  # the console script (the other tests run python -m celery)
        command = [PY, "-m", "zoomtrace", "--home", str(home), "run", "--", celery, "-A", "proj"]
        env = child_env(None, REDIS_URL=redis_server.url)
    else:
        command = [PY, "-m", "celery", "-A", "zoomed"]
        env = child_env(home, REDIS_URL=redis_server.url)
    command += ["worker", "--pool", "prefork", "--concurrency", "2", "--without-gossip", "--without-mingle"]
    with open(tmp_path / "worker.err", "w") as err:  # the worker holds its own copy of the descriptor
        proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=err, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(TIMEOUT)
                raise AssertionError("the Celery worker did not stop on SIGTERM") from None


def walk(spans: list[dict[str, Any]], parent: dict[str, Any] | None = None) -> Iterator[tuple[dict, dict | None]]:
    for span in spans:
        yield span, parent
        yield from walk(span["children"], span)


def stop(worker: subprocess.Popen[str], tmp_path: Path) -> None:
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(TIMEOUT) == 0, (tmp_path / "worker.err").read_text()


def test_a_task_is_a_span_of_the_publishers_trace_in_a_worker_child_node(
    tmp_path: Path, redis_server: RedisServer, worker: subprocess.Popen[str]
) -> None:
    home = tmp_path / "home"
    publisher = run_script(tmp_path / "publisher.py", home, env=child_env(home, REDIS_URL=redis_server.url))
    result = __import__("json").loads(publisher.stdout[-1].removeprefix("RESULT "))
    assert (result["total"], result["answer"]) == (5, "ok")
    stop(worker, tmp_path)
    # The worker's console keeps Celery's level (--loglevel, WARNING by default) though Zoom records from INFO.
    console = (tmp_path / "worker.err").read_text()
    assert "no stock for order-7" in console and "adding 2 and 3" not in console

    nodes = {n["node_id"]: n for n in cli_json(home, "nodes")}
    (shop,) = [n for n in nodes.values() if n["service"] == "shop"]
    (main,) = [n for n in nodes.values() if n["service"] == "celery" and n["parent_node_id"] is None]
    children = [n for n in nodes.values() if n["parent_node_id"] == main["node_id"]]
    assert len(children) >= 2 and all(n["service"] == "celery" for n in children)  # the prefork pool's processes
    assert all(n["stop_cause"] == "exit" for n in [main, *children]), nodes

    # checkout (publisher) -> publish proj.add (publisher) -> proj.add (a worker child) -> its log line
    story = cli_json(home, "story", result["checkout"])
    ((checkout, _), (publish, publish_parent), (task, task_parent)) = list(walk(story["spans"]))
    assert checkout["name"] == "checkout" and publish_parent is checkout and task_parent is publish
    assert publish["name"] == "publish proj.add" and publish["node_id"] == shop["node_id"]
    assert publish["attrs"]["span.kind"] == "producer" and publish["attrs"]["celery.task_name"] == "proj.add"
    assert publish["code"]["file"].endswith("publisher.py")
    assert publish["code"]["line"] == marker_line_in_text(PUBLISHER, "publish")
    assert task["name"] == "proj.add" and task["node_id"] in {n["node_id"] for n in children}
    assert task["attrs"]["span.kind"] == "consumer" and task["attrs"]["celery.state"] == "SUCCESS"
    assert task["attrs"]["celery.task_id"] == publish["attrs"]["celery.task_id"]
    assert task["attrs"]["celery.retries"] == 0 and task["status"] == "ok"
    # Celery's default queue, as the publisher routed the message and as the worker received it
    assert publish["attrs"]["messaging.destination.name"] == task["attrs"]["messaging.destination.name"] == "celery"
    assert task["code"]["file"].endswith("proj.py") and task["code"]["function"] == "add"
    # The task's own log line, and Celery's line saying it succeeded, are inside its span.
    (log,) = [r for r in task["records"] if r["type"] == "proj.tasks"]
    assert log["message"] == "adding 2 and 3" and log["node_id"] == task["node_id"]
    assert log["code"]["line"] == marker_line_in_text(TASKS, "task-log")
    assert any(r["message"].startswith("Task proj.add[") for r in task["records"] if r["type"] == "celery.app.trace")

    # A failing task: its span is in error with the exception, in the same trace as its publisher.
    story = cli_json(home, "story", result["doomed"])
    spans = [s for s, _ in walk(story["spans"])]
    (failed,) = [s for s in spans if s["name"] == "proj.fail"]
    assert failed["status"] == "error" and failed["attrs"]["celery.state"] == "FAILURE"
    assert failed["error"]["type"].endswith("LookupError") and "no stock for order-7" in failed["error"]["message"]

    # A retried task: the retry is published from the failed run, so both runs are in the trace, one under the other.
    story = cli_json(home, "story", result["patient"])
    runs = [(s, parent) for s, parent in walk(story["spans"]) if s["name"] == "proj.flaky"]
    assert [(s["attrs"]["celery.retries"], s["attrs"]["celery.state"], s["status"]) for s, _ in runs] == [
        (0, "RETRY", "error"),
        (1, "SUCCESS", "ok"),
    ]
    (first, _), (second, second_publish) = runs
    assert second_publish is not None and second_publish["name"] == "publish proj.flaky"
    assert second_publish["parent_span_id"] == first["span_id"]
    assert "second try worked" in [r["message"] for r in second["records"]]


def test_a_publish_that_fails_is_a_span_in_error_and_the_caller_gets_the_exception(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    from celery import Celery
    from kombu.exceptions import OperationalError

    import zoomtrace as zt
    from zoomtrace.integrations import celery as zt_celery

    records = tmp_path / "records.jsonl"
    zt.init("shop", home=tmp_path / "home", sink=f"file://{records}")
    zt_celery.instrument()
    app = Celery("down", broker=f"{redis_server.url}/0", set_as_current=False)
    app.conf.broker_connection_retry_on_startup = False

    @app.task(name="down.noop")
    def noop() -> None:
        pass

    redis_server.stop()  # the broker is gone

    with zt.span("checkout") as checkout:
        with pytest.raises(OperationalError):
            noop.apply_async(retry=False)
        assert zt.current_span() is checkout  # the failed publish left nothing open
    assert zt.flush(10)
    spans = {r["type"]: r for r in map(json.loads, records.read_text().splitlines()) if r["kind"] == "span"}
    publish = spans["publish down.noop"]
    assert publish["parent_span_id"] == checkout.span_id and publish["status"] == "error"
    assert publish["error"]["type"].endswith("OperationalError")


SHIPPER = """
import json
import sys

import zoomtrace as zt
from zoomtrace.integrations import celery as zt_celery

from proj import ship

zt.init("shop")
zt_celery.instrument()
with zt.span("checkout") as checkout:
    ship.delay(sys.argv[1], sys.argv[2], "order-7").get(timeout=60)
print("RESULT", json.dumps(checkout.trace_id))
"""

SHIPPING = """
import asyncio
import json
import sys

import zoomtrace as zt
from aiokafka import AIOKafkaConsumer
from zoomtrace.integrations import aiokafka as zt_aiokafka


async def main():
    zt.init("shipping")
    consumer = AIOKafkaConsumer(sys.argv[2], bootstrap_servers=sys.argv[1], auto_offset_reset="earliest")
    await consumer.start()
    try:
        msg = await consumer.getone()
    finally:
        await consumer.stop()
    with zt_aiokafka.consume_span(msg):
        zt.log.info("shipping {order}", order=msg.value.decode())


asyncio.run(asyncio.wait_for(main(), 60))
"""


@pytest.mark.kafka
@pytest.mark.parametrize("worker", ["zoomtrace run"], indirect=True)
def test_one_trace_from_the_publisher_through_the_task_to_a_kafka_consumer(
    tmp_path: Path, redis_server: RedisServer, kafka_broker: KafkaBroker, worker: subprocess.Popen[str]
) -> None:
    """publisher span -> publish -> the task (a worker child, aiokafka with no Zoom code) -> the consumer's span."""
    home, topic = tmp_path / "home", f"shipments-{uuid.uuid4().hex[:10]}"
    write_files(tmp_path, {"shipper.py": SHIPPER, "shipping.py": SHIPPING})
    env = child_env(home, REDIS_URL=redis_server.url)
    trace_id = result(run_script(tmp_path / "shipper.py", home, kafka_broker.bootstrap, topic, env=env))
    run_script(tmp_path / "shipping.py", home, kafka_broker.bootstrap, topic, env=env)
    stop(worker, tmp_path)

    services = {n["node_id"]: n["service"] for n in cli_json(home, "nodes")}
    chain = []
    spans = cli_json(home, "story", trace_id)["spans"]
    while spans:
        (span,) = spans  # one child at each step
        chain.append((span["name"], services[span["node_id"]], [r["message"] for r in span["records"]]))
        spans = span["children"]
    assert [(name, service) for name, service, _ in chain] == [
        ("checkout", "shop"),
        ("publish proj.ship", "shop"),
        ("proj.ship", "celery"),
        (f"process {topic}", "shipping"),
    ]
    assert "shipped order-7" in chain[2][2] and chain[3][2] == ["shipping order-7"]


def test_a_task_run_eagerly_is_a_span_under_the_caller_with_nothing_published(tmp_path: Path) -> None:
    from celery import Celery

    import zoomtrace as zt
    from zoomtrace.integrations import celery as zt_celery

    records = tmp_path / "records.jsonl"
    zt.init("shop", home=tmp_path / "home", sink=f"file://{records}")
    zt_celery.instrument()
    app = Celery("eager", set_as_current=False)
    app.conf.task_always_eager = True

    @app.task(name="eager.double")
    def double(x: int) -> int:
        zt.log.info("doubling {x}", x=x)
        return 2 * x

    with zt.span("checkout") as checkout:
        assert double.delay(21).get() == 42
        assert zt.current_span() is checkout
    assert zt.flush(10)
    lines = [json.loads(line) for line in records.read_text().splitlines()]
    spans = {r["type"]: r for r in lines if r["kind"] == "span"}
    assert set(spans) == {"checkout", "eager.double"}  # no publish span: nothing went to a broker
    task = spans["eager.double"]
    assert task["parent_span_id"] == checkout.span_id and task["attrs"]["celery.state"] == "SUCCESS"
    (log,) = [r for r in lines if r["kind"] == "log" and r["message"] == "doubling 21"]
    assert log["span_id"] == task["span_id"]
