"""What the HTTP integrations share: URLs without secrets, semantic-convention attributes, span handling.

Attribute names follow the stable OpenTelemetry HTTP semantic conventions
(``http.request.method``, ``url.full``, ``http.response.status_code``, ``server.address``...),
and ``span.kind`` says ``client`` or ``server`` (the OTLP exporter turns it into the span kind).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import CodeType, FrameType, TracebackType
from typing import Any, Final
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from zoomtrace.capture import recorder
from zoomtrace.capture.context import Position, current
from zoomtrace.capture.recorder import SecretKeys
from zoomtrace.capture.span import Span
from zoomtrace.runtime.scrub import SCRUBBED, Scrubber

#: Query keys whose values the semantic conventions require to be redacted (``url.full``, ``url.query``).
SIGNED_URL_KEYS: Final = frozenset(
    {
        "awsaccesskeyid",
        "signature",
        "sig",
        "x-goog-signature",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "x-goog-credential",
    }
)
KNOWN_METHODS: Final = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE", "QUERY"}
)
DEFAULT_PORTS: Final = {"http": 80, "https": 443}

_default_scrubber: Scrubber | None = None


def _scrubber() -> SecretKeys | None:
    """The running node's scrubber (None if the application turned scrubbing off), else the default one."""
    global _default_scrubber
    node = recorder.active
    if node is not None:
        return node.scrubber
    if _default_scrubber is None:
        _default_scrubber = Scrubber()
    return _default_scrubber


def _secret_key(key: str, scrubber: SecretKeys | None) -> bool:
    name = unquote_plus(key)
    return name.lower() in SIGNED_URL_KEYS or (scrubber is not None and scrubber.is_sensitive(name))


def scrub_query(query: str) -> str:
    """``query`` with the values of secret-looking keys (``token``, ``api_key``, ``sig``...) replaced.

    The marker is Zoom's own (``[scrubbed]``), the one its scrubber puts in text: the same
    value then reads the same wherever it was caught.
    """
    if not query:
        return query
    scrubber = _scrubber()
    parts = []
    for item in query.split("&"):
        key, equals, value = item.partition("=")
        parts.append(f"{key}={SCRUBBED}" if equals and value and _secret_key(key, scrubber) else item)
    return "&".join(parts)


