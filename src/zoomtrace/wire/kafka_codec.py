"""Records as Kafka messages, and back: the one mapping shared by the Kafka sink and the collector.

Topics
    ``{env}.{group}.{kind}`` by default (kinds ``log``, ``event``, ``raw``, ``span``, ``node``);
    node lifecycle records also go to ``{env}.zoom.node`` so one topic lists every process of an
    environment. Names are made legal for Kafka (``[A-Za-z0-9._-]``, at most 249 characters).

Key
    The record's ``trace_id``, so one trace's records stay in order on one partition; records
    outside any trace are keyed by ``node_id`` (one process's untraced records stay in order).

Value and headers, by ``zoom.encoding``
    ``json`` (data events): the value is the event payload as JSON, exactly the business message;
    every other field of the record travels in a ``zoom.<field>`` header, derived from ``Record``'s
    fields (text as UTF-8; integers in decimal; anything else, such as ``attrs``, ``sources``,
    ``links`` and ``error``, as JSON; None and empty lists and mappings left out; ``code`` flattened
    into ``zoom.code.file``, ``.line``, ``.function``, ``.commit``, ``.dirty``), plus W3C ``traceparent``
    (and ``baggage`` for ``on_behalf_of``) so any consumer continues the trace. ``zoom.service``,
    ``zoom.env`` and ``zoom.group`` name the producing node (informational).

    ``json-seq`` (every other kind): the value is the whole record as one JSON text of a JSON text
    sequence (RFC 7464: an ASCII record separator, 0x1E, the record's JSON as the spool writes it, a line
    feed), so the collector hands it to the store's bulk insert as it is, the spool's way. No JSON text
    starts with 0x1E, so that first byte tells a record from a business payload without the headers.
    Headers repeat ``zoom.kind``, ``zoom.id`` and ``zoom.type`` for routing without decoding, and carry
    ``traceparent`` when the record belongs to a trace.

    ``msgpack``: the same with the record as msgpack (``record.encoder``), for records whose payload is
    bytes (raw data, file snapshots), which JSON cannot hold. Earlier Zoom producers sent every record
    so; such messages are still read.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from types import NoneType, UnionType
from typing import Any, Final, NamedTuple, Union, get_args, get_origin

import msgspec

from zoomtrace.wire.propagation import ON_BEHALF_OF_KEY, SAMPLED, format_baggage, format_traceparent
from zoomtrace.wire.record import BINARY, KINDS, Code, Record, encoder, json_decoder, json_encoder

__all__ = [
    "DEFAULT_MAX_VALUE_BYTES",
    "DEFAULT_NODE_TOPIC",
    "DEFAULT_TOPIC",
    "ENCODING",
    "MalformedMessage",
    "TopicStrategy",
    "decode",
    "decode_line",
    "decode_message",
    "encode",
    "header",
    "legal_topic",
    "record_line",
]

ENCODING: Final = "zoom.encoding"
JSON: Final = b"json"
JSON_SEQ: Final = b"json-seq"
MSGPACK: Final = b"msgpack"
#: RFC 7464's record separator, which begins a ``json-seq`` value; the record's JSON object follows it.
RS: Final = b"\x1e"
_RECORD_START: Final = RS + b"{"
_LF: Final = 0x0A
DEFAULT_TOPIC: Final = "{env}.{group}.{kind}"
DEFAULT_NODE_TOPIC: Final = "{env}.zoom.node"
#: The collector refuses values larger than this (a Zoom producer never makes one by default).
DEFAULT_MAX_VALUE_BYTES: Final = 8 * 1024 * 1024
#: Headers larger than this in total mark a message as malformed.
MAX_HEADER_BYTES: Final = 1024 * 1024

#: Kafka headers as confluent-kafka takes and gives them.
Headers = list[tuple[str, str | bytes | None]]

_ILLEGAL = re.compile(r"[^A-Za-z0-9._-]")
_MAX_TOPIC: Final = 249


class MalformedMessage(ValueError):
    """A message on a Zoom topic that is not a Zoom record; ``reason`` is a short category."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def legal_topic(name: str) -> str:
    """``name`` with every character Kafka does not allow replaced by ``_``, cut to 249 characters."""
    name = _ILLEGAL.sub("_", name)[:_MAX_TOPIC]
    return "_" if name in ("", ".", "..") else name


