"""Turn arbitrary user values into bounded, JSON-safe builtins.

Records carry user-supplied ``attrs`` and ``payload`` that the background worker
encodes with msgspec (JSON and msgpack). A value msgspec cannot encode, a huge
string or a self-referencing list must not crash the worker, lose the record or
stall the process, so everything passes through here first. Nothing in this
module raises (short of ``BaseException``\\s such as ``KeyboardInterrupt``):
whatever cannot be converted becomes a visible marker instead.

Markers (visible in the output, so a reader knows data was altered):

* ``"<recursive>"`` -- a container that contains itself;
* ``"<max depth>"`` -- a container nested deeper than ``Limits.max_depth``;
* ``"<N more items>"`` -- appended to a list cut at ``Limits.max_items``
  (a cut dict gets the key ``"$more"`` with that text);
* ``{"$repr": ..., "$unserialisable": "module.Type"}`` -- any other object;
* ``"<unprintable module.Type>"`` -- text asked of a value whose ``__str__`` or ``__repr__`` raises;
* ``{"$bytes_b64": ...}`` -- bytes that are not UTF-8;
* ``"…[truncated, original N chars]"`` -- ends a shortened string;
* ``{"$truncated": True, "$original_bytes": n, "$preview": ...}`` -- a payload
  whose JSON is larger than ``Limits.max_payload_bytes``.
"""

from __future__ import annotations

import base64
import codecs
import dataclasses
import datetime as _dt
import decimal
import enum
import math
import operator
import uuid
from collections.abc import Callable, Mapping, Sequence, Set, ValuesView
from itertools import islice
from pathlib import PurePath
from types import NoneType
from typing import Any, Final

import msgspec
import orjson

from zoomtrace._native import speedups

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_DEPTH",
    "MORE_KEY",
    "RECURSIVE",
    "Limits",
    "safe_repr",
    "safe_str",
    "sanitize_attrs",
    "sanitize_message",
    "sanitize_payload",
    "sanitize_payload_json",
    "to_jsonable",
    "truncate",
]

RECURSIVE: Final = "<recursive>"
MAX_DEPTH: Final = "<max depth>"
MORE_KEY: Final = "$more"

#: msgpack carries at most 64-bit integers (msgspec raises OverflowError beyond).
_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1
_SCALAR_JSON_MAX: Final = len(str(_INT_MIN))  # the longest JSON of None, a bool or a 64-bit int

#: Left alone by ``msgspec.to_builtins`` so that they are converted here, the same way everywhere.
_BUILTIN_TYPES: Final = (
    bytes,
    bytearray,
    memoryview,
    _dt.datetime,
    _dt.date,
    _dt.time,
    _dt.timedelta,
    uuid.UUID,
    decimal.Decimal,
)

