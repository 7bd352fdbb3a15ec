"""Sinks: where the pipeline's worker writes encoded records.

A sink is anything with ``write(records)``, ``flush()`` and ``close()``; it runs on
the worker thread only. ``open_sink`` turns a sink URL into one, and gives it what it
cannot learn from the records: the identity of the node that writes (topic names, the
OTLP resource, file names) and the node's loss counter, to which it reports every record
it gives up on (the node's ``lost`` record counts them, beside the pipeline's own):

==========================  ===============================================
``spool`` (default)          segment files under ``$ZOOMTRACE_HOME/spool``
``spool:///abs/dir``         segment files in that directory
``stdout`` / ``stdout+json`` human-readable lines / JSON lines on stdout
``file:///path.jsonl``       JSON lines appended to a file
``kafka://host:port,...``    Apache Kafka (needs ``zoomtrace[kafka]``)
``otlp+http://host:4318``    OpenTelemetry OTLP/HTTP (needs ``zoomtrace[otel]``)
==========================  ===============================================
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from zoomtrace._extras import advice
from zoomtrace._redact import redacted
from zoomtrace.errors import ConfigError
from zoomtrace.wire.record import Record


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    """The node a sink writes for, as ``init()`` named it (defaults: those of ``init()`` and this process)."""

    node_id: str
    service: str = ""
    env: str = "local"
    group: str = "default"
    version: str | None = None
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)

    def as_attrs(self) -> dict[str, Any]:
        """The identity as the attributes of the node's *started* record spell it."""
        return asdict(self)


#: Counts ``n`` records lost for ``reason`` in the node's ``lost`` record; never raises, any thread.
ReportLoss = Callable[[str, int], None]


class Sink(Protocol):
    def write(self, records: list[Record]) -> None:
        """Write a batch; raise ``OSError`` (or any error) if it could not be written."""

    def flush(self) -> None: ...

    def close(self) -> None: ...


OTLP_ENDPOINT_VARS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
)


def default_sinks() -> list[str]:
    """The embedded spool, plus OTLP export when the standard OTEL_EXPORTER_OTLP_*_ENDPOINT variables are set."""
    return ["spool", "otlp"] if any(os.environ.get(v) for v in OTLP_ENDPOINT_VARS) else ["spool"]


def open_sink(url: str, *, home: Path, node: NodeIdentity, report_loss: ReportLoss) -> Sink:
    """Open the sink named by ``url`` (see the module docstring) for ``node``."""
    scheme = urlsplit(url).scheme if "://" in url else url
    if scheme == "spool":
        from zoomtrace.sinks.spool import SpoolSink

        path = urlsplit(url).path if "://" in url else ""
        return SpoolSink(Path(path) if path else home / "spool", node.node_id, report_loss)
    if scheme in ("stdout", "stdout+json"):
        from zoomtrace.sinks.stdout import StdoutSink

        return StdoutSink(json_lines=scheme == "stdout+json")
    if scheme == "file":
        from zoomtrace.sinks.file import FileSink

        return FileSink(Path(urlsplit(url).path))
    if scheme == "kafka":
        try:
            from zoomtrace.sinks.kafka import KafkaSink
        except ModuleNotFoundError:
            raise ConfigError(advice("confluent_kafka", "the Kafka sink")) from None
        return KafkaSink.from_url(url, home=home, node=node, report_loss=report_loss)
    if scheme in ("otlp+http", "otlp+https", "otlp"):
        try:
            from zoomtrace.sinks.otlp import OtlpSink
        except ModuleNotFoundError:
            raise ConfigError(advice("opentelemetry.proto", "the OTLP sink")) from None
        return OtlpSink.from_url(url, node=node, report_loss=report_loss)
    raise ConfigError(
        f"unknown sink {redacted(url)!r}: use 'spool', 'stdout', 'stdout+json', 'file:///path.jsonl', "
        "'kafka://host:9092' or 'otlp+http://host:4318'"
    )
