"""Issue 14's "Done when": one trace across HTTP -> Django view -> Celery task -> SQL statement -> Kafka via aiokafka.

Five real processes, none with a line of Zoom except the Kafka consumer's ``consume_span``: a requests client,
a Django project served by Django's own server classes, a Celery worker (prefork) on a real Redis, its task
querying SQLite through SQLAlchemy and producing to the real Kafka broker with aiokafka, and an aiokafka
consumer. All but the consumer run under ``zoomtrace run``. The story is read back through the CLI.
"""

from __future__ import annotations

import signal
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from helpers import PY, TIMEOUT, Child, child_env, cli_json, run_script, write_files
from support.kafka_broker import KafkaBroker
from support.redis_server import RedisServer

pytestmark = pytest.mark.kafka

FILES = {
    "shop/__init__.py": "",
    "shop/settings.py": """
        SECRET_KEY = "not-a-secret"
        DEBUG = False
        ALLOWED_HOSTS = ["127.0.0.1"]
        ROOT_URLCONF = "shop.urls"
        INSTALLED_APPS = ["shop"]
        MIDDLEWARE = []
        DATABASES = {}
    """,
    "shop/urls.py": """
        from django.urls import path

        from shop import views

        urlpatterns = [path("orders/<int:order_id>", views.order)]
    """,
    "shop/views.py": """
        import logging

        from django.http import HttpResponse

        from shop.tasks import ship

        log = logging.getLogger("shop.views")


        def order(request, order_id):
            log.warning("placing order %s", order_id)
            shipped = ship.delay(order_id).get(timeout=60)
            return HttpResponse(f"order {order_id}: {shipped}")
    """,
    "shop/tasks.py": """
        import asyncio
        import logging
        import os

        from aiokafka import AIOKafkaProducer
        from celery import Celery
        from sqlalchemy import create_engine, text

        app = Celery("shop", broker=os.environ["REDIS_URL"] + "/0", backend=os.environ["REDIS_URL"] + "/1")
        app.conf.broker_connection_retry_on_startup = True
        engine = create_engine(f"sqlite:///{os.environ['DB']}")
        log = logging.getLogger("shop.tasks")


        @app.task
        def ship(order_id):
            with engine.connect() as conn:
                parcel = conn.execute(text("SELECT :n + 100"), {"n": order_id}).scalar()
            asyncio.run(send(f"parcel {parcel}"))
            log.warning("shipped order %s as parcel %s", order_id, parcel)
            return f"parcel {parcel}"


        async def send(value):
            producer = AIOKafkaProducer(bootstrap_servers=os.environ["BOOTSTRAP"])
            await producer.start()
            try:
                await producer.send_and_wait(os.environ["TOPIC"], value.encode())
            finally:
                await producer.stop()
    """,
    "serve.py": """
        import os

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
        from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer, get_internal_wsgi_application

        application = get_internal_wsgi_application()  # as ``manage.py runserver`` does
        server = WSGIServer(("127.0.0.1", 0), WSGIRequestHandler)
        server.set_app(application)
        print("ready", server.server_port, flush=True)
        server.serve_forever()
    """,
    "client.py": """
        import sys

        import requests

        answer = requests.get(sys.argv[1], timeout=60)
        print(answer.status_code, answer.text)
    """,
    "consumer.py": """
        import asyncio
        import os

        import zoomtrace as zt
        from aiokafka import AIOKafkaConsumer
        from zoomtrace.integrations import aiokafka as zt_aiokafka


        async def main():
            zt.init("tracking")
            consumer = AIOKafkaConsumer(
                os.environ["TOPIC"], bootstrap_servers=os.environ["BOOTSTRAP"], auto_offset_reset="earliest"
            )
            await consumer.start()
            try:
                msg = await consumer.getone()
            finally:
                await consumer.stop()
            with zt_aiokafka.consume_span(msg):
                zt.log.info("tracking {parcel}", parcel=msg.value.decode())


        asyncio.run(asyncio.wait_for(main(), 60))
    """,
}


def zoomtrace_run(home: Path, service: str, *command: str) -> list[str]:
    return [PY, "-m", "zoomtrace", "--home", str(home), "run", "--service", service, "--", *command]


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(TIMEOUT)
        raise AssertionError(f"{proc.args} did not stop on SIGTERM") from None


def test_one_trace_from_an_http_client_through_django_celery_and_sql_to_a_kafka_consumer(
    tmp_path: Path, redis_server: RedisServer, kafka_broker: KafkaBroker
) -> None:
    write_files(tmp_path, FILES)
    home, topic = tmp_path / "home", f"parcels-{uuid.uuid4().hex[:10]}"
    env = child_env(
        home, REDIS_URL=redis_server.url, BOOTSTRAP=kafka_broker.bootstrap, TOPIC=topic, DB=str(tmp_path / "shop.db")
    )
    worker_command = [PY, "-m", "celery", "-A", "shop.tasks", "worker", "--pool", "prefork", "--concurrency", "2"]
    with open(tmp_path / "worker.err", "w") as worker_err:
        worker = subprocess.Popen(
            zoomtrace_run(home, "worker", *worker_command, "--without-gossip", "--without-mingle"),
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=worker_err,
            text=True,
        )
    run_py = tmp_path / "run_web.py"  # Child runs a script: this one replaces itself with zoomtrace run
    run_py.write_text(f"import os, sys\nos.execv(sys.executable, {zoomtrace_run(home, 'web', PY, 'serve.py')!r})\n")
    web = Child(run_py, home, cwd=tmp_path, env=env)
    try:
        url = f"http://127.0.0.1:{web.expect('ready')}/orders/7"
        client = subprocess.run(
            zoomtrace_run(home, "client", PY, "client.py", url),
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert client.stdout.strip() == "200 order 7: parcel 107", client.stderr
        run_script(tmp_path / "consumer.py", home, env=env)
    finally:
        web.signal(signal.SIGTERM)
        web.wait()
        stop(worker)

    services = {n["node_id"]: n["service"] for n in cli_json(home, "nodes")}
    (trace,) = cli_json(home, "traces")
    story = cli_json(home, "story", trace["trace_id"])

    def shape(span: dict[str, Any]) -> tuple[Any, ...]:
        """A span as (name, service, the application's log lines in it, its children's shapes), in time order."""
        logs = [r["message"] for r in span["records"] if r["code"]["file"].startswith(str(tmp_path))]
        return (span["name"], services[span["node_id"]], logs, [shape(child) for child in span["children"]])

    assert [shape(span) for span in story["spans"]] == [
        ("GET", "client", [], [
            ("GET /orders/<int:order_id>", "web", ["placing order 7"], [
                ("publish shop.tasks.ship", "web", [], [
                    ("shop.tasks.ship", "worker", ["shipped order 7 as parcel 107"], [
                        ("SELECT", "worker", [], []),
                        (f"process {topic}", "tracking", ["tracking parcel 107"], []),
                    ]),
                ]),
            ]),
        ]),
    ]  # fmt: skip
    # The task ran in a prefork child: a node of its own, whose parent is the worker's main node.
    nodes = {n["node_id"]: n for n in cli_json(home, "nodes")}
    task = story["spans"][0]["children"][0]["children"][0]["children"][0]
    assert nodes[nodes[task["node_id"]]["parent_node_id"]]["service"] == "worker"
