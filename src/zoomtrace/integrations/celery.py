"""Celery: a task's message carries the trace, and the worker runs the task as a span of that trace.

::

    from zoomtrace.integrations import celery as zt_celery

    zt.init("shop")
    zt_celery.instrument()        # in the publishing processes and in the workers (or: zoomtrace run)

Publishing (``task.delay``, ``apply_async``, ``send_task``) records a *producer* span, ``publish <task>``,
child of the current span, and puts its W3C ``traceparent`` (``tracestate``, ``baggage``) in the task
message's headers; a publish that fails (broker down) ends it in error and the caller gets the exception.
The worker runs the task inside a *consumer* span named after the task, child of the producer span,
pointing at the task's function; the task's logs and events are inside it. Retries are published from
inside the failed run, so each run is a span of the same trace. Each worker process is a node: a prefork
child is forked from the worker's main process and starts a node whose parent is the main process's node
(``zt.init`` before the fork: in the module ``celery -A`` imports, or by ``zoomtrace run``).

Attributes: ``celery.task_name``, ``celery.task_id``, ``celery.retries``, ``celery.state`` (``SUCCESS``,
``FAILURE``, ``RETRY``...), ``messaging.system`` (``celery``), ``messaging.destination.name`` (the routing
key) and ``span.kind``. A failed or retried run is a span in error with the exception.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from types import CodeType
from typing import Any, Final

from celery import Celery, signals

from zoomtrace.capture import recorder
from zoomtrace.capture.context import current, extract, inject
from zoomtrace.capture.span import Span
from zoomtrace.capture.stdlib_logging import capture
from zoomtrace.integrations._http import caller, code_of

__all__ = ["instrument"]

#: Frames of these packages are skipped to find the application line that published the task.
_LIBRARY: Final = ("celery", "kombu", "amqp", "redis", "vine", "zoomtrace.integrations", "contextlib", "functools")
_UID: Final = "zoomtrace"
_MARK: Final = "_zoomtrace_original"

#: The worker's spans between ``task_prerun`` and ``task_postrun``, by task id; a run's failure or retry is
#: noted on its span meanwhile.
_running: dict[str, Span] = {}


def _attrs(kind: str, task_name: str) -> dict[str, Any]:
    return {"span.kind": kind, "messaging.system": "celery", "celery.task_name": task_name}


def _message_attrs(span: Span, task_id: Any, retries: Any, routing_key: Any) -> None:
    span.attrs["celery.task_id"] = task_id
    if retries is not None:
        span.attrs["celery.retries"] = retries
    if routing_key:
        span.attrs["messaging.destination.name"] = routing_key


# -- the publisher -------------------------------------------------------------------------------


def _traced_send_task(original: Callable[..., Any]) -> Callable[..., Any]:
    """``Celery.send_task`` (every ``delay``, ``apply_async``, ``retry``, canvas) inside a producer span: a
    publish that fails (broker down) ends it in error, with the exception, and the caller gets the exception."""

    @functools.wraps(original)
    def send_task(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        code, line = caller(_LIBRARY)
        with Span(f"publish {name}", _attrs("producer", str(name)), current.get(), [], None, code, line):
            return original(self, name, *args, **kwargs)

    setattr(send_task, _MARK, original)
    return send_task


def _before_publish(
    sender: Any = None, body: Any = None, routing_key: Any = None, headers: Any = None, **_: Any
) -> None:
    """Put the current trace context (the producer span's) in the message headers (protocol 2: ``headers``)."""
    if not isinstance(headers, dict):
        return
    span = current.get()
    if isinstance(span, Span) and span.attrs.get("span.kind") == "producer" and span.name == f"publish {sender}":
        task_id = headers.get("id") or (body.get("id") if isinstance(body, dict) else None)
        _message_attrs(span, task_id, headers.get("retries"), routing_key)
    inject(headers)


# -- the worker ----------------------------------------------------------------------------------


def _context_of(request: Any) -> Any:
    """The remote parent in the task's request: the message headers are attributes of ``task.request``."""
    return extract({name: getattr(request, name, None) for name in ("traceparent", "tracestate", "baggage")})


def _task_code(task: Any) -> tuple[CodeType, int]:
    """The task's function (``run``), else the line that ran it."""
    return code_of(getattr(task, "run", None)) or caller((*_LIBRARY, "billiard"))


def _prerun(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    if task_id is None or task is None:
        return
    request = getattr(task, "request", None)
    delivery = getattr(request, "delivery_info", None) or {}
    name = str(getattr(task, "name", None) or "task")
    where = _task_code(task)
    span = Span(name, _attrs("consumer", name), _context_of(request) or current.get(), [], None, where[0], where[1])
    _message_attrs(span, task_id, getattr(request, "retries", None), delivery.get("routing_key"))
    span.__enter__()
    _running[task_id] = span


def _failure(task_id: str | None = None, exception: BaseException | None = None, **_: Any) -> None:
    span = _running.get(task_id) if task_id else None
    if span is not None and exception is not None:
        span.error = exception


def _retry(request: Any = None, reason: Any = None, **_: Any) -> None:
    span = _running.get(getattr(request, "id", None) or "")
    if span is not None:
        exc = getattr(reason, "exc", None) or reason  # Celery's Retry carries the exception that caused it
        if isinstance(exc, BaseException):
            span.error = exc


def _postrun(task_id: str | None = None, state: str | None = None, **_: Any) -> None:
    span = _running.pop(task_id, None) if task_id else None
    if span is None:
        return
    if state:
        span.attrs["celery.state"] = state
    error = span.error
    if error is not None:
        span.attrs["error.type"] = type(error).__qualname__
    span.__exit__(type(error) if error is not None else None, error, error.__traceback__ if error else None)


# -- logging -------------------------------------------------------------------------------------


def _after_setup_logger(logger: logging.Logger | None = None, **_: Any) -> None:
    """Celery's worker replaces the root logger's handlers (``worker_hijack_root_logger``): Zoom's is put back.

    The handlers Celery installed keep the level it set (``--loglevel``), so its console says what it said;
    Zoom records from its own level.
    """
    node = recorder.active
    if node is None or logger is None:
        return
    for handler in logger.handlers:
        if handler.level == logging.NOTSET:
            handler.setLevel(logger.level)
    capture(node.levelno)


def instrument() -> None:
    """Connect Zoom to Celery's signals: publishing, running, failing and retrying tasks, and its logging set-up.

    Idempotent; call it in every process that publishes or runs tasks (``zoomtrace run`` does).
    """
    if not hasattr(Celery.send_task, _MARK):
        Celery.send_task = _traced_send_task(Celery.send_task)
    connections = (
        (signals.before_task_publish, _before_publish),
        (signals.task_prerun, _prerun),
        (signals.task_failure, _failure),
        (signals.task_retry, _retry),
        (signals.task_postrun, _postrun),
        (signals.after_setup_logger, _after_setup_logger),
    )
    for signal, receiver in connections:
        signal.connect(receiver, weak=False, dispatch_uid=_UID)
