"""HTTP integrations: a real Flask app and a real FastAPI app calling each other over localhost.

Three processes share one Zoom home: a client, a Flask service (WSGI middleware, served by
Werkzeug) and a FastAPI service (ASGI middleware, served by uvicorn). They call each other
with ``requests`` and ``httpx`` (sync and async); the story, read with the real CLI, must
be one trace with every span under the right parent.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import Child, all_records, cli_json, marker_line, run_script, story, walk_spans

FLASK_SERVICE = """
# (a decorated function's code starts at its first decorator: the route markers sit there)
import json
import logging
import sys
from pathlib import Path

import httpx
import requests
from flask import Flask, jsonify
from werkzeug.serving import make_server

import zoomtrace as zt
from zoomtrace.integrations import requests as zt_requests
from zoomtrace.integrations.httpx import TracingTransport
from zoomtrace.integrations.wsgi import ZoomMiddleware

zt.init("flask-shop", env="test")
zt_requests.instrument()
app = Flask(__name__)
app.wsgi_app = ZoomMiddleware(app.wsgi_app)
log = logging.getLogger("shop.orders")


def peers():
    return json.loads(Path(sys.argv[1]).read_text())


@app.get("/orders/<int:order_id>")  # @order_view
def order(order_id):
    log.info("looking up order %s", order_id)  # @order_log
    price = requests.get(f"{peers()['fastapi']}/price/{order_id}?api_key=s3cr3t&currency=eur", timeout=10)  # @req
    host = peers()["fastapi"].split("://", 1)[1]
    with httpx.Client(transport=TracingTransport()) as client:
        quote = client.get(f"http://alice:hunter2@{host}/quote/{order_id}?token=abc")  # @httpx_sync
    return jsonify(order=order_id, price=price.json()["price"], stock=quote.json()["stock"])


@app.get("/stock/<int:item>")  # @stock_view
def stock(item):
    return jsonify(item=item, stock=5)


@app.get("/fail")
def fail():
    raise RuntimeError("flask handler failed")  # @flask_raise


server = make_server("127.0.0.1", 0, app, threaded=True)
print(f"ready {server.server_port}", flush=True)
server.serve_forever()
"""

FASTAPI_SERVICE = """
import json
import socket
import sys
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

import zoomtrace as zt
from zoomtrace.integrations.asgi import ZoomMiddleware
from zoomtrace.integrations.httpx import AsyncTracingTransport

zt.init("fastapi-pricing", env="test")
app = FastAPI()
app.add_middleware(ZoomMiddleware)


def peers():
    return json.loads(Path(sys.argv[1]).read_text())


@app.get("/price/{item}")  # @price_view
async def price(item: int):
    return {"item": item, "price": 12.5}


@app.get("/quote/{item}")  # @quote_view
async def quote(item: int):
    async with httpx.AsyncClient(transport=AsyncTracingTransport()) as client:
        stock = await client.get(f"{peers()['flask']}/stock/{item}")  # @httpx_async
    return {"item": item, "stock": stock.json()["stock"]}


@app.get("/boom")
async def boom():
    raise ValueError("fastapi handler failed")  # @fastapi_raise


sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(64)  # listening before uvicorn starts: early connections wait in the backlog
print(f"ready {sock.getsockname()[1]}", flush=True)
uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off")).run(sockets=[sock])
"""

CLIENT = """
import json
import sys

import requests

import zoomtrace as zt
from zoomtrace.integrations import requests as zt_requests

zt.init("client", env="test")
zt_requests.instrument()
flask, fastapi = sys.argv[1], sys.argv[2]
with zt.span("checkout") as root:
    order = requests.get(f"{flask}/orders/7", timeout=30)
    failed = requests.get(f"{flask}/fail", timeout=30)
    boom = requests.get(f"{fastapi}/boom", timeout=30)
print("RESULT " + json.dumps({"trace_id": root.trace_id, "order": order.json(),
                              "statuses": [failed.status_code, boom.status_code]}))
