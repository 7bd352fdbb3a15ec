"""The caller's side of a span in C (``zoomtrace/_speedups_span.c``) against the Python it stands for.

``zt.span`` must make the span ``capture.span.python_span`` makes (name, attributes, ids, parent, sampling
flags, vendor state, baggage, call site), and ``Span``'s ``__init__``, ``__enter__`` and ``__exit__`` must do
what ``PythonSpanBase``'s do: the thread, the current position set and restored, the node's open spans, the
clocks (CPU time only when asked for, and only on the entering thread), the error, what is queued and by which
node. The reference here is ``Ref``, ``PythonSpanBase`` with ``Span``'s slots and no C at all. Last, a span
recorded through the C reaches the store as one recorded through the Python does.

Tests that compare with the C are skipped where it is not built, and fail under ``CI``, where it must be.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import sys
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import zoomtrace as zt
from zoomtrace.capture import recorder
from zoomtrace.capture import span as span_module
from zoomtrace.capture.context import SpanContext, current
from zoomtrace.capture.span import PythonSpanBase, Span, python_span

try:
    import helpers as h
except ImportError:  # tests/ imported as a package
    from tests import helpers as h


class Probe:
    """An attribute value whose end a weak reference sees (a span has no ``__weakref__`` slot)."""


class Ref(PythonSpanBase):
    """The pure-Python span: ``PythonSpanBase``'s methods on ``Span``'s slots."""

    __slots__ = Span.__slots__


@pytest.fixture(scope="module")
def native() -> ModuleType:
    built = h.native_speedups()
    assert issubclass(Span, built.SpanBase) and span_module.span is built.span
    return built


Node = h.FakeNode


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The spans queued through a node installed as ``recorder.active``."""
    items: list[Any] = []
    monkeypatch.setattr(recorder, "active", Node(items.append))
    return items


SLOTS = tuple(name for name in Span.__slots__ if name not in {"_token", "_node"})
#: Different in every span (random ids, a parent's among them), or read from a clock.
VARYING = {"trace_id", "span_id", "parent_span_id", "start_ns", "end_ns", "cpu_ns", "_cpu_start"}


def slots(span: Any) -> dict[str, Any]:
    """The span's slots that are set (its token and node aside, compared by identity where needed)."""
    return {name: getattr(span, name) for name in SLOTS if hasattr(span, name)}


def same_span(c: Any, py: Any, *, ids: bool = False) -> None:
    """The C span is the Python one, slot by slot: the same values, and the same types for those that vary."""
    c_slots, py_slots = slots(c), slots(py)
    assert c_slots.keys() == py_slots.keys()
    for name, value in py_slots.items():
        if name in VARYING and not ids:
            assert type(c_slots[name]) is type(value), name
        else:
            assert c_slots[name] == value and type(c_slots[name]) is type(value), name


def make(factory: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Both ``span`` functions are called here: the same code object and line."""
    return factory(*args, **kwargs)


def ref_span(name: str, /, **kwargs: Any) -> Any:
    """``python_span``'s span, as a ``Ref``."""
    made = make(python_span, name, **kwargs)
    ref = Ref.__new__(Ref)
    for slot in Span.__slots__:
        if hasattr(made, slot):
            setattr(ref, slot, getattr(made, slot))
    return ref


# -- zt.span ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"order": 1, "user": "u1"}, {"name": "n", "self": 1}, {"attrs": {"a": 1}, "b": 2}, {"on_behalf_of": "t"}],
)
def test_span_makes_the_span_python_makes(native: ModuleType, kwargs: dict[str, Any]) -> None:
    c, py = make(zt.span, "work", **kwargs), make(python_span, "work", **kwargs)
    same_span(c, py)
    assert type(c) is Span and c.code is make.__code__ and c.parent_span_id is None
    assert len(c.trace_id) == 32 and len(c.span_id) == 16 and c.trace_id != py.trace_id


