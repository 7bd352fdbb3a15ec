"""Where a ClickHouse store is: ``chdb://DIR`` or ``clickhouse[s]://[user[:password]@]host[:port]/database``.

A password may be part of the URL; it is kept for the connection only and never shown: not in
``repr``, not in ``display``, not in an error message.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from zoomtrace.errors import ConfigError

SCHEMES: Final = ("chdb", "clickhouse", "clickhouses")
#: The database of a ``clickhouse://`` URL without one, and of every ``chdb://`` store.
DEFAULT_DATABASE: Final = "zoomtrace"
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPTIONS: Final = ("cluster",)


@dataclass(frozen=True)
class Target:
    """A parsed store URL."""

    scheme: str
    database: str = DEFAULT_DATABASE
    #: chDB's data directory (``chdb://`` only).
    path: str | None = None
    host: str = "localhost"
    port: int | None = None
    user: str | None = None
    password: str = field(default="", repr=False)
    cluster: str | None = None

    @property
    def secure(self) -> bool:
        return self.scheme == "clickhouses"

    @property
    def display(self) -> str:
        """The URL as it may be shown: with ``***`` for a password."""
        if self.scheme == "chdb":
            return f"chdb://{self.path}"
        auth = ""
        if self.user is not None:
            auth = urllib.parse.quote(self.user, safe="") + (":***" if self.password else "") + "@"
        port = f":{self.port}" if self.port is not None else ""
        query = f"?cluster={self.cluster}" if self.cluster else ""
        return f"{self.scheme}://{auth}{self.host}{port}/{self.database}{query}"


def parse_url(url: str) -> Target:
    """The target of a store URL (raises ``ConfigError`` naming what is wrong, never the password)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in SCHEMES:
        raise ConfigError(
            f"not a ClickHouse store URL: {_redacted(url)!r}; use chdb://DIR or "
            "clickhouse[s]://[user[:password]@]host[:port]/database[?cluster=NAME]"
        )
    if scheme == "chdb":
        if not rest or "?" in rest:
            raise ConfigError(f"chdb:// needs a directory without '?', e.g. chdb:///var/lib/zoomtrace (got {url!r})")
        return Target("chdb", path=str(Path(rest).expanduser().absolute()))
    parts = urllib.parse.urlsplit(url)
    shown = _redacted(url)
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"bad port in {shown!r}: give a number, e.g. clickhouse://host:8123/zoomtrace") from None
    if not parts.hostname:
        raise ConfigError(f"no host in {shown!r}, e.g. clickhouse://localhost:8123/zoomtrace")
    database = parts.path.strip("/") or DEFAULT_DATABASE
    options = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise ConfigError(f"unknown option {', '.join(unknown)} in {shown!r}; the only option is cluster=NAME")
    cluster = options.get("cluster") or None
    for what, name in (("database", database), ("cluster", cluster)):
        if name is not None and not _NAME.fullmatch(name):
            raise ConfigError(f"bad {what} name {name!r} in {shown!r}: use letters, digits and _")
    return Target(
        scheme,
        database=database,
        host=parts.hostname,
        port=port,
        user=urllib.parse.unquote(parts.username) if parts.username is not None else None,
        password=urllib.parse.unquote(parts.password or ""),
        cluster=cluster,
    )


def _redacted(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part replaced by ``***`` (up to the last ``@``:
    neither a host nor a database name has one, a password might)."""
    scheme, sep, rest = url.partition("://")
    head, question, query = rest.partition("?")
    userinfo, at, location = head.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
    return f"{scheme}{sep}{userinfo}{at}{location}{question}{query}"
