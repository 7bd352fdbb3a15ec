"""The web viewer's HTTP side: a read-only JSON API over the store, and the static front end.

Every request opens the store for a moment (an embedded store holds a file lock, so
the CLI and the UI share it) and runs the blocking call in a worker thread. Only ``GET`` and
``HEAD`` exist; there is no SQL from the browser. Everything a record says is
untrusted: the API sends it as JSON and the front end renders it as text only;
the Content-Security-Policy forbids inline script as a second line of defence.

Access: bound to a loopback address the app accepts only loopback ``Host`` headers
(which defeats DNS rebinding). With a token (required for any other address) each
request must carry it as ``Authorization: Bearer …``, as ``?token=…`` (then
remembered in a cookie) or in that cookie.
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

import msgspec
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zoomtrace.errors import ConfigError, NotFound, StoreError, TooLarge, ZoomError
from zoomtrace.read import changes, query
from zoomtrace.read.times import parse_duration, parse_time
from zoomtrace.store.protocols import LEVELS, TRACE_KINDS, Location, RecordFilter, TraceFilter
from zoomtrace.store.urls import StoreUrl, resolve_store
from zoomtrace.ui.code import read_source, resolve_code_roots

STATIC = Path(str(resources.files("zoomtrace.ui") / "static"))
COOKIE = "zoomtrace_token"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
MAX_PAGE = 500
#: Records of a trace per page: by default, and at most (docs/ui.md, "API for big traces").
RECORDS_PAGE = 500
MAX_RECORDS_PAGE = 5000
#: The longest ``text`` or ``service`` filter accepted.
MAX_TEXT = 1000

#: The front end loads nothing from elsewhere and runs no inline script or style attribute from data.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]

_ID = re.compile(r"[0-9A-Za-z_.:-]{1,128}")
_encoder = msgspec.json.Encoder()


class JSON(Response):
    """JSON through msgspec: fast for stories of 100,000 records, and strict (no NaN)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _encoder.encode(content)


class BadRequest(Exception):
    pass


# -- access ----------------------------------------------------------------------------------


