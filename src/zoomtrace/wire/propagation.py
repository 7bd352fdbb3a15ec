"""W3C Trace Context (``traceparent``, ``tracestate``) and W3C Baggage, to the letter.

Specifications followed; each rule below cites the section it comes from:

* Trace Context, W3C Recommendation (Level 1, 2021), "Trace Context HTTP Headers Format"
  (sections "traceparent Header", "Versioning of traceparent", "tracestate Header",
  "tracestate Limits", "Mutating the tracestate Field") and "Processing Model"; for the
  ``tracestate`` key, Trace Context Level 2 ("Key": ``@`` is a plain key character), which the
  w3c/trace-context test suite (``test/test.py``, strict level 2) checks since its PR #584.
  The edge cases follow that suite.
* Baggage, W3C, "Baggage HTTP Header Format" (sections "Definition", "value", "Limits").

Parsing never raises: headers come from untrusted peers, and a bad header must at worst
restart the trace, never fail the request that carried it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast
from urllib.parse import quote, unquote

__all__ = [
    "BAGGAGE",
    "MAX_BAGGAGE_BYTES",
    "MAX_BAGGAGE_MEMBERS",
    "MAX_TRACESTATE_MEMBERS",
    "ON_BEHALF_OF_KEY",
    "SAMPLED",
    "TRACEPARENT",
    "TRACESTATE",
    "SpanContext",
    "extract",
    "format_baggage",
    "format_traceparent",
    "format_tracestate",
    "headers_of",
    "inject",
    "parse_baggage",
    "parse_traceparent",
    "parse_tracestate",
]

#: Header names, lower-case: "Vendors ... SHOULD send the header name in lowercase".
TRACEPARENT: Final = "traceparent"
TRACESTATE: Final = "tracestate"
BAGGAGE: Final = "baggage"

#: The baggage key that carries :attr:`SpanContext.on_behalf_of`.
ON_BEHALF_OF_KEY: Final = "zoom.on_behalf_of"
#: The attribute that keeps a span's W3C ``tracestate`` (as OTLP ``Span.trace_state`` carries it: inherited
#: from its parent), for the OTLP mapping to give back.
TRACE_STATE_ATTR: Final = "otel.trace_state"


@dataclass(frozen=True, slots=True)
class SpanContext:
    """A position in a trace received from elsewhere (another process, a message)."""

    trace_id: str
    span_id: str
    trace_flags: int = 1
    #: W3C tracestate members in header order, ``((key, value), ...)``.
    tracestate: tuple[tuple[str, str], ...] = ()
    #: W3C baggage members in header order, ``((key, value), ...)`` (values decoded).
    baggage: tuple[tuple[str, str], ...] = ()
    #: The user or tenant the work is done for, carried in baggage as ``zoom.on_behalf_of``.
    on_behalf_of: str | None = None
    remote: bool = True


#: "There can be a maximum of 32 list-members in a list" (tracestate Header Field Values).
MAX_TRACESTATE_MEMBERS: Final = 32
#: "Entries larger than 128 characters long SHOULD be removed first" (tracestate Limits).
_TRACESTATE_LONG_ENTRY: Final = 128
#: Baggage Limits: every platform must carry 64 list-members and 8192 bytes; we carry exactly that.
MAX_BAGGAGE_MEMBERS: Final = 64
MAX_BAGGAGE_BYTES: Final = 8192

#: OWS = *( SP / HTAB ) (RFC 7230 section 3.2.3); nothing else is optional whitespace.
_OWS: Final = " \t"

# --- traceparent: "traceparent Header Field Values" -----------------------------------------------
# HEXDIGLC only: upper-case hex is not in the grammar, so it is rejected, not folded.
_TRACEPARENT_00 = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_VERSION_PREFIX = re.compile(r"[0-9a-f]{2}-")
# "Versioning of traceparent": the first four fields, the flags followed by the end or a dash.
_TRACEPARENT_FUTURE = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-|\Z)")
_FUTURE_MIN_LENGTH: Final = 55
# What we send: version 00, ids not all zero, flags in one byte (so two hex digits).
_SENDABLE_00 = re.compile(r"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")
_ZERO_TRACE_ID: Final = "0" * 32
_ZERO_PARENT_ID: Final = "0" * 16
#: The ``sampled`` trace flag.
SAMPLED: Final = 0x01

# --- tracestate: "list-members" Key and Value ---------------------------------------------------
# Level 2 "Key" (Level 1's simple-key / multi-tenant-key split is gone; every Level 1 key is one):
# key = ( lcalpha / DIGIT ) 0*255( keychar ) ; keychar = lcalpha / DIGIT / "_" / "-"/ "*" / "/" / "@"
# value = 0*255(chr) nblk-chr ; nblk-chr = %x21-2B / %x2D-3C / %x3E-7E ; chr = %x20 / nblk-chr
_TS_KEY = r"[a-z0-9][a-z0-9_\-*/@]{0,255}"
_TS_VALUE = r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
_TS_MEMBER = re.compile(rf"({_TS_KEY})=({_TS_VALUE})")
_TS_KEY_RE = re.compile(_TS_KEY)
_TS_VALUE_RE = re.compile(_TS_VALUE)

# --- baggage: "Definition" ----------------------------------------------------------------------
# key = token (RFC 7230 section 3.2.6: 1*tchar)
# value = *baggage-octet ; baggage-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAGGAGE_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")
# Baggage "value": characters outside baggage-octet MUST be percent-encoded; '%' itself is
# encoded too, or a literal '%' would not survive the decoding on the other side.
_BAGGAGE_SAFE: Final = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '",;\\%')

_BYTES_LIKE: Final = (bytes, bytearray, memoryview)

C = TypeVar("C")


# --------------------------------------------------------------------------------------------------
# carriers
# --------------------------------------------------------------------------------------------------


def _text(raw: object) -> str | None:
    """A header name or value as ``str``; bytes are UTF-8 (Kafka), undecodable ones are dropped."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, _BYTES_LIKE):
        try:
            return bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


