"""Carry the current span into threads and thread pools, as asyncio already does for tasks.

``threading.Thread`` and ``concurrent.futures.ThreadPoolExecutor`` (hence
``loop.run_in_executor``) start work in an empty ``contextvars`` context, so a
span opened there would start a new trace. ``install()`` makes them run the work
in a copy of the context that started or submitted it; copying is O(1).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

_original_start = threading.Thread.start
_original_submit = ThreadPoolExecutor.submit
_installed = False


def _start(self: threading.Thread) -> None:
    run = self.run
    context = contextvars.copy_context()
    self.run = lambda: context.run(run)  # type: ignore[method-assign]
    _original_start(self)


def _submit(self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
    return _original_submit(self, contextvars.copy_context().run, fn, *args, **kwargs)


def install() -> None:
    """Idempotent; called by ``zt.init(propagate_to_threads=True)`` (the default)."""
    global _installed
    if not _installed:
        _installed = True
        threading.Thread.start = _start  # type: ignore[method-assign]
        ThreadPoolExecutor.submit = _submit  # type: ignore[method-assign, assignment]
