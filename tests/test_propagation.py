"""Tests of zoomtrace.wire.propagation, written from the specification texts.

Trace Context: W3C Recommendation "Trace Context" (Level 1), sections "traceparent Header",
"Versioning of traceparent", "tracestate Header", "tracestate Limits", "Mutating the tracestate
Field" and "Processing Model"; the tracestate key of Level 2 ("Key"). Tests named after a case of
the w3c/trace-context test suite (test/test.py, e.g. test_traceparent_version_0xcc) reuse that
case's inputs and expectations at strict level 2 (tests/test_w3c_trace_context_suite.py runs
the whole suite through extract, spans and inject).
Baggage: W3C "Baggage HTTP Header Format" (sections "Definition", "key", "value", "Limits",
"Examples of HTTP headers").

Expected values are worked out by hand from those texts, never copied from a run.
"""

from __future__ import annotations

import email.message
import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from zoomtrace.capture.context import SpanContext
from zoomtrace.wire.propagation import (
    MAX_BAGGAGE_BYTES,
    MAX_BAGGAGE_MEMBERS,
    MAX_TRACESTATE_MEMBERS,
    ON_BEHALF_OF_KEY,
    extract,
    format_baggage,
    format_traceparent,
    format_tracestate,
    headers_of,
    inject,
    parse_baggage,
    parse_traceparent,
    parse_tracestate,
)

# The ids the w3c test suite uses.
TRACE_ID = "12345678901234567890123456789012"
PARENT_ID = "1234567890123456"
VALID = f"00-{TRACE_ID}-{PARENT_ID}-01"
# The examples of "Examples of HTTP traceparent Headers".
SPEC_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPEC_PARENT_ID = "00f067aa0ba902b7"


def _with_traceparent(*extra: tuple[str, str]) -> list[tuple[str, str]]:
    """A carrier with the suite's valid version-00 traceparent (flags 00) and ``extra`` lines."""
    return [("traceparent", f"00-{TRACE_ID}-{PARENT_ID}-00"), *extra]


def _tracestate_of(*extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    ctx = extract(_with_traceparent(*extra))
    assert ctx is not None, "the traceparent is valid, so a tracestate problem must not lose it"
    assert ctx.trace_id == TRACE_ID
    return ctx.tracestate


# ==================================================================================================
# traceparent -- "traceparent Header"
# ==================================================================================================


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # "Valid traceparent when caller sampled this request"
        (f"00-{SPEC_TRACE_ID}-{SPEC_PARENT_ID}-01", (SPEC_TRACE_ID, SPEC_PARENT_ID, 1)),
        # "Valid traceparent when caller didn't sample this request"
        (f"00-{SPEC_TRACE_ID}-{SPEC_PARENT_ID}-00", (SPEC_TRACE_ID, SPEC_PARENT_ID, 0)),
        # trace-flags is an 8-bit field, hex-encoded: "all 8 flags set would be ff"; the
        # "00001000" + "00000001" example is "09".
        (f"00-{TRACE_ID}-{PARENT_ID}-ff", (TRACE_ID, PARENT_ID, 255)),
        (f"00-{TRACE_ID}-{PARENT_ID}-09", (TRACE_ID, PARENT_ID, 9)),
    ],
)
def test_traceparent_spec_examples(value: str, expected: tuple[str, str, int]) -> None:
    assert parse_traceparent(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        # test_traceparent_version_0x00: version 00 allows nothing after the flags
        f"{VALID}.",
        f"{VALID}-what-the-future-will-be-like",
        # test_traceparent_version_0xff: "Version ff is invalid"
        f"ff-{TRACE_ID}-{PARENT_ID}-01",
        # test_traceparent_version_illegal_characters / too_long / too_short
        f".0-{TRACE_ID}-{PARENT_ID}-01",
        f"0.-{TRACE_ID}-{PARENT_ID}-01",
        f"000-{TRACE_ID}-{PARENT_ID}-01",
        f"0000-{TRACE_ID}-{PARENT_ID}-01",
        f"0-{TRACE_ID}-{PARENT_ID}-01",
        # test_traceparent_trace_id_*
        f"00-00000000000000000000000000000000-{PARENT_ID}-01",
        f"00-.2345678901234567890123456789012-{PARENT_ID}-01",
        f"00-1234567890123456789012345678901.-{PARENT_ID}-01",
        f"00-123456789012345678901234567890123-{PARENT_ID}-01",
        f"00-1234567890123456789012345678901-{PARENT_ID}-01",
        # test_traceparent_parent_id_*
        f"00-{TRACE_ID}-0000000000000000-01",
        f"00-{TRACE_ID}-.234567890123456-01",
        f"00-{TRACE_ID}-123456789012345.-01",
        f"00-{TRACE_ID}-12345678901234567-01",
        f"00-{TRACE_ID}-123456789012345-01",
        # test_traceparent_trace_flags_*
        f"00-{TRACE_ID}-{PARENT_ID}-.0",
        f"00-{TRACE_ID}-{PARENT_ID}-0.",
        f"00-{TRACE_ID}-{PARENT_ID}-001",
        f"00-{TRACE_ID}-{PARENT_ID}-1",
        # nothing, or only a version
        "",
        "00",
        "00-",
        # the delimiter is the dash, nothing else
        f"00_{TRACE_ID}_{PARENT_ID}_01",
    ],
)
def test_traceparent_invalid_values_from_the_test_suite(value: str) -> None:
    assert parse_traceparent(value) is None


@pytest.mark.parametrize(
    "value",
    [
        # HEXDIGLC = DIGIT / "a" / ... / "f": upper case is outside the grammar in every field.
        f"00-{SPEC_TRACE_ID.upper()}-{SPEC_PARENT_ID}-01",
        f"00-{SPEC_TRACE_ID}-{SPEC_PARENT_ID.upper()}-01",
        f"00-{SPEC_TRACE_ID}-{SPEC_PARENT_ID}-0A",
        f"00-4bf92f3577b34da6a3ce929d0e0e473F-{SPEC_PARENT_ID}-01",
        f"CC-{SPEC_TRACE_ID}-{SPEC_PARENT_ID}-01",
        f"cc-{SPEC_TRACE_ID.upper()}-{SPEC_PARENT_ID}-01",
        # DIGIT is 0-9 only: other Unicode digits are not hex
        f"00-{chr(0x0661) * 32}-{SPEC_PARENT_ID}-01",  # ARABIC-INDIC DIGIT ONE
    ],
)
def test_traceparent_rejects_upper_case_and_non_ascii_hex(value: str) -> None:
    assert parse_traceparent(value) is None


@pytest.mark.parametrize(
    "value",
    # test_traceparent_ows_handling: leading and trailing OWS (SP / HTAB) are accepted.
    [f" {VALID}", f"\t{VALID}", f"{VALID} ", f"{VALID}\t", f"\t {VALID} \t"],
)
def test_traceparent_ows_handling(value: str) -> None:
    assert parse_traceparent(value) == (TRACE_ID, PARENT_ID, 1)


