"""A Kafka outage and the broker's return, with a real broker of the test's own (killed and restarted).

What is promised: records written while the broker is up reach Kafka before a normal exit, even in
a process that was idle through an outage; records spooled during an outage are sent before a
normal exit if the broker is back by then.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer

from support.kafka_broker import KafkaBroker
from zoomtrace.wire import kafka_codec
from zoomtrace.wire.spool import read_segment

try:
    import helpers as h
except ImportError:  # tests/ imported as a package
    from tests import helpers as h

pytestmark = pytest.mark.kafka

N = 200

#: Generous timeouts for the flush and close at exit (and for judging an outage), so that a broker slow to
#: answer after its restart on a loaded machine does not fail the test: the promise is bounded by them.
#: No retry of the spool by the helper thread during the test: what reaches Kafka was sent directly, or at exit.
OPTIONS = "zoom.flush_timeout_s=20&zoom.close_timeout_s=20&zoom.spool_after_s=20&zoom.retry_interval_s=600"

# The application: records before the outage and makes sure they are acknowledged; then, at each
# line on stdin, the next step. Its last step writes N records and the program ends at once.
APP = """
    import json, sys
    import zoomtrace as zt

    url, env, mode, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    zt.init("outage", env=env, group="g", sink=url)


    def say(what, **values):
        print(what + " " + json.dumps(values), flush=True)


    for i in range(10):
        zt.log.info("before the outage {i}", i=i)
    say("CONNECTED", flushed=zt.flush(30))
    sys.stdin.readline()
    if mode == "during":  # the broker is down: these go to the Kafka spool
        for i in range(n):
            zt.log.info("during the outage {i}", i=i)
        say("SPOOLED", flushed=zt.flush(30))
    else:  # the broker is back, and the process was idle all along
        for i in range(n):
            zt.log.info("after the outage {i}", i=i)
        say("WRITTEN")
    sys.stdin.readline()
"""


class App:
    """The application in its own process, driven one stdin line at a time."""

    def __init__(self, tmp_path: Path, home: Path, url: str, env: str, mode: str) -> None:
        script = tmp_path / "app.py"
        script.write_text(textwrap.dedent(APP).lstrip("\n"))
        self.proc = subprocess.Popen(
            [sys.executable, str(script), url, env, mode, str(N)],
            cwd=tmp_path,
            env=h.child_env(home),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def expect(self, prefix: str) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the app prints its lines in order; a dead app ends the stream
        assert line.startswith(prefix), f"expected {prefix!r}, got {line!r}; stderr: {self.stderr()}"
        return line[len(prefix) :].strip()

    def step(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def finish(self) -> int:
        """The last step: the program ends at once (a normal exit)."""
        self.step()
        return self.proc.wait(60)

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read() if self.proc.stderr else ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


def spooled(home: Path) -> list[str]:
    """Messages of the log records in the Kafka spool."""
    spool = home / "spool-kafka"
    return [
        r.message or ""
        for path in sorted(spool.glob("*.zspool"))
        for r in read_segment(path).records
        if r.kind == "log"
    ]


def messages_in_kafka(bootstrap: str, env: str, wanted: set[str], timeout_s: float = 60.0) -> set[str]:
    """Read the log topic until every wanted message has been seen (or the time is up); returns those seen."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"check-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([kafka_codec.legal_topic(f"{env}.g.log")])
    seen: set[str] = set()
    deadline = time.monotonic() + timeout_s
    try:
        while not wanted <= seen and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 0.5):
                if msg.error() is None:
                    seen.add(kafka_codec.decode_message(msg).message or "")
    finally:
        consumer.close()
    return seen & wanted


def test_a_process_idle_through_an_outage_sends_its_next_records_to_kafka(
    own_broker: KafkaBroker, tmp_path: Path
) -> None:
    env = f"t{uuid.uuid4().hex[:10]}"
    home = tmp_path / "home"
    url = f"kafka://{own_broker.bootstrap}?{OPTIONS}"
    app = App(tmp_path, home, url, env, "after")
    try:
        assert '"flushed": true' in app.expect("CONNECTED")
        own_broker.kill()  # an outage while the process records nothing
        own_broker.start(reuse=True)  # back: it answers metadata requests again
        app.step()
        app.expect("WRITTEN")
        rc = app.finish()
    finally:
        app.kill()
    stderr = app.stderr()
    assert rc == 0, stderr
    assert "unavailable" not in stderr, f"the records after the outage were judged undeliverable: {stderr}"
    assert spooled(home) == [], "records written while the broker was up were left in the local Kafka spool"
    wanted = {f"after the outage {i}" for i in range(N)}
    assert messages_in_kafka(own_broker.bootstrap, env, wanted) == wanted


def test_records_spooled_during_an_outage_are_sent_at_exit_once_the_broker_is_back(
    own_broker: KafkaBroker, tmp_path: Path
) -> None:
    env = f"t{uuid.uuid4().hex[:10]}"
    home = tmp_path / "home"
    url = f"kafka://{own_broker.bootstrap}?{OPTIONS}"
    app = App(tmp_path, home, url, env, "during")
    try:
        assert '"flushed": true' in app.expect("CONNECTED")
        own_broker.kill()
        app.step()
        app.expect("SPOOLED")
        during = {f"during the outage {i}" for i in range(N)}
        assert set(spooled(home)) == during, "the records written during the outage are not in the Kafka spool"
        own_broker.start(reuse=True)
        rc = app.finish()  # exits at once: the helper thread's next retry would be 10 minutes away
    finally:
        app.kill()
    assert rc == 0, app.stderr()
    assert spooled(home) == [], "the spooled records were left on local disk at exit"
    assert not list((home / "spool-kafka").glob("*.zspool"))
    assert messages_in_kafka(own_broker.bootstrap, env, during) == during
