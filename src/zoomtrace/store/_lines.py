"""What both stores' ``prepare`` do with records that arrive as JSON lines (the spool's ``JSON_LINES`` frames).

The lines are already what a store's bulk insert reads (msgspec's JSON of ``Record``), so they are handed on
as they are. Only what ``prepare`` must know is decoded, into ``LineFacts``: a line's id (repeats are
dropped), kind (node records are folded into ``nodes``), time (the ClickHouse store's retention), code line
(one beyond its column is reported) and its payload's raw JSON (the ClickHouse store stores a string
payload as its JSON text); strings it does not need stay raw. That costs ≈0.8–1.3 µs a record, against
≈3.5 for decoding every record, encoding it again and releasing it (measured on the 300,000 records of
``bench/cases/ingest.py``). A line with a problem to report is decoded whole.
"""

from __future__ import annotations

from typing import Final

import msgspec

from zoomtrace.store._columns import LINE_RANGE, line_problems
from zoomtrace.wire.record import Record

_NULL: Final = msgspec.Raw(b"null")


class CodeLine(msgspec.Struct, array_like=True, gc=False):
    """A record's ``code`` as far as ``prepare`` reads it (``wire.record.Code``'s shape)."""

    file: msgspec.Raw
    line: int
    function: msgspec.Raw = _NULL
    commit: msgspec.Raw = _NULL
    dirty: msgspec.Raw = _NULL


class LineFacts(msgspec.Struct, gc=False):
    """What ``prepare`` needs of one record line."""

    id: str
    kind: str
    ts_ns: int
    code: CodeLine | None = None
    payload: msgspec.Raw = _NULL


_facts_decoder: Final = msgspec.json.Decoder(LineFacts)
_record_decoder: Final = msgspec.json.Decoder(Record)
_DECODE_ERRORS: Final = (msgspec.DecodeError, msgspec.ValidationError)


class Lines(msgspec.Struct, gc=False):
    """A block of record lines (each ended by a newline) and the facts of each, in the same order."""

    data: bytes
    facts: list[LineFacts]

    def split(self) -> list[bytes]:
        """The lines, without their newlines (one per fact)."""
        return _split(self.data)

    def records(self, wanted: list[int]) -> list[Record]:
        """The records of the lines at positions ``wanted``, decoded whole."""
        lines = self.split()
        return [_record_decoder.decode(lines[i]) for i in wanted]


def scan(block: bytes, seen: set[str], skipped: list[str]) -> Lines:
    """``block`` without the lines whose id is in ``seen`` or repeats an earlier line's (the first copy counts),
    and without lines that are no record (each reported in ``skipped``); adds the ids kept to ``seen``.

    The usual block, of new and distinct ids, is returned as it came, with no copy.
    """
    try:
        facts = _facts_decoder.decode_lines(block)
        lines = None
    except _DECODE_ERRORS:
        lines, facts = _decodable(block, skipped)
    ids = [f.id for f in facts]
    if seen.isdisjoint(ids):
        before = len(seen)
        seen.update(ids)
        if len(seen) - before == len(ids):
            if lines is None and block.endswith(b"\n"):
                return Lines(block, facts)
            return _joined(lines if lines is not None else _split(block), facts)
        seen.difference_update(ids)  # none of them was there before: take them one at a time
    if lines is None:
        lines = _split(block)
    kept_lines, kept_facts = [], []
    for line, fact in zip(lines, facts, strict=True):
        if fact.id not in seen:
            seen.add(fact.id)
            kept_lines.append(line)
            kept_facts.append(fact)
    return _joined(kept_lines, kept_facts)


def _split(block: bytes) -> list[bytes]:
    """The lines of ``block`` that hold something (the ones ``decode_lines`` decodes)."""
    return [line for line in block.split(b"\n") if line.strip()]


def _joined(lines: list[bytes], facts: list[LineFacts]) -> Lines:
    return Lines(b"".join(line + b"\n" for line in lines), facts)


def _decodable(block: bytes, skipped: list[str]) -> tuple[list[bytes], list[LineFacts]]:
    """The lines of ``block`` that decode as records, with their facts; a line for each other one in
    ``skipped`` (a frame whose checksum held but whose writer wrote something else)."""
    lines, facts = [], []
    for number, line in enumerate(block.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            _record_decoder.decode(line)
            facts.append(_facts_decoder.decode(line))
        except _DECODE_ERRORS as exc:
            skipped.append(f"a spool record (line {number} of its frame) does not decode ({exc}); skipped")
            continue
        lines.append(line)
    return lines, facts


def node_positions(facts: list[LineFacts]) -> list[int]:
    """Positions of the node records (folded into ``nodes`` by the store)."""
    return [i for i, f in enumerate(facts) if f.kind == "node"]


def lines_problems(got: Lines) -> list[str]:
    """``store._columns.line_problems`` of the records in ``got``."""
    wanted = [i for i, f in enumerate(got.facts) if f.code is not None and f.code.line not in LINE_RANGE]
    return line_problems(got.records(wanted)) if wanted else []
