"""The pytest plugin, run inside pytest with ``pytester`` (loaded from its entry point)."""

from __future__ import annotations

import httpx
import pytest

from asyncreply_client.testing import FakeAsyncAPI

pytest_plugins = ["pytester"]


def test_fake_async_api_fixture_intercepts_httpx(fake_async_api: FakeAsyncAPI) -> None:
    script = fake_async_api.job().pending(retry_after=0).completed({"ok": True})
    with httpx.Client(base_url=fake_async_api.base_url) as http:
        url = http.post("/jobs", json={}).headers["Location"]
        assert http.get(url).json()["status"] == "pending"
        assert http.get(url, follow_redirects=True).json() == {"ok": True}
    assert len(script.job.polls) == 2


@pytest.mark.parametrize(
    "fake_async_api",
    [{"base_url": "http://fake.local", "dialect": "status-code"}],
    indirect=True,
)
def test_fake_async_api_indirect_parameters(fake_async_api: FakeAsyncAPI) -> None:
    fake_async_api.job().completed({"r": 1})
    assert fake_async_api.base_url == "http://fake.local"
    with httpx.Client() as http:
        url = http.post("http://fake.local/jobs", json={}).headers["Location"]
        assert http.get(url).json() == {"r": 1}


def test_fake_async_api_patching_ends_with_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import httpx, pytest

        def test_one(fake_async_api):
            fake_async_api.job().completed({})
            assert httpx.post(fake_async_api.base_url + "/jobs", json={}).status_code == 202

        def test_two():
            # No fixture: httpx is not patched any more, the fake host does not resolve.
            with pytest.raises(httpx.TransportError):
                httpx.post("https://asyncreply.example.test/jobs", json={}, timeout=2)
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_marker_rejects_positional_arguments(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.reference_server_config("status-code")
        def test_bad(reference_server):
            pass
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*keyword arguments only*"])


def test_indirect_parameter_must_be_a_dict(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("fake_async_api", ["nope"], indirect=True)
        def test_bad(fake_async_api):
            pass

        @pytest.mark.parametrize("reference_server", ["nope"], indirect=True)
        def test_bad_server(reference_server):
            pass
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*must be a dict*"])
