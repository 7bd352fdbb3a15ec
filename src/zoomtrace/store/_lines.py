"""What both stores' ``prepare`` do with records that arrive as JSON lines (the spool's ``JSON_LINES`` frames).

The lines are already what a store's bulk insert reads (msgspec's JSON of ``Record``), so they are handed on
as they are. What ``prepare`` must know, and what an engine would refuse or a reader could not read back, is
decoded into ``LineFacts``: a line's id (repeats are dropped), kind, time (the ClickHouse store's retention),
code line (one beyond its column is reported, by ``scan``), its payload's raw JSON (the ClickHouse store stores a
string payload as its JSON text), and the type of every field held in a typed column (numbers, lists, the error,
attributes as an object). Text fields are not decoded: a number there is stored as its text. Node records are
decoded whole, since the store folds them into ``nodes``. That costs ≈0.8–1.3 µs a record, against ≈3.5 for
decoding every record, encoding it again and releasing it (measured on the 300,000 records of
``bench/cases/ingest.py``). A line that is not such a record is left out and reported; so is a node record
that does not decode whole.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Annotated, Final

import msgspec

from zoomtrace.store._columns import LINE_RANGE, line_problems
from zoomtrace.store._slices import record_id
from zoomtrace.wire.record import Error, Link, Record, json_decoder
from zoomtrace.wire.spool import count_lines

_NULL: Final = msgspec.Raw(b"null")


class AnObject(msgspec.Struct, frozen=True, gc=False):
    """Any JSON object, its content skipped: what a record's ``attrs`` must be (readers read it as a mapping).
    Checked by msgspec as it decodes, rather than by a Python test of each line's raw JSON afterwards."""


_NO_ATTRS: Final = AnObject()


class CodeLine(msgspec.Struct, array_like=True, gc=False):
    """A record's ``code`` as far as ``prepare`` reads it (``wire.record.Code``'s shape), its line one that the
    stores' column holds: msgspec checks it as it decodes, so only a block with a line beyond is looked at line
    by line (``_decodable``), rather than every line by Python code (``store._columns.line_problems``)."""

    file: msgspec.Raw
    line: Annotated[int, msgspec.Meta(ge=LINE_RANGE.start, lt=LINE_RANGE.stop)]
    function: msgspec.Raw = _NULL
    commit: msgspec.Raw = _NULL
    dirty: bool = False


class AnyCodeLine(CodeLine):
    """``CodeLine`` with any line: a record whose line is beyond the column is stored without it (and reported)."""

    line: int


#: Text that must not be empty: a record's id, kind and node (an empty id would make all such records one).
_Named = Annotated[str, msgspec.Meta(min_length=1)]


class LineFacts(msgspec.Struct, gc=False):
    """What ``prepare`` needs of one record line, and the fields a store's typed columns hold."""

    id: _Named
    kind: _Named
    type: str
    node_id: _Named
    ts_ns: int
    v: int = 1
    end_ns: int | None = None
    cpu_ns: int | None = None
    links: list[Link] = []
    code: CodeLine | None = None
    attrs: AnObject = _NO_ATTRS
    payload: msgspec.Raw = _NULL
    sources: list[str] = []
    error: Error | None = None


class AnyLineFacts(LineFacts):
    """``LineFacts`` with any code line."""

    code: AnyCodeLine | None = None


_facts_decoder: Final = msgspec.json.Decoder(LineFacts)
_any_line_decoder: Final = msgspec.json.Decoder(AnyLineFacts)
_kind: Final = attrgetter("kind")
_DECODE_ERRORS: Final = (msgspec.DecodeError, msgspec.ValidationError)


class Lines(msgspec.Struct, gc=False):
    """A block of record lines (each ended by a newline), the facts of each in the same order, the node
    records among them, decoded, and the lines' ids (the facts' in the same order)."""

    data: bytes
    facts: list[LineFacts]
    nodes: list[Record]
    ids: list[str]

    def split(self) -> list[bytes]:
        """The lines, without their newlines (one per fact)."""
        return self.data.split(b"\n")[: len(self.facts)]


