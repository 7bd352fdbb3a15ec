"""The C ids and scans (``zoomtrace/_speedups_ids.c``, ``_speedups_scan.c``) against the Python code they stand for.

``uuid7`` must make ids as ``wire.record._uuid7_python`` does (time prefix, version and variant; random
bits seeded again in a forked child). ``needs_care`` must answer exactly as ``sanitize._needs_care_python``,
and ``Scrubber.json_unchanged`` (the C scan of the JSON bytes) as the pure-Python reference
``payload_unchanged(msgspec.json.decode(encoded), encoded)``, except where the C is allowed to be more
careful: False for a key or pair name written with a backslash escape, for whitespace between tokens
(msgspec writes none) and for bytes that are not JSON; and it may say True for JSON with duplicate keys.
Whatever it answers, a True must be sound: ``scrub_value`` of the decoded JSON changes nothing. Also here:
nesting at the walk's limit, garbage bytes, a key cache flooded with keys, and ``ZOOMTRACE_PURE_PYTHON``
in a fresh interpreter.

Tests that compare with the C are skipped where it is not built, and fail under ``CI``, where it must be.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import zoomtrace
from zoomtrace import _native
from zoomtrace.runtime import scrub
from zoomtrace.runtime.sanitize import _needs_care_python
from zoomtrace.runtime.scrub import Scrubber
from zoomtrace.wire import record
from zoomtrace.wire.record import _uuid7_python
from zoomtrace.wire.spool import _count_lines_python

try:
    import helpers as h
except ImportError:  # tests/ imported as a package
    from tests import helpers as h

speedups = _native.speedups
PURE_PYTHON_ENV = _native.PURE_PYTHON_ENV

NEUTRAL = ["", "order_id", "customer", "name", "qty", "id", "span_id", "passage", "author", "tokenizer", "1", "a:b"]
SENSITIVE = ["password", "api_key", "sessionId", "Authorization", "token_count", "sid", "ſecret", "to\u212aen"]
UNICODE = ["ünï", "日本"]
ESCAPED = ['say "hi"', "back\\slash", "line\nbreak", "\x1f", "pass\\word"]
TEXTS = [
    "leave at the door",
    "password",
    "token",
    "password=hunter2",
    "token: abc",
    "at 12:30",
    "Authorization: Bearer abc.def",
    "bearer abc",
    "https://u:pw@example.com/x",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIabc",
    "4111111111111111",
    "card 4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "ord-4111111111111111",
    "ts 1733140000000",
    'quote " and \\ backslash',
    "ends with a backslash \\",
    "line\n4111111111111111",
    "ünïcødé ſecret 日本",
]

names = st.one_of(st.sampled_from(NEUTRAL + SENSITIVE + UNICODE + ESCAPED), st.text(max_size=6))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63) + 1, 2**63 - 1),
    st.sampled_from([4111111111111111, -4111111111111111, 378282246310005, 1733140000000, 10**18]),
    st.floats(),
    st.sampled_from(TEXTS),
    st.text(max_size=12),
    st.text(alphabet='0123456789 -:=\\"x', max_size=24),
)
payloads = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(names, st.integers(0, 2)), inner, max_size=4),  # 1 and "1": duplicate keys
        st.tuples(names, inner).map(list),  # a (name, value) pair
    ),
    max_leaves=20,
)
encoded_payloads = payloads.map(msgspec.json.encode)
#: Near-JSON: tokens glued at random, mostly invalid, sometimes valid in unusual shapes.
near_json = st.lists(
    st.sampled_from(
        [b"{", b"}", b"[", b"]", b'"', b":", b",", b"\\", b" ", b"1", b"a", b"null", b'"k"', b'"password"']
    ),
    max_size=16,
).map(b"".join)
garbage = st.one_of(
    st.binary(max_size=64),
    near_json,
    st.tuples(encoded_payloads, st.integers(0, 1000)).map(lambda t: t[0][: t[1] % max(len(t[0]), 1)]),
    st.tuples(encoded_payloads, st.sampled_from([b"\\", b"]", b"}", b'"', b",", b"\xff"])).map(lambda t: t[0] + t[1]),
    encoded_payloads.map(lambda e: b"[" + e),
    encoded_payloads.map(lambda e: e[:-1] + b"\\"),
)
GARBAGE = [
    b"", b" ", b"\\", b'"', b'"abc', b'"abc\\"', b'"abc\\', b"[", b"]", b"{", b"}", b"][", b"{]", b"[}",
    b'{"a":1', b'{"a":1}}', b'{"a"}', b'{"a":}', b'{"a" 1}', b'{"a"::1}', b'{"a":1 "b":2}', b"[1,]", b"[1 2]",
    b"{,}", b"nul", b"tru", b'"\xff"', b'{"\xff":1}', b'["\xff",1]', b'"\\u12"', b'"\\x"', b'{"a":1}\x00',
    b"[" * 100_000, b'{"a":' * 50_000, b'["a",' * 50_000,
]  # fmt: skip
SLOW = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


@pytest.fixture(scope="module")
def native() -> ModuleType:
    built = h.native_speedups()
    assert scrub._native is built
    return built


def reference(scrubber: Scrubber, encoded: bytes) -> bool:
    """The pure-Python answer: ``payload_unchanged`` on the decoded JSON, with the C speedups switched off."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(scrub, "_native", None)
        return scrubber.payload_unchanged(msgspec.json.decode(encoded), encoded)


