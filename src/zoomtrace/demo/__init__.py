"""``zoomtrace demo``: a small shop of real processes, then the story of its most interesting trace.

On the embedded store: a gateway, an orders service and a billing service talk JSON over
HTTP on localhost with W3C trace context, log through stdlib logging, emit data events
derived from one another, and one payment is declined and retried (a follows-from link).
Billing and orders are stopped with SIGTERM.

With ``--kafka BOOTSTRAP``: orders publishes ``OrderPlaced`` data events through Zoom's Kafka
sink, a billing consumer process reads them from Kafka as business messages, continues their
traces and derives ``PaymentCaptured``; a collector stores everything from Kafka.

The services record into the home's spool (and Kafka) whatever the store; with ``store`` (a store
URL such as ``chdb://DIR``) the collector and the story's session use that store instead of the
home's DuckDB file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from zoomtrace.demo.commits import ORDERS
from zoomtrace.errors import ZoomError
from zoomtrace.store.urls import resolve_store

STARTUP_TIMEOUT_S = 20.0


class DemoError(ZoomError):
    pass


def _start(
    module: str, env: dict[str, str], *args: str, command: list[str] | None = None
) -> tuple[subprocess.Popen[str], int]:
    """Start a service (``zoomtrace.demo.<module>``, or ``command``) and wait for its ``ready <port>`` line."""
    proc = subprocess.Popen(
        [sys.executable, *(command or ["-m", f"zoomtrace.demo.{module}"]), *args],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    timer = threading.Timer(STARTUP_TIMEOUT_S, proc.kill)
    timer.start()
    try:
        line = proc.stdout.readline() if proc.stdout else ""
    finally:
        timer.cancel()
    if not line.startswith("ready "):
        proc.kill()
        proc.wait()
        raise DemoError(f"the demo's {module} service did not start (exit status {proc.returncode})")
    return proc, int(line.split()[1])


def _demo_env(home: Path) -> dict[str, str]:
    env = {**os.environ, "ZOOMTRACE_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    env.pop("ZOOMTRACE_SINK", None)
    return env


def _run_to_end(module: str, env: dict[str, str], *args: str, what: str, timeout: float) -> list[str]:
    """Run ``zoomtrace.demo.<module>`` to completion; returns the trace ids it printed (``trace <id> ...``)."""
    done = subprocess.run(
        [sys.executable, "-m", f"zoomtrace.demo.{module}", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise DemoError(f"the demo's {what} failed:\n{done.stderr.strip()}")
    return [line.split()[1] for line in done.stdout.splitlines() if line.startswith("trace ")]


def run_services(home: Path, *, billing_command: list[str] | None = None, orders: int | None = None) -> list[str]:
    """Run the three services to completion; returns the trace ids of the checkouts. ``billing_command``: how
    to run billing instead of ``-m zoomtrace.demo.billing``; ``orders``: place that many plain orders."""
    env = _demo_env(home)
    procs: list[subprocess.Popen[str]] = []
    more = ["--orders", str(orders)] if orders else []
    try:
        billing, billing_port = _start("billing", env, command=billing_command)
        procs.append(billing)
        orders_proc, orders_port = _start("orders", env, "--billing-port", str(billing_port))
        procs.append(orders_proc)
        traces = _run_to_end("gateway", env, "--orders-port", str(orders_port), *more, what="gateway", timeout=60)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return traces


KAFKA_ENV = "kafkademo"


def run_kafka_services(
    home: Path, bootstrap: str, *, store: str | None = None, retention_days: int | None = None
) -> list[str]:
    """Orders -> Kafka -> billing, then a collector into the store (``store``, else the home's); returns the
    orders' trace ids."""
    from zoomtrace.collect.kafka_collector import run_collector

    run = uuid.uuid4().hex[:8]
    env = _demo_env(home)
    traces = _run_to_end("kafka_orders", env, bootstrap, KAFKA_ENV, run, what="Kafka orders service", timeout=90)
    n = str(len(traces))
    _run_to_end("kafka_billing", env, bootstrap, KAFKA_ENV, run, n, what="Kafka billing consumer", timeout=120)
    run_collector(
        bootstrap,
        home,
        group_id=f"zoomtrace-demo-{run}",
        topics_pattern=rf"^{KAFKA_ENV}\..*",
        stats_interval=0,
        idle_exit_s=3.0,
        store_url=store,
        retention_days=retention_days,
    )
    return traces


def run_demo(
    home: Path,
    *,
    json_output: bool = False,
    open_ui: bool = False,
    kafka: str | None = None,
    store: str | None = None,
    retention_days: int | None = None,
) -> int:
    """Run the shop (through Kafka at ``kafka`` if given), then print the story of its most interesting trace
    from ``store`` (a store URL, else ``$ZOOMTRACE_STORE``, else the home's DuckDB file)."""
    from zoomtrace.collect import open_session
    from zoomtrace.read import query
    from zoomtrace.read.changes import changes
    from zoomtrace.read.render import dump_json, print_story
    from zoomtrace.read.render_changes import changes_lines

    home.mkdir(parents=True, exist_ok=True)
    if kafka:
        traces = run_kafka_services(home, kafka, store=store, retention_days=retention_days)
        trace_id = traces[1]
        intro = (
            "Orders published 3 OrderPlaced events to Kafka; billing consumed them in another process. "
            "Here is the story of one order, across producer, broker and consumer:\n"
        )
    else:
        traces = run_services(home)
        intro = (
            f"The demo placed {len(traces)} orders across 3 processes; here is the story of the one whose "
            "payment was declined and retried:\n"
        )
    act_started_ns = time.time_ns()
    commits = None if kafka or json_output else _second_act(home)
    with open_session(home, store=store, create=True, retention_days=retention_days) as session:
        if not kafka:
            declined = [t.trace_id for t in query.traces(session, {"errors_only": True}, limit=500)]
            trace_id = next((t for t in traces if t in declined), traces[-1])
        story = query.story(session, trace_id)
        found = changes(session, service="billing", since_ns=act_started_ns) if commits else None
    if json_output:
        dump_json(story)
        return 0
    print(intro)
    print_story(story)
    store_option = f" --store {resolve_store(home, store).redacted}" if store else ""
    if found is not None and commits is not None:
        print(
            f"\nThen billing ran at two commits of its own repository ({home / 'demo-billing'}): "
            f"{ORDERS} orders at {commits[0][:10]}, {ORDERS} more at {commits[1][:10]}. "
            f"`zoomtrace --home {home}{store_option} changes` finds what changed:\n"
        )
        for line in changes_lines(found):
            print(line)
    print(
        f"\nMore: zoomtrace --home {home}{store_option} traces | nodes | story <trace id> | lineage <record id> "
        "| errors | changes | diff <commit> <commit>"
    )
    from zoomtrace.ui import running_url, trace_url

    if (url := running_url(home, store)) is not None:
        print(f"In the web viewer: {trace_url(url, trace_id)}")
    if open_ui:
        from zoomtrace.ui import serve_and_open

        serve_and_open(home, trace_id, store=store, retention_days=retention_days, code_roots=demo_code_roots(home))
    return 0


def _second_act(home: Path) -> tuple[str, str] | None:
    """Billing at two commits of its own repository (``zoomtrace.demo.commits``); None without git."""
    from zoomtrace.demo.commits import git_available, run_two_commits

    if not git_available():
        print("(git is not installed: the demo leaves out billing at two commits and `zoomtrace changes`)")
        return None
    return run_two_commits(home, lambda command: run_services(home, billing_command=command, orders=ORDERS))


def demo_code_roots(home: Path) -> tuple[str, ...]:
    """What the viewer of the demo may read: the usual code roots, and the demo's own code, which is
    Zoom's -- its git checkout when Zoom runs from one (installed, it is read as installed code)."""
    from zoomtrace.runtime.provenance import find_repo_root
    from zoomtrace.ui.code import resolve_code_roots

    here = Path(__file__).resolve().parent
    installed = any(part in ("site-packages", "dist-packages") for part in here.parts)
    own = None if installed else find_repo_root(str(here))
    return resolve_code_roots(None, home=home) + ((own,) if own else ())
