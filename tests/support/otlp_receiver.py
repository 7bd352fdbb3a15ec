"""A real OTLP receiver (``zoomtrace collect --otlp``) in a child process, for the tests that send to it.

The ``receiver`` fixture (tests/conftest.py) starts one on a free port in the test's home.
"""

from __future__ import annotations

import http.client
import signal
from pathlib import Path

from helpers import Child

RECEIVER = """
import sys

from zoomtrace.cli.main import main

args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
sys.exit(main(["--home", args["--home"], "collect", "--otlp", args["--listen"]]))
"""


class Receiver:
    def __init__(self, tmp: Path, home: Path) -> None:
        script = tmp / "receiver.py"
        script.write_text(RECEIVER)
        self.child = Child(script, home, "--listen", "127.0.0.1:0", "--home", str(home))
        line = self.child.expect("zoomtrace: OTLP receiver listening on")
        self.url = line.split()[0]
        self.port = int(self.url.rsplit(":", 1)[1])

    def post(self, path: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("POST", path, body, {"Content-Type": content_type})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def stop(self) -> None:
        self.child.signal(signal.SIGTERM)
        assert self.child.wait() == 0, self.child.stderr
