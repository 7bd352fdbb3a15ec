"""The node: one process run, with its build, its machine, its start, its stop and the cause.

A ``Node`` owns the pipeline and the encoder of this process, opens the sinks with its
identity, and records *started* (built with git provenance before ``init()`` returns, so that
the worker drains records from the first one) and *stopped*.
When it starts and stops, and why, is ``zoomtrace.runtime.lifecycle``'s business.
"""

from __future__ import annotations

import os
import platform
import socket
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from zoomtrace.capture import items
from zoomtrace.capture.recorder import LEVELS
from zoomtrace.capture.span import Span
from zoomtrace.runtime.encoder import Encoder
from zoomtrace.runtime.pipeline import OnFull, Pipeline
from zoomtrace.runtime.provenance import Provenance, find_repo_root
from zoomtrace.runtime.sanitize import Limits
from zoomtrace.runtime.scrub import SCRUBBED, Scrubber
from zoomtrace.sinks import NodeIdentity, ReportLoss, Sink, open_sink
from zoomtrace.wire.record import Record, uuid7

if TYPE_CHECKING:
    from zoomtrace.capture.span import Span


def _entry_root() -> str | None:
    """The repository of the program's entry point, else of the working directory (if it still exists)."""
    main = sys.modules.get("__main__")
    entry = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv and sys.argv[0] else None)
    try:
        root = find_repo_root(os.path.dirname(os.path.abspath(entry))) if entry else None
        return root if root is not None else find_repo_root(os.getcwd())
    except OSError:  # the working directory was deleted: a relative entry point cannot be found either
        return None


def redact_url(url: str) -> str:
    """A sink URL without user info and query (where passwords and tokens go), for the record."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


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
        span_cpu: bool = False,
    ) -> None:
        self.service, self.env, self.group, self.version = service, env, group, version
        self.home = home
        self.sink_urls = list(sinks)
        self.level = level
        self.levelno = LEVELS[level]
        self.queue_size, self.on_full, self.block_timeout_s = queue_size, on_full, block_timeout_s
        self.limits, self.scrubber = limits, scrubber
        #: Whether spans read the thread CPU clock (``init(span_cpu=True)``): two system calls per span.
        self.span_cpu = span_cpu
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
        # The home holds the spool and the store of this and other processes: never dirty files
        # of a repository it lies in (every process after the first was "dirty 1" with them).
        self.provenance = provenance or Provenance(exclude=[home])
        self.encoder = Encoder(self.node_id, self.provenance, scrubber, limits)
        self.identity = NodeIdentity(
            self.node_id, service=service, env=env, group=group, version=version, host=self.host, pid=self.pid
        )
        self._lost_reported: dict[str, int] = {}
        # The start-up work (git, the platform, the modules the worker will use) is done here, before
        # init() returns: left to the worker, it competed for the GIL with an application busy from its
        # first line, and the worker drained nothing for about a second while the queue filled up.
        try:
            started = self._started_record()
        except Exception as exc:  # the node is recorded all the same, with what is known for sure
            attrs = {**self.describe(), "parent_node_id": self.parent_node_id, "python": platform.python_version()}
            attrs["provenance_problem"] = f"could not describe the process: {exc!r}"
            started = self.encoder.node_record("started", attrs, ts_ns=self.started_ns)
        self.pipeline = Pipeline(
            self.encoder.encode,
            self._open_sinks,
            maxsize=queue_size,
            on_full=on_full,
            block_timeout_s=block_timeout_s,
            extras=self._extras,
            hold=self._hold,
            untracked=Span,  # queued spans: the encoder's dispatch tracks them again
        )
        self.pipeline.put_unbounded((items.RECORD, started))

    def _open_sinks(self, report_loss: ReportLoss) -> list[Sink]:
        return [open_sink(url, home=self.home, node=self.identity, report_loss=report_loss) for url in self.sink_urls]

    # -- worker side -------------------------------------------------------------------

    def _extras(self) -> list[Record]:
        extras = self.encoder.take_extras()
        lost = dict(self.pipeline.lost)
        if lost != self._lost_reported:
            self._lost_reported = lost
            extras.append(self.encoder.node_record("lost", {"lost": lost, "total": sum(lost.values())}))
        return extras

    def _hold(self, record: Record) -> str | None:
        """The node records a sink must get even after failing to write them (a full disk at start): the
        *started* record (without it the node has no service or identity), the repositories (written once),
        the latest ``lost`` count (which counts the records that were not held)."""
        if record.kind != "node" or record.node_id != self.node_id:
            return None
        if record.type in ("started", "lost"):
            return record.type
        if record.type == "repo" and record.attrs:
            return f"repo:{record.attrs.get('root')}"
        return None

    def _started_record(self) -> Record:
        entry_root = _entry_root()
        roots = {entry_root} if entry_root else set()
        for name, module in list(sys.modules.items()):
            path = getattr(module, "__file__", None)
            # Zoom's own modules are not the application's code, even in a development checkout.
            if isinstance(path, str) and name.partition(".")[0] != "zoomtrace":
                root = self.provenance.root_of(path)
                if root is not None:
                    roots.add(root)
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
        return {**self.identity.as_attrs(), "started_ns": self.started_ns}

    # -- lifecycle -----------------------------------------------------------------------

    def stop(
        self, cause: str, error: BaseException | None = None, timeout: float = 5.0, exit_code: int | None = None
    ) -> None:
        """Record *stopped* (and interrupted spans), drain and close. Idempotent.

        ``exit_code`` is the status the process leaves with, when known (``os._exit(status)``)."""
        with self._stop_lock:
            if self.stopped:
                return
            self.stopped = True
        now = time.time_ns()
        for span in list(self.open_spans.values()):
            span.end_ns, span.status = now, "interrupted"
            self.pipeline.put_unbounded(span)
        self.open_spans.clear()
        attrs: dict[str, Any] = {"cause": cause, "stopped_ns": now, "uptime_s": (now - self.started_ns) / 1e9}
        if exit_code is not None:
            attrs["exit_code"] = exit_code
        err = self.encoder.error(error) if error is not None else None
        self.pipeline.put_unbounded((items.RECORD, self.encoder.node_record("stopped", attrs, ts_ns=now, error=err)))
        self.pipeline.flush(timeout)
        self.pipeline.close(timeout)

    def flush(self, timeout: float = 5.0) -> bool:
        """Write everything recorded so far; True when done within ``timeout`` seconds."""
        return self.pipeline.flush(timeout)