class TopicStrategy:
    """Which topics a record of each kind goes to, for one producing node.

    ``template`` may use ``{env}``, ``{group}``, ``{kind}`` and ``{service}``; ``node_template``
    (empty to disable) is the extra topic of node lifecycle records.
    """

    def __init__(
        self,
        env: str,
        group: str,
        service: str = "",
        template: str = DEFAULT_TOPIC,
        node_template: str = DEFAULT_NODE_TOPIC,
    ) -> None:
        self.env, self.group, self.service = env, group, service
        self.template, self.node_template = template, node_template
        self._cache: dict[str, tuple[str, ...]] = {}
        for kind in KINDS:
            self.topics(kind)  # fail early on a bad template

    def _name(self, template: str, kind: str) -> str:
        try:
            name = template.format(env=self.env, group=self.group, kind=kind, service=self.service)
        except (KeyError, IndexError, ValueError) as exc:
            from zoomtrace.errors import ConfigError

            raise ConfigError(
                f"bad Kafka topic template {template!r} ({exc}): use {{env}}, {{group}}, {{kind}}, {{service}}"
            ) from None
        return legal_topic(name)

    def topics(self, kind: str) -> tuple[str, ...]:
        found = self._cache.get(kind)
        if found is None:
            names = [self._name(self.template, kind)]
            if kind == "node" and self.node_template:
                extra = self._name(self.node_template, kind)
                if extra not in names:
                    names.append(extra)
            found = self._cache[kind] = tuple(names)
        return found


# -- the zoom.<field> headers of a data event -----------------------------------------------------


class _Header(NamedTuple):
    """How one record field travels in its ``zoom.<field>`` header."""

    name: str
    header: str
    #: ``str`` (sent as UTF-8 text) or ``int`` (in decimal); None: sent as JSON, read back by ``decoder``.
    scalar: type | None
    required: bool
    decoder: msgspec.json.Decoder[Any]


#: Fields without a ``zoom.<field>`` header: the payload is the value, ``code`` is flattened.
_NOT_HEADERS: Final = frozenset({"payload", "code"})


def _scalar(annotation: Any) -> type | None:
    """``str`` or ``int`` for a field of that type (optional or not), None for one sent as JSON."""
    union = get_origin(annotation) in (Union, UnionType)
    types = (set(get_args(annotation)) if union else {annotation}) - {NoneType}
    return types.pop() if types in ({str}, {int}) else None


#: Every other field of ``Record``, in its order: a new field needs no change here.
_HEADERS: Final = tuple(
    _Header(f.name, f"zoom.{f.name}", _scalar(f.type), f.required, msgspec.json.Decoder(f.type))
    for f in msgspec.structs.fields(Record)
    if f.name not in _NOT_HEADERS
)


# -- encoding ------------------------------------------------------------------------------------


def _traceparent(record: Record) -> bytes | None:
    """W3C ``traceparent`` of a record in a trace; Zoom keeps every record, so it is sampled."""
    trace_id, span_id = record.trace_id, record.span_id
    if type(trace_id) is str and type(span_id) is str:
        return _sampled_traceparent(trace_id, span_id)
    return None


@functools.lru_cache(maxsize=4096)
def _sampled_traceparent(trace_id: str, span_id: str) -> bytes | None:
    """Remembered: the records of one span (its logs, its events, the span itself) come one after the other,
    and formatting and checking a ``traceparent`` costs ≈1 µs of the sink's worker."""
    value = format_traceparent(trace_id, span_id, SAMPLED)
    return value.encode("ascii") if value is not None else None


def _json(value: Any) -> bytes:
    try:
        return json_encoder.encode(value)
    except (TypeError, ValueError, OverflowError):
        # sanitize_payload makes payloads JSON-safe; this only guards against a caller that bypassed it.
        return msgspec.json.encode(value, enc_hook=repr)


def key_of(record: Record) -> bytes:
    return (record.trace_id or record.node_id).encode()