def scrub_url(url: str) -> str:
    """``url`` fit to record: without user and password, secret query values ``[scrubbed]``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "[unparsable URL]"
    netloc = parts.netloc
    if "@" in netloc:
        # Stripped rather than replaced by the conventions' REDACTED:REDACTED, which Zoom's own scrubber
        # would rewrite again (it treats any URL password as a secret).
        netloc = netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, scrub_query(parts.query), parts.fragment))


def method_attrs(method: str) -> tuple[str, dict[str, Any]]:
    """The span name and method attributes (unknown methods are ``_OTHER``, as the conventions say)."""
    upper = method.upper()
    if upper in KNOWN_METHODS:
        return upper, {"http.request.method": upper}
    return "HTTP", {"http.request.method": "_OTHER", "http.request.method_original": method}


def split_host(value: str) -> tuple[str, int | None]:
    """``host[:port]`` or ``[v6]:port`` (a ``Host`` header) -> ``(host, port)``."""
    host, colon, port = value.rpartition(":")
    if (colon and port.isdigit() and (not host.startswith("[") or host.endswith("]")) and host.count(":") == 0) or (
        colon and port.isdigit() and host.startswith("[") and host.endswith("]")
    ):
        return host.strip("[]"), int(port)
    return value.strip("[]"), None


# -- code provenance --------------------------------------------------------------------


def _module_in(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def caller(packages: tuple[str, ...]) -> tuple[CodeType, int]:
    """The first frame outside ``packages``: the application line that made the HTTP call."""
    first = sys._getframe(1)
    frame: FrameType | None = first
    while frame is not None:
        if not _module_in(frame.f_globals.get("__name__") or "", packages):
            return frame.f_code, frame.f_lineno
        frame = frame.f_back
    return first.f_code, first.f_lineno


def code_of(obj: Any) -> tuple[CodeType, int] | None:
    """The code object of a view function or an app callable, if it has one."""
    try:
        target = inspect.unwrap(obj)
    except ValueError:
        return None
    func = getattr(target, "__func__", target)
    code = getattr(func, "__code__", None)
    if code is None:
        code = getattr(getattr(type(target), "__call__", None), "__code__", None)  # noqa: B004 (the method, not callability)
    return (code, code.co_firstlineno) if isinstance(code, CodeType) else None


# -- spans ------------------------------------------------------------------------------


def client_span(method: str, url: str, packages: tuple[str, ...]) -> Span:
    """A client span for one outgoing request, child of the current span (not yet entered)."""
    code, line = caller(packages)
    name, attrs = method_attrs(method)
    attrs["span.kind"] = "client"
    full = scrub_url(url)
    attrs["url.full"] = full
    try:
        parts = urlsplit(url)
        if parts.hostname:
            attrs["server.address"] = parts.hostname
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
        if port is not None:
            attrs["server.port"] = port
    except ValueError:
        pass
    return Span(name, attrs, current.get(), [], None, code, line)


def client_response(span: Span, status: int) -> None:
    """Record the response status; 4xx and 5xx are errors for a client span (semantic conventions)."""
    span.attrs["http.response.status_code"] = status
    if status >= 400:
        span.status = "error"
        span.attrs["error.type"] = str(status)


def client_error(span: Span, exc: BaseException) -> None:
    span.attrs["error.type"] = type(exc).__qualname__


def server_span(method: str, carrier: Any, attrs: dict[str, Any], code: tuple[CodeType, int] | None) -> Span:
    """A server span continuing the caller's trace (``traceparent`` in ``carrier``), not yet entered."""
    from zoomtrace.capture.context import extract

    parent: Position | None = extract(carrier) or current.get()
    name, method_attributes = method_attrs(method)
    where = code or (sys._getframe(1).f_code, sys._getframe(1).f_lineno)
    return Span(name, {"span.kind": "server", **method_attributes, **attrs}, parent, [], None, where[0], where[1])


def server_response(span: Span, status: int | None, route: str | None, endpoint: Any) -> None:
    """Status, route and the view function's code: the server span then points at the code that answered."""
    if route:
        span.attrs["http.route"] = route
        if span.name in KNOWN_METHODS:
            span.name = f"{span.name} {route}"
    if status is not None:
        span.attrs["http.response.status_code"] = status
        if status >= 500:
            span.status = "error"
            span.attrs.setdefault("error.type", str(status))
    if endpoint is not None:
        where = code_of(endpoint)
        if where is not None:
            span.code, span.line = where


def set_error(span: Span, exc: BaseException) -> None:
    """An exception the framework turned into a response: the span still records it."""
    if span.error is None:
        span.error = exc
    span.status = "error"
    span.attrs["error.type"] = type(exc).__qualname__


# -- a span open across several calls (WSGI bodies) --------------------------------------


def open_detached(span: Span) -> None:
    """Start ``span`` without leaving it current: a WSGI response outlives the call that made it."""
    span.__enter__()
    current.reset(span._token)


@contextmanager
def activated(span: Span) -> Iterator[Span]:
    """Make ``span`` current for a while (an open span, started with ``open_detached``)."""
    token = current.set(span)
    try:
        yield span
    finally:
        current.reset(token)


def close_detached(span: Span, exc: BaseException | None) -> None:
    """End a span started with ``open_detached``; ``exc`` is the exception that ended it, if any."""
    if span.end_ns is not None:
        return
    span._token = current.set(span)
    tb: TracebackType | None = exc.__traceback__ if exc is not None else None
    span.__exit__(type(exc) if exc is not None else None, exc, tb)
