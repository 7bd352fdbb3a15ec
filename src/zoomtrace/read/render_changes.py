"""``zoomtrace errors`` and ``changes`` as text, for the CLI and the demo (strings from records go through
``safe``)."""

from __future__ import annotations

from collections.abc import Iterator

from zoomtrace._terminal import safe
from zoomtrace.read.changes import Changes, ErrorGroup, Finding, Side
from zoomtrace.read.render import fmt_duration, fmt_ns


def _short(commit: str | None, dirty: bool = False) -> str:
    return (commit[:10] if commit else "no commit") + ("+dirty" if dirty else "")


def group_lines(g: ErrorGroup) -> Iterator[str]:
    where = f"{g.location.file}:{g.location.line} in {g.location.function}"
    yield f"{g.count:>6}×  {safe(g.type or 'error log')}: {safe(g.template or g.message or '')}"
    yield f"         at {safe(where)}   services: {safe(', '.join(g.services))}"
    new = f"   new in {_short(g.new_in_commit)}" if g.new_in_commit else ""
    first, last = g.first_seen, g.last_seen
    yield (
        f"         first {fmt_ns(first.ts_ns)} ({_short(first.commit, first.dirty)}, trace {first.trace_id or '-'})"
        f"   last {fmt_ns(last.ts_ns)} ({_short(last.commit, last.dirty)}){new}"
    )


def changes_lines(found: Changes) -> Iterator[str]:
    t = found.thresholds
    for s in found.services:
        yield f"{safe(s.service)}: " + " → ".join(
            f"{_short(v.commit, v.dirty)} ({v.records:,} records from {fmt_ns(v.first_seen_ns)})" for v in s.commits
        )
        for f in s.findings:
            yield "  " + _finding_line(f)
        if not s.findings:
            yield "  no change found"
        if s.too_few_samples:
            yield (
                f"  {s.too_few_samples} location(s) not judged: fewer than {t.min_samples} spans on a side "
                "(--min-samples)"
            )


def _finding_line(f: Finding) -> str:
    where = safe(" ".join(x for x in (f.location.span, f.location.file, f.location.function) if x))
    commits = f"{_short(f.before.commit, f.before.dirty)} → {_short(f.after.commit, f.after.dirty)}"
    if f.kind == "new_error":
        error = f.error or {}
        what = safe(f"{error.get('type') or 'error log'}: {error.get('template') or ''} (line {error.get('line')})")
        new_in, before = _short(f.after.commit, f.after.dirty), _short(f.before.commit, f.before.dirty)
        return f"new_error  {where}  {what}  ×{f.after.count}, new in {new_in} (after {before})"
    measure = f.measure or f.kind
    p = f"p={f.p_value:.2g}" if f.p_value is not None else ""
    if measure == "latency":
        change = f"p95 {fmt_duration(f.before.p95_ns)} → {fmt_duration(f.after.p95_ns)} (×{f.factor}, {p})"
    else:
        change = f"error rate {_rate(f.before)} → {_rate(f.after)} ({p})"
    return f"{f.kind:<9}  {where}  {change}  {commits}"


def _rate(side: Side) -> str:
    return "-" if side.error_rate is None else f"{side.error_rate:.1%} of {side.count:,}"