_msgspec_json_encode: Final = msgspec.json.Encoder().encode
#: What orjson leaves to ``default`` (``_msgspec_fragment``): dates and dataclasses, subclasses of the builtin
#: types, and whatever it does not know.
_ORJSON_OPTIONS: Final = (
    orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def _msgspec_fragment(obj: Any) -> orjson.Fragment:
    return orjson.Fragment(_msgspec_json_encode(obj))


#: ``json_encode`` of a payload of builtins (dicts with text keys, lists, tuples, text, numbers, bools, None): the
#: same bytes, without the fallbacks, and no Python code runs (the encoder's C event path relies on it).
plain_json_encode: Final[Callable[[Any], bytes]] = orjson.dumps


def json_encode(obj: Any) -> bytes:
    """The JSON of a payload, as sanitising measures it and the encoder stores it (its C event path too).

    orjson writes the containers, text and numbers: 1.2 µs for the benchmark's 1 KB order against msgspec's 2.1
    (it escapes text and formats floats faster; docs/ARCHITECTURE.md, `runtime/`). Anything else it hands
    to msgspec (an ``orjson.Fragment``), so dates, dataclasses, Structs and subclasses read as msgspec writes
    them; a payload orjson refuses whole (an integer beyond 64 bits, a key that is not text, nesting deeper
    than 254) is msgspec's. The two differ only in an exponent's ``+`` (``1e+16``, msgspec ``1e16``).
    """
    try:
        return orjson.dumps(obj, default=_msgspec_fragment, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError
        return _msgspec_json_encode(obj)


_json_decode: Final = msgspec.json.Decoder().decode
# bytes.translate maps digits to b"1" and everything else to b" ": a long digit run is then a substring
# search, an order of magnitude faster than a regex over the payload.
_DIGIT_MAP: Final = bytes(0x31 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_DIGITS: Final = b"1" * 19


def _needs_care_python(encoded: bytes) -> bool:
    """JSON null may stand for NaN/infinity; 19+ digits may be an integer msgpack cannot carry."""
    return b"null" in encoded or _LONG_DIGITS in encoded.translate(_DIGIT_MAP)


#: ``_needs_care_python``, in C where the speedups are built (``zoomtrace._native``).
_needs_care: Callable[[bytes], bool] = _needs_care_python if speedups is None else speedups.needs_care


@dataclasses.dataclass(frozen=True)
class Limits:
    """Size bounds; they keep one careless call from exhausting memory, disk or the worker's time."""

    max_message: int = 32 * 1024
    """Characters kept of a record's message."""
    max_attr_value: int = 8 * 1024
    """Characters kept of each string (also of dict keys, reprs and decoded bytes)."""
    max_payload_bytes: int = 1024 * 1024
    """Bytes of encoded JSON a payload may take before it is replaced by a preview."""
    max_depth: int = 32
    """Containers nested deeper than this become ``"<max depth>"``."""
    max_items: int = 1000
    """Items kept per list, dict or set."""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if type(value) is not int or value < 0:
                raise ValueError(f"Limits.{field.name} must be a non-negative int, got {value!r}")


DEFAULT_LIMITS: Final = Limits()


def truncate(text: str, max_chars: int) -> str:
    """Shorten ``text`` to at most ``max_chars`` characters, saying so at the end.

    The marker (``…[truncated, original N chars]``) is never cut itself, so when
    ``max_chars`` is smaller than the marker the result is the bare marker.
    Lone surrogates are also escaped (see ``_repair``): every caller wants text
    msgspec can encode, and a message read with ``surrogateescape`` must not
    cost the record.
    """
    if type(text) is str and text.isascii() and len(text) <= max_chars:
        return text
    return _clean_str(text, max(0, max_chars))


def _cut(text: str, max_chars: int, original: int, unit: str = "chars") -> str:
    marker = f"…[truncated, original {original} {unit}]"
    keep = max(0, max_chars - len(marker))
    return text[:keep] + marker


def _utf8_ok(text: str) -> bool:
    """True unless ``text`` holds lone surrogates, which no UTF-8 encoder accepts."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _repair(text: str) -> str:
    """Replace lone surrogates (e.g. from ``surrogateescape``) by visible ``\\udcxx`` escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _clean_str(text: str, max_chars: int) -> str:
    """An exact, encodable ``str`` of at most ``max_chars`` characters."""
    if type(text) is not str:
        text = str.__str__(text)  # an exact copy; a subclass's __str__ could lie
    if text.isascii():  # O(1) in CPython, and ASCII is always valid
        return text if len(text) <= max_chars else _cut(text, max_chars, len(text))
    original = len(text)
    if original > max_chars:
        text = text[:max_chars]  # bound the work below before repairing
    if not _utf8_ok(text):
        text = _repair(text)
    if original <= max_chars and len(text) <= max_chars:
        return text
    return _cut(text, max_chars, original)


def sanitize_message(message: object, limits: Limits = DEFAULT_LIMITS) -> str:
    """A record message: always ``str``, encodable, at most ``limits.max_message`` characters."""
    if type(message) is str and len(message) <= limits.max_message and message.isascii():
        return message
    if not isinstance(message, str):
        message = safe_str(message)
    return _clean_str(message, limits.max_message)


def safe_str(value: object) -> str:
    """``str(value)``, or a marker naming its type when its ``__str__`` raises or returns no ``str``."""
    if type(value) is str:
        return value
    try:
        text = str(value)
    except Exception:  # user __str__ may raise anything
        return _unprintable(value)
    return text


def safe_repr(value: object) -> str:
    """``repr(value)``, or a marker naming its type when its ``__repr__`` raises or returns no ``str``."""
    try:
        text = repr(value)
    except Exception:  # user __repr__ may raise anything
        return _unprintable(value)
    return text


def _unprintable(value: object) -> str:
    return f"<unprintable {_type_name(value)}>"


def _type_name(value: object) -> str:
    try:
        cls = type(value)
        module: object = getattr(cls, "__module__", None)
        name: object = getattr(cls, "__qualname__", None)
        if not isinstance(module, str) or not isinstance(name, str):
            return "<unknown type>"
        return name if module == "builtins" else f"{module}.{name}"
    except Exception:  # hostile metaclasses
        return "<unknown type>"


def _float(value: float) -> float | str:
    """JSON has no NaN/Infinity (msgspec writes ``null``), so they become their usual spellings."""
    if value - value == 0.0:  # false exactly for nan and +-inf
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _int(value: int) -> int | str:
    """Integers msgpack cannot carry become their decimal string."""
    if _INT_MIN <= value <= _INT_MAX:
        return value
    try:
        return str(value)
    except ValueError:  # beyond sys.get_int_max_str_digits()
        return f"<int of {value.bit_length()} bits>"


class _Converter:
    """One conversion's state: the limits and the ids of the containers being visited."""

    __slots__ = ("depth_limit", "items", "max_str", "seen")

    def __init__(self, limits: Limits, max_str: int) -> None:
        self.max_str = max_str
        self.depth_limit = limits.max_depth
        self.items = limits.max_items
        self.seen: set[int] = set()

    def convert(self, value: Any, depth: int) -> Any:
        cls = type(value)
        if cls is str:
            if len(value) <= self.max_str and value.isascii():
                return value
            return _clean_str(value, self.max_str)
        if cls is int:
            return _int(value)
        if cls is float:
            return _float(value)
        if cls is bool or value is None:
            return value
        try:
            if cls is dict or cls is list or cls is tuple:
                return self._container(value, cls, depth)
            return self._convert_other(value, cls, depth)
        except Exception:  # any user hook may raise; the record must survive
            return self._unserialisable(value)

    def _convert_other(self, value: Any, cls: type, depth: int) -> Any:
        if isinstance(value, enum.Enum):  # before str/int: StrEnum and IntEnum are both
            return self.convert(value.value, depth + 1)
        if isinstance(value, str):
            return _clean_str(value, self.max_str)
        if isinstance(value, int):
            return _int(int.__index__(value))
        if isinstance(value, float):
            return _float(float.__float__(value))
        if isinstance(value, (bytes, bytearray, memoryview)):
            return self._bytes(value)
        if isinstance(value, (_dt.date, _dt.time)):  # datetime is a date
            return _clean_str(value.isoformat(), self.max_str)
        if isinstance(value, _dt.timedelta):
            return value.total_seconds()
        if isinstance(value, (uuid.UUID, decimal.Decimal, PurePath)):
            return _clean_str(str(value), self.max_str)
        if isinstance(value, type):  # classes look like dataclasses / models but are not instances
            return self._unserialisable(value)
        return self._container(value, cls, depth)

    def _container(self, value: Any, cls: type, depth: int) -> Any:
        """Anything that may contain other values: checked for depth and cycles."""
        if depth >= self.depth_limit:
            return MAX_DEPTH
        key = id(value)
        if key in self.seen:
            return RECURSIVE
        self.seen.add(key)
        try:
            if cls is dict:
                return self._dict(value.items(), len(value), depth)
            if cls is list or cls is tuple:
                return self._list(value, len(value), depth)
            return self._structure(value, depth)
        finally:
            self.seen.discard(key)

    def _structure(self, value: Any, depth: int) -> Any:
        if isinstance(value, dict):
            return self._dict(value.items(), len(value), depth)
        if isinstance(value, (list, tuple)):
            return self._list(value, len(value), depth)
        if isinstance(value, (set, frozenset, Set)):
            try:
                ordered: Any = sorted(value)
            except Exception:  # unorderable members keep iteration order
                ordered = value
            return self._list(ordered, len(value), depth)
        if isinstance(value, msgspec.Struct):
            return self._struct(value, depth)
        if hasattr(type(value), "__dataclass_fields__"):
            fields = dataclasses.fields(value)
            return self._dict(((f.name, getattr(value, f.name)) for f in fields), len(fields), depth)
        model_dump = getattr(type(value), "model_dump", None)  # pydantic v2, duck-typed
        if callable(model_dump):
            return self._model(value, depth)
        if isinstance(value, Mapping):
            return self._dict(value.items(), len(value), depth)
        if isinstance(value, (Sequence, ValuesView)):
            return self._list(value, len(value), depth)
        if hasattr(type(value), "__index__"):  # numpy integers and other int-likes
            return _int(operator.index(value))
        return self._unserialisable(value)

    def _struct(self, value: msgspec.Struct, depth: int) -> Any:
        try:
            # Faithful to how msgspec itself would encode it (renames, omit_defaults, tags).
            built = msgspec.to_builtins(value, builtin_types=_BUILTIN_TYPES)
        except Exception:  # unsupported field types, cycles: go field by field
            built = msgspec.structs.asdict(value)
            return self._dict(built.items(), len(built), depth)
        if isinstance(built, dict):
            return self._dict(built.items(), len(built), depth)
        if isinstance(built, list):  # array_like structs
            return self._list(built, len(built), depth)
        return self.convert(built, depth + 1)

    def _model(self, value: Any, depth: int) -> Any:
        try:
            dumped = value.model_dump(mode="json")
        except Exception:  # e.g. a field pydantic cannot serialise
            dumped = value.model_dump()
        if type(dumped) is dict:
            return self._dict(dumped.items(), len(dumped), depth)
        return self.convert(dumped, depth + 1)  # depth + 1: a fake model_dump cannot loop forever

    def _dict(self, items: Any, size: int, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        child = depth + 1
        count = 0
        max_str = self.max_str
        for k, v in islice(items, self.items):
            key = k if type(k) is str and len(k) <= max_str and k.isascii() else self._key(k)
            if key in out:
                key = _unique_key(out, key, k)
            cls = type(v)  # inline the common cases: a call per item is most of the cost
            if (
                (cls is str and len(v) <= max_str and v.isascii())
                or (cls is int and _INT_MIN <= v <= _INT_MAX)
                or (cls is float and v - v == 0.0)
                or cls is bool
                or cls is NoneType
            ):
                out[key] = v
            else:
                out[key] = self.convert(v, child)
            count += 1
        if size > count:
            out[_unique_key(out, MORE_KEY, None) if MORE_KEY in out else MORE_KEY] = f"<{size - count} more items>"
        return out

    def _list(self, values: Any, size: int, depth: int) -> list[Any]:
        child = depth + 1
        convert = self.convert
        max_str = self.max_str
        out: list[Any] = []
        append = out.append
        for v in islice(values, self.items):
            cls = type(v)
            if (
                (cls is str and len(v) <= max_str and v.isascii())
                or (cls is int and _INT_MIN <= v <= _INT_MAX)
                or (cls is float and v - v == 0.0)
                or cls is bool
                or cls is NoneType
            ):
                append(v)
            else:
                append(convert(v, child))
        if size > len(out):
            out.append(f"<{size - len(out)} more items>")
        return out

    def _key(self, key: object) -> str:
        """JSON object keys must be strings; coerce the way ``json.dumps`` would where it can."""
        if isinstance(key, enum.Enum):  # before str/int: StrEnum and IntEnum are both
            return self._key(key.value)
        if isinstance(key, str):
            return _clean_str(key, self.max_str)
        if key is None or isinstance(key, bool):
            return "null" if key is None else ("true" if key else "false")
        if isinstance(key, (int, float, bytes, _dt.date, _dt.time, uuid.UUID, decimal.Decimal)):
            converted = self.convert(key, self.depth_limit)  # scalars only: nothing to recurse into
            if isinstance(converted, str):
                return converted
            if isinstance(converted, (int, float)):
                return repr(converted)
        return _clean_str(safe_str(key), self.max_str)

    def _bytes(self, value: bytes | bytearray | memoryview) -> Any:
        data = value.tobytes() if isinstance(value, memoryview) else bytes(value)
        limit = self.max_str
        head = data[:limit]
        try:
            # An incremental decoder tolerates a multi-byte character cut in half at the end.
            text = codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) == len(data))
        except UnicodeDecodeError:
            raw = data[: limit * 3 // 4]  # base64 grows by 4/3: stay within max_str characters
            out: dict[str, Any] = {"$bytes_b64": base64.b64encode(raw).decode("ascii")}
            if len(raw) < len(data):
                out["$original_bytes"] = len(data)
            return out
        if len(head) < len(data):
            return _cut(text, limit, len(data), "bytes")
        return _clean_str(text, limit)

    def _unserialisable(self, value: object) -> dict[str, Any]:
        name = _type_name(value)
        try:
            text = repr(value)
            if not isinstance(text, str):
                raise TypeError("__repr__ returned a non-string")
        except Exception:  # a broken __repr__ still must not lose the record
            return {"$unserialisable": name}
        return {"$repr": _clean_str(text, self.max_str), "$unserialisable": name}


def _unique_key(out: dict[str, Any], key: str, original: object) -> str:
    """A key not yet in ``out``: coerced keys may collide (``1`` and ``"1"``) and neither may be lost."""
    base = f"{key} ({_type_name(original)})" if original is not None else key
    candidate = base
    n = 2
    while candidate in out:
        candidate = f"{base} #{n}"
        n += 1
    return candidate


def to_jsonable(value: Any, limits: Limits = DEFAULT_LIMITS, *, max_str: int | None = None) -> Any:
    """``value`` as str/int/float/bool/None/list/dict-with-str-keys that msgspec JSON and msgpack encode losslessly.

    Strings are cut at ``max_str`` characters (default ``limits.max_attr_value``).
    Never raises: anything that cannot be converted becomes a marker (see module doc).
    """
    converter = _Converter(limits, limits.max_attr_value if max_str is None else max_str)
    try:
        return converter.convert(value, 0)
    except Exception:  # e.g. RecursionError with a huge max_depth
        return {"$unserialisable": _type_name(value)}


def sanitize_attrs(attrs: Any, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """JSON-safe record attributes.

    Returns ``attrs`` itself (no copy) when it is already a dict of short,
    encodable primitives -- the common case, checked without allocating.
    """
    if type(attrs) is dict and len(attrs) <= limits.max_items:
        max_len = limits.max_attr_value
        try:
            for k, v in attrs.items():
                if type(k) is not str or len(k) > max_len or not k.isascii():
                    break
                cls = type(v)
                if cls is str:
                    if len(v) > max_len or not (v.isascii() or _utf8_ok(v)):
                        break
                elif cls is int:
                    if v < _INT_MIN or v > _INT_MAX:
                        break
                elif cls is float:
                    if v - v != 0.0:  # nan or inf
                        break
                elif cls is not bool and cls is not NoneType:
                    break
            else:
                return attrs
        except RuntimeError:  # changed size during iteration: another thread still writes to it
            attrs = dict(attrs)  # a C-level copy: atomic under the GIL
    if attrs is None:
        return {}
    result = to_jsonable(attrs, limits)
    if type(result) is dict:
        return result
    return {"$attrs": result}  # attrs was not a mapping; keep it rather than drop it


def sanitize_payload(obj: Any, limits: Limits = DEFAULT_LIMITS) -> Any:
    """A JSON-safe payload whose JSON encoding fits ``limits.max_payload_bytes``.

    Too large a payload becomes ``{"$truncated": True, "$original_bytes": n,
    "$preview": ...}``: the record survives with the start of the JSON (at most
    ``min(max_attr_value, max_payload_bytes)`` bytes of it) instead of the data.
    """
    return sanitize_payload_json(obj, limits)[0]


def sanitize_payload_json(
    obj: Any, limits: Limits = DEFAULT_LIMITS, *, decode: bool = True
) -> tuple[Any, bytes | None]:
    """``sanitize_payload(obj, limits)`` and its JSON, when that was computed on the way (None else).

    The JSON is a by-product of the size check; returning it spares the scrubber a walk through
    the payload (``Scrubber.json_unchanged``). Without ``decode``, a payload that takes the fast path is
    returned as that JSON (``msgspec.Raw``), not decoded into objects: what the encoder stores.
    """
    if limits.max_payload_bytes >= _SCALAR_JSON_MAX:  # no scalar can exceed it: skip the encoding
        cls = type(obj)
        if cls is NoneType or cls is bool or (cls is int and _INT_MIN <= obj <= _INT_MAX):
            return obj, None
    # Fast path: msgspec encodes mappings, dataclasses, Structs, dates, UUIDs... in C, and the encoded
    # size is the payload's true size. A null may stand for NaN or infinity and a long digit run for an
    # integer msgpack cannot carry: those payloads take the careful path, which spells them out.
    try:
        encoded: bytes | None = json_encode(obj)
    except Exception:
        encoded = None
    if encoded is not None and len(encoded) <= limits.max_payload_bytes and not _needs_care(encoded):
        return (_json_decode(encoded) if decode else msgspec.Raw(encoded)), encoded
    if encoded is None or len(encoded) <= limits.max_payload_bytes:
        value = to_jsonable(obj, limits, max_str=limits.max_payload_bytes)
        try:
            encoded = json_encode(value)
        except Exception:  # to_jsonable output should always encode; belt and braces
            return {"$unserialisable": _type_name(obj)}, None
        if len(encoded) <= limits.max_payload_bytes:
            return value, encoded
    preview = encoded[: min(limits.max_attr_value, limits.max_payload_bytes)].decode("utf-8", "ignore")
    return {"$truncated": True, "$original_bytes": len(encoded), "$preview": preview}, None
