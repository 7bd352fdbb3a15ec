"""The hot path's shortcuts give the records the careful path gives, and record ids stay UUIDv7.

The fused ``zt.log`` encoder (``Encoder._log``) skips sanitising, scrubbing and, for some templates,
scrubbing the message; these tests hold it to the careful path (``Encoder._log_careful``) on
generated templates and values, so that a change of the scrubber's rules cannot leave it behind.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from types import CodeType
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoomtrace.capture import items
from zoomtrace.capture.context import SpanContext
from zoomtrace.capture.span import Span
from zoomtrace.runtime.encoder import MAX_CACHED_TEMPLATES, Encoder, _renderer
from zoomtrace.runtime.provenance import Provenance
from zoomtrace.runtime.sanitize import Limits
from zoomtrace.runtime.scrub import SCRUBBED, Scrubber
from zoomtrace.wire.record import Record, uuid7

UUID7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
PARENT = SpanContext("ab" * 16, "cd" * 8, 1, (), (), "tenant-1", True)


def call_site() -> tuple[CodeType, int, int]:
    """The caller's code, instruction offset and line, as ``zt.log`` takes them."""
    f = sys._getframe(1)
    return f.f_code, f.f_lasti, f.f_lineno


CODE, OFFSET, LINE = call_site()


def encoder(scrubber: Scrubber | None = None, limits: Limits | None = None) -> Encoder:
    return Encoder("node", Provenance(), scrubber if scrubber is not None else Scrubber(), limits or Limits())


def log_item(template: Any, attrs: dict[str, Any], parent: Any = PARENT, exc: Any = None) -> tuple[Any, ...]:
    return (items.LOG, 1_700_000_000_000_000_000, CODE, OFFSET, "app.orders", "INFO", template, attrs, parent, exc)


def without_id(record: Record | None) -> Record:
    assert record is not None
    return msgspec.structs.replace(record, id="")


def both_paths(enc: Encoder, item: tuple[Any, ...]) -> tuple[Record, Record]:
    careful = without_id(encoder(enc.scrubber, enc.limits)._log_careful(item))
    return without_id(enc(item)), careful


