"""What the DuckDB store's writer and reader share: the nodes columns, JSON cells, one-line errors."""

from __future__ import annotations

from typing import Any, Final

import msgspec

_json_encoder: Final = msgspec.json.Encoder()
_json_decode: Final = msgspec.json.decode

_NODE_COLUMNS: Final = (
    "node_id, service, env, grp, version, host, pid, parent_node_id, python, platform, commit, branch, repos, "
    "started_ns, stopped_ns, stop_cause, stop_error, lost, argv, attrs, first_seen_ns, record_count, span_count, "
    "log_count, event_count, raw_count, error_count"
)
_NODE_JSON: Final = frozenset({"repos", "stop_error", "lost", "attrs"})
#: Node fields a node record may set (everything but the id and the counts, which ingestion maintains).
_NODE_FIELDS: Final = (
    "service",
    "env",
    "grp",
    "version",
    "host",
    "pid",
    "parent_node_id",
    "python",
    "platform",
    "commit",
    "branch",
    "repos",
    "started_ns",
    "stopped_ns",
    "stop_cause",
    "stop_error",
    "lost",
    "argv",
    "attrs",
)


#: A record counts as an error: a failed span, an exception, level ERROR and above (``records`` columns).
IS_ERROR: Final = "coalesce(status = 'error' OR error IS NOT NULL OR level IN ('ERROR', 'CRITICAL', 'FATAL'), false)"


def _json_or_none(text: str | None) -> Any:
    return None if text is None else _json_decode(text)


def _one_line(exc: BaseException) -> str:
    """DuckDB's message (which may point at the error over several lines) on one line."""
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def _sql_string(text: str) -> str:
    return text.replace("'", "''")
