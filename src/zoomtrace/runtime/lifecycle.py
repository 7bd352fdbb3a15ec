"""When the node starts and stops, and why: ``init``, ``flush``, ``shutdown`` and the process hooks.

``init()`` starts this process's node. The node records *stopped* with its cause at
interpreter exit, on an uncaught exception, on ``SIGTERM`` (Zoom's handler, or chained
before the application's) and on ``SIGINT``; spans still open then are recorded as
``interrupted``. A forked child starts a node of its own whose parent is the forking node.
The running node sits in ``zoomtrace.capture.recorder``, where the hot path finds it.

Some processes end without ``atexit``: multiprocessing children (every start method but
``spawn``) and forked children in general leave through ``os._exit``. Their node is stopped
through multiprocessing's own exit hook (``util.Finalize``, run by ``util._exit_function``)
and, in a forked child only, by ``os._exit`` itself, wrapped to stop the node (bounded by
``EXIT_TIMEOUT_S``) before it calls the original. See docs/reliability.md.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, NoReturn, cast

from zoomtrace.capture import recorder
from zoomtrace.capture.recorder import LEVELS
from zoomtrace.errors import ConfigError
from zoomtrace.runtime.node import Node
from zoomtrace.runtime.pipeline import OnFull
from zoomtrace.runtime.sanitize import Limits
from zoomtrace.runtime.scrub import DEFAULT_PATTERNS, Scrubber
from zoomtrace.sinks import default_sinks
from zoomtrace.wire.spool import default_home


def running() -> Node | None:
    """The running node of this process, if any."""
    return cast(Node | None, recorder.active)


def _set_running(node: Node | None) -> None:
    recorder.active = node


def _stop_cause() -> tuple[str, BaseException | None]:
    node = running()
    assert node is not None
    if node.stop_signal is not None:
        return node.stop_signal, None
    if isinstance(node.uncaught, KeyboardInterrupt):
        return "SIGINT", None
    if node.uncaught is not None:
        return "exception", node.uncaught
    return "exit", None


def _at_exit() -> None:
    node = running()
    if node is not None and node.pid == os.getpid():
        cause, error = _stop_cause()
        node.stop(cause, error)


def _excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    node = running()
    if node is not None:
        node.uncaught = exc
    _previous_excepthook(exc_type, exc, tb)


#: The hook installed before ``init()`` (the application's, Sentry's, rich's...), which Zoom's calls on.
_previous_excepthook = sys.__excepthook__


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Zoom's own SIGTERM handler (only when the application has none): record, then die as by default."""
    node = running()
    if node is not None:
        node.stop_signal = "SIGTERM"
        node.stop("SIGTERM")
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _chain(name: str, previous: Any) -> Any:
    """Wrap the application's own handler: note the signal, then let the application decide."""

    def handler(signum: int, frame: FrameType | None) -> Any:
        node = running()
        if node is not None:
            node.stop_signal = name
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


#: How long a process leaving through ``os._exit`` waits for its node's records: the pipeline's flush,
#: then its close, each at most this long (the same bound as at a normal exit).
EXIT_TIMEOUT_S = 5.0

#: This process was forked (``os.fork``, a multiprocessing ``fork`` or ``forkserver`` child, a pre-fork
#: server's worker) from one that had imported Zoom: ``os._exit`` is how such children end.
_forked_child = False


def _after_fork_in_child() -> None:
    global _forked_child
    _forked_child = True
    parent = running()
    if parent is None:
        return
    child = Node(
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
        span_cpu=parent.span_cpu,
    )
    _set_running(child)
    _hook_exits_without_atexit(child)


def _hook_exits_without_atexit(node: Node) -> None:
    """Stop ``node`` also when this process ends the ways that skip ``atexit``, wherever Python gives a hook."""
    if "multiprocessing" in sys.modules:
        # A multiprocessing child (fork, forkserver; spawn too, though it exits through atexit) runs
        # multiprocessing's exit function (its finalizers) after the target, then leaves with os._exit.
        # Its bootstrap clears the finalizers registered before it (a fork child's node, a node started
        # while the child imports the main module): those register again from its after-fork hooks, which
        # run after the clearing. A node started in the target itself registers directly.
        from multiprocessing import util

        util.Finalize(None, _at_exit, exitpriority=-100)
        util.register_after_fork(node, _finalize_in_multiprocessing_child)
    if _forked_child:
        _wrap_os_exit()