def assert_sound(scrubber: Scrubber, encoded: bytes) -> None:
    value = msgspec.json.decode(encoded)
    assert scrubber.scrub_value(value) == value, (
        f"{scrubber!r}.json_unchanged said True, but scrub_value changes {encoded!r}"
    )


def _walk(value: Any, visit: Callable[[list[Any]], None]) -> None:
    if type(value) is _Pairs or type(value) is list:
        visit(value)
        for item in value:
            _walk(item[1] if type(value) is _Pairs else item, visit)


class _Pairs(list):  # type: ignore[type-arg]
    """A JSON object as its (key, value) pairs, duplicates kept."""


def allowed_difference(encoded: bytes) -> tuple[bool, bool]:
    """(a key or pair name is written with a backslash escape, an object has a duplicate key)."""
    escaped_texts = {json.loads(m) for m in _STRING.findall(encoded) if b"\\" in m}
    escaped = duplicate = False

    def visit(container: list[Any]) -> None:
        nonlocal escaped, duplicate
        if type(container) is _Pairs:
            keys = [k for k, _ in container]
            duplicate |= len(set(keys)) < len(keys)
            escaped |= any(k in escaped_texts for k in keys)
        elif len(container) == 2 and type(container[0]) is str:
            escaped |= container[0] in escaped_texts

    _walk(json.loads(encoded, object_pairs_hook=_Pairs), visit)
    return escaped, duplicate


def check_against_reference(c_scrubber: Scrubber, ref_scrubber: Scrubber, encoded: bytes) -> None:
    got = c_scrubber.json_unchanged(encoded)
    assert type(got) is bool
    want = reference(ref_scrubber, encoded)
    if got == want:
        return
    escaped, duplicate = allowed_difference(encoded)
    if got:
        assert duplicate, f"C says True, Python False, no duplicate key: {encoded!r}"
        assert_sound(ref_scrubber, encoded)
    else:
        spaced = any(c in _STRING.sub(b"", encoded) for c in b" \t\r\n")
        assert escaped or spaced, f"C says False, Python True, no escaped key or pair name, no whitespace: {encoded!r}"


def _needs_care_fragments() -> st.SearchStrategy[bytes]:
    fragment = st.one_of(
        st.text(alphabet="0123456789", min_size=17, max_size=21).map(str.encode),
        st.sampled_from([b"null", b"nul", b"nulL", b"NULL", b"n", b"ull", b"", b'"', b"\\", b"7", b" ", b"-"]),
        st.text(alphabet="abnlu", max_size=4).map(str.encode),
        st.sampled_from(["é", "日本", "١٢٣", "𝟗"]).map(str.encode),
    )
    return st.one_of(st.lists(fragment, max_size=8).map(b"".join), st.binary(max_size=40))