class Guard:
    """Host check and token check in front of everything, plus the security headers on every answer."""

    def __init__(self, app: ASGIApp, token: str | None, allowed_hosts: frozenset[str] | None) -> None:
        self.app = app
        self.token = token
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *SECURITY_HEADERS]
            await send(message)

        request = Request(scope)
        if self.allowed_hosts is not None and _host_name(request.headers.get("host", "")) not in self.allowed_hosts:
            await PlainTextResponse("unknown host: open the viewer through the address it printed", 421)(
                scope, receive, send_with_headers
            )
            return
        if self.token is not None:
            given = request.query_params.get("token")
            if given is not None and _same(given, self.token) and request.method in ("GET", "HEAD"):
                # Remember the token in a cookie and drop it from the address bar (and from history).
                rest = QueryParams([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
                target = request.url.path + (f"?{urlencode(list(rest.multi_items()))}" if rest else "")
                response: Response = RedirectResponse(target, 303)
                response.set_cookie(
                    COOKIE, self.token, httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/"
                )
                await response(scope, receive, send_with_headers)
                return
            auth = request.headers.get("authorization", "")
            bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
            cookie = request.cookies.get(COOKIE)
            if not any(v is not None and _same(v, self.token) for v in (bearer, cookie)):
                await PlainTextResponse(
                    "this viewer needs its access token: open the address it printed at start "
                    "(…?token=…) or send 'Authorization: Bearer <token>'",
                    401,
                    headers={"www-authenticate": "Bearer"},
                )(scope, receive, send_with_headers)
                return
        await self.app(scope, receive, send_with_headers)


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _host_name(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


# -- parameters ------------------------------------------------------------------------------


def _int(params: QueryParams, name: str, default: int, lo: int = 0, hi: int = 1 << 62) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, not {raw!r}") from None
    if not lo <= value <= hi:
        raise BadRequest(f"{name} must be between {lo} and {hi}")
    return value


def _id(value: str, what: str) -> str:
    if not _ID.fullmatch(value):
        raise BadRequest(f"not a valid {what}: {value[:80]!r}")
    return value


def _optional_int(params: QueryParams, name: str) -> int | None:
    return None if params.get(name) in (None, "") else _int(params, name, 0, -(1 << 63), (1 << 63) - 1)


def _text(params: QueryParams, name: str) -> str:
    value = (params.get(name) or "").strip()
    if len(value) > MAX_TEXT:
        raise BadRequest(f"{name} is longer than {MAX_TEXT} characters")
    return value


def _flag(params: QueryParams, name: str) -> bool:
    return params.get(name) in ("1", "true", "on", "yes")


def record_filter(params: QueryParams) -> RecordFilter:
    """The records panel's query string as a store ``RecordFilter`` (docs/ui.md, "API for big traces")."""
    filt: RecordFilter = {}
    span = params.get("span") or ""
    if span:
        filt["span_ids"] = [None] if span == "-" else [_id(span, "span id")]
    from_ns, to_ns = _optional_int(params, "from_ns"), _optional_int(params, "to_ns")
    if from_ns is not None:
        filt["from_ns"] = from_ns
    if to_ns is not None:
        filt["to_ns"] = to_ns
    kinds = [k.strip().lower() for k in (params.get("kind") or "").split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(TRACE_KINDS))
    if unknown:
        raise BadRequest(f"unknown kind {unknown[0][:40]!r}: use {', '.join(TRACE_KINDS)} (comma-separated)")
    if kinds:
        filt["kinds"] = kinds
    level = (params.get("level") or "").strip().upper()
    if level:
        if level not in LEVELS:
            raise BadRequest(f"unknown level {level[:40]!r}: use one of {', '.join(LEVELS)}")
        filt["min_level"] = level
    service, text = _text(params, "service"), _text(params, "text")
    if service:
        filt["service"] = service
    if text:
        filt["text"] = text
    if _flag(params, "errors"):
        filt["errors_only"] = True
    return filt


def trace_filter(params: QueryParams) -> TraceFilter:
    """The traces page's query string as a store ``TraceFilter`` (durations like ``250ms``, times ISO or ``15m``)."""

    def text(name: str) -> str:
        return (params.get(name) or "").strip()

    def parsed(name: str, parse: Callable[[str], int]) -> int | None:
        value = text(name)
        if not value:
            return None
        try:
            return parse(value)
        except Exception as exc:  # argparse.ArgumentTypeError carries the helpful message
            raise BadRequest(str(exc)) from None

    return query.trace_filter(
        service=text("service"),
        env=text("env"),
        text=text("text"),
        errors_only=_flag(params, "errors"),
        min_duration_ns=parsed("min", parse_duration),
        max_duration_ns=parsed("max", parse_duration),
        since_ns=parsed("since", parse_time),
        until_ns=parsed("until", parse_time),
    )


def _since(params: QueryParams) -> int | None:
    value = _text(params, "since")
    if not value:
        return None
    try:
        return parse_time(value)
    except Exception as exc:  # argparse.ArgumentTypeError carries the helpful message
        raise BadRequest(str(exc)) from None


def _location(params: QueryParams) -> Location:
    """A code location from ``span``, ``file`` and ``function`` (docs/ui.md)."""
    span = _text(params, "span")
    if not span:
        raise BadRequest("span is required (the span name), with file and function")
    return Location(span, _text(params, "file") or None, _text(params, "function") or None)


def _version(params: QueryParams, name: str) -> tuple[str, bool]:
    """A version as ``COMMIT`` or ``COMMIT-dirty`` (as ``zoomtrace diff`` takes it, but in full)."""
    value = _text(params, name)
    commit, dirty = (value[: -len("-dirty")], True) if value.endswith("-dirty") else (value, False)
    if not re.fullmatch(r"[0-9a-f]{4,64}", commit):
        raise BadRequest(f"{name} must be a commit (hex), or COMMIT-dirty, not {value[:80]!r}")
    return commit, dirty


# -- the store, one short session per request --------------------------------------------------


class Api:
    def __init__(self, home: Path, where: StoreUrl, retention_days: int | None, code_roots: Sequence[str]) -> None:
        self.home = home
        self.where = where
        self.retention_days = retention_days
        self.code_roots = tuple(code_roots)

    @contextmanager
    def store(self, *, ingest: bool) -> Iterator[Any]:
        from zoomtrace.collect import open_session

        if self.where.default and not self.home.exists():
            raise StoreError(f"no Zoom home at {self.home}: run instrumented code (or `zoomtrace demo`) first")
        with open_session(self.home, store=self.where.url, ingest=ingest, retention_days=self.retention_days) as store:
            yield store

    async def call(self, fn: Callable[[Any], Any], *, ingest: bool = False) -> Any:
        def work() -> Any:
            with self.store(ingest=ingest) as store:
                return fn(store)

        return await run_in_threadpool(work)

    # -- endpoints ----------------------------------------------------------------------------

    async def traces(self, request: Request) -> Response:
        params = request.query_params
        filt = trace_filter(params)
        limit = _int(params, "limit", 50, 1, MAX_PAGE)
        offset = _int(params, "offset", 0)
        rows = await self.call(lambda s: query.traces(s, filt, limit=limit + 1, offset=offset), ingest=True)
        return JSON({"traces": rows[:limit], "limit": limit, "offset": offset, "has_more": len(rows) > limit})

    async def story(self, request: Request) -> Response:
        trace_id = _id(request.path_params["trace_id"], "trace id")
        try:
            told = await self.call(lambda s: query.story(s, trace_id, max_records=query.STORY_LIMIT), ingest=True)
        except TooLarge as exc:
            return _error(
                413, f"{exc}: read it through /api/trace/{trace_id}/outline and /api/trace/{trace_id}/records"
            )
        return JSON(told)

    async def outline(self, request: Request) -> Response:
        trace_id = _id(request.path_params["trace_id"], "trace id")
        return JSON(await self.call(lambda s: query.outline(s, trace_id), ingest=True))

    async def records(self, request: Request) -> Response:
        trace_id = _id(request.path_params["trace_id"], "trace id")
        params = request.query_params
        filt = record_filter(params)
        offset = _int(params, "offset", 0)
        limit = _int(params, "limit", RECORDS_PAGE, 1, MAX_RECORDS_PAGE)
        around = _id(params["around"], "record id") if params.get("around") else None
        return JSON(
            await self.call(lambda s: query.records(s, trace_id, filt, offset=offset, limit=limit, around=around))
        )

    async def record(self, request: Request) -> Response:
        record_id = _id(request.path_params["record_id"], "record id")
        # A record's link may be the first page opened (a CLI's output): the spool is ingested first, as for a story.
        return JSON(await self.call(lambda s: query.record(s, record_id), ingest=True))

    async def span(self, request: Request) -> Response:
        trace_id = _id(request.path_params["trace_id"], "trace id")
        span_id = _id(request.path_params["span_id"], "span id")
        return JSON(await self.call(lambda s: query.span(s, trace_id, span_id)))

    async def lineage(self, request: Request) -> Response:
        record_id = _id(request.path_params["record_id"], "record id")
        return JSON(await self.call(lambda s: query.lineage(s, record_id), ingest=True))

    async def nodes(self, request: Request) -> Response:
        params = request.query_params
        limit = _int(params, "limit", 200, 1, MAX_PAGE)
        offset = _int(params, "offset", 0)
        rows = await self.call(lambda s: query.nodes(s, limit=limit + 1, offset=offset), ingest=True)
        # The panel shows the columns; a node's attrs (its started record again: repos, argv) are left out.
        page = [msgspec.structs.asdict(n) for n in rows[:limit]]
        for row in page:
            del row["attrs"]
        return JSON({"nodes": page, "limit": limit, "offset": offset, "has_more": len(rows) > limit})

    async def code(self, request: Request) -> Response:
        params = request.query_params
        file = params.get("file") or ""
        if not file:
            raise BadRequest("file is required")
        node_id = params.get("node") or None
        if node_id is not None:
            _id(node_id, "node id")
        line = _int(params, "line", 1, 0, 10_000_000)
        context = _int(params, "context", 12, 0, 500)
        commit = params.get("commit") or None
        dirty = {"1": True, "true": True, "0": False, "false": False}.get(params.get("dirty") or "")
        roots = self.code_roots
        result = await self.call(
            lambda s: read_source(
                s, node_id=node_id, file=file, line=line, commit=commit, dirty=dirty, context=context, roots=roots
            )
        )
        return JSON(result)

    # -- what changed, by commit (docs/changes.md) ---------------------------------------------------

    async def errors(self, request: Request) -> Response:
        params = request.query_params
        service, since = _text(params, "service") or None, _since(params)
        return JSON(await self.call(lambda s: changes.error_groups(s, service=service, since_ns=since), ingest=True))

    async def changes(self, request: Request) -> Response:
        params = request.query_params
        service, since = _text(params, "service") or None, _since(params)
        return JSON(await self.call(lambda s: changes.changes(s, service=service, since_ns=since), ingest=True))

    async def location(self, request: Request) -> Response:
        params = request.query_params
        at, service = _location(params), _text(params, "service") or None
        return JSON(await self.call(lambda s: changes.location_history(s, at, service=service)))

    async def samples(self, request: Request) -> Response:
        params = request.query_params
        at, service = _location(params), _text(params, "service")
        if not service:
            raise BadRequest("service is required")
        before, after = _version(params, "before"), _version(params, "after")
        return JSON(await self.call(lambda s: changes.sample_traces(s, service, at, before, after)))

    async def pulse(self, request: Request) -> Response:
        """A cheap fingerprint that changes when data arrives: of the home (spool segments and store files), and
        of the newest record of a store outside it (which other machines may fill)."""
        version = await run_in_threadpool(home_fingerprint, self.home)
        if not self.where.default:
            newest = await self.call(lambda s: query.tail(s, limit=1, last=True))
            version += f"-{newest[0].id if newest else ''}"
        return JSON({"version": version})

    async def about(self, request: Request) -> Response:
        from zoomtrace._version import __version__

        return JSON({"version": __version__, "home": str(self.home), "store": self.where.redacted})


def home_fingerprint(home: Path) -> str:
    count = size = newest = 0
    for directory in (home / "spool", home):
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            try:
                if not entry.is_file():
                    continue
                st = entry.stat()
            except OSError:
                continue
            count += 1
            size += st.st_size
            newest = max(newest, st.st_mtime_ns)
    return f"{count}-{size}-{newest}"


#: A trace id (or a prefix of one) as it may stand in a ``Link`` header unescaped.
_TRACE_ID: Final = re.compile(r"[0-9a-fA-F]{4,32}")


def _page(request: Request) -> Response:
    """The viewer's one page. On a story's address it also tells the browser to fetch the trace's outline
    now (``Link: rel=preload``), while the page's modules load, instead of after them."""
    headers = {"cache-control": "no-cache"}
    trace_id = request.path_params.get("trace_id")
    if trace_id is not None and _TRACE_ID.fullmatch(trace_id):
        headers["link"] = f"</api/trace/{trace_id}/outline>; rel=preload; as=fetch; crossorigin=anonymous"
    return FileResponse(STATIC / "index.html", headers=headers)


def _error(status: int, message: str) -> Response:
    return JSON({"error": message}, status_code=status)


def _wrap(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        try:
            response: Response = await handler(request)
        except BadRequest as exc:
            return _error(400, str(exc))
        except NotFound as exc:
            return _error(404, str(exc))
        except ConfigError as exc:
            return _error(400, str(exc))
        except StoreError as exc:
            return _error(503, str(exc))
        except ZoomError as exc:
            return _error(500, str(exc))
        response.headers["cache-control"] = "no-store"
        return response

    return endpoint


def create_app(
    home: str | os.PathLike[str],
    token: str | None = None,
    store: str | None = None,
    *,
    retention_days: int | None = None,
    allowed_hosts: frozenset[str] | set[str] | None = LOOPBACK_HOSTS,
    compress: bool = False,
    code_roots: Sequence[str | os.PathLike[str]] | None = None,
) -> Starlette:
    """The viewer as an ASGI app reading the store ``store`` (a store URL, else ``$ZOOMTRACE_STORE``, else the
    DuckDB file of ``home``), into which each request first ingests the spool of ``home``.

    ``token``: when set, every request must carry it (see the module docstring).
    ``retention_days``: of a ClickHouse store the viewer creates (see ``zoomtrace.store.open_store``).
    ``allowed_hosts``: ``Host`` header names accepted; ``None`` accepts any (only sensible with a token).
    ``compress``: gzip answers (fast level): worth it over a network, not on loopback, where a
    story of 100,000 records (~47 MB of JSON) travels faster than it compresses.
    ``code_roots``: directories whose git repositories the code panel may read (default: ``$ZOOMTRACE_CODE_ROOTS``,
    else the git work trees holding the current directory and ``home``; see ``zoomtrace.ui.code.resolve_code_roots``).
    """
    home = Path(home).absolute()
    api = Api(home, resolve_store(home, store), retention_days, resolve_code_roots(code_roots, home=home))
    hosts = frozenset(h.lower() for h in allowed_hosts) if allowed_hosts is not None else None
    routes = [
        Route("/api/traces", _wrap(api.traces)),
        Route("/api/trace/{trace_id}/outline", _wrap(api.outline)),
        Route("/api/trace/{trace_id}/records", _wrap(api.records)),
        Route("/api/trace/{trace_id}/span/{span_id}", _wrap(api.span)),
        Route("/api/trace/{trace_id}", _wrap(api.story)),
        Route("/api/record/{record_id}", _wrap(api.record)),
        Route("/api/lineage/{record_id}", _wrap(api.lineage)),
        Route("/api/nodes", _wrap(api.nodes)),
        Route("/api/code", _wrap(api.code)),
        Route("/api/errors", _wrap(api.errors)),
        Route("/api/changes", _wrap(api.changes)),
        Route("/api/location", _wrap(api.location)),
        Route("/api/location/samples", _wrap(api.samples)),
        Route("/api/pulse", _wrap(api.pulse)),
        Route("/api/about", _wrap(api.about)),
        Route("/api/{rest:path}", lambda request: _error(404, "no such API endpoint")),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
        Route("/", _page),
        Route("/traces", _page),
        Route("/nodes", _page),
        Route("/errors", _page),
        Route("/changes", _page),
        Route("/trace/{trace_id}", _page),
        Route("/record/{record_id}", _page),
    ]
    middleware = [Middleware(Guard, token=token, allowed_hosts=hosts)]
    if compress:
        middleware.append(Middleware(GZipMiddleware, minimum_size=2048, compresslevel=1))
    return Starlette(routes=routes, middleware=middleware)