def encode(record: Record, node: dict[str, str] | None = None) -> tuple[bytes, bytes, Headers]:
    """``(key, value, headers)`` of the message for ``record``.

    ``node`` (``service``, ``env``, ``group``) adds informational headers to data events.
    """
    if record.kind == "event":
        return key_of(record), _json(record.payload), event_headers(record, node)
    binary = type(record.payload) in BINARY
    headers: Headers = [
        (ENCODING, MSGPACK if binary else JSON_SEQ),
        ("zoom.kind", record.kind.encode()),
        ("zoom.id", record.id.encode()),
        ("zoom.type", record.type.encode()),
    ]
    tp = _traceparent(record)
    if tp is not None:
        headers.append(("traceparent", tp))
    value = encoder.encode(record) if binary else RS + json_encoder.encode(record) + b"\n"
    return key_of(record), value, headers


#: Each header field's place in ``msgspec.structs.astuple(record)``, its header, and its ``scalar`` (``_HEADERS``).
_HEADER_PLACES: Final = tuple((Record.__struct_fields__.index(h.name), h.header, h.scalar) for h in _HEADERS)
#: A list or mapping field that is empty has no header.
_EMPTY: Final[tuple[list[Any], dict[str, Any]]] = ([], {})


def event_headers(record: Record, node: dict[str, str] | None = None) -> Headers:
    """Every field of ``record`` but its payload, as ``zoom.*`` headers (plus trace context).

    A field that is None or an empty list or mapping has no header. The fields are read in one call
    (``astuple``) and the node's headers are made once per node: a data event's 21 headers cost the Kafka
    sink's worker 4.5 µs when each field was read and tested on its own.
    """
    h: Headers = [(ENCODING, JSON)]
    add = h.append
    values = msgspec.structs.astuple(record)
    for at, header, scalar in _HEADER_PLACES:
        value = values[at]
        if value is None:
            continue
        if scalar is str and type(value) is str:
            add((header, value.encode()))
        elif scalar is not None:
            add((header, str(value).encode()))
        elif value not in _EMPTY:
            add((header, _json(value)))
    code = record.code
    if code is not None:
        add(("zoom.code.file", code.file.encode()))
        add(("zoom.code.line", str(code.line).encode()))
        add(("zoom.code.function", code.function.encode()))
        if code.commit is not None:
            add(("zoom.code.commit", code.commit.encode()))
        if code.dirty:
            add(("zoom.code.dirty", b"true"))
    if node:
        h += _node_headers(node.get("service"), node.get("env"), node.get("group"))
    tp = _traceparent(record)
    if tp is not None:
        add(("traceparent", tp))
        if record.on_behalf_of:
            baggage = format_baggage([(ON_BEHALF_OF_KEY, record.on_behalf_of)])
            if baggage:
                add(("baggage", baggage.encode("ascii")))
    return h


@functools.lru_cache(maxsize=64)
def _node_headers(service: str | None, env: str | None, group: str | None) -> tuple[tuple[str, bytes], ...]:
    """The ``zoom.service``, ``zoom.env`` and ``zoom.group`` headers of a node (those it has)."""
    named = (("zoom.service", service), ("zoom.env", env), ("zoom.group", group))
    return tuple((header, value.encode()) for header, value in named if value)


# -- decoding ------------------------------------------------------------------------------------

_record_decoder: Final = msgspec.msgpack.Decoder(Record)
_any_decoder: Final = msgspec.json.Decoder()


def header(headers: Sequence[tuple[str, str | bytes | None]] | None, name: str) -> bytes | None:
    """The last value of header ``name`` (exact, lower-case name), or None."""
    found = None
    if headers:
        for key, value in headers:
            if key == name:
                found = value.encode() if isinstance(value, str) else value
    return found


def _header_map(headers: Iterable[Any] | None) -> dict[str, str]:
    """The ``zoom.*`` headers as text; raises :class:`MalformedMessage` for anything irregular."""
    if not headers:
        return {}
    try:  # the common case, fast: well-formed (str, bytes) pairs
        pairs = [(k, v) for k, v in headers if k[:5] == "zoom."]
        result = {k: v.decode() for k, v in pairs}
    except (TypeError, ValueError, AttributeError, UnicodeDecodeError):
        return _header_map_checked(headers)
    if len(result) != len(pairs) or sum(map(len, result.values())) > MAX_HEADER_BYTES // 4:
        return _header_map_checked(headers)  # a repeated header, or large ones: the careful path says which
    return result


