"""The worker's side in C (``zoomtrace/_speedups_encoder.c``) against the Python it stands for.

``LogBuilder`` must give the record ``Encoder._log`` gives for every item, building in C only the lines the
encoder's caches already know plain and handing every other one to ``_log``; ``Dispatch`` must give what
``Encoder.__call__`` gives. Each test builds the C object on one encoder and compares with the Python of
another, fed the same items in the same order, so that their caches agree; the careful calls are counted, so
that a test fails if the C never builds a record (or builds one it should have left to Python).

Tests that compare with the C are skipped where it is not built, and fail under ``CI``, where it must be.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import sys
import weakref
from collections import UserDict, deque
from collections.abc import Callable
from types import CodeType, ModuleType
from typing import Any, Literal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoomtrace import _native
from zoomtrace.capture import items
from zoomtrace.capture.span import Span
from zoomtrace.runtime.encoder import _PLAIN_LOGRECORD_SIZE, Encoder
from zoomtrace.runtime.provenance import Provenance
from zoomtrace.runtime.sanitize import _LONG_DIGITS, Limits, json_encode, plain_json_encode
from zoomtrace.runtime.scrub import MAX_NESTING, Scrubber
from zoomtrace.wire.propagation import SpanContext
from zoomtrace.wire.record import Record

try:
    import helpers as h
except ImportError:  # tests/ imported as a package
    from tests import helpers as h

speedups = _native.speedups
PARENT = SpanContext("ab" * 16, "cd" * 8, 1, (), (), "tenant-1", True)
TS = 1_700_000_000_000_000_000


@pytest.fixture(scope="module")
def native() -> ModuleType:
    return h.native_speedups()


def call_site() -> tuple[CodeType, int]:
    f = sys._getframe(1)
    return f.f_code, f.f_lasti


CODE, OFFSET = call_site()
OTHER_CODE, OTHER_OFFSET = call_site()


def new_encoder(scrubber: Scrubber | None = None, limits: Limits | None = None) -> Encoder:
    return Encoder("node", Provenance(), scrubber, limits or Limits())


class Pair:
    """A C builder (``kind``: ``log``, ``stdlog`` or ``span``) on one encoder, and the Python method it stands for
    on another with the same settings."""

    def __init__(
        self,
        native: ModuleType,
        kind: Literal["log", "stdlog", "span", "event"] = "log",
        scrubber: Callable[[], Scrubber | None] = Scrubber,
        **limits: Any,
    ) -> None:
        self.c, self.py = new_encoder(scrubber(), Limits(**limits)), new_encoder(scrubber(), Limits(**limits))
        self.careful_calls = 0
        self.scans = 0
        c = self.c
        python = {"log": Encoder._log, "stdlog": Encoder._stdlog, "span": Encoder._span, "event": Encoder._event}[kind]
        self.python = getattr(self.py, python.__name__)

        def careful(item: Any) -> Record:
            self.careful_calls += 1
            return python(c, item)  # type: ignore[no-any-return]

        scrub_text = c.scrubber.scrub_text if c.scrubber is not None else None
        if kind == "log":
            self.builder = native.LogBuilder(
                careful,
                Record,
                c.node_id,
                c._offsets,
                c._plain_templates,
                c._renderers,
                c._plain_keys,
                c._clean_strings,
                c.limits.max_items,
                c.limits.max_message,
                scrub_text,
            )
        elif kind == "stdlog":
            self.builder = native.StdlogBuilder(
                careful,
                Record,
                c.node_id,
                logging.LogRecord,
                c._places,
                c._plain_percents,
                scrub_text,
                _PLAIN_LOGRECORD_SIZE,
                c.limits.max_message,
            )
        elif kind == "span":
            self.builder = native.SpanBuilder(
                careful, Record, c.node_id, c._lines, c._plain_keys, c._clean_strings, c.limits.max_items
            )
        else:
            self.builder = native.EventBuilder(
                careful,
                Record,
                c.node_id,
                c._offsets,
                c._plain_keys,
                c._clean_strings,
                c.limits.max_items,
                json_encode,
                msgspec.Raw,
                self.json_unchanged if c.scrubber is not None else None,
                c.limits.max_payload_bytes,
                plain_json_encode,
                c.scrubber.harmless_names if c.scrubber is not None else None,
                MAX_NESTING,
            )

    def json_unchanged(self, encoded: bytes) -> bool:
        """The C encoder's scrubber's ``json_unchanged``, counted."""
        self.scans += 1
        assert self.c.scrubber is not None
        return self.c.scrubber.json_unchanged(encoded)

    def both(self, item: Any) -> tuple[Record, Record, bool]:
        """Both records (ids left out) and whether the C built it."""
        before = self.careful_calls
        built = self.builder(item)
        return without_id(built), without_id(self.python(item)), self.careful_calls == before


def without_id(record: Record) -> Record:
    assert type(record) is Record
    return msgspec.structs.replace(record, id="")


def log_item(
    template: Any,
    attrs: Any,
    *,
    parent: Any = PARENT,
    logger: Any = "app.orders",
    code: CodeType = CODE,
    offset: Any = OFFSET,
    exc: Any = None,
) -> tuple[Any, ...]:
    return (items.LOG, TS, code, offset, logger, "INFO", template, attrs, parent, exc)


TEMPLATES = st.lists(
    st.sampled_from(
        ["charged ", " for ", "{a}", "{b}", "{a}{a}", "{a!r}", "{b:>9}", "token=", "{pw}", "50% ", "4111 ", "{{", "x"]
    ),
    max_size=5,
).map("".join)
TEXT = st.one_of(
    st.sampled_from(["GET", "u1", "https://u:pw@h/", "Bearer abc.def", "4111 1111 1111 1111", "é", "x" * 200, ""]),
    st.text(max_size=10),
)
VALUES = st.one_of(
    TEXT,
    st.integers(min_value=-(2**64), max_value=2**65),
    st.sampled_from([4111111111111111, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1]),
    st.floats(),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)
PARENTS = st.sampled_from([PARENT, None, SpanContext("12" * 16, "34" * 8)])
LOGGERS = st.sampled_from(["app.orders", "", None, 7])


@settings(max_examples=500, deadline=None)
@given(
    template=TEMPLATES,
    attrs=st.dictionaries(st.sampled_from(["a", "b", "pw", "user", "token"]), VALUES, max_size=4),
    parent=PARENTS,
    logger=LOGGERS,
)
def test_the_c_log_builder_gives_pythons_record(
    native: ModuleType, template: str, attrs: dict[str, Any], parent: Any, logger: Any
) -> None:
    pair = Pair(native, max_message=60)
    item = log_item(template, attrs, parent=parent, logger=logger)
    for _ in range(2):  # the first call fills the caches (in Python), the second may be built in C
        built, expected, _ = pair.both(item)
        assert built == expected


def test_a_plain_line_is_built_in_c_once_its_template_keys_text_and_call_site_are_known(native: ModuleType) -> None:
    pair = Pair(native)
    item = log_item("charged {amount} for {order} by {user}", {"amount": 12.5, "order": 7, "user": "u1"})
    assert pair.both(item)[2] is False  # the first one: Python learns the template, keys, text and call site
    for parent, logger in [(PARENT, "app.orders"), (None, None), (PARENT, "")]:
        built, expected, in_c = pair.both(log_item(*item[6:8], parent=parent, logger=logger))
        assert in_c and built == expected
    built, _, in_c = pair.both(log_item("started", {}))
    assert not in_c and built.message == "started" and built.template is None
    built, expected, in_c = pair.both(log_item("started", {}))
    assert in_c and built == expected
    assert (built.type, built.trace_id, built.on_behalf_of) == ("app.orders", PARENT.trace_id, "tenant-1")


@pytest.mark.parametrize(
    "value, in_c",
    [
        (2**63 - 1, True),
        (2**63, True),
        (2**64 - 1, True),
        (-(2**63), True),
        (2**64, False),
        (-(2**63) - 1, False),
        (float("nan"), False),
        (float("-inf"), False),
        (1e308, True),
        (True, True),
        (None, True),
        ([1], False),
        (b"x", False),
    ],
)
def test_values_msgpack_and_json_carry_are_built_in_c_and_the_others_left_to_python(
    native: ModuleType, value: Any, in_c: bool
) -> None:
    pair = Pair(native)
    pair.both(log_item("value {v}", {"v": 1}))  # the template, the key and the call site known
    built, expected, took_c = pair.both(log_item("value {v}", {"v": value}))
    assert built == expected and took_c is in_c


class Text(str):
    pass


@pytest.mark.parametrize(
    "change",
    [
        {"template": Text("value {v}")},
        {"attrs": UserDict({"v": 1})},
        {"attrs": {Text("v"): 1}},
        {"attrs": {"v": Text("u1")}},
        {"attrs": {"v": "a new text"}},
        {"attrs": {"w": 1}},
        {"logger": 7},
        {"logger": Text("app")},
        {"parent": SpanContext("12" * 16, "34" * 8, on_behalf_of=Text("tenant"))},  # type: ignore[arg-type]
        {"code": OTHER_CODE, "offset": OTHER_OFFSET},
        {"template": "value {v!r}"},
        {"template": "value {v:>30}"},
        {"template": "value {missing}"},
        {"exc": ValueError("boom")},
        {"attrs": {f"k{i}": i for i in range(9)}},  # more than max_items
    ],
)
def test_what_c_does_not_know_plain_is_left_to_python(native: ModuleType, change: dict[str, Any]) -> None:
    pair = Pair(native, max_items=8)
    known = {"template": "value {v}", "attrs": {"v": 1}}
    built, expected, in_c = pair.both(log_item(**known))
    assert not in_c and built == expected
    built, expected, in_c = pair.both(log_item(**{**known, **change}))
    assert not in_c and built == expected


def test_a_message_longer_than_the_limit_is_left_to_python(native: ModuleType) -> None:
    pair = Pair(native, max_message=20)
    pair.both(log_item("value {v}", {"v": 1}))
    built, expected, in_c = pair.both(log_item("value {v}", {"v": 10**13}))
    assert in_c and built == expected
    built, expected, in_c = pair.both(log_item("value {v}", {"v": 10**14}))
    assert not in_c and built == expected and "[truncated" in (built.message or "")


def test_a_number_that_makes_a_card_number_is_scrubbed_in_c_too(native: ModuleType) -> None:
    pair = Pair(native)
    pair.both(log_item("paid {n}", {"n": 12}))
    built, expected, in_c = pair.both(log_item("paid {n}", {"n": 4111111111111111}))
    assert in_c and built == expected and "4111111111111111" not in (built.message or "")


def test_text_values_that_make_a_secret_together_are_scrubbed_in_c_too(native: ModuleType) -> None:
    """Each value is clean text, and the template short and plain, but together they write a secret."""
    pair = Pair(native)
    pair.both(log_item("{a}{b}", {"a": "x", "b": "y"}))
    pair.both(log_item("{a}{b}", {"a": "pw=", "b": "abc"}))  # Python learns the two strings clean
    built, expected, in_c = pair.both(log_item("{a}{b}", {"a": "pw=", "b": "abc"}))
    assert in_c and built == expected and built.message == "pw=[scrubbed]"


def test_without_a_scrubber(native: ModuleType) -> None:
    pair = Pair(native, scrubber=lambda: None)
    item = log_item("token={t} {n}", {"t": 5, "n": None}, parent=None)
    pair.both(item)
    built, expected, in_c = pair.both(item)
    assert in_c and built == expected and built.message == "token=5 None"


class FailingScrubber(Scrubber):
    def scrub_text(self, text: str, **options: Any) -> str:
        if "4111" in text:
            raise RuntimeError("scrubber failed")
        return super().scrub_text(text, **options)


class InterruptedScrubber(Scrubber):
    def scrub_text(self, text: str, **options: Any) -> str:
        if "4111" in text:
            raise KeyboardInterrupt
        return super().scrub_text(text, **options)


def test_what_no_python_code_catches_goes_on_up_without_a_second_try(native: ModuleType) -> None:
    pair = Pair(native, scrubber=InterruptedScrubber)
    pair.both(log_item("paid {n}", {"n": 12}))
    with pytest.raises(KeyboardInterrupt):
        pair.builder(log_item("paid {n}", {"n": 4111111111111111}))
    assert pair.careful_calls == 1  # the first line's only


class NoTraceId:
    span_id = "cd" * 8
    on_behalf_of = None


def test_errors_are_raised_as_python_raises_them(native: ModuleType) -> None:
    pair = Pair(native, scrubber=FailingScrubber)
    pair.both(log_item("paid {n}", {"n": 12}))
    for enc in (pair.builder, pair.py._log):
        with pytest.raises(RuntimeError, match="scrubber failed"):
            enc(log_item("paid {n}", {"n": 4111111111111111}))
        with pytest.raises(AttributeError, match="trace_id"):
            enc(log_item("paid {n}", {"n": 12}, parent=NoTraceId()))
    with pytest.raises(TypeError, match="exactly one positional argument"):
        pair.builder()
    with pytest.raises(TypeError, match="exactly one positional argument"):
        pair.builder(log_item("paid {n}", {"n": 12}), extra=1)
    with pytest.raises(TypeError):
        native.LogBuilder(pair.py._log)


def span_item() -> Span:
    span = Span("work", {"user": "u1"}, PARENT, (), None, CODE, 1)
    span.start_ns, span.end_ns = TS, TS + 1000
    return span


def test_dispatch_gives_what_the_encoders_call_gives(native: ModuleType) -> None:
    c, py = new_encoder(Scrubber()), new_encoder(Scrubber())
    assert type(c.encode) is native.Dispatch
    prebuilt = Record(id="x", kind="node", type="started", ts_ns=TS, node_id="node")
    cases: list[Any] = [
        span_item(),
        log_item("charged {a}", {"a": 1}),
        log_item("charged {a}", {"a": 1}),
        (items.EVENT, "id", TS, CODE, OFFSET, "OrderPlaced", {"order": 1}, (), {}, PARENT),
        (items.RAW, "id", TS, CODE, OFFSET, "raw", b"bytes", "bin", {}, None),
        (items.RECORD, prebuilt),
        [items.RECORD, prebuilt],  # not a tuple: its first element is its tag all the same
        ("no such kind", 1),
    ]
    for item in cases:
        built, expected = c.encode(item), py(item)
        if expected is None:
            assert built is None
        else:
            assert built is not None and without_id(built) == without_id(expected)
    for bad in (7, ()):
        with pytest.raises((TypeError, IndexError)) as from_c:
            c.encode(bad)
        with pytest.raises((TypeError, IndexError)) as from_python:
            py(bad)
        assert from_c.type is from_python.type
    with pytest.raises(TypeError, match="exactly one positional argument"):
        c.encode()


def test_a_span_that_waited_untracked_is_tracked_again_and_collected_as_ever(native: ModuleType) -> None:
    """The C putter leaves a queued span untracked (``Pipeline(untracked=Span)``); the dispatch tracks it again, so
    a span in a reference cycle (here through an attribute that refers back to it) is still freed by the
    collector once recorded."""

    class Holder:
        span: Span

    enc = new_encoder(Scrubber())
    queue: deque[Any] = deque()
    put = native.Putter(queue, 10, 10, lambda: None, lambda item: None, untracked=Span)
    holder = Holder()
    span = make_span(attrs={"holder": holder})
    holder.span = span
    put(span)
    assert not gc.is_tracked(span)
    record = enc.encode(queue.popleft())
    assert gc.is_tracked(span) and record is not None and record.kind == "span"
    alive = weakref.ref(holder)
    del holder, span, record
    gc.collect()
    assert alive() is None
    with pytest.raises(TypeError, match="span_type"):
        native.Dispatch(int, enc._span, {})


def test_the_c_objects_and_their_encoder_are_collected(native: ModuleType) -> None:
    enc = new_encoder(Scrubber())
    enc.encode(log_item("charged {a}", {"a": 1}))
    # Each holds the encoder's bound methods, and the encoder holds them: a cycle only the collector frees.
    assert gc.is_tracked(enc.encode) and gc.is_tracked(enc._dispatch[items.LOG])
    alive = weakref.ref(enc)
    del enc
    gc.collect()
    assert alive() is None


def test_pure_python_has_no_c_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    from zoomtrace.runtime import encoder as encoder_module

    monkeypatch.setattr(encoder_module, "speedups", None)
    enc = new_encoder(Scrubber())
    assert enc.encode == enc.__call__ and enc._dispatch[items.LOG] == enc._log
    record = enc.encode(log_item("charged {a}", {"a": 1}))
    assert record is not None and record.message == "charged 1"


# -- logging records ----------------------------------------------------------------------------------------


def std_item(
    msg: Any,
    args: Any,
    *,
    parent: Any = PARENT,
    name: Any = "app.std",
    func: Any = "f",
    exc_info: Any = None,
    extra: Any = None,
) -> tuple[Any, ...]:
    logger = logging.getLogger("app.std")
    rec = logger.makeRecord("app.std", logging.INFO, __file__, 12, msg, args, exc_info, func, extra)
    rec.name = name
    return (items.STDLOG, rec, parent)


PERCENT_TEMPLATES = st.lists(
    st.sampled_from(["charged ", " for ", "%s", "%d", "%r", "%5.2f", "%x", "%(a)s", "token=", "100%% ", "4111 ", "%y"]),
    min_size=1,
    max_size=5,
).map("".join)


@settings(max_examples=500, deadline=None)
@given(
    msg=PERCENT_TEMPLATES,
    args=st.lists(VALUES, max_size=3).map(tuple),
    parent=PARENTS,
    name=LOGGERS,
)
def test_the_c_logging_builder_gives_pythons_record(
    native: ModuleType, msg: str, args: tuple[Any, ...], parent: Any, name: Any
) -> None:
    pair = Pair(native, "stdlog", max_message=60)
    item = std_item(msg, args, parent=parent, name=name)
    for _ in range(2):
        built, expected, _ = pair.both(item)
        assert built == expected


def test_a_plain_logging_record_is_built_in_c_once_its_template_and_place_are_known(native: ModuleType) -> None:
    pair = Pair(native, "stdlog")
    assert pair.both(std_item("charged %s for %s by %s", (12.5, 7, "u1")))[2] is False
    for parent, name in [(None, "root"), (PARENT, ""), (PARENT, "app.std")]:
        built, expected, in_c = pair.both(std_item("charged %s for %s by %s", (1.5, 2, "ü"), parent=parent, name=name))
        assert not in_c and built == expected  # text that is not ASCII: Python's
        built, expected, in_c = pair.both(std_item("charged %s for %s by %s", (1.5, 2, "u2"), parent=parent, name=name))
        assert in_c and built == expected
    assert (built.type, built.template, built.attrs) == ("app.std", "charged %s for %s by %s", {})
    built, expected, in_c = pair.both(std_item("paid %d", (4111111111111111,)))
    assert not in_c and built == expected
    built, expected, in_c = pair.both(std_item("paid %d", (4111111111111111,)))
    assert in_c and built == expected and "4111111111111111" not in (built.message or "")


class OtherRecord(logging.LogRecord):
    pass


def test_what_c_does_not_know_plain_in_a_logging_record_is_left_to_python(native: ModuleType) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        exc_info = sys.exc_info()
    pair = Pair(native, "stdlog", max_message=30)
    pair.both(std_item("value %s", (1,)))
    other = logging.LogRecord("app.std", logging.INFO, __file__, 12, "value %s", (1,), None, "f")
    other.__class__ = OtherRecord
    for item in [
        std_item("value %s", (1,), extra={"user": "u1"}),
        std_item("value %s", (1,), exc_info=exc_info),
        std_item("value %s", (1,), func=None),
        std_item("value %s", (1,), name=7),
        std_item("value %s", (1,), parent=SpanContext("12" * 16, "34" * 8, on_behalf_of=Text("t"))),  # type: ignore[arg-type]
        std_item("value %s", ([1],)),
        std_item("value %s", (float("nan"),)),
        std_item("value %s", (2**64,)),
        std_item("value %s", (10**30,)),  # longer than max_message once rendered
        std_item("value %s %s", (1,)),  # arguments that do not fit
        std_item(Text("value %s"), (1,)),
        std_item("value %s", [1]),
        (items.STDLOG, other, PARENT),
    ]:
        built, expected, in_c = pair.both(item)
        assert not in_c and built == expected


# -- spans ---------------------------------------------------------------------------------------------------


def make_span(
    name: Any = "work",
    attrs: Any = None,
    *,
    parent: Any = PARENT,
    links: Any = (),
    on_behalf_of: Any = None,
    error: BaseException | None = None,
    thread: str | None = "MainThread",
) -> Span:
    span = Span(name, {"user": "u1"} if attrs is None else attrs, parent, links, on_behalf_of, CODE, 40)
    span.start_ns, span.end_ns, span.status = TS, TS + 1500, "ok" if error is None else "error"
    span.error = error
    if thread is not None:
        span.thread = thread
    return span


@settings(max_examples=500, deadline=None)
@given(
    attrs=st.dictionaries(st.sampled_from(["a", "b", "pw", "user", "token"]), VALUES, max_size=4),
    parent=st.sampled_from([PARENT, None, SpanContext("12" * 16, "34" * 8, tracestate=(("v", "1"),))]),
    name=st.sampled_from(["work", "", 7]),
    links=st.sampled_from([(), (("ab" * 16, "cd" * 8),)]),
    on_behalf_of=st.sampled_from([None, "tenant-2", 9]),
    thread=st.sampled_from(["MainThread", None]),
)
def test_the_c_span_builder_gives_pythons_record(
    native: ModuleType,
    attrs: dict[str, Any],
    parent: Any,
    name: Any,
    links: Any,
    on_behalf_of: Any,
    thread: str | None,
) -> None:
    pair = Pair(native, "span", max_items=3)
    span = make_span(name, attrs, parent=parent, links=links, on_behalf_of=on_behalf_of, thread=thread)
    for _ in range(2):
        built, expected, _ = pair.both(span)
        assert built == expected


def test_a_plain_span_is_built_in_c_once_its_attributes_and_call_site_are_known(native: ModuleType) -> None:
    pair = Pair(native, "span")
    assert pair.both(make_span())[2] is False
    for span in (make_span(), make_span(parent=None, thread=None), make_span(attrs={}), make_span(on_behalf_of="t")):
        built, expected, in_c = pair.both(span)
        assert in_c and built == expected
    assert (built.kind, built.type, built.end_ns, built.on_behalf_of, built.thread) == (
        "span",
        "work",
        TS + 1500,
        "t",
        "MainThread",
    )
    for span in (
        make_span(error=ValueError("boom")),
        make_span(links=(("ab" * 16, "cd" * 8),)),
        make_span(parent=SpanContext("12" * 16, "34" * 8, tracestate=(("v", "1"),))),
        make_span(attrs={"user": "u2"}),
        make_span(attrs={"password": 1}),
        make_span(name=Text("work")),
    ):
        built, expected, in_c = pair.both(span)
        assert not in_c and built == expected


# -- data events ---------------------------------------------------------------------------------------------


def event_item(
    obj: Any,
    type_: Any = "OrderPlaced",
    *,
    sources: tuple[Any, ...] = (),
    attrs: Any = None,
    parent: Any = PARENT,
    code: CodeType = CODE,
    offset: int = OFFSET,
) -> tuple[Any, ...]:
    return (items.EVENT, "0190-id", TS, code, offset, type_, obj, sources, {} if attrs is None else attrs, parent)


@dataclasses.dataclass
class OrderPlaced:
    order_id: str
    total: float


NAMES = st.sampled_from(["id", "name", "password", "token", "note", "card"])
PAYLOAD_VALUES = st.recursive(
    VALUES | st.just(b"bytes"),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.tuples(NAMES, inner)  # a (name, value) pair
        | st.dictionaries(NAMES, inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=500, deadline=None)
@given(
    obj=PAYLOAD_VALUES,
    type_=st.sampled_from(["OrderPlaced", "", None, 7]),
    sources=st.lists(st.sampled_from(["0190-a", "0190-b", 5]), max_size=2).map(tuple),
    attrs=st.dictionaries(st.sampled_from(["user", "pw"]), VALUES, max_size=2),
    parent=PARENTS,
    scrubbed=st.booleans(),
)
def test_the_c_event_builder_gives_pythons_record(
    native: ModuleType,
    obj: Any,
    type_: Any,
    sources: tuple[Any, ...],
    attrs: dict[str, Any],
    parent: Any,
    scrubbed: bool,
) -> None:
    pair = Pair(native, "event", scrubber=Scrubber if scrubbed else lambda: None, max_payload_bytes=200)
    item = event_item(obj, type_, sources=sources, attrs=attrs, parent=parent)
    for _ in range(2):
        built, expected, _ = pair.both(item)
        assert built == expected


def test_a_plain_event_is_built_in_c_and_one_the_scrubber_changes_by_python(native: ModuleType) -> None:
    pair = Pair(native, "event", max_payload_bytes=1000)
    order = {"order_id": "o-1", "lines": [{"sku": "A", "qty": 2}], "total": 12.5, "paid": True}
    assert pair.both(event_item(order))[2] is False  # a new call site: Python resolves it
    for item in (
        event_item(order, None, sources=("0190-a",), parent=None),
        event_item(OrderPlaced("o-2", 3.5), None, attrs={"user": "u1"}),
        event_item(b"raw", "Blob"),  # bytes: base64 text in JSON, as msgspec writes them
        event_item([1, 2, 3], "Batch"),
    ):
        if item[8]:
            pair.both(item)  # Python learns the attribute text
        built, expected, in_c = pair.both(item)
        assert in_c and built == expected and type(built.payload) is msgspec.Raw
    assert (built.type, bytes(built.payload)) == ("Batch", b"[1,2,3]")
    for obj in (
        {"password": "hunter2"},
        {"note": "Bearer abc.def"},
        {"n": float("nan")},
        {"n": 2**70},
        {"blob": "x" * 1000},  # over max_payload_bytes
        7,
        None,
    ):
        built, expected, in_c = pair.both(event_item(obj))
        assert not in_c and built == expected
    built, _, _ = pair.both(event_item({"password": "hunter2"}))
    assert b"hunter2" not in json_encode(built.payload)


def test_a_payload_of_known_names_is_proven_by_a_walk_of_its_names(native: ModuleType) -> None:
    """Once the scrubber knows a payload's names, the C proves it without scanning its JSON for them, and gives
    the record Python gives; a name it does not know, a secret in a value, a sensitive pair name or a type beyond
    the builtins sends the payload back to the scan (and Python) as before."""
    pair = Pair(native, "event", max_payload_bytes=10_000)
    order = {"order_id": "o-1", "lines": [{"sku": "A", "qty": 2}, ("note", "ok")], "total": 12.5, "paid": True}
    pair.both(event_item(order))  # a new call site, and new names: Python, then the scan learns them
    scans = pair.scans
    for obj in (order, {**order, "total": 99.25, "order_id": "o-2"}, (order, [order])):
        built, expected, in_c = pair.both(event_item(obj))
        assert in_c and built == expected and type(built.payload) is msgspec.Raw
        assert msgspec.json.decode(built.payload) == msgspec.json.decode(msgspec.json.encode(obj))
    assert pair.scans == scans, "known names were scanned for again"
    for obj, scanned in (
        ({**order, "coupon": "c-1"}, True),  # a new name: scanned (and learned)
        ({**order, "notes": "see https://u:pw@h/"}, True),  # a new name, and a password in a URL
        ({"lines": [("password", "hunter2")]}, True),  # a sensitive pair name: the walk declines, the scan too
        ({"order_id": "Bearer abc.def"}, False),  # known name, a secret value: the byte tests send it to Python
        ({"order_id": "4111 1111 1111 1111"}, False),  # card-shaped digits
        ({"order_id": "a:b"}, False),  # a colon that is no key's
        ({"order_id": OrderPlaced("o", 1.0)}, True),  # a dataclass: not builtins, scanned
        ({"order_id": 2**70}, False),  # beyond 64 bits: JSON's fallbacks, then the careful path
    ):
        before = pair.scans
        built, expected, in_c = pair.both(event_item(obj))
        assert built == expected
        assert (pair.scans > before) is scanned, obj
        assert not in_c or type(built.payload) is msgspec.Raw
        assert b"hunter2" not in json_encode(built.payload) and b"u:pw@" not in json_encode(built.payload)


def test_the_walk_finds_names_by_identity_among_many_and_never_a_secret(native: ModuleType) -> None:
    """The C remembers the text objects it found among the harmless names, a slot each by address (1,024): with
    thousands of names made at run time, slots taken over and their former texts released, every payload still
    gives Python's record, and a sensitive name, made anew each time, is never taken for a known one."""
    pair = Pair(native, "event", max_payload_bytes=100_000)
    pair.both(event_item({"id": 1}))  # the call site
    names = ["".join(("field_", str(i))) for i in range(3000)]  # not the code's constants: made here
    for at in range(0, len(names), 100):
        pair.both(event_item(dict.fromkeys(names[at : at + 100], 1)))  # scanned: the names learned
    for round_ in range(3):
        for at in range(0, len(names), 250):
            chunk = {name: round_ for name in names[at : at + 250]}
            before = pair.scans
            built, expected, in_c = pair.both(event_item(chunk))
            assert in_c and built == expected and pair.scans == before
            secret = {**chunk, "".join(("pass", "word")): "hunter2"}
            built, expected, _ = pair.both(event_item(secret))
            assert built == expected and b"hunter2" not in json_encode(built.payload)
        names = ["".join(("field_", str(i))) for i in range(3000)]  # new objects, the same texts


