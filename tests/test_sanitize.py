"""zoomtrace.runtime.sanitize: arbitrary user values become bounded, JSON-safe builtins, and nothing raises.

Expected values come from the documented contract (JSON has no NaN, msgpack no
integers beyond 64 bits, markers as documented) or from independent oracles
(stdlib ``json``, ``base64``), never from running the code under test.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import enum
import json
import math
import sys
import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zoomtrace.runtime import sanitize as sanitize_module
from zoomtrace.runtime.sanitize import (
    DEFAULT_LIMITS,
    MAX_DEPTH,
    RECURSIVE,
    Limits,
    sanitize_attrs,
    sanitize_message,
    sanitize_payload,
    to_jsonable,
    truncate,
)

INT_MIN, INT_MAX = -(2**63), 2**64 - 1  # what msgpack can carry

# -- helpers ----------------------------------------------------------------------------------


def assert_plain(value: Any) -> None:
    """Only JSON types, str keys, finite floats, 64-bit ints, encodable strings."""
    if isinstance(value, dict):
        assert type(value) is dict
        for k, v in value.items():
            assert type(k) is str
            k.encode("utf-8")
            assert_plain(v)
    elif isinstance(value, list):
        assert type(value) is list
        for v in value:
            assert_plain(v)
    elif type(value) is str:
        value.encode("utf-8")  # raises on lone surrogates
    elif type(value) is float:
        assert math.isfinite(value)
    elif type(value) is int:
        assert INT_MIN <= value <= INT_MAX
    else:
        assert value is None or type(value) is bool, f"unexpected {type(value)}: {value!r}"


def roundtrips(value: Any) -> None:
    """Both wire formats of the record carry the value unchanged."""
    assert msgspec.json.decode(msgspec.json.encode(value)) == value
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(value)) == value


MARKER_KEYS = {"$repr", "$unserialisable", "$bytes_b64"}


def depth_of(value: Any) -> int:
    """Container nesting; the documented marker objects stand for one value, so they count as leaves."""
    if isinstance(value, dict) and value.keys() & MARKER_KEYS:
        return 0
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


# -- Limits ------------------------------------------------------------------------------------


def test_limits_defaults_are_the_documented_sizes() -> None:
    limits = Limits()
    assert limits.max_message == 32 * 1024
    assert limits.max_attr_value == 8 * 1024
    assert limits.max_payload_bytes == 1024 * 1024
    assert limits.max_depth == 32
    assert limits.max_items == 1000
    assert limits == DEFAULT_LIMITS


def test_limits_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Limits().max_items = 5  # type: ignore[misc]


@pytest.mark.parametrize("bad", [-1, 1.5, "10", True])
def test_limits_reject_nonsense_at_configuration_time(bad: Any) -> None:
    with pytest.raises(ValueError, match="max_items"):
        Limits(max_items=bad)


# -- truncate ----------------------------------------------------------------------------------


def test_truncate_keeps_short_text_as_is() -> None:
    text = "x" * 100
    assert truncate(text, 100) is text


def test_truncate_keeps_the_head_and_says_how_long_the_original_was() -> None:
    text = "".join(chr(ord("a") + i % 26) for i in range(123_456))
    out = truncate(text, 1000)
    assert len(out) <= 1000
    assert out.endswith("…[truncated, original 123456 chars]")
    head = out[: out.index("…[truncated")]
    assert len(head) >= 900
    assert text.startswith(head)


def test_truncate_below_the_marker_size_still_says_truncated() -> None:
    out = truncate("y" * 500, 5)
    assert "truncated" in out and "500" in out
    assert "y" not in out


def test_truncate_repairs_lone_surrogates() -> None:
    out = truncate("caf\udce9", 100)
    assert out == "caf\\udce9"
    out.encode("utf-8")


# -- to_jsonable: scalars ---------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "plain", "ünïcødé ✓ 🎉", 0, -1, INT_MIN, INT_MAX, 1.5, -0.0, True, False, None])
def test_json_scalars_are_kept(value: Any) -> None:
    out = to_jsonable(value)
    assert out == value and type(out) is type(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(math.nan, "NaN"), (math.inf, "Infinity"), (-math.inf, "-Infinity")],
)
def test_non_finite_floats_become_their_names(value: float, expected: str) -> None:
    # msgspec's JSON encoder would write null and lose the fact.
    assert to_jsonable(value) == expected
    assert to_jsonable([value]) == [expected]


@pytest.mark.parametrize("value", [INT_MAX + 1, INT_MIN - 1, 10**30, -(10**30)])
def test_ints_msgpack_cannot_carry_become_decimal_strings(value: int) -> None:
    assert to_jsonable(value) == str(value)


def test_an_int_too_long_to_print_does_not_raise() -> None:
    out = to_jsonable(10**5000)  # str() refuses > 4300 digits by default
    assert isinstance(out, str)
    assert len(out) < 100


def test_lone_surrogates_are_escaped_with_backslashreplace() -> None:
    bad = b"name-\xff".decode("utf-8", "surrogateescape")
    assert to_jsonable(bad) == "name-\\udcff"
    assert to_jsonable({"k": bad}) == {"k": "name-\\udcff"}


def test_long_strings_are_cut_at_max_attr_value_with_a_marker() -> None:
    limits = Limits(max_attr_value=100)
    out = to_jsonable("z" * 5000, limits)
    assert len(out) <= 100
    assert "5000" in out and "truncated" in out


def test_max_str_overrides_the_string_limit() -> None:
    text = "z" * 5000
    assert to_jsonable(text, Limits(max_attr_value=100), max_str=10_000) == text


# -- bytes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [bytes, bytearray, lambda b: memoryview(bytes(b))])
def test_utf8_bytes_become_text(kind: Any) -> None:
    assert to_jsonable(kind("héllo".encode())) == "héllo"


def test_binary_bytes_become_base64_that_decodes_to_the_original() -> None:
    data = bytes(range(256))
    out = to_jsonable(data)
    assert set(out) == {"$bytes_b64"}
    assert base64.b64decode(out["$bytes_b64"]) == data


def test_long_bytes_are_bounded() -> None:
    limits = Limits(max_attr_value=64)
    text_out = to_jsonable(b"a" * 10_000, limits)
    assert isinstance(text_out, str) and len(text_out) <= 64 and "10000" in text_out
    bin_out = to_jsonable(b"\xff" * 10_000, limits)
    assert len(bin_out["$bytes_b64"]) <= 64
    assert bin_out["$original_bytes"] == 10_000
    assert set(base64.b64decode(bin_out["$bytes_b64"])) == {0xFF}


def test_utf8_cut_inside_a_character_is_still_text() -> None:
    limits = Limits(max_attr_value=64)
    out = to_jsonable("é".encode() * 1000, limits)  # 2 bytes each: any cut may split one
    assert isinstance(out, str)
    assert out.startswith("é" * 5)


# -- containers --------------------------------------------------------------------------------


def test_tuples_and_lists_become_lists() -> None:
    assert to_jsonable((1, (2, [3]))) == [1, [2, [3]]]


def test_sets_become_sorted_lists() -> None:
    assert to_jsonable({3, 1, 2}) == [1, 2, 3]
    assert to_jsonable(frozenset({"b", "a"})) == ["a", "b"]


def test_unorderable_sets_still_convert() -> None:
    out = to_jsonable({1, "a", None})
    assert sorted(out, key=repr) == sorted([1, "a", None], key=repr)


def test_dict_keys_are_coerced_to_strings() -> None:
    out = to_jsonable({7: "int", 2.5: "float", None: "none", False: "bool", (1, 2): "tuple", b"k": "bytes"})
    assert out == {"7": "int", "2.5": "float", "null": "none", "false": "bool", "(1, 2)": "tuple", "k": "bytes"}


def test_colliding_coerced_keys_keep_both_values() -> None:
    out = to_jsonable({1: "from int", "1": "from str"})
    assert len(out) == 2
    assert sorted(out.values()) == ["from int", "from str"]
    assert "1" in out


def test_mappings_and_sequences_of_other_types() -> None:
    assert to_jsonable(OrderedDict([("b", 1), ("a", 2)])) == {"b": 1, "a": 2}
    assert to_jsonable(deque([1, 2])) == [1, 2]
    assert to_jsonable(range(3)) == [0, 1, 2]
    assert to_jsonable({"a": 1}.keys()) == ["a"]
    assert to_jsonable({"a": 1}.values()) == [1]


def test_generators_are_not_consumed() -> None:
    consumed = []

    def gen() -> Any:
        consumed.append(True)
        yield 1

    out = to_jsonable(gen())
    assert consumed == []
    assert "$unserialisable" in out


def test_recursive_list_and_dict_are_marked() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    assert to_jsonable(loop) == [1, RECURSIVE]
    d: dict[str, Any] = {"a": 1}
    d["self"] = d
    assert to_jsonable(d) == {"a": 1, "self": RECURSIVE}
    assert RECURSIVE == "<recursive>"


def test_shared_but_not_recursive_values_are_not_marked() -> None:
    shared = [1, 2]
    assert to_jsonable({"a": shared, "b": shared, "c": [shared]}) == {"a": [1, 2], "b": [1, 2], "c": [[1, 2]]}


def test_nesting_deeper_than_max_depth_is_cut() -> None:
    limits = Limits(max_depth=2)
    assert to_jsonable([1, [2, [3, [4]]]], limits) == [1, [2, MAX_DEPTH]]
    assert to_jsonable({"a": {"b": {"c": 1}}}, limits) == {"a": {"b": MAX_DEPTH}}
    assert MAX_DEPTH == "<max depth>"


def test_max_depth_zero_allows_scalars_only() -> None:
    limits = Limits(max_depth=0)
    assert to_jsonable(5, limits) == 5
    assert to_jsonable([5], limits) == MAX_DEPTH


def test_deep_nesting_with_default_limits_is_bounded() -> None:
    value: Any = "leaf"
    for _ in range(5000):
        value = [value]
    out = to_jsonable(value)
    assert depth_of(out) <= DEFAULT_LIMITS.max_depth
    roundtrips(out)


def test_long_lists_are_cut_with_a_count_of_the_rest() -> None:
    limits = Limits(max_items=3)
    assert to_jsonable(list(range(10)), limits) == [0, 1, 2, "<7 more items>"]
    assert to_jsonable(list(range(3)), limits) == [0, 1, 2]


def test_long_dicts_are_cut_with_a_count_of_the_rest() -> None:
    limits = Limits(max_items=2)
    assert to_jsonable({"a": 1, "b": 2, "c": 3, "d": 4}, limits) == {"a": 1, "b": 2, "$more": "<2 more items>"}


# -- structured objects -----------------------------------------------------------------------


@dataclasses.dataclass
class Point:
    x: int
    y: float
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Node:
    name: str
    parent: Node | None = None


class Order(msgspec.Struct):
    id: int
    total: float
    created: dt.datetime


class Renamed(msgspec.Struct, rename="camel"):
    order_id: int


class HoldsAnything(msgspec.Struct):
    ok: int
    thing: object


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class FakeModel:
    """Quacks like a pydantic v2 model."""

    def __init__(self) -> None:
        self.modes: list[Any] = []

    def model_dump(self, mode: str = "python") -> dict[str, Any]:
        self.modes.append(mode)
        return {"when": "2024-01-02T03:04:05" if mode == "json" else dt.datetime(2024, 1, 2, 3, 4, 5)}


class JsonModeFails(FakeModel):
    def model_dump(self, mode: str = "python") -> dict[str, Any]:
        if mode == "json":
            raise ValueError("cannot serialise")
        return {"n": 1}


def test_dataclasses_become_dicts_of_their_fields() -> None:
    assert to_jsonable(Point(1, math.inf, ["a"])) == {"x": 1, "y": "Infinity", "tags": ["a"]}


def test_recursive_dataclasses_are_marked() -> None:
    node = Node("a")
    node.parent = node
    assert to_jsonable(node) == {"name": "a", "parent": RECURSIVE}


def test_dataclass_classes_are_not_instances() -> None:
    out = to_jsonable(Point)
    assert "$unserialisable" in out


def test_msgspec_structs_convert_as_msgspec_encodes_them() -> None:
    when = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    out = to_jsonable(Order(id=1, total=math.nan, created=when))
    assert out == {"id": 1, "total": "NaN", "created": when.isoformat()}
    assert to_jsonable(Renamed(order_id=3)) == {"orderId": 3}


def test_struct_with_an_unencodable_field_keeps_the_other_fields() -> None:
    out = to_jsonable(HoldsAnything(ok=1, thing=object()))
    assert out["ok"] == 1
    assert out["thing"]["$unserialisable"] == "object"


def test_pydantic_like_models_use_json_mode() -> None:
    model = FakeModel()
    assert to_jsonable(model) == {"when": "2024-01-02T03:04:05"}
    assert model.modes == ["json"]


def test_pydantic_like_models_fall_back_to_python_mode() -> None:
    assert to_jsonable(JsonModeFails()) == {"n": 1}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (dt.datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05"),
        (dt.date(2024, 1, 2), "2024-01-02"),
        (dt.time(3, 4), "03:04:00"),
        (dt.timedelta(minutes=1, seconds=30), 90.0),
        (uuid.UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
        (decimal.Decimal("1.10"), "1.10"),
        (decimal.Decimal("NaN"), "NaN"),
        (Color.RED, "red"),
        (Level.HIGH, 3),
        (PurePosixPath("/tmp/x"), "/tmp/x"),
    ],
)
def test_well_known_types_become_their_natural_value(value: Any, expected: Any) -> None:
    out = to_jsonable(value)
    assert out == expected and type(out) is type(expected)


def test_subclasses_of_builtins_become_the_builtin() -> None:
    class MyStr(str):
        def __str__(self) -> str:
            return "lies"

    class MyFloat(float):
        pass

    out = to_jsonable([MyStr("truth"), MyFloat(2.5), MyFloat("nan")])
    assert out == ["truth", 2.5, "NaN"]
    assert type(out[0]) is str and type(out[1]) is float


# -- anything else ----------------------------------------------------------------------------


class Opaque:
    def __repr__(self) -> str:
        return "Opaque<42>"


class ReprRaises:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


class HugeRepr:
    def __repr__(self) -> str:
        return "R" * 100_000


class HostileMapping(dict):  # type: ignore[type-arg]
    def items(self) -> Any:
        raise RuntimeError("boom")

    def __repr__(self) -> str:
        return "HostileMapping()"


def test_other_objects_become_a_marked_repr() -> None:
    assert to_jsonable(Opaque()) == {"$repr": "Opaque<42>", "$unserialisable": f"{__name__}.Opaque"}
    assert to_jsonable(1 + 2j) == {"$repr": "(1+2j)", "$unserialisable": "complex"}


def test_a_repr_that_raises_still_gives_the_type() -> None:
    assert to_jsonable(ReprRaises()) == {"$unserialisable": f"{__name__}.ReprRaises"}
    assert to_jsonable({"x": ReprRaises(), "y": 1}) == {"x": {"$unserialisable": f"{__name__}.ReprRaises"}, "y": 1}


def test_a_huge_repr_is_cut() -> None:
    out = to_jsonable(HugeRepr(), Limits(max_attr_value=200))
    assert len(out["$repr"]) <= 200
    assert "100000" in out["$repr"]


class ModelDumpAlwaysRaises:
    def model_dump(self, mode: str = "python") -> Any:
        raise RuntimeError("broken model")

    def __repr__(self) -> str:
        return "Broken()"


class LenRaises(Sequence[int]):
    def __len__(self) -> int:
        raise OverflowError("too long")

    def __getitem__(self, i: Any) -> Any:
        raise IndexError(i)


class Unorderable:
    def __lt__(self, other: object) -> bool:
        raise TypeError("no order")

    def __repr__(self) -> str:
        return "U"


@dataclasses.dataclass
class MissingField:
    a: int


def test_hostile_objects_are_marked_not_fatal() -> None:
    gone = MissingField(1)
    del gone.a
    assert to_jsonable(ModelDumpAlwaysRaises()) == {
        "$repr": "Broken()",
        "$unserialisable": f"{__name__}.ModelDumpAlwaysRaises",
    }
    assert to_jsonable(LenRaises())["$unserialisable"] == f"{__name__}.LenRaises"
    assert to_jsonable(gone)["$unserialisable"] == f"{__name__}.MissingField"
    out = to_jsonable({Unorderable(), Unorderable()})
    assert out == [{"$repr": "U", "$unserialisable": f"{__name__}.Unorderable"}] * 2


def test_a_container_that_raises_while_converted_is_marked_not_fatal() -> None:
    out = to_jsonable({"bad": HostileMapping(a=1), "good": 1})
    assert out["good"] == 1
    assert out["bad"]["$unserialisable"] == f"{__name__}.HostileMapping"


# -- property tests ---------------------------------------------------------------------------

surrogate_text = st.lists(
    st.one_of(st.characters(), st.sampled_from(["\udcff", "\ud800", "\udfff", "\x00", "é", "🎉"])), max_size=20
).map("".join)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    surrogate_text,
    st.binary(max_size=20),
    st.datetimes(),
    st.uuids(),
    st.decimals(allow_nan=True),
)
hashables = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), surrogate_text, st.binary(max_size=8)
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=6),
        st.tuples(children, children),
        st.dictionaries(hashables, children, max_size=6),
        st.frozensets(hashables, max_size=6),
        st.sets(st.one_of(st.integers(), st.text(max_size=3)), max_size=6),
        st.builds(Point, st.integers(), st.floats(allow_nan=True), st.lists(st.text(max_size=3), max_size=3)),
        st.builds(HoldsAnything, st.integers(INT_MIN, INT_MAX), children),
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_output_is_always_plain_and_roundtrips_both_wire_formats(value: Any) -> None:
    out = to_jsonable(value)
    assert_plain(out)
    roundtrips(out)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values, st.integers(0, 4), st.integers(0, 4), st.integers(0, 60))
def test_limits_hold_for_any_input(value: Any, max_depth: int, max_items: int, max_str: int) -> None:
    limits = Limits(max_depth=max_depth, max_items=max_items, max_attr_value=max_str)
    out = to_jsonable(value, limits)
    assert_plain(out)
    assert depth_of(out) <= max_depth

    def check(v: Any) -> None:
        if isinstance(v, str):
            # Markers ("…[truncated, original N chars]", "<N more items>") are never cut themselves;
            # integers beyond 64 bits become their digits.
            assert len(v) <= max(max_str, 60) or v.lstrip("-").isdigit(), v
        if isinstance(v, list):
            assert len(v) <= max_items + 1  # + the "<N more items>" marker
            for x in v:
                check(x)
        elif isinstance(v, dict):
            assert len([k for k in v if k != "$more"]) <= max_items or "$repr" in v or "$bytes_b64" in v
            for k, x in v.items():
                check(k)
                check(x)

    check(out)


@settings(max_examples=100, deadline=None)
@given(values)
def test_recursive_containers_never_raise(value: Any) -> None:
    box: list[Any] = [value]
    box.append(box)
    holder: dict[str, Any] = {"box": box, "value": value}
    holder["again"] = holder
    out = to_jsonable(holder)
    assert out["again"] == RECURSIVE
    assert out["box"][1] == RECURSIVE
    roundtrips(out)


# -- sanitize_attrs ---------------------------------------------------------------------------


def test_primitive_attrs_are_returned_as_is() -> None:
    attrs = {"user": "u1", "order": 7, "amount": 12.5, "ok": True, "none": None, "name": "Zoë"}
    assert sanitize_attrs(attrs) is attrs


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({"x": math.nan}, {"x": "NaN"}),
        ({"x": 2**64}, {"x": str(2**64)}),
        ({"x": b"raw"}, {"x": "raw"}),
        ({1: "a"}, {"1": "a"}),
        ({"x": (1, 2)}, {"x": [1, 2]}),
        ({"x": "bad\udcff"}, {"x": "bad\\udcff"}),
        ({"k\udcff": 1}, {"k\\udcff": 1}),
        ({"x": {3, 1}}, {"x": [1, 3]}),
    ],
)
def test_attrs_needing_work_are_converted(attrs: dict[Any, Any], expected: dict[str, Any]) -> None:
    out = sanitize_attrs(attrs)
    assert out == expected
    roundtrips(out)


def test_long_attr_values_are_truncated() -> None:
    out = sanitize_attrs({"x": "v" * 20_000})
    assert len(out["x"]) <= DEFAULT_LIMITS.max_attr_value
    assert "20000" in out["x"]


def test_too_many_attrs_are_cut() -> None:
    out = sanitize_attrs({f"k{i}": i for i in range(10)}, Limits(max_items=4))
    assert len(out) == 5
    assert out["$more"] == "<6 more items>"


def test_attrs_that_are_not_a_dict_are_kept_under_a_key() -> None:
    assert sanitize_attrs(None) == {}
    assert sanitize_attrs([1, 2]) == {"$attrs": [1, 2]}


def test_attrs_input_is_not_modified() -> None:
    attrs: dict[str, Any] = {"x": math.nan, "y": [1, (2, 3)]}
    sanitize_attrs(attrs)
    assert math.isnan(attrs["x"]) and attrs["y"] == [1, (2, 3)]


def test_attrs_changed_during_the_check_do_not_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deterministic version of the race below: the dict grows while the fast path walks it."""
    attrs: dict[str, Any] = {"a": "é", "b": 1}
    real = sanitize_module._utf8_ok

    def meddle(text: str) -> bool:
        attrs["added"] = 2
        return real(text)

    monkeypatch.setattr(sanitize_module, "_utf8_ok", meddle)
    out = sanitize_attrs(attrs)
    assert out["a"] == "é" and out["b"] == 1


