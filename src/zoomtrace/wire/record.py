"""The record: one model for logs, data events, raw data, spans and node lifecycle.

Every stage after capture speaks this model. The Kafka codec and the OTLP mapping
derive their ``zoom.<field>`` headers and attributes from its fields, so a new
optional field of plain type (text, number, list) travels without a change there.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, Final

import msgspec

from zoomtrace._native import speedups

#: Bumped whenever a field changes meaning or is removed (adding optional fields is compatible).
SCHEMA_VERSION: Final = 1

KINDS: Final[tuple[str, ...]] = ("log", "event", "raw", "span", "node")


class Code(msgspec.Struct, omit_defaults=True, array_like=True, gc=False):
    """Where a record was computed.

    ``file`` is relative to its git repository root (POSIX separators), or
    ``dist==version:module/path.py`` for installed code, or absolute when neither applies.
    """

    file: str
    line: int
    function: str
    commit: str | None = None
    dirty: bool = False


class Link(msgspec.Struct, array_like=True, gc=False):
    """A follows-from link to another span."""

    trace_id: str
    span_id: str


class Frame(msgspec.Struct, array_like=True, gc=False):
    file: str
    line: int
    function: str


class Error(msgspec.Struct, omit_defaults=True, gc=False):
    type: str
    message: str
    frames: list[Frame] = []


class Record(msgspec.Struct, omit_defaults=True, kw_only=True, gc=False):
    """One fact in a story. Optional fields are omitted on the wire when empty."""

    id: str
    kind: str
    type: str
    ts_ns: int
    node_id: str
    v: int = SCHEMA_VERSION
    end_ns: int | None = None
    trace_id: str | None = None
    span_id: str | None = None
    parent_span_id: str | None = None
    links: list[Link] = []
    on_behalf_of: str | None = None
    code: Code | None = None
    level: str | None = None
    message: str | None = None
    template: str | None = None
    attrs: dict[str, Any] = {}
    payload: Any = None
    sources: list[str] = []
    error: Error | None = None
    status: str | None = None
    cpu_ns: int | None = None
    thread: str | None = None


# random.getrandbits (reseeded by CPython in forked children) is several times faster
# than os.urandom, which costs a system call per id.
_bits = random.getrandbits
#: The last 80 bits of a UUIDv7 from 80 random ones: version 7 in the top 4, variant 0b10 in bits 63-62.
_V7_KEEP: Final = ((1 << 80) - 1) ^ (0xF << 76) ^ (0x3 << 62)
_V7_SET: Final = (0x7 << 76) | (0x2 << 62)
#: ``(ms, "tttttttt-tttt-")``: one tuple, so that a thread never reads a torn pair.
_prefix: tuple[int, str] = (-1, "")


def _uuid7_python(ts_ns: int | None = None) -> str:
    """A time-sortable RFC 9562 UUIDv7 string, from ``ts_ns`` (default: now), with 74 random bits.

    The time part is formatted once per millisecond; the rest is one ``to_bytes().hex()`` and three
    slices: less than half the cost of formatting the five groups each time. The random bits stay
    random (not a counter): the start of an id names one record, as ``zoomtrace lineage`` expects.
    """
    global _prefix
    ms = (time.time_ns() if ts_ns is None else ts_ns) // 1_000_000
    cached = _prefix
    if cached[0] != ms:
        cached = _prefix = (ms, "%08x-%04x-" % (ms >> 16 & 0xFFFFFFFF, ms & 0xFFFF))  # noqa: UP031 (fastest)
    tail = (_bits(80) & _V7_KEEP | _V7_SET).to_bytes(10).hex()
    return f"{cached[1]}{tail[:4]}-{tail[4:8]}-{tail[8:]}"


#: ``_uuid7_python``, in C where the speedups are built (``zoomtrace._native``): 0.05 µs instead of 0.5.
uuid7: Callable[..., str] = _uuid7_python if speedups is None else speedups.uuid7


def _new_trace_id_python() -> str:
    """32 lower-case hex characters, never all zero (W3C forbids it)."""
    return (_bits(128) or 1).to_bytes(16).hex()  # half the cost of f"{n:032x}"


def _new_span_id_python() -> str:
    """16 lower-case hex characters, never all zero (W3C forbids it)."""
    return (_bits(64) or 1).to_bytes(8).hex()


#: A new trace id and span id; in C where the speedups are built, from uuid7's generator (a span's start
#: makes one or two: 0.12-0.15 µs each in Python).
new_trace_id: Callable[[], str] = _new_trace_id_python if speedups is None else speedups.new_trace_id
new_span_id: Callable[[], str] = _new_span_id_python if speedups is None else speedups.new_span_id


#: Payload types kept as bytes (raw data, file snapshots): stored as blobs, and no JSON can hold them.
BINARY: Final[frozenset[type]] = frozenset({bytes, bytearray, memoryview})

encoder: Final = msgspec.msgpack.Encoder()
batch_decoder: Final = msgspec.msgpack.Decoder(list[Record])
json_encoder: Final = msgspec.json.Encoder()
json_decoder: Final = msgspec.json.Decoder(Record)