@pytest.mark.parametrize(
    "value",
    # OWS is only SP / HTAB (RFC 7230 section 3.2.3); other white space is not stripped.
    [f"{VALID}\n", f"{VALID}\r", f"\x0b{VALID}", f"\u00a0{VALID}", f"{VALID}\u2003", f"0 0-{TRACE_ID}-{PARENT_ID}-01"],
)
def test_traceparent_other_whitespace_is_not_ows(value: str) -> None:
    assert parse_traceparent(value) is None


@pytest.mark.parametrize("value", [None, 1, b"00-12345678901234567890123456789012-1234567890123456-01", ["x"]])
def test_parse_traceparent_non_text_is_invalid(value: object) -> None:
    assert parse_traceparent(value) is None  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# "Versioning of traceparent"
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        # test_traceparent_version_0xcc
        f"cc-{TRACE_ID}-{PARENT_ID}-01",
        f"cc-{TRACE_ID}-{PARENT_ID}-01-what-the-future-will-be-like",
        # the lowest and the highest future versions
        f"01-{TRACE_ID}-{PARENT_ID}-01",
        f"fe-{TRACE_ID}-{PARENT_ID}-01-",
    ],
)
def test_traceparent_future_version_parsed_by_its_first_fields(value: str) -> None:
    assert parse_traceparent(value) == (TRACE_ID, PARENT_ID, 1)


@pytest.mark.parametrize(
    "value",
    [
        # test_traceparent_version_0xcc: the flags must be "at the end of the string or followed by a dash"
        f"cc-{TRACE_ID}-{PARENT_ID}-01.what-the-future-will-be-like",
        f"cc-{TRACE_ID}-{PARENT_ID}-011",
        # trace-id "followed by a dash", parent-id "followed by a dash"
        f"cc-{TRACE_ID}x{PARENT_ID}-01",
        f"cc-{TRACE_ID}-{PARENT_ID}x01",
        # all-zero ids are invalid whatever the version
        f"cc-{'0' * 32}-{PARENT_ID}-01",
        f"cc-{TRACE_ID}-{'0' * 16}-01",
        # 55 characters, but the flags are one character followed by a dash
        f"cc-{TRACE_ID}-{PARENT_ID}-0-",
    ],
)
def test_traceparent_future_version_still_checks_its_first_fields(value: str) -> None:
    assert parse_traceparent(value) is None


def test_traceparent_future_version_shorter_than_55_characters_is_not_parsed() -> None:
    # "If the size of the header is shorter than 55 characters, the vendor should not parse the header"
    value = f"cc-{TRACE_ID}-{PARENT_ID}-1"
    assert len(value) == 54
    assert parse_traceparent(value) is None
    assert parse_traceparent(value[:-1] + "01") == (TRACE_ID, PARENT_ID, 1)  # 55 characters


@pytest.mark.parametrize(("flags", "expected"), [("ff", 1), ("fe", 0), ("03", 1), ("02", 0)])
def test_traceparent_future_version_keeps_only_the_sampled_bit(flags: str, expected: int) -> None:
    # "Parse the sampled bit of flags"; "Processing Model": "will only parse flags values supported
    # by the current version of this specification and ignore all other values".
    assert parse_traceparent(f"cc-{TRACE_ID}-{PARENT_ID}-{flags}-x") == (TRACE_ID, PARENT_ID, expected)


@settings(max_examples=200)
@given(
    trace_id=st.from_regex(r"[0-9a-f]{32}", fullmatch=True),
    parent_id=st.from_regex(r"[0-9a-f]{16}", fullmatch=True),
    flags=st.integers(0, 255),
)
def test_traceparent_any_valid_version_00_value_is_read_back(trace_id: str, parent_id: str, flags: int) -> None:
    assume(trace_id != "0" * 32 and parent_id != "0" * 16)
    value = f"00-{trace_id}-{parent_id}-{flags:02x}"
    assert parse_traceparent(value) == (trace_id, parent_id, flags)
    shouted = value.upper()
    if shouted != value:
        assert parse_traceparent(shouted) is None


# --------------------------------------------------------------------------------------------------
# traceparent through extract: header names and repeated lines
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["traceparent", "TraceParent", "TrAcEpArEnT", "TRACEPARENT"])
def test_traceparent_header_name_valid_casing(name: str) -> None:
    # "Vendors MUST expect the header name in any case (upper, lower, mixed)"
    ctx = extract({name: VALID})
    assert ctx is not None
    assert (ctx.trace_id, ctx.span_id, ctx.trace_flags) == (TRACE_ID, PARENT_ID, 1)


@pytest.mark.parametrize("name", ["trace-parent", "trace.parent", "traceparent ", "x-traceparent"])
def test_traceparent_header_name(name: str) -> None:
    # test_traceparent_header_name: other names are not traceparent
    assert extract({name: VALID}) is None


@pytest.mark.parametrize(
    "carrier",
    [
        # test_traceparent_duplicated
        [
            ("traceparent", f"00-{TRACE_ID[:-1]}1-{PARENT_ID}-01"),
            ("traceparent", f"00-{TRACE_ID}-{PARENT_ID}-01"),
        ],
        [("traceparent", VALID), ("traceparent", VALID)],
        {"traceparent": VALID, "TraceParent": VALID},
        {"traceparent": [VALID, VALID]},
    ],
)
def test_traceparent_duplicated(carrier: object) -> None:
    # traceparent is not a list header: several lines cannot be combined (RFC 7230 section 3.2.2),
    # so the test suite expects a new trace, i.e. nothing extracted.
    assert extract(carrier) is None


def test_traceparent_included_tracestate_missing() -> None:
    ctx = extract({"traceparent": VALID})
    assert ctx == SpanContext(TRACE_ID, PARENT_ID, 1, (), (), None, True)


# ==================================================================================================
# tracestate -- "tracestate Header"
# ==================================================================================================


def test_tracestate_included_traceparent_missing() -> None:
    # "If the vendor failed to parse traceparent, it MUST NOT attempt to parse tracestate"
    assert extract({"tracestate": "foo=1"}) is None
    assert extract({"tracestate": "foo=1", "traceparent": f"00-{'0' * 32}-{PARENT_ID}-01"}) is None


def test_tracestate_included_traceparent_included() -> None:
    assert _tracestate_of(("tracestate", "foo=1,bar=2")) == (("foo", "1"), ("bar", "2"))


@pytest.mark.parametrize("name", ["trace-state", "trace.state"])
def test_tracestate_header_name(name: str) -> None:
    assert _tracestate_of((name, "foo=1")) == ()