def test_attrs_mutated_by_another_thread_do_not_raise() -> None:
    attrs: dict[str, Any] = {f"k{i}": i for i in range(500)}
    stop = threading.Event()

    def mutate() -> None:
        i = 0
        while not stop.is_set():
            attrs[f"new{i % 50}"] = i
            attrs.pop(f"new{(i + 25) % 50}", None)
            i += 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so that a mutation lands mid-iteration
    worker = threading.Thread(target=mutate)
    worker.start()
    try:
        for _ in range(2000):
            out = sanitize_attrs(attrs)
            assert isinstance(out, dict)
    finally:
        stop.set()
        worker.join()
        sys.setswitchinterval(interval)


# -- sanitize_payload -------------------------------------------------------------------------


def test_small_payloads_are_converted_and_kept() -> None:
    assert sanitize_payload(Point(1, 2.0)) == {"x": 1, "y": 2.0, "tags": []}
    assert sanitize_payload({"n": math.inf}) == {"n": "Infinity"}
    assert sanitize_payload(None) is None
    assert sanitize_payload(5) == 5


def test_payload_strings_may_exceed_the_attr_limit() -> None:
    text = "p" * (DEFAULT_LIMITS.max_attr_value * 4)
    assert sanitize_payload({"body": text}) == {"body": text}


