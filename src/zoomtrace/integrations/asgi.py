"""ASGI middleware (FastAPI, Starlette, any ASGI app): each request continues the caller's trace.

::

    from zoomtrace.integrations.asgi import ZoomMiddleware

    app.add_middleware(ZoomMiddleware)      # FastAPI / Starlette
    app = ZoomMiddleware(app)               # any ASGI app (outermost: sees every status)

A server span per HTTP request, with the semantic-convention attributes; it is named
``METHOD /route`` and points at the endpoint function once the router has chosen one
(Starlette and FastAPI record it in the scope). A 5xx status or an exception makes it an
error; the exception is recorded and raised on. Lifespan and WebSocket traffic pass through.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from zoomtrace.integrations._http import code_of, scrub_query, server_response, server_span, split_host

__all__ = ["ZoomMiddleware", "request_attributes"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def request_attributes(scope: Scope) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """The headers (as text pairs) and the semantic-convention attributes of an HTTP scope."""
    headers = [(bytes(k).decode("latin-1"), bytes(v).decode("latin-1")) for k, v in scope.get("headers") or ()]
    attrs: dict[str, Any] = {
        "url.scheme": scope.get("scheme", "http"),
        "url.path": (scope.get("root_path") or "") + (scope.get("path") or "/"),
    }
    query = bytes(scope.get("query_string") or b"").decode("latin-1")
    if query:
        attrs["url.query"] = scrub_query(query)
    server = scope.get("server")
    if server and server[0] is not None:
        attrs["server.address"] = server[0]
        if server[1] is not None:
            attrs["server.port"] = int(server[1])
    for name, value in headers:
        if name.lower() == "host":
            host, port = split_host(value)
            attrs["server.address"] = host
            if port is not None:
                attrs["server.port"] = port
        elif name.lower() == "user-agent":
            attrs["user_agent.original"] = value
    client = scope.get("client")
    if client and client[0] is not None:
        attrs["client.address"] = client[0]
        if client[1] is not None:
            attrs["client.port"] = int(client[1])
    if scope.get("http_version"):
        attrs["network.protocol.version"] = scope["http_version"]
    return headers, attrs


def _route(scope: Scope) -> str | None:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str) and path and not hasattr(route, "routes"):  # a Mount is no route of its own
        return path
    return None


class ZoomMiddleware:
    """Wrap an ASGI application: a server span per HTTP request (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._code = code_of(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        headers, attrs = request_attributes(scope)
        span = server_span(scope.get("method", "GET"), headers, attrs, self._code)
        status: int | None = None

        async def traced_send(message: Message) -> None:
            nonlocal status
            if message.get("type") == "http.response.start":
                status = int(message["status"])
            await send(message)

        with span:
            try:
                await self.app(scope, receive, traced_send)
            except BaseException:
                server_response(span, status if status is not None else 500, _route(scope), scope.get("endpoint"))
                raise
            server_response(span, status, _route(scope), scope.get("endpoint"))
