"""A tiny JSON-over-HTTP toolkit for the demo services, propagating the trace with W3C headers."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import zoomtrace as zt

Route = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]


def post(url: str, body: dict[str, Any], timeout: float = 10.0) -> tuple[int, dict[str, Any]]:
    """POST JSON with the current trace context in the headers; returns (status, JSON body)."""
    headers = zt.inject({"Content-Type": "application/json"})
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def serve(routes: dict[str, Route]) -> None:
    """Serve ``routes`` on an ephemeral localhost port, announcing ``ready <port>`` on stdout."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            route = routes.get(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            with zt.span(f"POST {self.path}", context=zt.extract(self.headers)) as s:
                s.set(attrs={"http.route": self.path})
                if route is None:
                    status, reply = 404, {"error": "no such route"}
                else:
                    try:
                        status, reply = route(body)
                    except Exception as exc:
                        s.status, s.error = "error", exc
                        status, reply = 500, {"error": str(exc)}
                s.set(attrs={"http.response.status_code": status})
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """Requests are already in the story as spans."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"ready {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def port_arg(name: str) -> str:
    """The value following ``--name`` on the command line."""
    return sys.argv[sys.argv.index(f"--{name}") + 1]
