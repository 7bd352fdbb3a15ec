"""The in-process bridge: spans made through ``opentelemetry-api`` are Zoom spans, in one shared context.

``zt.init(..., opentelemetry=True)`` calls ``install()``, which does two things:

1. It installs a ``TracerProvider`` whose spans *are* Zoom spans: Zoom ids, Zoom's node,
   the code that started the span (the first frame outside OpenTelemetry and its
   instrumentation libraries) with its commit and dirty flag, Zoom's pipeline. Every
   OpenTelemetry instrumentation library (``opentelemetry-instrumentation-sqlite3``,
   ``-requests``, ``-flask``...) then feeds the Zoom story unchanged. The instrumentation
   scope is kept as ``otel.scope.name``, the span kind as ``span.kind``. If the application
   already installed an SDK ``TracerProvider``, its spans are copied into Zoom as they end
   (ids and all) instead, and it keeps exporting them as configured.

2. It makes OpenTelemetry's *current context* and Zoom's (``zoomtrace.capture.context.current``)
   one: OpenTelemetry's runtime context is wrapped so that attaching a context sets
   Zoom's current span, and reading it reflects a ``zt.span`` opened since. So a
   ``zt.span`` inside an OpenTelemetry span is its child, an OpenTelemetry span inside a
   ``zt.span`` is its child, and OpenTelemetry propagators inject the ``zt.span`` that is
   current (baggage and ``on_behalf_of`` included).

Span events become log records of the span (type = event name); ``record_exception`` on a
span records the exception as the span's error.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar, Token
from types import CodeType, FrameType, TracebackType
from typing import Any, Final, cast

from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context.context import Context, _RuntimeContext
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.util import types

from zoomtrace.capture import items, recorder
from zoomtrace.capture.context import Position, current
from zoomtrace.capture.context import SpanContext as ZoomContext
from zoomtrace.capture.span import Span as ZoomSpan
from zoomtrace.capture.span import cpu_time
from zoomtrace.wire.propagation import ON_BEHALF_OF_KEY

try:  # what the API itself uses, so ``@tracer.start_as_current_span(...)`` also decorates coroutines
    from opentelemetry.util._decorator import _agnosticcontextmanager as _contextmanager
except ImportError:  # pragma: no cover - older opentelemetry-api
    _contextmanager = contextlib.contextmanager  # type: ignore[assignment]

__all__ = ["ZoomTracer", "ZoomTracerProvider", "install", "installed"]

#: Frames of these packages are not "the code that started the span": the application is further out.
_LIBRARY: Final = ("opentelemetry", "wrapt", "contextlib", "functools", "zoomtrace.capture.otel_bridge", "asyncio")
_SCOPE_NAME: Final = "otel.scope.name"
_SCOPE_VERSION: Final = "otel.scope.version"

_running_loop = asyncio._get_running_loop
_thread_time = time.thread_time_ns
_time = time.time_ns
_lock = threading.Lock()
_skip_codes: dict[tuple[str, ...], dict[CodeType, bool]] = {}
#: Packages an instrumented library calls through, skipped along with it.
_UNDERNEATH: Final = {
    "requests": ("urllib3",),
    "httpx": ("httpcore", "anyio", "h11"),
    "urllib3": ("http",),
    "urllib": ("http",),
    "botocore": ("boto3", "urllib3"),
    "boto3": ("botocore", "urllib3"),
}

ZoomValue = Position | None


# -- where a span was started ---------------------------------------------------------------


def instrumented_packages(scope: str) -> tuple[str, ...]:
    """The library an ``opentelemetry-instrumentation-*`` scope instruments (and what it calls through).

    A client span made inside ``requests`` is then placed at the application line that called
    ``requests``, not inside it.
    """
    prefix = "opentelemetry.instrumentation."
    if not scope.startswith(prefix):
        return ()
    name = scope[len(prefix) :].split(".", maxsplit=1)[0]
    names = {name, name.split("_")[0]}
    for item in list(names):
        names.update(_UNDERNEATH.get(item, ()))
    return tuple(sorted(names))


def _caller(extra: tuple[str, ...] = (), *, offset: bool = False) -> tuple[CodeType, int]:
    """The first frame outside OpenTelemetry and its instrumentation: the code that asked for the span,
    and the line (with ``offset``, the instruction offset that ``LOG`` items carry)."""
    packages = _LIBRARY + extra
    cache = _skip_codes.get(extra)
    if cache is None:
        cache = _skip_codes[extra] = {}
    first = sys._getframe(2)
    frame: FrameType | None = first
    while frame is not None:
        code = frame.f_code
        skip = cache.get(code)
        if skip is None:
            name = frame.f_globals.get("__name__") or ""
            skip = cache[code] = any(name == p or name.startswith(p + ".") for p in packages)
        if not skip:
            return code, frame.f_lasti if offset else frame.f_lineno
        frame = frame.f_back
    return first.f_code, first.f_lasti if offset else first.f_lineno


# -- Zoom <-> OpenTelemetry span contexts -----------------------------------------------------


def _otel_context_of(value: Position) -> trace.SpanContext:
    try:
        state = trace.TraceState(list(value.tracestate))
    except Exception:
        state = trace.TraceState()
    flags = value.trace_flags if isinstance(value, ZoomContext) else trace.TraceFlags.SAMPLED
    return trace.SpanContext(
        int(value.trace_id, 16),
        int(value.span_id, 16),
        is_remote=isinstance(value, ZoomContext) and value.remote,
        trace_flags=trace.TraceFlags(flags),
        trace_state=state,
    )


def _zoom_value(span: trace.Span, ctx: Context) -> ZoomValue:
    """The Zoom parent standing for an OpenTelemetry span in ``ctx``."""
    if isinstance(span, _BridgeSpan):
        return span.zoom
    sc = span.get_span_context()
    if not sc.is_valid:
        return None
    members = otel_baggage.get_all(ctx)
    on_behalf_of = members.get(ON_BEHALF_OF_KEY)
    return ZoomContext(
        trace.format_trace_id(sc.trace_id),
        trace.format_span_id(sc.span_id),
        int(sc.trace_flags),
        tuple(sc.trace_state.items()),
        tuple((str(k), str(v)) for k, v in members.items() if k != ON_BEHALF_OF_KEY),
        str(on_behalf_of) if on_behalf_of is not None else None,
        sc.is_remote,
    )


# -- the shared context ----------------------------------------------------------------------

#: (OpenTelemetry span, Zoom value) of the last ``attach`` in this context, to recognise it cheaply.
_attached: ContextVar[tuple[trace.Span, ZoomValue] | None] = ContextVar("zoomtrace_otel_attached", default=None)
#: Open spans started through the bridge, by span id, so the current Zoom span maps back to the same object.
_open: dict[str, _BridgeSpan] = {}


class _Token:
    __slots__ = ("attached", "inner", "zoom")

    def __init__(self, inner: Token[Context], zoom: Token[Any], attached: Token[Any]) -> None:
        self.inner, self.zoom, self.attached = inner, zoom, attached


class SharedRuntimeContext(_RuntimeContext):
    """OpenTelemetry's runtime context, kept in step with ``zoomtrace.capture.context.current``.

    It wraps the runtime context in use (so tokens handed out before it was installed still
    detach), and Zoom's current span is the truth about *which span* is current.
    """

    def __init__(self, inner: _RuntimeContext) -> None:
        self.inner = inner

    def attach(self, context: Context) -> Token[Context]:
        inner = self.inner.attach(context)
        span = trace.get_current_span(context)
        value = _zoom_value(span, context)
        token = _Token(inner, current.set(value), _attached.set((span, value)))
        return cast(Token[Context], token)

    def get_current(self) -> Context:
        ctx = self.inner.get_current()
        value = current.get()
        span = trace.get_current_span(ctx)
        if isinstance(span, _BridgeSpan):
            if span.zoom is value:
                return ctx
        elif value is None:
            if not span.get_span_context().is_valid:
                return ctx
        else:
            last = _attached.get()
            if last is not None and last[0] is span and last[1] is value:
                return ctx
        return _context_for(ctx, value)

    def detach(self, token: Token[Context]) -> None:
        ours: object = token
        if not isinstance(ours, _Token):
            self.inner.detach(token)
            return
        try:
            current.reset(ours.zoom)
            _attached.reset(ours.attached)
        except ValueError:  # detached in another context than attached (a generator finished elsewhere)
            pass
        self.inner.detach(ours.inner)


def _context_for(ctx: Context, value: ZoomValue) -> Context:
    """``ctx`` with Zoom's current span (and its baggage) as the current OpenTelemetry span."""
    if value is None:
        return trace.set_span_in_context(trace.INVALID_SPAN, ctx)
    if isinstance(value, ZoomSpan):
        span: trace.Span = _open.get(value.span_id) or _BridgeSpan(value, owned=False)
    else:
        span = trace.NonRecordingSpan(_otel_context_of(value))
    out = trace.set_span_in_context(span, ctx)
    if (value.baggage or value.on_behalf_of) and not otel_baggage.get_all(ctx):
        for key, item in value.baggage:
            out = otel_baggage.set_baggage(key, item, out)
        if value.on_behalf_of is not None:
            out = otel_baggage.set_baggage(ON_BEHALF_OF_KEY, value.on_behalf_of, out)
    return out


