"""OTLP/HTTP export: Zoom records to any OpenTelemetry backend (Collector, Jaeger, Tempo, Honeycomb...).

``sink="otlp+http://host:4318"`` (or ``otlp+https://``) sends spans to ``/v1/traces`` and
logs, data events, raw data and node lifecycle records to ``/v1/logs``, as protobuf
(``zoomtrace.wire.otlp_mapping`` says how each field maps). ``sink="otlp"`` takes everything from
the standard variables:

=====================================================  ==============================================
``OTEL_EXPORTER_OTLP_ENDPOINT``                         base URL (default ``http://localhost:4318``)
``OTEL_EXPORTER_OTLP_{TRACES,LOGS}_ENDPOINT``           full URL of one signal (used as is)
``OTEL_EXPORTER_OTLP[_{TRACES,LOGS}]_HEADERS``          ``key=value,key2=value2`` (values URL-encoded)
``OTEL_EXPORTER_OTLP[_{TRACES,LOGS}]_TIMEOUT``          milliseconds per request (default 10000)
``OTEL_EXPORTER_OTLP[_{TRACES,LOGS}]_COMPRESSION``      ``gzip`` or ``none``
``OTEL_EXPORTER_OTLP[_{TRACES,LOGS}]_CERTIFICATE``      CA bundle for ``https``
``OTEL_EXPORTER_OTLP[_..]_CLIENT_{CERTIFICATE,KEY}``    client certificate for mutual TLS
=====================================================  ==============================================

A URL given in the sink wins over the endpoint variables; headers, timeout, compression
and certificates are read from the variables in both cases.

The pipeline's worker only encodes a batch and hands it over: a thread of this sink
does the HTTP, so a slow or unreachable backend never holds the worker. It retries
what OTLP says to retry (429, 502, 503, 504, connection errors; ``Retry-After`` honoured)
with exponential back-off, at most ``max_attempts`` times. Batches it could not deliver,
or that did not fit its bounded queue, are reported to the node's loss counter (its ``lost`` record).

The resource of the node's records is its identity, given at open; the node's *started* record
adds what only the worker learns (commit, branch, command line), before any other record is sent.
"""

from __future__ import annotations

import gzip
import http.client
import os
import random
import ssl
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from zoomtrace._redact import redacted
from zoomtrace._stderr import WarnOnce
from zoomtrace.errors import ConfigError
from zoomtrace.sinks import NodeIdentity, ReportLoss
from zoomtrace.wire.otlp_mapping import node_resource, records_to_otlp
from zoomtrace.wire.record import Record

DEFAULT_ENDPOINT: Final = "http://localhost:4318"
RETRYABLE: Final = frozenset({429, 502, 503, 504})
_PATHS: Final = {"traces": "/v1/traces", "logs": "/v1/logs"}