def test_a_payload_too_deep_for_the_walk_is_scanned(native: ModuleType) -> None:
    pair = Pair(native, "event", max_payload_bytes=10_000)
    pair.both(event_item({"id": 1}))  # a new call site: Python; the scan learns "id"
    deep: Any = "leaf"
    for _ in range(MAX_NESTING):
        deep = {"id": deep}
    for _ in range(2):
        before = pair.scans
        built, expected, _ = pair.both(event_item(deep))
        assert built == expected and pair.scans == before + 1


WORD_PARTS = ["=", "earer", "EARER", "bearer", "-----BEGIN", "-----BEGI", "null", "nul", ":", "\\", "\n", "é", "4111"]
WORD_PARTS += ["1111 1111", "0" * 19, "0" * 13, " ", "x", "N", "l", "r", "R", "-"]


@settings(max_examples=400, deadline=None)
@given(
    parts=st.lists(st.sampled_from(WORD_PARTS), max_size=6),
    last=st.sampled_from(["", float("nan"), float("inf"), 10**18, 10**19, 2**64 - 1, 1e300]),
    shape=st.sampled_from(["object", "array", "pair"]),
)
def test_the_walks_byte_tests_give_pythons_record_wherever_the_words_stand(
    native: ModuleType, parts: list[str], last: Any, shape: str
) -> None:
    """The one pass over the JSON's bytes reads the last bytes apart (a word's last byte may be past them); a NaN
    or a long number last in the JSON (its ``null``, its digits) must send the payload to Python all the same."""
    pair = Pair(native, "event", max_payload_bytes=10_000)
    pair.both(event_item({"id": "x", "name": ["id", 1]}))  # the call site, and the names learned
    text = "".join(parts)
    obj = {"object": {"id": text, "name": last}, "array": [text, last], "pair": ["name", text]}[shape]
    for _ in range(2):
        built, expected, _ = pair.both(event_item(obj))
        assert built == expected


@pytest.mark.parametrize("run", [4, 12, 13, 18, 19, 25])
def test_the_walks_digit_runs_give_pythons_record_across_the_words_of_digit_bits(native: ModuleType, run: int) -> None:
    """Card shapes and numbers too long for msgpack, at every place across three of the C's 64-byte words of digit
    bits, after a space (a card's shape) or a letter, and as "1111 1111"."""
    pair = Pair(native, "event", max_payload_bytes=10_000)
    pair.both(event_item({"id": "x", "name": ["id", 1]}))  # the call site, and the names learned
    for offset in range(1, 150):
        for text in ("a" * offset + " " + "7" * run, "a" * offset + "7" * run, "b" * offset + "1234 " + "5" * run):
            careful = pair.careful_calls
            built, expected, _ = pair.both(event_item({"id": text, "name": [1, text]}))  # no pair: walked
            assert built == expected, (offset, text)
            if text[-run - 1] == "a":  # digits after a letter: no card's shape, so only a long run is Python's
                assert (pair.careful_calls > careful) is (run >= len(_LONG_DIGITS)), (offset, text)
