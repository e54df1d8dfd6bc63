"""The pure retry decisions: which answers are transient, and how long to back off."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from asyncreply_client import ReferenceDialect, RetryPolicy, StatusCodeDialect
from asyncreply_client._http import HttpResponse
from asyncreply_client._retry import (
    TransientAnswer,
    backoff,
    is_transient_exception,
    is_transient_response,
    retrying_kwargs,
    set_testing,
)


def answer(status: int, body: object = None, **headers: str) -> HttpResponse:
    content = b"" if body is None else json.dumps(body).encode()
    hdrs = httpx.Headers(headers)
    if body is not None:
        hdrs["content-type"] = "application/json"
    return HttpResponse(status, hdrs, content, "http://h/jobs/1")


FAILED_JOB = {"jobId": "1", "state": "failed", "error": {"code": "boom"}}


@pytest.mark.parametrize(
    ("response", "dialect", "transient"),
    [
        (answer(429), ReferenceDialect(), True),
        (answer(502), ReferenceDialect(), True),
        (answer(503), StatusCodeDialect(), True),
        (answer(504), ReferenceDialect(), True),
        (answer(500, {"error": {"code": "internal_error"}}), ReferenceDialect(), True),
        (answer(500, FAILED_JOB), StatusCodeDialect(), False),  # a failed job, not a fault
        (answer(501), ReferenceDialect(), False),
        (answer(404), ReferenceDialect(), False),
        (answer(200, {"status": "pending"}), ReferenceDialect(), False),
    ],
)
def test_transient_answers(response: HttpResponse, dialect: object, transient: bool) -> None:
    assert is_transient_response(response, dialect) is transient  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (httpx.ConnectError("refused"), True),
        (httpx.ReadTimeout("slow"), True),
        (httpx.RemoteProtocolError("eof"), True),
        (httpx.UnsupportedProtocol("ftp"), False),
        (httpx.LocalProtocolError("bad"), False),
        (TransientAnswer(answer(503)), True),
        (ValueError("x"), False),
    ],
)
def test_transient_exceptions(error: BaseException, transient: bool) -> None:
    assert is_transient_exception(error) is transient


def test_backoff_is_full_jitter_under_an_exponential_ceiling() -> None:
    policy = RetryPolicy(initial=0.1, factor=2.0, cap=1.0)
    for attempt, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        for _ in range(50):
            assert 0.0 <= backoff(policy, attempt) <= ceiling
    exact = RetryPolicy(initial=0.1, factor=3.0, cap=10.0, jitter=False)
    assert [backoff(exact, n) for n in (1, 2, 3)] == pytest.approx([0.1, 0.3, 0.9])


def test_the_servers_retry_after_wins_but_is_capped() -> None:
    policy = RetryPolicy(max_retry_after=5.0)
    assert backoff(policy, 1, retry_after=2.0) == 2.0
    assert backoff(policy, 1, retry_after=0.0) == 0.0
    assert backoff(policy, 1, retry_after=3600.0) == 5.0


@pytest.fixture
def testing_mode() -> Iterator[None]:
    set_testing(True)
    yield
    set_testing(False)


def test_testing_mode_removes_backoff(testing_mode: None) -> None:
    assert backoff(RetryPolicy(jitter=False), 3) == 0.0
    assert backoff(RetryPolicy(), 1, retry_after=10.0) == 0.0


def test_one_kwargs_dict_and_no_retry_means_one_attempt() -> None:
    import tenacity

    kwargs = retrying_kwargs(RetryPolicy(attempts=5), retry=False)
    calls = 0
    with pytest.raises(httpx.ConnectError):
        for attempt in tenacity.Retrying(sleep=lambda s: None, **kwargs):
            with attempt:
                calls += 1
                raise httpx.ConnectError("refused")
    assert calls == 1


@pytest.mark.parametrize(
    "kwargs",
    [{"attempts": 0}, {"initial": -1.0}, {"factor": 0.5}, {"cap": -1.0}, {"max_retry_after": -1}],
)
def test_bad_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
