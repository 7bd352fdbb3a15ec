"""OTLP export: a real Zoom-instrumented process sends OTLP/HTTP protobuf to a real HTTP server.

The server here only captures what it is sent; the bodies are decoded with the official
``opentelemetry-proto`` messages and checked field by field.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from helpers import Child, child_env, make_repo, marker_line, run_script, story, write_files
from zoomtrace.wire.otlp_mapping import from_any


class Capture:
    """A tiny OTLP/HTTP endpoint that keeps every POST; it can refuse the first ``fail_first`` with 503."""

    def __init__(self, fail_first: int = 0) -> None:
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        self.refused = 0
        self.fail_first = fail_first
        self.lock = threading.Lock()
        capture = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with capture.lock:
                    refuse = capture.refused < capture.fail_first
                    if refuse:
                        capture.refused += 1
                    else:
                        capture.posts.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status = 503 if refuse else 200
                self.send_response(status)
                if refuse:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def bodies(self, path: str) -> list[bytes]:
        out = []
        for p, headers, body in self.posts:
            if p == path:
                out.append(gzip.decompress(body) if headers.get("content-encoding") == "gzip" else body)
        return out

    def traces(self) -> list[ExportTraceServiceRequest]:
        return [ExportTraceServiceRequest.FromString(b) for b in self.bodies("/v1/traces")]

    def logs(self) -> list[ExportLogsServiceRequest]:
        return [ExportLogsServiceRequest.FromString(b) for b in self.bodies("/v1/logs")]


@pytest.fixture
def capture() -> Iterator[Capture]:
    server = Capture()
    yield server
    server.close()


def attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: from_any(kv.value) for kv in kvs if isinstance(kv, KeyValue)}


def spans_of(requests: list[ExportTraceServiceRequest]) -> list[tuple[dict[str, Any], str, Any]]:
    """Every span with its resource attributes and scope name."""
    return [
        (attrs(rs.resource.attributes), ss.scope.name, span)
        for req in requests
        for rs in req.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]


def logs_of(requests: list[ExportLogsServiceRequest]) -> list[tuple[dict[str, Any], str, Any]]:
    return [
        (attrs(rl.resource.attributes), sl.scope.name, log)
        for req in requests
        for rl in req.resource_logs
        for sl in rl.scope_logs
        for log in sl.log_records
    ]


APP = """
import json
import logging
import sys

import zoomtrace as zt

import lib

zt.init("exporter", env="test", group="shop", version="2.0",
        sink=["spool", "otlp+http://127.0.0.1:" + sys.argv[1]])
with zt.span("checkout", user="u1") as checkout:  # @checkout
    logging.getLogger("shop.billing").warning("charged %s", 12.5)  # @log
    first = zt.event({"order": 7}, type="OrderPlaced")  # @event
    derived = lib.derive(first)
    try:
        with zt.span("payment"):
            raise RuntimeError("card declined")  # @raise
    except RuntimeError:
        pass
with zt.span("retry", follows_from=checkout) as retry:
    pass
incoming = zt.extract({"traceparent": "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01", "tracestate": "vendor=v1,other=o2"})
with zt.span("continued", context=incoming):
    with zt.span("continued-child"):
        pass
print("RESULT " + json.dumps({"trace_id": checkout.trace_id, "span_id": checkout.span_id, "first": first,
                              "derived": derived, "retry_trace": retry.trace_id}))
"""

LIB = """
import zoomtrace as zt


def derive(source):
    return zt.event({"total": 12.5}, type="Invoice", sources=[source])  # @derived
