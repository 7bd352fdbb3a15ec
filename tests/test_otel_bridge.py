"""The in-process bridge: OpenTelemetry instrumentation libraries feed the Zoom story, one shared context.

A real process with ``opentelemetry-instrumentation-sqlite3`` and ``-requests`` (unchanged
libraries) and the bridge on; the story is read with the real CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

from helpers import make_repo, marker_line, run_script, span_named, story, walk_spans

APP = """
import json
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from opentelemetry import trace
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor

import zoomtrace as zt

zt.init("bridged", env="test", opentelemetry=True)
SQLite3Instrumentor().instrument()
RequestsInstrumentor().instrument()


class Echo(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"traceparent": self.headers.get("traceparent"),
                           "baggage": self.headers.get("baggage")}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
threading.Thread(target=server.serve_forever, daemon=True).start()
tracer = trace.get_tracer("shop.checkout", "3.1")


def handle_order():
    with zt.span("handle-order", on_behalf_of="tenant-42") as outer:
        conn = sqlite3.connect(":memory:")
        cursor = conn.cursor()
        cursor.execute("CREATE TABLE orders (id INTEGER)")  # @create
        with tracer.start_as_current_span("otel-step") as step:  # @step
            assert trace.get_current_span() is step
            with zt.span("zoom-inside-otel") as inner:
                assert trace.get_current_span().get_span_context().span_id == int(inner.span_id, 16)
                cursor.execute("INSERT INTO orders VALUES (?)", (7,))  # @insert
            echo = requests.get(f"http://127.0.0.1:{server.server_address[1]}/echo", timeout=10).json()  # @get
            step.add_event("order-stored", {"order": 7})
        try:
            with tracer.start_as_current_span("otel-fails"):
                raise ValueError("no stock")  # @raise
        except ValueError:
            pass
    return outer, inner, step, echo


outer, inner, step, echo = handle_order()
print("RESULT " + json.dumps({"trace_id": outer.trace_id, "outer": outer.span_id, "inner": inner.span_id,
                              "step": format(step.get_span_context().span_id, "016x"), "echo": echo}))
"""


def test_instrumentation_libraries_land_under_the_right_parent(tmp_path: Path, zoom_home: Path) -> None:
    repo = tmp_path / "repo"
    head = make_repo(repo, {"app.py": APP})
    child = run_script(repo / "app.py", zoom_home)
    ids = json.loads(next(line for line in child.stdout if line.startswith("RESULT "))[7:])
    st = story(zoom_home, ids["trace_id"])
    parent_of = {s["span_id"]: (p["name"] if p else None) for s, p in walk_spans(st["spans"])}

    outer = span_named(st, "handle-order")
    step = span_named(st, "otel-step")
    inner = span_named(st, "zoom-inside-otel")
    create = span_named(st, "CREATE")
    insert = span_named(st, "INSERT")
    get = span_named(st, "GET")
    fails = span_named(st, "otel-fails")
    assert (outer["span_id"], step["span_id"], inner["span_id"]) == (ids["outer"], ids["step"], ids["inner"])

    # One tree, both ways: an OTel span in a zt.span, a zt.span in an OTel span, library spans in each.
    assert parent_of[outer["span_id"]] is None
    assert parent_of[create["span_id"]] == "handle-order"
    assert parent_of[step["span_id"]] == "handle-order"
    assert parent_of[inner["span_id"]] == "otel-step"
    assert parent_of[insert["span_id"]] == "zoom-inside-otel"
    assert parent_of[get["span_id"]] == "otel-step"
    assert parent_of[fails["span_id"]] == "handle-order"

    # OpenTelemetry's propagator injected the current span of the shared context, and Zoom's baggage.
    assert ids["echo"]["traceparent"] == f"00-{ids['trace_id']}-{get['span_id']}-01"
    assert "zoom.on_behalf_of=tenant-42" in (ids["echo"]["baggage"] or "")

    # Zoom provenance on library spans: the application line that ran the query, with its commit.
    app = repo / "app.py"
    for span, marker in ((create, "create"), (insert, "insert"), (get, "get"), (step, "step")):
        assert span["code"]["file"] == "app.py", span
        assert span["code"]["line"] == marker_line(app, marker), span["name"]
        assert span["code"]["function"] == "handle_order"
        assert span["code"]["commit"] == head
        assert span["code"]["dirty"] is False
    assert create["attrs"]["otel.scope.name"] == "opentelemetry.instrumentation.sqlite3"
    assert create["attrs"]["span.kind"] == "client"
    assert create["attrs"]["db.statement"] == "CREATE TABLE orders (id INTEGER)"
    assert step["attrs"]["otel.scope.name"] == "shop.checkout"
    assert step["attrs"]["otel.scope.version"] == "3.1"
    assert insert["on_behalf_of"] == "tenant-42"  # inherited through the OTel span

    # Exceptions and span events.
    assert fails["status"] == "error"
    assert fails["error"]["type"] == "ValueError"
    assert fails["error"]["frames"][-1]["line"] == marker_line(app, "raise")
    (event,) = [r for r in step["records"] if r["type"] == "order-stored"]
    assert event["attrs"] == {"order": 7}
    assert event["kind"] == "log"

    (node,) = [n for n in st["nodes"] if n["node_id"] == outer["node_id"]]
    assert node["service"] == "bridged" and node["commit"] == head


SDK_FIRST = """
import json

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

import zoomtrace as zt

trace.set_tracer_provider(TracerProvider())  # the application had its own SDK set-up already
zt.init("sdk-first", opentelemetry=True)
tracer = trace.get_tracer("legacy")
with zt.span("zoom-root") as root:
    with tracer.start_as_current_span("sdk-span"):
        with zt.span("zoom-leaf") as leaf:
            pass
print("RESULT " + json.dumps({"trace_id": root.trace_id}))
"""


def test_an_sdk_provider_installed_first_still_feeds_the_story(tmp_path: Path, zoom_home: Path) -> None:
    script = tmp_path / "sdk_first.py"
    script.write_text(SDK_FIRST)
    child = run_script(script, zoom_home)
    trace_id = json.loads(child.stdout[-1][7:])["trace_id"]
    st = story(zoom_home, trace_id)
    parent_of = {s["name"]: (p["name"] if p else None) for s, p in walk_spans(st["spans"])}
    assert parent_of == {"zoom-root": None, "sdk-span": "zoom-root", "zoom-leaf": "sdk-span"}
    expected_line = (
        SDK_FIRST.splitlines().index('    with tracer.start_as_current_span("sdk-span"):') + 1
    )  # file lines count from 1
    assert span_named(st, "sdk-span")["code"]["line"] == expected_line
