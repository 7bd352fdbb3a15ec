"""The caller's side in C (``zoomtrace/_speedups_caller.c``) against the Python it stands for.

``Logger`` must queue exactly the item ``zoomtrace.capture.log.PythonLogger`` queues (kind, time, the caller's
code object and instruction offset, logger name, level, template, attributes, current position, exception),
filter levels and fail as it does; ``Putter`` must do what ``zoomtrace.runtime.pipeline.PythonPutter`` does
(the bound, the worker's wake-up, the GIL turn, the callbacks' exceptions) and leak no references. The two
loggers are called from one and the same instruction (``call``), so their items carry the same ``f_lasti``.
Last, a ``zt.log`` line recorded through the C reaches the store with the line and function the pure-Python
path gives it.

Tests that compare with the C are skipped where it is not built, and fail under ``CI``, where it must be.
"""

from __future__ import annotations

import gc
import sys
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

import pytest

from zoomtrace import _native
from zoomtrace.capture import log as log_module
from zoomtrace.capture import recorder
from zoomtrace.capture.context import current
from zoomtrace.capture.items import LOG
from zoomtrace.capture.log import PythonLogger
from zoomtrace.runtime.pipeline import PythonPutter

try:
    import helpers as h
except ImportError:  # tests/ imported as a package
    from tests import helpers as h

speedups = _native.speedups

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50, "exception": 40}
LEVEL_NAMES = {"debug": "DEBUG", "info": "INFO", "warning": "WARNING", "error": "ERROR", "critical": "CRITICAL"}
LEVEL_NAMES["exception"] = "ERROR"


@pytest.fixture(scope="module")
def native() -> ModuleType:
    built = h.native_speedups()
    assert issubclass(log_module.Logger, built.Logger)
    return built


Node, Pipeline = h.FakeNode, h.FakePipeline


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """The items the loggers queue, through a node of level 0 installed as ``recorder.active``."""
    items: list[tuple[Any, ...]] = []
    monkeypatch.setattr(recorder, "active", Node(items.append))
    return items


def call(logger: Any, method: str, /, *args: Any, **kwargs: Any) -> Any:
    """Both loggers are called here: the same code object, the same instruction."""
    return getattr(logger, method)(*args, **kwargs)


def loggers(name: Any = None) -> tuple[Any, Any]:
    """The C logger (``zoomtrace.capture.log.Logger``, a subclass of the C one) and the Python reference."""
    return log_module.Logger(name), PythonLogger(name)


