"""``zt.event`` in C (``zoomtrace/_speedups_caller.c``'s ``event``) against ``capture.events.python_event``.

The C must queue exactly the item the Python queues (kind, the caller's code object and instruction offset, type,
payload, sources as a tuple, attributes with ``attrs=`` merged under the keywords, current position), return a
record id of the same form, and fail as the Python does, in the same order: a call the Python refuses is handed to
it. Both are called from one and the same instruction (``call``), so their items carry the same ``f_lasti``. Last,
events recorded through the C reach the store as through the pure-Python path.

Tests that compare with the C are skipped where it is not built, and fail under ``CI``, where it must be.
"""

from __future__ import annotations

import gc
import inspect
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoomtrace.capture import events, recorder
from zoomtrace.capture.context import current
from zoomtrace.capture.items import EVENT

try:
    import helpers as h
except ImportError:  # tests/ imported as a package
    from tests import helpers as h


@pytest.fixture(scope="module")
def native() -> ModuleType:
    built = h.native_speedups()
    assert events.event is built.event
    return built


def call(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Both functions are called here: the same code object, the same instruction."""
    return fn(*args, **kwargs)


class Queue:
    """A node's pipeline that keeps what is put, or raises ``error``."""

    def __init__(self) -> None:
        self.items: list[tuple[Any, ...]] = []
        self.error: BaseException | None = None

    def put(self, item: object) -> None:
        if self.error is not None:
            raise self.error
        assert type(item) is tuple
        self.items.append(item)


@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch) -> Queue:
    queue = Queue()
    monkeypatch.setattr(recorder, "active", h.FakeNode(queue.put))
    return queue


