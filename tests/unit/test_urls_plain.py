"""The string fast path of ``resolve_url`` gives exactly what parsing gives (httpx's join),
for plain URLs and for everything near them; and it spares the parses it exists for."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from asyncreply_client import _urls
from asyncreply_client._urls import is_plain_url, resolve_url

ORIGINS = [
    "http://127.0.0.1:8080",
    "https://api.example.test",
    "http://h:80",
    "http://H",
    "https://h:0443",
    "http://[::1]:9000",
    "http://999.1.1.1",
    "http://xn--zz",
    "http://a_b",
    "HTTP://h",
    "ftp://h",
    "http://user@h",
    "http://h.",
]
CHARS = "abcAZ09-._~/?#=&%: @+!$'()*,;[]é"

paths = st.text(alphabet=CHARS, max_size=24)


def _slow(base: str, ref: str) -> str | None:
    """resolve_url without its fast path: parse, join, check."""
    cleaned = ref.strip()
    if not cleaned:
        return None
    return _urls._resolve(base, cleaned)


@settings(max_examples=600, deadline=None)
@given(origin=st.sampled_from(ORIGINS), base_path=paths, ref=paths)
@example(origin="http://h:8080", base_path="/jobs/1?wait=20", ref="/jobs/1/result")
@example(origin="http://h", base_path="/a", ref="/b/./c")
@example(origin="http://h", base_path="/a", ref="//evil.test/x")
@example(origin="http://h", base_path="/a", ref="/x?")
def test_absolute_path_refs_resolve_as_httpx_does(origin: str, base_path: str, ref: str) -> None:
    base = origin + base_path
    assert resolve_url(base, "/" + ref) == _slow(base, "/" + ref)
    assert resolve_url(base, ref) == _slow(base, ref)


@settings(max_examples=400, deadline=None)
@given(origin=st.sampled_from(ORIGINS), other=st.sampled_from(ORIGINS), path=paths)
def test_absolute_refs_resolve_as_httpx_does(origin: str, other: str, path: str) -> None:
    base = origin + "/jobs"
    ref = other + "/" + path
    assert resolve_url(base, ref) == _slow(base, ref)
    if is_plain_url(ref):  # plain means: httpx renders it unchanged
        assert str(httpx.URL(ref)) == ref


@pytest.mark.parametrize(
    ("url", "plain"),
    [
        ("http://127.0.0.1:8080/jobs/abc", True),
        ("https://api.example.test/api/v1/jobs/1?api-version=2024-01-01", True),
        ("http://[::1]:9000/x", True),
        ("http://h:80/jobs", False),  # httpx drops the default port
        ("HTTP://h/jobs", False),
        ("http://h/a/../b", False),
        ("http://h/a b", False),
        ("http://h", False),
        ("/jobs", False),
    ],
)
def test_is_plain_url(url: str, plain: bool) -> None:
    assert is_plain_url(url) is plain


def test_the_fast_path_parses_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    resolve_url("http://h:8080/jobs/warm", "/jobs/warm")  # the origin check is memoised
    calls: list[str] = []
    real = httpx.URL.__init__

    def counting(self: httpx.URL, *args: object, **kwargs: object) -> None:
        calls.append(str(args[:1]))
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(httpx.URL, "__init__", counting)
    for i in range(50):
        base = f"http://h:8080/jobs/{i}?wait=20"
        assert resolve_url(base, f"/jobs/{i}/result") == f"http://h:8080/jobs/{i}/result"
        assert resolve_url(base, f"http://h:8080/jobs/{i}/events") is not None
    assert calls == []


def test_a_host_that_is_not_valid_idna_is_no_url_rather_than_a_crash() -> None:
    # httpx.URL("http://xn--zz/") parses, but its .host raises UnicodeError.
    assert _urls.origin_of("http://xn--zz/x") is None
    assert not _urls.is_http_url("http://xn--zz/x")
    assert resolve_url("http://h/jobs", "http://xn--zz/x") is None
    assert resolve_url("http://xn--zz/jobs", "/x") is None
