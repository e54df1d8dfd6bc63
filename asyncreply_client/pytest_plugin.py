"""pytest fixtures for code that uses async request-reply APIs (entry point ``asyncreply``).

Installed with the package, the plugin provides three fixtures:

- ``reference_server``: the real reference server (``pip install asyncreply[server]``) on a
  free loopback port, in a background thread, so sync and async tests can both use it; a
  fresh one for each test. It yields a :class:`RunningReferenceServer` (``base_url``,
  ``admin``, ``config``). Configure it per test with
  ``@pytest.mark.reference_server_config(dialect="status-code", ...)`` (any ``ServerConfig``
  field, plus ``handlers={...}`` for extra job types) or through indirect parametrisation with
  a dict of the same keywords.
- ``reference_server_session``: one reference server for the whole session (started on first
  use), for suites where a server per test costs too much. Its jobs are shared: tests must not
  assume an empty server. Configure it by overriding the session-scoped
  ``reference_server_session_config`` fixture (a dict of the same keywords) in a
  ``conftest.py``.
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
    >>> # in a conftest.py: the session server's configuration
    >>> @pytest.fixture(scope="session")
    ... def reference_server_session_config():
    ...     return {"dialect": "status-code", "workers": 8}
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from .testing._server import RunningReferenceServer, ServerUnavailable, running_reference_server

if TYPE_CHECKING:
    from .testing import FakeAsyncAPI

__all__ = [
    "RunningReferenceServer",
    "fake_async_api",
    "reference_server",
    "reference_server_session",
    "reference_server_session_config",
]

MARKER = "reference_server_config"


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker (harmless when the project's own configuration declares it)."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**overrides): ServerConfig keyword overrides for the reference_server fixture",
    )


def _dict_param(request: pytest.FixtureRequest, fixture: str, what: str) -> dict[str, Any]:
    param = getattr(request, "param", None)
    if param is None:
        return {}
    if not isinstance(param, Mapping):
        raise pytest.UsageError(
            f"an indirect parameter of the {fixture} fixture must be a dict of {what} "
            f"keywords, got {type(param).__name__}"
        )
    return dict(param)


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
    options.update(_dict_param(request, "reference_server", "ServerConfig"))
    return options


def _serve(options: Mapping[str, Any]) -> Iterator[RunningReferenceServer]:
    try:
        with running_reference_server(options) as running:
            yield running
    except ServerUnavailable as exc:  # pragma: no cover - depends on the environment
        pytest.fail(str(exc))


@pytest.fixture
def reference_server(request: pytest.FixtureRequest) -> Iterator[RunningReferenceServer]:
    """The reference server on a free loopback port, stopped after the test.

    Configure with ``@pytest.mark.reference_server_config(**overrides)`` or an indirect
    parameter (a dict). ``handlers={"name": handler}`` adds job types.
    """
    yield from _serve(_server_options(request))


@pytest.fixture(scope="session")
def reference_server_session_config() -> dict[str, Any]:
    """``ServerConfig`` keywords of ``reference_server_session``; override it in a conftest."""
    return {}


@pytest.fixture(scope="session")
def reference_server_session(
    reference_server_session_config: Mapping[str, Any],
) -> Iterator[RunningReferenceServer]:
    """One reference server shared by every test of the session (started on first use).

    Markers do not apply to it (it outlives any one test): override
    ``reference_server_session_config`` instead. Jobs accumulate across tests.
    """
    if not isinstance(reference_server_session_config, Mapping):
        raise pytest.UsageError(
            "reference_server_session_config must return a dict of ServerConfig keywords, got "
            f"{type(reference_server_session_config).__name__}"
        )
    yield from _serve(reference_server_session_config)


@pytest.fixture
def fake_async_api(request: pytest.FixtureRequest) -> Iterator[FakeAsyncAPI]:
    """A :class:`~asyncreply_client.testing.FakeAsyncAPI` intercepting httpx for the test.

    Declare jobs on it (``fake_async_api.job("/jobs").pending().completed({...})``) and use
    ``fake_async_api.client()`` (or ``fake_async_api.base_url`` with
    ``clock=fake_async_api.clock``) in the code under test.
    """
    kwargs = _dict_param(request, "fake_async_api", "FakeAsyncAPI")
    # Imported here: respx (asyncreply[testing]) is only needed when the fixture is used.
    from .testing import FakeAsyncAPI

    api = FakeAsyncAPI(**kwargs)
    with api:
        yield api
