"""The node: one process run, with its build, its machine, its start, its stop and the cause.

``init()`` starts the node: it opens the sinks, starts the pipeline and records
*started* (completed with git provenance by the worker, so start-up stays fast).
The node records *stopped* with its cause at interpreter exit, on an uncaught
exception, on ``SIGTERM`` (Zoom's handler, or chained before the application's)
and on ``SIGINT``; spans still open then are recorded as ``interrupted``. A forked
child starts a node of its own whose parent is the forking node.
"""

from __future__ import annotations

import atexit
import os
import platform
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from zoomtrace import items
from zoomtrace.encoder import Encoder
from zoomtrace.errors import ConfigError
from zoomtrace.pipeline import OnFull, Pipeline
from zoomtrace.provenance import Provenance, find_repo_root
from zoomtrace.record import Record, uuid7
from zoomtrace.sanitize import Limits
from zoomtrace.scrub import DEFAULT_PATTERNS, SCRUBBED, Scrubber
from zoomtrace.sinks import Sink, default_sinks, open_sink

if TYPE_CHECKING:
    from zoomtrace.span import Span

#: The running node of this process, or None before ``init()`` / after ``shutdown()``.
active: Node | None = None

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


def redact_url(url: str) -> str:
    """A sink URL without user info and query (where passwords and tokens go), for the record."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def default_home() -> Path:
    return Path(os.environ.get("ZOOMTRACE_HOME") or ".zoomtrace").absolute()


class Node:
    def __init__(
        self,
        service: str,
        *,
        env: str,
        group: str,
        version: str | None,
        home: Path,
        sinks: Sequence[str],
        level: str,
        queue_size: int,
        on_full: OnFull,
        block_timeout_s: float,
        limits: Limits,
        scrubber: Scrubber | None,
        parent_node_id: str | None = None,
        provenance: Provenance | None = None,
    ) -> None:
        self.service, self.env, self.group, self.version = service, env, group, version
        self.home = home
        self.sink_urls = list(sinks)
        self.level = level
        self.levelno = LEVELS[level]
        self.queue_size, self.on_full, self.block_timeout_s = queue_size, on_full, block_timeout_s
        self.limits, self.scrubber = limits, scrubber
        self.parent_node_id = parent_node_id
        self.started_ns = time.time_ns()
        self.node_id = uuid7(self.started_ns)
        self.pid = os.getpid()
        self.host = socket.gethostname()
        self.open_spans: dict[str, Span] = {}
        self.stopped = False
        self.stop_signal: str | None = None
        self.uncaught: BaseException | None = None
        # Re-entrant: a signal handler may call stop() while this thread is already inside it.
        self._stop_lock = threading.RLock()
        # A forked child runs the parent's code from the parent's checkout: reuse what git said then
        # rather than run git again in every worker of a pre-forking server.
        self.provenance = provenance or Provenance()
        self.encoder = Encoder(self.node_id, self.provenance, scrubber, limits)
        sink_objects: list[Sink] = [open_sink(url, home=home, node_id=self.node_id) for url in self.sink_urls]
        self._lost_reported: dict[str, int] = {}
        self.pipeline = Pipeline(
            self._encode,
            sink_objects,
            maxsize=queue_size,
            on_full=on_full,
            block_timeout_s=block_timeout_s,
            extras=self._extras,
        )
        self.pipeline.put((items.NODE_START,))

    # -- worker side -------------------------------------------------------------------

    def _encode(self, item: tuple[Any, ...]) -> Record | None:
        if item[0] == items.NODE_START:
            return self._started_record()
        return self.encoder(item)

    def _extras(self) -> list[Record]:
        extras = self.encoder.take_extras()
        lost = dict(self.pipeline.lost)
        if lost != self._lost_reported:
            self._lost_reported = lost
            extras.append(self.encoder.node_record("lost", {"lost": lost, "total": sum(lost.values())}))
        return extras

    def _started_record(self) -> Record:
        main = sys.modules.get("__main__")
        entry = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv and sys.argv[0] else None)
        entry_root = find_repo_root(os.path.dirname(os.path.abspath(entry))) if entry else None
        if entry_root is None:
            entry_root = find_repo_root(os.getcwd())
        roots = {entry_root} if entry_root else set()
        for name, module in list(sys.modules.items()):
            path = getattr(module, "__file__", None)
            # Zoom's own modules are not the application's code, even in a development checkout.
            if isinstance(path, str) and name.partition(".")[0] != "zoomtrace":
                repo = self.provenance.locate(path).repo
                if repo is not None:
                    roots.add(repo.root)
        repos = [self.provenance.repo(root) for root in sorted(roots)]
        self.provenance.take_new_repos()  # listed here, not again as "repo" records
        entry_repo = self.provenance.repos.get(entry_root) if entry_root else None
        argv = " ".join(self._scrubbed_argv())
        attrs: dict[str, Any] = {
            **self.describe(),
            "parent_node_id": self.parent_node_id,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "argv": argv,
            "commit": entry_repo.head if entry_repo else None,
            "branch": entry_repo.branch if entry_repo else None,
            "repo": entry_root,
            "repos": [r.as_dict() for r in repos],
            "sinks": [redact_url(url) for url in self.sink_urls],
        }
        if entry_root is None:
            attrs["provenance_problem"] = "the entry point is not in a git repository: commits unknown"
        return self.encoder.node_record("started", attrs, ts_ns=self.started_ns)

    def _scrubbed_argv(self) -> list[str]:
        """The command line, with ``--password VALUE`` as well as ``--password=VALUE`` forms scrubbed."""
        if self.scrubber is None:
            return list(sys.argv)
        out: list[str] = []
        secret_next = False
        for arg in sys.argv:
            out.append(SCRUBBED if secret_next else self.scrubber.scrub_text(arg))
            secret_next = arg.startswith("-") and "=" not in arg and self.scrubber.is_sensitive(arg.lstrip("-"))
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "service": self.service,
            "env": self.env,
            "group": self.group,
            "version": self.version,
            "host": self.host,
            "pid": self.pid,
            "started_ns": self.started_ns,
        }

    # -- lifecycle -----------------------------------------------------------------------

    def stop(self, cause: str, error: BaseException | None = None, timeout: float = 5.0) -> None:
        """Record *stopped* (and interrupted spans), drain and close. Idempotent."""
        with self._stop_lock:
            if self.stopped:
                return
            self.stopped = True
        now = time.time_ns()
        for span in list(self.open_spans.values()):
            span.end_ns, span.status = now, "interrupted"
            self.pipeline.put_unbounded((items.SPAN, span))
        self.open_spans.clear()
        attrs = {"cause": cause, "stopped_ns": now, "uptime_s": (now - self.started_ns) / 1e9}
        err = self.encoder.error(error) if error is not None else None
        self.pipeline.put_unbounded((items.RECORD, self.encoder.node_record("stopped", attrs, ts_ns=now, error=err)))
        self.pipeline.flush(timeout)
        self.pipeline.close(timeout)


# -- process hooks (installed once per process) ----------------------------------------


def _stop_cause() -> tuple[str, BaseException | None]:
    node = active
    assert node is not None
    if node.stop_signal is not None:
        return node.stop_signal, None
    if isinstance(node.uncaught, KeyboardInterrupt):
        return "SIGINT", None
    if node.uncaught is not None:
        return "exception", node.uncaught
    return "exit", None


def _at_exit() -> None:
    node = active
    if node is not None and node.pid == os.getpid():
        cause, error = _stop_cause()
        node.stop(cause, error)


def _excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if active is not None:
        active.uncaught = exc
    _previous_excepthook(exc_type, exc, tb)


#: The hook installed before ``init()`` (the application's, Sentry's, rich's...), which Zoom's calls on.
_previous_excepthook = sys.__excepthook__


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Zoom's own SIGTERM handler (only when the application has none): record, then die as by default."""
    node = active
    if node is not None:
        node.stop_signal = "SIGTERM"
        node.stop("SIGTERM")
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _chain(name: str, previous: Any) -> Any:
    """Wrap the application's own handler: note the signal, then let the application decide."""

    def handler(signum: int, frame: FrameType | None) -> Any:
        if active is not None:
            active.stop_signal = name
        return previous(signum, frame)

    handler.__wrapped__ = previous  # type: ignore[attr-defined]
    return handler


