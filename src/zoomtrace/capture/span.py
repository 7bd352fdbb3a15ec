"""Spans: units of work with a start, an end and a place in a tree.

The caller's thread only reads the clocks, ids and the current context; the span
record is built by the pipeline's worker when the span ends.
"""

from __future__ import annotations

import functools
import inspect
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import Token
from types import CodeType, TracebackType
from typing import TYPE_CHECKING, Any, Final, ParamSpec, Self, TypeVar, overload

from zoomtrace._native import speedups
from zoomtrace.capture import recorder
from zoomtrace.capture.context import Position, SpanContext, current
from zoomtrace.wire.record import new_span_id, new_trace_id

P = ParamSpec("P")
R = TypeVar("R")

_CURRENT: Final[Any] = object()
_modules = sys.modules
_thread_time = time.thread_time_ns
_time = time.time_ns
_get_ident = threading.get_ident
#: threading's own table of the threads it knows, by ident (what ``threading.current_thread`` reads).
_threads: Final[dict[int, threading.Thread]] = threading._active  # type: ignore[attr-defined]
_set_current = current.set
_reset_current = current.reset


def _spent_token() -> Token[Position | None]:
    token = current.set(current.get())
    current.reset(token)
    return token


#: What an ended span keeps in place of its own token, once used: a token is an object the garbage collector
#: tracks, which holds the context it was made in, and an ended span waits in the queue (untracked itself) until
#: the worker takes it, so its own token survived the young collections and made the full ones both more frequent
#: and longer: 0.23–0.40 s of the collector's time for 200,000 spans (bench/README.md). Used again, as a token used
#: twice, it raises the same RuntimeError.
_SPENT_TOKEN: Final = _spent_token()


class PythonSpanBase:
    """A span's start, entry and exit in Python: the reference for the C ones (``_speedups_span.c``), and the
    fallback without them. These three calls and their attribute stores were most of a span's cost on the
    application's thread; in C they have no Python frame and write ``Span``'s slots where they lie."""

    if not TYPE_CHECKING:  # the slots are Span's (which mypy would hold these stores to, were they declared here)
        __slots__ = ()

    name: str
    attrs: dict[str, Any]
    trace_id: str
    parent_span_id: str | None
    trace_flags: int
    tracestate: tuple[tuple[str, str], ...]
    baggage: tuple[tuple[str, str], ...]
    span_id: str
    links: Sequence[tuple[str, str]]
    on_behalf_of: str | None
    code: CodeType
    line: int
    status: str
    error: BaseException | None
    end_ns: int | None
    cpu_ns: int | None
    start_ns: int
    thread: str
    #: Set by ``__enter__``: the token, the node running then (only that node records the span, not a
    #: forked child's), the CPU clock at the start (None in a coroutine) and the thread.
    _token: Any
    _node: Any
    _cpu_start: int | None
    _thread_ident: int | None

    def __init__(
        self,
        name: str,
        attrs: dict[str, Any],
        parent: Position | None,
        links: Sequence[tuple[str, str]],
        on_behalf_of: str | None,
        code: CodeType,
        line: int,
    ) -> None:
        self.name = name
        self.attrs = attrs
        if parent is None:
            self.trace_id = new_trace_id()
            self.parent_span_id = None
            self.trace_flags = 1
            self.tracestate = ()
            self.baggage = ()
        else:
            self.trace_id = parent.trace_id
            self.parent_span_id = parent.span_id
            # The sampling decision, vendor state and baggage travel on to downstream calls.
            self.trace_flags = parent.trace_flags
            self.tracestate = parent.tracestate
            self.baggage = parent.baggage
            if on_behalf_of is None:
                on_behalf_of = parent.on_behalf_of
        self.span_id = new_span_id()
        self.links = links
        self.on_behalf_of = on_behalf_of
        self.code = code
        self.line = line
        self.status = "ok"
        self.error = None
        self.end_ns = None
        self.cpu_ns = None
        self.start_ns = 0

    def __enter__(self) -> Self:
        ident = self._thread_ident = _get_ident()
        # threading.current_thread() without its Python call (a thread it never met: the call makes one).
        self.thread = (_threads.get(ident) or threading.current_thread()).name
        self._token = _set_current(self)
        node = self._node = recorder.active
        if node is not None:
            node.open_spans[self.span_id] = self
        # The two clocks are read last, wall clock first, and read back first, CPU clock first
        # (see ``__exit__``): the CPU time is measured within the wall time, not around it.
        self.start_ns = _time()
        # CPU time only when asked for (``init(span_cpu=True)``: a system call at each end), and only for
        # synchronous code: other tasks run while a coroutine awaits.
        self._cpu_start = _thread_time() if node is not None and node.span_cpu and _current_loop() is None else None
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        cpu_start = self._cpu_start
        cpu_end = _thread_time() if cpu_start is not None else 0
        end = self.end_ns = _time()
        if cpu_start is not None and _get_ident() == self._thread_ident:
            self.cpu_ns = cpu_time(cpu_start, cpu_end, end - self.start_ns)
        if exc is not None:
            self.status = "error"
            self.error = exc
        try:
            _reset_current(self._token)
        except ValueError:  # exited in another context (e.g. a generator finished elsewhere)
            current.set(None)
        else:
            self._token = _SPENT_TOKEN  # see _SPENT_TOKEN
        node = recorder.active
        # Recorded by the node it was entered under (or by any, if entered before init()): a forked child
        # continues its parent's open spans but does not record them again, the parent does when they end
        # there; nor does a node started after shutdown() record a span the stopped node recorded interrupted.
        if node is not None and (node is self._node or self._node is None):
            node.open_spans.pop(self.span_id, None)
            node.pipeline.put(self)