@pytest.mark.parametrize("name", ["TraceState", "TrAcEsTaTe", "TRACESTATE"])
def test_tracestate_header_name_valid_casing(name: str) -> None:
    assert _tracestate_of((name, "foo=1")) == (("foo", "1"),)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        # test_tracestate_empty_header: "Vendors MUST accept empty tracestate headers"
        ([""], ()),
        (["foo=1", ""], (("foo", "1"),)),
        (["", "foo=1"], (("foo", "1"),)),
        # "Empty and whitespace-only list members are allowed"
        ([" , \t,foo=1, ,", "\t"], (("foo", "1"),)),
        ([], ()),
    ],
)
def test_tracestate_empty_header(lines: list[str], expected: tuple[tuple[str, str], ...]) -> None:
    assert parse_tracestate(lines) == expected


def test_tracestate_multiple_headers_different_keys() -> None:
    # "When receiving multiple tracestate header fields, they MUST be combined into a single header"
    # in order (RFC 7230 section 3.2.2).
    lines = ["foo=1,bar=2", "rojo=1,congo=2", "baz=3"]
    expected = (("foo", "1"), ("bar", "2"), ("rojo", "1"), ("congo", "2"), ("baz", "3"))
    assert parse_tracestate(lines) == expected
    assert _tracestate_of(*(("tracestate", line) for line in lines)) == expected


@pytest.mark.parametrize(
    ("lines", "expected"),
    # test_tracestate_duplicated_keys (strict level 2): the tracestate is inherited, the duplicates
    # "kept as-is or one of them discarded"; we keep the first (leftmost, most recent) entry.
    [
        (["foo=1,foo=1"], (("foo", "1"),)),
        (["foo=1,foo=2"], (("foo", "1"),)),
        (["foo=1", "foo=1"], (("foo", "1"),)),
        (["foo=1", "foo=2"], (("foo", "1"),)),
        (["foo=1,bar=2,baz=3,foo=4"], (("foo", "1"), ("bar", "2"), ("baz", "3"))),
        (["a=1,b=2", "b=3,a=4,c=5"], (("a", "1"), ("b", "2"), ("c", "5"))),
    ],
)
def test_tracestate_duplicated_keys(lines: list[str], expected: tuple[tuple[str, str], ...]) -> None:
    assert parse_tracestate(lines) == expected
    assert _tracestate_of(*(("tracestate", line) for line in lines)) == expected


def test_tracestate_repeated_members_count_toward_the_limit() -> None:
    # "There can be a maximum of 32 list-members in a list": 33 members, one of them repeated.
    members = ",".join(f"k{i}=v" for i in range(32))
    assert parse_tracestate([members, "k0=again"]) is None


def test_tracestate_all_allowed_characters() -> None:
    key_without_vendor = "abcdefghijklmnopqrstuvwxyz0123456789_-*/"
    key_with_vendor = key_without_vendor + "@a-z0-9_-*/"
    # value: 0x20-0x7E except "," (0x2C) and "=" (0x3D)
    value = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in ",=")
    assert parse_tracestate([f"{key_without_vendor}={value}"]) == ((key_without_vendor, value),)
    assert parse_tracestate([f"{key_with_vendor}={value}"]) == ((key_with_vendor, value),)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # test_tracestate_ows_handling
        ("foo=1 \t , \t bar=2, \t baz=3", (("foo", "1"), ("bar", "2"), ("baz", "3"))),
        ("foo=1\t \t,\t \tbar=2,\t \tbaz=3", (("foo", "1"), ("bar", "2"), ("baz", "3"))),
        (" foo=1", (("foo", "1"),)),
        ("\tfoo=1", (("foo", "1"),)),
        ("foo=1 ", (("foo", "1"),)),
        ("foo=1\t", (("foo", "1"),)),
        ("\t foo=1 \t", (("foo", "1"),)),
        # Value: "all leading spaces MUST be preserved as part of the value and all trailing spaces
        # are considered to be optional whitespace characters not part of the value"
        ("foo=  x  ", (("foo", "  x"),)),
    ],
)
def test_tracestate_ows_handling(line: str, expected: tuple[tuple[str, str], ...]) -> None:
    assert parse_tracestate([line]) == expected


@pytest.mark.parametrize(
    "line",
    [
        # test_tracestate_key_illegal_characters
        "foo =1",
        "FOO=1",
        "foo.bar=1",
        # test_tracestate_key_illegal_vendor_format: a key starts with lcalpha or DIGIT, not "@"
        "@foo=1,bar=2",
        "_abc=1,bar=2",
        "-abc=1,bar=2",
        # test_tracestate_value_illegal_characters
        "foo=bar=baz",
        "foo=,bar=3",
        # value: printable ASCII only ("this also excludes tabs, newlines, carriage returns")
        "foo=a\tb,bar=2",
        "foo=a\nb,bar=2",
        "foo=é,bar=2",
        "foo= ,bar=2",
        # a member without "="
        "foo,bar=2",
        "bar=2,=3",
    ],
)
def test_tracestate_invalid_member_drops_the_whole_header(line: str) -> None:
    assert parse_tracestate([line]) is None
    assert _tracestate_of(("tracestate", line)) == ()


@pytest.mark.parametrize(
    "key",
    [
        # test_tracestate_key_illegal_vendor_format (strict level 2): "@" is a keychar after the first
        "foo@",
        "foo@@bar",
        "foo@bar@baz",
        # key = ( lcalpha / DIGIT ) 0*255( keychar ): any key may start with a digit
        "1abc",
        "1abc@sys",
        "abc@1sys",
    ],
)
def test_tracestate_level_2_keys(key: str) -> None:
    assert parse_tracestate([f"{key}=1,bar=2"]) == ((key, "1"), ("bar", "2"))


def test_tracestate_member_count_limit() -> None:
    lines = [
        "bar01=01,bar02=02,bar03=03,bar04=04,bar05=05,bar06=06,bar07=07,bar08=08,bar09=09,bar10=10",
        "bar11=11,bar12=12,bar13=13,bar14=14,bar15=15,bar16=16,bar17=17,bar18=18,bar19=19,bar20=20",
        "bar21=21,bar22=22,bar23=23,bar24=24,bar25=25,bar26=26,bar27=27,bar28=28,bar29=29,bar30=30",
    ]
    state = parse_tracestate([*lines, "bar31=31,bar32=32"])
    assert state is not None
    assert len(state) == 32
    assert state[0] == ("bar01", "01")
    assert state[-1] == ("bar32", "32")
    assert parse_tracestate([*lines, "bar31=31,bar32=32,bar33=33"]) is None


def test_tracestate_empty_members_do_not_count_toward_the_limit() -> None:
    members = ",".join(f"k{i}=v" for i in range(32))
    state = parse_tracestate([members + ",,, ,", ", ,"])
    assert state is not None
    assert len(state) == 32


