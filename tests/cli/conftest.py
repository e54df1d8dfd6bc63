"""Helpers for the CLI tests: run ``asyncreply`` through its real entry point in a process of
its own.

The server runs in-process (the ``reference_server`` fixture of our own pytest plugin, in a
thread); the CLI runs as ``python -m asyncreply_client.cli`` with stdout and stderr as pipes,
which is the non-terminal case: a fork of a zygote that imported the CLI once
(``tests/forked.py``), or a fresh interpreter (``Cli.command``) where a test needs one.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.forked import Zygote

CLI_TIMEOUT = 45


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without ``ASYNCREPLY_*`` and ``PYTEST_*``, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASYNCREPLY_", "PYTEST_"))}
    env.update(extra or {})
    return env


class Cli:
    """Runs the command line in a process of its own with a clean environment: a fork of
    the session's zygote (``tests/forked.py``: the CLI imported once), or, for a test that
    needs an interpreter started for it, ``command`` (``python -m asyncreply_client.cli``)."""

    def __init__(self, cwd: Path, zygote: Zygote) -> None:
        self.cwd = cwd
        self.command = [sys.executable, "-m", "asyncreply_client.cli"]
        self._zygote = zygote

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return clean_env(extra)

    def __call__(
        self,
        *args: str,
        input: str | bytes | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Result:
        code, stdout, stderr = self._zygote.run_module(
            "asyncreply_client.cli",
            args,
            input=input.encode() if isinstance(input, str) else input,
            env=self.env(env),
            cwd=self.cwd,
            timeout=CLI_TIMEOUT,
        )
        return Result(code, stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace"))


@pytest.fixture(scope="session")
def cli_zygote() -> Iterator[Zygote]:
    """The session's CLI zygote (started once: the CLI's imports are paid once)."""
    zygote = Zygote(["asyncreply_client.cli._main"], clean_env())
    try:
        yield zygote
    finally:
        zygote.close()


@pytest.fixture
def cli(tmp_path: Path, cli_zygote: Zygote) -> Cli:
    return Cli(tmp_path, cli_zygote)


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
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