# Literal text that scrubbing reacts to, or nearly: pairs, URLs, bearer, PEM, digits.
LITERALS = st.sampled_from(
    [
        *("charged ", " for ", "token=", "password: ", "https://u:", "@host", "-----BEGIN ", "be", "arer ", " 4111 "),
        *("x", "50% ", "%s", "{{", "}}"),
    ]
)
FIELDS = st.sampled_from(["{a}", "{b}", "{a!r}", "{b:>20}", "{a:,}", "{a:=^30}", "{b:09.2f}", "{pw}", "{token}"])
TEXT = st.one_of(
    st.sampled_from(
        ["GET", "u1", "eu-west-1", "https://u:pw@h/", "Bearer abc.def", "4111 1111 1111 1111", "é", "x" * 200]
    ),
    st.text(max_size=12),
)
VALUES = st.one_of(
    TEXT,
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.sampled_from([4111111111111111, 4111_1111_1111_1111_0, 5500005555555559, 12, 0]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)


@settings(max_examples=400, deadline=None)
@given(
    parts=st.lists(st.one_of(LITERALS, FIELDS), min_size=1, max_size=6),
    a=VALUES,
    b=VALUES,
    secrets=st.dictionaries(st.sampled_from(["pw", "token"]), VALUES),
)
def test_the_fused_log_encoder_gives_the_careful_paths_record(
    parts: list[str], a: Any, b: Any, secrets: dict[str, Any]
) -> None:
    enc = encoder()
    item = log_item("".join(parts), {"a": a, "b": b, **secrets})
    fused, careful = both_paths(enc, item)
    assert fused == careful
    fused_again, _ = both_paths(enc, item)  # from the caches this time
    assert fused_again == careful


@settings(max_examples=400, deadline=None)
@given(
    parts=st.lists(st.one_of(LITERALS, st.sampled_from(["{a}", "{b}", "{a}{a}"])), max_size=6),
    a=VALUES,
    b=VALUES,
)
def test_a_plain_templates_percent_twin_makes_its_message(parts: list[str], a: Any, b: Any) -> None:
    """The ``%`` twin of a template of plain ``{name}`` fields writes what ``format_map`` writes, on every value
    the fused path takes; a field with a conversion, a spec, an index or an attribute has none."""
    template = "".join(parts)
    renderer = _renderer(template)
    assert renderer is not None
    percent, values, one = renderer
    attrs = {"a": a, "b": b}
    assert percent % ((values(attrs),) if one else values(attrs)) == template.format_map(attrs)
    for other in ("{a!r}", "{a:>5}", "{0}", "{}", "{a.real}", "{a[0]}", "{a", "a}"):
        assert _renderer(template + other) is None


TRICKY = [
    "https://u:{a}@host",  # a URL whose password is a number
    "Authorization: Bearer {a}",
    "{b}arer {a}",  # True + "arer": "Truearer"
    "api_key={a}",
    "key: {a}, pin {b}",
    "-----BEGIN PRIVATE KEY-----{a}-----END PRIVATE KEY-----",
    "card {a} {b}",
    "{a:=^40}",  # "=" as the fill character
    "{a::>30}",  # ":" as the fill character
    "{a:n}",
    "paid {a}{b}",
]


@pytest.mark.parametrize("template", TRICKY)
@pytest.mark.parametrize(
    "a, b", [(4111111111111111, 1), (1234, True), (12.5, None), (411111, 1111111111), (-(2**63), 2**64 - 1)]
)
def test_templates_near_a_secret_give_the_careful_paths_record(template: str, a: Any, b: Any) -> None:
    fused, careful = both_paths(encoder(), log_item(template, {"a": a, "b": b}))
    assert fused == careful


@settings(max_examples=300, deadline=None)
@given(attrs=st.dictionaries(st.sampled_from(["user", "order_id", "api_key", "token_count", "é", "x" * 9000]), VALUES))
def test_attributes_the_fused_paths_keep_are_those_the_careful_path_keeps(attrs: dict[str, Any]) -> None:
    enc = encoder(limits=Limits(max_attr_value=100))
    if enc._plain_attrs(attrs):
        assert enc._attrs(attrs) is attrs
    span = Span("work", attrs, PARENT, (), None, CODE, LINE)
    span.start_ns, span.end_ns = 1, 2
    assert without_id(enc(span)).attrs == enc._attrs(attrs)


def test_a_card_number_made_by_a_number_is_scrubbed_from_the_message() -> None:
    enc = encoder()
    short = enc(log_item("paid {n}", {"n": 12}))
    card = enc(log_item("paid {n}", {"n": 4111111111111111}))
    assert short is not None and short.message == "paid 12"
    assert card is not None and card.message is not None and "4111111111111111" not in card.message
    assert card.attrs == {"n": 4111111111111111}  # an attribute under a plain key keeps its number


def test_plain_records_keep_parent_template_and_attrs_as_the_careful_path_does() -> None:
    enc = encoder()
    record = enc(log_item("charged {amount} for {order}", {"amount": 12.5, "order": 7}))
    assert record is not None
    assert (record.message, record.template, record.attrs) == (
        "charged 12.5 for 7",
        "charged {amount} for {order}",
        {"amount": 12.5, "order": 7},
    )
    assert (record.trace_id, record.span_id, record.on_behalf_of) == (PARENT.trace_id, PARENT.span_id, "tenant-1")
    assert record.code is not None and (record.code.line, record.code.function) == (LINE, CODE.co_qualname)


def test_a_log_call_site_is_its_line_however_far_into_a_long_function() -> None:
    enc = encoder()
    namespace: dict[str, Any] = {"call_site": call_site}
    body = "".join(f"    x{i} = {i}\n" for i in range(500))
    exec(compile(f"def long():\n{body}    return call_site()\n", "<long>", "exec"), namespace)
    code, offset, line = namespace["long"]()
    assert line == 502 and enc.code_at_offset(code, offset).line == 502


def test_what_the_fused_path_leaves_to_the_careful_one_is_still_scrubbed_and_sanitised() -> None:
    enc = encoder(limits=Limits(max_message=40))
    cases: list[tuple[Any, dict[str, Any]]] = [
        ("login {password}", {"password": 1234}),  # a sensitive key (a number under it is a secret)
        ("call {url}", {"url": "https://u:pw@h/"}),  # a string value
        ("{x}", {"x": float("nan")}),
        ("{x}", {"x": 2**70}),
        ("{x:>50}", {"x": 1}),  # longer than max_message once rendered
        ("token=abc {x}", {"x": 1}),  # a template that is not clean itself
        ("{missing}", {"x": 1}),  # unformattable
        (object(), {}),
    ]
    for template, attrs in cases:
        fused, careful = both_paths(enc, log_item(template, attrs))
        assert fused == careful, template
    secret = enc(log_item("login {password}", {"password": 1234}))
    assert secret is not None and secret.attrs == {"password": SCRUBBED} and "1234" not in (secret.message or "")


def test_templates_made_from_data_fill_the_cache_once_and_then_take_the_careful_path() -> None:
    enc = encoder()
    for i in range(MAX_CACHED_TEMPLATES + 10):
        enc(log_item(f"order {i} charged {{amount}}", {"amount": 12.5}))
    assert len(enc._plain_templates) == MAX_CACHED_TEMPLATES
    fused, careful = both_paths(enc, log_item("paid {n} late", {"n": 4111111111111111}))
    assert fused == careful and "4111111111111111" not in (fused.message or "")


def test_no_scrubber_and_no_parent() -> None:
    enc = Encoder("node", Provenance(), None, Limits())
    item = log_item("token={t} {n}", {"t": 5, "n": None}, parent=None)
    fused, careful = without_id(enc(item)), without_id(enc._log_careful(item))
    assert fused == careful and fused.message == "token=5 None" and fused.trace_id is None


def std_item(msg: Any, args: Any, parent: Any = PARENT, exc_info: Any = None, extra: Any = None) -> tuple[Any, ...]:
    logger = logging.getLogger("app.std")
    rec = logger.makeRecord("app.std", logging.INFO, __file__, 12, msg, args, exc_info, "f", extra)
    return (items.STDLOG, rec, parent)


def both_std_paths(item: tuple[Any, ...]) -> tuple[Record, Record]:
    return without_id(encoder()(item)), without_id(encoder()._stdlog_careful(item))


PERCENT_LITERALS = st.sampled_from(
    [
        "charged ",
        " for ",
        "token=",
        "password: ",
        "https://u:",
        "@host",
        "-----BEGIN ",
        "be",
        "arer ",
        " 4111 ",
        "100%% ",
    ]
)
PERCENT_FIELDS = st.sampled_from(["%s", "%d", "%r", "%20s", "%.f", "%x", "%c", "%(a)s", "%5.2f", "%-9d", "%y"])


@settings(max_examples=400, deadline=None)
@given(
    parts=st.lists(st.one_of(PERCENT_LITERALS, PERCENT_FIELDS), min_size=1, max_size=6),
    args=st.lists(VALUES, max_size=4),
)
def test_the_fused_logging_encoder_gives_the_careful_paths_record(parts: list[str], args: list[Any]) -> None:
    item = std_item("".join(parts), tuple(args))
    fused, careful = both_std_paths(item)
    assert fused == careful


@pytest.mark.parametrize(
    "msg, args",
    [
        ("paid %s", (4111111111111111,)),
        ("paid %d%d", (41111111, 11111111)),
        ("password=%s", (1234,)),
        ("https://u:%s@host", (1234,)),
        ("%sarer %s", (True, 1234)),
        ("done %s", ("a string",)),
        ("url %s", ("https://u:pw@h/",)),
        ("%s", ("pw=1",)),
        ("paid %s %s", ("4111 1111", "1111 1111")),
        ("caf\u00e9 %s", ("\u00e9",)),
        ("done %s", ([1, 2],)),
        ("%(a)s", ({"a": 1},)),
        ("%.f%%", (12.5,)),
        ("plain", ()),
    ],
)
def test_logging_records_near_a_secret_give_the_careful_paths_record(msg: str, args: tuple[Any, ...]) -> None:
    fused, careful = both_std_paths(std_item(msg, args))
    assert fused == careful


def test_logging_records_with_extra_or_an_exception_take_the_careful_path() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        exc_info = sys.exc_info()
    for item in (std_item("x %s", (1,), extra={"user_password": "s3cret"}), std_item("x %s", (1,), exc_info=exc_info)):
        fused, careful = both_std_paths(item)
        assert fused == careful
    record = encoder()(std_item("x %s", (1,), extra={"user_password": "s3cret"}))
    assert record is not None and record.attrs == {"user_password": SCRUBBED}


def test_code_objects_made_and_dropped_keep_their_own_code_records() -> None:
    """The line cache is keyed by ``id(code)``: a code object dropped by the program must not hand its
    cached ``Code`` to a new one that gets its address."""
    enc = encoder()
    for i in range(200):
        namespace: dict[str, Any] = {}
        exec(compile(f"def f{i}():\n    pass\n", "<generated>", "exec"), namespace)
        code = namespace[f"f{i}"].__code__
        del namespace
        assert enc.code(code, 2).function == f"f{i}"


# -- record ids -----------------------------------------------------------------------------------


def test_record_ids_are_uuid7_strings_with_the_time_in_front() -> None:
    ts = time.time_ns()
    ids = [uuid7(ts) for _ in range(1000)]
    assert all(UUID7.fullmatch(i) for i in ids)
    assert int(ids[0].replace("-", "")[:12], 16) == ts // 1_000_000
    assert len(set(ids)) == 1000
    assert len({i[:-6] for i in ids}) == 1000  # the start of an id names it (``zoomtrace lineage`` takes it)
    assert uuid7(ts + 1_000_000) > ids[-1] > uuid7(ts - 1_000_000)


def test_record_ids_are_unique_across_threads() -> None:
    ts = time.time_ns()
    got: list[list[str]] = [[] for _ in range(4)]

    def make(out: list[str]) -> None:
        out.extend(uuid7(ts) for _ in range(20_000))

    threads = [threading.Thread(target=make, args=(out,)) for out in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({i for out in got for i in out}) == 80_000


def test_a_forked_child_makes_other_ids_than_its_parent() -> None:
    ts = time.time_ns()
    uuid7(ts)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        try:
            os.write(write, ",".join(uuid7(ts) for _ in range(100)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        child = f.read().split(",")
    os.waitpid(pid, 0)
    parent = [uuid7(ts) for _ in range(100)]
    assert len(child) == 100 and not set(child) & set(parent)