@pytest.mark.parametrize(
    ("member", "valid"),
    [
        # test_tracestate_key_length_limit (strict level 2): a key of up to 256 characters in all
        ("z" * 256 + "=1", True),
        ("z" * 257 + "=1", False),
        ("t" * 241 + "@" + "v" * 14 + "=1", True),
        ("t" * 242 + "@v=1", True),
        ("t@" + "v" * 15 + "=1", True),
        ("t" * 200 + "@" + "v" * 56 + "=1", False),
        # value: 0*255(chr) nblk-chr, so 1 to 256 characters
        ("foo=" + "x" * 256, True),
        ("foo=" + "x" * 257, False),
        ("foo=" + " " * 255 + "x", True),
    ],
)
def test_tracestate_key_and_value_length_limits(member: str, valid: bool) -> None:
    state = parse_tracestate(["foo2=1", member])
    if valid:
        key, _, value = member.partition("=")
        assert state == (("foo2", "1"), (key, value))
    else:
        assert state is None


@pytest.mark.parametrize("lines", [[b"foo=1"], [None], [1], None, 7])
def test_parse_tracestate_non_text_is_invalid(lines: object) -> None:
    assert parse_tracestate(lines) is None  # type: ignore[arg-type]


def test_parse_tracestate_accepts_a_single_string() -> None:
    assert parse_tracestate("foo=1,bar=2") == (("foo", "1"), ("bar", "2"))  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# "Mutating the tracestate Field" and "tracestate Limits"
# --------------------------------------------------------------------------------------------------


def test_format_tracestate_adds_ours_to_the_left() -> None:
    # "Relationship Between the Headers": Rojo "adds a new entry to the left"
    assert (
        format_tracestate((("congo", "t61rcWkgMzE"),), ("rojo", "00f067aa0ba902b7"))
        == "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
    )


def test_format_tracestate_moves_an_updated_key_to_the_left() -> None:
    # "Combined Header Value": congo=congosFirstPosition,rojo=rojosFirstPosition re-entering Congo
    # becomes congo=congosSecondPosition,rojo=rojosFirstPosition
    members = (("congo", "congosFirstPosition"), ("rojo", "rojosFirstPosition"))
    assert (
        format_tracestate(members, ("congo", "congosSecondPosition"))
        == "congo=congosSecondPosition,rojo=rojosFirstPosition"
    )
    # "the order of unmodified key/value pairs MUST be preserved"
    four = (("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"))
    assert format_tracestate(four, ("c", "9")) == "c=9,a=1,b=2,d=4"


def test_format_tracestate_without_ours_keeps_the_members() -> None:
    assert format_tracestate((("a", "1"), ("b", " 2"))) == "a=1,b= 2"
    assert format_tracestate(()) == ""


def test_format_tracestate_leaves_out_invalid_and_repeated_members() -> None:
    members = (("Bad", "1"), ("ok", "2"), ("ok", "3"), ("v", "a,b"), ("w", ""), ("x", "y"))
    assert format_tracestate(members) == "ok=2,x=y"


@pytest.mark.parametrize("ours", [("Bad", "x"), ("k", "a,b"), ("k", ""), ("k", "x "), ("k", "a=b")])
def test_format_tracestate_rejects_an_invalid_own_entry(ours: tuple[str, str]) -> None:
    with pytest.raises(ValueError, match="tracestate"):
        format_tracestate((), ours)


def _numbered(count: int, long: dict[int, int] | None = None) -> list[tuple[str, str]]:
    """Members k01..kNN with value vNN, or a value making an entry of the given length."""
    long = long or {}
    members = []
    for i in range(1, count + 1):
        key = f"k{i:02d}"
        value = "x" * (long[i] - len(key) - 1) if i in long else f"v{i:02d}"
        members.append((key, value))
    return members


def _keys(header: str) -> list[str]:
    return [member.partition("=")[0] for member in header.split(",")]


def test_format_tracestate_truncates_from_the_end() -> None:
    # "entries SHOULD be removed starting from the end of tracestate"
    header = format_tracestate(_numbered(32), ("ours", "1"))
    assert _keys(header) == ["ours"] + [f"k{i:02d}" for i in range(1, 32)]


def test_format_tracestate_removes_entries_over_128_characters_first() -> None:
    # "Entries larger than 128 characters long SHOULD be removed first."
    members = _numbered(32, long={5: 129})
    header = format_tracestate(members, ("ours", "1"))
    keys = _keys(header)
    assert len(keys) == MAX_TRACESTATE_MEMBERS
    assert "k05" not in keys
    assert keys[-1] == "k32"


def test_format_tracestate_entry_of_exactly_128_characters_is_not_long() -> None:
    members = _numbered(32, long={5: 128})
    assert len("=".join(members[4])) == 128
    keys = _keys(format_tracestate(members, ("ours", "1")))
    assert "k05" in keys
    assert "k32" not in keys


def test_format_tracestate_long_entries_go_from_the_end_then_the_last_ones() -> None:
    # 34 members + ours: 3 must go; the two long ones (k20 then k03, from the end) and then k34.
    members = _numbered(34, long={3: 200, 20: 150})
    keys = _keys(format_tracestate(members, ("ours", "1")))
    assert keys == ["ours"] + [f"k{i:02d}" for i in range(1, 34) if i not in (3, 20)]


def test_format_tracestate_never_drops_our_own_long_entry() -> None:
    ours = ("ours", "y" * 200)
    keys = _keys(format_tracestate(_numbered(32), ours))
    assert keys[0] == "ours"
    assert keys[1:] == [f"k{i:02d}" for i in range(1, 32)]


def test_format_tracestate_updating_an_existing_key_needs_no_truncation() -> None:
    keys = _keys(format_tracestate(_numbered(32), ("k05", "new")))
    assert keys == ["k05"] + [f"k{i:02d}" for i in range(1, 33) if i != 5]


def test_tracestate_round_trip() -> None:
    line = "rojo=00f067aa0ba902b7, congo=t61rcWkgMzE,tenant@vendor= opaque value"
    state = parse_tracestate([line])
    assert state == (("rojo", "00f067aa0ba902b7"), ("congo", "t61rcWkgMzE"), ("tenant@vendor", " opaque value"))
    assert parse_tracestate([format_tracestate(state)]) == state


# ==================================================================================================
# baggage -- "Baggage HTTP Header Format"
# ==================================================================================================


def test_baggage_spec_example() -> None:
    # "Example": 3 list-members, with properties and OWS
    line = "key1=value1;property1;property2, key2 = value2, key3=value3; propertyKey=propertyValue"
    assert parse_baggage([line]) == (("key1", "value1"), ("key2", "value2"), ("key3", "value3"))


