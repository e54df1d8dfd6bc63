"""The ``reference_server`` fixture: a real server on loopback, configured per test."""

from __future__ import annotations

import httpx
import pytest

from asyncreply_client.pytest_plugin import RunningReferenceServer

pytestmark = pytest.mark.reference_server_config(dialect="status-code", workers=2)


def _run_echo(base_url: str) -> httpx.Response:
    with httpx.Client(base_url=base_url, timeout=10) as http:
        submitted = http.post("/jobs", json={"type": "echo", "input": {"n": 1}})
        assert submitted.status_code == 202
        location = submitted.headers["Location"]
        for _ in range(200):
            answer = http.get(location, params={"wait": "2"})
            if answer.status_code != 202:
                return answer
        raise AssertionError("the echo job never finished")


def test_module_marker_applies(reference_server: RunningReferenceServer) -> None:
    assert reference_server.base_url.startswith("http://127.0.0.1:")
    assert reference_server.config.dialect == "status-code"
    assert reference_server.config.workers == 2
    answer = _run_echo(reference_server.base_url)
    assert answer.status_code == 200 and answer.json() == {"n": 1}
    assert len(reference_server.admin.jobs()) == 1


@pytest.mark.reference_server_config(dialect="reference", completion_style="inline")
def test_function_marker_overrides_module_marker(
    reference_server: RunningReferenceServer,
) -> None:
    assert reference_server.config.workers == 2  # from the module marker
    answer = _run_echo(reference_server.url("/"))
    assert answer.status_code == 200
    assert answer.json()["status"] == "completed" and answer.json()["result"] == {"n": 1}


@pytest.mark.parametrize(
    "reference_server", [{"dialect": "reference", "workers": 3}], indirect=True
)
def test_indirect_parameter_overrides_markers(reference_server: RunningReferenceServer) -> None:
    assert reference_server.config.workers == 3
    assert _run_echo(reference_server.base_url).status_code == 303


def test_async_test_with_custom_handler(pytester: pytest.Pytester) -> None:
    # Custom job types through ``handlers=``: a pydantic model for the input is required by
    # the server, so this runs as its own small test file.
    pytester.makepyfile(
        """
        import httpx, pytest
        from pydantic import BaseModel
        from reference_server import JobType

        class In(BaseModel):
            n: int

        async def double(ctx, input):
            return {"doubled": input.n * 2}

        @pytest.mark.reference_server_config(handlers={"double": JobType(run=double, model=In)})
        @pytest.mark.anyio
        async def test_double(reference_server):
            async with httpx.AsyncClient(base_url=reference_server.base_url) as http:
                submitted = await http.post("/jobs", json={"type": "double", "input": {"n": 21}})
                assert submitted.status_code == 202
                url = submitted.headers["Location"]
                for _ in range(100):
                    answer = await http.get(url, params={"wait": "2"}, follow_redirects=True)
                    if "doubled" in answer.json():
                        break
            assert answer.json() == {"doubled": 42}

        @pytest.fixture
        def anyio_backend():
            return "asyncio"
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_admin_fault_settings_reach_the_server(reference_server: RunningReferenceServer) -> None:
    reference_server.admin.set_faults(p_503=1.0, retry_after=0)
    with httpx.Client(base_url=reference_server.base_url) as http:
        answer = http.post("/jobs", json={"type": "echo", "input": {}})
    assert answer.status_code == 503
    assert reference_server.admin.request_count >= 1