def _finalize_in_multiprocessing_child(node: Node) -> None:
    if node is running():
        from multiprocessing import util

        util.Finalize(None, _at_exit, exitpriority=-100)


def _wrap_os_exit() -> None:
    """In a forked child only: ``os._exit`` stops the node (bounded) before it calls the ``os._exit`` it replaces.

    A forked child ends with ``os._exit`` by design (so that it does not run its parent's exit handlers
    twice), which makes that the normal end of a pre-fork server's worker, a multiprocessing child or a
    Celery/billiard worker: without this, everything still in its queue is lost, uncounted. In a process
    that was not forked, ``os._exit`` stays untouched: there it is the application's explicit request to
    leave at once. Code that kept a reference to ``os._exit`` from before the fork bypasses this.
    """
    previous = os._exit
    if getattr(previous, "_zoomtrace", False):
        return  # already wrapped (a child of a forked child)

    def _exit(status: int) -> NoReturn:
        try:
            node = running()
            if node is not None and node.pid == os.getpid():
                cause, error = _stop_cause()
                node.stop(cause, error, timeout=EXIT_TIMEOUT_S, exit_code=status)
        finally:  # leaving is what the caller asked for, whatever happened while stopping
            previous(status)

    _exit.__wrapped__ = previous  # type: ignore[attr-defined]
    _exit._zoomtrace = True  # type: ignore[attr-defined]
    os._exit = _exit


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
    span_cpu: bool = False,
) -> Node:
    """Start this process's node and its pipeline; returns the running node if already started.

    ``sink`` is a sink URL or a list of them (default: ``$ZOOMTRACE_SINK`` or the
    embedded ``spool`` under ``home``, itself ``$ZOOMTRACE_HOME`` or ``./.zoomtrace``).
    ``level`` is the lowest level recorded, from ``zt.log`` and from stdlib logging.
    ``opentelemetry=True`` makes spans created through ``opentelemetry-api`` (any OpenTelemetry
    instrumentation library) Zoom spans and shares the current context with OpenTelemetry
    (needs ``zoomtrace[otel]``; see docs/opentelemetry.md). ``propagate_to_threads`` makes new
    threads and thread-pool tasks continue the span that started them (see ``zoomtrace.capture.threads``).
    ``span_cpu=True`` records the thread CPU time of synchronous spans (``cpu_ns``): two system calls,
    about 0.6 µs per span, so it is off unless asked for.
    """
    if opentelemetry:
        try:
            from zoomtrace.capture.otel_bridge import install as install_opentelemetry
        except ImportError:
            raise ConfigError("opentelemetry=True needs the OpenTelemetry API: pip install 'zoomtrace[otel]'") from None
        install_opentelemetry()
    current = running()
    if current is not None and not current.stopped and current.pid == os.getpid():
        return current
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
    node = Node(
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
        span_cpu=span_cpu,
    )
    _set_running(node)
    _install_process_hooks(install_signal_handlers)
    _hook_exits_without_atexit(node)
    if propagate_to_threads:
        from zoomtrace.capture import threads

        threads.install()
    if capture_logging:
        from zoomtrace.capture.stdlib_logging import capture

        capture(node.levelno)
    return node


# At import, not at init(): a child forked before its own init() is a forked child as well.
os.register_at_fork(after_in_child=_after_fork_in_child)


def flush(timeout: float = 5.0) -> bool:
    """Write everything recorded so far; True when done within ``timeout`` seconds."""
    node = running()
    return node.flush(timeout) if node is not None else True


def shutdown(timeout: float = 5.0) -> None:
    """Record this node's stop (cause ``shutdown``) and close its sinks. Recording stops until ``init()``."""
    node = running()
    if node is not None:
        node.stop("shutdown", timeout=timeout)
        _set_running(None)
        from zoomtrace.capture.stdlib_logging import release

        release()
