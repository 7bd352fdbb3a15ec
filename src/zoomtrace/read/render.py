"""The read model for people and for programs: terminal text and JSON, shared by the CLI, the UI and the demo.

Every string that came from a record is untrusted: it is printed through ``safe``, so a log
message cannot move the cursor, clear the screen or fake other lines.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from zoomtrace._terminal import safe
from zoomtrace.read.model import (
    Code,
    ErrorInfo,
    Lineage,
    NodeView,
    RecordView,
    Story,
    StoryRecord,
    StorySpan,
    TraceRecord,
    TraceSummary,
)


def one_line(message: str) -> str:
    """Multi-line messages (DuckDB's carets and ``LINE 1:`` excerpts) folded into one line."""
    parts = [p.strip() for p in message.splitlines()]
    return " ".join(p for p in parts if p and not p.startswith(("LINE ", "^")))


def dump_json(value: Any) -> None:
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(value), indent=2).decode() + "\n")


def fmt_ns(ns: int | None) -> str:
    if ns is None:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def fmt_duration(ns: int | None) -> str:
    if ns is None:
        return "-"
    if ns < 1_000_000:
        return f"{ns / 1e3:.0f} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.1f} ms"
    return f"{ns / 1e9:.2f} s"


def short(commit: str | None) -> str:
    return safe(commit[:8]) if commit else "no-commit"


def short_id(record_id: str) -> str:
    """A record id, short: the last 12 characters, the random end of a UUIDv7 (its start is its millisecond, the
    same for every record of a moment). ``lineage`` and the other commands taking a record id accept it."""
    return safe(record_id[-12:] if len(record_id) > 13 else record_id)


def short_span(span_id: str | None) -> str:
    """A span id, short: its first 8 characters (all of them random), as ``story --span`` accepts it."""
    return safe((span_id or "-")[:8])


def code_text(code: Code | None) -> str:
    if code is None:
        return ""
    dirty = " dirty" if code.dirty else ""
    return f"{safe(code.file)}:{code.line} @{short(code.commit)}{dirty}"


def _error_text(error: ErrorInfo) -> str:
    return f"↳ {safe(error.type)}: {safe(error.message)}"


# -- one line per row -------------------------------------------------------------------------


#: The first line of ``zoomtrace traces``, naming the columns of ``trace_line``.
TRACES_HEADER: Final = f"  {'TRACE':<32}  {'START (UTC)':<23}  {'DURATION':>9}  ROOT [SERVICES]  COUNTS"


def trace_line(t: TraceSummary) -> str:
    """A trace summary as one line of ``zoomtrace traces`` (✗: the trace has an error)."""
    mark = "✗" if t.error else " "
    return (
        f"{mark} {safe(t.trace_id):<32}  {fmt_ns(t.start_ns)}  {fmt_duration(t.duration_ns):>9}  "
        f"{safe(t.root_name or '-')} [{safe(','.join(t.services))}]  spans={t.span_count} logs={t.log_count} "
        f"events={t.event_count}"
    )


def node_line(n: NodeView) -> str:
    """A process run as one line of ``zoomtrace nodes``."""
    return (
        f"{fmt_ns(n.started_ns):<23}  {safe(n.service or '?'):<12} host={safe(n.host or '?')} pid={n.pid or '?'} "
        f"commit={short(n.commit)} version={safe(n.version or '-')} "
        f"stopped={fmt_ns(n.stopped_ns)} cause={safe(n.stop_cause or 'running')}"
    )


def record_line(r: TraceRecord) -> str:
    """A record as one line of ``zoomtrace tail``: time, level or kind, trace, short id, service, text, code."""
    return (
        f"{fmt_ns(r.ts_ns)} {safe(r.level or r.kind).upper():<8} {safe((r.trace_id or '-')[:8]):<8} "
        f"{short_id(r.id)} [{safe(r.service or '?')}] {safe(r.message or r.type)}   {code_text(r.code)}"
    )