@dataclass(frozen=True)
class Endpoint:
    """Where and how one signal is sent."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 10.0
    gzip: bool = False
    ssl_context: ssl.SSLContext | None = None


def parse_headers(text: str) -> dict[str, str]:
    """``OTEL_EXPORTER_OTLP_HEADERS``: comma-separated ``key=value`` pairs, values URL-encoded."""
    headers: dict[str, str] = {}
    for item in text.split(","):
        key, equals, value = item.partition("=")
        if equals and key.strip():
            headers[unquote(key.strip())] = unquote(value.strip())
    return headers


def _env(signal: str, name: str, environ: Mapping[str, str]) -> str | None:
    return environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_{name}") or environ.get(f"OTEL_EXPORTER_OTLP_{name}")


def endpoint_for(signal: str, base_url: str | None, environ: Mapping[str, str] = os.environ) -> Endpoint:
    """The endpoint of ``signal`` (``traces`` or ``logs``): ``base_url`` + ``/v1/<signal>``, else the variables."""
    if base_url is not None:
        url = base_url.rstrip("/") + _PATHS[signal]
    else:
        url = environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT") or (
            (environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/") + _PATHS[signal]
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"OTLP endpoint {redacted(url)!r} is not an http(s) URL: use e.g. http://localhost:4318")
    headers = parse_headers(_env(signal, "HEADERS", environ) or "")
    timeout_ms = _env(signal, "TIMEOUT", environ)
    try:
        timeout_s = float(timeout_ms) / 1000 if timeout_ms else 10.0
    except ValueError:
        raise ConfigError(f"OTEL_EXPORTER_OTLP_TIMEOUT={timeout_ms!r} is not a number of milliseconds") from None
    compression = (_env(signal, "COMPRESSION", environ) or "none").lower()
    if compression not in ("gzip", "none"):
        raise ConfigError(f"OTEL_EXPORTER_OTLP_COMPRESSION={compression!r}: use 'gzip' or 'none'")
    context = None
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=_env(signal, "CERTIFICATE", environ))
        cert = _env(signal, "CLIENT_CERTIFICATE", environ)
        if cert:
            context.load_cert_chain(cert, _env(signal, "CLIENT_KEY", environ))
    return Endpoint(url, headers, max(timeout_s, 0.001), compression == "gzip", context)


#: How long closing may take in all (at exit, on SIGTERM), whatever is still queued or in flight.
CLOSE_DEADLINE_S = 5.0
#: How long one flush waits for the backend: the pipeline's worker is held meanwhile.
FLUSH_WAIT_S = 2.0


@dataclass
class _Batch:
    signal: str
    body: bytes
    count: int
    attempts: int = 0


class OtlpSink:
    """Send records to an OTLP/HTTP endpoint (see the module docstring)."""

    def __init__(
        self,
        traces: Endpoint,
        logs: Endpoint,
        *,
        node: NodeIdentity,
        report_loss: ReportLoss,
        max_queue: int = 64,
        max_attempts: int = 5,
    ) -> None:
        self.endpoints = {"traces": traces, "logs": logs}
        self.max_attempts = max_attempts
        self._max_queue = max_queue
        self.node = node
        self._report_loss = report_loss
        #: The node's resource attributes (by node id, as the OTLP mapping takes them).
        self._resources: dict[str, dict[str, Any]] = {node.node_id: node_resource(node.as_attrs())}
        self._queue: deque[_Batch] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self._closing = False
        self._stop = threading.Event()
        self._connections: dict[str, http.client.HTTPConnection] = {}
        self._warn = WarnOnce()
        self.sent = {"traces": 0, "logs": 0}
        self._thread = threading.Thread(target=self._run, name="zoomtrace-otlp", daemon=True)
        self._thread.start()

    @classmethod
    def from_url(
        cls, url: str, *, node: NodeIdentity, report_loss: ReportLoss, environ: Mapping[str, str] = os.environ
    ) -> OtlpSink:
        """``otlp+http://host:4318[/prefix]``, ``otlp+https://...``, or ``otlp`` (the standard variables)."""
        base: str | None = None
        if "://" in url:
            scheme, rest = url.split("://", 1)
            if scheme not in ("otlp+http", "otlp+https", "otlp"):
                raise ConfigError(f"not an OTLP sink URL: {redacted(url)!r} (use otlp+http://host:4318)")
            if rest.strip("/"):
                base = ("https" if scheme == "otlp+https" else "http") + "://" + rest
        elif url != "otlp":
            raise ConfigError(f"not an OTLP sink URL: {redacted(url)!r} (use otlp+http://host:4318)")
        return cls(
            endpoint_for("traces", base, environ),
            endpoint_for("logs", base, environ),
            node=node,
            report_loss=report_loss,
        )

    # -- worker side: encode and hand over ---------------------------------------------

    def write(self, records: list[Record]) -> None:
        for record in records:
            if record.kind == "node" and record.type == "started" and record.node_id == self.node.node_id:
                self._resources[record.node_id] = node_resource(record.attrs)
        traces, logs = records_to_otlp(records, self._resources)
        if traces is not None:
            self._enqueue(
                _Batch(
                    "traces",
                    traces.SerializeToString(),
                    sum(len(ss.spans) for rs in traces.resource_spans for ss in rs.scope_spans),
                )
            )
        if logs is not None:
            self._enqueue(
                _Batch(
                    "logs",
                    logs.SerializeToString(),
                    sum(len(sl.log_records) for rl in logs.resource_logs for sl in rl.scope_logs),
                )
            )

    def _enqueue(self, batch: _Batch) -> None:
        with self._cond:
            if len(self._queue) >= self._max_queue:
                dropped = self._queue.popleft()  # the oldest goes: the newest says most about now
                self._lost(
                    f"otlp_queue_full:{dropped.signal}",
                    dropped.count,
                    "the OTLP endpoint cannot keep up; dropping the oldest batches",
                )
            self._queue.append(batch)
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every batch handed over so far is delivered or given up.

        Waits at most ``timeout`` seconds (default: the shorter of the longest request timeout and
        ``FLUSH_WAIT_S``), so a dead backend holds the pipeline's worker (and the application's exit)
        that long at most; the sender goes on retrying.
        """
        if timeout is None:
            timeout = min(FLUSH_WAIT_S, max(e.timeout_s for e in self.endpoints.values()))
        deadline = time.monotonic() + timeout
        with self._cond:
            while (self._queue or self._busy) and self._thread.is_alive():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._cond.wait(remaining)

    def close(self) -> None:
        """Deliver what is queued (retries cut short), then stop."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._stop.set()  # interrupts back-off waits: each batch gets one last attempt
        # One deadline for everything: an unresponsive backend must not hold the application's exit.
        self._thread.join(CLOSE_DEADLINE_S)
        if self._thread.is_alive():
            with self._cond:
                stranded, self._queue = list(self._queue), deque()
            for batch in stranded:
                self._lost(
                    f"otlp_unsent_at_exit:{batch.signal}",
                    batch.count,
                    f"OTLP backend did not take the last records within {CLOSE_DEADLINE_S:g} s",
                )
            return  # the sender thread is a daemon; its connection closes with the process
        for conn in self._connections.values():
            conn.close()

    # -- sender thread -----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                batch = self._queue.popleft()
                self._busy = True
            try:
                self._deliver(batch)
            except Exception as exc:  # never let the sender die with batches queued
                self._lost(f"otlp_error:{batch.signal}", batch.count, f"OTLP export failed: {exc!r}")
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _deliver(self, batch: _Batch) -> None:
        endpoint = self.endpoints[batch.signal]
        delay = 0.5
        while True:
            batch.attempts += 1
            try:
                status, headers, body = self._post(endpoint, batch.body)
            except (OSError, http.client.HTTPException) as exc:
                status, headers, body, problem = 0, {}, b"", f"{type(exc).__name__}: {exc}"
                self._drop_connection(endpoint)
            else:
                problem = f"HTTP {status}"
            if 200 <= status < 300:
                self.sent[batch.signal] += batch.count
                self._partial_success(batch, body)
                return
            retryable = status == 0 or status in RETRYABLE
            if not retryable or batch.attempts >= self.max_attempts or self._stop.is_set():
                why = "gave up after retries" if retryable else "rejected"
                self._lost(
                    f"otlp_{'failed' if retryable else 'rejected'}:{batch.signal}",
                    batch.count,
                    f"OTLP {batch.signal} export to {endpoint.url} {why} ({problem})",
                )
                return
            wait = _retry_after(headers.get("retry-after")) or delay * (1 + random.random() / 2)
            delay = min(delay * 2, 8.0)
            self._stop.wait(min(wait, 30.0))

    def _post(self, endpoint: Endpoint, body: bytes) -> tuple[int, dict[str, str], bytes]:
        reused = self._connection_key(endpoint) in self._connections
        try:
            return self._post_once(endpoint, body)
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            if not reused:
                raise
            # The server closed an idle keep-alive connection: that is no failure, send again at once.
            self._drop_connection(endpoint)
            return self._post_once(endpoint, body)

    def _post_once(self, endpoint: Endpoint, body: bytes) -> tuple[int, dict[str, str], bytes]:
        conn = self._connection(endpoint)
        parts = urlsplit(endpoint.url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {"Content-Type": "application/x-protobuf", "User-Agent": "zoomtrace-otlp", **endpoint.headers}
        if endpoint.gzip:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        conn.request("POST", path, body, headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data

    @staticmethod
    def _connection_key(endpoint: Endpoint) -> str:
        parts = urlsplit(endpoint.url)
        return f"{parts.scheme}://{parts.netloc}"

    def _connection(self, endpoint: Endpoint) -> http.client.HTTPConnection:
        parts = urlsplit(endpoint.url)
        key = self._connection_key(endpoint)
        conn = self._connections.get(key)
        if conn is None:
            if parts.scheme == "https":
                conn = http.client.HTTPSConnection(
                    parts.hostname or "", parts.port, timeout=endpoint.timeout_s, context=endpoint.ssl_context
                )
            else:
                conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=endpoint.timeout_s)
            self._connections[key] = conn
        return conn

    def _drop_connection(self, endpoint: Endpoint) -> None:
        conn = self._connections.pop(self._connection_key(endpoint), None)
        if conn is not None:
            conn.close()

    def _partial_success(self, batch: _Batch, body: bytes) -> None:
        """OTLP "partial success": the server accepted the request but not all of it."""
        if not body:
            return
        try:
            if batch.signal == "traces":
                traces = ExportTraceServiceResponse.FromString(body)
                rejected, message = traces.partial_success.rejected_spans, traces.partial_success.error_message
            else:
                logs = ExportLogsServiceResponse.FromString(body)
                rejected, message = logs.partial_success.rejected_log_records, logs.partial_success.error_message
        except Exception:  # a body that is not a response message (some proxies send text)
            return
        if rejected:
            self._lost(f"otlp_rejected:{batch.signal}", int(rejected), f"the OTLP endpoint rejected some: {message}")

    def _lost(self, reason: str, count: int, message: str) -> None:
        if count:
            self._report_loss(reason, count)
        self._warn(reason.split(":", maxsplit=1)[0], message)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None  # an HTTP date: rare for OTLP endpoints; the back-off applies