def _install_signal_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # signal.signal only works in the main thread; exit is still recorded by atexit
    term = signal.getsignal(signal.SIGTERM)
    if term in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _on_sigterm)
    elif callable(term) and term is not _on_sigterm and getattr(term, "__wrapped__", None) is None:
        signal.signal(signal.SIGTERM, _chain("SIGTERM", term))
    interrupt = signal.getsignal(signal.SIGINT)
    if callable(interrupt) and getattr(interrupt, "__wrapped__", None) is None:
        signal.signal(signal.SIGINT, _chain("SIGINT", interrupt))


def _after_fork_in_child() -> None:
    global active
    parent = active
    if parent is None:
        return
    active = Node(
        parent.service,
        env=parent.env,
        group=parent.group,
        version=parent.version,
        home=parent.home,
        sinks=parent.sink_urls,
        level=parent.level,
        queue_size=parent.queue_size,
        on_full=parent.on_full,
        block_timeout_s=parent.block_timeout_s,
        limits=parent.limits,
        scrubber=parent.scrubber,
        parent_node_id=parent.node_id,
        provenance=parent.provenance,
    )
    if "multiprocessing" in sys.modules:
        # multiprocessing children leave with os._exit, which skips atexit, and clear the finalizers
        # registered before their bootstrap: register ours from its after-fork hooks, which run later.
        from multiprocessing import util

        util.register_after_fork(active, _finalize_in_multiprocessing_child)


