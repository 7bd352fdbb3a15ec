"""Which store to use: a store URL, checked, and the one form of it that may be shown.

A store is named by a URL (``zoomtrace --store URL``, ``$ZOOMTRACE_STORE``, ``open_store(url=...)``):

- ``duckdb`` (the default): the DuckDB file of the home, ``<home>/store.duckdb``;
  ``duckdb:///path/store.duckdb`` is another DuckDB file;
- ``chdb://DIR``: the ClickHouse engine inside the process (chDB), its data in ``DIR``;
- ``clickhouse://[user[:password]@]host[:port]/database[?cluster=NAME]``: a ClickHouse server or
  cluster over HTTP, ``clickhouses://…`` over HTTPS.

A URL may hold a password. The full URL goes to the store that opens it and nowhere else: what is
printed, logged, put in an error message or written to a file is ``redacted(url)``, and
``StoreUrl.hide`` takes the password out of text that came back from elsewhere (a driver's error).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, TypeAlias
from urllib.parse import parse_qsl, unquote, urlsplit

from zoomtrace._redact import HIDDEN as _HIDDEN
from zoomtrace._redact import SECRET_PARAM as _SECRET_PARAM
from zoomtrace._redact import USERINFO as _USERINFO
from zoomtrace._redact import redacted
from zoomtrace.errors import ConfigError

__all__ = [
    "STORE_ENV",
    "STORE_FILE",
    "StoreUrl",
    "add_store_arguments",
    "parse_retention",
    "redacted",
    "resolve_store",
]

#: The environment variable naming the store when no URL is given.
STORE_ENV: Final = "ZOOMTRACE_STORE"
#: The home's own store, the default.
STORE_FILE: Final = "store.duckdb"

_FORMS: Final = (
    "duckdb (the default: <home>/store.duckdb), duckdb:///path/store.duckdb, chdb://DIR, "
    "clickhouse://[user[:password]@]host[:port]/database or clickhouses://… (TLS)"
)
Scheme: TypeAlias = Literal["duckdb", "chdb", "clickhouse", "clickhouses"]
_SCHEMES: Final[dict[str, Scheme]] = {
    "duckdb": "duckdb",
    "chdb": "chdb",
    "clickhouse": "clickhouse",
    "clickhouses": "clickhouses",
}
#: The client package each ClickHouse transport needs (the ``clickhouse`` extra installs both).
_CLIENTS: Final = {"chdb": "chdb", "clickhouse": "clickhouse_connect", "clickhouses": "clickhouse_connect"}
_RETENTION: Final = re.compile(r"\s*([0-9]+)\s*(h|d|w)\s*")
_HOURS: Final = {"h": 1, "d": 24, "w": 24 * 7}


@dataclass(frozen=True)
class StoreUrl:
    """A checked store URL. Its ``repr`` and ``str`` show the redacted form; ``url`` is for the store alone."""

    scheme: Scheme
    #: The full URL, password included, normalised (an absolute path for duckdb and chdb).
    url: str = field(repr=False)
    #: The DuckDB file, or chDB's data directory; None for a server.
    path: Path | None = None
    #: The home's own DuckDB file (``<home>/store.duckdb``), the store when none is named.
    default: bool = False

    @property
    def backend(self) -> Literal["duckdb", "clickhouse"]:
        return "duckdb" if self.scheme == "duckdb" else "clickhouse"

    @property
    def redacted(self) -> str:
        return redacted(self.url)

    @property
    def lock_dir(self) -> Path | None:
        """Where the session lock of an embedded store lives (one process at a time); None for a server,
        which handles concurrent sessions itself."""
        if self.path is None:
            return None
        return self.path.parent if self.scheme == "duckdb" else self.path

    def hide(self, text: str) -> str:
        """``text`` with this URL's secrets replaced: for messages that may quote them (a driver's errors)."""
        text = text.replace(self.url, self.redacted)
        for secret in sorted(self._secrets(), key=len, reverse=True):
            text = text.replace(secret, _HIDDEN)
        return text

    def check_retention(self, retention_days: int | None) -> None:
        """Raise ConfigError for a retention given to a store that has none (DuckDB keeps everything)."""
        if retention_days is not None and self.backend == "duckdb":
            raise ConfigError(
                f"a retention applies to ClickHouse stores, not to {self.redacted}: the DuckDB store keeps "
                "records until its file is removed"
            )

    def require_client(self) -> None:
        """Raise ConfigError, saying how to install it, when this store's client package is missing."""
        module = _CLIENTS.get(self.scheme)
        if module is not None and importlib.util.find_spec(module) is None:
            raise ConfigError(
                f"the store {self.redacted} needs the Python package {module}: pip install 'zoomtrace[clickhouse]'"
            )

    def _secrets(self) -> set[str]:
        found: set[str] = set()
        match = _USERINFO.match(self.url)
        if match is not None:
            found.add(match["userinfo"].partition(":")[2])
        query = self.url.partition("?")[2]
        found.update(value for key, value in parse_qsl(query) if _SECRET_PARAM.match(f"?{key}="))
        return {form for secret in found for form in (secret, unquote(secret)) if form}

    def __str__(self) -> str:
        return self.redacted


