"""What the Kafka integrations share (``kafka`` for confluent-kafka, ``aiokafka``): the trace context in
message headers, the consumer span and its ``messaging.*`` attributes.

Messages are read by duck typing: confluent-kafka ``Message`` objects (``topic()``, ``headers()``, ...)
and aiokafka ``ConsumerRecord`` objects (``topic``, ``headers``, ... attributes) alike.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from zoomtrace.capture.context import context_of, current
from zoomtrace.capture.span import Span, _links
from zoomtrace.wire import propagation

__all__ = ["Headers", "configure", "consume_span", "headers", "record_id", "span_for"]

#: Message headers as applications give them: a dict, or ``(name, value)`` pairs; values str or bytes.
Headers = Mapping[str, Any] | Sequence[tuple[str, Any]]

#: Consumer spans are children of the producer's span (False) or start from the current context
#: with a follows-from link to it (True). Set with :func:`configure` or ``ZOOMTRACE_KAFKA_FOLLOWS_FROM=1``.
_settings: dict[str, bool] = {
    "follows_from": os.environ.get("ZOOMTRACE_KAFKA_FOLLOWS_FROM", "").lower() in ("1", "true", "yes"),
}


def configure(*, follows_from: bool | None = None) -> None:
    """Set the default relation of consumer spans to the producer (``follows_from=True``: a link)."""
    if follows_from is not None:
        _settings["follows_from"] = follows_from


# -- producer side ---------------------------------------------------------------------------------


def headers(existing: Headers | None = None) -> list[tuple[str, bytes]]:
    """Kafka headers (``[(name, bytes)]``): ``existing`` plus the current trace context.

    ``existing`` may be a dict or a list of pairs; str values are encoded as UTF-8. Without a
    current span the headers are returned unchanged (as a list).
    """
    pairs: list[tuple[str, bytes]] = []
    if existing:
        items = existing.items() if isinstance(existing, Mapping) else existing
        for name, value in items:
            if value is None:
                continue
            pairs.append((str(name), value.encode() if isinstance(value, str) else bytes(value)))
    value = current.get()
    if value is not None:
        propagation.inject(pairs, context_of(value), as_bytes=True)
    return pairs


# -- consumer side ---------------------------------------------------------------------------------


def _field(msg: Any, name: str) -> Any:
    """``msg.name()`` (confluent-kafka) or ``msg.name`` (aiokafka)."""
    value = getattr(msg, name, None)
    return value() if callable(value) else value


def record_id(msg: Any) -> str | None:
    """The Zoom record id (``zoom.id`` header) of a data event consumed from Kafka, or None.

    Use it in ``sources=[...]`` of events derived from this message, for lineage.
    """
    for name, value in _field(msg, "headers") or ():
        if name == "zoom.id" and value is not None:
            try:
                return bytes(value).decode("utf-8") if not isinstance(value, str) else value
            except (UnicodeDecodeError, TypeError):
                return None
    return None


def _attrs(msg: Any) -> dict[str, Any]:
    """OpenTelemetry messaging semantic-convention attributes of a consumed Kafka message."""
    attrs: dict[str, Any] = {"messaging.system": "kafka", "messaging.operation.type": "process"}
    topic = _field(msg, "topic")
    if topic is not None:
        attrs["messaging.destination.name"] = topic
    partition = _field(msg, "partition")
    if partition is not None:
        attrs["messaging.destination.partition.id"] = str(partition)
    offset = _field(msg, "offset")
    if offset is not None:
        attrs["messaging.kafka.offset"] = offset
    key = _field(msg, "key")
    if isinstance(key, (bytes, bytearray)):
        with suppress(UnicodeDecodeError):
            attrs["messaging.kafka.message.key"] = bytes(key).decode("utf-8")
    elif isinstance(key, str):
        attrs["messaging.kafka.message.key"] = key
    rid = record_id(msg)
    if rid is not None:
        attrs["messaging.message.id"] = rid
    return attrs


def span_for(msg: Any, follows_from: bool | None, name: str | None, attrs: dict[str, Any], depth: int) -> Span:
    """The (not yet entered) span for processing ``msg``; it points at the caller ``depth`` frames up."""
    remote = propagation.extract(_field(msg, "headers"))
    if follows_from is None:
        follows_from = _settings["follows_from"]
    parent = current.get()
    links: Sequence[tuple[str, str]] = []
    if remote is not None:
        if follows_from:
            links = _links(remote)
        else:
            parent = remote
    topic = _field(msg, "topic")
    f = sys._getframe(depth)
    return Span(name or f"process {topic}", {**_attrs(msg), **attrs}, parent, links, None, f.f_code, f.f_lineno)


@contextmanager
def consume_span(
    msg: Any,
    /,
    follows_from: bool | None = None,
    *,
    name: str | None = None,
    attrs: Mapping[str, Any] | None = None,
    **fields: Any,
) -> Iterator[Span]:
    """A span for processing one consumed message, continuing the trace in its headers.

    Child of the producer's span by default (``follows_from=False``); with ``follows_from=True``
    the span is a child of the current span (a new trace when there is none) and links to the
    producer's span. Attributes: ``messaging.system``, ``messaging.destination.name`` (topic),
    ``messaging.destination.partition.id``, ``messaging.kafka.offset``,
    ``messaging.kafka.message.key`` (when UTF-8), ``messaging.message.id`` (the Zoom record id
    of a data event), plus the keywords and/or the ``attrs`` mapping (as for ``zt.span``). The span
    is named ``process <topic>`` unless ``name`` is given.
    """
    span = span_for(msg, follows_from, name, {**attrs, **fields} if attrs is not None else fields, 3)
    with span:
        yield span
