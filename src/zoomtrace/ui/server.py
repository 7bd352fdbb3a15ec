"""Running the viewer: bind, print where it is, serve until interrupted.

Loopback only unless asked otherwise; any other address requires an access token
(generated and printed when not given). While serving, ``<home>/ui.json`` says
where the viewer is and which store it reads (redacted: never a password), so other
commands (``zoomtrace demo``) can print links to it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import signal
import socket
import sys
import threading
import time
import webbrowser
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from urllib.parse import quote

from zoomtrace.errors import ConfigError
from zoomtrace.store.urls import StoreUrl, resolve_store

DEFAULT_PORT = 8087
STATE_FILE = "ui.json"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host.strip("[]"), port), family=family, backlog=128, reuse_port=False)
    except OSError as exc:
        hint = " (pass --port 0 for any free port)" if port else ""
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from None


def _url(host: str, port: int) -> str:
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - printing, not binding
        host = socket.gethostname()
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def trace_url(base: str, trace_id: str) -> str:
    return f"{base.rstrip('/')}/trace/{quote(trace_id, safe='')}"


@dataclass
class Running:
    """A viewer serving in a background thread (tests, ``serve_and_open``)."""

    url: str
    token: str | None
    server: object
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True  # type: ignore[attr-defined]
        self.thread.join(10)


def _prepare(
    home: str | os.PathLike[str],
    host: str,
    port: int,
    token: str | None,
    store: StoreUrl,
    retention_days: int | None,
    code_roots: Sequence[str],
) -> tuple[object, socket.socket, str, str | None]:
    import uvicorn

    from zoomtrace.ui.app import LOOPBACK_HOSTS, create_app

    loopback = is_loopback(host)
    if not loopback and not token:
        token = secrets.token_urlsafe(24)
    app = create_app(
        home,
        token=token,
        store=store.url,
        retention_days=retention_days,
        allowed_hosts=LOOPBACK_HOSTS if loopback else None,
        compress=not loopback,
        code_roots=code_roots,
    )
    sock = _bind(host, port)
    url = _url(host, sock.getsockname()[1])
    # The same event loop and HTTP parser whatever else is installed (uvloop, httptools): the signal handling
    # below is written and tested for asyncio's.
    config = uvicorn.Config(
        app,
        loop="asyncio",
        http="h11",
        log_level="warning",
        access_log=False,
        lifespan="off",
        server_header=False,
        timeout_graceful_shutdown=2,
    )

    class Server(uvicorn.Server):
        """uvicorn's server with signals left to ``serve``, which listens from before the viewer is announced:
        uvicorn starts listening only inside its event loop, and a Ctrl-C in between could be lost."""

        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return Server(config), sock, url, token


@contextmanager
def _stopped_by_signals(server: object) -> Iterator[None]:
    """While in the block, SIGINT and SIGTERM stop ``server`` gracefully (a second SIGINT at once)."""

    def stop(signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and server.should_exit:  # type: ignore[attr-defined]
            server.force_exit = True  # type: ignore[attr-defined]
        server.should_exit = True  # type: ignore[attr-defined]

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _announce(home: Path, url: str, store: StoreUrl) -> None:
    with suppress(OSError):
        state = {"url": url, "pid": os.getpid(), "started": time.time(), "store": store.redacted}
        (home / STATE_FILE).write_text(json.dumps(state))


def _retire(home: Path, url: str) -> None:
    with suppress(OSError, ValueError):
        state = json.loads((home / STATE_FILE).read_text())
        if state.get("url") == url and state.get("pid") == os.getpid():
            (home / STATE_FILE).unlink()


def running_url(home: str | os.PathLike[str], store: str | None = None) -> str | None:
    """The address of a viewer currently serving ``home`` and the store ``store`` names (a store URL, else
    ``$ZOOMTRACE_STORE``, else the home's DuckDB file), from ``ui.json``; or None."""
    try:
        state = json.loads((Path(home) / STATE_FILE).read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if state.get("store") != resolve_store(Path(home).absolute(), store).redacted:
        return None  # a viewer of the same home showing another store
    url = state.get("url")
    return url if isinstance(url, str) else None


def serve(
    home: str | os.PathLike[str],
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    token: str | None = None,
    *,
    open_path: str | None = None,
    store: str | None = None,
    retention_days: int | None = None,
    code_roots: Sequence[str | os.PathLike[str]] | None = None,
) -> None:
    """Serve the viewer for ``home`` until interrupted, printing its address (and token) first.

    ``token`` defaults to ``$ZOOMTRACE_UI_TOKEN`` (an argument would show in ``ps``); on an
    address other than loopback one is generated when neither is given. ``store`` is the store
    URL to read (else ``$ZOOMTRACE_STORE``, else the home's DuckDB file); the home's spool is
    ingested into it as with every command. ``code_roots``: the directories whose git repositories
    the code panel may read (``zoomtrace.ui.code.resolve_code_roots``), printed.
    """
    from zoomtrace.ui.code import resolve_code_roots

    home = Path(home).absolute()
    where = resolve_store(home, store)
    token = token or os.environ.get("ZOOMTRACE_UI_TOKEN") or None
    roots = resolve_code_roots(code_roots, home=home)
    server, sock, url, token = _prepare(home, host, port, token, where, retention_days, roots)
    with _stopped_by_signals(server):
        print(f"zoomtrace viewer for {home}" + ("" if where.default else f", store {where.redacted}"), flush=True)
        if token is not None:
            print(f"  open   {url}?token={token}", flush=True)
            print(f"  token  {token}   (or send 'Authorization: Bearer <token>')", flush=True)
        else:
            print(f"  open   {url}", flush=True)
        shown = ", ".join(roots) if roots else "none (only snapshots of dirty files and installed packages)"
        print(f"  code   git repositories under {shown}", flush=True)
        _announce(home, url, where)
        try:
            if open_path:
                print(f"  story  {url.rstrip('/')}{open_path}", flush=True)
                _open_browser(f"{url.rstrip('/')}{open_path}" + (f"?token={token}" if token else ""))
            print("  (Ctrl-C to stop)", flush=True)
            server.run(sockets=[sock])  # type: ignore[attr-defined]
        finally:
            _retire(home, url)
            sock.close()


@contextmanager
def background(
    home: str | os.PathLike[str],
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    *,
    store: str | None = None,
    code_roots: Sequence[str | os.PathLike[str]] | None = None,
) -> Iterator[Running]:
    """Serve in a daemon thread for the duration of the block (tests, benchmarks)."""
    from zoomtrace.ui.code import resolve_code_roots

    home = Path(home).absolute()
    roots = resolve_code_roots(code_roots, home=home)
    server, sock, url, token = _prepare(home, host, port, token, resolve_store(home, store), None, roots)
    thread = threading.Thread(
        target=server.run,  # type: ignore[attr-defined]
        kwargs={"sockets": [sock]},
        name="zoomtrace-ui",
        daemon=True,
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not getattr(server, "started", False):
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise ConfigError(f"the viewer did not start on {url}")
        time.sleep(0.01)
    running = Running(url, token, server, thread)
    try:
        yield running
    finally:
        running.stop()
        sock.close()


def _open_browser(url: str) -> None:
    with suppress(Exception):
        if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or sys.platform in ("darwin", "win32"):
            webbrowser.open(url)


def serve_and_open(
    home: str | os.PathLike[str],
    trace_id: str,
    *,
    store: str | None = None,
    retention_days: int | None = None,
    code_roots: Sequence[str | os.PathLike[str]] | None = None,
) -> None:
    """Serve ``home`` (and ``store``) on 127.0.0.1 (port 8087, or any free port if taken) and open the story
    of ``trace_id``."""
    try:
        _bind("127.0.0.1", DEFAULT_PORT).close()
        port = DEFAULT_PORT
    except ConfigError:
        port = 0
    path = f"/trace/{quote(trace_id, safe='')}"
    serve(home, "127.0.0.1", port, open_path=path, store=store, retention_days=retention_days, code_roots=code_roots)
