"""The OTLP receiver: a service instrumented only with the official OpenTelemetry SDK joins the Zoom story.

Three real processes: the receiver, a Zoom-instrumented front that calls (starts) an
OpenTelemetry-only service with its ``traceparent``, and that service, which exports with
``opentelemetry-exporter-otlp-proto-http``. The story is then read with the real CLI.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from helpers import SRC, all_records, child_env, run_script, span_named, story, walk_spans
from support.otlp_receiver import Receiver

OTEL_SERVICE = """
import logging
import sys

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

url, traceparent = sys.argv[1], sys.argv[2]
resource = Resource.create({"service.name": "otel-pricing", "service.version": "9.1",
                            "deployment.environment.name": "test", "team.custom": "pricing-team"})
tracer_provider = TracerProvider(resource=resource)
tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url + "/v1/traces")))
trace.set_tracer_provider(tracer_provider)
logger_provider = LoggerProvider(resource=resource)
logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=url + "/v1/logs")))
log = logging.getLogger("pricing")
log.addHandler(LoggingHandler(logger_provider=logger_provider))
log.setLevel(logging.INFO)

tracer = trace.get_tracer("pricing.service", "1.0")
parent = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
with tracer.start_as_current_span("price-quote", context=parent, kind=trace.SpanKind.SERVER,
                                  attributes={"quote.items": 3, "custom.flag": True}):
    with tracer.start_as_current_span("lookup-table") as lookup:
        lookup.add_event("cache-miss", {"table": "prices"})
        log.warning("price table is stale")
        try:
            raise LookupError("no price for sku-9")
        except LookupError:
            log.exception("lookup failed")
tracer_provider.shutdown()
logger_provider.shutdown()
"""

FRONT = """
import json
import subprocess
import sys

import zoomtrace as zt

zt.init("front", env="test")
with zt.span("front-request") as front:
    headers = zt.inject({})
    subprocess.run([sys.executable, sys.argv[2], sys.argv[1], headers["traceparent"]], check=True)
