"""Structured logs: ``zt.log.info("charged {amount} for {order}", amount=12.5, order=7)``.

The template is kept for grouping; the message is rendered off the caller's
thread by the encoder. Values are captured by reference: a mutable value changed
right after the call may be recorded in its changed state.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from zoomtrace.capture import _active
from zoomtrace.capture._items import LOG
from zoomtrace.capture.context import current

_time = time.time_ns
_getframe = sys._getframe


def _method(level: str, levelno: int, with_exception: bool = False) -> Callable[..., None]:
    def emit(self: Logger, template: str, /, **attrs: Any) -> None:
        node = _active.active
        if node is None or levelno < node.levelno:
            return
        f = _getframe(1)
        exc = sys.exc_info()[1] if with_exception else None
        name = self.name or f.f_globals.get("__name__")
        node.pipeline.put((LOG, _time(), f.f_code, f.f_lineno, name, level, template, attrs, current.get(), exc))

    emit.__name__ = level.lower() if not with_exception else "exception"
    emit.__doc__ = f"Record a {level} log line; ``template`` uses ``str.format`` fields filled from ``attrs``."
    return emit


class Logger:
    """A named source of log records (the name defaults to the calling module)."""

    __slots__ = ("name",)

    def __init__(self, name: str | None = None) -> None:
        self.name = name

    debug = _method("DEBUG", 10)
    info = _method("INFO", 20)
    warning = _method("WARNING", 30)
    error = _method("ERROR", 40)
    critical = _method("CRITICAL", 50)
    exception = _method("ERROR", 40, with_exception=True)


def logger(name: str | None = None) -> Logger:
    return Logger(name)


log = Logger()