# -- spans -----------------------------------------------------------------------------------


def _start(zoom: ZoomSpan, start_time: int | None) -> None:
    """What ``Span.__enter__`` does, except making it current: OpenTelemetry does that separately."""
    thread = threading.current_thread()
    zoom.thread = thread.name
    zoom._thread_ident = thread.ident
    node = zoom._node = recorder.active
    if node is not None:
        node.open_spans[zoom.span_id] = zoom
    # As in ``Span.__enter__``: the CPU clock is read within the wall-clock interval.
    zoom.start_ns = start_time if start_time is not None else _time()
    cpu = node is not None and node.span_cpu and start_time is None and _running_loop() is None
    zoom._cpu_start = _thread_time() if cpu else None


def _finish(zoom: ZoomSpan, end_time: int | None) -> None:
    cpu_end = _thread_time() if end_time is None and zoom._cpu_start is not None else 0
    zoom.end_ns = end_time if end_time is not None else _time()
    if zoom._cpu_start is not None and threading.get_ident() == zoom._thread_ident and end_time is None:
        zoom.cpu_ns = cpu_time(zoom._cpu_start, cpu_end, zoom.end_ns - zoom.start_ns)
    node = recorder.active
    if node is not None and (node is zoom._node or zoom._node is None):  # as in ``Span.__exit__``
        node.open_spans.pop(zoom.span_id, None)
        node.pipeline.put(zoom)