def _name(raw: object) -> str | None:
    """Header names compare case-insensitively ("Vendors MUST expect the header name in any case").

    Only ASCII is folded: ``str.lower`` would turn e.g. the Kelvin sign into ``k``, and no
    such spelling is a header name.
    """
    name = _text(raw)
    if name is None:
        return None
    return name.lower() if name.isascii() else name


def _pairs(carrier: object) -> Iterable[object]:
    """The ``(name, value)`` pairs of a carrier, whatever its shape; nothing for garbage."""
    if carrier is None or isinstance(carrier, (str, *_BYTES_LIKE)):
        return ()
    if isinstance(carrier, (list, tuple)):
        return carrier
    items = getattr(carrier, "items", None)
    if not callable(items):
        return ()
    result = items()
    return cast(Iterable[object], result) if isinstance(result, Iterable) else ()


def headers_of(carrier: object) -> dict[str, list[str]]:
    """Lower-case header name -> values in order, for any carrier; ``{}`` for garbage.

    One shape for every transport (HTTP frameworks, plain dicts, Kafka header lists), so the
    parsers only deal with strings. Repeated lines are kept apart: the spec needs to see them
    (several ``traceparent`` lines are invalid, several ``tracestate`` lines are combined).
    """
    headers: dict[str, list[str]] = {}
    try:
        for pair in _pairs(carrier):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                continue
            name = _name(pair[0])
            if name is None:
                continue
            raw = pair[1]
            values = raw if isinstance(raw, (list, tuple)) else (raw,)
            for value in values:
                text = _text(value)
                if text is not None:
                    headers.setdefault(name, []).append(text)
    except Exception:
        # A carrier whose items() or iteration fails is treated as carrying nothing.
        return {}
    return headers


# --------------------------------------------------------------------------------------------------
# traceparent
# --------------------------------------------------------------------------------------------------


def parse_traceparent(value: str) -> tuple[str, str, int] | None:
    """``(trace_id, parent_id, flags)`` of a ``traceparent`` value, ``None`` if it must be ignored.

    Version ``00`` must match its format exactly. Version ``ff`` is invalid. Higher versions are
    read by their first four fields ("Versioning of traceparent"), and of their flags only the
    ``sampled`` bit, since the meaning of the other bits belongs to that future version
    ("Processing Model": "will only parse flags values supported by the current version").
    """
    raw: object = value  # typed str, but callers hand over whatever a carrier held
    if not isinstance(raw, str):
        return None
    # A field value carries no leading or trailing OWS (RFC 7230 section 3.2.4); the test suite's
    # test_traceparent_ows_handling sends them and expects the header to be accepted.
    value = value.strip(_OWS)
    if _VERSION_PREFIX.match(value) is None:
        return None  # "the version prefix cannot be parsed" -> restart the trace
    version = value[:2]
    if version == "00":
        match = _TRACEPARENT_00.fullmatch(value)
        mask = 0xFF
    elif version == "ff":
        return None  # "Version ff is invalid"
    else:
        if len(value) < _FUTURE_MIN_LENGTH:
            return None  # "shorter than 55 characters": the regex below implies it; this is the cheap exit
        match = _TRACEPARENT_FUTURE.match(value)
        mask = SAMPLED
    if match is None:
        return None
    trace_id, parent_id, flags = match.groups()
    if trace_id == _ZERO_TRACE_ID or parent_id == _ZERO_PARENT_ID:
        return None  # "All bytes as zero ... is considered an invalid value"
    return trace_id, parent_id, int(flags, 16) & mask