"""


def test_otlp_export_carries_resource_code_links_lineage_and_dirty(tmp_path: Path, capture: Capture) -> None:
    repo = tmp_path / "repo"
    head = make_repo(repo, {"app.py": APP, "lib.py": LIB})
    write_files(repo, {"lib.py": LIB + "\n# modified after the commit: lib.py is dirty\n"})
    home = tmp_path / "home"
    child = run_script(repo / "app.py", home, str(capture.port))
    result = json.loads(next(line for line in child.stdout if line.startswith("RESULT "))[7:])

    spans = spans_of(capture.traces())
    logs = logs_of(capture.logs())
    assert spans and logs

    # One resource for the node, on both signals, with the semantic-convention attributes.
    resources = {json.dumps(r, sort_keys=True) for r, _, _ in spans + logs}
    assert len(resources) == 1
    resource = spans[0][0]
    assert resource["service.name"] == "exporter"
    assert resource["service.version"] == "2.0"
    assert resource["deployment.environment.name"] == "test"
    assert resource["host.name"] == socket.gethostname()
    assert resource["process.pid"] == child.pid
    assert resource["vcs.ref.head.revision"] == head
    assert resource["zoom.node.id"]

    by_name = {span.name: (scope, span) for _, scope, span in spans}
    scope, checkout = by_name["checkout"]
    assert scope == "zoomtrace"
    assert checkout.trace_id.hex() == result["trace_id"]
    assert checkout.span_id.hex() == result["span_id"]
    assert checkout.parent_span_id == b""
    a = attrs(checkout.attributes)
    assert a["user"] == "u1"
    assert a["code.file.path"] == "app.py"
    assert a["code.line.number"] == marker_line(repo / "app.py", "checkout")
    assert a["code.function.name"] == "<module>"
    assert a["zoom.code.commit"] == head
    assert a["zoom.code.dirty"] is False
    assert a["zoom.record.id"]
    assert checkout.end_time_unix_nano >= checkout.start_time_unix_nano > 0

    # An exception leaving a span: ERROR status and an "exception" event with a Python stack trace.
    _, payment = by_name["payment"]
    assert payment.parent_span_id == checkout.span_id
    assert payment.status.code == payment.status.STATUS_CODE_ERROR
    assert "card declined" in payment.status.message
    (exception,) = [e for e in payment.events if e.name == "exception"]
    ea = attrs(exception.attributes)
    assert ea["exception.type"] == "RuntimeError"
    assert ea["exception.message"] == "card declined"
    assert f'File "app.py", line {marker_line(repo / "app.py", "raise")}' in ea["exception.stacktrace"]

    # Follows-from is a span link.
    _, retry = by_name["retry"]
    assert retry.trace_id.hex() == result["retry_trace"]
    assert [(link.trace_id.hex(), link.span_id.hex()) for link in retry.links] == [
        (result["trace_id"], result["span_id"])
    ]

    # A continued remote trace keeps its vendor state (W3C tracestate) on its spans, as OTLP trace_state.
    _, continued = by_name["continued"]
    _, continued_child = by_name["continued-child"]
    assert continued.trace_id.hex() == "ab" * 16 and continued.parent_span_id.hex() == "cd" * 8
    assert continued.trace_state == continued_child.trace_state == "vendor=v1,other=o2"
    assert checkout.trace_state == ""
    assert "otel.trace_state" not in attrs(continued.attributes)

    # stdlib logging: a log record in the span, scope = logger name, severity mapped.
    (log,) = [(scope, log) for _, scope, log in logs if from_any(log.body) == "charged 12.5"]
    scope, record = log
    assert scope == "shop.billing"
    assert record.severity_text == "WARNING" and record.severity_number == 13
    assert record.trace_id.hex() == result["trace_id"] and record.span_id.hex() == result["span_id"]
    la = attrs(record.attributes)
    assert la["code.file.path"] == "app.py"
    assert la["code.line.number"] == marker_line(repo / "app.py", "log")
    assert la["zoom.template"] == "charged %s"

    # Data events: event name = type, payload as the body, lineage and the dirty flag as attributes.
    events = {log.event_name: log for _, _, log in logs if log.event_name}
    placed, invoice = events["OrderPlaced"], events["Invoice"]
    assert from_any(placed.body) == {"order": 7}
    assert attrs(placed.attributes)["zoom.record.id"] == result["first"]
    assert attrs(placed.attributes)["zoom.code.dirty"] is False
    ia = attrs(invoice.attributes)
    assert ia["zoom.record.id"] == result["derived"]
    assert ia["zoom.sources"] == [result["first"]]
    assert ia["zoom.kind"] == "event"
    assert ia["code.file.path"] == "lib.py"
    assert ia["code.line.number"] == marker_line(repo / "lib.py", "derived")
    assert ia["code.function.name"] == "derive"
    assert ia["zoom.code.dirty"] is True
    assert from_any(invoice.body) == {"total": 12.5}

    # The node's lifecycle travels too, as events.
    node_events = {log.event_name for _, _, log in logs if log.event_name.startswith("zoom.node.")}
    assert {"zoom.node.started", "zoom.node.stopped"} <= node_events

    # What leaves the machine about it (issue 12, item 20): repositories by name, not by local path; sinks
    # by scheme and host only. The command line is OpenTelemetry's process.command_line, scrubbed.
    (started,) = [log for _, _, log in logs if log.event_name == "zoom.node.started"]
    sa = attrs(started.attributes)
    assert sa["repo"] == "repo"
    assert [(r["root"], r["head"], r["dirty"]) for r in sa["repos"]] == [("repo", head, ["lib.py"])]
    assert sa["sinks"] == ["spool", f"otlp+http://127.0.0.1:{capture.port}"]
    assert str(tmp_path) not in json.dumps({k: v for k, v in sa.items() if k != "argv"})
    assert sa["argv"] == resource["process.command_line"]

    # Several sinks at once: the spool got the same story.
    st = story(home, result["trace_id"])
    assert {s["name"] for s in st["spans"]} == {"checkout"}


ENV_APP = """
import json

