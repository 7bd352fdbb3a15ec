"""Argument types of the command lines: a bad number is refused by argparse, in one line, before any work."""

from __future__ import annotations

import argparse
import math
from typing import Final

#: The largest count taken: the stores' integers are 64-bit.
MAX_COUNT: Final = 2**63 - 1


def positive(text: str) -> int:
    """A count of at least 1."""
    value = _whole(text)
    if value is None or not 1 <= value <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return value


def count(text: str) -> int:
    """A count that may be 0."""
    value = _whole(text)
    if value is None or not 0 <= value <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"not a whole number of 0 or more: {text!r}")
    return value


def port(text: str) -> int:
    """A TCP port, 0 for any free one."""
    value = _whole(text)
    if value is None or not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a port (0 to 65535): {text!r}")
    return value


def seconds(text: str) -> float:
    """A time in seconds, more than 0 and finite."""
    value = _number(text)
    if value is None or not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"not a number of seconds above 0: {text!r}")
    return value


def seconds_or_zero(text: str) -> float:
    """A time in seconds, 0 or more and finite."""
    value = _number(text)
    if value is None or not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"not a number of seconds of 0 or more: {text!r}")
    return value


def _whole(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isnan(value) else value