@given(st.lists(st.sampled_from([b"\n", b"x", b"\n\n", b"{}", b"\x00", b"\xff", b"a" * 70]), max_size=80))
def test_count_lines_matches_python(native: ModuleType, parts: list[bytes]) -> None:
    """Newlines anywhere (first, last, back to back, across the 64-byte blocks memchr reads) are all counted."""
    data = b"".join(parts)
    assert native.count_lines(data) == _count_lines_python(data)
    assert native.count_lines(memoryview(data)) == _count_lines_python(data)


@SLOW
@given(_needs_care_fragments())
def test_needs_care_matches_python(native: ModuleType, encoded: bytes) -> None:
    assert native.needs_care(encoded) is _needs_care_python(encoded)


@pytest.mark.parametrize("data", [b"", b"1" * 18, b"1" * 19, b"x" + b"9" * 19 + b"x", b"nul", b"null", b"nu ll"])
def test_needs_care_edges(native: ModuleType, data: bytes) -> None:
    assert native.needs_care(data) is _needs_care_python(data)


LONG_LIVED_C, LONG_LIVED_REF = Scrubber(), Scrubber()


@SLOW
@given(encoded=encoded_payloads)
def test_json_unchanged_matches_python(native: ModuleType, encoded: bytes) -> None:
    check_against_reference(LONG_LIVED_C, LONG_LIVED_REF, encoded)
    check_against_reference(Scrubber(), Scrubber(), encoded)


@pytest.mark.parametrize("indent", [0, 2])
@SLOW
@given(encoded=encoded_payloads)
def test_whitespace_between_tokens_is_maybe_not(native: ModuleType, indent: int, encoded: bytes) -> None:
    """msgspec writes none: JSON with some (``[ "token","x"]`` hides a pair name from a lax scan) is refused."""
    spaced = msgspec.json.format(encoded, indent=indent)
    if spaced != encoded:
        assert Scrubber().json_unchanged(spaced) is False


@pytest.mark.parametrize(
    ("payload", "unchanged"),
    [
        ({"order_id": 7, "lines": [{"qty": 2}]}, True),
        ({"password": "x"}, False),
        ({"a": ["token", 1]}, False),
        ({"a": [["x", 1], ["api_key", 2]]}, False),
        (["token", 1, 2], True),  # three items: no pair
        ([1, "token"], True),
        (["x", "token"], True),
        ({"a": "at 12:30"}, False),
        ({"a:b": 1}, False),
        ({"ſecret": 1}, False),
        ("4111 1111 1111 1111", False),
    ],
)
def test_json_unchanged_cases(native: ModuleType, payload: Any, unchanged: bool) -> None:
    encoded = msgspec.json.encode(payload)
    assert Scrubber().json_unchanged(encoded) is unchanged
    assert reference(Scrubber(), encoded) is unchanged


#: Text made of what the byte tests look for: digit runs and what may stand around them (a card number's
#: shapes), and the pieces of their trigger words.
_byte_test_text = st.lists(
    st.one_of(
        st.text(alphabet="0123456789", min_size=1, max_size=17),
        st.sampled_from([" ", "-", "x", "_", ":", ".", "+", "/", "\n", "é", "earer", "EARER", "eare", "arer"]),
        st.sampled_from(["-----BEGIN", "----BEGIN", "-----BEGI", "bearer", "Bearer", "=", "e", "r"]),
    ),
    max_size=12,
).map("".join)