"""


class Services:
    def __init__(self, tmp: Path, home: Path) -> None:
        self.dir = tmp
        peers = tmp / "peers.json"
        for name, text in (
            ("flask_service.py", FLASK_SERVICE),
            ("fastapi_service.py", FASTAPI_SERVICE),
            ("client.py", CLIENT),
        ):
            (tmp / name).write_text(text.lstrip("\n"))
        self.flask = Child(tmp / "flask_service.py", home, str(peers))
        self.fastapi = Child(tmp / "fastapi_service.py", home, str(peers))
        self.flask_url = f"http://127.0.0.1:{self.flask.expect('ready')}"
        self.fastapi_url = f"http://127.0.0.1:{self.fastapi.expect('ready')}"
        peers.write_text(json.dumps({"flask": self.flask_url, "fastapi": self.fastapi_url}))

    def stop(self) -> None:
        """SIGTERM: each service records its stop and flushes before it exits."""
        for child in (self.flask, self.fastapi):
            if child.proc.poll() is None:
                child.signal(signal.SIGTERM)
        for child in (self.flask, self.fastapi):
            child.wait()


@pytest.fixture
def services(tmp_path: Path, zoom_home: Path) -> Iterator[Services]:
    running = Services(tmp_path, zoom_home)
    try:
        yield running
    finally:
        running.stop()


def _spans(st: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    return list(walk_spans(st["spans"]))


def _one(st: dict[str, Any], name: str, service: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    hits = [(s, p) for s, p in _spans(st) if s["name"] == name and s["service"] == service]
    assert len(hits) == 1, (name, service, [(s["name"], s["service"]) for s, _ in _spans(st)])
    return hits[0]


def test_flask_and_fastapi_calling_each_other_tell_one_story(services: Services, zoom_home: Path) -> None:
    client = run_script(services.dir / "client.py", zoom_home, services.flask_url, services.fastapi_url)
    result = json.loads(next(line for line in client.stdout if line.startswith("RESULT "))[7:])
    assert result["order"] == {"order": 7, "price": 12.5, "stock": 5}
    assert result["statuses"] == [500, 500]
    services.stop()

    # Every request of the three processes is in this one trace.
    traces = cli_json(zoom_home, "traces")
    assert [t["trace_id"] for t in traces] == [result["trace_id"]]
    st = story(zoom_home, result["trace_id"])
    assert {n["service"] for n in st["nodes"]} == {"client", "flask-shop", "fastapi-pricing"}

    flask_py, fastapi_py = services.dir / "flask_service.py", services.dir / "fastapi_service.py"
    root, _ = _one(st, "checkout", "client")
    orders, parent = _one(st, "GET /orders/<int:order_id>", "flask-shop")
    assert parent is not None and parent["name"] == "GET" and parent["service"] == "client"
    assert parent["attrs"]["span.kind"] == "client"

    # The server span: semantic-convention attributes, the route, the view function's code.
    a = orders["attrs"]
    assert a["span.kind"] == "server"
    assert a["http.request.method"] == "GET"
    assert a["url.path"] == "/orders/7"
    assert a["url.scheme"] == "http"
    assert a["http.route"] == "/orders/<int:order_id>"
    assert a["http.response.status_code"] == 200
    assert a["server.address"] == "127.0.0.1"
    assert a["server.port"] == int(services.flask_url.rsplit(":", 1)[1])
    assert a["client.address"] == "127.0.0.1"
    assert a["network.protocol.version"] == "1.1"
    assert orders["status"] == "ok"
    assert orders["code"]["function"] == "order"
    assert orders["code"]["line"] == marker_line(flask_py, "order_view")
    (log,) = [r for r in orders["records"] if r.get("message") == "looking up order 7"]
    assert log["code"]["line"] == marker_line(flask_py, "order_log")

    # Outgoing calls from the Flask view: requests, then httpx (sync), each with its server child.
    clients = [c for c in orders["children"] if c["attrs"].get("span.kind") == "client"]
    assert [c["name"] for c in clients] == ["GET", "GET"]
    by_line = {c["code"]["line"]: c for c in clients}
    via_requests = by_line[marker_line(flask_py, "req")]
    via_httpx = by_line[marker_line(flask_py, "httpx_sync")]
    for span in (via_requests, via_httpx):
        assert span["code"]["function"] == "order"
        assert span["attrs"]["http.response.status_code"] == 200
        assert span["attrs"]["server.address"] == "127.0.0.1"
    # URLs without secrets: no user or password, no secret query values.
    assert via_requests["attrs"]["url.full"].endswith("/price/7?api_key=[scrubbed]&currency=eur")
    assert via_httpx["attrs"]["url.full"].startswith("http://127.0.0.1:")
    assert via_httpx["attrs"]["url.full"].endswith("/quote/7?token=[scrubbed]")
    assert "s3cr3t" not in json.dumps(st) and "hunter2" not in json.dumps(st)

    (price,) = via_requests["children"]
    assert (price["name"], price["service"]) == ("GET /price/{item}", "fastapi-pricing")
    assert price["attrs"]["http.route"] == "/price/{item}"
    assert price["attrs"]["url.query"] == "api_key=[scrubbed]&currency=eur"
    assert price["code"]["function"] == "price"
    assert price["code"]["line"] == marker_line(fastapi_py, "price_view")
    (quote,) = via_httpx["children"]
    assert (quote["name"], quote["service"]) == ("GET /quote/{item}", "fastapi-pricing")

    # ... and FastAPI calls back into Flask with the async httpx client.
    (async_call,) = quote["children"]
    assert async_call["name"] == "GET" and async_call["attrs"]["span.kind"] == "client"
    assert async_call["code"]["line"] == marker_line(fastapi_py, "httpx_async")
    assert async_call["code"]["function"] == "quote"
    (stock,) = async_call["children"]
    assert (stock["name"], stock["service"]) == ("GET /stock/<int:item>", "flask-shop")

    # Exceptions: Flask turns them into a 500, FastAPI's server error middleware too; both are recorded.
    fail, _ = _one(st, "GET /fail", "flask-shop")
    assert fail["status"] == "error"
    assert fail["attrs"]["http.response.status_code"] == 500
    assert fail["error"]["type"] == "RuntimeError"
    assert fail["error"]["frames"][-1]["line"] == marker_line(flask_py, "flask_raise")
    flask_logged = [r for r, s in all_records(st) if s is fail and r.get("error")]
    assert flask_logged and flask_logged[0]["error"]["message"] == "flask handler failed"
    boom, _ = _one(st, "GET /boom", "fastapi-pricing")
    assert boom["status"] == "error"
    assert boom["attrs"]["http.response.status_code"] == 500
    assert boom["error"]["type"] == "ValueError"
    assert boom["error"]["frames"][-1]["line"] == marker_line(fastapi_py, "fastapi_raise")

    # One tree: everything hangs under the client's root span.
    assert [s["name"] for s in st["spans"]] == ["checkout"]
    assert len(_spans(st)) == 13  # 1 root + 3 + 7 (the order) + 2 (the failures)
    assert root["children"]
