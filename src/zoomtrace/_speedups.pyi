"""Types of the C speedups, the module ``_speedups.c`` makes of its parts (see ``zoomtrace._native``)."""

from collections.abc import Callable, Iterable, Sequence
from types import CodeType
from typing import Any, Self

def uuid7(ts_ns: int | None = None, /) -> str: ...
def new_trace_id() -> str: ...
def new_span_id() -> str: ...
def needs_care(encoded: bytes, /) -> bool: ...
def count_lines(data: bytes, /) -> int: ...
def key_cache() -> object: ...
def json_unchanged(
    encoded: bytes,
    cache: object,
    harmless: dict[str, None],
    learn: Callable[[Iterable[str]], bool],
    max_nesting: int,
    /,
) -> bool: ...

# _speedups_caller.c
class Putter:
    turn_at: float
    def __init__(
        self,
        queue: object,
        maxsize: int,
        wake_at: int,
        wake: Callable[[], object],
        full: Callable[[object], object],
        *,
        untracked: type | None = None,
    ) -> None: ...
    def __call__(self, item: object, /) -> None: ...

class Logger:
    name: str | None
    def __init__(self, name: str | None = None) -> None: ...
    def debug(self, template: str, /, **fields: object) -> None: ...
    def info(self, template: str, /, **fields: object) -> None: ...
    def warning(self, template: str, /, **fields: object) -> None: ...
    def error(self, template: str, /, **fields: object) -> None: ...
    def critical(self, template: str, /, **fields: object) -> None: ...
    def exception(self, template: str, /, **fields: object) -> None: ...

def configure_logger(recorder_namespace: dict[str, object], current: object, kind: object, /) -> None: ...
def event(obj: Any, /, type: str | None = None, sources: Any = (), *, attrs: Any = None, **fields: Any) -> str: ...
def configure_event(
    recorder_namespace: dict[str, object], current: object, python_event: Callable[..., str], kind: object, /
) -> None: ...

# _speedups_span.c
class SpanBase:
    def __init__(
        self,
        name: str,
        attrs: dict[str, Any],
        parent: Any,
        links: Sequence[tuple[str, str]],
        on_behalf_of: str | None,
        code: CodeType,
        line: int,
    ) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, exc_type: object, exc: object, tb: object, /) -> None: ...

def span(name: str, /, **fields: Any) -> Any: ...
def configure_span(
    span_type: type,
    python_base: type,
    python_span: Callable[..., Any],
    recorder_namespace: dict[str, object],
    current: object,
    threads: dict[int, object],
    current_thread: Callable[[], object],
    current_loop: Callable[[], object],
    spent_token: object,
    /,
) -> None: ...

# _speedups_encoder.c
class LogBuilder:
    def __init__(
        self,
        careful: Callable[[tuple[Any, ...]], Any],
        record: type,
        node_id: str,
        offsets: dict[Any, Any],
        plain_templates: dict[str, int],
        renderers: dict[str, Any],
        plain_keys: set[str],
        clean_strings: set[str],
        max_items: int,
        max_message: int,
        scrub_text: Callable[[str], str] | None,
        /,
    ) -> None: ...
    def __call__(self, item: tuple[Any, ...], /) -> Any: ...

class Dispatch:
    def __init__(self, span_type: type, build_span: Callable[[Any], Any], builders: dict[Any, Any], /) -> None: ...
    def __call__(self, item: object, /) -> Any: ...

class StdlogBuilder:
    def __init__(
        self,
        careful: Callable[[tuple[Any, ...]], Any],
        record: type,
        node_id: str,
        log_record: type,
        places: dict[Any, Any],
        plain_percents: dict[str, int],
        scrub_text: Callable[[str], str] | None,
        plain_size: int,
        max_message: int,
        /,
    ) -> None: ...
    def __call__(self, item: tuple[Any, ...], /) -> Any: ...

class SpanBuilder:
    def __init__(
        self,
        careful: Callable[[Any], Any],
        record: type,
        node_id: str,
        lines: dict[Any, Any],
        plain_keys: set[str],
        clean_strings: set[str],
        max_items: int,
        /,
    ) -> None: ...
    def __call__(self, span: Any, /) -> Any: ...

class EventBuilder:
    def __init__(
        self,
        careful: Callable[[tuple[Any, ...]], Any],
        record: type,
        node_id: str,
        offsets: dict[Any, Any],
        plain_keys: set[str],
        clean_strings: set[str],
        max_items: int,
        encode_json: Callable[[Any], bytes],
        raw: type,
        json_unchanged: Callable[[bytes], bool] | None,
        max_payload_bytes: int,
        plain_encode: Callable[[Any], bytes],
        harmless: dict[str, None] | None,
        max_nesting: int,
        /,
    ) -> None: ...
    def __call__(self, item: tuple[Any, ...], /) -> Any: ...
