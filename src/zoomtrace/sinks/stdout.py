"""Records on standard output: readable lines for a terminal, or JSON lines for tools."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from zoomtrace._terminal import safe
from zoomtrace.wire.record import Record, json_encoder


def human_line(record: Record) -> str:
    ts = datetime.fromtimestamp(record.ts_ns / 1e9, UTC).strftime("%H:%M:%S.%f")[:-3]
    where = f"{record.code.file}:{record.code.line}" if record.code else ""
    text = record.message or ""
    if record.kind == "span" and record.end_ns is not None:
        text = f"{(record.end_ns - record.ts_ns) / 1e6:.1f} ms {record.status or 'ok'}"
    elif record.kind in ("event", "node") and not text:
        text = json_encoder.encode(record.attrs or record.payload).decode()
    level = (record.level or record.kind).upper()
    trace = (record.trace_id or "-")[:8]
    return f"{ts} {level:<8} {trace} {safe(record.type)}: {safe(text)[:4000]}  ({safe(where)})"


class StdoutSink:
    def __init__(self, *, json_lines: bool = False) -> None:
        self.json_lines = json_lines

    def write(self, records: list[Record]) -> None:
        if self.json_lines:
            out = b"".join(json_encoder.encode(r) + b"\n" for r in records)
            sys.stdout.buffer.write(out)
        else:
            sys.stdout.write("".join(human_line(r) + "\n" for r in records))

    def flush(self) -> None:
        sys.stdout.flush()

    def close(self) -> None:
        self.flush()
