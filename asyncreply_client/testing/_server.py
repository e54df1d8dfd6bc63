"""Plugin support: the real reference server on a free loopback port, in a background thread,
as the pytest plugin's ``reference_server`` (per test) and ``reference_server_session``
(per session) fixtures start it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["RunningReferenceServer", "ServerUnavailable", "running_reference_server"]


class ServerUnavailable(RuntimeError):
    """The reference server cannot start: ``asyncreply[server]`` is not installed."""


@dataclass(frozen=True)
class RunningReferenceServer:
    """A reference server started for a test or a test session.

    Attributes:
        base_url: its root URL (``http://127.0.0.1:<port>``).
        admin: the server's admin handle (jobs, webhook deliveries, fault settings, request
            counters).
        config: the ``reference_server.ServerConfig`` it runs with.
    """

    base_url: str
    admin: Any
    config: Any

    def url(self, path: str) -> str:
        """Return the absolute URL of ``path`` on this server (``url("/jobs")``)."""
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")


@contextlib.contextmanager
def running_reference_server(options: Mapping[str, Any]) -> Iterator[RunningReferenceServer]:
    """Run the reference server with ``options`` (``ServerConfig`` keywords, plus
    ``handlers={name: handler}`` for extra job types) until the block ends.

    The host defaults to ``127.0.0.1`` and the port to a free one.

    Raises:
        ServerUnavailable: the ``server`` extra is not installed.
    """
    settings = dict(options)
    try:
        # Imported here so that the testing kit loads without the server extra installed.
        from reference_server import ServerConfig, ServerThread
    except ImportError as exc:
        raise ServerUnavailable(
            f"the reference server needs `pip install asyncreply[server]`: {exc}"
        ) from exc
    handlers = settings.pop("handlers", None)
    settings.setdefault("host", "127.0.0.1")
    settings.setdefault("port", 0)
    settings.setdefault("webhook_allow_private", True)  # test receivers listen on loopback
    server_config = ServerConfig(**settings)
    with ServerThread(server_config, handlers=handlers) as running:
        yield RunningReferenceServer(
            base_url=str(running.base_url), admin=running.admin, config=server_config
        )
