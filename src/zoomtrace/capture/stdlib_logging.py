"""Zero-code-change capture of stdlib ``logging``: every record joins the story."""

from __future__ import annotations

import logging

from zoomtrace.capture import recorder
from zoomtrace.capture.context import current
from zoomtrace.capture.items import STDLOG


class ZoomHandler(logging.Handler):
    """Hands ``LogRecord`` objects to the pipeline; formatting happens on the worker thread."""

    def handle(self, record: logging.LogRecord) -> bool:
        # No handler lock and no filters to run per record: the pipeline's queue is thread-safe.
        node = recorder.active
        if node is not None and record.levelno >= self.level:
            node.pipeline.put((STDLOG, record, current.get()))
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)


_handler: ZoomHandler | None = None


def capture(level: int = logging.INFO) -> ZoomHandler:
    """Attach Zoom's handler to the root logger, lowering (never raising) the root level to ``level``.

    Called again, it puts the handler back if the application's logging set-up removed it (Celery's
    worker empties the root logger's handlers; so does ``dictConfig`` with root handlers).
    """
    global _handler
    root = logging.getLogger()
    if _handler is None:
        _handler = ZoomHandler()
    if _handler not in root.handlers:
        root.addHandler(_handler)
    _handler.setLevel(level)
    if root.level > level:
        root.setLevel(level)
    return _handler


def release() -> None:
    global _handler
    if _handler is not None:
        logging.getLogger().removeHandler(_handler)
        _handler = None
