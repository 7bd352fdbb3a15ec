"""Structured logs: ``zt.log.info("charged {amount} for {order}", amount=12.5, order=7)``.

The template is kept for grouping; the message is rendered off the caller's
thread by the encoder. Values are captured by reference: a mutable value changed
right after the call may be recorded in its changed state.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from zoomtrace._native import speedups
from zoomtrace.capture import recorder
from zoomtrace.capture.context import current
from zoomtrace.capture.items import LOG

_time = time.time_ns
_getframe = sys._getframe

# Level numbers as stdlib ``logging`` has them (``recorder.LEVELS``), as constants: the cheapest lookup.
_DEBUG: Final = 10
_INFO: Final = 20
_WARNING: Final = 30
_ERROR: Final = 40
_CRITICAL: Final = 50


class PythonLogger:
    """``Logger`` in Python: the reference for the C one (``_speedups_caller.c``), and the fallback without it.

    Each level is written out in full: a shared helper would add a Python call to every log line. The call
    site is taken as the frame's instruction offset (``f_lasti``, a field read): the worker turns it into a
    line number once per call site, where ``f_lineno`` would walk the line table on every call.
    """

    __slots__ = ("name",)

    def __init__(self, name: str | None = None) -> None:
        self.name = name

    def debug(self, template: str, /, *, attrs: Mapping[str, Any] | None = None, **fields: Any) -> None:
        """Record a DEBUG log line."""
        node = recorder.active
        if node is None or node.levelno > _DEBUG:
            return
        if attrs is not None:
            fields = {**attrs, **fields}
        f = _getframe(1)
        name = self.name or f.f_globals.get("__name__")
        node.pipeline.put((LOG, _time(), f.f_code, f.f_lasti, name, "DEBUG", template, fields, current.get(), None))

    def info(self, template: str, /, *, attrs: Mapping[str, Any] | None = None, **fields: Any) -> None:
        """Record an INFO log line."""
        node = recorder.active
        if node is None or node.levelno > _INFO:
            return
        if attrs is not None:
            fields = {**attrs, **fields}
        f = _getframe(1)
        name = self.name or f.f_globals.get("__name__")
        node.pipeline.put((LOG, _time(), f.f_code, f.f_lasti, name, "INFO", template, fields, current.get(), None))

    def warning(self, template: str, /, *, attrs: Mapping[str, Any] | None = None, **fields: Any) -> None:
        """Record a WARNING log line."""
        node = recorder.active
        if node is None or node.levelno > _WARNING:
            return
        if attrs is not None:
            fields = {**attrs, **fields}
        f = _getframe(1)
        name = self.name or f.f_globals.get("__name__")
        node.pipeline.put((LOG, _time(), f.f_code, f.f_lasti, name, "WARNING", template, fields, current.get(), None))

    def error(self, template: str, /, *, attrs: Mapping[str, Any] | None = None, **fields: Any) -> None:
        """Record an ERROR log line."""
        node = recorder.active
        if node is None or node.levelno > _ERROR:
            return
        if attrs is not None:
            fields = {**attrs, **fields}
        f = _getframe(1)
        name = self.name or f.f_globals.get("__name__")
        node.pipeline.put((LOG, _time(), f.f_code, f.f_lasti, name, "ERROR", template, fields, current.get(), None))

    def critical(self, template: str, /, *, attrs: Mapping[str, Any] | None = None, **fields: Any) -> None:
        """Record a CRITICAL log line."""
        node = recorder.active
        if node is None or node.levelno > _CRITICAL:
            return
        if attrs is not None:
            fields = {**attrs, **fields}
        f = _getframe(1)
        name = self.name or f.f_globals.get("__name__")
        node.pipeline.put((LOG, _time(), f.f_code, f.f_lasti, name, "CRITICAL", template, fields, current.get(), None))

    def exception(self, template: str, /, *, attrs: Mapping[str, Any] | None = None, **fields: Any) -> None:
        """Record an ERROR log line with the exception being handled (call it in an ``except`` block)."""
        node = recorder.active
        if node is None or node.levelno > _ERROR:
            return
        if attrs is not None:
            fields = {**attrs, **fields}
        f = _getframe(1)
        name = self.name or f.f_globals.get("__name__")
        exc = sys.exc_info()[1]
        node.pipeline.put((LOG, _time(), f.f_code, f.f_lasti, name, "ERROR", template, fields, current.get(), exc))


if speedups is None or TYPE_CHECKING:
    _LoggerBase = PythonLogger
else:
    speedups.configure_logger(recorder.__dict__, current, LOG)
    _LoggerBase = speedups.Logger


class Logger(_LoggerBase):
    """A named source of log records (the name defaults to the calling module).

    Every method takes a ``str.format`` template filled from the attributes, given as
    keywords (``amount=12.5``) and/or as the ``attrs`` mapping, which is how to record an
    attribute named ``attrs``; keywords win over the mapping on a clash. The methods are C where the
    speedups are built (a log call then runs no Python code of Zoom's: half of its cost was the Python
    calls themselves), else ``PythonLogger``'s.
    """

    __slots__ = ()

    if TYPE_CHECKING:  # the signatures type checkers show users, under this class's name (both bases have them)

        def debug(self, template: str, /, *, attrs: Mapping[str, Any] | None = None, **fields: Any) -> None: ...
        def info(self, template: str, /, *, attrs: Mapping[str, Any] | None = None, **fields: Any) -> None: ...
        def warning(self, template: str, /, *, attrs: Mapping[str, Any] | None = None, **fields: Any) -> None: ...
        def error(self, template: str, /, *, attrs: Mapping[str, Any] | None = None, **fields: Any) -> None: ...
        def critical(self, template: str, /, *, attrs: Mapping[str, Any] | None = None, **fields: Any) -> None: ...
        def exception(self, template: str, /, *, attrs: Mapping[str, Any] | None = None, **fields: Any) -> None: ...


def logger(name: str | None = None) -> Logger:
    """A logger whose records are typed ``name`` instead of the calling module's name."""
    return Logger(name)


log = Logger()
