"""Zoom: the whole story of a distributed system.

Logs, data events, raw data and spans are *records* in one causal trace, each
carrying the file, line, function, commit, process and host that produced it::

    import zoomtrace as zt

    zt.init("orders", env="local", group="shop")
    with zt.span("checkout", user="u1"):
        zt.log.info("charged {amount}", amount=12.5)
        order_id = zt.event({"order": 7}, type="OrderPlaced")

This module is the whole public SDK; everything else is reached through it or
through the ``zoomtrace`` command.
"""

from typing import TYPE_CHECKING, Any

from zoomtrace._version import __version__
from zoomtrace.capture.context import SpanContext, extract, inject
from zoomtrace.capture.events import event, raw
from zoomtrace.capture.log import Logger, log, logger
from zoomtrace.capture.span import Span, current_span, span, traced
from zoomtrace.errors import ConfigError, ZoomError
from zoomtrace.runtime.lifecycle import flush, init, shutdown
from zoomtrace.runtime.node import Node
from zoomtrace.runtime.sanitize import Limits
from zoomtrace.runtime.scrub import Scrubber

if TYPE_CHECKING:
    from zoomtrace.integrations import kafka


def __getattr__(name: str) -> Any:
    """``zt.kafka`` (trace context through the application's own Kafka messages), loaded on first use."""
    if name == "kafka":
        from zoomtrace.integrations import kafka

        return kafka
    raise AttributeError(f"module 'zoomtrace' has no attribute {name!r}")


__all__ = [
    "ConfigError",
    "Limits",
    "Logger",
    "Node",
    "Scrubber",
    "Span",
    "SpanContext",
    "ZoomError",
    "__version__",
    "current_span",
    "event",
    "extract",
    "flush",
    "init",
    "inject",
    "kafka",
    "log",
    "logger",
    "raw",
    "shutdown",
    "span",
    "traced",
]
