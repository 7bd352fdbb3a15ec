"""The current position in a story, carried by ``contextvars``.

Asyncio tasks see the right parent because the current span lives in a
``ContextVar``; threads and thread pools do too once ``zoomtrace.threads`` is
installed (``zt.init`` does it by default).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zoomtrace.span import Span


@dataclass(frozen=True, slots=True)
class SpanContext:
    """A position in a trace received from elsewhere (another process, a message)."""

    trace_id: str
    span_id: str
    trace_flags: int = 1
    #: W3C tracestate members in header order, ``((key, value), ...)``.
    tracestate: tuple[tuple[str, str], ...] = ()
    #: W3C baggage members in header order, ``((key, value), ...)`` (values decoded).
    baggage: tuple[tuple[str, str], ...] = ()
    #: The user or tenant the work is done for, carried in baggage as ``zoom.on_behalf_of``.
    on_behalf_of: str | None = None
    remote: bool = True


#: The open span of the current task/thread, or a remote SpanContext to continue.
current: ContextVar[Span | SpanContext | None] = ContextVar("zoomtrace_current", default=None)


def context_of(value: Span | SpanContext) -> SpanContext:
    """The propagatable part of a span (or the remote context itself)."""
    if isinstance(value, SpanContext):
        return value
    return SpanContext(
        value.trace_id, value.span_id, value.trace_flags, value.tracestate, value.baggage, value.on_behalf_of, False
    )


def inject(carrier: Any = None, *, context: Span | SpanContext | None = None) -> Any:
    """Add W3C ``traceparent`` (and ``tracestate``, ``baggage``) for the current span to ``carrier``.

    ``carrier`` is a dict of headers (default: a new one) or a list of ``(name, value)``
    pairs such as Kafka headers; it is returned. Without a current span it is returned unchanged.
    """
    from zoomtrace import propagation

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
    from zoomtrace import propagation

    return propagation.extract(carrier)
