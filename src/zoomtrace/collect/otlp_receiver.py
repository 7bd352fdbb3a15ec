"""The OTLP receiver: services instrumented with OpenTelemetry join the Zoom story.

``zoomtrace [--store URL] collect --otlp 127.0.0.1:4318`` (or ``python -m zoomtrace.collect.otlp_receiver
--listen 127.0.0.1:4318 [--store URL]``) accepts OTLP/HTTP exports on ``POST /v1/traces`` and ``POST /v1/logs``, as
protobuf (``application/x-protobuf``) or JSON (``application/json``, OTLP/JSON rules: hex ids,
lowerCamelCase names), optionally gzip-compressed. Each request is mapped to Zoom records
(``zoomtrace.wire.otlp_mapping``: unknown attributes kept) and stored in one transaction of one
store session (``zoomtrace.collect._batching``), so a
span of an OpenTelemetry service appears in ``zoomtrace story`` beside the Zoom spans of the
same trace. The response is sent only once the records are stored: an exporter that gets
``200`` can forget them. A busy store answers ``503`` with ``Retry-After``, which OTLP
exporters retry.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import zlib
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from zoomtrace._stderr import say
from zoomtrace.collect._batching import BatchWriter, home_target
from zoomtrace.collect._signals import stop_on_signals
from zoomtrace.errors import ConfigError, StoreError
from zoomtrace.store.urls import add_store_arguments, parse_retention, resolve_store
from zoomtrace.wire.otlp_mapping import OtlpJsonError, logs_request_from_json, otlp_to_records, traces_request_from_json
from zoomtrace.wire.record import Record

__all__ = ["OtlpReceiver", "main", "parse_listen", "serve"]

#: Larger bodies get 413: the OTel SDKs send a few MiB at most per request.
MAX_BODY_BYTES: Final = 64 * 1024 * 1024
_PROTOBUF: Final = ("application/x-protobuf", "application/protobuf")
_JSON: Final = "application/json"


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def parse_listen(text: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``:port`` (localhost) -> ``(host, port)``."""
    host, sep, port = text.rpartition(":")
    if not sep:
        raise ConfigError(f"--otlp {text!r}: give HOST:PORT, e.g. 127.0.0.1:4318")
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port)
    except ValueError:
        raise ConfigError(f"--otlp {text!r}: the port must be a number, e.g. 127.0.0.1:4318") from None
    if not 0 <= number <= 65535:
        raise ConfigError(f"--otlp {text!r}: the port must be between 0 and 65535")
    return host, number


def _status_body(code: int, message: str) -> bytes:
    """A ``google.rpc.Status`` (the body OTLP/HTTP requires for errors), encoded by hand."""

    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            byte, n = n & 0x7F, n >> 7
            out.append(byte | (0x80 if n else 0))
            if not n:
                return bytes(out)

    text = message.encode()
    return b"\x08" + varint(code) + b"\x12" + varint(len(text)) + text


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: OtlpReceiver