if speedups is None or TYPE_CHECKING:  # noqa: SIM108 (mypy takes a base class from a block, not an expression)
    _SpanBase = PythonSpanBase
else:
    _SpanBase = speedups.SpanBase


class Span(_SpanBase):
    """An open span; use it as a context manager (``with zt.span("name") as s``).

    Lean on purpose (a span is two context switches of the caller's thread): the queue gets the
    ``Span`` itself, the slots set only when they are needed are read with defaults by the worker.
    Its ``__init__``, ``__enter__`` and ``__exit__`` are C where the speedups are built (``PythonSpanBase``'s
    without them).
    """

    __slots__ = (
        "_cpu_start",
        "_node",
        "_thread_ident",
        "_token",
        "attrs",
        "baggage",
        "code",
        "cpu_ns",
        "end_ns",
        "error",
        "line",
        "links",
        "name",
        "on_behalf_of",
        "parent_span_id",
        "span_id",
        "start_ns",
        "status",
        "thread",
        "trace_flags",
        "trace_id",
        "tracestate",
    )

    def set(self, /, *, attrs: Mapping[str, Any] | None = None, **fields: Any) -> Span:
        """Add or replace attributes (keywords and/or the ``attrs`` mapping); they are recorded when the span ends."""
        if attrs is not None:
            self.attrs.update(attrs)
        self.attrs.update(fields)
        return self


def cpu_time(cpu_start: int, cpu_end: int, wall_ns: int) -> int:
    """The thread's CPU time between two points, at most the wall time between them.

    The CPU clock is read inside the wall-clock interval, so one thread cannot run longer
    than that; only the two clocks' rates differ (the scheduler's clock against a wall clock
    that NTP slews), by nanoseconds per millisecond: such an excess is cut off.
    """
    cpu = cpu_end - cpu_start
    return wall_ns if cpu > wall_ns >= 0 else cpu


def _no_loop_yet() -> Any:
    """Stands for ``asyncio._get_running_loop``, so that ``import zoomtrace`` need not import asyncio (26 ms).

    No coroutine can be running before asyncio is imported. Once it is, its own function
    (bound in the package only after ``asyncio.events`` is complete) replaces this one.
    """
    global _running_loop
    asyncio = _modules.get("asyncio")
    if asyncio is None:  # the usual answer until then, without a getattr
        return None
    get = getattr(asyncio, "_get_running_loop", None)
    if get is None:
        return None
    _running_loop = get
    return get()


_running_loop: Callable[[], Any] = _no_loop_yet


def _current_loop() -> Any:
    """The running event loop, or None (read by ``__enter__`` when the node records spans' CPU time)."""
    return _running_loop()


def _links(follows_from: Span | SpanContext | Iterable[Span | SpanContext] | None) -> Sequence[tuple[str, str]]:
    if follows_from is None:
        return ()
    if isinstance(follows_from, Span | SpanContext):
        return [(follows_from.trace_id, follows_from.span_id)]
    return [(s.trace_id, s.span_id) for s in follows_from]


def span(
    name: str,
    /,
    *,
    attrs: Mapping[str, Any] | None = None,
    follows_from: Span | SpanContext | Iterable[Span | SpanContext] | None = None,
    context: SpanContext | Span | None = _CURRENT,
    on_behalf_of: str | None = None,
    **fields: Any,
) -> Span:
    """A new span, child of the current one (or of ``context``; ``context=None`` starts a new trace).

    Attributes are the keywords (``user="u1"``) and/or the ``attrs`` mapping, which is how to
    record one named like a parameter (``attrs={"context": "batch"}``); keywords win on a clash.
    ``follows_from`` links the span to other spans without making it their child
    (a retry, a batch, a message consumed later).
    """
    f = sys._getframe(1)
    parent = current.get() if context is _CURRENT else context
    if attrs is not None:
        fields = {**attrs, **fields}
    return Span(name, fields, parent, _links(follows_from), on_behalf_of, f.f_code, f.f_lineno)


#: ``span`` in Python: the reference for the C one (``_speedups_span.c``), which calls it for every call but
#: ``span(name, **fields)``.
python_span: Final = span

if speedups is not None:
    speedups.configure_span(
        Span,
        PythonSpanBase,
        python_span,
        recorder.__dict__,
        current,
        _threads,
        threading.current_thread,
        _current_loop,
        _SPENT_TOKEN,
    )
    span = speedups.span  # the same calls as python_span (tests/test_speedups_span.py)


def current_span() -> Span | None:
    """The open span of this task or thread, if any (a remote context is not a span)."""
    value = current.get()
    return value if isinstance(value, Span) else None


@overload
def traced(fn: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def traced(
    name: str | None = None, /, *, attrs: Mapping[str, Any] | None = None, **fields: Any
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
def traced(fn_or_name: Any = None, /, *, attrs: Mapping[str, Any] | None = None, **fields: Any) -> Any:
    """Run a function (sync or async) in a span named after it; the span points at the function's body.

    The span's attributes are given as to :func:`span` (keywords and/or ``attrs``).
    """
    span_attrs = {**attrs, **fields} if attrs is not None else fields

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        name = fn_or_name if isinstance(fn_or_name, str) else fn.__qualname__
        code: CodeType = inspect.unwrap(fn).__code__
        line = code.co_firstlineno

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with Span(name, dict(span_attrs), current.get(), (), None, code, line):
                    return await fn(*args, **kwargs)

            return run_async

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with Span(name, dict(span_attrs), current.get(), (), None, code, line):
                return fn(*args, **kwargs)

        return run

    return decorate(fn_or_name) if callable(fn_or_name) else decorate
