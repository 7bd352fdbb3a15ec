"""Drive a real single-node Apache Kafka broker (scripts/kafka-broker) from tests.

    broker = KafkaBroker()          # port $KAFKA_PORT or 19092 (the test session's: a free port, see conftest)
    broker.start()                  # fresh, empty broker; raises RuntimeError on failure
    broker.bootstrap                # "127.0.0.1:19092"
    broker.kill()                   # SIGKILL: a crash/outage; data stays on disk
    broker.restart()                # same port, same data: topics and messages survive
    broker.stop()                   # clean stop, data deleted

A start that fails raises RuntimeError carrying the script's output (with the tail
of the broker log): tests that need Kafka fail loudly, they never skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "kafka-broker"
DEFAULT_PORT = 19092
#: Where test sessions run their brokers: one directory per session, named by the session's pid.
SESSIONS_DIR = REPO / "build" / "kafka" / "sessions"


class KafkaBroker:
    def __init__(
        self,
        port: int | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        controller_port: int | None = None,
        start_timeout: float = 90.0,
        script: str | os.PathLike[str] = SCRIPT,
    ) -> None:
        self.port = int(port if port is not None else os.environ.get("KAFKA_PORT", DEFAULT_PORT))
        self.controller_port = controller_port
        self.dir = Path(data_dir) if data_dir is not None else REPO / "build" / "kafka" / f"run-{self.port}"
        self.start_timeout = start_timeout
        self.script = Path(script)
        self.running = False

    # ------------------------------------------------------------------ API
    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.dir / "broker.log"

    @property
    def pid(self) -> int | None:
        try:
            return int((self.dir / "broker.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def start(self, *, reuse: bool = False) -> str:
        """Start the broker and wait until it answers metadata requests.

        reuse=False formats a fresh, empty log dir; reuse=True keeps the data
        left by stop(keep=True) or kill(). Returns the bootstrap address.
        """
        args = ["start", "--timeout", str(self.start_timeout)]
        if reuse:
            args.append("--reuse")
        if self.controller_port is not None:
            args += ["--controller-port", str(self.controller_port)]
        out = self._run(args, timeout=self.start_timeout + 120)  # + a first jar download
        if out.returncode != 0:
            raise RuntimeError(
                f"Kafka broker failed to start on {self.bootstrap} (exit {out.returncode}):\n{out.stdout}{out.stderr}"
            )
        self.running = True
        return self.bootstrap

    def stop(self, *, keep: bool = False) -> None:
        """SIGTERM (then SIGKILL after 30 s); deletes the data unless keep=True."""
        self._check(self._run(["stop"] + (["--keep"] if keep else []), timeout=90), "stop")
        self.running = False

    def kill(self) -> None:
        """SIGKILL the broker at once (outage/crash); its data stays on disk. Returns once its port refuses
        connections: the kernel tears a killed process's listening socket down a moment after the process."""
        self._check(self._run(["stop", "--now", "--keep"], timeout=60), "kill")
        self.running = False
        deadline = time.monotonic() + 30
        while self._accepts():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.bootstrap} still accepts connections 30 s after the broker was killed")
            time.sleep(0.05)

    def _accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def restart(self) -> str:
        """Stop (if running) keeping the data, then start again on the same port and data."""
        self.stop(keep=True)
        return self.start(reuse=True)

    def is_running(self) -> bool:
        return self._run(["status"], timeout=30).returncode == 0

    def __enter__(self) -> KafkaBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------- helpers
    def _run(self, args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.script), *args, "--port", str(self.port), "--dir", str(self.dir)]
        env = dict(os.environ)
        env.pop("KAFKA_PORT", None)  # --port is explicit
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)

    def _check(self, out: subprocess.CompletedProcess[str], what: str) -> None:
        if out.returncode != 0:
            raise RuntimeError(f"kafka-broker {what} failed (exit {out.returncode}):\n{out.stdout}{out.stderr}")


def stop_orphaned_session_brokers() -> None:
    """Stop the brokers of earlier test sessions whose process is gone (killed before their teardown)."""
    if not SESSIONS_DIR.is_dir():
        return
    for directory in SESSIONS_DIR.iterdir():
        if not directory.name.isdigit() or _alive(int(directory.name)):
            continue
        port = directory / "port"
        broker = KafkaBroker(port=int(port.read_text()) if port.is_file() else None, data_dir=directory)
        if broker.pid is not None:
            broker.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def free_port_pair() -> int:
    """A port P with P+1 also free (the broker's controller listens on P+1)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a Kafka broker")