def resolve_store(home: Path, url: str | None = None) -> StoreUrl:
    """The store to use: ``url``, else ``$ZOOMTRACE_STORE``, else the DuckDB file in ``home``.

    Raises ConfigError (quoting the URL redacted) for an unknown scheme or a malformed URL.
    """
    text = (url or os.environ.get(STORE_ENV) or "").strip()
    name, sep, rest = text.partition("://")
    scheme = _SCHEMES.get(name.lower()) if sep else None
    home_file = Path(home).absolute() / STORE_FILE
    if not text or text.lower() == "duckdb":
        return StoreUrl("duckdb", f"duckdb://{home_file}", home_file, default=True)
    if scheme in ("duckdb", "chdb"):
        where = _embedded(scheme, rest, text)
        if where.path == home_file and scheme == "duckdb":
            return StoreUrl("duckdb", where.url, where.path, default=True)
        return where
    if scheme in ("clickhouse", "clickhouses"):
        return _server(scheme, text)
    raise ConfigError(f"unknown store {redacted(text)!r}: use {_FORMS}")


def _embedded(scheme: Literal["duckdb", "chdb"], rest: str, text: str) -> StoreUrl:
    """``duckdb://FILE`` or ``chdb://DIR``: a path on this machine (``duckdb:///abs`` or ``chdb://relative``)."""
    what = {
        "duckdb": "a database file, e.g. duckdb:///var/lib/zoomtrace/store.duckdb",
        "chdb": "a data directory, e.g. chdb:///var/lib/zoomtrace/chdb",
    }[scheme]
    if not rest:
        raise ConfigError(f"the store {text!r} names no path: give {what}")
    path = Path(rest).expanduser().absolute()
    if scheme == "duckdb" and path.is_dir():
        raise ConfigError(f"the store {text!r} is a directory: give {what}")
    if scheme == "chdb" and path.exists() and not path.is_dir():
        raise ConfigError(f"the store {text!r} is a file: give {what}")
    return StoreUrl(scheme, f"{scheme}://{path}", path)


def _server(scheme: Literal["clickhouse", "clickhouses"], text: str) -> StoreUrl:
    """``clickhouse[s]://[user[:password]@]host[:port]/database[?cluster=NAME]``, checked for its shape; the
    store itself reads the parts."""
    shown = redacted(text)
    example = f"{scheme}://user:password@host:8123/zoomtrace"
    parts = urlsplit(text)
    if "@" in text.partition("://")[2] and "@" not in parts.netloc:
        raise ConfigError(
            f"the store {shown!r} cannot be read: percent-encode / ? # @ in the user name and password "
            f"(%2F, %3F, %23, %40), e.g. {example}"
        )
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ConfigError(f"the store {shown!r} has a bad port: give a number from 1 to 65535, e.g. {example}")
    if not parts.hostname:
        raise ConfigError(f"the store {shown!r} names no server: give one, e.g. {example}")
    if "/" in parts.path.strip("/"):
        raise ConfigError(f"the store {shown!r} names more than a database after the server, e.g. {example}")
    return StoreUrl(scheme, text)


def parse_retention(text: str) -> int:
    """``30d``, ``2w`` or ``720h`` -> whole days (ClickHouse drops data by day), ``forever`` -> 0 (no TTL);
    ConfigError otherwise."""
    if text.strip().lower() == "forever":
        return 0
    match = _RETENTION.fullmatch(text)
    hours = int(match[1]) * _HOURS[match[2]] if match else 0
    if hours <= 0 or hours % 24:
        raise ConfigError(f"retention {text!r}: give whole days, e.g. 30d, 2w or 720h, or forever")
    return hours // 24


def add_store_arguments(parser: argparse.ArgumentParser, *, command: bool = False) -> None:
    """``--store URL`` and ``--retention DURATION``, as every command that opens a store offers them.

    ``command``: on a subcommand's parser, where they are given after the command's name and then
    replace the ones given before it (``zoomtrace story --store URL ID`` as ``zoomtrace --store URL story ID``).
    """
    default = argparse.SUPPRESS if command else None
    parser.add_argument(
        "--store",
        metavar="URL",
        default=default,
        help=(
            f"the store to use: chdb://DIR, clickhouse[s]://[user[:password]@]host[:port]/database[?cluster=NAME] "
            f"or duckdb:///FILE (default: ${STORE_ENV}, else store.duckdb in the home); a password is safer in "
            f"${STORE_ENV}, since command lines are visible to other users"
        ),
    )
    parser.add_argument(
        "--retention",
        metavar="DURATION",
        default=default,
        help="how long a ClickHouse store created now keeps records: whole days, e.g. 30d, or forever (default: 30d)",
    )
