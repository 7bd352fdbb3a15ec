"""Trace context through the application's own Kafka messages, with aiokafka (asyncio).

The helpers of ``zt.kafka`` for ``AIOKafkaProducer`` and ``AIOKafkaConsumer``::

    from zoomtrace.integrations import aiokafka as zt_aiokafka

    with zt.span("place order"):
        await zt_aiokafka.send_and_wait(producer, "orders", value=b"...", key=b"order-7")

    async for msg in consumer:
        with zt_aiokafka.consume_span(msg):       # "process orders", child of the producer's span
            zt.event(payment, type="PaymentCaptured", sources=[zt_aiokafka.record_id(msg)])

    async with contextlib.aclosing(zt_aiokafka.traced(consumer)) as messages:
        async for msg in messages:                # each message in its own span
            await handle(msg)

:func:`instrument` (installed by ``zoomtrace run``) makes every ``AIOKafkaProducer.send`` (and so
``send_and_wait``) carry the current trace context, with no change to the application. The headers,
the consumer span and its ``messaging.*`` attributes are those of ``zt.kafka`` (``_kafka`` holds them).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any, Final, TypeVar

from zoomtrace.capture.context import context_of, current
from zoomtrace.integrations._kafka import Headers, configure, consume_span, headers, record_id, span_for
from zoomtrace.wire import propagation

__all__ = ["configure", "consume_span", "headers", "instrument", "record_id", "send", "send_and_wait", "traced"]

M = TypeVar("M")
_MARK: Final = "_zoomtrace_original"


async def send(
    producer: Any, topic: str, value: Any = None, key: Any = None, headers: Headers | None = None, **kwargs: Any
) -> Any:
    """``await producer.send(topic, value, key, headers=..., **kwargs)`` with the current trace context added
    to the headers; returns aiokafka's delivery future, as ``send`` does."""
    return await producer.send(topic, value=value, key=key, headers=_headers(headers), **kwargs)


async def send_and_wait(
    producer: Any, topic: str, value: Any = None, key: Any = None, headers: Headers | None = None, **kwargs: Any
) -> Any:
    """``await producer.send_and_wait(...)`` with the current trace context added to the headers; returns the
    ``RecordMetadata`` of the acknowledged message."""
    return await producer.send_and_wait(topic, value=value, key=key, headers=_headers(headers), **kwargs)


_headers = headers  # ``send`` has a parameter of the same name


async def traced(
    messages: AsyncIterable[M], follows_from: bool | None = None, *, name: str | None = None
) -> AsyncIterator[M]:
    """Yield each message of ``messages`` (an ``AIOKafkaConsumer``) inside its own :func:`consume_span`.

    The span stays open while the loop body handles the message and ends when the next message is
    requested, or the loop ends. A loop that may be left early (``break``, an exception) should hold the
    iterator in ``contextlib.aclosing``: the last span then ends where the loop is left; otherwise asyncio
    closes the iterator later, in another task, and the span stays current in this one until then.
    """
    async for msg in messages:
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


Send = Callable[..., Awaitable[Any]]


def _carrying_context(original: Send) -> Send:
    signature = inspect.signature(original)
    if "headers" not in signature.parameters:
        raise TypeError(f"{original.__qualname__} takes no headers")

    @functools.wraps(original)
    async def send(*args: Any, **kwargs: Any) -> Any:
        if current.get() is not None:
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError:  # the application's mistake: aiokafka's own error says what it is
                return await original(*args, **kwargs)
            bound.arguments["headers"] = _with_context(bound.arguments.get("headers"))
            args, kwargs = bound.args, bound.kwargs
        return await original(*args, **kwargs)

    setattr(send, _MARK, original)
    return send


def _with_context(headers: Any) -> Any:
    """A copy of the application's headers with the current trace context; the application's own pairs as they
    were (a list it reuses is not changed), and headers aiokafka would refuse anyway left for it to refuse."""
    value = current.get()
    if value is None or not (headers is None or isinstance(headers, list | tuple)):
        return headers
    try:
        return propagation.inject(list(headers or ()), context_of(value), as_bytes=True)
    except Exception:  # malformed pairs: the send goes as the application wrote it
        return headers


def instrument() -> None:
    """Every ``AIOKafkaProducer.send`` (and ``send_and_wait``) adds the current trace context to the message's
    headers, replacing a stale ``traceparent``. Idempotent. Consuming needs a line of code (:func:`consume_span`
    or :func:`traced`): only the application knows where the handling of a message ends."""
    from aiokafka import AIOKafkaProducer

    if not hasattr(AIOKafkaProducer.send, _MARK):
        AIOKafkaProducer.send = _carrying_context(AIOKafkaProducer.send)
