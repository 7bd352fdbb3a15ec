"""Untrusted text for a terminal: log messages are attacker-controlled input."""

from __future__ import annotations

import re

#: C0 and C1 control characters (tab and newline included: one record is one line) and the Unicode line
#: and paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def safe(text: object) -> str:
    """``text`` on one line, with control characters shown (``\\n``, ``\\t``, ``\\x1b``), not obeyed: a message
    can neither move the cursor nor fake other lines."""
    return _CONTROL.sub(_escape, str(text))
