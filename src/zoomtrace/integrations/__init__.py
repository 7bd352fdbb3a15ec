"""Integrations: other libraries' logs, calls and messages join the story.

Logging libraries: ``structlog.processor`` and ``loguru.sink`` record their log lines
(stdlib ``logging`` needs nothing: ``zt.init`` captures it). HTTP: ``requests.instrument()``,
``httpx.TracingTransport``, ``wsgi.ZoomMiddleware`` and ``asgi.ZoomMiddleware`` make each
outgoing call a *client* span carrying the W3C headers, and each incoming request a *server*
span continuing the caller's trace, with OpenTelemetry's ``http.*`` / ``url.*`` attributes
(``_http`` holds what they share); ``django`` is a middleware and an app starting Zoom from
settings. ``sqlalchemy.instrument()`` makes each SQL statement a client span, and
``logging.ZoomHandler`` is the handler class a ``dictConfig`` names. Kafka: ``kafka``,
reached as ``zt.kafka``, carries the trace through the application's own messages
(``produce``, ``headers``, ``consume_span``, ``traced``), and ``aiokafka`` does the same for
asyncio (``_kafka`` holds what they share). Celery: ``celery.instrument()`` carries the trace
from the publisher to the task's span in the worker. Each module imports its library only when
used; ``import zoomtrace`` imports none of them.
"""