@pytest.mark.parametrize(
    "lines",
    [
        # "Examples of HTTP headers": single header, split headers, names and values with spaces
        ["userId=alice,serverNode=DF%2028,isProduction=false"],
        ["userId=alice", "serverNode=DF%2028,isProduction=false"],
        ["userId =   alice", "serverNode = DF%2028, isProduction = false"],
    ],
)
def test_baggage_spec_examples(lines: list[str]) -> None:
    assert parse_baggage(lines) == (("userId", "alice"), ("serverNode", "DF 28"), ("isProduction", "false"))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # "value MAY contain any number of the equal sign (=) characters"
        ("k=a=b==", "a=b=="),
        # "A value contains a string whose character encoding MUST be UTF-8", percent-encoded
        ("k=%C4%85%C5%9B%C4%87", "ąść"),
        ("k=caf%c3%a9", "café"),
        # "percent-encoded octet sequences that do not match the UTF-8 encoding scheme MUST be
        # replaced with the replacement code point (U+FFFD)"
        ("k=%FF", "\ufffd"),
        ("k=a%C3", "a\ufffd"),
        # percent-encoding (RFC 3986 section 2.1) is not form encoding: "+" stays "+"
        ("k=a+b", "a+b"),
        # "%" is a baggage-octet; when no two hex digits follow, it is just a character
        ("k=100%", "100%"),
        ("k=%zz", "%zz"),
        # value = *baggage-octet: empty is allowed
        ("k=", ""),
        ("k = ", ""),
    ],
)
def test_baggage_value_decoding(line: str, expected: str) -> None:
    assert parse_baggage([line]) == (("k", expected),)


def test_baggage_invalid_members_are_left_out() -> None:
    line = 'good=1,bad key=2,=3,noequals,q="x",sp=a b,bs=a\\b,u=é,a(b=1,k=v;=x,k2=v;p=a b,k3=v;,ok=2;p;q=1 ; r = 2'
    assert parse_baggage([line]) == (("good", "1"), ("ok", "2"))


def test_baggage_keeps_duplicates_in_order() -> None:
    # "Uniqueness of keys between multiple list-members in a baggage-string is not guaranteed.
    # The order of duplicate entries SHOULD be preserved"
    assert parse_baggage(["k=1,j=0", "k=2"]) == (("k", "1"), ("j", "0"), ("k", "2"))


def test_baggage_member_limit() -> None:
    # "Limits": 64 list-members; "MUST NOT propagate any partial list-members"
    line = ",".join(f"k{i}={i}" for i in range(65))
    members = parse_baggage([line])
    assert len(members) == MAX_BAGGAGE_MEMBERS == 64
    assert members[0] == ("k0", "0")
    assert members[-1] == ("k63", "63")


def test_baggage_invalid_members_do_not_count_toward_the_limit() -> None:
    line = ",".join(f"k{i}={i},bad key=1" for i in range(64))
    assert len(parse_baggage([line])) == 64


def test_baggage_byte_limit_drops_whole_members() -> None:
    # "Limits": 8192 bytes for the combination of all baggage headers.
    big = ["a=" + "x" * 3998, "b=" + "x" * 3998, "c=" + "x" * 3998]  # 4000 bytes each
    members = parse_baggage([big[0], big[1], f"{big[2]},z=1"])
    # a + "," + b = 8001 bytes; c would make 12002; z=1 fits (8005).
    assert [key for key, _ in members] == ["a", "b", "z"]
    assert members[0][1] == "x" * 3998


def test_baggage_byte_limit_is_inclusive() -> None:
    exactly = "k=" + "x" * (MAX_BAGGAGE_BYTES - 2)
    assert parse_baggage([exactly]) == (("k", "x" * (MAX_BAGGAGE_BYTES - 2)),)
    assert parse_baggage([exactly + "x"]) == ()


@pytest.mark.parametrize("lines", [[b"k=v"], [None], None, 3])
def test_parse_baggage_non_text_is_empty(lines: object) -> None:
    assert parse_baggage(lines) == ()  # type: ignore[arg-type]


def test_format_baggage_spec_example() -> None:
    # "Examples of HTTP headers": serverNode="DF 28" is sent as DF%2028
    members = (("userId", "alice"), ("serverNode", "DF 28"), ("isProduction", "false"))
    assert format_baggage(members) == "userId=alice,serverNode=DF%2028,isProduction=false"


def test_format_baggage_percent_encodes_what_is_not_a_baggage_octet() -> None:
    # "Any characters outside of the baggage-octet range of characters MUST be percent-encoded";
    # "%" is encoded too, else it would be decoded on the other side.
    assert format_baggage((("k", 'a,b;c"d\\e%f é\t'),)) == "k=a%2Cb%3Bc%22d%5Ce%25f%20%C3%A9%09"


def test_format_baggage_leaves_baggage_octets_alone() -> None:
    octets = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '",;\\%')
    assert format_baggage((("k", octets),)) == f"k={octets}"


def test_format_baggage_leaves_out_what_cannot_be_sent() -> None:
    # keys are tokens and are never percent-encoded; a lone surrogate has no UTF-8 form
    members = (("bad key", "1"), ("ok", "1"), ("é", "2"), ("s", "\ud800"), ("", "3"), ("x", 4))
    assert format_baggage(members) == "ok=1"  # type: ignore[arg-type]


def test_format_baggage_limits() -> None:
    assert len(format_baggage([(f"k{i}", "v") for i in range(70)]).split(",")) == 64
    big = "x" * 4000
    header = format_baggage([("a", big), ("b", big), ("c", big), ("z", "1")])
    assert _keys(header) == ["a", "b", "z"]
    assert len(header.encode()) <= MAX_BAGGAGE_BYTES


_TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_keys_st = st.text(alphabet=_TCHAR, min_size=1, max_size=12)
_values_st = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)  # no lone surrogates


@given(st.lists(st.tuples(_keys_st, _values_st), max_size=12))
def test_baggage_format_then_parse_gives_the_members_back(members: list[tuple[str, str]]) -> None:
    assert parse_baggage([format_baggage(members)]) == tuple(members)


# ==================================================================================================
# carriers -- headers_of
# ==================================================================================================


def test_headers_of_mapping_any_case() -> None:
    assert headers_of({"Traceparent": "a", "TRACESTATE": "b", "baggage": "c"}) == {
        "traceparent": ["a"],
        "tracestate": ["b"],
        "baggage": ["c"],
    }


def test_headers_of_mapping_with_list_values_and_repeated_names() -> None:
    carrier = {"tracestate": ["a=1", "b=2"], "TraceState": ("c=3",)}
    assert headers_of(carrier) == {"tracestate": ["a=1", "b=2", "c=3"]}


def test_headers_of_pairs_keep_order() -> None:
    carrier = [("tracestate", "a=1"), ("X-Other", "1"), ("TraceState", "b=2")]
    assert headers_of(carrier) == {"tracestate": ["a=1", "b=2"], "x-other": ["1"]}
    assert headers_of(tuple(carrier)) == headers_of(carrier)