def _header_map_checked(headers: Iterable[Any]) -> dict[str, str]:
    result: dict[str, str] = {}
    total = 0
    for pair in headers:
        try:
            key, value = pair
        except (TypeError, ValueError):
            raise MalformedMessage("bad headers", f"not a (name, value) pair: {pair!r:.80}") from None
        if not isinstance(key, str) or not key.startswith("zoom."):
            continue
        if value is None:
            raise MalformedMessage("bad headers", f"header {key} has no value")
        total += len(value)
        if total > MAX_HEADER_BYTES:
            raise MalformedMessage("bad headers", f"zoom.* headers larger than {MAX_HEADER_BYTES} bytes")
        try:
            text = bytes(value).decode("utf-8")
        except (UnicodeDecodeError, TypeError):
            raise MalformedMessage("bad headers", f"header {key} is not UTF-8 text") from None
        if key in result:
            raise MalformedMessage("bad headers", f"header {key} appears more than once")
        result[key] = text
    return result


def _int(name: str, text: str) -> int:
    digits = text[1:] if text[:1] == "-" else text
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 20):
        raise MalformedMessage("bad headers", f"header {name} is not an integer: {text!r:.40}")
    return int(text)


def decode(
    value: bytes | None,
    headers: Sequence[tuple[str, str | bytes | None]] | None,
    *,
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
) -> Record:
    """The record carried by a message; raises :class:`MalformedMessage` with a reason otherwise."""
    if value is not None and len(value) > max_value_bytes:
        raise MalformedMessage("huge value", f"{len(value)} bytes, more than the limit of {max_value_bytes}")
    encoding = header(headers, ENCODING)
    if encoding == JSON_SEQ:
        line = record_line(value, max_value_bytes)
        if line is None:
            raise MalformedMessage(
                "bad value", "not one JSON text of a JSON text sequence (0x1E, the record, a line feed)"
            )
        return decode_line(line)
    if encoding == MSGPACK:
        if not value:
            raise MalformedMessage("bad value", "empty value with zoom.encoding=msgpack")
        return _decoded(_record_decoder, value, "msgpack")
    if encoding == JSON:
        return _decode_event(value, _header_map(headers))
    if encoding is None:
        raise MalformedMessage("bad headers", "no zoom.encoding header: not a Zoom record")
    raise MalformedMessage("bad headers", f"unknown zoom.encoding {encoding!r:.40}")


#: First bytes of a msgpack map (a msgpack record); no JSON text starts with one of them.
_MSGPACK_MAP: Final = frozenset([*range(0x80, 0x90), 0xDE, 0xDF])


def record_line(value: bytes | None, max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES) -> bytes | None:
    """The record's JSON line (ended by its line feed) of a ``json-seq`` value, or None for any other value: one
    that is over ``max_value_bytes``, or is not 0x1E, a JSON object's ``{`` and more, ending with its only line
    feed, all UTF-8 (as JSON text is: the store's bulk insert refuses a whole batch for one line that is not).

    Only that is checked (what the record's JSON holds is the decoder's or the store's business), so the
    collector can pass the line on as it is.
    """
    if not value or value[:2] != _RECORD_START or value[-1] != _LF or len(value) > max_value_bytes:
        return None
    line = value[1:]
    if line.find(b"\n", 0, -1) >= 0:
        return None
    if not line.isascii():
        try:
            line.decode()
        except UnicodeDecodeError:
            return None
    return line


def decode_line(line: bytes) -> Record:
    """The record of a JSON line (a ``json-seq`` value's); raises :class:`MalformedMessage` otherwise."""
    return _decoded(json_decoder, line, "JSON")


def _decoded(
    decoder: msgspec.json.Decoder[Record] | msgspec.msgpack.Decoder[Record], data: bytes, encoding: str
) -> Record:
    try:
        record = decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedMessage("bad value", f"not a {encoding} record ({exc})") from None
    _check(record)
    return record