def test_a_child_takes_its_parents_trace_flags_state_baggage_and_principal(native: ModuleType) -> None:
    remote = SpanContext("a" * 32, "b" * 16, 0, (("v", "1"),), (("k", "x"),), "tenant", True)
    token = current.set(remote)
    try:
        c, py = make(zt.span, "child", q=1), make(python_span, "child", q=1)
        same_span(c, py)
        assert (c.trace_id, c.parent_span_id, c.trace_flags, c.on_behalf_of) == ("a" * 32, "b" * 16, 0, "tenant")
        with c:
            grandchild = make(zt.span, "grandchild")
            assert (grandchild.trace_id, grandchild.parent_span_id) == (c.trace_id, c.span_id)
            assert grandchild.tracestate is c.tracestate and grandchild.baggage is c.baggage
    finally:
        current.reset(token)


def test_the_other_arguments_go_to_the_python(native: ModuleType) -> None:
    other = Span("other", {}, None, (), None, make.__code__, 1)
    for kwargs in ({"follows_from": other}, {"context": None}, {"context": other}, {"attrs": {"x": 1}}):
        c, py = make(zt.span, "s", **kwargs), make(python_span, "s", **kwargs)
        same_span(c, py)
    assert make(zt.span, "s", follows_from=other).links == [(other.trace_id, other.span_id)]


@pytest.mark.parametrize("args", [(), ("a", "b")])
def test_wrong_positional_arguments_fail_as_in_python(native: ModuleType, args: tuple[Any, ...]) -> None:
    with pytest.raises(TypeError) as c_error:
        zt.span(*args)
    with pytest.raises(TypeError) as py_error:
        python_span(*args)
    assert str(c_error.value) == str(py_error.value)


def test_the_call_site_is_the_callers_line(native: ModuleType) -> None:
    c = zt.span("here")
    line = sys._getframe().f_lineno - 1
    assert (c.code, c.line) == (sys._getframe().f_code, line)


def test_the_line_of_every_call_site_among_many(native: ModuleType) -> None:
    """The C remembers a line by code object and instruction: spans made at many lines of many functions (more
    than it remembers, and code objects made and freed meanwhile) each carry the line they were made at."""
    for round_ in range(3):
        source = "\n".join(
            f"def f{i}(span):\n"
            + "".join(f"    {'a' if n % 2 else 'b'}{n} = span('s{n}')\n" for n in range(i % 5 + 1))
            + "    return [v for k, v in sorted(locals().items()) if k != 'span']"
            for i in range(400)
        )
        namespace: dict[str, Any] = {}
        exec(compile(source, f"<round {round_}>", "exec"), namespace)
        for i in range(400):
            made = namespace[f"f{i}"](zt.span)
            first = namespace[f"f{i}"].__code__.co_firstlineno
            assert sorted((s.line, s.name) for s in made) == [(first + 1 + n, f"s{n}") for n in range(i % 5 + 1)]
            assert all(s.code is namespace[f"f{i}"].__code__ for s in made)
        del namespace
        gc.collect()


def test_span_holds_no_reference_it_should_not(native: ModuleType) -> None:
    """Each call's dict, code object and span are released: the counts return to where they were (after a first
    call, whose line the C remembers with its code object)."""
    value = Probe()
    make(zt.span, "s", k=value)
    before = sys.getrefcount(value), sys.getrefcount(make.__code__)
    for _ in range(1000):
        made = make(zt.span, "s", k=value)
        del made
    assert (sys.getrefcount(value), sys.getrefcount(make.__code__)) == before
    made = make(zt.span, "s", k=value)
    probe = weakref.ref(value)
    del made, value
    assert probe() is None


# -- Span.__init__ ------------------------------------------------------------------------------------------------