def test_headers_of_kafka_bytes_values() -> None:
    carrier = [("traceparent", VALID.encode()), ("bad", b"\xff\xfe"), ("baggage", b"k=caf\xc3\xa9")]
    assert headers_of(carrier) == {"traceparent": [VALID], "baggage": ["k=café"]}


def test_headers_of_asgi_bytes_names() -> None:
    assert headers_of([(b"TraceParent", b"v"), (b"\xff", b"w")]) == {"traceparent": ["v"]}


def test_headers_of_email_message() -> None:
    message = email.message.Message()
    message["TraceState"] = "a=1"
    message["tracestate"] = "b=2"
    assert headers_of(message) == {"tracestate": ["a=1", "b=2"]}


def test_headers_of_werkzeug_headers() -> None:
    datastructures = pytest.importorskip("werkzeug.datastructures")
    headers = datastructures.Headers([("TraceState", "a=1"), ("tracestate", "b=2")])
    assert headers_of(headers) == {"tracestate": ["a=1", "b=2"]}


def test_headers_of_starlette_headers() -> None:
    datastructures = pytest.importorskip("starlette.datastructures")
    headers = datastructures.Headers(raw=[(b"tracestate", b"a=1"), (b"tracestate", b"b=2")])
    assert headers_of(headers) == {"tracestate": ["a=1", "b=2"]}


def test_headers_of_only_folds_ascii_names() -> None:
    # "\u212a" (KELVIN SIGN) lower-cases to an ASCII "k" in Python; it is no header name.
    assert headers_of({"\u212aEY": "v", "KEY": "w"}) == {"\u212aEY": ["v"], "key": ["w"]}


class _ItemsRaise:
    def items(self) -> object:
        raise RuntimeError("boom")


class _ItemsBadIterator:
    def items(self) -> object:
        def pairs() -> object:
            yield ("traceparent", VALID)
            raise RuntimeError("boom")

        return pairs()


@pytest.mark.parametrize(
    "carrier",
    [
        None,
        0,
        1.5,
        "traceparent",
        b"traceparent",
        object(),
        [1, 2],
        [("a",)],
        [("a", "b", "c")],
        {1: "x"},
        {"a": object()},
        {"a": None},
        {"a": 5},
        {"traceparent"},
        _ItemsRaise(),
        _ItemsBadIterator(),
    ],
)
def test_headers_of_garbage_is_empty(carrier: object) -> None:
    assert headers_of(carrier) == {}


# ==================================================================================================
# extract
# ==================================================================================================


def test_extract_everything() -> None:
    carrier = {
        "TraceParent": f"00-{SPEC_TRACE_ID}-{SPEC_PARENT_ID}-01",
        "tracestate": "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
        "Baggage": "userId=alice,zoom.on_behalf_of=tenant%2042,serverNode=DF%2028",
    }
    assert extract(carrier) == SpanContext(
        trace_id=SPEC_TRACE_ID,
        span_id=SPEC_PARENT_ID,
        trace_flags=1,
        tracestate=(("rojo", "00f067aa0ba902b7"), ("congo", "t61rcWkgMzE")),
        baggage=(("userId", "alice"), ("serverNode", "DF 28")),
        on_behalf_of="tenant 42",
        remote=True,
    )


def test_extract_on_behalf_of_first_member_wins() -> None:
    ctx = extract({"traceparent": VALID, "baggage": ["zoom.on_behalf_of=a", "k=v,zoom.on_behalf_of=b"]})
    assert ctx is not None
    assert ctx.on_behalf_of == "a"
    assert ctx.baggage == (("k", "v"),)


def test_extract_without_on_behalf_of() -> None:
    ctx = extract({"traceparent": VALID, "baggage": "k=v"})
    assert ctx is not None
    assert ctx.on_behalf_of is None
    assert ctx.baggage == (("k", "v"),)


def test_extract_from_kafka_headers() -> None:
    carrier = [("traceparent", VALID.encode()), ("tracestate", b"a=1"), ("tracestate", b"b=2")]
    ctx = extract(carrier)
    assert ctx is not None
    assert ctx.tracestate == (("a", "1"), ("b", "2"))


@pytest.mark.parametrize(
    "carrier",
    [None, 0, "traceparent", VALID, VALID.encode(), [VALID], {"traceparent": None}, {"traceparent": 1}, _ItemsRaise()],
)
def test_extract_garbage_is_none(carrier: object) -> None:
    assert extract(carrier) is None


_NAMES = st.sampled_from(["traceparent", "TraceParent", "TRACESTATE", "tracestate", "baggage", "Baggage"]) | st.text(
    max_size=12
)
_NEAR_VALID = st.sampled_from(
    [
        VALID,
        f"cc-{TRACE_ID}-{PARENT_ID}-01-x",
        f"00-{TRACE_ID}-{PARENT_ID}-0",
        "foo=1,bar=2",
        "k=%FF;p,=x",
        "a@b=1,,",
    ]
)
_TEXTS = _NEAR_VALID | st.text(max_size=80) | st.binary(max_size=80)
_CARRIERS = (
    st.dictionaries(_NAMES, _TEXTS | st.lists(_TEXTS, max_size=3), max_size=5)
    | st.lists(st.tuples(_NAMES | st.binary(max_size=12), _TEXTS), max_size=6)
    | st.lists(st.one_of(st.none(), st.integers(), _TEXTS, st.tuples(_TEXTS)), max_size=4)
    | st.none()
    | st.integers()
    | _TEXTS
)


@settings(max_examples=400)
@given(_CARRIERS)
def test_extract_never_raises(carrier: object) -> None:
    headers = headers_of(carrier)
    assert all(isinstance(v, str) for values in headers.values() for v in values)
    ctx = extract(carrier)
    if ctx is not None:
        assert re.fullmatch(r"[0-9a-f]{32}", ctx.trace_id) and ctx.trace_id != "0" * 32
        assert re.fullmatch(r"[0-9a-f]{16}", ctx.span_id) and ctx.span_id != "0" * 16
        assert 0 <= ctx.trace_flags <= 255
        assert len(ctx.tracestate) <= MAX_TRACESTATE_MEMBERS
        assert len(ctx.baggage) <= MAX_BAGGAGE_MEMBERS


@settings(max_examples=400)
@given(st.text(max_size=120), st.lists(st.text(max_size=60), max_size=4))
def test_parsers_never_raise_on_text(value: str, lines: list[str]) -> None:
    result = parse_traceparent(value)
    assert result is None or len(result) == 3
    state = parse_tracestate(lines)
    assert state is None or len(state) <= MAX_TRACESTATE_MEMBERS
    assert len(parse_baggage(lines)) <= MAX_BAGGAGE_MEMBERS


# ==================================================================================================
# inject
# ==================================================================================================


def _empty() -> dict[str, str]:
    return {}