def format_traceparent(trace_id: str, span_id: str, trace_flags: int) -> str | None:
    """A version ``00`` ``traceparent``, or ``None`` when the ids or flags cannot be sent.

    Ids are lower-cased (HEXDIGLC); all-zero ids and flags outside one byte give ``None``, as an
    invalid trace context is not added to outgoing requests ("Processing Model"). The one
    formatter of Zoom's outgoing trace context: HTTP and Kafka headers, and Kafka records.
    """
    given: tuple[object, object, object] = (trace_id, span_id, trace_flags)  # typed, but callers may err
    if not (isinstance(given[0], str) and isinstance(given[1], str) and isinstance(given[2], int)):
        return None
    value = f"00-{trace_id}-{span_id}-{trace_flags:02x}".lower()
    return value if _SENDABLE_00.fullmatch(value) else None


# --------------------------------------------------------------------------------------------------
# tracestate
# --------------------------------------------------------------------------------------------------


def _lines(values: object) -> list[str] | None:
    """Header lines as a list of ``str`` (a bare string is one line); ``None`` if not text."""
    if isinstance(values, str):
        return [values]
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, str) for v in values):
        return None
    return list(values)


def parse_tracestate(values: list[str]) -> tuple[tuple[str, str], ...] | None:
    """The members of the ``tracestate`` lines, in order; ``None`` if the header is invalid.

    Several lines are combined with ``,`` (RFC 7230 section 3.2.2, as "tracestate Header Field
    Values" requires). Empty and whitespace-only members are allowed and skipped; they do not
    count toward the 32 members. One malformed member or a 33rd member makes the whole header
    invalid, and the caller then drops all of it (the test suite discards such headers). A key
    seen again is not: the first entry (the leftmost, the most recent) is kept and the later
    ones are left out, since one entry per key may be sent on (test suite,
    test_tracestate_duplicated_keys: "kept as-is or one of them discarded"). Repeated entries
    still count toward the 32: the limit is on the header as received.
    """
    lines = _lines(values)
    if lines is None:
        return None
    members: dict[str, str] = {}
    count = 0
    for raw in ",".join(lines).split(","):
        item = raw.strip(_OWS)
        if not item:
            continue
        match = _TS_MEMBER.fullmatch(item)
        if match is None:
            return None
        count += 1
        if count > MAX_TRACESTATE_MEMBERS:
            return None
        members.setdefault(match.group(1), match.group(2))
    return tuple(members.items())


def _tracestate_member(member: object) -> tuple[str, str] | None:
    """``member`` as a valid ``(key, value)`` pair, or ``None``."""
    if not isinstance(member, tuple) or len(member) != 2:
        return None
    key, value = member
    if not (isinstance(key, str) and isinstance(value, str)):
        return None
    if _TS_KEY_RE.fullmatch(key) is None or _TS_VALUE_RE.fullmatch(value) is None:
        return None
    return key, value


def format_tracestate(
    members: Iterable[tuple[str, str]],
    ours: tuple[str, str] | None = None,
) -> str:
    """The ``tracestate`` to send: ``ours`` first, then the others in their order, at most 32.

    "Mutating the tracestate Field": a modified key moves to the left and unmodified pairs keep
    their order, so an existing entry with our key is removed before ours is put in front.
    "tracestate Limits": whole entries are dropped, those over 128 characters first (from the
    end), then from the end. Our own entry is never the one dropped. Invalid or repeated members
    are left out rather than sent. Raises ``ValueError`` if ``ours`` is not a valid member.
    """
    entries: list[tuple[str, str]] = []
    seen: set[str] = set()
    if ours is not None:
        checked = _tracestate_member(ours)
        if checked is None:
            raise ValueError(f"not a valid tracestate member: {ours!r}")
        ours = checked
        seen.add(ours[0])
    for member in members:
        valid = _tracestate_member(member)
        if valid is None or valid[0] in seen:
            continue
        seen.add(valid[0])
        entries.append(valid)
    room = MAX_TRACESTATE_MEMBERS - (ours is not None)
    excess = len(entries) - room
    if excess > 0:
        for index in range(len(entries) - 1, -1, -1):
            if excess == 0:
                break
            key, value = entries[index]
            if len(key) + 1 + len(value) > _TRACESTATE_LONG_ENTRY:
                del entries[index]
                excess -= 1
        if excess > 0:
            del entries[-excess:]
    if ours is not None:
        entries.insert(0, ours)
    return ",".join(f"{key}={value}" for key, value in entries)