def test_init_sets_the_slots_python_sets(native: ModuleType) -> None:
    parent = Span("p", {}, None, (), "owner", make.__code__, 3)
    for args in (("n", {"a": 1}, None, (), None, make.__code__, 7), ("n", {}, parent, [("t", "s")], None, None, 0)):
        c, py = Span(*args), Ref(*args)
        same_span(c, py)
    assert Span("n", {}, parent, (), None, None, 0).on_behalf_of == "owner"
    with pytest.raises(TypeError):
        Span("only a name")  # type: ignore[call-arg]


def test_a_parent_without_a_field_fails_as_in_python(native: ModuleType) -> None:
    class Partial:
        trace_id = "a" * 32
        span_id = "b" * 16

    with pytest.raises(AttributeError, match="trace_flags"):
        Span("n", {}, Partial(), (), None, None, 0)  # type: ignore[arg-type]
    with pytest.raises(AttributeError, match="trace_flags"):
        Ref("n", {}, Partial(), (), None, None, 0)  # type: ignore[arg-type]


# -- __enter__ and __exit__ ---------------------------------------------------------------------------------------


def enter_exit(span: Any, error: BaseException | None = None) -> Any:
    before = current.get()
    with span as entered:
        assert entered is span and current.get() is span
        if error is not None:
            with pytest.raises(type(error)), span.__class__("inner", {}, span, (), None, None, 0):
                raise error
    assert current.get() is before
    return span


def test_enter_and_exit_do_what_python_does(native: ModuleType, queued: list[Any]) -> None:
    c, py = enter_exit(make(zt.span, "s", a=1)), enter_exit(ref_span("s", a=1))
    same_span(c, py)
    assert [s.name for s in queued] == ["s", "s"] and queued[0] is c and queued[1] is py
    assert c.thread == threading.current_thread().name and c._thread_ident == threading.get_ident()
    assert c.start_ns <= c.end_ns and c.cpu_ns is None and c._cpu_start is None
    assert recorder.active.open_spans == {}  # type: ignore[union-attr]


def test_an_error_is_the_spans_status(native: ModuleType, queued: list[Any]) -> None:
    error = ValueError("boom")
    enter_exit(make(zt.span, "s"), error)
    enter_exit(ref_span("s"), error)
    inner_c, outer_c, inner_py, _ = queued
    same_span(inner_c, inner_py)
    assert inner_c.status == "error" and inner_c.error is error and outer_c.status == "ok"


