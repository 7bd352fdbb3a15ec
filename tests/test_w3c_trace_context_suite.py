"""The w3c/trace-context test suite (``test/test.py``), every case, at strict level 2, against Zoom.

Ported from https://github.com/w3c/trace-context/blob/main/test/test.py as of commit
6261328fd701ca967f13ca0543504db879c3b6e0 (after PR #584, which made the strict tracestate key
tests follow the Level 2 key grammar). The suite sends headers to a service and reads the
headers of the calls that service makes on; here the service is Zoom's own path for that:
``zt.extract`` of the incoming headers, a span continuing them, and one span per outgoing call
whose headers ``zt.inject`` writes, as the HTTP and Kafka integrations do.

The harness side is written here from the suite's harness (``test/tracecontext``): exactly one
``traceparent`` in the ``HEXDIGLC`` version-00 shape, and a ``tracestate`` that splits on
``OWS "," OWS`` and raises on a malformed member or a repeated key, so a header Zoom sends
must be valid for a case to pass. Each test keeps the suite's name, inputs and assertions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

import zoomtrace as zt

TRACE_ID = "12345678901234567890123456789012"
PARENT_ID = "1234567890123456"

Headers = list[tuple[str, str]]


# -- the harness side ------------------------------------------------------------------------------

_TRACEPARENT_NAME = re.compile(r"traceparent", re.IGNORECASE)
_TRACESTATE_NAME = re.compile(r"tracestate", re.IGNORECASE)
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
# Trace Context Level 2, "Key" and "Value".
_KEY = r"[a-z0-9][_0-9a-z\-*/@]{0,255}"
_VALUE = r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
_MEMBER = re.compile(rf"({_KEY})=({_VALUE})")
_DELIMITER = re.compile(r"[ \t]*,[ \t]*")


@dataclass(frozen=True)
class Traceparent:
    version: int
    trace_id: str
    parent_id: str
    trace_flags: int


class Tracestate(dict[str, str]):
    """The harness's reading of the ``tracestate`` lines Zoom sent, in order."""

    def read(self, line: str) -> None:
        for member in _DELIMITER.split(line):
            if not member:
                continue
            match = _MEMBER.fullmatch(member)
            assert match is not None, f"Zoom sent a malformed tracestate member {member!r}"
            key, value = match.groups()
            assert key not in self, f"Zoom sent the tracestate key {key!r} twice"
            self[key] = value

    def __str__(self) -> str:
        return ",".join(f"{key}={value}" for key, value in self.items())


def get_traceparent(headers: Headers) -> Traceparent:
    found = [value for name, value in headers if _TRACEPARENT_NAME.fullmatch(name)]
    assert len(found) == 1, f"expect one traceparent header, got {found!r}"
    match = _TRACEPARENT.fullmatch(found[0])
    assert match is not None, f"Zoom sent a malformed traceparent {found[0]!r}"
    version, trace_id, parent_id, flags = match.groups()
    return Traceparent(int(version, 16), trace_id, parent_id, int(flags, 16))


def get_tracestate(headers: Headers) -> Tracestate:
    state = Tracestate()
    for name, value in headers:
        if _TRACESTATE_NAME.fullmatch(name):
            state.read(value)
    return state


# -- the service: Zoom continuing the incoming trace, one span per outgoing call --------------------


def make_request(headers: list[list[str]], count: int = 1) -> list[Headers]:
    """The headers of each of ``count`` calls the service makes while handling a request."""
    calls: list[Headers] = []
    with zt.span("handle request", context=zt.extract([(name, value) for name, value in headers])):
        for _ in range(count):
            with zt.span("call harness"):
                calls.append(zt.inject([]))
    return calls


def make_single_request_and_get_tracecontext(headers: list[list[str]]) -> tuple[Traceparent, Tracestate]:
    (sent,) = make_request(headers)
    return get_traceparent(sent), get_tracestate(sent)


def tp(flags: str = "00", trace_id: str = TRACE_ID) -> list[str]:
    return ["traceparent", f"00-{trace_id}-{PARENT_ID}-{flags}"]


# -- TraceContextTest ----------------------------------------------------------------------------------


def test_both_traceparent_and_tracestate_missing() -> None:
    make_single_request_and_get_tracecontext([])


def test_traceparent_included_tracestate_missing() -> None:
    traceparent, _ = make_single_request_and_get_tracecontext([tp("01")])
    assert traceparent.trace_id == TRACE_ID
    assert traceparent.parent_id != PARENT_ID


def test_traceparent_duplicated() -> None:
    traceparent, _ = make_single_request_and_get_tracecontext([tp("01", "12345678901234567890123456789011"), tp("01")])
    assert traceparent.trace_id != "12345678901234567890123456789011"
    assert traceparent.trace_id != TRACE_ID