print("RESULT " + json.dumps({"trace_id": front.trace_id, "span_id": front.span_id}))
"""


def test_an_opentelemetry_sdk_service_appears_in_the_zoom_story(
    tmp_path: Path, zoom_home: Path, receiver: Receiver
) -> None:
    (tmp_path / "otel_service.py").write_text(OTEL_SERVICE)
    front = tmp_path / "front.py"
    front.write_text(FRONT)
    child = run_script(front, zoom_home, receiver.url, str(tmp_path / "otel_service.py"))
    ids = json.loads(next(line for line in child.stdout if line.startswith("RESULT "))[7:])

    st = story(zoom_home, ids["trace_id"])
    root = span_named(st, "front-request")
    quote = span_named(st, "price-quote")
    lookup = span_named(st, "lookup-table")
    parents = {s["span_id"]: p["span_id"] if p else None for s, p in walk_spans(st["spans"])}
    assert parents[root["span_id"]] is None
    assert parents[quote["span_id"]] == ids["span_id"]  # under the Zoom span that called it
    assert parents[lookup["span_id"]] == quote["span_id"]

    services = {n["node_id"]: n for n in st["nodes"]}
    assert services[root["node_id"]]["service"] == "front"
    otel_node = services[quote["node_id"]]
    assert otel_node["service"] == "otel-pricing"
    assert otel_node["version"] == "9.1"
    assert otel_node["env"] == "test"
    assert quote["node_id"] == lookup["node_id"] != root["node_id"]

    # Unknown attributes are kept; the scope and the kind are named.
    assert quote["attrs"]["quote.items"] == 3
    assert quote["attrs"]["custom.flag"] is True
    assert quote["attrs"]["span.kind"] == "server"
    assert quote["attrs"]["otel.scope.name"] == "pricing.service"

    # Logs from the SDK's LoggingHandler are records of the span they were emitted in.
    records = {r["message"]: (r, s) for r, s in all_records(st) if r.get("message")}
    stale, span = records["price table is stale"]
    assert span is not None and span["span_id"] == lookup["span_id"]
    assert stale["level"] == "WARNING"
    assert stale["type"] == "pricing"
    assert stale["code"]["function"] == "<module>"
    assert stale["code"]["line"] > 0
    failed, span = records["lookup failed"]
    assert span is not None and span["span_id"] == lookup["span_id"]
    assert failed["level"] == "ERROR"
    assert failed["error"]["type"] == "LookupError"
    assert failed["error"]["message"] == "no price for sku-9"
    # A span event is a record of its span too.
    miss, span = records["cache-miss"]
    assert span is not None and span["span_id"] == lookup["span_id"]
    assert miss["attrs"] == {"table": "prices"}


def _json_export(trace_id: str, span_id: str) -> bytes:
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [
                            {"key": "service.name", "value": {"stringValue": "json-svc"}},
                            {"key": "host.name", "value": {"stringValue": "box-7"}},
                        ]
                    },
                    "scopeSpans": [
                        {
                            "scope": {"name": "json.lib"},
                            "spans": [
                                {
                                    "traceId": trace_id,
                                    "spanId": span_id,
                                    "name": "json-span",
                                    "kind": 3,
                                    "startTimeUnixNano": "1700000000000000000",
                                    "endTimeUnixNano": "1700000000500000000",
                                    "attributes": [
                                        {"key": "rows", "value": {"intValue": "42"}},
                                        {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}},
                                    ],
                                    "status": {"code": 2, "message": "it broke"},
                                    "someFutureField": {"ignored": True},
                                }
                            ],
                        }
                    ],
                }
            ],
        }
    ).encode()


def test_otlp_json_is_accepted_with_hex_ids_and_unknown_fields(zoom_home: Path, receiver: Receiver) -> None:
    trace_id, span_id = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
    status, body = receiver.post("/v1/traces", _json_export(trace_id, span_id), "application/json")
    assert status == 200, body
    assert json.loads(body) == {}
    log_body = json.dumps(
        {
            "resourceLogs": [
                {
                    "resource": {
                        "attributes": [
                            {"key": "service.name", "value": {"stringValue": "json-svc"}},
                            {"key": "host.name", "value": {"stringValue": "box-7"}},
                        ]
                    },
                    "scopeLogs": [
                        {
                            "scope": {"name": "json.logger"},
                            "logRecords": [
                                {
                                    "timeUnixNano": "1700000000100000000",
                                    "severityNumber": 17,
                                    "severityText": "ERROR",
                                    "body": {"stringValue": "json log line"},
                                    "traceId": trace_id,
                                    "spanId": span_id,
                                    "attributes": [{"key": "user.note", "value": {"stringValue": "kept"}}],
                                }
                            ],
                        }
                    ],
                }
            ]
        }
    ).encode()
    status, body = receiver.post("/v1/logs", log_body, "application/json")
    assert status == 200, body

    st = story(zoom_home, trace_id)
    span = span_named(st, "json-span")
    assert span["status"] == "error"
    assert span["attrs"]["rows"] == 42
    assert span["attrs"]["tags"] == ["a"]
    assert span["attrs"]["span.kind"] == "client"
    assert span["attrs"]["otel.status_description"] == "it broke"
    assert span["start_ns"] == 1700000000000000000 and span["end_ns"] == 1700000000500000000
    (record,) = span["records"]
    assert record["message"] == "json log line" and record["level"] == "ERROR"
    assert record["attrs"] == {"user.note": "kept"}
    (node,) = st["nodes"]
    assert node["service"] == "json-svc" and node["host"] == "box-7"

    # The same export again is stored once.
    assert receiver.post("/v1/traces", _json_export(trace_id, span_id), "application/json")[0] == 200
    assert len(story(zoom_home, trace_id)["spans"]) == 1


def test_bad_requests_get_clear_answers(receiver: Receiver) -> None:
    status, body = receiver.post("/v1/traces", b"{not json", "application/json")
    assert status == 400 and b"not JSON" in body
    status, body = receiver.post(
        "/v1/traces",
        json.dumps(
            {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz", "spanId": "eee19b7ec3c1b174"}]}]}]}
        ).encode(),
        "application/json",
    )
    assert status == 400 and b"hex" in body
    status, _ = receiver.post("/v1/traces", b"\x0a\xff\xff", "application/x-protobuf")
    assert status == 400
    status, _ = receiver.post("/v1/traces", b"hello", "text/plain")
    assert status == 415
    status, _ = receiver.post("/v1/metrics", b"", "application/x-protobuf")
    assert status == 404


def test_the_receiver_module_runs_as_a_command(tmp_path: Path) -> None:
    """``python -m zoomtrace.collect.otlp_receiver`` refuses a bad address in one line."""
    import subprocess

    out = subprocess.run(
        [sys.executable, "-m", "zoomtrace.collect.otlp_receiver", "--listen", "nonsense", "--home", str(tmp_path)],
        capture_output=True,
        text=True,
        env=child_env(tmp_path, PYTHONPATH=str(SRC)),
        timeout=30,
        check=False,
    )
    assert out.returncode == 2
    assert out.stderr.strip().startswith("zoomtrace: --otlp 'nonsense'")
    assert "Traceback" not in out.stderr