def both(
    items: list[tuple[Any, ...]], method: str, *args: Any, name: Any = None, **kwargs: Any
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """One call on each logger; each must queue exactly one item."""
    c, py = loggers(name)
    before = time.time_ns()
    assert call(c, method, *args, **kwargs) is None
    assert len(items) == 1
    assert call(py, method, *args, **kwargs) is None
    after = time.time_ns()
    assert len(items) == 2
    c_item, py_item = items
    assert before <= c_item[1] <= py_item[1] <= after
    items.clear()
    return c_item, py_item


def same_item(c_item: tuple[Any, ...], py_item: tuple[Any, ...]) -> None:
    """The C item is the Python one, field by field (the time aside: it only has to be an int)."""
    assert type(c_item) is tuple and len(c_item) == len(py_item) == 10
    assert c_item[0] is py_item[0] is LOG
    assert type(c_item[1]) is int and type(py_item[1]) is int
    assert c_item[2] is py_item[2] is call.__code__
    assert type(c_item[3]) is int and c_item[3] == py_item[3]
    assert c_item[4] == py_item[4] and type(c_item[4]) is type(py_item[4])
    assert c_item[5] == py_item[5]
    assert c_item[6] is py_item[6]
    assert type(c_item[7]) is dict and type(py_item[7]) is dict
    assert list(c_item[7].items()) == list(py_item[7].items())
    assert c_item[8] is py_item[8]
    assert c_item[9] is py_item[9]


# -- Logger: the item --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", list(LEVELS))
def test_every_level_queues_the_python_item(native: ModuleType, queued: list[Any], method: str) -> None:
    template = "charged {amount} for {order}"
    c_item, py_item = both(queued, method, template, amount=12.5, order=7)
    same_item(c_item, py_item)
    assert c_item[4] == __name__
    assert c_item[5] == LEVEL_NAMES[method]
    assert c_item[6] is template
    assert c_item[7] == {"amount": 12.5, "order": 7}
    assert c_item[8] is None and c_item[9] is None


def test_the_call_site_is_the_calling_instruction(native: ModuleType, queued: list[Any]) -> None:
    here = sys._getframe()
    line = here.f_lineno + 1
    log_module.Logger().info("here")
    (item,) = queued
    assert item[2] is here.f_code
    assert {at for start, _end, at in here.f_code.co_lines() if start == item[3]} == {line}


@pytest.mark.parametrize("method", list(LEVELS))
@pytest.mark.parametrize("levelno", [0, 10, 11, 20, 30, 39, 40, 41, 50, 51, 100])
def test_level_filtering_as_python(
    native: ModuleType, monkeypatch: pytest.MonkeyPatch, method: str, levelno: int
) -> None:
    items: list[Any] = []
    monkeypatch.setattr(recorder, "active", Node(items.append, levelno=levelno))
    c, py = loggers()
    assert call(c, method, "t", x=1) is None
    c_count = len(items)
    assert call(py, method, "t", x=1) is None
    py_count = len(items) - c_count
    assert c_count == py_count == (1 if levelno <= LEVELS[method] else 0)


@pytest.mark.parametrize("method", list(LEVELS))
def test_no_node_returns_none_and_queues_nothing(
    native: ModuleType, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    monkeypatch.setattr(recorder, "active", None)
    c, py = loggers()
    assert call(c, method, "t", x=1) is None
    assert call(py, method, "t", x=1) is None


def test_a_deleted_recorder_active_raises_as_python(native: ModuleType) -> None:
    active = recorder.active
    del recorder.active
    try:
        errors = []
        for logger in loggers():
            with pytest.raises(AttributeError) as caught:
                call(logger, "info", "t", x=1)
            errors.append(str(caught.value))
    finally:
        recorder.active = active
    assert errors[0] == errors[1]


def test_the_exception_being_handled(native: ModuleType, queued: list[Any]) -> None:
    try:
        raise ValueError("boom")
    except ValueError as error:
        c_item, py_item = both(queued, "exception", "failed")
        assert c_item[9] is error
        # the other levels take no exception, even in an except block
        same_item(*both(queued, "error", "failed"))
    same_item(c_item, py_item)
    # outside an except block: None
    c_item, py_item = both(queued, "exception", "no exception")
    same_item(c_item, py_item)
    assert c_item[9] is None


def test_the_innermost_exception_being_handled(native: ModuleType, queued: list[Any]) -> None:
    try:
        raise KeyError("outer")
    except KeyError:
        try:
            raise OSError("inner")
        except OSError as inner:
            c_item, py_item = both(queued, "exception", "inner")
            assert c_item[9] is inner
            same_item(c_item, py_item)
        c_item, py_item = both(queued, "exception", "outer again")
        assert isinstance(c_item[9], KeyError)
        same_item(c_item, py_item)


def test_the_current_position(native: ModuleType, queued: list[Any]) -> None:
    position = object()
    token = current.set(position)  # type: ignore[arg-type]
    try:
        c_item, py_item = both(queued, "info", "inside")
    finally:
        current.reset(token)
    assert c_item[8] is position
    same_item(c_item, py_item)


# -- Logger: attributes ----------------------------------------------------------------------------------


def test_attrs_merged_with_the_keywords_winning(native: ModuleType, queued: list[Any]) -> None:
    attrs = {"a": 1, "b": 2, "c": 3}
    c_item, py_item = both(queued, "info", "t", attrs=attrs, b="kw", d=4)
    same_item(c_item, py_item)
    assert c_item[7] == {"a": 1, "b": "kw", "c": 3, "d": 4}
    assert c_item[7] is not attrs and attrs == {"a": 1, "b": 2, "c": 3}


def test_attrs_alone_is_a_copy(native: ModuleType, queued: list[Any]) -> None:
    attrs = {"a": 1}
    c_item, py_item = both(queued, "info", "t", attrs=attrs)
    same_item(c_item, py_item)
    assert c_item[7] == {"a": 1} and c_item[7] is not attrs


def test_attrs_none_is_no_attrs(native: ModuleType, queued: list[Any]) -> None:
    c_item, py_item = both(queued, "info", "t", attrs=None, x=1)
    same_item(c_item, py_item)
    assert c_item[7] == {"x": 1}
    same_item(*both(queued, "info", "t", attrs=None))


def test_an_attribute_named_attrs_through_the_mapping(native: ModuleType, queued: list[Any]) -> None:
    c_item, py_item = both(queued, "warning", "t", attrs={"attrs": [1, 2]}, template="kw", self="me")
    same_item(c_item, py_item)
    assert c_item[7] == {"attrs": [1, 2], "template": "kw", "self": "me"}


def test_attrs_as_a_double_star_mapping(native: ModuleType, queued: list[Any]) -> None:
    kwargs = {"attrs": {"a": 1}, "b": 2}
    c_item, py_item = both(queued, "info", "t", **kwargs)
    same_item(c_item, py_item)
    assert c_item[7] == {"a": 1, "b": 2}


class Frozen(Mapping[str, Any]):
    """A mapping that is not a dict."""

    def __init__(self, **values: Any) -> None:
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


class DictWithKeys(dict[str, Any]):
    """A dict subclass whose ``keys`` says less than it has: ``{**x}`` goes through ``keys`` for it."""

    def keys(self) -> Any:
        return ["a"]


@pytest.mark.parametrize(
    "attrs",
    [Frozen(a=1, b=2), MappingProxyType({"a": 1, "b": 2}), DictWithKeys(a=1, b=2), {}],
    ids=["Mapping", "mappingproxy", "dict-subclass", "empty"],
)
def test_attrs_of_any_mapping(native: ModuleType, queued: list[Any], attrs: Mapping[str, Any]) -> None:
    c_item, py_item = both(queued, "info", "t", attrs=attrs, b="kw")
    same_item(c_item, py_item)


def raised(fn: Callable[[], object]) -> BaseException:
    try:
        fn()
    except BaseException as error:
        return error
    raise AssertionError("no exception")


def same_error(items: list[Any], method: str, *args: Any, name: Any = None, **kwargs: Any) -> BaseException:
    """Both loggers raise the same exception (type and message) and queue nothing."""
    c, py = loggers(name)
    c_error = raised(lambda: call(c, method, *args, **kwargs))
    py_error = raised(lambda: call(py, method, *args, **kwargs))
    assert type(c_error) is type(py_error), (c_error, py_error)
    assert str(c_error) == str(py_error)
    assert items == []
    return c_error


class KeysLookupFails:
    """Not a mapping, and asking it for ``keys`` raises something other than AttributeError."""

    def __getattr__(self, name: str) -> Any:
        raise ValueError(f"no {name} here")


class KeysRaises:
    def keys(self) -> Any:
        raise LookupError("keys failed")


class KeysGetattrRaisesAttributeError:
    """Has ``keys``, but calling it raises AttributeError: ``{**x}`` makes that a TypeError."""

    def keys(self) -> Any:
        raise AttributeError("inside keys")


@pytest.mark.parametrize(
    "attrs",
    [5, "ab", [("a", 1)], object(), KeysLookupFails(), KeysRaises(), KeysGetattrRaisesAttributeError()],
    ids=["int", "str", "pairs", "object", "keys-lookup-fails", "keys-raises", "keys-raises-attributeerror"],
)
def test_attrs_that_are_not_a_mapping_raise_as_python(native: ModuleType, queued: list[Any], attrs: Any) -> None:
    same_error(queued, "info", "t", attrs=attrs, x=1)


def test_many_keywords(native: ModuleType, queued: list[Any]) -> None:
    fields = {f"k{i}": i for i in range(300)}
    c_item, py_item = both(queued, "debug", "t", **fields)
    same_item(c_item, py_item)
    assert c_item[7] == fields
    c_item, py_item = both(queued, "debug", "t", attrs={"k5": "m", "z": 1}, **fields)
    same_item(c_item, py_item)
    assert c_item[7] == {"k5": 5, "z": 1, **fields}


@pytest.mark.parametrize("method", list(LEVELS))
@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {}), (("a", "b"), {}), (("a", "b", "c"), {"x": 1}), ((), {"x": 1})],
    ids=["none", "two", "three", "keywords-only"],
)
def test_wrong_positional_counts_raise_type_error(
    native: ModuleType, queued: list[Any], method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    c, py = loggers()
    with pytest.raises(TypeError):
        call(c, method, *args, **kwargs)
    with pytest.raises(TypeError):
        call(py, method, *args, **kwargs)
    assert queued == []


def test_wrong_positional_counts_raise_even_without_a_node(native: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recorder, "active", None)
    c, py = loggers()
    for logger in (c, py):
        with pytest.raises(TypeError):
            logger.info()
        with pytest.raises(TypeError):
            logger.info("a", "b")


def test_a_template_of_any_type_is_kept_as_it_is(native: ModuleType, queued: list[Any]) -> None:
    template = ["not", "text"]
    c_item, py_item = both(queued, "info", template)
    same_item(c_item, py_item)
    assert c_item[6] is template


# -- Logger: the name ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["svc.payments", None, "", 0, "ünï"])
def test_logger_names(native: ModuleType, queued: list[Any], name: Any) -> None:
    c_item, py_item = both(queued, "info", "t", name=name)
    same_item(c_item, py_item)
    assert c_item[4] == (name or __name__)


def test_a_name_changed_after_construction(native: ModuleType, queued: list[Any]) -> None:
    c, py = loggers("first")
    for name in ("second", None, "", "third"):
        c.name = name
        py.name = name
        assert c.name == py.name == name
        call(c, "info", "t")
        call(py, "info", "t")
        same_item(*queued)
        assert queued[0][4] == (name or __name__)
        queued.clear()


def test_a_name_object_is_kept_as_it_is(native: ModuleType, queued: list[Any]) -> None:
    name = ("a", "tuple")
    c_item, py_item = both(queued, "info", "t", name=name)
    assert c_item[4] is name and py_item[4] is name


class Falsy:
    def __bool__(self) -> bool:
        return False


class BoolRaises:
    def __bool__(self) -> bool:
        raise ZeroDivisionError("no truth")


def test_a_falsy_name_falls_back_to_the_module(native: ModuleType, queued: list[Any]) -> None:
    c_item, py_item = both(queued, "info", "t", name=Falsy())
    same_item(c_item, py_item)
    assert c_item[4] == __name__


def test_a_name_whose_truth_raises(native: ModuleType, queued: list[Any]) -> None:
    same_error(queued, "info", "t", name=BoolRaises())


RENAMES_ITSELF = """
import sys
from zoomtrace.capture import recorder, log

items = []
freed = []


class Node:
    pid = -1
    levelno = 0

    class pipeline:
        put = items.append


class Renames:
    def __bool__(self):
        logger.name = "renamed"  # drops the slot's reference, the last one but the caller's
        return True

    def __del__(self):
        freed.append(True)


recorder.active = Node()
for cls in (log.Logger, log.PythonLogger):
    logger = cls(Renames())
    logger.info("t")
    freed_under_the_item = len(freed)
    name = items.pop()[4]
    print(cls.__name__, freed_under_the_item, type(name).__name__, sys.getrefcount(name), logger.name, flush=True)
    del name
    assert freed.pop()
"""


def test_a_name_whose_truth_renames_the_logger(native: ModuleType, tmp_path: Path) -> None:
    """The name is held while its ``__bool__`` runs: a ``__bool__`` that replaces it does not free it under the
    call (the C read the slot without a reference of its own: a use after free, a crash at the latest at exit)."""
    script = tmp_path / "renames.py"
    script.write_text(RENAMES_ITSELF, "utf-8")
    child = h.run_script(script, None, env=h.child_env(None))
    assert [line.split() for line in child.stdout] == [
        ["Logger", "0", "Renames", "2", "renamed"],
        ["PythonLogger", "0", "Renames", "2", "renamed"],
    ]


def test_the_module_name_of_code_run_without_one(native: ModuleType, queued: list[Any]) -> None:
    c, py = loggers()
    for logger in (c, py):
        exec("logger.info('t')", {"logger": logger})  # globals without __name__
    (c_item, py_item) = queued
    assert c_item[4] is None and py_item[4] is None


def audit(self: Any, template: str, **fields: Any) -> None:
    """A Python method of a logger subclass: the call site is this function's."""
    self.info(template, **fields)


class CSub(log_module.Logger):
    audit = audit


class PySub(PythonLogger):
    audit = audit


class CSubWithInit(log_module.Logger):
    def __init__(self) -> None:
        super().__init__("sub")
        self.extra = 1


def test_a_python_subclass(native: ModuleType, queued: list[Any]) -> None:
    c, py = CSub("sub"), PySub("sub")
    c.audit("t", x=1)
    py.audit("t", x=1)
    c_item, py_item = queued
    assert c_item[2] is py_item[2] is audit.__code__
    assert c_item[3] == py_item[3]
    assert c_item[4] == py_item[4] == "sub"
    assert c_item[7] == py_item[7] == {"x": 1}
    queued.clear()
    # the subclass's instances log from the caller's code as the base's do
    same_item(*both_of(queued, CSub(), PySub()))
    sub = CSubWithInit()
    assert sub.name == "sub" and sub.extra == 1
    call(sub, "warning", "t")
    assert queued[0][4] == "sub"


def both_of(items: list[Any], c: Any, py: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    call(c, "info", "t", y=2)
    call(py, "info", "t", y=2)
    c_item, py_item = items
    items.clear()
    return c_item, py_item


class CNamed(log_module.Logger):
    @property  # type: ignore[override]
    def name(self) -> str:
        return "from-a-property"

    @name.setter
    def name(self, value: Any) -> None:
        pass


class PyNamed(PythonLogger):
    @property  # type: ignore[override]
    def name(self) -> str:
        return "from-a-property"

    @name.setter
    def name(self, value: Any) -> None:
        pass


class CGetattribute(log_module.Logger):
    def __getattribute__(self, attr: str) -> Any:
        return "from-getattribute" if attr == "name" else super().__getattribute__(attr)


class PyGetattribute(PythonLogger):
    def __getattribute__(self, attr: str) -> Any:
        return "from-getattribute" if attr == "name" else super().__getattribute__(attr)


class CWithoutInit(log_module.Logger):
    def __init__(self) -> None:
        pass  # never sets the name


class PyWithoutInit(PythonLogger):
    def __init__(self) -> None:
        pass


def test_a_subclass_that_makes_the_name_a_property(native: ModuleType, queued: list[Any]) -> None:
    c_item, py_item = both_of(queued, CNamed(), PyNamed())
    same_item(c_item, py_item)
    assert c_item[4] == "from-a-property"
    c_item, py_item = both_of(queued, CGetattribute(), PyGetattribute())
    same_item(c_item, py_item)
    assert c_item[4] == "from-getattribute"


def test_a_name_never_set_or_deleted_raises_as_python(native: ModuleType, queued: list[Any]) -> None:
    for c, py in [(CWithoutInit(), PyWithoutInit()), loggers("deleted")]:
        if not isinstance(c, CWithoutInit):
            del c.name
            del py.name
        for logger in (c, py):
            with pytest.raises(AttributeError):
                logger.name
        c_error = raised(lambda c=c: call(c, "info", "t"))
        py_error = raised(lambda py=py: call(py, "info", "t"))
        assert type(c_error) is type(py_error) is AttributeError
        assert queued == []
        c.name = py.name = "again"
        same_item(*both_of(queued, c, py))


def test_a_logger_in_a_cycle_through_its_name_is_collected(native: ModuleType) -> None:
    freed: list[str] = []

    class Marker:
        def __init__(self, kind: str) -> None:
            self.kind = kind

        def __del__(self) -> None:
            freed.append(self.kind)

    for kind, cls in (("c", log_module.Logger), ("python", PythonLogger), ("c-subclass", CSub)):
        logger = cls()
        logger.name = [logger, Marker(kind)]  # type: ignore[assignment]
        del logger
        gc.collect()
    assert freed == ["c", "python", "c-subclass"]


def test_logger_constructor_arguments(native: ModuleType) -> None:
    for cls in (log_module.Logger, PythonLogger):
        assert cls().name is None
        assert cls("n").name == "n"
        assert cls(name="n").name == "n"
        with pytest.raises(TypeError):
            cls("a", "b")  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            cls(other="x")  # type: ignore[call-arg]


# -- Logger: the node ------------------------------------------------------------------------------------


def test_a_levelno_that_takes_the_node_away_during_the_call(
    native: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    items: list[Any] = []

    class Vanishing(Node):
        @property  # type: ignore[override]
        def levelno(self) -> int:
            recorder.active = None
            return 0

        @levelno.setter
        def levelno(self, value: int) -> None:
            pass

    c, py = loggers()
    for logger in (c, py):
        node = Vanishing(items.append)
        monkeypatch.setattr(recorder, "active", node)
        del node  # the module global was the one reference: the call must hold it
        call(logger, "info", "t", x=1)
        assert recorder.active is None
    same_item(*items)


@pytest.mark.parametrize("error", [RuntimeError("put failed"), KeyboardInterrupt()])
def test_a_put_that_raises(native: ModuleType, monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    seen: list[Any] = []

    def put(item: object) -> None:
        seen.append(item)
        raise error

    monkeypatch.setattr(recorder, "active", Node(put))
    c, py = loggers()
    for logger in (c, py):
        with pytest.raises(type(error)) as caught:
            call(logger, "info", "t")
        assert caught.value is error
    same_item(*seen)


def test_a_put_that_returns_a_value_still_returns_none(native: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recorder, "active", Node(lambda item: "ignored"))
    c, py = loggers()
    assert call(c, "info", "t") is None
    assert call(py, "info", "t") is None


class Broken:
    """A node or pipeline missing what a logger reads."""

    pid = -1


def test_a_node_without_a_pipeline_or_put(native: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    node = Node(print)
    node.pipeline = Broken()  # type: ignore[assignment]
    monkeypatch.setattr(recorder, "active", node)
    same_error([], "info", "t")
    del node.pipeline
    same_error([], "info", "t")
    monkeypatch.setattr(recorder, "active", Broken())
    same_error([], "info", "t")


def test_the_name_is_taken_before_the_pipeline(native: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """Python evaluates ``self.name or ...`` before ``node.pipeline.put``: the name's error comes first, and a
    pipeline that renames the logger renames the next line, not this one."""
    node = Node(print)
    del node.pipeline
    monkeypatch.setattr(recorder, "active", node)
    same_error([], "info", "t", name=BoolRaises())

    items: list[Any] = []
    c, py = loggers("before")

    class Renaming(Node):
        @property  # type: ignore[override]
        def pipeline(self) -> Pipeline:
            c.name = py.name = "after"
            return Pipeline(items.append)

        @pipeline.setter
        def pipeline(self, value: Pipeline) -> None:
            pass

    monkeypatch.setattr(recorder, "active", Renaming(print))
    for logger in (c, py):
        call(logger, "info", "t")
        c.name = py.name = "before"
    same_item(*items)
    assert items[0][4] == "before"


@pytest.mark.parametrize("levelno", ["10", None, 2**70, 10.0, 45.5])
def test_levelno_of_another_type(native: ModuleType, monkeypatch: pytest.MonkeyPatch, levelno: Any) -> None:
    """A node's level is an int; of another type, the C must do as the Python does (compare, or raise the same)."""
    items: list[Any] = []
    monkeypatch.setattr(recorder, "active", Node(items.append, levelno=levelno))
    c, py = loggers()
    c_outcome: Any
    py_outcome: Any
    try:
        c_outcome = ("queued", call(c, "error", "t"), len(items))
    except Exception as error:
        c_outcome = ("raised", type(error))
    items.clear()
    try:
        py_outcome = ("queued", call(py, "error", "t"), len(items))
    except Exception as error:
        py_outcome = ("raised", type(error))
    assert c_outcome == py_outcome


# -- Logger: references -----------------------------------------------------------------------------------


def test_a_log_call_leaks_no_references(native: ModuleType, queued: list[Any]) -> None:
    template, value, name, attrs, position = "t {v}", object(), "n" + str(id(queued)), {"a": object()}, object()
    attr_value = attrs["a"]
    logger = log_module.Logger(name)
    watched = (template, value, name, attrs, attr_value, position, call.__code__)

    def log_many(times: int) -> None:
        token = current.set(position)  # type: ignore[arg-type]
        try:
            for _ in range(times):
                call(logger, "info", template, v=value)
                call(logger, "info", template, attrs=attrs, v=value)
                call(logger, "info", template, attrs=None, v=value)
        finally:
            current.reset(token)
        assert len(queued) == 3 * times
        queued.clear()

    log_many(10)  # warm-up: the interpreter's own caches settle
    gc.collect()  # earlier tests' garbage (tracebacks through ``call``) goes first
    before = [sys.getrefcount(o) for o in watched]
    log_many(1000)
    gc.collect()
    assert [sys.getrefcount(o) for o in watched] == before


def test_a_failed_log_call_leaks_no_references(native: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    value, attrs = object(), {"a": object()}

    def put(item: object) -> None:
        raise RuntimeError("put failed")  # a new one each time: its traceback holds the item

    logger = log_module.Logger(BoolRaises())
    named = log_module.Logger()
    gc.collect()
    before = [sys.getrefcount(o) for o in (value, attrs, attrs["a"])]
    monkeypatch.setattr(recorder, "active", Node(put))
    for _ in range(200):
        with pytest.raises(ZeroDivisionError):
            logger.info("t", v=value, attrs=attrs)
        with pytest.raises(RuntimeError):
            named.info("t", v=value, attrs=attrs)
        with pytest.raises(TypeError):
            named.info("t", v=value, attrs=5)
    gc.collect()
    assert [sys.getrefcount(o) for o in (value, attrs, attrs["a"])] == before


# -- Putter --------------------------------------------------------------------------------------------------


class Calls:
    """The callbacks of a putter: ``wake`` and ``full``, recording the queue's length at each call."""

    def __init__(self, queue: deque[Any]) -> None:
        self.queue = queue
        self.log: list[tuple[str, int, Any]] = []

    def wake(self) -> None:
        self.log.append(("wake", len(self.queue), None))

    def full(self, item: object) -> None:
        self.log.append(("full", len(self.queue), item))


def putters(maxsize: int, wake_at: int) -> Iterator[tuple[str, Any, deque[Any], Calls]]:
    for kind, cls in (("c", speedups.Putter if speedups else None), ("python", PythonPutter)):
        queue: deque[Any] = deque()
        calls = Calls(queue)
        yield kind, cls(queue, maxsize, wake_at, calls.wake, calls.full), queue, calls


@pytest.mark.parametrize(("maxsize", "wake_at"), [(0, 0), (1, 0), (8, 2), (8, 0), (8, 8), (8, 20), (5, -1)])
def test_putter_bound_and_wake_as_python(native: ModuleType, maxsize: int, wake_at: int) -> None:
    outcomes = []
    for _kind, put, queue, calls in putters(maxsize, wake_at):
        for i in range(maxsize + 3):
            assert put(i) is None
        assert put.turn_at == 0.0
        outcomes.append((list(queue), calls.log))
    (c_queue, c_log), (py_queue, py_log) = outcomes
    assert c_queue == py_queue == list(range(maxsize))
    assert c_log == py_log
    assert [item for what, _, item in c_log if what == "full"] == list(range(maxsize, maxsize + 3))
    # once, at the first size past wake_at: the worker has not cleared its event (reset ``woken``) since
    assert [size for what, size, _ in c_log if what == "wake"] == [n for n in range(1, maxsize + 1) if n > wake_at][:1]


def test_putter_leaves_its_untracked_type_to_whoever_takes_it_out(native: ModuleType) -> None:
    """Objects of the putter's ``untracked`` type (the pipeline's spans) wait in the queue untracked; others, and
    one the full queue hands to ``full``, keep their tracking."""

    class Queued:
        pass

    class Other:
        pass

    queue: deque[Any] = deque()
    refused: list[object] = []
    put = native.Putter(queue, 2, 10, lambda: None, refused.append, untracked=Queued)
    first, second, third = Queued(), Other(), Queued()
    for item in (first, second, third):
        put(item)
    assert list(queue) == [first, second] and refused == [third]
    assert not gc.is_tracked(first) and gc.is_tracked(second) and gc.is_tracked(third)
    for bad in (int, 7, "Queued"):  # not a type whose objects the collector tracks
        with pytest.raises(TypeError, match="untracked"):
            native.Putter(queue, 2, 10, lambda: None, refused.append, untracked=bad)


def test_putter_leaves_tuples_to_reference_counting(native: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """The C putter untracks the tuples it is given (a C log call's item among them): the garbage collector does
    not visit them while they wait, and what they hold is freed all the same once the queue lets go, cycles
    within it included. Anything else it queues as it is."""

    class Cyclic:
        me: object

    value = Cyclic()
    value.me = value
    alive = weakref.ref(value)
    c_queue: deque[Any] = deque()
    py_queue: deque[Any] = deque()
    c_put = native.Putter(c_queue, 10, 10, lambda: None, lambda item: None)
    py_put = PythonPutter(py_queue, 10, 10, lambda: None, lambda item: None)
    monkeypatch.setattr(recorder, "active", Node(c_put))
    log_module.Logger("x").info("order {order}", order=value)
    for put in (c_put, py_put):
        put((LOG, value))
        put([value])
    logged, c_tuple, c_list = c_queue
    py_tuple, py_list = py_queue
    assert logged[7] == {"order": value}
    assert not gc.is_tracked(logged) and not gc.is_tracked(c_tuple)
    assert gc.is_tracked(py_tuple)  # the reference cannot untrack: what the C saves the collector
    assert gc.is_tracked(c_list) and gc.is_tracked(py_list)
    del logged, c_tuple, c_list, py_tuple, py_list, value
    c_queue.clear()
    py_queue.clear()
    gc.collect()
    assert alive() is None


def test_putter_bound_follows_the_queue_as_it_drains(native: ModuleType) -> None:
    for _kind, put, queue, calls in putters(2, 1):
        put("a")
        put("b")
        put("c")  # full
        queue.popleft()
        put.woken = False  # the worker, woken, cleared its event and took an item
        put("d")
        assert list(queue) == ["b", "d"]
        assert calls.log == [("wake", 2, None), ("full", 2, "c"), ("wake", 2, None)]


def test_putter_wakes_once_until_the_worker_resets_woken(native: ModuleType) -> None:
    for _kind, put, _queue, calls in putters(100, 2):
        assert put.woken is False
        for item in "abcde":
            put(item)
        assert calls.log == [("wake", 3, None)] and put.woken is True
        put.woken = False  # the worker cleared its event
        put("f")
        put("g")
        assert calls.log == [("wake", 3, None), ("wake", 6, None)]


def test_putter_turn_at(native: ModuleType) -> None:
    for _kind, put, queue, _calls in putters(100, 50):
        assert put.turn_at == 0.0
        put.turn_at = time.monotonic() + 3600  # in the future: stays
        put("a")
        assert put.turn_at != 0.0
        put.turn_at = time.monotonic() - 1  # in the past: the turn is given, and reset
        put("b")
        assert put.turn_at == 0.0
        put.turn_at = 1.0  # long past
        put("c")  # taken by the full queue path too
        assert put.turn_at == 0.0
        assert list(queue) == ["a", "b", "c"]


def test_putter_turn_at_after_a_full_queue(native: ModuleType) -> None:
    for _kind, put, queue, calls in putters(0, 0):
        put.turn_at = time.monotonic() - 1
        put("x")
        assert put.turn_at == 0.0
        assert list(queue) == [] and calls.log == [("full", 0, "x")]


@pytest.mark.parametrize("which", ["wake", "full", "append"])
def test_putter_callback_exceptions_propagate(native: ModuleType, which: str) -> None:
    class Failing(deque):  # type: ignore[type-arg]
        def append(self, item: Any) -> None:
            raise OSError("append failed")

    outcomes = []
    for cls in (speedups.Putter, PythonPutter):
        queue: deque[Any] = Failing() if which == "append" else deque()
        error = LookupError(which)
        seen: list[Any] = []

        def fail(*args: Any, error: BaseException = error, seen: list[Any] = seen) -> None:
            seen.append(args)
            raise error

        noop: Callable[..., None] = lambda *args: None  # noqa: E731
        put = cls(queue, 0 if which == "full" else 10, 0, fail if which == "wake" else noop, fail)
        put.turn_at = time.monotonic() - 1
        with pytest.raises(OSError if which == "append" else LookupError):
            put("item")
        outcomes.append((list(queue), seen, put.turn_at != 0.0))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][2]  # an exception leaves the turn for the next put


def test_putter_takes_one_positional_item(native: ModuleType) -> None:
    for _kind, put, queue, _calls in putters(10, 5):
        with pytest.raises(TypeError):
            put()
        with pytest.raises(TypeError):
            put(1, 2)
        with pytest.raises(TypeError):
            put(item=1)
        with pytest.raises(TypeError):
            put(1, item=1)
        assert list(queue) == []
        put(1, **{})  # one positional item, no keyword
        assert list(queue) == [1]


def test_putter_constructor(native: ModuleType) -> None:
    queue: deque[Any] = deque()
    for cls in (speedups.Putter, PythonPutter):
        put = cls(queue=queue, maxsize=4, wake_at=1, wake=lambda: None, full=lambda item: None)
        put("x")
    assert list(queue) == ["x", "x"]
    with pytest.raises(TypeError):
        speedups.Putter(queue, 4, 1, lambda: None)
    with pytest.raises(AttributeError):
        speedups.Putter(object(), 4, 1, lambda: None, lambda item: None)  # no append


def test_putter_leaks_no_references(native: ModuleType) -> None:
    sentinel = object()
    base = sys.getrefcount(sentinel)
    queue: deque[Any] = deque()
    dropped: list[Any] = []
    woken: list[None] = []
    put = speedups.Putter(queue, 500, 100, lambda: woken.append(None), dropped.append)
    for _ in range(3):
        for _ in range(1000):
            put(sentinel)
        assert len(queue) == 500 and len(dropped) == 500 and len(woken) == 1
        assert sys.getrefcount(sentinel) == base + 1000
        put.woken = False
        queue.clear()
        dropped.clear()
        woken.clear()
        assert sys.getrefcount(sentinel) == base
    raising = speedups.Putter(queue, 1, 0, lambda: None, lambda item: 1 / 0)
    raising(sentinel)
    for _ in range(100):
        with pytest.raises(ZeroDivisionError):
            raising(sentinel)
    queue.clear()
    assert sys.getrefcount(sentinel) == base


def test_putter_is_collected_in_a_cycle(native: ModuleType) -> None:
    import weakref

    class Owner:
        pass

    owner = Owner()
    queue: deque[Any] = deque()
    owner.put = speedups.Putter(queue, 4, 1, lambda: None, lambda item, owner=owner: None)  # type: ignore[attr-defined]
    gone = weakref.ref(owner)
    del owner
    gc.collect()
    assert gone() is None


# -- end to end ----------------------------------------------------------------------------------------------

SCRIPT = """
import json
import zoomtrace as zt
from zoomtrace.capture import log

zt.init("caller-e2e")


def checkout(order):
    zt.log.info("checked out {order}", order=order)  # @MARK-INFO
    zt.event({"order": order}, type="OrderPlaced", sources=("upstream",))  # @MARK-EVENT
    zt.raw(b"receipt", type="receipt")  # @MARK-RAW
    try:
        raise ValueError("declined")
    except ValueError:
        zt.logger("payments").exception("declined {order}", order=order)  # @MARK-EXC


checkout(7)
zt.shutdown()
base = type(zt.log).__mro__[1]
print("RESULT " + json.dumps(base.__module__ + "." + base.__qualname__), flush=True)
"""


QUERY = (
    "select kind, type, level, template, attrs, code_line, code_function, error is not null as has_error "
    "from records where kind in ('log', 'event', 'raw') order by ts_ns"
)


def test_a_log_line_through_the_c_reaches_the_store_as_through_python(native: ModuleType, tmp_path: Path) -> None:
    """Log lines, and events and raw data (whose call site is an instruction offset too), with and without C."""
    (c_base, c_rows), (py_base, py_rows) = h.recorded_with_and_without_c(tmp_path, SCRIPT, QUERY)
    assert c_base == "zoomtrace._speedups.Logger"
    assert py_base == "zoomtrace.capture.log.PythonLogger"
    assert c_rows == py_rows
    script = tmp_path / "c" / "app.py"
    info, event, raw, exc = c_rows
    for row, kind, type_, mark in ((event, "event", "OrderPlaced", "MARK-EVENT"), (raw, "raw", "receipt", "MARK-RAW")):
        assert (row["kind"], row["type"], row["code_function"]) == (kind, type_, "checkout")
        assert row["code_line"] == h.marker_line(script, mark)
    assert (info["type"], info["level"], info["template"]) == ("__main__", "INFO", "checked out {order}")
    assert (info["code_line"], info["code_function"]) == (h.marker_line(script, "MARK-INFO"), "checkout")
    assert h.as_json(info["attrs"]) == {"order": 7}
    assert (exc["type"], exc["level"], exc["template"]) == ("payments", "ERROR", "declined {order}")
    assert (exc["code_line"], exc["code_function"]) == (h.marker_line(script, "MARK-EXC"), "checkout")
    assert exc["has_error"]