def test_oversized_payload_is_replaced_by_a_preview_with_the_original_size() -> None:
    limits = Limits(max_payload_bytes=1000, max_attr_value=100)
    payload = list(range(300))
    expected_json = json.dumps(payload, separators=(",", ":"))  # independent oracle for the compact encoding
    assert len(expected_json) > 1000
    out = sanitize_payload(payload, limits)
    assert out == {"$truncated": True, "$original_bytes": len(expected_json), "$preview": expected_json[:100]}
    roundtrips(out)


def test_payload_of_exactly_the_limit_is_kept() -> None:
    payload = "a" * 98  # '"' + 98 + '"' = 100 bytes of JSON
    assert sanitize_payload(payload, Limits(max_payload_bytes=100)) == payload
    assert sanitize_payload(payload + "a", Limits(max_payload_bytes=100))["$truncated"] is True


def test_payload_preview_of_multibyte_text_is_valid_text() -> None:
    limits = Limits(max_payload_bytes=50, max_attr_value=21)
    out = sanitize_payload(["é" * 100], limits)
    assert out["$truncated"] is True
    assert out["$preview"].startswith('["éé')
    out["$preview"].encode("utf-8")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values, st.integers(0, 300))
def test_payload_always_fits_and_roundtrips(value: Any, max_bytes: int) -> None:
    limits = Limits(max_payload_bytes=max_bytes, max_attr_value=40)
    out = sanitize_payload(value, limits)
    assert_plain(out)
    roundtrips(out)
    if not (isinstance(out, dict) and out.get("$truncated") is True):
        assert len(msgspec.json.encode(out)) <= max_bytes


# -- sanitize_message -------------------------------------------------------------------------


def test_messages_are_bounded_and_encodable() -> None:
    assert sanitize_message("hello") == "hello"
    out = sanitize_message("m" * 50_000)
    assert len(out) <= DEFAULT_LIMITS.max_message and "50000" in out
    assert sanitize_message("x\udcff") == "x\\udcff"
    assert sanitize_message(42) == "42"
    assert sanitize_message(ReprRaises()) == f"<unprintable {__name__}.ReprRaises>"
