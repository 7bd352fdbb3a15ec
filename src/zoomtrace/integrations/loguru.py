"""A loguru sink that puts every loguru message into the story::

    from loguru import logger
    logger.add(zoomtrace.integrations.loguru.sink, level="INFO")

The record keeps loguru's own file, line and function, its ``extra`` dict as attrs
and the exception, under the current span. Use it without ``enqueue=True`` so the
sink runs in the logging thread and sees the current span.
"""

from __future__ import annotations

from typing import Any

from zoomtrace.capture import recorder
from zoomtrace.capture.context import current
from zoomtrace.capture.items import FOREIGN


def sink(message: Any) -> None:
    node = recorder.active
    if node is None:
        return
    r = message.record
    exc = r["exception"].value if r["exception"] is not None else None
    node.pipeline.put(
        (
            FOREIGN,
            int(r["time"].timestamp() * 1e9),
            r["file"].path,
            r["line"],
            r["function"],
            r["name"],
            r["level"].name,
            r["message"],
            dict(r["extra"]),
            current.get(),
            exc,
        )
    )