def _log(
    zoom: ZoomSpan, name: str, attributes: types.Attributes, timestamp: int | None, exc: BaseException | None = None
) -> None:
    """A span event as a log record of the span."""
    node = recorder.active
    if node is None:
        return
    code, at = _caller(offset=True)
    template = name.replace("{", "{{").replace("}", "}}")
    level = "ERROR" if exc is not None or name == "exception" else "INFO"
    ts = timestamp if timestamp is not None else _time()
    node.pipeline.put((items.LOG, ts, code, at, name, level, template, dict(attributes or {}), zoom, exc))


class _BridgeSpan(trace.Span):
    """An OpenTelemetry span that is a Zoom span.

    ``owned`` spans were started through the bridge and end with ``end()``; the others are
    views of a ``zt.span`` (which its ``with`` block ends), for OpenTelemetry code that
    looks at the current span.
    """

    def __init__(
        self, zoom: ZoomSpan, *, owned: bool, record_exception: bool = True, set_status_on_exception: bool = True
    ) -> None:
        self.zoom = zoom
        self.owned = owned
        self._record_exception = record_exception
        self._set_status_on_exception = set_status_on_exception
        self._context: trace.SpanContext | None = None
        self._status_final = False

    def get_span_context(self) -> trace.SpanContext:
        if self._context is None:
            self._context = _otel_context_of(self.zoom)
        return self._context

    def is_recording(self) -> bool:
        return self.zoom.end_ns is None

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        if self.is_recording():
            self.zoom.attrs[key] = value

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        if self.is_recording():
            self.zoom.attrs.update(attributes)

    def add_event(self, name: str, attributes: types.Attributes = None, timestamp: int | None = None) -> None:
        if self.is_recording():
            _log(self.zoom, name, attributes, timestamp)

    def add_link(self, context: trace.SpanContext, attributes: types.Attributes = None) -> None:
        if self.is_recording() and context.is_valid:
            link = (trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id))
            self.zoom.links = [*self.zoom.links, link]

    def update_name(self, name: str) -> None:
        if self.is_recording():
            self.zoom.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if not self.is_recording() or self._status_final:
            return
        if isinstance(status, Status):
            code, description = status.status_code, status.description
        else:
            code = status
        if code is StatusCode.ERROR:
            self.zoom.status = "error"
            if description:
                self.zoom.attrs["otel.status_description"] = description
        elif code is StatusCode.OK:
            self.zoom.status = "ok"
            self._status_final = True  # "Ok ... SHOULD be considered final"

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        if not self.is_recording():
            return
        if self.zoom.error is None:
            self.zoom.error = exception
            if attributes:
                self.zoom.attrs.update(attributes)
        else:
            _log(self.zoom, "exception", attributes, timestamp, exception)

    def end(self, end_time: int | None = None) -> None:
        if not self.owned:
            return  # a zt.span ends with its with block
        with _lock:
            if self.zoom.end_ns is not None:
                return  # "Only the first call to End should be recorded"
            _open.pop(self.zoom.span_id, None)
            _finish(self.zoom, end_time)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc_val: BaseException | None, exc_tb: TracebackType | None
    ) -> None:
        if exc_val is not None and isinstance(exc_val, Exception) and self.is_recording():
            if self._record_exception:
                self.record_exception(exc_val)
            if self._set_status_on_exception and not self._status_final and self.zoom.status != "error":
                self.set_status(StatusCode.ERROR, f"{type(exc_val).__name__}: {exc_val}")
        self.end()

    def __repr__(self) -> str:
        return f"ZoomSpan(name={self.zoom.name!r}, trace_id={self.zoom.trace_id}, span_id={self.zoom.span_id})"


