"""Helpers for the CLI tests: run ``asyncreply`` through its real entry point in a subprocess.

The server runs in-process (the ``reference_server`` fixture of our own pytest plugin, in a
thread); the CLI runs as ``python -m asyncreply_client.cli`` with stdout and stderr as pipes,
which is the non-terminal case.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

CLI_TIMEOUT = 45


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class Cli:
    """Runs the command line in a subprocess with a clean environment."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.command = [sys.executable, "-m", "asyncreply_client.cli"]

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ASYNCREPLY_", "PYTEST_"))}
        env.update(extra or {})
        return env

    def __call__(
        self,
        *args: str,
        input: str | bytes | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Result:
        completed = subprocess.run(
            [*self.command, *args],
            input=input.encode() if isinstance(input, str) else input,
            capture_output=True,
            env=self.env(env),
            cwd=self.cwd,
            timeout=CLI_TIMEOUT,
            check=False,
        )
        return Result(
            completed.returncode,
            completed.stdout.decode("utf-8", "replace"),
            completed.stderr.decode("utf-8", "replace"),
        )


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


class _BrokenHandler(BaseHTTPRequestHandler):
    """Accepts submissions with a 202 that has no status monitor (no Location, no body URL)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self._answer(202, b'{"accepted": true}')

    def do_GET(self) -> None:
        self._answer(200, b"<html>not a status document</html>", "text/html")


@pytest.fixture
def broken_server() -> Iterator[str]:
    """A server that breaks the protocol; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BrokenHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
