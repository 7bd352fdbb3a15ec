"""Shorter turns of the GIL while two threads of Zoom's bulk work share it."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from typing import Final

#: The GIL's turn while a store writer and its reader run side by side. The writer runs one engine statement
#: after another (DuckDB releases the GIL inside each) and needs the GIL back between two; with Python's 5 ms
#: turn it waited up to that long each time the reader was at work in Python, a dozen times a batch. With
#: 0.5 ms, spool ingest of 300,000 records went from 151-181 k to 183-217 k records/s (bench/README.md).
SHORT_TURN_S: Final = 0.0005

_lock = threading.Lock()
_users = 0
_saved = 0.0


@contextlib.contextmanager
def short_gil_turns() -> Iterator[None]:
    """``sys.setswitchinterval(SHORT_TURN_S)`` for the duration, unless it is shorter already; the interval
    is the process's, so the first of overlapping users sets it and the last one gives the old one back."""
    global _users, _saved
    with _lock:
        if _users == 0:
            _saved = sys.getswitchinterval()
            sys.setswitchinterval(min(_saved, SHORT_TURN_S))
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                sys.setswitchinterval(_saved)
