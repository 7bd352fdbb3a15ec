"""Types of the C speedups in ``_speedups.c`` (see ``zoomtrace._native``)."""

from collections.abc import Callable, Iterable

def uuid7(ts_ns: int | None = None, /) -> str: ...
def needs_care(encoded: bytes, /) -> bool: ...
def key_cache() -> object: ...
def json_unchanged(
    encoded: bytes,
    cache: object,
    harmless: dict[str, None],
    learn: Callable[[Iterable[str]], bool],
    max_nesting: int,
    /,
) -> bool: ...