@pytest.mark.parametrize("name", ["trace-parent", "trace.parent"])
def test_traceparent_header_name(name: str) -> None:
    traceparent, _ = make_single_request_and_get_tracecontext([[name, f"00-{TRACE_ID}-{PARENT_ID}-01"]])
    assert traceparent.trace_id != TRACE_ID


@pytest.mark.parametrize("name", ["TraceParent", "TrAcEpArEnT", "TRACEPARENT"])
def test_traceparent_header_name_valid_casing(name: str) -> None:
    traceparent, _ = make_single_request_and_get_tracecontext([[name, f"00-{TRACE_ID}-{PARENT_ID}-01"]])
    assert traceparent.trace_id == TRACE_ID


@pytest.mark.parametrize(
    ("value", "continued"),
    [
        # test_traceparent_version_0x00
        (f"00-{TRACE_ID}-{PARENT_ID}-01.", False),
        (f"00-{TRACE_ID}-{PARENT_ID}-01-what-the-future-will-be-like", False),
        # test_traceparent_version_0xcc
        (f"cc-{TRACE_ID}-{PARENT_ID}-01", True),
        (f"cc-{TRACE_ID}-{PARENT_ID}-01-what-the-future-will-be-like", True),
        (f"cc-{TRACE_ID}-{PARENT_ID}-01.what-the-future-will-be-like", False),
        # test_traceparent_version_0xff
        (f"ff-{TRACE_ID}-{PARENT_ID}-01", False),
        # test_traceparent_version_illegal_characters
        (f".0-{TRACE_ID}-{PARENT_ID}-01", False),
        (f"0.-{TRACE_ID}-{PARENT_ID}-01", False),
        # test_traceparent_version_too_long
        (f"000-{TRACE_ID}-{PARENT_ID}-01", False),
        (f"0000-{TRACE_ID}-{PARENT_ID}-01", False),
        # test_traceparent_version_too_short
        (f"0-{TRACE_ID}-{PARENT_ID}-01", False),
        # test_traceparent_parent_id_all_zero
        (f"00-{TRACE_ID}-0000000000000000-01", False),
        # test_traceparent_parent_id_illegal_characters
        (f"00-{TRACE_ID}-.234567890123456-01", False),
        (f"00-{TRACE_ID}-123456789012345.-01", False),
        # test_traceparent_parent_id_too_long
        (f"00-{TRACE_ID}-12345678901234567-01", False),
        # test_traceparent_parent_id_too_short
        (f"00-{TRACE_ID}-123456789012345-01", False),
        # test_traceparent_trace_flags_illegal_characters
        (f"00-{TRACE_ID}-{PARENT_ID}-.0", False),
        (f"00-{TRACE_ID}-{PARENT_ID}-0.", False),
        # test_traceparent_trace_flags_too_long
        (f"00-{TRACE_ID}-{PARENT_ID}-001", False),
        # test_traceparent_trace_flags_too_short
        (f"00-{TRACE_ID}-{PARENT_ID}-1", False),
        # test_traceparent_ows_handling
        (f" 00-{TRACE_ID}-{PARENT_ID}-01", True),
        (f"\t00-{TRACE_ID}-{PARENT_ID}-01", True),
        (f"00-{TRACE_ID}-{PARENT_ID}-01 ", True),
        (f"00-{TRACE_ID}-{PARENT_ID}-01\t", True),
        (f"\t 00-{TRACE_ID}-{PARENT_ID}-01 \t", True),
    ],
)
def test_traceparent_values(value: str, continued: bool) -> None:
    traceparent, _ = make_single_request_and_get_tracecontext([["traceparent", value]])
    assert (traceparent.trace_id == TRACE_ID) is continued


@pytest.mark.parametrize(
    ("trace_id", "not_expected"),
    [
        # test_traceparent_trace_id_all_zero
        ("00000000000000000000000000000000", ["00000000000000000000000000000000"]),
        # test_traceparent_trace_id_illegal_characters
        (".2345678901234567890123456789012", [".2345678901234567890123456789012"]),
        ("1234567890123456789012345678901.", ["1234567890123456789012345678901."]),
        # test_traceparent_trace_id_too_long
        ("123456789012345678901234567890123", [f"{TRACE_ID}3", TRACE_ID, "23456789012345678901234567890123"]),
        # test_traceparent_trace_id_too_short
        ("1234567890123456789012345678901", ["1234567890123456789012345678901"]),
    ],
)
def test_traceparent_trace_id(trace_id: str, not_expected: list[str]) -> None:
    traceparent, _ = make_single_request_and_get_tracecontext([["traceparent", f"00-{trace_id}-{PARENT_ID}-01"]])
    assert traceparent.trace_id not in not_expected