def print_lineage(lineage: Lineage) -> None:
    """Upstream records, the record itself, downstream records: one line each."""

    def line(r: RecordView) -> str:
        message = f"  {safe(r.message)}" if r.message else ""
        return f"{safe(r.id)}  {safe(r.type)}{message}  {code_text(r.code)}"

    for r in lineage.upstream:
        print(f"  ↑ {line(r)}")
    print(f"● {line(lineage.record)}")
    for r in lineage.downstream:
        print(f"  ↓ {line(r)}")


# -- the story --------------------------------------------------------------------------------


def _print_record(r: StoryRecord, indent: str) -> None:
    if r.kind == "log":
        label, text = (r.level or "LOG"), r.message or ""
    elif r.kind == "event":
        label = "EVENT"
        text = f"{r.type} {msgspec.json.encode(r.payload).decode()[:200]}"
        if r.sources:
            text += f"  ← {', '.join(short_id(s) for s in r.sources)}"
    else:
        label, text = r.kind.upper(), f"{r.type} {msgspec.json.encode(r.attrs).decode()[:200]}"
    print(f"{indent}{safe(label):<8} {short_id(r.id)}  {safe(text)}   {code_text(r.code)}")
    if r.error is not None:
        print(f"{indent}         {_error_text(r.error)}")


def _print_span(s: StorySpan, depth: int) -> None:
    indent = "  " * depth
    status = s.status or "ok"
    marker = {"ok": "", "error": "  ✗ error", "interrupted": "  ⚠ interrupted"}.get(status, f"  {status}")
    links = "".join(f"  (follows {short_span(link.span_id)})" for link in s.links)
    print(
        f"{indent}▸ {safe(s.name)}  [{safe(s.service or '?')}]  {fmt_duration(s.duration_ns)}"
        f"{marker}{links}  span={short_span(s.span_id)}   {code_text(s.code)}"
    )
    if s.error is not None:
        print(f"{indent}    {_error_text(s.error)}")


#: What the story prints, in order: a span (at a depth) or a record (with an indent).
_Entry = tuple[StorySpan | StoryRecord, int, str]


def _under(s: StorySpan, depth: int) -> list[_Entry]:
    """A span's records and child spans, in time order (a record before a span starting at the same time)."""
    entries: list[tuple[int, int, _Entry]] = [(r.ts_ns, 0, (r, depth, "  " * depth + "    ")) for r in s.records]
    entries += [(c.start_ns, 1, (c, depth + 1, "")) for c in s.children]
    return [entry for _, _, entry in sorted(entries, key=lambda e: (e[0], e[1]))]


def print_story(story: Story, *, limit: int | None = None) -> int:
    """The story as an indented tree: its process runs, then spans with their records, in causal and time order.

    ``limit``: print at most that many spans and records. Returns how many were left out. The tree is walked
    with a stack, not recursion: a trace may nest spans thousands deep.
    """
    print(f"trace {safe(story.trace_id)}  ·  {len(story.nodes)} process run(s)")
    for n in story.nodes:
        stop = safe(n.stop_cause or "running")
        print(
            f"  node {safe(n.service or '?')} pid={n.pid or '?'} host={safe(n.host or '?')} commit {short(n.commit)} "
            f"stop={stop}"
        )
    print()
    top: list[_Entry] = [(s, 0, "") for s in story.spans] + [(r, 0, "") for r in story.records]
    stack = [iter(top)]
    printed = 0
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        if limit is not None and printed >= limit:
            break
        item, depth, indent = entry
        printed += 1
        if isinstance(item, StorySpan):
            _print_span(item, depth)
            stack.append(iter(_under(item, depth)))
        else:
            _print_record(item, indent)
    return _size(story) - printed


def _size(story: Story) -> int:
    """How many spans and records a story holds."""
    count = len(story.records)
    spans = list(story.spans)
    while spans:
        s = spans.pop()
        count += 1 + len(s.records)
        spans.extend(s.children)
    return count
