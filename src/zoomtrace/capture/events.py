"""Data as events: business data and raw payloads as first-class records with lineage."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final

from zoomtrace._native import speedups
from zoomtrace.capture import recorder
from zoomtrace.capture.context import current
from zoomtrace.capture.items import EVENT, RAW
from zoomtrace.wire.record import uuid7

_time = time.time_ns


def event(
    obj: Any,
    /,
    type: str | None = None,
    sources: Iterable[str] = (),
    *,
    attrs: Mapping[str, Any] | None = None,
    **fields: Any,
) -> str:
    """Record a data event and return its record id (pass it in ``sources`` of derived events).

    ``obj`` may be a dataclass, a pydantic model, a msgspec Struct or a mapping; it
    becomes the event's JSON payload. ``type`` defaults to its class name. It is encoded
    off the caller's thread: do not mutate it after the call (pass a copy if you will).
    Attributes are the keywords and/or the ``attrs`` mapping, which is how to record one
    named ``type``, ``sources`` or ``attrs``; keywords win on a clash.
    """
    ts = _time()
    record_id = uuid7(ts)
    node = recorder.active
    if node is not None:
        if attrs is not None:
            fields = {**attrs, **fields}
        f = sys._getframe(1)
        node.pipeline.put(
            # Sources are made text by the encoder: a value that cannot be printed is its problem, not the caller's.
            (EVENT, record_id, ts, f.f_code, f.f_lasti, type, obj, tuple(sources), fields, current.get())
        )
    return record_id


#: ``event`` in Python: the reference for the C one (``_speedups_caller.c``), which hands it the calls it would
#: refuse (no payload, an argument given twice...), so that the errors are its.
python_event: Final = event

if speedups is not None:
    speedups.configure_event(recorder.__dict__, current, python_event, EVENT)
    event = speedups.event  # the same calls as python_event (tests/test_speedups_event.py)


def raw(
    data: bytes | bytearray | memoryview | str,
    /,
    format: str | None = None,
    type: str = "raw",
    *,
    attrs: Mapping[str, Any] | None = None,
    **fields: Any,
) -> str:
    """Record a raw payload (stored once by digest, size-limited) and return its record id.

    ``data`` is bytes (or any buffer) or text, stored as UTF-8; ``format`` defaults to
    ``"text"`` for text and ``"bin"`` otherwise. Anything else is stored as its ``repr()``,
    marked ``raw.unserialisable``. Attributes are given as to :func:`event` (``attrs`` for
    one named ``format`` or ``type``).
    """
    ts = _time()
    record_id = uuid7(ts)
    node = recorder.active
    if node is not None:
        if attrs is not None:
            fields = {**attrs, **fields}
        f = sys._getframe(1)
        payload = _payload(data)
        if format is None:
            format = "text" if isinstance(data, str) else "bin"
        node.pipeline.put((RAW, record_id, ts, f.f_code, f.f_lasti, type, payload, format, fields, current.get()))
    return record_id


def _payload(data: object) -> object:
    """The bytes of ``data``, copied now (a bytearray may change after the call); other objects as given."""
    if isinstance(data, str):
        return data.encode("utf-8", "surrogatepass")  # lone surrogates too: raw data keeps what it was given
    try:
        return bytes(memoryview(data))  # type: ignore[arg-type]
    except TypeError:
        return data  # the encoder keeps its repr, marked
