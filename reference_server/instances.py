"""``--instances N``: N server processes on one port (``SO_REUSEPORT``), sharing a Redis store.

The supervisor starts N children (``python -m reference_server`` with the same flags plus
``--port P --instances 1 --reuse-port``), prints one ``listening on`` line once all of them
listen, replaces a child that dies (``kill -9`` of one instance: the others go on serving,
and the replacement resumes its pending webhook deliveries; its running jobs are recovered
when their leases lapse), and stops them all on SIGINT or SIGTERM. The kernel spreads new
connections over the children.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence

from .config import ServerConfig

__all__ = ["Supervisor", "supervise"]


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class Supervisor:
    """Runs and replaces the child processes of one ``--instances N`` server.

    Args:
        config: the parsed configuration (``instances``, ``host``, ``port``).
        argv: the command line the children get (plus their port and ``--reuse-port``).
    """

    def __init__(self, config: ServerConfig, argv: Sequence[str]) -> None:
        self.config = config
        self.port = config.port or _free_port(config.host)
        self.argv = [
            *argv,
            "--port",
            str(self.port),
            "--instances",
            "1",
            "--reuse-port",
        ]
        self.children: list[subprocess.Popen[str]] = []
        self.stopping = threading.Event()

    @property
    def base_url(self) -> str:
        """The one address of every instance."""
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"http://{host}:{self.port}"

    def spawn(self) -> subprocess.Popen[str]:
        """Start one child (:meth:`listening` waits for it)."""
        return subprocess.Popen(
            [sys.executable, "-m", "reference_server", *self.argv],
            stdout=subprocess.PIPE,
            text=True,
        )

    @staticmethod
    def listening(child: subprocess.Popen[str]) -> subprocess.Popen[str]:
        """Wait until ``child`` listens.

        Raises:
            RuntimeError: it exited instead.
        """
        assert child.stdout is not None
        line = child.stdout.readline()
        if "listening on " not in line:
            child.wait()
            raise RuntimeError(f"an instance did not start (exit {child.returncode})")
        return child

    def run(self) -> int:
        """Start the children, keep them running until a stop signal; 0 once stopped."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stopping.set())
        try:
            self.children = [self.spawn() for _ in range(self.config.instances)]
            for child in self.children:  # started together, so waited for together
                self.listening(child)
            print(f"{self.config.instances} instances share the port", file=sys.stderr)
            print(f"asyncreply reference server listening on {self.base_url}", flush=True)
            while not self.stopping.wait(0.2):
                for i, child in enumerate(self.children):
                    if child.poll() is not None and not self.stopping.is_set():
                        print(f"instance {child.pid} exited ({child.returncode}): replaced",
                              file=sys.stderr, flush=True)  # fmt: skip
                        self._close(child)
                        self.children[i] = self.listening(self.spawn())
        finally:
            self.stop()
        print("asyncreply reference server stopped", flush=True)
        return 0

    def stop(self) -> None:
        """Stop every child (SIGTERM, then SIGKILL after 10 s)."""
        for child in self.children:
            if child.poll() is None:
                child.terminate()
        for child in self.children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            self._close(child)

    @staticmethod
    def _close(child: subprocess.Popen[str]) -> None:
        if child.stdout is not None:
            with contextlib.suppress(OSError):
                child.stdout.close()


def supervise(config: ServerConfig, argv: Sequence[str]) -> int:
    """Run ``config.instances`` server processes on one port until SIGINT/SIGTERM."""
    return Supervisor(config, argv).run()
