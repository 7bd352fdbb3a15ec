"""A structlog processor that puts every structlog event into the story.

Add it to the processor chain (anywhere before the renderer)::

    structlog.configure(processors=[..., zoomtrace.integrations.structlog.processor, ...])

It records the event with the current span, the call site outside structlog and
the event's key/value pairs as attrs, and returns the event dict unchanged so the
rest of the chain renders as before.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from zoomtrace.capture import recorder
from zoomtrace.capture.context import current
from zoomtrace.capture.items import FOREIGN

_LEVELS = {"warn": "WARNING", "exception": "ERROR", "fatal": "CRITICAL", "msg": "INFO"}


def processor(logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    node = recorder.active
    if node is None:
        return event_dict
    level = _LEVELS.get(method_name, method_name.upper())
    if node.levelno > recorder.LEVELS.get(level, 20):
        return event_dict
    f = sys._getframe(1)
    while f.f_back is not None and f.f_globals.get("__name__", "").startswith("structlog"):
        f = f.f_back
    attrs = {k: v for k, v in event_dict.items() if k not in ("event", "exc_info", "logger", "level")}
    exc = sys.exc_info()[1] if event_dict.get("exc_info") or method_name == "exception" else None
    name = event_dict.get("logger") or f.f_globals.get("__name__")
    node.pipeline.put(
        (
            FOREIGN,
            time.time_ns(),
            f.f_code.co_filename,
            f.f_lineno,
            f.f_code.co_qualname,
            name,
            level,
            event_dict.get("event", ""),
            attrs,
            current.get(),
            exc,
        )
    )
    return event_dict