# --------------------------------------------------------------------------------------------------
# baggage
# --------------------------------------------------------------------------------------------------


def _baggage_member(item: str) -> tuple[str, str] | None:
    """``(key, decoded value)`` of one list-member, or ``None`` if it breaks the grammar.

    list-member = key OWS "=" OWS value *( OWS ";" OWS property ); properties are checked
    (a member with a malformed one is malformed) but not kept: SpanContext has no place for them.
    """
    head, *properties = item.split(";")
    key, equals, value = head.partition("=")  # a token has no '=', so the first one splits
    if not equals:
        return None
    key, value = key.strip(_OWS), value.strip(_OWS)
    if _TOKEN.fullmatch(key) is None or _BAGGAGE_VALUE.fullmatch(value) is None:
        return None
    for prop in properties:
        prop_key, prop_equals, prop_value = prop.partition("=")
        if _TOKEN.fullmatch(prop_key.strip(_OWS)) is None:
            return None
        if prop_equals and _BAGGAGE_VALUE.fullmatch(prop_value.strip(_OWS)) is None:
            return None
    # "percent-encoded octet sequences that do not match the UTF-8 encoding scheme MUST be
    # replaced with the replacement code point (U+FFFD)"; '+' is a plain character, not a space.
    return key, unquote(value, encoding="utf-8", errors="replace")


def parse_baggage(values: list[str]) -> tuple[tuple[str, str], ...]:
    """The ``(key, value)`` members of the ``baggage`` lines, values percent-decoded, in order.

    Lines are combined with ``,``; invalid members are left out ("it MAY remove that entry").
    Duplicates are kept in order ("Uniqueness of keys ... is not guaranteed"). Limits apply to
    the combined lines: at most 64 members and 8192 bytes; a member that does not fit is
    dropped whole, never cut ("MUST NOT propagate any partial list-members").
    """
    lines = _lines(values)
    if lines is None:
        return ()
    members: list[tuple[str, str]] = []
    size = 0
    for raw in ",".join(lines).split(","):
        item = raw.strip(_OWS)
        if not item:
            continue
        member = _baggage_member(item)
        if member is None:
            continue
        # A valid member is ASCII, so its length is its size in bytes; +1 for the comma.
        cost = len(item) + (1 if members else 0)
        if size + cost > MAX_BAGGAGE_BYTES:
            continue
        members.append(member)
        size += cost
        if len(members) == MAX_BAGGAGE_MEMBERS:
            break
    return tuple(members)


def format_baggage(members: Iterable[tuple[str, str]]) -> str:
    """The ``baggage`` header for ``members``: values percent-encoded as UTF-8, within the limits.

    Keys that are not tokens cannot be sent (keys are never percent-encoded), so such members
    are left out, as are members past 64 or past 8192 bytes, whole.
    """
    parts: list[str] = []
    size = 0
    for member in cast(Iterable[object], members):
        if not isinstance(member, tuple) or len(member) != 2:
            continue
        key, value = member
        if not (isinstance(key, str) and isinstance(value, str)) or _TOKEN.fullmatch(key) is None:
            continue
        try:
            encoded = quote(value, safe=_BAGGAGE_SAFE, encoding="utf-8", errors="strict")
        except UnicodeEncodeError:
            continue  # a lone surrogate has no UTF-8 form
        part = f"{key}={encoded}"
        cost = len(part) + (1 if parts else 0)
        if size + cost > MAX_BAGGAGE_BYTES:
            continue
        parts.append(part)
        size += cost
        if len(parts) == MAX_BAGGAGE_MEMBERS:
            break
    return ",".join(parts)


# --------------------------------------------------------------------------------------------------
# extract / inject
# --------------------------------------------------------------------------------------------------


