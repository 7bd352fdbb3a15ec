"""The slot through which captured items reach the running node.

Capture never imports the runtime: ``zoomtrace.runtime`` puts its ``Node`` here at
``init()`` and takes it away at ``shutdown()``. Reading a module global is the cheapest
lookup the hot path can make, and ``None`` (no node) costs one comparison.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from zoomtrace.capture.span import Span
    from zoomtrace.runtime.scrub import Scrubber

#: Log levels by name, as stdlib ``logging`` numbers them.
LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


class Queue(Protocol):
    def put(self, item: tuple[Any, ...]) -> None: ...


class Recorder(Protocol):
    """What capture needs from the running node (read-only: capture never replaces them)."""

    @property
    def pid(self) -> int: ...
    @property
    def levelno(self) -> int: ...
    @property
    def pipeline(self) -> Queue: ...
    @property
    def open_spans(self) -> dict[str, Span]: ...
    @property
    def scrubber(self) -> Scrubber | None: ...

    def flush(self, timeout: float = 5.0) -> bool: ...


#: The running node of this process, or None before ``init()`` / after ``shutdown()``.
active: Recorder | None = None
