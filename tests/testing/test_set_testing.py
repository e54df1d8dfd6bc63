"""``asyncreply_client.testing.set_testing``: transient faults are retried without backoff."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import respx

import asyncreply_client.testing
from asyncreply_client import Client, RetryPolicy, TransportError
from asyncreply_client.testing import FakeClock, set_testing

API = "https://api.test"


@pytest.fixture(autouse=True)
def backoff_restored() -> Iterator[None]:
    yield
    set_testing(False)


def submit_through_503s(clock: FakeClock, failures: int) -> int:
    """Submit against a server answering ``failures`` 503s (Retry-After: 30), then a 202."""
    busy = httpx.Response(503, headers={"Retry-After": "30"})
    accepted = httpx.Response(
        202, headers={"Location": "/jobs/1"}, json={"jobId": "1", "status": "pending"}
    )
    with respx.mock(assert_all_called=False) as router:
        route = router.post(f"{API}/jobs").mock(side_effect=[busy] * failures + [accepted])
        with Client(API, clock=clock, retry=RetryPolicy(attempts=3)) as client:
            client.submit("/jobs", json={})
    return route.call_count


def test_it_is_exported() -> None:
    assert "set_testing" in asyncreply_client.testing.__all__


def test_retries_still_happen_but_without_waiting() -> None:
    clock = FakeClock()
    assert submit_through_503s(clock, failures=2) == 3
    assert clock.slept == 60.0  # normal mode: the server's Retry-After is honoured

    set_testing()
    clock = FakeClock()
    assert submit_through_503s(clock, failures=2) == 3
    assert clock.slept == 0.0


def test_the_attempt_budget_is_unchanged() -> None:
    set_testing(True)
    with pytest.raises(TransportError) as info:
        submit_through_503s(FakeClock(), failures=3)
    assert info.value.attempts == 3


def test_as_a_context_manager_it_restores_the_previous_mode() -> None:
    with set_testing():
        clock = FakeClock()
        submit_through_503s(clock, failures=1)
        assert clock.slept == 0.0
        with set_testing(False):
            clock = FakeClock()
            submit_through_503s(clock, failures=1)
            assert clock.slept == 30.0
        clock = FakeClock()
        submit_through_503s(clock, failures=1)
        assert clock.slept == 0.0
    clock = FakeClock()
    submit_through_503s(clock, failures=1)
    assert clock.slept == 30.0
