"""Stopping a long-running collect command cleanly on SIGTERM or SIGINT (the Kafka collector, the OTLP receiver)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """While inside, SIGTERM and SIGINT set ``stop``, so the command finishes its work in hand and exits.

    A second signal acts as it did before (a stop that hangs can still be interrupted). Only the main
    thread can catch signals: called from another thread, this changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[signal.Signals, Any] = {}

    def handler(signum: int, _frame: FrameType | None) -> None:
        stop.set()
        sig = signal.Signals(signum)
        signal.signal(sig, previous[sig])

    for sig in (signal.SIGTERM, signal.SIGINT):
        old = signal.signal(sig, handler)
        previous[sig] = signal.SIG_DFL if old is None else old  # None: a handler not set from Python
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
