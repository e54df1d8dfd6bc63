"""Issue 13's testing-kit items: clients wired to the fake's clock, the warning for a client on
the real clock, the session-scoped reference server, ``WebhookResponse.json()``, the kit
without respx, and the docstring examples of the modules this kit and the CLI consist of."""

from __future__ import annotations

import doctest
import importlib
import subprocess
import sys
import warnings
from typing import Any

import httpx
import pytest

from asyncreply_client import AsyncClient, Client
from asyncreply_client.pytest_plugin import RunningReferenceServer
from asyncreply_client.testing import FakeAsyncAPI, RealClockWarning
from asyncreply_client.webhooks import WebhookResponse

pytest_plugins = ["pytester"]


async def _run(client: Client | AsyncClient, **options: Any) -> Any:
    if isinstance(client, AsyncClient):
        async with client:
            return await client.run("/jobs", json={"type": "t"}, mode="poll", **options)
    with client:
        return client.run("/jobs", json={"type": "t"}, mode="poll", **options)


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_clients_made_by_the_fake_use_its_clock_and_transport(kind: str) -> None:
    api = FakeAsyncAPI()  # never activated: the clients get the fake's transport
    api.job().pending(retry_after=10).progress(0.5, retry_after=20).completed({"ok": kind})
    seen: list[str] = []
    client = (
        api.client(on_progress=lambda s: seen.append(s.state.value))
        if kind == "sync"
        else api.async_client(on_progress=lambda s: seen.append(s.state.value))
    )
    assert await _run(client, timeout=600) == {"ok": kind}
    assert api.clock.slept >= 30  # virtual seconds: no real waiting
    assert seen[-1] == "completed"


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_client_on_the_real_clock_gets_a_warning(kind: str) -> None:
    api = FakeAsyncAPI()
    api.job(retry_after=0.3).completed({"ok": True})
    transport = api.transport()
    client: Client | AsyncClient = (
        Client(api.base_url, http_client=httpx.Client(transport=transport))
        if kind == "sync"
        else AsyncClient(api.base_url, http_client=httpx.AsyncClient(transport=transport))
    )
    with pytest.warns(RealClockWarning, match=r"clock=api\.clock"):
        assert await _run(client) == {"ok": True}


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_no_warning_with_the_fake_clock_or_short_hints(kind: str) -> None:
    slow = FakeAsyncAPI()
    slow.job(retry_after=0.3).pending(retry_after=0.5).completed({"ok": True})
    fast = FakeAsyncAPI()
    fast.job(retry_after=0.0).pending(retry_after=0.05).completed({"ok": True})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        faked = slow.client() if kind == "sync" else slow.async_client()
        assert await _run(faked) == {"ok": True}
        real_transport = fast.transport()
        real: Client | AsyncClient = (
            Client(fast.base_url, http_client=httpx.Client(transport=real_transport))
            if kind == "sync"
            else AsyncClient(fast.base_url, http_client=httpx.AsyncClient(transport=real_transport))
        )
        assert await _run(real) == {"ok": True}


def test_session_server_is_shared_and_configurable(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def reference_server_session_config():
            return {"dialect": "status-code", "workers": 3}
        """
    )
    pytester.makepyfile(
        """
        import httpx

        SEEN = []

        def test_one(reference_server_session):
            SEEN.append(reference_server_session.base_url)
            assert reference_server_session.config.dialect == "status-code"
            assert reference_server_session.config.workers == 3
            answer = httpx.post(reference_server_session.url("/jobs"),
                                json={"type": "echo", "input": {}})
            assert answer.status_code == 202

        def test_two(reference_server_session, reference_server):
            # The same server as test_one (and its job); the per-test server is another one.
            assert SEEN == [reference_server_session.base_url]
            assert len(reference_server_session.admin.jobs()) == 1
            assert reference_server.base_url != reference_server_session.base_url
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_session_server_config_must_be_a_dict(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def reference_server_session_config():
            return ["status-code"]
        """
    )
    pytester.makepyfile("def test_it(reference_server_session):\n    pass\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*must return a dict*"])


def test_session_server_in_this_suite(reference_server_session: RunningReferenceServer) -> None:
    with Client(reference_server_session.base_url) as client:
        assert client.run("/jobs", json={"type": "echo", "input": {"s": 1}}, timeout=30) == {"s": 1}


def test_webhook_response_body_is_bytes_with_a_json_helper() -> None:
    answer = WebhookResponse(200, b'{"status": "processed"}')
    assert isinstance(answer.body, bytes)
    assert answer.json() == {"status": "processed"}
    assert WebhookResponse.json.__doc__ and "bytes" in (WebhookResponse.__doc__ or "")


def test_the_kit_loads_without_respx() -> None:
    code = (
        "import sys; sys.modules['respx'] = None\n"
        "import asyncreply_client.pytest_plugin\n"
        "from asyncreply_client.testing import FakeAsyncAPI, FakeClock, set_testing\n"
        "FakeClock().sleep(1)\n"
        "try:\n"
        "    FakeAsyncAPI()\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "asyncreply[testing]" in done.stdout


@pytest.mark.parametrize(
    "module",
    [
        "asyncreply_client.progress",
        "asyncreply_client.testing",
        "asyncreply_client.testing._api",
        "asyncreply_client.testing._clock",
        "asyncreply_client.testing._script",
        "asyncreply_client.cli._exit",
        "asyncreply_client.cli._main",
    ],
)
def test_docstring_examples(module: str) -> None:
    outcome = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert outcome.attempted > 0 and outcome.failed == 0