class ZoomTracer(trace.Tracer):
    """A tracer whose spans are Zoom spans (see the module docstring)."""

    def __init__(self, name: str, version: str | None = None) -> None:
        self.name = name
        self.version = version
        self._library = instrumented_packages(name)

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        parent_context = context if context is not None else otel_context.get_current()
        parent = _zoom_value(trace.get_current_span(parent_context), parent_context)
        attrs: dict[str, Any] = {_SCOPE_NAME: self.name}
        if self.version:
            attrs[_SCOPE_VERSION] = self.version
        if kind is not SpanKind.INTERNAL:
            attrs["span.kind"] = kind.name.lower()
        if attributes:
            attrs.update(attributes)
        zoom_links = [
            (trace.format_trace_id(link.context.trace_id), trace.format_span_id(link.context.span_id))
            for link in links or ()
            if link.context.is_valid
        ]
        # A server or consumer span starts inside its framework: there is no application line further out.
        code, line = _caller(self._library if kind in (SpanKind.CLIENT, SpanKind.INTERNAL, SpanKind.PRODUCER) else ())
        zoom = ZoomSpan(name, attrs, parent, zoom_links, None, code, line)
        _start(zoom, start_time)
        span = _BridgeSpan(
            zoom, owned=True, record_exception=record_exception, set_status_on_exception=set_status_on_exception
        )
        _open[zoom.span_id] = span
        return span

    @_contextmanager
    def start_as_current_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace.Span]:
        span = self.start_span(
            name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception
        )
        with trace.use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        ) as active:
            yield active


