"""Zero-code-change capture of stdlib ``logging``: every record joins the story."""

from __future__ import annotations

import logging
import threading
import weakref
from typing import ClassVar

from zoomtrace.capture import recorder
from zoomtrace.capture.context import current
from zoomtrace.capture.items import STDLOG

#: The record this thread's Zoom handlers last took: one that reaches two of them (one a ``dictConfig``
#: put on a logger, the root one ``init`` attaches) is recorded once. Logging calls every handler of a
#: record in the calling thread, one after the other; the record itself is left untouched, as the
#: application's other handlers see it.
_last = threading.local()
#: Set once a second handler is made (one a ``dictConfig`` names, besides the one ``init`` attaches): only
#: then may a record reach two of them, and only then does the hot path check.
_several = False


class ZoomHandler(logging.Handler):
    """Hands ``LogRecord`` objects to the pipeline; formatting happens on the worker thread.

    It records nothing before ``zt.init()`` nor below the node's level, whatever its own level.
    """

    _made: ClassVar[int] = 0

    def __init__(self, level: int | str = logging.NOTSET) -> None:
        global _several
        super().__init__(level)
        ZoomHandler._made += 1
        _several = ZoomHandler._made > 1

    def handle(self, record: logging.LogRecord) -> bool:
        # No handler lock and no filters to run per record: the pipeline's queue is thread-safe.
        node = recorder.active
        if node is not None and record.levelno >= self.level and record.levelno >= node.levelno:
            if _several:
                last = getattr(_last, "record", None)
                if last is not None and last() is record:
                    return True
                _last.record = weakref.ref(record)
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
    keep_attached()
    _handler.setLevel(level)
    if root.level > level:
        root.setLevel(level)
    return _handler


def keep_attached() -> None:
    """Put the handler back on the root logger if a logging configuration took it away."""
    root = logging.getLogger()
    if _handler is not None and _handler not in root.handlers:
        root.addHandler(_handler)


def release() -> None:
    global _handler
    if _handler is not None:
        logging.getLogger().removeHandler(_handler)
        _handler = None
