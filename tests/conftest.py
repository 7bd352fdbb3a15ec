"""Shared fixtures. Services tests need are real and started here; if one cannot start, the tests fail."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.kafka_broker import SESSIONS_DIR, KafkaBroker, free_port_pair, stop_orphaned_session_brokers
from support.otlp_receiver import Receiver
from support.redis_server import RedisServer


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaBroker]:
    """One real Apache Kafka broker for the session (scripts/kafka-broker); fails loudly if it cannot start.

    It runs on a free port pair in a directory of this session's own (build/kafka/sessions/<pid>), so a
    broker the developer started (on 19092, or anywhere else) is never touched; the brokers of earlier
    sessions that died before stopping theirs are stopped first.
    """
    stop_orphaned_session_brokers()
    broker = KafkaBroker(port=free_port_pair(), data_dir=SESSIONS_DIR / str(os.getpid()))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(broker.dir, ignore_errors=True)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[KafkaBroker]:
    """A broker of this test alone (free ports, own data) to kill and restart at will; a failed start fails."""
    broker = KafkaBroker(port=free_port_pair(), data_dir=tmp_path / "broker")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real Redis server of this test alone (Debian's redis-server, on a free port, no persistence); a failed
    start fails the test."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def zoom_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ZOOMTRACE_HOME for the test and the subprocesses it starts."""
    home = tmp_path / "zoom-home"
    monkeypatch.setenv("ZOOMTRACE_HOME", str(home))
    monkeypatch.delenv("ZOOMTRACE_SINK", raising=False)
    return home


@pytest.fixture(autouse=True)
def _default_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests use the store they name: a ZOOMTRACE_STORE of the developer's shell does not redirect them."""
    monkeypatch.delenv("ZOOMTRACE_STORE", raising=False)


@pytest.fixture(autouse=True)
def _no_zoom_node_leaks() -> Iterator[None]:
    """Tests that start a node in-process get it shut down, so the next test starts clean."""
    yield
    from zoomtrace.runtime import lifecycle

    node = lifecycle.running()
    if node is not None and node.pid == os.getpid():
        lifecycle.shutdown()


@pytest.fixture
def receiver(tmp_path: Path, zoom_home: Path) -> Iterator[Receiver]:
    """A real OTLP receiver (``zoomtrace collect --otlp``) writing to the test's home, stopped after the test."""
    server = Receiver(tmp_path, zoom_home)
    try:
        yield server
    finally:
        if server.child.proc.poll() is None:
            server.stop()


#: Debian's Chromium, which the browser tests drive through Playwright (scripts/setup installs it).
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for a test module's pages; a missing Chromium fails the test (browser tests never skip)."""
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: install it with `apt-get install -y chromium` (never skipped)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
