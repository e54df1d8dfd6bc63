"""pytest fixtures for code that uses async request-reply APIs (entry point ``asyncreply``).

Installed with the package, the plugin provides two fixtures:

- ``reference_server``: the real reference server (``pip install asyncreply[server]``) on a
  free loopback port, in a background thread, so sync and async tests can both use it. It
  yields a :class:`RunningReferenceServer` (``base_url``, ``admin``, ``config``). Configure it
  per test with ``@pytest.mark.reference_server_config(dialect="status-code", ...)`` (any
  ``ServerConfig`` field, plus ``handlers={...}`` for extra job types) or through indirect
  parametrisation with a dict of the same keywords.
- ``fake_async_api``: a :class:`~asyncreply_client.testing.FakeAsyncAPI` whose respx routes
  intercept every httpx client for the duration of the test. Indirect parametrisation takes
  a dict of ``FakeAsyncAPI`` keywords (``base_url``, ``dialect``).

Example:
    >>> # in a test module
    >>> import httpx, pytest
    >>> @pytest.mark.reference_server_config(dialect="status-code")
    ... def test_status_code_dialect(reference_server):
    ...     answer = httpx.post(f"{reference_server.base_url}/jobs",
    ...                         json={"type": "echo", "input": {}})
    ...     assert answer.status_code == 202
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .testing import FakeAsyncAPI

__all__ = ["RunningReferenceServer", "fake_async_api", "reference_server"]

MARKER = "reference_server_config"


@dataclass(frozen=True)
class RunningReferenceServer:
    """A reference server started for one test.

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


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker (harmless when the project's own configuration declares it)."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**overrides): ServerConfig keyword overrides for the reference_server fixture",
    )


def _server_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    options: dict[str, Any] = {}
    # iter_markers yields the closest marker first; apply the farthest first so that a
    # function's marker overrides its class's and module's.
    for marker in reversed(list(request.node.iter_markers(MARKER))):
        if marker.args:
            raise pytest.UsageError(
                f"@pytest.mark.{MARKER} takes keyword arguments only, got {marker.args!r}"
            )
        options.update(marker.kwargs)
    param = getattr(request, "param", None)
    if param is not None:
        if not isinstance(param, Mapping):
            raise pytest.UsageError(
                "an indirect parameter of the reference_server fixture must be a dict of "
                f"ServerConfig keywords, got {type(param).__name__}"
            )
        options.update(param)
    return options


@pytest.fixture
def reference_server(request: pytest.FixtureRequest) -> Iterator[RunningReferenceServer]:
    """The reference server on a free loopback port, stopped after the test.

    Configure with ``@pytest.mark.reference_server_config(**overrides)`` or an indirect
    parameter (a dict). ``handlers={"name": handler}`` adds job types.
    """
    options = _server_options(request)
    try:
        # Imported here so the plugin loads without the server extra installed.
        from reference_server import ServerConfig, ServerThread
    except ImportError as exc:  # pragma: no cover - depends on the environment
        pytest.fail(f"the reference_server fixture needs `pip install asyncreply[server]`: {exc}")
    handlers = options.pop("handlers", None)
    options.setdefault("host", "127.0.0.1")
    options.setdefault("port", 0)
    options.setdefault("webhook_allow_private", True)  # test receivers listen on loopback
    server_config = ServerConfig(**options)
    with ServerThread(server_config, handlers=handlers) as running:
        yield RunningReferenceServer(
            base_url=str(running.base_url), admin=running.admin, config=server_config
        )


@pytest.fixture
def fake_async_api(request: pytest.FixtureRequest) -> Iterator[FakeAsyncAPI]:
    """A :class:`~asyncreply_client.testing.FakeAsyncAPI` intercepting httpx for the test.

    Declare jobs on it (``fake_async_api.job("/jobs").pending().completed({...})``) and use
    ``fake_async_api.base_url`` and ``clock=fake_async_api.clock`` in the code under test.
    """
    param = getattr(request, "param", None)
    kwargs: dict[str, Any] = {}
    if param is not None:
        if not isinstance(param, Mapping):
            raise pytest.UsageError(
                "an indirect parameter of the fake_async_api fixture must be a dict of "
                f"FakeAsyncAPI keywords, got {type(param).__name__}"
            )
        kwargs.update(param)
    # Imported here: respx (asyncreply[testing]) is only needed when the fixture is used.
    from .testing import FakeAsyncAPI

    api = FakeAsyncAPI(**kwargs)
    with api:
        yield api
