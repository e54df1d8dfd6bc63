"""A real ``redis-server`` for the tests that need one: started on a free loopback port in a
temporary directory, stopped by its PID.

No fake Redis stands in for it: the several-instance server tests and the webhook dedupe store
run against the real thing. Where the binary is missing the tests that need it skip with one
line saying how to install it (``.ci/run`` installs it, so CI always runs them).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["SKIP_REASON", "RedisServer", "redis_server_binary"]

SKIP_REASON = "redis-server not installed (apt-get install redis-server)"


def redis_server_binary() -> str | None:
    """The ``redis-server`` executable, or ``None`` when it is not installed."""
    return shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1.

    Example:
        >>> server = RedisServer.start()  # doctest: +SKIP
        >>> server.url  # doctest: +SKIP
        'redis://127.0.0.1:41234/0'
        >>> server.stop()  # doctest: +SKIP
    """

    def __init__(
        self, process: subprocess.Popen[bytes], port: int, directory: Path, *, aof: bool
    ) -> None:
        self.process = process
        self.port = port
        self.directory = directory
        self.aof = aof

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def url_for(self, db: int) -> str:
        """The URL of database ``db`` on this server."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    @classmethod
    def start(
        cls, *, port: int | None = None, directory: Path | None = None, aof: bool = False
    ) -> RedisServer:
        """Start a server (no persistence unless ``aof``) and wait until it answers PING."""
        binary = redis_server_binary()
        if binary is None:
            raise RuntimeError(SKIP_REASON)
        port = port or _free_port()
        directory = directory or Path(tempfile.mkdtemp(prefix="asyncreply-redis-"))
        args = [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(directory),
            "--save",
            "",
            "--appendonly",
            "yes" if aof else "no",
            "--appendfsync",
            "always",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--loglevel",
            "warning",
            "--logfile",
            str(directory / "redis.log"),
        ]
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        server = cls(process, port, directory, aof=aof)
        server._wait_ready()
        return server

    def _wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")
                raise RuntimeError(f"redis-server exited with {self.process.returncode}: {log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} in {timeout} s")

    def restart(self) -> None:
        """Stop (SIGTERM, which writes the AOF) and start again on the same port and directory."""
        self.stop(remove=False)
        fresh = RedisServer.start(port=self.port, directory=self.directory, aof=self.aof)
        self.process = fresh.process

    def kill(self) -> None:
        """SIGKILL the server (a crash), leaving its directory in place."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, *, remove: bool = True) -> None:
        """Stop the server by its PID; remove its directory unless ``remove=False``."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if remove:
            shutil.rmtree(self.directory, ignore_errors=True)
