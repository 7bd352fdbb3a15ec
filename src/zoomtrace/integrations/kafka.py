"""Trace context through the application's own Kafka messages, with confluent-kafka (``zt.kafka``).

Producer side: :func:`produce` adds the current trace context (W3C ``traceparent``,
``tracestate``, ``baggage``) to the message headers and hands the message to a
confluent-kafka ``Producer``; :func:`headers` does the same for any client.

Consumer side: :func:`consume_span` opens a span per consumed message, continuing the trace
of the message (child of the producing span, or a follows-from link), with OpenTelemetry
``messaging.*`` attributes; :func:`traced` wraps an iterable of messages::

    for msg in zt.kafka.traced(iter(lambda: consumer.poll(1.0), object())):
        handle(msg)                       # runs inside the message's span

Works with confluent-kafka ``Message`` objects (``topic()``, ``headers()``, ...) and with
aiokafka ``ConsumerRecord`` objects (``topic``, ``headers``, ... attributes) alike; for aiokafka's
async producer and consumer, ``zoomtrace.integrations.aiokafka`` has the same helpers as coroutines.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from zoomtrace.integrations._kafka import Headers, configure, consume_span, headers, record_id, span_for

__all__ = ["configure", "consume_span", "headers", "produce", "record_id", "traced"]

M = TypeVar("M")


def produce(
    producer: Any, topic: str, value: Any = None, key: Any = None, headers: Headers | None = None, **kwargs: Any
) -> None:
    """``producer.produce(topic, value, key, headers=..., **kwargs)`` with the current trace context
    added to the headers (``traceparent`` and, when set, ``tracestate`` and ``baggage``)."""
    producer.produce(topic, value=value, key=key, headers=_headers(headers), **kwargs)


_headers = headers  # ``produce`` has a parameter of the same name


def traced(
    messages: Iterable[M], follows_from: bool | None = None, *, skip_errors: bool = True, name: str | None = None
) -> Iterator[M]:
    """Yield each message of ``messages`` inside its own :func:`consume_span`.

    The span stays open while the loop body handles the message and ends when the next message
    is requested (or the loop ends). ``None`` (a poll timeout) is skipped; confluent-kafka error
    events (``msg.error()`` set) are skipped when ``skip_errors``, else yielded without a span.
    """
    for msg in messages:
        if msg is None:
            continue
        error = getattr(msg, "error", None)
        if callable(error) and error() is not None:
            if not skip_errors:
                yield msg
            continue
        span = span_for(msg, follows_from, name, {}, 2)
        span.__enter__()
        try:
            yield msg
        except GeneratorExit:
            span.__exit__(None, None, None)  # the consumer left the loop: not an error of this message
            raise
        except BaseException as exc:
            span.__exit__(type(exc), exc, exc.__traceback__)
            raise
        span.__exit__(None, None, None)