def outcome(queue: Queue, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """What one call did: the item queued (its id and time left out, checked against the returned id) or the
    exception raised (its type and message)."""
    before = len(queue.items)
    try:
        record_id = call(fn, *args, **kwargs)
    except Exception as exc:
        assert len(queue.items) == before
        return ("raised", type(exc), str(exc))
    assert type(record_id) is str and uuid.UUID(record_id).version == 7
    if len(queue.items) == before:
        return ("nothing queued",)
    (item,) = queue.items[before:]
    kind, queued_id, ts, *rest = item
    assert kind == EVENT and queued_id == record_id and type(ts) is int
    assert uuid.UUID(record_id).int >> 80 == ts // 1_000_000  # the id's time is the record's
    return ("queued", *rest)


def both(queue: Queue, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    return outcome(queue, events.event, args, kwargs), outcome(queue, events.python_event, args, kwargs)


KEYWORDS = st.dictionaries(
    st.sampled_from(["type", "sources", "attrs", "user", "obj", "amount", "format"]),
    st.one_of(
        st.none(),
        st.just("OrderPlaced"),
        st.just(["0190-a"]),
        st.just({"user": "from attrs", "k": 1}),
        st.just(MappingProxyType({"k": 2})),
        st.just(7),
        st.just("text"),
    ),
    max_size=4,
)


@settings(max_examples=400, deadline=None)
@given(
    args=st.lists(st.sampled_from([{"order": 1}, "Typed", ("0190-a", "0190-b"), None, 5, iter]), max_size=4),
    kwargs=KEYWORDS,
)
def test_the_c_queues_what_python_queues_and_fails_alike(native: ModuleType, args: list[Any], kwargs: Any) -> None:
    queue = Queue()
    previous, recorder.active = recorder.active, h.FakeNode(queue.put)
    try:
        c, python = both(queue, *args, **kwargs)
    finally:
        recorder.active = previous
    assert c == python


def test_the_c_has_the_pythons_signature(native: ModuleType) -> None:
    def names(fn: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

    assert names(events.event) == names(events.python_event)


def test_the_usual_calls(native: ModuleType, queue: Queue) -> None:
    payload = {"order": 7}
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        ((payload,), {}),
        ((payload,), {"type": "OrderPlaced"}),
        ((payload, "OrderPlaced", ["0190-a"]), {}),
        ((payload, "OrderPlaced"), {"sources": ("0190-a",), "attrs": {"tenant": "t1"}, "user": "u1"}),
        ((payload,), {"attrs": {"user": "from attrs", "tenant": "t1"}, "user": "keyword wins"}),
        ((payload,), {"attrs": None, "attrs_": 1}),
    ]
    for args, kwargs in calls:
        c, python = both(queue, *args, **kwargs)
        assert c == python and c[0] == "queued", (args, kwargs)
    *_, type_, obj, sources, fields, position = queue.items[2 * 3]  # the fourth call's, the C's (each calls twice)
    assert (type_, obj, sources) == ("OrderPlaced", payload, ("0190-a",)) and obj is payload
    assert fields == {"tenant": "t1", "user": "u1"} and position == current.get()
    assert queue.items[2 * 4][-2] == {"user": "keyword wins", "tenant": "t1"}


def test_sources_are_read_once_in_order(native: ModuleType, queue: Queue) -> None:
    def generated() -> Iterator[str]:
        yield "0190-a"
        yield "0190-b"

    c, python = both(queue, {"x": 1}, "T", sources=generated())
    assert c[0] == "queued" and c[5] == ("0190-a", "0190-b")
    assert python[5] == ()  # a generator is read once: the Python's call got it empty, and so does this check
    c, python = (
        outcome(queue, events.event, ({"x": 1}, "T", generated()), {}),
        outcome(queue, events.python_event, ({"x": 1}, "T", generated()), {}),
    )
    assert c == python


def test_the_item_is_made_after_its_parts(native: ModuleType, queue: Queue) -> None:
    """``tuple(sources)`` runs Python code (a generator here), which can reach any object the collector tracks: a
    queue item made before its parts would be met with slots still empty (reading one crashed the interpreter)."""
    payload = {"order": 7}

    def looking() -> Iterator[str]:
        for holder in gc.get_referrers(payload):
            if type(holder) is tuple:
                list(holder)  # every slot read
        yield "0190-a"

    for fn in (events.event, events.python_event):
        call(fn, payload, "T", looking())
    c, python = (item[3:] for item in queue.items)
    assert c == python and c[4] == ("0190-a",)


def test_errors_are_the_pythons(native: ModuleType, queue: Queue) -> None:
    def broken() -> Iterator[str]:
        raise ValueError("sources cannot be read")
        yield ""

    for args, kwargs in [
        ((), {}),
        (({"x": 1}, "T", (), "extra"), {}),
        (({"x": 1}, "T"), {"type": "again"}),
        (({"x": 1}, "T", ()), {"sources": ()}),
        (({"x": 1},), {"attrs": 5}),
        (({"x": 1},), {"attrs": [("k", "v")]}),
        (({"x": 1},), {"sources": 5}),
    ]:
        c, python = both(queue, *args, **kwargs)
        assert c[0] == "raised" and c == python, (args, kwargs, c, python)
    c, python = (outcome(queue, fn, ({"x": 1},), {"sources": broken()}) for fn in (events.event, events.python_event))
    assert c == python == ("raised", ValueError, "sources cannot be read")
    queue.error = RuntimeError("the queue is gone")
    c, python = both(queue, {"x": 1})
    assert c == python == ("raised", RuntimeError, "the queue is gone")


def test_without_a_node_only_an_id(native: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recorder, "active", None)
    payload = {"order": 1}
    before = sys.getrefcount(payload)
    ids = {events.event(payload, "T", attrs=5) for _ in range(1000)}  # attrs is not read without a node
    assert len(ids) == 1000 and all(uuid.UUID(i).version == 7 for i in ids)
    assert sys.getrefcount(payload) == before


def test_a_deleted_recorder_active_fails_alike(native: ModuleType) -> None:
    active = recorder.active
    del recorder.active
    try:
        c, python = both(Queue(), {"x": 1})
    finally:
        recorder.active = active
    assert c == python and c[:2] == ("raised", AttributeError)


def test_the_c_holds_no_reference_once_the_item_is_gone(native: ModuleType, queue: Queue) -> None:
    payload, sources, attrs = {"order": 1}, ["0190-a"], {"k": 1}
    counts = [sys.getrefcount(x) for x in (payload, sources, attrs)]
    for _ in range(1000):
        events.event(payload, "T", sources, attrs=attrs, user="u1")
    queue.items.clear()
    assert [sys.getrefcount(x) for x in (payload, sources, attrs)] == counts


SCRIPT = """
import json
import zoomtrace as zt

zt.init("svc")


def handle():
    with zt.span("request"):
        first = zt.event({"order": 7, "total": 12.5}, type="OrderPlaced", user="u1")  # @MARK-PLACED
        zt.event({"order": 7}, "OrderPaid", [first], attrs={"tenant": "t1"})  # @MARK-PAID


handle()
zt.shutdown()
print("RESULT " + json.dumps(type(zt.event).__name__), flush=True)
"""


QUERY = (
    "select type, attrs, payload, coalesce(len(sources), 0) as sources, code_line, code_function, "
    "(select p.type from records p where p.span_id = r.span_id and p.kind = 'span') as span "
    "from records r where kind = 'event' order by ts_ns"
)


def test_events_through_the_c_reach_the_store_as_through_python(native: ModuleType, tmp_path: Path) -> None:
    (c_kind, c_rows), (py_kind, py_rows) = h.recorded_with_and_without_c(tmp_path, SCRIPT, QUERY)
    assert (c_kind, py_kind) == ("builtin_function_or_method", "function")
    assert c_rows == py_rows
    lines = (tmp_path / "c" / "app.py").read_text("utf-8").splitlines()
    marks = {m: n for n, line in enumerate(lines, 1) for m in ("PLACED", "PAID") if f"@MARK-{m}" in line}
    assert [(r["type"], r["code_line"], r["code_function"], r["span"], r["sources"]) for r in c_rows] == [
        ("OrderPlaced", marks["PLACED"], "handle", "request", 0),
        ("OrderPaid", marks["PAID"], "handle", "request", 1),
    ]
