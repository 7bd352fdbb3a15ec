"""Ids as people type them: a full id, or a shortened one that names one id only.

A trace or span id may be shortened to its start (its digits are all random); a record id, a UUIDv7 whose
start is its millisecond, to its start or to its end (``story`` and ``tail`` print its last 12 characters).
Every store and the story resolve ids with these rules and messages, so that they read the same everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from zoomtrace.errors import AmbiguousId, NotFound

#: The fewest characters a shortened id may have: fewer would name several ids too often to be useful.
MIN_SHORT_ID: Final = 8
#: How many of the ids a shortened id matches are asked for, and named in its error.
CANDIDATES: Final = 5

_WHERE: Final = {
    "trace": "list traces with `zoomtrace traces`",
    "record": "find record ids with `zoomtrace story` or `zoomtrace tail`",
    "span": "span ids are shown by `zoomtrace story ID`",
}


def short_enough(what: str, text: str) -> str:
    """``text`` as looked up (lower case), when it is long enough to be a shortened id; raises ``NotFound`` (no id
    is that text, and a shorter start names nothing)."""
    if len(text) < MIN_SHORT_ID:
        raise NotFound(
            f"no {what} {text!r}: give the whole {what} id or at least its first {MIN_SHORT_ID} characters"
            + (" (or its last 12, as `story` and `tail` print it)" if what == "record" else "")
        )
    return text.lower()


def unknown(what: str, text: str, place: str = "the store") -> NotFound:
    """The error of an id that names nothing in ``place``."""
    return NotFound(f"no {what} {text!r} in {place}; {_WHERE[what]}")


def the_one(what: str, text: str, found: Iterable[str], *, place: str = "the store") -> str:
    """The one id ``text`` names among those ``found`` matching it (at most ``CANDIDATES + 1`` asked for);
    raises ``NotFound`` for none and ``AmbiguousId``, naming them, for several."""
    ids = sorted(set(found))
    if not ids:
        raise unknown(what, text, place)
    if len(ids) > 1:
        more = " and more" if len(ids) > CANDIDATES else ""
        raise AmbiguousId(
            f"{what} id {text!r} is ambiguous: it matches {', '.join(ids[:CANDIDATES])}{more}; give more characters",
            ids[:CANDIDATES],
        )
    return ids[0]
