"""A record's values that a store's columns cannot hold although the record itself is stored.

Both stores keep ``code.line`` in a 32-bit column (DuckDB ``INTEGER``, ClickHouse ``Int32``) and
convert it with a cast that gives NULL when it does not fit; such a record is stored without its line,
and these reports say so instead of letting it vanish.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, Protocol


class _Line(Protocol):
    @property
    def line(self) -> int: ...


class _Located(Protocol):
    """A record, or what ``store._lines`` reads of one."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def node_id(self) -> str: ...
    @property
    def code(self) -> _Line | None: ...


#: The values of the 32-bit ``code_line`` columns.
LINE_RANGE: Final = range(-(2**31), 2**31)


def line_problems(records: Iterable[_Located]) -> list[str]:
    """A problem line for each record whose ``code.line`` is beyond ``LINE_RANGE``."""
    return [
        f"record {r.id} ({r.kind} {r.type!r} of node {r.node_id}) stored without its code line: code.line "
        f"{r.code.line} is beyond a line number's range ({LINE_RANGE.start} to {LINE_RANGE.stop - 1})"
        for r in records
        if r.code is not None and r.code.line not in LINE_RANGE
    ]