def decode_message(msg: Any, *, max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES) -> Record:
    """:func:`decode` for a consumed confluent-kafka ``Message``, the common cases first.

    A ``json-seq`` or msgpack record is recognised by its first byte and decoded straight away (reading the
    headers of a message costs more than decoding its value); a data event whose headers are in a layout seen
    before is read in one go (``_read_event``). Anything else, and any message these ways refuse, takes
    :func:`decode`, which says what is wrong with it.
    """
    value = msg.value()
    line = record_line(value, max_value_bytes)
    if line is not None:
        with contextlib.suppress(MalformedMessage):
            return decode_line(line)
    elif value and value[0] in _MSGPACK_MAP and len(value) <= max_value_bytes:
        try:
            record: Record = _record_decoder.decode(value)
        except (msgspec.DecodeError, msgspec.ValidationError):
            pass
        else:
            if record.id and record.node_id and record.kind:
                return record
    headers = msg.headers()
    if value is not None and headers and len(value) <= max_value_bytes:
        event = _read_event(value, headers)
        if event is not None:
            return event
    return decode(value, headers, max_value_bytes=max_value_bytes)


# -- data events read in one go ------------------------------------------------------------------
#
# Reading a data event header by header costs ≈9 µs of Python (a dictionary of the zoom.* headers, then
# a conversion per field). A producer sends its events' headers in a few layouts (the same names in the
# same order), so each layout gets an _EventPlan once: a JSON document of the record's text and integer
# fields with a slot for each header value. Filling it in is one ``%`` and decoding it one msgspec call,
# which checks every field as _decode_event does. A value that would read back otherwise inside the
# document (a quote or a backslash in a text, an integer not written as _int reads it) sends the message
# to _decode_event, as does any error: the careful path alone says what is wrong.

#: Layouts remembered at most (a producer that adds headers of its own with changing names makes new ones).
_MAX_PLANS: Final = 256
#: Integers as _int reads them, joined by commas.
_INTEGERS: Final = re.compile(rb"-?[0-9]{1,20}(?:,-?[0-9]{1,20})*")

_Values = tuple[Any, ...]


def _picker(positions: Sequence[int]) -> Callable[[_Values], _Values]:
    """The values at ``positions``, as a tuple (``itemgetter`` gives a single one bare)."""
    if len(positions) == 1:
        (at,) = positions
        return lambda values: (values[at],)
    return itemgetter(*positions)


class _EventPlan(NamedTuple):
    """How to read the data events whose headers have one layout."""

    #: Position of ``zoom.encoding``.
    encoding: int
    #: The JSON document of the record's text and integer fields, a ``%s`` for each of ``parts``.
    document: bytes
    parts: Callable[[_Values], _Values]
    #: Quotes in ``document`` once filled in, when no value holds one.
    quotes: int
    #: The values that go into the document bare.
    integers: Callable[[_Values], _Values]
    #: The other ``zoom.*`` values, which the document does not check: each must be UTF-8 all the same.
    others: Callable[[_Values], _Values]
    #: ``(field, position, decoder)`` of each field sent as JSON (``attrs``, ``sources``…), read on its own.
    json_fields: tuple[tuple[str, int, msgspec.json.Decoder[Any]], ...]
    #: Position of ``zoom.code.dirty``, if there.
    dirty: int | None


_plans: dict[tuple[Any, ...], _EventPlan | None] = {}


def _read_event(value: bytes, headers: Sequence[Any]) -> Record | None:
    """The data event of a message whose headers have a known layout, or None: let ``decode`` read it."""
    try:
        names, texts = zip(*headers, strict=True)
        try:
            plan = _plans[names]
        except KeyError:
            plan = _plan_for(names)
        if plan is None or texts[plan.encoding] != JSON:
            return None
        document = plan.document % plan.parts(texts)
        others = b"\n".join(plan.others(texts))
        if (
            len(document) + len(others) > MAX_HEADER_BYTES // 4  # the careful path checks the size
            or document.count(b'"') != plan.quotes
            or b"\\" in document
            or b'""' in document  # an empty text: the careful path says whether that is allowed
            or not _INTEGERS.fullmatch(b",".join(plan.integers(texts)))
        ):
            return None
        if not others.isascii():
            others.decode()
        record: Record = json_decoder.decode(document)
        record.payload = _any_decoder.decode(value)
        for name, at, decoder in plan.json_fields:
            setattr(record, name, decoder.decode(texts[at]))
        if plan.dirty is not None and record.code is not None:
            record.code.dirty = texts[plan.dirty] == b"true"
    except (TypeError, ValueError):  # msgspec's errors and UnicodeDecodeError are ValueErrors
        return None
    return record