def test_cpu_time_only_when_asked_and_only_in_synchronous_code(
    native: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[Any] = []
    monkeypatch.setattr(recorder, "active", Node(queued.append, span_cpu=True))
    c, py = enter_exit(make(zt.span, "s")), enter_exit(ref_span("s"))
    same_span(c, py)
    for span in (c, py):
        assert isinstance(span.cpu_ns, int) and 0 <= span.cpu_ns <= span.end_ns - span.start_ns

    async def in_a_coroutine(span: Any) -> Any:
        with span:
            await asyncio.sleep(0)
        return span

    c, py = asyncio.run(in_a_coroutine(make(zt.span, "a"))), asyncio.run(in_a_coroutine(ref_span("a")))
    same_span(c, py)
    assert c.cpu_ns is None and c._cpu_start is None


def test_exit_on_another_thread_records_no_cpu_time(native: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recorder, "active", Node(lambda item: None, span_cpu=True))
    spans = [make(zt.span, "s"), ref_span("s")]
    for span in spans:
        span.__enter__()
    tokens_context = contextvars.copy_context()
    done: list[Any] = []
    thread = threading.Thread(
        target=lambda: done.extend(tokens_context.run(s.__exit__, None, None, None) for s in spans)
    )
    thread.start()
    thread.join()
    current.set(None)
    assert done == [None, None]
    same_span(*spans)
    assert spans[0].cpu_ns is None and spans[0].end_ns >= spans[0].start_ns


def test_exit_in_another_context_makes_the_position_none(native: ModuleType, queued: list[Any]) -> None:
    """A span left in another context (a generator finished elsewhere) cannot reset its token there."""
    for span in (make(zt.span, "s"), ref_span("s")):
        span.__enter__()
        contextvars.copy_context().run(span.__exit__, None, None, None)
        current.set(None)
    same_span(*queued)


def test_an_ended_span_keeps_the_spent_token_and_nothing_young_for_the_collector(
    native: ModuleType, queued: list[Any]
) -> None:
    """A span waits in the queue once ended: its own token (tracked by the collector, holding the context) is
    dropped for the shared spent one, and what it still refers to is nothing a young collection would promote
    (its attributes of plain values, its code, its node) — else full collections grow with the queue."""
    for span in (make(zt.span, "s", order=1, user="u1"), ref_span("s", order=1, user="u1")):
        with span:
            token = span._token
            assert token is not span_module._SPENT_TOKEN
        assert span._token is span_module._SPENT_TOKEN
        young = [o for o in gc.get_referents(span) if gc.is_tracked(o) and o not in (recorder.active, type(span))]
        assert young == [span_module._SPENT_TOKEN], young
    assert len(queued) == 2


def test_a_token_used_twice_fails_as_in_python(native: ModuleType, queued: list[Any]) -> None:
    for span in (make(zt.span, "s"), ref_span("s")):
        with span:
            pass
        with pytest.raises(RuntimeError, match="has already been used once"):
            span.__exit__(None, None, None)
    assert len(queued) == 2


def test_exit_before_enter_fails_as_in_python(native: ModuleType) -> None:
    errors = []
    for span in (make(zt.span, "s"), ref_span("s")):
        with pytest.raises(AttributeError) as caught:
            span.__exit__(None, None, None)
        errors.append(str(caught.value).split("'")[-2])  # the attribute's name
    assert errors[0] == errors[1] == "_cpu_start"
    with pytest.raises(TypeError):
        make(zt.span, "s").__exit__(None)  # type: ignore[call-arg]


def test_only_the_node_it_was_entered_under_records_it(native: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """A forked child's node does not record its parent's open spans, nor a node started after shutdown()."""
    first: list[Any] = []
    second: list[Any] = []
    for factory in (lambda: make(zt.span, "s"), lambda: ref_span("s")):
        monkeypatch.setattr(recorder, "active", Node(first.append))
        span = factory()
        span.__enter__()
        monkeypatch.setattr(recorder, "active", Node(second.append))
        span.__exit__(None, None, None)
        monkeypatch.setattr(recorder, "active", None)
        before_init = factory()
        before_init.__enter__()
        monkeypatch.setattr(recorder, "active", Node(second.append))
        before_init.__exit__(None, None, None)
    assert first == [] and len(second) == 2
    same_span(*second)


def test_without_a_node_nothing_is_queued_or_registered(native: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recorder, "active", None)
    c, py = enter_exit(make(zt.span, "s")), enter_exit(ref_span("s"))
    same_span(c, py)
    assert c._node is None


@pytest.mark.parametrize("error", [RuntimeError("put failed"), KeyboardInterrupt()])
def test_a_put_that_raises(native: ModuleType, monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    def put(item: object) -> None:
        raise error

    monkeypatch.setattr(recorder, "active", Node(put))
    for span in (make(zt.span, "s"), ref_span("s")):
        with pytest.raises(type(error)) as caught, span:
            pass
        assert caught.value is error
        assert current.get() is None  # the position was restored before the put


def test_open_spans_of_another_mapping_type(native: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    class Spans(dict[str, Any]):
        def pop(self, key: str, default: Any = None) -> Any:
            self.popped = key
            return super().pop(key, default)

    node = Node(lambda item: None)
    node.open_spans = Spans()
    monkeypatch.setattr(recorder, "active", node)
    for span in (make(zt.span, "s"), ref_span("s")):
        with span:
            assert node.open_spans[span.span_id] is span
        assert node.open_spans.popped == span.span_id and span.span_id not in node.open_spans


def test_a_thread_threading_never_met(native: ModuleType, queued: list[Any]) -> None:
    """A thread started outside ``threading`` gets the name ``threading.current_thread()`` makes for it."""
    import _thread

    names: list[str] = []
    done = threading.Event()

    def run() -> None:
        for span in (make(zt.span, "s"), ref_span("s")):
            with span:
                pass
            names.append(span.thread)
        done.set()

    _thread.start_new_thread(run, ())
    assert done.wait(30)
    assert names[0] == names[1] and names[0].startswith("Dummy-")


# -- a subclass of Span runs the Python ---------------------------------------------------------------------------


class Sub(Span):
    __slots__ = ("extra",)

    @property  # type: ignore[override]
    def thread(self) -> str:
        return "always"

    @thread.setter
    def thread(self, value: str) -> None:
        self.extra = value


def test_a_subclass_runs_the_python_methods(native: ModuleType, queued: list[Any]) -> None:
    sub = Sub("s", {}, None, (), None, make.__code__, 1)
    with sub:
        assert current.get() is sub
    assert queued == [sub] and sub.thread == "always" and sub.extra == threading.current_thread().name


# -- references and the collector ---------------------------------------------------------------------------------


def test_spans_are_freed_and_hold_nothing_back(native: ModuleType, queued: list[Any]) -> None:
    code = make.__code__
    gc.collect()
    before = sys.getrefcount(code), sys.getrefcount(None)
    for _ in range(2000):
        with make(zt.span, "s", a=1):
            pass
    queued.clear()
    gc.collect()
    assert sys.getrefcount(code) == before[0]
    assert abs(sys.getrefcount(None) - before[1]) < 50  # None's count moves with the interpreter's own work


def test_a_span_in_a_cycle_is_collected(native: ModuleType, queued: list[Any]) -> None:
    value = Probe()
    with make(zt.span, "s", k=value) as span:
        span.attrs["self"] = span
    queued.clear()
    probe = weakref.ref(value)
    del span, value
    gc.collect()
    assert probe() is None


# -- end to end ---------------------------------------------------------------------------------------------------


SCRIPT = """
import json
import zoomtrace as zt
from zoomtrace.capture import span


def handle(order):
    with zt.span("request", order=order):  # @MARK-REQUEST
        with zt.span("charge", attrs={"amount": 12.5}):  # @MARK-CHARGE
            zt.log.info("charged {order}", order=order)
        try:
            with zt.span("refund"):  # @MARK-REFUND
                raise ValueError("declined")
        except ValueError:
            pass


zt.init("span-e2e")
handle(7)
zt.shutdown()
print("RESULT " + json.dumps([type(zt.span).__name__, span.Span.__mro__[1].__qualname__]), flush=True)
"""


QUERY = (
    "select type, attrs, status, code_line, code_function, thread, error is not null as has_error, "
    "(select p.type from records p where p.span_id = r.parent_span_id) as parent "
    "from records r where kind = 'span' order by ts_ns"
)


def test_spans_through_the_c_reach_the_store_as_through_python(native: ModuleType, tmp_path: Path) -> None:
    """Spans (nested, with ``attrs=``, one failing) recorded with and without the C are the same rows."""
    (c_kind, c_rows), (py_kind, py_rows) = h.recorded_with_and_without_c(tmp_path, SCRIPT, QUERY)
    assert c_kind == ["builtin_function_or_method", "SpanBase"]
    assert py_kind == ["function", "PythonSpanBase"]
    assert c_rows == py_rows
    lines = (tmp_path / "c" / "app.py").read_text("utf-8").splitlines()
    marks = {m: n for n, line in enumerate(lines, 1) for m in ("REQUEST", "CHARGE", "REFUND") if f"@MARK-{m}" in line}
    assert [(r["type"], r["code_line"], r["parent"], r["has_error"], r["code_function"]) for r in c_rows] == [
        ("request", marks["REQUEST"], None, False, "handle"),
        ("charge", marks["CHARGE"], "request", False, "handle"),
        ("refund", marks["REFUND"], "request", True, "handle"),
    ]


# -- what a review under AddressSanitizer found -----------------------------------------------------------------


def test_open_spans_that_replaces_the_span_id_meanwhile(native: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """Python reads ``node.open_spans`` before ``self.span_id``: a mapping whose getter replaces the id registers
    the new one (the first C held the old id unowned across the getter, and freed it: a use after free)."""
    registered: list[str] = []

    class Replacing(h.FakeNode):
        @property  # type: ignore[override]
        def open_spans(self) -> dict[str, Any]:
            span = current.get()
            if span is not None:
                span.span_id = "".join(["z"] * 40)  # a new string: the old id's last reference goes
            return self.spans

        @open_spans.setter
        def open_spans(self, value: dict[str, Any]) -> None:
            self.spans = value

    for factory in (lambda: make(zt.span, "s"), lambda: ref_span("s")):
        node = Replacing(lambda item: None)
        monkeypatch.setattr(recorder, "active", node)
        span = factory()
        span.__enter__()
        registered.extend(node.spans)
        current.set(None)
    assert registered == ["z" * 40, "z" * 40]


def test_exit_by_keyword_and_wrong_arguments_as_in_python(native: ModuleType, queued: list[Any]) -> None:
    for span in (make(zt.span, "s"), ref_span("s")):
        span.__enter__()
        assert span.__exit__(exc_type=None, exc=None, tb=None) is None
    same_span(*queued)
    errors = []
    for span in (make(zt.span, "s"), ref_span("s")):
        for call in (lambda: span.__exit__(None), lambda: span.__exit__(None, None, None, bogus=1)):
            with pytest.raises(TypeError) as caught:
                call()
            errors.append(str(caught.value).split("__exit__()")[-1])
    assert errors[:2] == errors[2:]


def test_init_by_keyword_and_wrong_arguments_as_in_python(native: ModuleType) -> None:
    kwargs = {"attrs": {}, "parent": None, "links": (), "on_behalf_of": None, "code": None, "line": 1}
    same_span(Span("n", **kwargs), Ref("n", **kwargs))
    messages = []
    for cls in (Span, Ref):
        for args, extra in ((("n",), {}), (("n", {}, None, (), None, None, 1), {"bogus": 1})):
            with pytest.raises(TypeError) as caught:
                cls(*args, **extra)
            messages.append(str(caught.value).split("__init__()")[-1])
    assert messages[:2] == messages[2:]


def test_a_recorder_without_its_active_slot_fails_as_in_python(native: ModuleType) -> None:
    active = recorder.active
    del recorder.active
    try:
        for span in (make(zt.span, "s"), ref_span("s")):
            with pytest.raises(AttributeError, match="has no attribute 'active'"):
                span.__enter__()
            current.set(None)
    finally:
        recorder.active = active


def test_configure_span_takes_only_spans_own_slots(native: ModuleType) -> None:
    """Offsets must be the configured type's own writable object slots, and the type never changes."""

    class Borrowed:  # another class's member descriptors in its dict: their offsets lie beyond its objects
        pass

    for name in Span.__slots__:
        setattr(Borrowed, name, Span.__dict__[name])
    args = (PythonSpanBase, python_span, recorder.__dict__, current, {}, threading.current_thread, lambda: None, None)
    with pytest.raises(TypeError, match="no writable slot"):
        native.configure_span(Borrowed, *args)

    class Other(PythonSpanBase):
        __slots__ = Span.__slots__

    with pytest.raises(RuntimeError, match="already configured"):
        native.configure_span(Other, *args)
    native.configure_span(
        Span,
        *args[:4],
        span_module._threads,
        threading.current_thread,
        span_module._current_loop,
        span_module._SPENT_TOKEN,
    )