def _finalize_in_multiprocessing_child(_node: Node) -> None:
    from multiprocessing import util

    util.Finalize(None, _at_exit, exitpriority=-100)


_hooks_installed = False


def _install_process_hooks(install_signal_handlers: bool) -> None:
    global _hooks_installed, _previous_excepthook
    if install_signal_handlers:
        _install_signal_handlers()
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_at_exit)
    _previous_excepthook = sys.excepthook
    sys.excepthook = _excepthook
    os.register_at_fork(after_in_child=_after_fork_in_child)


def init(
    service: str,
    *,
    env: str = "local",
    group: str = "default",
    version: str | None = None,
    sink: str | Sequence[str] | None = None,
    home: str | os.PathLike[str] | None = None,
    capture_logging: bool = True,
    level: str = "INFO",
    queue_size: int = 100_000,
    on_full: OnFull = "drop",
    block_timeout_s: float = 0.1,
    limits: Limits | None = None,
    scrub: bool | Scrubber = True,
    install_signal_handlers: bool = True,
    opentelemetry: bool = False,
    propagate_to_threads: bool = True,
) -> Node:
    """Start this process's node and its pipeline; returns the running node if already started.

    ``sink`` is a sink URL or a list of them (default: ``$ZOOMTRACE_SINK`` or the
    embedded ``spool`` under ``home``, itself ``$ZOOMTRACE_HOME`` or ``./.zoomtrace``).
    ``level`` is the lowest level recorded, from ``zt.log`` and from stdlib logging.
    ``opentelemetry=True`` makes spans created through ``opentelemetry-api`` (any OpenTelemetry
    instrumentation library) Zoom spans and shares the current context with OpenTelemetry
    (needs ``zoomtrace[otel]``; see docs/opentelemetry.md). ``propagate_to_threads`` makes new
    threads and thread-pool tasks continue the span that started them (see ``zoomtrace.threads``).
    """
    global active
    if opentelemetry:
        try:
            from zoomtrace.otel_bridge import install as install_opentelemetry
        except ImportError:
            raise ConfigError("opentelemetry=True needs the OpenTelemetry API: pip install 'zoomtrace[otel]'") from None
        install_opentelemetry()
    if active is not None and not active.stopped and active.pid == os.getpid():
        return active
    level = level.upper()
    if level not in LEVELS:
        raise ConfigError(f"unknown level {level!r}: use one of {', '.join(LEVELS)}")
    if on_full not in ("drop", "block"):
        raise ConfigError(f"unknown on_full policy {on_full!r}: use 'drop' or 'block'")
    if queue_size < 1:
        raise ConfigError("queue_size must be at least 1")
    sink = sink or os.environ.get("ZOOMTRACE_SINK") or default_sinks()
    sinks = [s.strip() for s in sink.split(";")] if isinstance(sink, str) else list(sink)
    scrubber = scrub if isinstance(scrub, Scrubber) else Scrubber(DEFAULT_PATTERNS) if scrub else None
    active = Node(
        service,
        env=env,
        group=group,
        version=version,
        home=Path(home).absolute() if home else default_home(),
        sinks=sinks,
        level=level,
        queue_size=queue_size,
        on_full=on_full,
        block_timeout_s=block_timeout_s,
        limits=limits or Limits(),
        scrubber=scrubber,
    )
    _install_process_hooks(install_signal_handlers)
    if propagate_to_threads:
        from zoomtrace import threads

        threads.install()
    if capture_logging:
        from zoomtrace.stdlib import capture

        capture(active.levelno)
    return active


def flush(timeout: float = 5.0) -> bool:
    """Write everything recorded so far; True when done within ``timeout`` seconds."""
    return active.pipeline.flush(timeout) if active is not None else True


def shutdown(timeout: float = 5.0) -> None:
    """Record this node's stop (cause ``shutdown``) and close its sinks. Recording stops until ``init()``."""
    global active
    node = active
    if node is not None:
        node.stop("shutdown", timeout=timeout)
        active = None
        from zoomtrace.stdlib import release

        release()
