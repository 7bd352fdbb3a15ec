"""The current position in a story, carried by ``contextvars``.

Asyncio tasks see the right parent because the current span lives in a
``ContextVar``; threads and thread pools do too once ``zoomtrace.capture.threads`` is
installed (``zt.init`` does it by default).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Protocol

from zoomtrace.wire import propagation
from zoomtrace.wire.propagation import SpanContext

# SpanContext is re-exported: capture's name for a remote position in a trace.
__all__ = ["Position", "SpanContext", "context_of", "current", "extract", "inject"]


class Position(Protocol):
    """A place in a trace to continue from: an open ``Span`` of this process, or a remote ``SpanContext``."""

    @property
    def trace_id(self) -> str: ...
    @property
    def span_id(self) -> str: ...
    @property
    def trace_flags(self) -> int: ...
    @property
    def tracestate(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def baggage(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def on_behalf_of(self) -> str | None: ...


#: The open span of the current task/thread, or a remote SpanContext to continue.
current: ContextVar[Position | None] = ContextVar("zoomtrace_current", default=None)


def context_of(value: Position) -> SpanContext:
    """The propagatable part of a span (or the remote context itself)."""
    if isinstance(value, SpanContext):
        return value
    return SpanContext(
        value.trace_id, value.span_id, value.trace_flags, value.tracestate, value.baggage, value.on_behalf_of, False
    )


def inject(carrier: Any = None, *, context: Position | None = None) -> Any:
    """Add W3C ``traceparent`` (and ``tracestate``, ``baggage``) for the current span to ``carrier``.

    ``carrier`` is a dict of headers (default: a new one) or a list of ``(name, value)``
    pairs such as Kafka headers; it is returned. Without a current span it is returned unchanged.
    """
    if carrier is None:
        carrier = {}
    value = context if context is not None else current.get()
    if value is None:
        return carrier
    return propagation.inject(carrier, context_of(value))


def extract(carrier: Any) -> SpanContext | None:
    """The trace context in ``carrier`` (headers in any case, pairs, Kafka headers), or None.

    Never raises: a missing or malformed ``traceparent`` gives None, so a new trace starts.
    """
    return propagation.extract(carrier)