@SLOW
@given(text=_byte_test_text, before=st.integers(0, 12), shape=st.sampled_from(["value", "list", "key"]))
def test_json_unchanged_byte_tests_match_python(native: ModuleType, text: str, before: int, shape: str) -> None:
    """The card shapes and trigger words are found wherever they stand: at every offset from the start of the
    JSON (the C finds digit runs in 64-byte words of digit bits, and words by their first and last bytes), at
    its end, split."""
    padded = "a" * before + text
    payload = {"note": padded} if shape == "value" else [padded, 1] if shape == "list" else {padded: 1}
    check_against_reference(Scrubber(), Scrubber(), msgspec.json.encode(payload))
    check_against_reference(Scrubber(), Scrubber(), msgspec.json.encode(padded))


@pytest.mark.parametrize("run", [3, 4, 12, 13, 14, 19])
@pytest.mark.parametrize("offset", [*range(9), *range(44, 66), *range(108, 130)])
def test_digit_runs_at_every_offset(native: ModuleType, run: int, offset: int) -> None:
    """needs_care's long runs and the card shapes, for runs of each length at each alignment, across the C's
    64-byte words of digit bits too (a run may start in one and end in the next)."""
    for text in (f"{'x' * offset} {'7' * run}", f"{'x' * offset}{'7' * run} {'7' * run}", "7" * (offset + run)):
        encoded = msgspec.json.encode(text)
        assert native.needs_care(encoded) is _needs_care_python(encoded)
        check_against_reference(Scrubber(), Scrubber(), encoded)
        check_against_reference(Scrubber(), Scrubber(), msgspec.json.encode({"a": [text, "\t"]}))


@pytest.mark.parametrize("word", ["earer", "EARER", "-----BEGIN", "null", "=", "1234 5678", " 4111111111111"])
def test_words_at_every_offset(native: ModuleType, word: str) -> None:
    """Each word the byte tests look for, at every offset across several of the C's 64-byte blocks, with text
    on either side that holds its first and last bytes too, and cut short of its last byte."""
    for offset in range(200):
        for text in ("ab" * 100)[:offset] + word, "e" * offset + word + "r" * 3, "x" * offset + word[:-1]:
            for encoded in (msgspec.json.encode(text), msgspec.json.encode({"note": text}), text.encode()):
                assert native.needs_care(encoded) is _needs_care_python(encoded)
                if encoded[:1] in (b'"', b"{"):
                    check_against_reference(Scrubber(), Scrubber(), encoded)


def test_json_unchanged_allowed_differences(native: ModuleType) -> None:
    for payload in ({"a\nb": 1}, ['say "hi"', 1], {"x": {"back\\slash": 2}}):
        encoded = msgspec.json.encode(payload)
        assert reference(Scrubber(), encoded) is True
        assert Scrubber().json_unchanged(encoded) is False
    assert allowed_difference(msgspec.json.encode({1: "a", "1": "b"})) == (False, True)


SOUNDNESS_SCRUBBERS = [Scrubber(), Scrubber(["order"], scrub_values=False)]


@pytest.mark.parametrize("indent", [None, 2], ids=["compact", "indented"])
@SLOW
@given(encoded=encoded_payloads)
def test_json_unchanged_is_sound(indent: int | None, encoded: bytes) -> None:
    """Holds with or without the C: a True means the careful walk would change nothing."""
    if indent is not None:
        encoded = msgspec.json.format(encoded, indent=indent)
    for scrubber in [*SOUNDNESS_SCRUBBERS, Scrubber()]:
        if scrubber.json_unchanged(encoded):
            assert_sound(scrubber, encoded)


def _nest(depth: int, shape: str, inner: Any) -> Any:
    value = inner
    for i in range(depth):
        if shape == "list" or (shape == "mixed" and i % 2):
            value = [value]
        elif shape == "pair":
            value = ["name", value]
        else:
            value = {"k": value}
    return value