def test_tracestate_included_traceparent_missing() -> None:
    _, tracestate1 = make_single_request_and_get_tracecontext([["tracestate", "foo=1"]])
    _, tracestate2 = make_single_request_and_get_tracecontext([["tracestate", "foo=1,bar=2"]])
    assert len(tracestate1) == len(tracestate2)


def test_tracestate_included_traceparent_included() -> None:
    traceparent, tracestate = make_single_request_and_get_tracecontext([tp(), ["tracestate", "foo=1,bar=2"]])
    assert traceparent.trace_id == TRACE_ID
    assert tracestate["foo"] == "1"
    assert tracestate["bar"] == "2"


@pytest.mark.parametrize("name", ["trace-state", "trace.state"])
def test_tracestate_header_name(name: str) -> None:
    _, tracestate = make_single_request_and_get_tracecontext([tp(), [name, "foo=1"]])
    assert "foo" not in tracestate


@pytest.mark.parametrize("name", ["TraceState", "TrAcEsTaTe", "TRACESTATE"])
def test_tracestate_header_name_valid_casing(name: str) -> None:
    _, tracestate = make_single_request_and_get_tracecontext([tp(), [name, "foo=1"]])
    assert tracestate["foo"] == "1"


def test_tracestate_empty_header() -> None:
    traceparent, tracestate = make_single_request_and_get_tracecontext([tp(), ["tracestate", ""]])
    assert not tracestate or str(tracestate) != ""
    assert traceparent.trace_id == TRACE_ID
    for lines in (["foo=1", ""], ["", "foo=1"]):
        traceparent, tracestate = make_single_request_and_get_tracecontext(
            [tp(), *(["tracestate", line] for line in lines)]
        )
        assert traceparent.trace_id == TRACE_ID
        assert tracestate["foo"] == "1"


def test_tracestate_multiple_headers_different_keys() -> None:
    traceparent, tracestate = make_single_request_and_get_tracecontext(
        [tp(), ["tracestate", "foo=1,bar=2"], ["tracestate", "rojo=1,congo=2"], ["tracestate", "baz=3"]]
    )
    assert traceparent.trace_id == TRACE_ID
    text = str(tracestate)
    order = ["foo=1", "bar=2", "rojo=1", "congo=2", "baz=3"]
    assert all(member in text for member in order)
    assert [text.index(member) for member in order] == sorted(text.index(member) for member in order)


@pytest.mark.parametrize(
    ("lines", "either"),
    [
        (["foo=1,foo=1"], ["foo=1"]),
        (["foo=1,foo=2"], ["foo=1", "foo=2"]),
        (["foo=1", "foo=1"], ["foo=1"]),
        (["foo=1", "foo=2"], ["foo=1", "foo=2"]),
    ],
)
def test_tracestate_duplicated_keys(lines: list[str], either: list[str]) -> None:
    """Strict level 2: "expects the tracestate to be inherited", the duplicates kept as-is or one discarded."""
    traceparent, tracestate = make_single_request_and_get_tracecontext(
        [tp(), *(["tracestate", line] for line in lines)]
    )
    assert traceparent.trace_id == TRACE_ID
    assert any(member in str(tracestate) for member in either)


def test_tracestate_all_allowed_characters() -> None:
    key_without_vendor = "".join(map(chr, range(0x61, 0x7A + 1))) + "0123456789" + "_-*/"
    key_with_vendor = key_without_vendor + "@a-z0-9_-*/"
    value = "".join(
        [
            "".join(map(chr, range(0x20, 0x2B + 1))),
            "".join(map(chr, range(0x2D, 0x3C + 1))),
            "".join(map(chr, range(0x3E, 0x7E + 1))),
        ]
    )
    for key in (key_without_vendor, key_with_vendor):
        _, tracestate = make_single_request_and_get_tracecontext([tp(), ["tracestate", key + "=" + value]])
        assert tracestate[key] == value


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("foo=1 \t , \t bar=2, \t baz=3", {"foo": "1", "bar": "2", "baz": "3"}),
        ("foo=1\t \t,\t \tbar=2,\t \tbaz=3", {"foo": "1", "bar": "2", "baz": "3"}),
        (" foo=1", {"foo": "1"}),
        ("\tfoo=1", {"foo": "1"}),
        ("foo=1 ", {"foo": "1"}),
        ("foo=1\t", {"foo": "1"}),
        ("\t foo=1 \t", {"foo": "1"}),
    ],
)
def test_tracestate_ows_handling(line: str, expected: dict[str, str]) -> None:
    traceparent, tracestate = make_single_request_and_get_tracecontext([tp(), ["tracestate", line]])
    assert traceparent.trace_id == TRACE_ID
    assert dict(tracestate) == expected