def extract(carrier: object) -> SpanContext | None:
    """The remote :class:`SpanContext` in ``carrier``, or ``None``; never raises.

    A single valid ``traceparent`` is required: several lines of it are invalid (it is not a
    list header, RFC 7230 section 3.2.2; test suite test_traceparent_duplicated). ``tracestate``
    is only read once ``traceparent`` is valid, and an invalid one is dropped without affecting
    the ``traceparent`` ("tracestate Header"). The ``zoom.on_behalf_of`` baggage member becomes
    ``on_behalf_of`` (the first one if repeated) and is not repeated in ``baggage``.
    """
    try:
        headers = headers_of(carrier)
        lines = headers.get(TRACEPARENT)
        if lines is None or len(lines) != 1:
            return None
        parsed = parse_traceparent(lines[0])
        if parsed is None:
            return None
        trace_id, parent_id, flags = parsed
        tracestate = parse_tracestate(headers.get(TRACESTATE, [])) or ()
        baggage = parse_baggage(headers.get(BAGGAGE, []))
        on_behalf_of = next((value for key, value in baggage if key == ON_BEHALF_OF_KEY), None)
        if on_behalf_of is not None:
            baggage = tuple(member for member in baggage if member[0] != ON_BEHALF_OF_KEY)
        return SpanContext(
            trace_id=trace_id,
            span_id=parent_id,
            trace_flags=flags,
            tracestate=tracestate,
            baggage=baggage,
            on_behalf_of=on_behalf_of,
            remote=True,
        )
    except Exception:
        return None


def _outgoing(ctx: SpanContext) -> dict[str, str | None]:
    """Header name -> value to set, or ``None`` for a header to remove."""
    headers: dict[str, str | None] = {}
    traceparent = format_traceparent(ctx.trace_id, ctx.span_id, ctx.trace_flags)
    if traceparent is not None:
        headers[TRACEPARENT] = traceparent
        # A tracestate left over in the carrier would belong to another traceparent.
        headers[TRACESTATE] = format_tracestate(ctx.tracestate) or None
    members = [member for member in ctx.baggage if member[:1] != (ON_BEHALF_OF_KEY,)]
    if ctx.on_behalf_of is not None:
        # First, so the limits never drop it.
        members.insert(0, (ON_BEHALF_OF_KEY, ctx.on_behalf_of))
    baggage = format_baggage(members)
    if baggage:
        headers[BAGGAGE] = baggage
    return headers


def _has_bytes_values(pairs: Iterable[object]) -> bool:
    """Whether a carrier already holds bytes values (a Kafka header list)."""
    return any(
        isinstance(pair, (tuple, list)) and len(pair) == 2 and isinstance(pair[1], _BYTES_LIKE) for pair in pairs
    )


def _replace_pairs(pairs: Iterable[object], headers: dict[str, str | None], as_bytes: bool) -> list[object]:
    """``pairs`` without the lines of ``headers`` (any case), then the new lines appended."""
    pairs = list(pairs)
    as_bytes = as_bytes or _has_bytes_values(pairs)
    kept: list[object] = [
        pair for pair in pairs if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and _name(pair[0]) in headers)
    ]
    for name, value in headers.items():
        if value is not None:
            kept.append((name, value.encode("ascii") if as_bytes else value))
    return kept


def inject(carrier: C, ctx: SpanContext, *, as_bytes: bool = False) -> C:
    """Write ``ctx`` into ``carrier`` and return it.

    Sets ``traceparent`` (version 00), ``tracestate`` when there is one and ``baggage`` when there
    are members or an ``on_behalf_of``; lines of those names in any case are replaced. A context
    whose ids are invalid writes no trace context ("Processing Model": an invalid trace context
    is not added to outgoing requests). Lists of pairs are changed in place; a tuple, being
    immutable, comes back as a new tuple. Values are bytes when ``as_bytes`` is set or the
    carrier already holds bytes values (Kafka headers). Raises ``TypeError`` for a carrier that
    cannot hold headers.
    """
    headers = _outgoing(ctx)
    if isinstance(carrier, list):
        carrier[:] = _replace_pairs(carrier, headers, as_bytes)
        return carrier
    if isinstance(carrier, tuple):
        return cast(C, tuple(_replace_pairs(carrier, headers, as_bytes)))
    target = cast(Any, carrier)
    if not (callable(getattr(target, "__setitem__", None)) and callable(getattr(target, "keys", None))):
        raise TypeError(f"cannot inject headers into {type(carrier).__name__}")
    values = getattr(target, "values", None)
    if not as_bytes and callable(values):
        as_bytes = any(isinstance(value, _BYTES_LIKE) for value in values())
    for key in list(target.keys()):
        if _name(key) in headers:
            with contextlib.suppress(KeyError):  # case-insensitive containers drop all spellings at once
                del target[key]
    for name, value in headers.items():
        if value is not None:
            target[name] = value.encode("ascii") if as_bytes else value
    return carrier