@pytest.mark.parametrize("shape", ["list", "dict", "mixed", "pair"])
@pytest.mark.parametrize("inner", [1, [], {}, ["name", 1], ["token", 1], {"password": 1}, {"a": "b"}], ids=repr)
def test_nesting_at_the_limit(native: ModuleType, shape: str, inner: Any) -> None:
    answers = []
    for depth in range(97, 102):
        encoded = msgspec.json.encode(_nest(depth, shape, inner))
        want = reference(Scrubber(), encoded)
        assert Scrubber().json_unchanged(encoded) is want, f"{shape} x {depth} around {inner!r}"
        answers.append(want)
    if inner in (1, [], {}, ["name", 1], {"a": "b"}):  # the limit lies in this range: both answers occur
        assert True in answers and False in answers


GARBAGE_SCRUBBER = Scrubber()


@pytest.mark.parametrize("data", GARBAGE, ids=lambda d: repr(d[:12]) + f"..{len(d)}")
def test_garbage_cases_answer_false(native: ModuleType, data: bytes) -> None:
    assert GARBAGE_SCRUBBER.json_unchanged(data) is False


@SLOW
@given(data=garbage)
def test_garbage_returns_a_bool(native: ModuleType, data: bytes) -> None:
    assert type(GARBAGE_SCRUBBER.json_unchanged(data)) is bool


@SLOW
@given(data=st.one_of(garbage, near_json))
def test_garbage_true_only_for_valid_json(native: ModuleType, data: bytes) -> None:
    """Not JSON: False. JSON after all (``[]``, ``"\\\\"``, ``{"k" :1}``...): the reference's answer."""
    try:
        msgspec.json.decode(data)
    except msgspec.ValidationError:  # JSON, but a number msgspec cannot hold: no reference to compare with
        return
    except msgspec.DecodeError:
        assert GARBAGE_SCRUBBER.json_unchanged(data) is False, f"True for bytes that are not JSON: {data!r}"
        return
    check_against_reference(GARBAGE_SCRUBBER, Scrubber(), data)


def test_key_cache_flooded_with_harmless_keys(native: ModuleType) -> None:
    c_scrubber, ref_scrubber = Scrubber(), Scrubber()
    for batch in range(110):  # 22,000 distinct names: keys and pair names
        encoded = msgspec.json.encode({f"field_{batch}_{i}": [f"name_{batch}_{i}", i] for i in range(100)})
        assert c_scrubber.json_unchanged(encoded) is reference(ref_scrubber, encoded) is True
        if batch % 10 == 0:
            for payload in ({"field_0_0": 1, "password": 2}, [["name_0_0", 1], ["api_key", 2]], {"sid": {"a": 1}}):
                encoded = msgspec.json.encode(payload)
                assert c_scrubber.json_unchanged(encoded) is reference(ref_scrubber, encoded) is False
    assert len(c_scrubber._harmless) <= scrub._CACHE_MAX
    for payload in ({"password": 1}, ["token", 1], {f"field_109_{i}": i for i in range(5)} | {"sessionId": 1}):
        assert c_scrubber.json_unchanged(msgspec.json.encode(payload)) is False
    assert c_scrubber.json_unchanged(msgspec.json.encode({"field_109_99": 1, "field_0_0": 2})) is True


_PROBE = """
import json
from zoomtrace import _native
from zoomtrace.runtime import sanitize, scrub
from zoomtrace.wire import record
s = scrub.Scrubber()
pure = [_native.speedups is None, scrub._native is None, sanitize._needs_care is sanitize._needs_care_python]
checks = [s.json_unchanged(b'{"a":1}'), s.json_unchanged(b'{"password":1}')]
print(json.dumps([*pure, *checks, record.uuid7 is record._uuid7_python]))
"""


def _probe(pure: bool) -> list[bool]:
    env = {k: v for k, v in os.environ.items() if k != PURE_PYTHON_ENV}
    if pure:
        env[PURE_PYTHON_ENV] = "1"
    package_root = str(Path(zoomtrace.__file__).parents[1])  # this very zoomtrace, however the parent found it
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_pure_python_env_switches_the_c_off() -> None:
    assert _probe(pure=True) == [True, True, True, True, False, True]


