"""``httpx``, sync and async: a client span per request and the trace context in its headers.

Wrap the transport of one client::

    from zoomtrace.integrations.httpx import AsyncTracingTransport, TracingTransport

    client = httpx.Client(transport=TracingTransport())
    async_client = httpx.AsyncClient(transport=AsyncTracingTransport())

or trace every client that uses httpx's own transports with ``instrument()``. Spans carry the
same attributes as the ``requests`` integration (``url.full`` without secrets, status...).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Final

import httpx

from zoomtrace.capture.context import inject
from zoomtrace.integrations._http import client_error, client_response, client_span

__all__ = ["AsyncTracingTransport", "TracingTransport", "instrument", "uninstrument"]

_LIBRARY: Final = (
    "httpx",
    "httpcore",
    "anyio",
    "asyncio",
    "sniffio",
    "h11",
    "h2",
    "contextlib",
    "functools",
    "zoomtrace.integrations",
    "wrapt",
    "opentelemetry",
)
#: Set on a request once traced, so a traced transport inside an instrumented one makes one span, not two.
_TRACED: Final = "zoomtrace.traced"
_MARK: Final = "_zoomtrace_original"


def _send(request: httpx.Request, handle: Callable[[httpx.Request], httpx.Response]) -> httpx.Response:
    if request.extensions.get(_TRACED):
        return handle(request)
    request.extensions = {**request.extensions, _TRACED: True}
    span = client_span(request.method, str(request.url), _LIBRARY)
    with span:
        inject(request.headers, context=span)
        try:
            response = handle(request)
        except Exception as exc:
            client_error(span, exc)
            raise
        client_response(span, response.status_code)
        return response


async def _send_async(
    request: httpx.Request, handle: Callable[[httpx.Request], Awaitable[httpx.Response]]
) -> httpx.Response:
    if request.extensions.get(_TRACED):
        return await handle(request)
    request.extensions = {**request.extensions, _TRACED: True}
    span = client_span(request.method, str(request.url), _LIBRARY)
    with span:
        inject(request.headers, context=span)
        try:
            response = await handle(request)
        except Exception as exc:
            client_error(span, exc)
            raise
        client_response(span, response.status_code)
        return response


class TracingTransport(httpx.BaseTransport):
    """A transport that traces each request, then hands it to ``transport`` (default ``httpx.HTTPTransport``)."""

    def __init__(self, transport: httpx.BaseTransport | None = None, **kwargs: Any) -> None:
        self.transport = transport if transport is not None else httpx.HTTPTransport(**kwargs)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return _send(request, self.transport.handle_request)

    def close(self) -> None:
        self.transport.close()


class AsyncTracingTransport(httpx.AsyncBaseTransport):
    """The async twin of ``TracingTransport`` (default inner transport ``httpx.AsyncHTTPTransport``)."""

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None, **kwargs: Any) -> None:
        self.transport = transport if transport is not None else httpx.AsyncHTTPTransport(**kwargs)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await _send_async(request, self.transport.handle_async_request)

    async def aclose(self) -> None:
        await self.transport.aclose()


def instrument() -> None:
    """Trace every request sent through httpx's own transports (all clients that do not replace them)."""
    sync = httpx.HTTPTransport.handle_request
    if not hasattr(sync, _MARK):

        @functools.wraps(sync)
        def handle_request(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
            return _send(request, functools.partial(sync, self))

        setattr(handle_request, _MARK, sync)
        httpx.HTTPTransport.handle_request = handle_request  # type: ignore[method-assign]
    asynchronous = httpx.AsyncHTTPTransport.handle_async_request
    if not hasattr(asynchronous, _MARK):

        @functools.wraps(asynchronous)
        async def handle_async_request(self: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
            return await _send_async(request, functools.partial(asynchronous, self))

        setattr(handle_async_request, _MARK, asynchronous)
        httpx.AsyncHTTPTransport.handle_async_request = handle_async_request  # type: ignore[method-assign]


def uninstrument() -> None:
    """Undo ``instrument()``."""
    sync = getattr(httpx.HTTPTransport.handle_request, _MARK, None)
    if sync is not None:
        httpx.HTTPTransport.handle_request = sync  # type: ignore[method-assign]
    asynchronous = getattr(httpx.AsyncHTTPTransport.handle_async_request, _MARK, None)
    if asynchronous is not None:
        httpx.AsyncHTTPTransport.handle_async_request = asynchronous  # type: ignore[method-assign]