def scan(block: bytes, seen: set[str], skipped: list[str]) -> Lines:
    """``block`` without the lines whose id is in ``seen`` or repeats an earlier line's (the first copy counts),
    and without lines that are no record (each reported in ``skipped``); adds the ids kept to ``seen``.

    The usual block, of new and distinct ids, one line each, is returned as it came, with no copy.
    """
    facts: list[LineFacts] | None
    try:
        facts = _facts_decoder.decode_lines(block)
    except _DECODE_ERRORS:
        facts = None
    # One record per line: msgspec also reads values that share a line (``{…}{…}``) and passes over blank lines,
    # so a block is taken whole only when its records are its lines; any other is read line by line.
    if facts is not None and block.endswith(b"\n") and count_lines(block) == len(facts):
        lines = None
    else:
        lines, facts = _decodable(block, skipped)
    got = _first_of_each_id(block, lines, facts, seen)
    if "node" in map(_kind, got.facts):
        got = _with_nodes(got, skipped)
    if lines is not None:  # only this path lets a code line beyond the column through
        skipped += line_problems(got.facts)
    return got


def refused_line(line: bytes) -> str | None:
    """Why ``scan`` leaves the record line ``line`` out, or None if it keeps it. For a source that hands the
    store lines one per message (the Kafka collector): on the rare batch where some were left out, it finds
    which messages they were. (The ClickHouse store also leaves out a line whose payload is text and that does
    not decode whole; it reports it among its problems, as any store does with what it leaves out.)"""
    try:
        fact = _any_line_decoder.decode(line)
    except _DECODE_ERRORS as exc:
        return f"not a record ({exc})"
    if fact.kind == "node":
        try:
            json_decoder.decode(line)
        except _DECODE_ERRORS as exc:
            return f"a node record that does not decode ({exc})"
    return None


def _first_of_each_id(block: bytes, lines: list[bytes] | None, facts: list[LineFacts], seen: set[str]) -> Lines:
    ids = list(map(record_id, facts))
    if seen.isdisjoint(ids):
        before = len(seen)
        seen.update(ids)
        if len(seen) - before == len(ids):
            if lines is None:
                return Lines(block, facts, [], ids)
            return _joined(lines if lines is not None else _split(block), facts)
        seen.difference_update(ids)  # none of them was there before: take them one at a time
    kept_lines, kept_facts = [], []
    for line, fact in zip(lines if lines is not None else _split(block), facts, strict=True):
        if fact.id not in seen:
            seen.add(fact.id)
            kept_lines.append(line)
            kept_facts.append(fact)
    return _joined(kept_lines, kept_facts)


def _with_nodes(got: Lines, skipped: list[str]) -> Lines:
    """``got`` with its node records decoded whole (``Lines.nodes``); one that does not decode is left out."""
    lines = got.split()
    kept_lines, kept_facts, nodes = [], [], []
    for line, fact in zip(lines, got.facts, strict=True):
        if fact.kind == "node":
            try:
                nodes.append(json_decoder.decode(line))
            except _DECODE_ERRORS as exc:
                skipped.append(f"node record {fact.id} of node {fact.node_id} does not decode ({exc}); skipped")
                continue
        kept_lines.append(line)
        kept_facts.append(fact)
    out = got if len(kept_facts) == len(got.facts) else _joined(kept_lines, kept_facts)
    out.nodes = nodes
    return out


def _split(block: bytes) -> list[bytes]:
    """The lines of ``block`` that hold something (the ones ``decode_lines`` decodes)."""
    return [line for line in block.split(b"\n") if line.strip()]


def _joined(lines: list[bytes], facts: list[LineFacts]) -> Lines:
    return Lines(b"".join(line + b"\n" for line in lines), facts, [], list(map(record_id, facts)))


def _decodable(block: bytes, skipped: list[str]) -> tuple[list[bytes], list[LineFacts]]:
    """The lines of ``block`` that are records as far as ``LineFacts`` sees, with their facts; a line for
    each other one in ``skipped`` (a frame whose checksum held but whose writer wrote something else)."""
    lines, facts = [], []
    for number, line in enumerate(block.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            fact = _facts_decoder.decode(line)
        except _DECODE_ERRORS:
            try:
                fact = _any_line_decoder.decode(line)
            except _DECODE_ERRORS as exc:
                skipped.append(f"a record line (line {number} of its block) does not decode ({exc}); skipped")
                continue
        lines.append(line)
        facts.append(fact)
    return lines, facts