def test_c_is_used_where_built() -> None:
    built = importlib.util.find_spec("zoomtrace._speedups") is not None
    if os.environ.get("CI"):
        assert built, "zoomtrace._speedups must be built in CI"
    assert _probe(pure=False) == [not built, not built, not built, True, False, not built]


# -- record ids -------------------------------------------------------------------------------------


HEX = re.compile(r"[0-9a-f]+")
UUID7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@pytest.mark.parametrize(
    "ts", [0, 1, 999_999, 1_000_000, -1, -1_000_001, 1_733_140_000_123_456_789, 2**63 - 1, -(2**63), 2**64, -(2**80)]
)
def test_uuid7_time_prefix_version_and_variant_as_python(native: ModuleType, ts: int) -> None:
    made = native.uuid7(ts)
    assert UUID7.fullmatch(made), made
    assert made[:14] == _uuid7_python(ts)[:14]


def test_uuid7_without_a_time_is_now(native: ModuleType) -> None:
    before = time.time_ns() // 1_000_000
    made = native.uuid7()
    after = time.time_ns() // 1_000_000
    assert before <= int(made[:8] + made[9:13], 16) <= after
    assert UUID7.fullmatch(native.uuid7(None))


def test_uuid7_random_bits_do_not_repeat(native: ModuleType) -> None:
    ts = time.time_ns()
    made = {native.uuid7(ts) for _ in range(100_000)}
    assert len(made) == 100_000
    tails = {m[15:] for m in made}  # the 74 random bits (version and variant digits aside) vary
    assert len(tails) == 100_000


@pytest.mark.parametrize(("name", "size"), [("new_trace_id", 32), ("new_span_id", 16)])
def test_trace_and_span_ids_as_python(native: ModuleType, name: str, size: int) -> None:
    """Lower-case hex of the W3C sizes, as the Python ones, random (no repeats, every digit in every place)."""
    made, python = getattr(native, name), getattr(record, f"_{name}_python")
    ids = [made() for _ in range(50_000)]
    assert {len(i) for i in ids} == {len(python())} == {size}
    assert all(HEX.fullmatch(i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert all(len({i[place] for i in ids}) == 16 for place in range(size))
    assert getattr(record, name) is made


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX")
def test_a_forked_child_makes_other_ids(native: ModuleType) -> None:
    """Without seeding again, the child's first id would be the parent's next one."""
    ts = time.time_ns()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, then out without the parent's cleanup
        made = [native.uuid7(ts), native.new_trace_id(), native.new_span_id()]
        os.write(write, ",".join(made).encode())
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as f:
        child = f.read().decode().split(",")
    assert os.waitstatus_to_exitcode(status) == 0
    parent = [native.uuid7(ts), native.new_trace_id(), native.new_span_id()]
    assert len(child) == 3
    assert not set(child) & set(parent)


@pytest.mark.parametrize("max_nesting", [0, 1, 2, 2**20, 461_168_601_842_738_791, 2**63 - 1])
def test_any_nesting_limit_is_safe(native: ModuleType, max_nesting: int) -> None:
    """The scan's stack is bounded by the JSON's own size too: a limit whose stack would not fit in memory, or
    whose size in bytes wraps around, is no danger (found by a review under AddressSanitizer)."""
    deep = b"[" * 5000 + b"]" * 5000
    cache = native.key_cache()
    got = native.json_unchanged(deep, cache, {}, lambda names: True, max_nesting)
    assert got is (max_nesting > 5000)
    assert native.json_unchanged(b'[["a",1]]', cache, {"a": None}, lambda names: True, max_nesting) is (max_nesting > 2)


@pytest.mark.parametrize("ts", [1.5, "1", b"1", object()])
def test_uuid7_takes_an_int_or_none_only(native: ModuleType, ts: object) -> None:
    with pytest.raises(TypeError):
        native.uuid7(ts)
    with pytest.raises(TypeError):
        _uuid7_python(ts)  # type: ignore[arg-type]