import zoomtrace as zt

zt.init("env-exporter", sink="otlp")
with zt.span("configured-by-env") as s:
    pass
print("RESULT " + json.dumps({"trace_id": s.trace_id}))
"""


def test_standard_variables_headers_gzip_and_retry(tmp_path: Path) -> None:
    server = Capture(fail_first=1)
    try:
        script = tmp_path / "env_app.py"
        script.write_text(ENV_APP)
        env = child_env(
            tmp_path / "home",
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{server.port}",
            OTEL_EXPORTER_OTLP_HEADERS="x-team=zoom,x-note=a%20b",
            OTEL_EXPORTER_OTLP_COMPRESSION="gzip",
            OTEL_EXPORTER_OTLP_TIMEOUT="5000",
        )
        child = Child(script, None, env=env)
        trace_id = json.loads(child.expect("RESULT"))["trace_id"]
        assert child.wait() == 0, child.stderr
        assert server.refused == 1  # the first request got 503 ...
        spans = spans_of(server.traces())  # ... and was sent again
        assert [s.trace_id.hex() for _, _, s in spans if s.name == "configured-by-env"] == [trace_id]
        for _, headers, _ in server.posts:
            assert headers["x-team"] == "zoom"
            assert headers["x-note"] == "a b"
            assert headers["content-encoding"] == "gzip"
            assert headers["content-type"] == "application/x-protobuf"
    finally:
        server.close()


UNREACHABLE_APP = """
import json
import sys

import zoomtrace as zt

zt.init("lonely", sink=["spool", "otlp+http://127.0.0.1:" + sys.argv[1]])
with zt.span("still-recorded") as s:
    pass
print("RESULT " + json.dumps({"trace_id": s.trace_id}))
"""


def test_an_unreachable_backend_loses_nothing_else(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = tmp_path / "lonely.py"
    script.write_text(UNREACHABLE_APP)
    home = tmp_path / "home"
    child = run_script(script, home, str(port))
    trace_id = json.loads(child.stdout[-1][7:])["trace_id"]
    assert "OTLP" in child.stderr  # one warning line says the export failed
    assert [s["name"] for s in story(home, trace_id)["spans"]] == ["still-recorded"]


def test_node_records_leave_the_machine_without_local_paths_or_credentials() -> None:
    """The mapping itself reduces what a node record says outside: whatever the record holds."""
    from zoomtrace.wire.otlp_mapping import node_resource, records_to_otlp
    from zoomtrace.wire.record import Record

    node = "0196a0a0-0000-7000-8000-000000000001"
    sinks = [
        "kafka://alice:pw1@b1:9092,b2:9092?sasl.password=pw2",
        "otlp+https://bob:pw3@collector.example:4318/v1/pw4?api_key=pw5#pw6",
        "file:///home/alice/pw7/out.jsonl",
        "alice:pw8@broker:9092",
        "http://[::1",
        "spool",
        "stdout+json",
    ]
    repo = {"root": "/home/alice/src/shop", "head": "a" * 40, "branch": "main", "dirty": ["app.py"], "problem": None}
    started = {
        "service": "shop",
        "node_id": node,
        "argv": "python app.py",
        "repo": "/home/alice/src/shop",
        "repos": [repo, {**repo, "root": "/"}],
        "sinks": sinks,
    }
    records = [
        Record(id="r1", kind="node", type="started", ts_ns=1, node_id=node, attrs=started),
        Record(id="r2", kind="node", type="repo", ts_ns=2, node_id=node, attrs={**repo, "root": "/home/alice/lib"}),
    ]
    _, logs = records_to_otlp(records, {node: node_resource(started)})
    assert logs is not None
    body = logs.SerializeToString()
    for secret in (b"pw", b"alice", b"/home", b"api_key"):
        assert secret not in body, secret
    exported = {log.event_name: attrs(log.attributes) for _, _, log in logs_of([logs])}
    sent = exported["zoom.node.started"]
    assert sent["sinks"] == [
        "kafka://b1:9092,b2:9092",  # scheme and hosts: no user, password, path, query or fragment
        "otlp+https://collector.example:4318",
        "file",
        "?",  # not a URL: nothing of it
        "http",  # not parsable: the scheme only
        "spool",
        "stdout+json",
    ]
    assert sent["repo"] == "shop" and [r["root"] for r in sent["repos"]] == ["shop", "/"]
    assert [r["dirty"] for r in sent["repos"]] == [["app.py"], ["app.py"]]
    assert exported["zoom.node.repo"]["root"] == "lib"
    assert started["sinks"] is sinks and started["repo"] == "/home/alice/src/shop"  # the record is untouched
