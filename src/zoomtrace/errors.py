"""Zoom's errors: each message says what to do next."""

from __future__ import annotations


class ZoomError(Exception):
    """Base class of every error Zoom raises on purpose."""


class ConfigError(ZoomError):
    """A setting (sink URL, home, limit) is invalid."""


class NotFound(ZoomError):
    """A trace, record or node id is not in the store."""


class StoreError(ZoomError):
    """The store is missing, corrupt or busy."""


class ReadOnlySQL(ZoomError):
    """A query tried to change the store through the read-only SQL interface."""


class TooLarge(ZoomError):
    """What was asked for is too large to answer in one piece (the whole story of a huge trace): ask in parts."""


class AmbiguousId(ConfigError):
    """A shortened id is the start (or end) of several ids: its message lists them; a longer one picks one."""

    def __init__(self, message: str, candidates: list[str]) -> None:
        super().__init__(message)
        self.candidates = candidates
