"""Zoom's own problems, told once: one line on stderr per kind of problem, the application keeps running.

Used on the pipeline's worker and in sinks, where raising would lose records or hurt the
observed application, and printing every occurrence would flood its terminal.
"""

from __future__ import annotations

import contextlib
import sys


class WarnOnce:
    """Writes ``zoomtrace: <message>`` the first time each ``key`` is seen (again after ``forget(key)``)."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def __call__(self, key: str, message: str) -> None:
        if key not in self._seen:
            self._seen.add(key)
            say(f"{message} (further such warnings suppressed)")

    def forget(self, key: str) -> None:
        """Let ``key`` be told again (a problem that went away and may come back)."""
        self._seen.discard(key)


def say(message: str) -> None:
    """One line on stderr, never raising (stderr may be closed or a broken pipe)."""
    with contextlib.suppress(Exception):
        sys.stderr.write(f"zoomtrace: {message}\n")