class OtlpReceiver:
    """An OTLP/HTTP server storing what it receives into the store ``store`` (a store URL), else
    ``$ZOOMTRACE_STORE``, else the DuckDB file of ``home``."""

    def __init__(
        self,
        home: Path,
        host: str = "127.0.0.1",
        port: int = 4318,
        *,
        store: str | None = None,
        retention_days: int | None = None,
    ) -> None:
        self.home = Path(home).absolute()
        where = resolve_store(self.home, store)
        #: Where records go, as it may be shown (no password).
        self.destination = str(self.home) if where.default else where.redacted
        self._writer = BatchWriter(home_target(self.home, where.url, retention_days=retention_days))
        self._store_lock = threading.Lock()  # one write at a time (they would only queue for the store's lock)
        self._known_nodes: set[str] = set()
        self.stored = 0
        self.requests = 0
        server_class = type("_Server6", (_Server,), {"address_family": socket.AF_INET6}) if ":" in host else _Server
        try:
            self._server = server_class((host, port), _Handler)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self._server.receiver = self

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.2)

    def shutdown(self) -> None:
        """Stop serving (from another thread than ``serve_forever``'s) and release the port."""
        self._server.shutdown()
        self._server.server_close()

    # -- one request -----------------------------------------------------------------

    def handle(self, path: str, content_type: str, body: bytes) -> tuple[int, str, bytes, dict[str, str]]:
        """``(status, content type, body, extra headers)`` of the answer to one export request."""
        is_json = content_type == _JSON
        answer_type = _JSON if is_json else "application/x-protobuf"
        try:
            request = self._decode(path, content_type, body)
            records, rejected = otlp_to_records(request, known_nodes=self._known_nodes)
            self._store(records)
        except _BadRequest as exc:
            return exc.status, answer_type, self._error(is_json, 3, str(exc)), {}
        except StoreError as exc:
            return 503, answer_type, self._error(is_json, 14, str(exc)), {"Retry-After": "1"}
        self.requests += 1
        response: Message
        if isinstance(request, ExportTraceServiceRequest):
            response = ExportTraceServiceResponse()
            if rejected:
                response.partial_success.CopyFrom(
                    ExportTracePartialSuccess(
                        rejected_spans=rejected, error_message="spans without valid trace and span ids were dropped"
                    )
                )
        else:
            response = ExportLogsServiceResponse()
            if rejected:
                response.partial_success.CopyFrom(ExportLogsPartialSuccess(rejected_log_records=rejected))
        if is_json:
            return 200, _JSON, json.dumps(json_format.MessageToDict(response)).encode(), {}
        return 200, answer_type, response.SerializeToString(), {}

    @staticmethod
    def _decode(path: str, content_type: str, body: bytes) -> ExportTraceServiceRequest | ExportLogsServiceRequest:
        signal_ = {"/v1/traces": "traces", "/v1/logs": "logs"}.get(path)
        if signal_ is None:
            raise _BadRequest(404, f"no OTLP signal at {path}: use /v1/traces or /v1/logs")
        if content_type == _JSON:
            try:
                return traces_request_from_json(body) if signal_ == "traces" else logs_request_from_json(body)
            except OtlpJsonError as exc:
                raise _BadRequest(400, f"bad OTLP/JSON: {exc}") from None
        if content_type not in _PROTOBUF:
            raise _BadRequest(
                415, f"unsupported content type {content_type!r}: send application/x-protobuf or application/json"
            )
        message = ExportTraceServiceRequest() if signal_ == "traces" else ExportLogsServiceRequest()
        try:
            message.ParseFromString(body)
        except DecodeError as exc:
            raise _BadRequest(400, f"bad OTLP protobuf: {exc}") from None
        return message

    def _store(self, records: list[Record]) -> None:
        if not records:
            return
        batch = self._writer.batch(records)  # before the lock: requests prepare theirs side by side
        with self._store_lock:
            self.stored += self._writer.write(batch).new

    @staticmethod
    def _error(is_json: bool, code: int, message: str) -> bytes:
        if is_json:
            return json.dumps({"code": code, "message": message}).encode()
        return _status_body(code, message)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        receiver = self.server.receiver
        try:
            body = self._body()
        except _BadRequest as exc:
            self._answer(exc.status, "text/plain", str(exc).encode(), {"Connection": "close"})
            return
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        path = self.path.split("?", 1)[0]
        try:
            status, answer_type, data, extra = receiver.handle(path, content_type, body)
        except Exception as exc:  # a bug must cost one request, not the receiver
            say(f"OTLP receiver failed on {path}: {exc!r}")
            status, answer_type, data, extra = 500, "text/plain", b"internal error", {}
        self._answer(status, answer_type, data, extra)

    def do_GET(self) -> None:
        self._answer(405, "text/plain", b"OTLP/HTTP receiver: POST to /v1/traces or /v1/logs\n", {"Allow": "POST"})

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            raw = self._chunked()
        else:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                raise _BadRequest(400, "bad Content-Length") from None
            if length < 0:
                raise _BadRequest(400, "bad Content-Length")
            if length > MAX_BODY_BYTES:
                raise _BadRequest(413, f"body over {MAX_BODY_BYTES} bytes")
            raw = self.rfile.read(length)
        encoding = (self.headers.get("Content-Encoding") or "identity").lower()
        if encoding == "gzip":
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                data = inflater.decompress(raw, MAX_BODY_BYTES)
            except zlib.error as exc:
                raise _BadRequest(400, f"bad gzip body: {exc}") from None
            if inflater.unconsumed_tail:
                raise _BadRequest(413, f"body over {MAX_BODY_BYTES} bytes once decompressed")
            return data
        if encoding not in ("identity", ""):
            raise _BadRequest(415, f"unsupported Content-Encoding {encoding!r}: use gzip or none")
        return raw

    def _chunked(self) -> bytes:
        out = bytearray()
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _BadRequest(400, "bad chunked encoding") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(out)
            if len(out) + size > MAX_BODY_BYTES:
                raise _BadRequest(413, f"body over {MAX_BODY_BYTES} bytes")
            out += self.rfile.read(size)
            self.rfile.readline(1024)

    def _answer(self, status: int, content_type: str, data: bytes, extra: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """One line per request would drown the terminal; failures are reported where they happen."""


def serve(
    home: Path, listen: str, *, ready: Any = None, store: str | None = None, retention_days: int | None = None
) -> int:
    """Run the receiver until SIGINT or SIGTERM; announces ``listening on URL`` on stdout first. ``store`` is
    a store URL (else ``$ZOOMTRACE_STORE``, else the DuckDB file of ``home``)."""
    host, port = parse_listen(listen)
    receiver = OtlpReceiver(home, host, port, store=store, retention_days=retention_days)
    stop = threading.Event()
    with stop_on_signals(stop):
        thread = threading.Thread(target=receiver.serve_forever, name="zoomtrace-otlp-receiver", daemon=True)
        thread.start()
        out = ready if ready is not None else sys.stdout
        out.write(
            f"zoomtrace: OTLP receiver listening on {receiver.url} (POST /v1/traces, /v1/logs), "
            f"storing into {receiver.destination}\n"
        )
        out.flush()
        try:
            stop.wait()
        finally:
            receiver.shutdown()
            thread.join()
    say(f"OTLP receiver stopped after {receiver.requests} requests, {receiver.stored} new records stored")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from zoomtrace.wire.spool import default_home

    prog = "python -m zoomtrace.collect.otlp_receiver"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:4318", help="HOST:PORT to listen on (default %(default)s)")
    parser.add_argument(
        "--home", default=None, help="the Zoom home, whose store.duckdb is the default store (default $ZOOMTRACE_HOME)"
    )
    add_store_arguments(parser)
    args = parser.parse_args(argv)
    try:
        retention_days = parse_retention(args.retention) if args.retention else None
        home = Path(args.home) if args.home else default_home()
        return serve(home, args.listen, store=args.store, retention_days=retention_days)
    except ConfigError as exc:
        say(str(exc))
        return 2


if __name__ == "__main__":
    sys.exit(main())
