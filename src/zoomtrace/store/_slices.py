"""What both stores' ``prepare`` share: batches walked in slices that stay in the CPU cache, repeats dropped.

A batch of 100,000 decoded records is far larger than the CPU cache, so every pass over all of it costs a
cache miss per record (measured ≈ 0.2 µs a pass, as much as msgspec's encoding of the record); ``prepare``
therefore does all of its passes on one slice of ``SLICE`` records before it moves to the next.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Final

from zoomtrace.wire.record import Record

#: Records per slice (a few hundred kilobytes of records: they stay in the CPU cache between passes).
SLICE: Final = 2_000

record_id: Final = attrgetter("id")


def first_of_each_id(records: list[Record], seen: set[str]) -> list[Record]:
    """``records`` without the ids in ``seen`` and without repeats (the first copy counts); adds their ids to
    ``seen``. Checked with two set operations when, as almost always, there is no repeat."""
    ids = list(map(record_id, records))
    if seen.isdisjoint(ids):
        before = len(seen)
        seen.update(ids)
        if len(seen) - before == len(ids):
            return records
        seen.difference_update(ids)  # none of them was there before: take them one at a time
    out = []
    for r, rid in zip(records, ids, strict=True):
        if rid not in seen:
            seen.add(rid)
            out.append(r)
    return out
