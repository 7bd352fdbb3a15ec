"""Zoom: the whole story of a distributed system.

Logs, data events, raw data and spans are *records* in one causal trace, each
carrying the file, line, function, commit, process and host that produced it::

    import zoomtrace as zt

    zt.init("orders", env="local", group="shop")
    with zt.span("checkout", user="u1"):
        zt.log.info("charged {amount}", amount=12.5)
        order_id = zt.event({"order": 7}, type="OrderPlaced")
"""

from zoomtrace import kafka  # zt.kafka: trace context through the application's own Kafka messages
from zoomtrace.context import SpanContext, extract, inject
from zoomtrace.errors import ConfigError, NotFound, ReadOnlySQL, StoreError, ZoomError
from zoomtrace.events import event, raw
from zoomtrace.log import Logger, log, logger
from zoomtrace.node import Node, flush, init, shutdown
from zoomtrace.record import SCHEMA_VERSION, Record
from zoomtrace.sanitize import Limits
from zoomtrace.scrub import Scrubber
from zoomtrace.span import Span, current_span, span, traced

__version__ = "0.1.0"

__all__ = [
    "SCHEMA_VERSION",
    "ConfigError",
    "Limits",
    "Logger",
    "Node",
    "NotFound",
    "ReadOnlySQL",
    "Record",
    "Scrubber",
    "Span",
    "SpanContext",
    "StoreError",
    "ZoomError",
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