def _ctx(**changes: object) -> SpanContext:
    fields: dict[str, object] = {"trace_id": TRACE_ID, "span_id": PARENT_ID, "trace_flags": 1}
    fields.update(changes)
    return SpanContext(**fields)  # type: ignore[arg-type]


def test_inject_into_a_dict() -> None:
    carrier: dict[str, str] = {}
    assert inject(carrier, _ctx()) is carrier
    assert carrier == {"traceparent": VALID}


@pytest.mark.parametrize(("flags", "suffix"), [(0, "-00"), (1, "-01"), (9, "-09"), (255, "-ff")])
def test_inject_flags_are_two_lower_case_hex_digits(flags: int, suffix: str) -> None:
    assert inject(_empty(), _ctx(trace_flags=flags))["traceparent"] == f"00-{TRACE_ID}-{PARENT_ID}{suffix}"


def test_inject_lower_cases_the_ids() -> None:
    carrier = inject(_empty(), _ctx(trace_id=SPEC_TRACE_ID.upper(), span_id=SPEC_PARENT_ID.upper()))
    assert carrier["traceparent"] == f"00-{SPEC_TRACE_ID}-{SPEC_PARENT_ID}-01"


def test_inject_replaces_names_in_any_case_and_drops_a_stale_tracestate() -> None:
    carrier = {"TraceParent": "old", "TRACESTATE": "x=1", "Other": "keep"}
    inject(carrier, _ctx())
    assert carrier == {"Other": "keep", "traceparent": VALID}


def test_inject_tracestate_and_baggage() -> None:
    ctx = _ctx(
        tracestate=(("rojo", "00f067aa0ba902b7"), ("congo", "t61rcWkgMzE")),
        baggage=(("serverNode", "DF 28"), (ON_BEHALF_OF_KEY, "stale")),
        on_behalf_of="alice smith",
    )
    assert inject({}, ctx) == {
        "traceparent": VALID,
        "tracestate": "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
        "baggage": "zoom.on_behalf_of=alice%20smith,serverNode=DF%2028",
    }


def test_inject_baggage_for_on_behalf_of_alone() -> None:
    assert inject(_empty(), _ctx(on_behalf_of="u:1"))["baggage"] == "zoom.on_behalf_of=u:1"


def test_inject_leaves_the_carriers_own_baggage_when_there_is_none_to_send() -> None:
    assert inject({"baggage": "x=1"}, _ctx()) == {"baggage": "x=1", "traceparent": VALID}


def test_inject_into_pairs_replaces_lines_of_any_case() -> None:
    carrier = [("TraceParent", "old"), ("x", "1"), ("traceparent", "old2"), ("Baggage", "b=1")]
    assert inject(carrier, _ctx(baggage=(("k", "v"),))) is carrier
    assert carrier == [("x", "1"), ("traceparent", VALID), ("baggage", "k=v")]


def test_inject_into_kafka_headers_appends_bytes() -> None:
    carrier: list[tuple[str, bytes]] = [("k", b"v"), ("traceparent", b"old")]
    inject(carrier, _ctx(tracestate=(("a", "1"),)))
    assert carrier == [("k", b"v"), ("traceparent", VALID.encode()), ("tracestate", b"a=1")]


def test_inject_into_an_empty_list() -> None:
    assert inject([], _ctx()) == [("traceparent", VALID)]
    assert inject([], _ctx(), as_bytes=True) == [("traceparent", VALID.encode())]


def test_inject_into_a_dict_as_bytes() -> None:
    assert inject({}, _ctx(), as_bytes=True) == {"traceparent": VALID.encode()}
    assert inject({"k": b"v"}, _ctx()) == {"k": b"v", "traceparent": VALID.encode()}


def test_inject_into_a_tuple_returns_a_new_tuple() -> None:
    carrier = (("x", "1"), ("traceparent", "old"))
    assert inject(carrier, _ctx()) == (("x", "1"), ("traceparent", VALID))
    assert carrier == (("x", "1"), ("traceparent", "old"))


def test_inject_into_an_email_message() -> None:
    message = email.message.Message()
    message["TraceParent"] = "old"
    message["tracestate"] = "a=1"
    inject(message, _ctx())
    assert message.items() == [("traceparent", VALID)]


def test_inject_into_werkzeug_headers() -> None:
    datastructures = pytest.importorskip("werkzeug.datastructures")
    headers = datastructures.Headers([("TraceParent", "old"), ("Other", "1")])
    inject(headers, _ctx())
    assert list(headers.items()) == [("Other", "1"), ("traceparent", VALID)]


@pytest.mark.parametrize(
    "changes",
    [
        {"trace_id": "0" * 32},
        {"span_id": "0" * 16},
        {"trace_id": TRACE_ID[:-1]},
        {"span_id": PARENT_ID + "0"},
        {"trace_id": "g" * 32},
        {"trace_flags": 256},
        {"trace_flags": -1},
    ],
)
def test_inject_sends_no_trace_context_for_invalid_ids(changes: dict[str, object]) -> None:
    # "Processing Model": if trace-id or parent-id is invalid, the trace context is not added to
    # outgoing requests. Baggage is a separate specification and still goes.
    ctx = _ctx(tracestate=(("a", "1"),), on_behalf_of="u", **changes)
    assert inject({"tracestate": "stale=1"}, ctx) == {"tracestate": "stale=1", "baggage": "zoom.on_behalf_of=u"}


@pytest.mark.parametrize("carrier", [None, 5, "headers", b"headers", object()])
def test_inject_into_something_that_holds_no_headers(carrier: object) -> None:
    with pytest.raises(TypeError):
        inject(carrier, _ctx())


def test_format_traceparent() -> None:
    assert format_traceparent(SPEC_TRACE_ID, SPEC_PARENT_ID, 1) == f"00-{SPEC_TRACE_ID}-{SPEC_PARENT_ID}-01"
    assert format_traceparent(SPEC_TRACE_ID, SPEC_PARENT_ID, 0x100) is None


# --------------------------------------------------------------------------------------------------
# round trips: inject then extract gives the context back
# --------------------------------------------------------------------------------------------------

_FULL = SpanContext(
    trace_id=SPEC_TRACE_ID,
    span_id=SPEC_PARENT_ID,
    trace_flags=0,
    tracestate=(("rojo", "00f067aa0ba902b7"), ("tenant@congo", " t61r:cWkgMzE")),
    baggage=(("userId", "alice"), ("serverNode", "DF 28"), ("note", "a,b;c=d %41 ✓"), ("userId", "bob")),
    on_behalf_of="tenant 42/ü",
)


@pytest.mark.parametrize(
    "carrier",
    [{}, {"TRACEPARENT": "old", "Baggage": "x=1"}, [], [("k", b"v")], (), [("traceparent", "old")]],
)
def test_round_trip_through_every_carrier(carrier: object) -> None:
    assert extract(inject(carrier, _FULL)) == _FULL


