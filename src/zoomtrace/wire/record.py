"""The record: one model for logs, data events, raw data, spans and node lifecycle.

Every stage after capture speaks this model. The Kafka codec and the OTLP mapping
derive their ``zoom.<field>`` headers and attributes from its fields, so a new
optional field of plain type (text, number, list) travels without a change there.
"""

from __future__ import annotations

import itertools
import os
import random
import time
from typing import Any, Final

import msgspec

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
_RAND_MASK: Final = (1 << 74) - 1


def _seed() -> None:
    """A new random start for this process's ids (also in a forked child: ids stay unique across them)."""
    global _counter, _prefix
    _counter = itertools.count(int.from_bytes(os.urandom(10)) & _RAND_MASK)
    _prefix = (-1, -1, "")


_counter: itertools.count[int]
#: ``(ms, high random bits, "tttttttt-tttt-7aaa-Vbbb-")``: one tuple, so a thread never reads a torn pair.
_prefix: tuple[int, int, str]
_seed()
os.register_at_fork(after_in_child=_seed)


def uuid7(ts_ns: int | None = None) -> str:
    """A time-sortable RFC 9562 UUIDv7 string, from ``ts_ns`` (default: now).

    The 74 random bits are RFC 9562 section 6.2's "monotonic random" (method 2): a random start per
    process, incremented by one per id (``itertools.count``: atomic under the GIL, so threads never
    share a value), reseeded in forked children. Within a millisecond only the last 48 bits change,
    so the rest of the string is formatted once per millisecond: half the cost of formatting it all.
    """
    ms = (time.time_ns() if ts_ns is None else ts_ns) // 1_000_000
    r = next(_counter) & _RAND_MASK
    high = r >> 48
    cached = _prefix
    if cached[0] != ms or cached[1] != high:
        cached = _set_prefix(ms, high)
    return cached[2] + (r & 0xFFFFFFFFFFFF).to_bytes(6).hex()  # half the cost of f"{n:012x}"


def _set_prefix(ms: int, high: int) -> tuple[int, int, str]:
    global _prefix
    text = "%08x-%04x-%04x-%04x-" % (  # noqa: UP031 (one formatting call is the fastest way)
        ms >> 16 & 0xFFFFFFFF,
        ms & 0xFFFF,
        0x7000 | high >> 14,
        0x8000 | (high & 0x3FFF),
    )
    _prefix = (ms, high, text)
    return _prefix


def new_trace_id() -> str:
    """32 lower-case hex characters, never all zero (W3C forbids it)."""
    return (_bits(128) or 1).to_bytes(16).hex()  # half the cost of f"{n:032x}"


def new_span_id() -> str:
    """16 lower-case hex characters, never all zero (W3C forbids it)."""
    return (_bits(64) or 1).to_bytes(8).hex()


encoder: Final = msgspec.msgpack.Encoder()
batch_decoder: Final = msgspec.msgpack.Decoder(list[Record])
json_encoder: Final = msgspec.json.Encoder()
