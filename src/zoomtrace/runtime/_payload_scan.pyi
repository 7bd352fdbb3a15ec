"""Types of the C speedups in ``_payload_scan.c`` (see ``zoomtrace.runtime.native``)."""

from collections.abc import Callable, Iterable

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