def test_round_trip_as_bytes() -> None:
    assert extract(inject([], _FULL, as_bytes=True)) == _FULL


_TS_KEY = st.text(alphabet="abcxyz019_-*/", max_size=8).map(lambda s: "k" + s)
_TS_VALUE = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters=",="), max_size=20
)


@settings(max_examples=200)
@given(
    trace_id=st.from_regex(r"[0-9a-f]{32}", fullmatch=True),
    span_id=st.from_regex(r"[0-9a-f]{16}", fullmatch=True),
    flags=st.integers(0, 255),
    tracestate=st.lists(
        st.tuples(_TS_KEY, _TS_VALUE.map(str.rstrip).filter(bool)), unique_by=lambda m: m[0], max_size=32
    ),
    baggage=st.lists(st.tuples(_keys_st.filter(lambda k: k != ON_BEHALF_OF_KEY), _values_st), max_size=8),
    on_behalf_of=st.none() | _values_st,
    kafka=st.booleans(),
)
def test_round_trip_any_context(
    trace_id: str,
    span_id: str,
    flags: int,
    tracestate: list[tuple[str, str]],
    baggage: list[tuple[str, str]],
    on_behalf_of: str | None,
    kafka: bool,
) -> None:
    assume(trace_id != "0" * 32 and span_id != "0" * 16)
    ctx = SpanContext(trace_id, span_id, flags, tuple(tracestate), tuple(baggage), on_behalf_of, True)
    carrier: list[tuple[str, str | bytes]] = []
    assert extract(inject(carrier, ctx, as_bytes=kafka)) == ctx


# ==================================================================================================
# fuzzing: whatever arrives, valid members are kept and what goes out is valid W3C
# ==================================================================================================

# Independent of the module's regexes: Level 2 "Key" and "Value", Baggage "Definition".
_W3C_TS_MEMBER = re.compile(
    r"[a-z0-9][a-z0-9_\-*/@]{0,255}=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
)
_W3C_BAGGAGE_MEMBER = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+=[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")

_FUZZ_TS_KEY = st.from_regex(r"[a-z0-9][a-z0-9_\-*/@]{0,12}", fullmatch=True) | st.sampled_from(
    ["z" * 256, "t" * 242 + "@v", "foo@", "1abc"]
)
_FUZZ_TS_VALUE = st.from_regex(r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,12}[\x21-\x2b\x2d-\x3c\x3e-\x7e]", fullmatch=True)
_FUZZ_TS_VALID = st.tuples(_FUZZ_TS_KEY, _FUZZ_TS_VALUE).map(lambda m: f"{m[0]}={m[1]}")
_FUZZ_BAD = st.text(max_size=16) | st.sampled_from(
    ["@foo=1", "FOO=1", "foo=", "foo=a=b", "z" * 257 + "=1", "=", "a b=1", "k=\u00e9"]
)
_FUZZ_OWS = st.text(alphabet=" \t", max_size=2)


def _fuzz_lines(member: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    """Header lines of ``member``s joined by commas with OWS around them, some lines empty."""
    padded = st.tuples(_FUZZ_OWS, member, _FUZZ_OWS).map("".join)
    line = st.lists(padded | st.just(""), max_size=6).map(",".join)
    return st.lists(line, max_size=4)


def _sent(lines: list[str], name: str) -> str:
    """What Zoom sends on after receiving the ``name`` lines with a valid traceparent."""
    ctx = extract([("traceparent", f"00-{TRACE_ID}-{PARENT_ID}-01"), *((name, line) for line in lines)])
    assert ctx is not None
    return dict(inject([], ctx)).get(name, "")


def _members(lines: list[str]) -> list[str]:
    return [item.strip(" \t") for item in ",".join(lines).split(",") if item.strip(" \t")]


@settings(max_examples=300)
@given(_fuzz_lines(_FUZZ_TS_VALID | _FUZZ_BAD) | _fuzz_lines(_FUZZ_TS_VALID))
def test_any_tracestate_keeps_its_valid_entries_and_sends_valid_w3c(lines: list[str]) -> None:
    sent = _sent(lines, "tracestate")
    out = [member.split("=", 1) for member in sent.split(",")] if sent else []
    assert all(_W3C_TS_MEMBER.fullmatch(member) for member in sent.split(",")) if sent else True
    assert len(out) <= MAX_TRACESTATE_MEMBERS
    assert len({key for key, _ in out}) == len(out), "a key sent twice"
    received = _members(lines)
    if all(_W3C_TS_MEMBER.fullmatch(m) for m in received) and len(received) <= MAX_TRACESTATE_MEMBERS:
        first: dict[str, str] = {}
        for key, value in (m.split("=", 1) for m in received):
            first.setdefault(key, value)
        assert out == [list(item) for item in first.items()]
    else:
        assert out == [], "an invalid tracestate header is dropped whole"


_FUZZ_BAGGAGE_KEY = st.text(alphabet=_TCHAR, min_size=1, max_size=10)
_FUZZ_BAGGAGE_VALUE = st.from_regex(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]{0,12}", fullmatch=True)
_FUZZ_PROPERTY = st.sampled_from(["", ";p", ";p=1", " ; q = 2"])
_FUZZ_BAGGAGE_VALID = st.tuples(_FUZZ_BAGGAGE_KEY, _FUZZ_BAGGAGE_VALUE, _FUZZ_PROPERTY).map(
    lambda m: f"{m[0]}={m[1]}{m[2]}"
)


@settings(max_examples=300)
@given(_fuzz_lines(_FUZZ_BAGGAGE_VALID | _FUZZ_BAD))
def test_any_baggage_keeps_its_valid_members_and_sends_valid_w3c(lines: list[str]) -> None:
    sent = _sent(lines, "baggage")
    parts = sent.split(",") if sent else []
    assert all(_W3C_BAGGAGE_MEMBER.fullmatch(part) for part in parts), sent
    assert len(parts) <= MAX_BAGGAGE_MEMBERS
    assert len(sent.encode()) <= MAX_BAGGAGE_BYTES
    # Every valid member received is sent on, with the same value, in order (the fuzzed headers
    # stay far below the limits); the invalid ones are left out.
    valid = [m for m in _members(lines) if _BAGGAGE_WITH_PROPERTIES.fullmatch(m)]
    expected = [(k.strip(" \t"), v.split(";")[0].strip(" \t")) for k, _, v in (m.partition("=") for m in valid)]
    assert parse_baggage([sent]) == parse_baggage([",".join(f"{k}={v}" for k, v in expected)])
    assert [key for key, _ in parse_baggage([sent])] == [key for key, _ in expected]


_BAGGAGE_WITH_PROPERTIES = re.compile(
    r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+[ \t]*=[ \t]*[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*"
    r"([ \t]*;[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+([ \t]*=[ \t]*[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*)?[ \t]*)*"
)
