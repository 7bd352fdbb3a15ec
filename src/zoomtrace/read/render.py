"""The story for people and for programs: terminal text and JSON, shared by the CLI, the UI and the demo.

Every string that came from a record is untrusted: it is printed through ``safe``, so a log
message cannot move the cursor, clear the screen or fake other lines.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import msgspec

from zoomtrace._terminal import safe


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
    return commit[:8] if commit else "no-commit"


def code_text(code: dict[str, Any] | None) -> str:
    if not code:
        return ""
    dirty = " dirty" if code.get("dirty") else ""
    return f"{safe(code.get('file'))}:{code.get('line')} @{short(code.get('commit'))}{dirty}"


def _print_record(r: dict[str, Any], indent: str) -> None:
    kind = r["kind"]
    if kind == "log":
        label, text = (r.get("level") or "LOG"), r.get("message") or ""
    elif kind == "event":
        label = "EVENT"
        text = f"{r['type']} {msgspec.json.encode(r.get('payload')).decode()[:200]}"
        if r.get("sources"):
            text += f"  ← {', '.join(s[:13] for s in r['sources'])}"
    else:
        label, text = kind.upper(), f"{r['type']} {r.get('attrs', {})}"
    print(f"{indent}{label:<8} {safe(text)}   {code_text(r.get('code'))}")
    if r.get("error"):
        err = r["error"]
        print(f"{indent}         ↳ {safe(err['type'])}: {safe(err['message'])}")


def _print_span(s: dict[str, Any], depth: int) -> None:
    indent = "  " * depth
    status = s.get("status") or "ok"
    marker = {"ok": "", "error": "  ✗ error", "interrupted": "  ⚠ interrupted"}.get(status, f"  {status}")
    links = "".join(f"  (follows {link['span_id'][:8]})" for link in s.get("links") or [])
    print(
        f"{indent}▸ {safe(s['name'])}  [{safe(s.get('service') or '?')}]  {fmt_duration(s.get('duration_ns'))}"
        f"{marker}{links}   {code_text(s.get('code'))}"
    )
    if s.get("error"):
        err = s["error"]
        print(f"{indent}    ↳ {safe(err['type'])}: {safe(err['message'])}")
    entries: list[tuple[int, int, dict[str, Any]]] = [(r["ts_ns"], 0, r) for r in s.get("records", [])]
    entries += [(c["start_ns"], 1, c) for c in s.get("children", [])]
    for _, is_span, item in sorted(entries, key=lambda e: (e[0], e[1])):
        if is_span:
            _print_span(item, depth + 1)
        else:
            _print_record(item, indent + "    ")


def print_story(story: dict[str, Any]) -> None:
    """The story as an indented tree: its process runs, then spans with their records, in causal and time order."""
    nodes = {n["node_id"]: n for n in story["nodes"]}
    print(f"trace {story['trace_id']}  ·  {len(nodes)} process run(s)")
    for n in story["nodes"]:
        stop = safe(n.get("stop_cause") or "running")
        print(
            f"  node {safe(n['service'])} pid={n['pid']} host={safe(n['host'])} commit {short(n.get('commit'))} "
            f"stop={stop}"
        )
    print()
    for root in story["spans"]:
        _print_span(root, 0)
    for r in story["records"]:
        _print_record(r, "")