@pytest.mark.parametrize(("line", "key"), [("foo =1", "foo "), ("FOO=1", "FOO"), ("foo.bar=1", "foo.bar")])
def test_tracestate_key_illegal_characters(line: str, key: str) -> None:
    _, tracestate = make_single_request_and_get_tracecontext([tp(), ["tracestate", line]])
    assert key not in tracestate


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        ("foo@=1,bar=2", {"foo@": "1", "bar": "2"}),
        ("@foo=1,bar=2", None),
        ("foo@@bar=1,bar=2", {"foo@@bar": "1", "bar": "2"}),
        ("foo@bar@baz=1,bar=2", {"foo@bar@baz": "1", "bar": "2"}),
    ],
)
def test_tracestate_key_illegal_vendor_format(line: str, kept: dict[str, str] | None) -> None:
    """Strict level 2: keys with ``@`` after the first character are inherited; one starting with ``@`` is not."""
    _, tracestate = make_single_request_and_get_tracecontext([tp(), ["tracestate", line]])
    if kept is None:
        assert "bar" not in tracestate
    else:
        assert {key: tracestate.get(key) for key in kept} == kept


def test_tracestate_member_count_limit() -> None:
    lines = [
        "bar01=01,bar02=02,bar03=03,bar04=04,bar05=05,bar06=06,bar07=07,bar08=08,bar09=09,bar10=10",
        "bar11=11,bar12=12,bar13=13,bar14=14,bar15=15,bar16=16,bar17=17,bar18=18,bar19=19,bar20=20",
        "bar21=21,bar22=22,bar23=23,bar24=24,bar25=25,bar26=26,bar27=27,bar28=28,bar29=29,bar30=30",
    ]
    _, tracestate = make_single_request_and_get_tracecontext(
        [tp(), *(["tracestate", line] for line in [*lines, "bar31=31,bar32=32"])]
    )
    assert tracestate["bar01"] == "01"
    assert len(tracestate) == 32
    _, tracestate = make_single_request_and_get_tracecontext(
        [tp(), *(["tracestate", line] for line in [*lines, "bar31=31,bar32=32,bar33=33"])]
    )
    assert "bar01" not in tracestate


@pytest.mark.parametrize(
    ("key", "kept"),
    [
        ("z" * 256, True),
        ("z" * 257, False),
        ("t" * 241 + "@" + "v" * 14, True),
        ("t" * 242 + "@v", True),
        ("t@" + "v" * 15, True),
    ],
)
def test_tracestate_key_length_limit(key: str, kept: bool) -> None:
    """Strict level 2: a key of up to 256 characters in all, ``@`` anywhere but first, is inherited."""
    headers = [tp(), ["tracestate", "foo=1"], ["tracestate", key + "=1"]]
    _, tracestate = make_single_request_and_get_tracecontext(headers)
    if kept:
        assert tracestate["foo"] == "1"
        assert tracestate[key] == "1"
    else:
        assert "foo" not in tracestate


@pytest.mark.parametrize(("line", "absent"), [("foo=bar=baz", ["foo"]), ("foo=,bar=3", ["foo", "bar"])])
def test_tracestate_value_illegal_characters(line: str, absent: list[str]) -> None:
    _, tracestate = make_single_request_and_get_tracecontext([tp(), ["tracestate", line]])
    assert not any(key in tracestate for key in absent)


# -- AdvancedTest ------------------------------------------------------------------------------------


def test_multiple_requests_with_valid_traceparent() -> None:
    sent = [get_traceparent(headers) for headers in make_request([tp("01")], 3)]
    assert {t.trace_id for t in sent} == {TRACE_ID}
    assert len({t.parent_id for t in sent}) == 3


def test_multiple_requests_without_traceparent() -> None:
    sent = [get_traceparent(headers) for headers in make_request([], 3)]
    assert len({t.parent_id for t in sent}) == 3


def test_multiple_requests_with_illegal_traceparent() -> None:
    sent = [get_traceparent(headers) for headers in make_request([tp("01", "0" * 32)], 3)]
    assert "0" * 32 not in {t.trace_id for t in sent}
    assert len({t.parent_id for t in sent}) == 3


# -- TraceContext2Test (SPEC_LEVEL 2) ------------------------------------------------------------------


def test_propagates_random_flag() -> None:
    traceparent, _ = make_single_request_and_get_tracecontext([tp("02")])
    assert traceparent.trace_id == TRACE_ID
    assert traceparent.parent_id != PARENT_ID
    assert traceparent.trace_flags & 0x02 == 0x02, "random flag not set"