def _plan_for(names: tuple[Any, ...]) -> _EventPlan | None:
    """The plan of a layout (remembered), or None when ``decode`` must read such messages (a required header
    missing, a ``zoom.*`` header twice…)."""
    if len(_plans) >= _MAX_PLANS:
        _plans.clear()
    plan = _plans[names] = _make_plan(names) if all(type(name) is str for name in names) else None
    return plan


def _make_plan(names: tuple[str, ...]) -> _EventPlan | None:
    zoom = [at for at, name in enumerate(names) if name[:5] == "zoom."]
    if len({names[at] for at in zoom}) != len(zoom) or ENCODING not in names:
        return None
    where = {name: at for at, name in enumerate(names)}
    pieces: list[bytes] = []
    parts: list[int] = []
    integers: list[int] = []
    json_fields: list[tuple[str, int, msgspec.json.Decoder[Any]]] = []
    for name, header, scalar, required, decoder in _HEADERS:
        at = where.get(header)
        if at is None:
            if name == "kind":
                pieces.append(b'"kind":"event"')  # the topic holds data events
            elif required:
                return None
        elif scalar is None:
            json_fields.append((name, at, decoder))
        else:
            pieces.append(b'"%s":"%%s"' % name.encode() if scalar is str else b'"%s":%%s' % name.encode())
            parts.append(at)
            if scalar is int:
                integers.append(at)
    file, line = where.get("zoom.code.file"), where.get("zoom.code.line")
    if file is not None:
        if line is None:
            return None
        function, commit = where.get("zoom.code.function"), where.get("zoom.code.commit")
        code = [b'"%s"', b"%s", b'"%s"' if function is not None else b'"?"', b'"%s"' if commit is not None else b"null"]
        pieces.append(b'"code":[' + b",".join(code) + b"]")
        parts += [at for at in (file, line, function, commit) if at is not None]
        integers.append(line)
    document = b"{" + b",".join(pieces) + b"}"
    return _EventPlan(
        encoding=where[ENCODING],
        document=document,
        parts=_picker(parts),
        quotes=document.count(b'"'),
        integers=_picker(integers),
        others=_picker([at for at in zoom if at not in parts]),
        json_fields=tuple(json_fields),
        dirty=where.get("zoom.code.dirty") if file is not None else None,
    )


def _check(record: Record) -> None:
    if not record.id or not record.node_id or not record.kind:
        raise MalformedMessage("bad value", "record without id, kind or node_id")


def _decode_event(value: bytes | None, h: dict[str, str]) -> Record:
    if value is None:
        raise MalformedMessage("bad value", "no value (tombstone) on an event topic")
    try:
        payload = _any_decoder.decode(value)
    except msgspec.DecodeError as exc:
        raise MalformedMessage("non-JSON value", str(exc)) from None
    h.setdefault("zoom.kind", "event")  # the topic holds data events
    fields: dict[str, Any] = {"payload": payload}
    for name, header, scalar, required, decoder in _HEADERS:
        text = h.get(header)
        if not text and required:
            raise MalformedMessage("bad headers", f"header {header} is missing")
        if text is None:
            continue
        if scalar is str:
            fields[name] = text
        elif scalar is int:
            fields[name] = _int(header, text)
        else:
            try:
                fields[name] = decoder.decode(text)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise MalformedMessage("bad headers", f"header {header}: {exc}") from None
    file = h.get("zoom.code.file")
    if file is not None:
        line = h.get("zoom.code.line")
        if line is None:
            raise MalformedMessage("bad headers", "header zoom.code.line is missing")
        fields["code"] = Code(
            file,
            _int("zoom.code.line", line),
            h.get("zoom.code.function", "?"),
            h.get("zoom.code.commit"),
            h.get("zoom.code.dirty") == "true",
        )
    # Every value above is already checked for its type: no second validation pass.
    return Record(**fields)