class ZoomTracerProvider(trace.TracerProvider):
    """The provider ``install()`` sets globally: every tracer makes Zoom spans."""

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: types.Attributes = None,
    ) -> trace.Tracer:
        return ZoomTracer(instrumenting_module_name or "unknown", instrumenting_library_version)


# -- an SDK provider installed before Zoom ----------------------------------------------------


class _CopyToZoom:
    """A span processor for an SDK ``TracerProvider`` the application installed: its spans join the story."""

    def __init__(self) -> None:
        self._starts: dict[int, tuple[CodeType, int, str]] = {}

    def on_start(self, span: Any, parent_context: Context | None = None) -> None:
        code, line = _caller()
        self._starts[span.context.span_id] = (code, line, threading.current_thread().name)

    def on_end(self, span: Any) -> None:
        code, line, thread = self._starts.pop(span.context.span_id, (None, 0, None))
        node = recorder.active
        if node is None or code is None:
            return
        attrs: dict[str, Any] = dict(span.attributes or {})
        attrs[_SCOPE_NAME] = span.instrumentation_scope.name if span.instrumentation_scope else "unknown"
        if span.kind is not SpanKind.INTERNAL:
            attrs["span.kind"] = span.kind.name.lower()
        parent = span.parent
        zoom = ZoomSpan(
            span.name,
            attrs,
            None,
            [
                (trace.format_trace_id(link.context.trace_id), trace.format_span_id(link.context.span_id))
                for link in span.links or ()
            ],
            None,
            code,
            line,
        )
        zoom.trace_id = trace.format_trace_id(span.context.trace_id)
        zoom.span_id = trace.format_span_id(span.context.span_id)
        if parent is not None:  # made with no parent, the Zoom span has none so far
            zoom.parent_span_id = trace.format_span_id(parent.span_id)
        zoom.start_ns, zoom.end_ns = span.start_time, span.end_time
        zoom.thread = thread or "?"
        if span.status.status_code is StatusCode.ERROR:
            zoom.status = "error"
            if span.status.description:
                attrs["otel.status_description"] = span.status.description
        for event in span.events:
            if event.name == "exception" and zoom.error is None:
                attrs.update(dict(event.attributes or {}))
            else:
                _log(zoom, event.name, event.attributes, event.timestamp)
        node.pipeline.put(zoom)

    def shutdown(self) -> None:
        """Nothing to release: records go through the node's pipeline."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        node = recorder.active
        return node.flush(timeout_millis / 1000) if node is not None else True


# -- installation ----------------------------------------------------------------------------


def installed() -> bool:
    """Whether the shared context is in place."""
    return isinstance(otel_context._RUNTIME_CONTEXT, SharedRuntimeContext)


def install() -> None:
    """Share the context with OpenTelemetry and make its spans Zoom spans. Idempotent; never uninstalled.

    The runtime context stays wrapped for the life of the process: OpenTelemetry code may
    hold tokens from it. With no Zoom node running the spans are simply not recorded.
    """
    with _lock:
        if not installed():
            otel_context._RUNTIME_CONTEXT = SharedRuntimeContext(otel_context._RUNTIME_CONTEXT)
        provider = trace.get_tracer_provider()
        if isinstance(provider, ZoomTracerProvider):
            return
        if isinstance(provider, trace.ProxyTracerProvider):
            trace.set_tracer_provider(ZoomTracerProvider())
            return
        add = getattr(provider, "add_span_processor", None)
        if callable(add) and not getattr(provider, "_zoomtrace_bridged", False):
            from opentelemetry.sdk.trace import SpanProcessor  # an SDK provider: the SDK is there

            add(type("CopyToZoom", (_CopyToZoom, SpanProcessor), {})())
            provider._zoomtrace_bridged = True  # type: ignore[attr-defined]
