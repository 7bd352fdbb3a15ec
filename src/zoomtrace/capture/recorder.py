"""The slot through which captured items reach the running node.

Capture never imports the runtime: ``zoomtrace.runtime`` puts its ``Node`` here at
``init()`` and takes it away at ``shutdown()``. Reading a module global is the cheapest
lookup the hot path can make, and ``None`` (no node) costs one comparison.
"""

from __future__ import annotations

from typing import Any, Protocol

#: Log levels by name, as stdlib ``logging`` numbers them.
LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


class Queue(Protocol):
    def put(self, item: Any) -> None: ...


class SecretKeys(Protocol):
    """The part of the node's scrubber that capture's integrations ask: is a key's value a secret?"""

    def is_sensitive(self, key: str) -> bool: ...


class Recorder(Protocol):
    """What capture needs from the running node (read-only: capture never replaces them)."""

    @property
    def pid(self) -> int: ...
    @property
    def levelno(self) -> int: ...
    @property
    def pipeline(self) -> Queue: ...
    @property
    def open_spans(self) -> dict[str, Any]:
        """Spans entered and not yet exited, by span id (recorded as interrupted if the node stops first)."""

    @property
    def scrubber(self) -> SecretKeys | None: ...
    @property
    def span_cpu(self) -> bool:
        """Whether spans record their thread CPU time (``cpu_ns``)."""

    def flush(self, timeout: float = 5.0) -> bool: ...


#: The running node of this process, or None before ``init()`` / after ``shutdown()``.
active: Recorder | None = None
