"""A real Redis server (Debian's ``redis-server``, installed by ``scripts/setup --dev``) for a test.

    server = RedisServer(tmp_path / "redis")
    server.start()          # a free port on 127.0.0.1, no persistence; raises RuntimeError on failure
    server.url              # "redis://127.0.0.1:PORT"
    server.stop()

A server that cannot start raises RuntimeError with its output: tests that need Redis fail, never skip.
"""

from __future__ import annotations

import os
import queue
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

#: redis-server's line once it accepts connections (the same in Redis 5, 6 and 7).
READY = "Ready to accept connections"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _read_lines(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert proc.stdout is not None
    with proc.stdout:
        for line in proc.stdout:
            lines.put(line)
    lines.put(None)


class RedisServer:
    def __init__(self, directory: str | os.PathLike[str], *, start_timeout: float = 30.0) -> None:
        self.dir = Path(directory)
        self.start_timeout = start_timeout
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run scripts/setup --dev (it installs Debian's)")
        self.dir.mkdir(parents=True, exist_ok=True)
        output = ""
        for _ in range(5):  # another process may take the free port before the server binds it
            self.port = free_port()
            ready, output = self._start_once(binary)
            if ready:
                return
        raise RuntimeError(f"redis-server did not start on 127.0.0.1:{self.port}:\n{output}")

    def _start_once(self, binary: str) -> tuple[bool, str]:
        where = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
        no_persistence = ["--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(
            [binary, *where, *no_persistence, "--daemonize", "no", "--logfile", ""],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: queue.Queue[str | None] = queue.Queue()
        # Every line is read, also after the ready line, so that the server never blocks on a full pipe.
        self._reader = threading.Thread(target=_read_lines, args=(self.proc, lines), daemon=True)
        self._reader.start()
        seen: list[str] = []
        deadline = time.monotonic() + self.start_timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:  # the server exited (port taken, bad option)
                self.proc.wait()
                return False, "".join(seen)
            seen.append(line)
            if READY in line:
                return True, "".join(seen)
        self.stop()
        raise RuntimeError(f"redis-server gave no {READY!r} line within {self.start_timeout}s:\n{''.join(seen)}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # redis-server shuts down on SIGTERM (nothing to save: no persistence)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        if self._reader is not None:
            self._reader.join(30)
