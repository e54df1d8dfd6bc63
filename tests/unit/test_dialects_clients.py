"""Dialect behaviours seen through both clients (respx, no sockets): names accepted at
construction, vendor shapes end to end, and the errors a user can act on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from asyncreply_client import (
    Adaptive,
    ArmDialect,
    AsyncClient,
    AuthenticationError,
    Client,
    FixedInterval,
    JobExpiredError,
    JobFailedError,
    JobNotFoundError,
    JobState,
    JobStatus,
    LongPolling,
    PermissionDeniedError,
    PollObservation,
    ProtocolError,
    ReferenceDialect,
    RequestRejectedError,
    RetryPolicy,
    SubmissionRejectedError,
    TransportError,
)
from asyncreply_client.dialects import DIALECT_NAMES
from asyncreply_client.testing import FakeClock
from tests.client.harness import BOTH, open_client

API = "https://api.test"


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


def options(**extra: Any) -> dict[str, Any]:
    return {"clock": FakeClock(), "polling": FixedInterval(1.0), **extra}


# --------------------------------------------------------------------------------------------
# Dialects by name


@pytest.mark.parametrize("client_type", [Client, AsyncClient])
@pytest.mark.parametrize("name", DIALECT_NAMES)
def test_every_dialect_name_is_accepted_at_construction(client_type: Any, name: str) -> None:
    client = client_type(API, dialect=name, http_client=_http(client_type))
    assert client.dialect.name == name
    assert (
        *("auto", "reference", "status-code", "microsoft", "google", "arm"),
        *("replicate", "fal", "runpod", "openai-batch", "assemblyai"),
    ) == DIALECT_NAMES


@pytest.mark.parametrize("client_type", [Client, AsyncClient])
def test_names_ignore_case_and_blanks_and_objects_pass_through(client_type: Any) -> None:
    assert client_type(API, dialect=" ARM ", http_client=_http(client_type)).dialect.name == "arm"
    mine = ArmDialect()
    assert client_type(API, dialect=mine, http_client=_http(client_type)).dialect is mine
    assert client_type(API, http_client=_http(client_type)).dialect.name == "auto"


@pytest.mark.parametrize("client_type", [Client, AsyncClient])
@pytest.mark.parametrize(
    ("value", "error", "words"),
    [
        ("no-such", ValueError, "unknown dialect 'no-such'"),
        ("", ValueError, "expected one of auto, reference, status-code, microsoft, google, arm"),
        (42, TypeError, "got int"),
        (ReferenceDialect, TypeError, "got type"),
        (object(), TypeError, "Dialect object"),
    ],
)
def test_a_bad_dialect_fails_at_construction(
    client_type: Any, value: object, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        client_type(API, dialect=value, http_client=_http(client_type))


def _http(client_type: Any) -> Any:
    # A user-owned httpx client that is never used: constructing ours opens nothing.
    return httpx.Client() if client_type is Client else httpx.AsyncClient()


# --------------------------------------------------------------------------------------------
# Vendor shapes end to end


def accepted(location: str, **headers: str) -> httpx.Response:
    return httpx.Response(
        202,
        headers={"Location": location, "Retry-After": "0", **headers},
        json={"jobId": "1", "status": "pending"},
    )


@pytest.mark.anyio
@BOTH
async def test_a_status_poll_that_is_not_valid_json_says_so(
    flavor: str, router: respx.MockRouter
) -> None:
    router.post(f"{API}/jobs").mock(return_value=accepted("/jobs/1"))
    router.get(f"{API}/jobs/1").mock(
        return_value=httpx.Response(
            200, content=b'{"status": "runn', headers={"Content-Type": "application/json"}
        )
    )
    async with open_client(flavor, API, **options()) as (client, call):
        op = await call(client.submit, "/jobs", json={})
        with pytest.raises(ProtocolError, match="status answer's body is not valid JSON") as info:
            await call(op.wait, timeout=10)
    assert isinstance(info.value.__cause__, json.JSONDecodeError)


@pytest.mark.anyio
@BOTH
async def test_a_status_code_failure_reason_reaches_the_error(
    flavor: str, router: respx.MockRouter
) -> None:
    router.post(f"{API}/jobs").mock(return_value=accepted("/jobs/1"))
    router.get(f"{API}/jobs/1").mock(
        return_value=httpx.Response(500, json={"state": "failed", "lastError": "queue exploded"})
    )
    async with open_client(flavor, API, **options(dialect="status-code")) as (client, call):
        op = await call(client.submit, "/jobs", json={})
        with pytest.raises(JobFailedError) as info:
            await call(op.result, timeout=10)
    assert info.value.status is not None and info.value.status.error is not None
    error = info.value.status.error
    assert (error.code, error.message) == (None, "queue exploded")


@pytest.mark.anyio
@BOTH
@pytest.mark.parametrize(
    ("code", "cls"),
    [(401, AuthenticationError), (403, PermissionDeniedError), (400, RequestRejectedError)],
)
async def test_a_4xx_on_a_poll_is_an_error_a_user_can_act_on(
    flavor: str, router: respx.MockRouter, code: int, cls: type[RequestRejectedError]
) -> None:
    router.post(f"{API}/jobs").mock(return_value=accepted("/jobs/1"))
    router.get(f"{API}/jobs/1").mock(
        return_value=httpx.Response(
            code,
            headers={"WWW-Authenticate": 'Bearer realm="api"'} if code == 401 else {},
            json={"error": {"code": "nope", "message": "token expired"}},
        )
    )
    async with open_client(flavor, API, **options()) as (client, call):
        op = await call(client.submit, "/jobs", json={})
        with pytest.raises(cls) as info:
            await call(op.wait, timeout=10)
    assert info.value.status_code == code and info.value.url == f"{API}/jobs/1"
    assert info.value.error == {"code": "nope", "message": "token expired"}
    assert info.value.www_authenticate == ('Bearer realm="api"' if code == 401 else None)


AAO = f"{API}/operations/o1"
RESOURCE = f"{API}/items/a"


@pytest.mark.anyio
@BOTH
@pytest.mark.parametrize("header", ["Azure-AsyncOperation", "Operation-Location"])
@pytest.mark.parametrize("empty", [httpx.Response(200, json={}), httpx.Response(204)])
async def test_an_operation_monitor_without_a_status_is_never_a_result(
    flavor: str, router: respx.MockRouter, header: str, empty: httpx.Response
) -> None:
    router.post(f"{API}/items/a:run").mock(
        return_value=httpx.Response(202, headers={header: AAO, "Retry-After": "0"})
    )
    router.get(AAO).mock(return_value=empty)
    async with open_client(flavor, API, **options()) as (client, call):
        op = await call(client.submit, "/items/a:run", json={})
        with pytest.raises(ProtocolError, match="no status"):
            await call(op.result, timeout=60)


@pytest.mark.anyio
@BOTH
@pytest.mark.parametrize("dialect", ["auto", "arm", "microsoft"])
async def test_a_location_polled_204_stays_the_result(
    flavor: str, router: respx.MockRouter, dialect: str
) -> None:
    router.delete(RESOURCE).mock(
        return_value=httpx.Response(202, headers={"Location": f"{API}/status/1"})
    )
    router.get(f"{API}/status/1").mock(
        side_effect=[httpx.Response(202), httpx.Response(200, json={"deleted": "a"})]
    )
    async with open_client(flavor, API, **options(dialect=dialect)) as (client, call):
        op = await call(client.submit, RESOURCE, method="DELETE")
        assert await call(op.result, timeout=60) == {"deleted": "a"}


@pytest.mark.anyio
@BOTH
@pytest.mark.parametrize("dialect", ["auto", "arm"])
async def test_a_202_with_a_provisioned_resource_polls_the_monitor(
    flavor: str, router: respx.MockRouter, dialect: str
) -> None:
    provisioned = {"id": "/a", "properties": {"provisioningState": "Succeeded"}}
    router.put(RESOURCE).mock(
        return_value=httpx.Response(
            202, headers={"Azure-AsyncOperation": AAO, "Retry-After": "0"}, json=provisioned
        )
    )
    monitor = router.get(AAO).mock(
        side_effect=[
            httpx.Response(200, json={"status": "InProgress"}),
            httpx.Response(200, json={"status": "Succeeded"}),
        ]
    )
    final = {"id": "/a", "properties": {"provisioningState": "Succeeded", "size": 3}}
    router.get(RESOURCE).mock(return_value=httpx.Response(200, json=final))
    async with open_client(flavor, API, **options(dialect=dialect)) as (client, call):
        op = await call(client.submit, RESOURCE, method="PUT", json={})
        assert await call(op.result, timeout=60) == final
    assert monitor.call_count == 2


# --------------------------------------------------------------------------------------------
# A wrong URL is not a finished job (the real reference server)

FAST: dict[str, Any] = {"workers": 2, "retry_backoff": 0.01}


@pytest.mark.anyio
@BOTH
@pytest.mark.parametrize(
    "reference_server",
    [{**FAST, "dialect": "reference"}, {**FAST, "dialect": "status-code"}],
    indirect=True,
    ids=["reference", "status-code"],
)
async def test_the_collection_url_is_refused_as_a_status_url(
    flavor: str, reference_server: Any
) -> None:
    async with open_client(flavor, reference_server.base_url) as (client, call):
        op = await call(client.submit, "/jobs", json={"type": "echo", "input": {"a": 1}})
        assert await call(op.result, timeout=20) == {"a": 1}  # a listing now has a job
        wrong = client.operation(reference_server.base_url + "/jobs")
        with pytest.raises(ProtocolError, match="a listing of jobs") as info:
            await call(wrong.wait, timeout=20)
        assert info.value.url == reference_server.base_url + "/jobs"
        # The same client attached to the right URL still gets the result, whichever
        # way the server gives it (a 303 to /result, or a 200 with Content-Location).
        again = client.operation(op.status_url)
        assert await call(again.result, timeout=20) == {"a": 1}


# --------------------------------------------------------------------------------------------
# Errors a user can act on, through the flows


@pytest.mark.anyio
@BOTH
@pytest.mark.parametrize(
    "reference_server", [{**FAST, "tokens": {"t-alice": "alice"}}], indirect=True, ids=["tokens"]
)
async def test_401_on_submit_and_on_a_poll_are_authentication_errors(
    flavor: str, reference_server: Any
) -> None:
    base = reference_server.base_url
    async with open_client(flavor, base) as (client, call):
        with pytest.raises(AuthenticationError) as info:
            await call(client.submit, "/jobs", json={"type": "echo", "input": {}})
    error = info.value
    assert isinstance(error, SubmissionRejectedError)  # still caught as before
    assert error.status_code == 401 and error.url == base + "/jobs"
    assert error.www_authenticate == 'Bearer realm="asyncreply"'
    assert error.error == {"code": "unauthorized", "message": error.error["message"]}
    alice = {"Authorization": "Bearer t-alice"}
    async with open_client(flavor, base, headers=alice) as (client, call):
        op = await call(client.submit, "/jobs", json={"type": "echo", "input": {}})
    async with open_client(flavor, base) as (client, call):
        with pytest.raises(AuthenticationError) as polled:
            await call(client.operation(op.status_url).refresh)
    assert not isinstance(polled.value, SubmissionRejectedError)
    assert polled.value.url == op.status_url


@pytest.mark.anyio
@BOTH
async def test_a_403_on_the_result_is_a_permission_error(
    flavor: str, router: respx.MockRouter
) -> None:
    router.post(f"{API}/jobs").mock(return_value=accepted("/jobs/1"))
    router.get(f"{API}/jobs/1").mock(
        return_value=httpx.Response(
            303, headers={"Location": "/files/1"}, json={"jobId": "1", "status": "completed"}
        )
    )
    router.get(f"{API}/files/1").mock(
        return_value=httpx.Response(403, json={"error": {"code": "forbidden"}})
    )
    async with open_client(flavor, API, **options()) as (client, call):
        op = await call(client.submit, "/jobs", json={})
        with pytest.raises(PermissionDeniedError) as info:
            await call(op.result, timeout=10)
    assert info.value.url == f"{API}/files/1" and info.value.error == {"code": "forbidden"}


@pytest.mark.anyio
@BOTH
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"state": "failed", "lastError": "queue exploded"}, "the job failed: queue exploded"),
        ({"state": "failed"}, "the job failed"),
        ({"state": "failed", "error": {"code": "E1"}}, "the job failed: E1"),
    ],
)
async def test_a_failed_job_message_has_only_the_servers_words(
    flavor: str, router: respx.MockRouter, body: dict[str, Any], message: str
) -> None:
    router.post(f"{API}/jobs").mock(return_value=accepted("/jobs/1"))
    router.get(f"{API}/jobs/1").mock(return_value=httpx.Response(500, json=body))
    async with open_client(flavor, API, **options(dialect="status-code")) as (client, call):
        op = await call(client.submit, "/jobs", json={})
        with pytest.raises(JobFailedError) as info:
            await call(op.result, timeout=10)
    assert str(info.value) == message


@pytest.mark.anyio
@BOTH
async def test_a_huge_rejection_body_gives_a_bounded_message(
    flavor: str, router: respx.MockRouter
) -> None:
    huge = {"error": {"code": "too_big", "message": "x" * 500_000, "details": ["y"] * 1000}}
    router.post(f"{API}/jobs").mock(return_value=httpx.Response(422, json=huge))
    async with open_client(flavor, API, **options()) as (client, call):
        with pytest.raises(SubmissionRejectedError) as info:
            await call(client.submit, "/jobs", json={})
    assert len(str(info.value)) <= 1001
    assert str(info.value).startswith("submission rejected with HTTP 422: too_big: xxx")


# --------------------------------------------------------------------------------------------
# 404: never "expired" before the status URL has answered


def _not_found() -> httpx.Response:
    return httpx.Response(404, json={"error": {"code": "not_found"}})


@pytest.mark.anyio
@BOTH
@pytest.mark.parametrize("obtained", ["submit", "resume", "operation"])
async def test_a_404_before_any_status_is_not_found_however_obtained(
    flavor: str, router: respx.MockRouter, obtained: str
) -> None:
    router.post(f"{API}/jobs").mock(return_value=accepted("/jobs/1"))
    router.get(f"{API}/jobs/1").mock(return_value=_not_found())
    async with open_client(flavor, API, **options()) as (client, call):
        if obtained == "submit":
            op = await call(client.submit, "/jobs", json={})
        elif obtained == "resume":
            submitted = await call(client.submit, "/jobs", json={})
            op = client.resume(submitted.to_token())
        else:
            op = client.operation(f"{API}/jobs/1")
        with pytest.raises(JobNotFoundError) as info:
            await call(op.wait, timeout=10)
    assert type(info.value) is JobNotFoundError


@pytest.mark.anyio
@BOTH
@pytest.mark.parametrize(
    "gone", [_not_found(), httpx.Response(410, json={"error": {"code": "expired"}})]
)
async def test_after_a_status_a_404_or_410_is_expired(
    flavor: str, router: respx.MockRouter, gone: httpx.Response
) -> None:
    router.post(f"{API}/jobs").mock(return_value=accepted("/jobs/1"))
    router.get(f"{API}/jobs/1").mock(
        side_effect=[httpx.Response(200, json={"jobId": "1", "status": "running"}), gone]
    )
    async with open_client(flavor, API, **options()) as (client, call):
        op = await call(client.submit, "/jobs", json={})
        with pytest.raises(JobExpiredError):
            await call(op.wait, timeout=10)


@pytest.mark.anyio
@BOTH
async def test_a_410_first_is_expired(flavor: str, router: respx.MockRouter) -> None:
    router.get(f"{API}/jobs/1").mock(return_value=httpx.Response(410))
    async with open_client(flavor, API, **options()) as (client, call):
        with pytest.raises(JobExpiredError):
            await call(client.operation(f"{API}/jobs/1").wait, timeout=10)


# --------------------------------------------------------------------------------------------
# mode="sse" on an attached or resumed operation learns the events URL from a status


@pytest.mark.anyio
@BOTH
@pytest.mark.parametrize("reference_server", [FAST], indirect=True, ids=["reference"])
@pytest.mark.parametrize("obtained", ["operation", "resume"])
async def test_sse_mode_learns_the_events_url_from_a_status_answer(
    flavor: str, reference_server: Any, obtained: str
) -> None:
    base = reference_server.base_url
    job = {"type": "sleep", "input": {"seconds": 0.3, "steps": 3}}
    async with open_client(flavor, base) as (client, call):
        submitted = await call(client.submit, "/jobs", json=job)
        op = client.operation(submitted.status_url)
        assert op.events_url is None
        if obtained == "resume":  # a token of an attached operation names no events URL
            op = client.resume(op.to_token())
        status = await call(op.wait, timeout=20, mode="sse")
    assert status.state.value == "completed"
    assert op.events_url == f"{base}/jobs/{submitted.id}/events"


# --------------------------------------------------------------------------------------------
# A 202 poll answer moves the monitor


@pytest.mark.anyio
@BOTH
async def test_a_location_on_a_202_poll_moves_the_status_url(
    flavor: str, router: respx.MockRouter
) -> None:
    router.post(f"{API}/jobs").mock(
        return_value=httpx.Response(202, headers={"Location": "/queue/1", "Retry-After": "0"})
    )
    router.get(f"{API}/queue/1").mock(
        return_value=httpx.Response(202, headers={"Location": "/jobs/1/status"})
    )
    router.get(f"{API}/jobs/1/status").mock(
        side_effect=[httpx.Response(202), httpx.Response(200, json={"made": 1})]
    )
    async with open_client(flavor, API, **options()) as (client, call):
        op = await call(client.submit, "/jobs", json={})
        assert await call(op.result, timeout=60) == {"made": 1}
        assert op.status_url == f"{API}/jobs/1/status"


@pytest.mark.anyio
@BOTH
async def test_an_operation_monitor_wins_and_keeps_its_monitor(
    flavor: str, router: respx.MockRouter
) -> None:
    first, second = f"{API}/operations/1", f"{API}/operations/2"
    router.post(f"{API}/items/a:run").mock(
        return_value=httpx.Response(202, headers={"Azure-AsyncOperation": first})
    )
    router.get(first).mock(
        return_value=httpx.Response(
            202,
            headers={"Operation-Location": second, "Location": f"{API}/elsewhere"},
            json={"status": "Running"},
        )
    )
    moved = router.get(second).mock(
        side_effect=[
            httpx.Response(
                202, headers={"Location": f"{API}/elsewhere"}, json={"status": "Running"}
            ),
            httpx.Response(200, json={"status": "Succeeded", "result": {"ok": True}}),
        ]
    )
    async with open_client(flavor, API, **options()) as (client, call):
        op = await call(client.submit, "/items/a:run", json={})
        assert await call(op.result, timeout=60) == {"ok": True}
        assert op.status_url == second
    assert moved.call_count == 2


# --------------------------------------------------------------------------------------------
# Server hints: the 202's Retry-After is clamped; "Retry-After: 0" forever is bounded


@pytest.mark.anyio
@BOTH
@pytest.mark.parametrize(
    ("policy", "ceiling"),
    # A long poll goes out 50 ms before the (clamped) hint, to be held across it.
    [(Adaptive(), 60.0), (FixedInterval(1.0), 300.0), (LongPolling(5.0), 59.95)],
    ids=["adaptive", "fixed", "long-poll"],
)
async def test_the_202_retry_after_is_clamped_by_the_policy(
    flavor: str, router: respx.MockRouter, policy: Any, ceiling: float
) -> None:
    router.post(f"{API}/jobs").mock(
        return_value=httpx.Response(
            202, headers={"Location": "/jobs/1", "Retry-After": "999999999"}
        )
    )
    router.get(f"{API}/jobs/1").mock(return_value=httpx.Response(200, json={"done": 1}))
    clock = FakeClock()
    async with open_client(flavor, API, clock=clock, polling=policy) as (client, call):
        op = await call(client.submit, "/jobs", json={})
        assert await call(op.result) == {"done": 1}  # no timeout: only the clamp bounds it
    assert clock.sleeps[0] == ceiling


def test_adaptive_under_retry_after_zero_forever_backs_off_to_its_ceiling() -> None:
    policy = Adaptive(random=lambda: 0.0)
    schedule = policy.schedule()
    zero = JobStatus(state=JobState.PROCESSING, retry_after=0.0)
    delays = [
        schedule.next(PollObservation(status=zero, now=float(n), started=0.0, polls=n)).delay
        for n in range(60)
    ]
    assert delays[: policy.max_immediate] == [0.0] * policy.max_immediate
    tail = delays[policy.max_immediate :]
    assert tail == sorted(tail)  # growing: a zero hint does not reset the backoff
    assert tail[-1] == policy.max_delay
    assert sum(delays) > 20 * policy.max_delay  # ~1 poll a minute, not ~10 a second


def test_a_positive_hint_still_restarts_the_backoff() -> None:
    schedule = Adaptive(random=lambda: 0.0).schedule()
    zero = JobStatus(state=JobState.PROCESSING, retry_after=0.0)
    obs = [PollObservation(status=zero, now=0.0, started=0.0, polls=n) for n in range(10)]
    grown = [schedule.next(o).delay for o in obs][-1]
    hinted = JobStatus(state=JobState.PROCESSING, retry_after=2.0)
    assert (
        schedule.next(PollObservation(status=hinted, now=0.0, started=0.0, polls=11)).delay == 2.0
    )
    after = schedule.next(PollObservation(status=zero, now=0.0, started=0.0, polls=12)).delay
    assert after == 0.0 and grown > 0.1


# --------------------------------------------------------------------------------------------
# Errors after the job exists carry the operation: retry without a second job


@pytest.mark.anyio
@BOTH
async def test_run_errors_after_the_submission_carry_the_operation(
    flavor: str, router: respx.MockRouter
) -> None:
    submit = router.post(f"{API}/jobs").mock(return_value=accepted("/jobs/1"))
    router.get(f"{API}/jobs/1").mock(
        side_effect=[httpx.Response(503)] * 2 + [httpx.Response(200, json={"made": 1})]
    )
    retry = RetryPolicy(attempts=2, initial=0.0, cap=0.0)
    async with open_client(flavor, API, **options(retry=retry)) as (client, call):
        with pytest.raises(TransportError) as info:
            await call(client.run, "/jobs", json={}, timeout=60)
        op = info.value.operation
        assert op is not None and op.status_url == f"{API}/jobs/1"
        # Retrying safely: wait for the same job again, no second submission.
        assert await call(op.result, timeout=60) == {"made": 1}
    assert submit.call_count == 1


@pytest.mark.anyio
@BOTH
async def test_outcome_errors_carry_the_operation_and_rejections_do_not(
    flavor: str, router: respx.MockRouter
) -> None:
    router.post(f"{API}/jobs").mock(return_value=accepted("/jobs/1"))
    router.post(f"{API}/bad").mock(return_value=httpx.Response(400, json={"error": "no"}))
    router.get(f"{API}/jobs/1").mock(
        return_value=httpx.Response(200, json={"jobId": "1", "status": "failed"})
    )
    async with open_client(flavor, API, **options()) as (client, call):
        with pytest.raises(JobFailedError) as failed:
            await call(client.run, "/jobs", json={}, timeout=60)
        with pytest.raises(SubmissionRejectedError) as rejected:
            await call(client.run, "/bad", json={}, timeout=60)
        op = client.operation(f"{API}/jobs/1")
        with pytest.raises(ProtocolError) as refreshed:
            router.get(f"{API}/jobs/1").mock(return_value=httpx.Response(200, json=[1]))
            await call(op.refresh)
    assert failed.value.operation is not None and failed.value.operation.id == "1"
    assert rejected.value.operation is None
    assert refreshed.value.operation is op


# --------------------------------------------------------------------------------------------
# Where the final result is: DELETE, final_state_via, Microsoft's final document


@pytest.mark.anyio
@BOTH
@pytest.mark.parametrize("dialect", ["auto", "arm"])
async def test_a_delete_gets_no_final_get_on_location(
    flavor: str, router: respx.MockRouter, dialect: str
) -> None:
    router.delete(RESOURCE).mock(
        return_value=httpx.Response(
            202, headers={"Azure-AsyncOperation": AAO, "Location": f"{API}/final/a"}
        )
    )
    router.get(AAO).mock(return_value=httpx.Response(200, json={"status": "Succeeded"}))
    final = router.get(f"{API}/final/a").mock(return_value=httpx.Response(200, json={"x": 1}))
    async with open_client(flavor, API, **options(dialect=dialect)) as (client, call):
        op = await call(client.submit, RESOURCE, method="DELETE")
        status = await call(op.wait, timeout=60)
    assert status.state is JobState.COMPLETED
    assert final.call_count == 0


@pytest.mark.anyio
@BOTH
@pytest.mark.parametrize(
    ("via", "expected", "gets"),
    [
        (None, {"final": "location"}, ("location",)),
        ("location", {"final": "location"}, ("location",)),
        ("original-uri", {"final": "original"}, ("original",)),
        ("azure-async-operation", {"status": "Succeeded", "id": "o1"}, ()),
    ],
)
async def test_final_state_via(
    flavor: str, router: respx.MockRouter, via: Any, expected: Any, gets: tuple[str, ...]
) -> None:
    action = f"{API}/items/a:run"
    router.post(action).mock(
        return_value=httpx.Response(
            202, headers={"Azure-AsyncOperation": AAO, "Location": f"{API}/final/a"}
        )
    )
    router.get(AAO).mock(return_value=httpx.Response(200, json={"status": "Succeeded", "id": "o1"}))
    fetched = {
        "location": router.get(f"{API}/final/a").mock(
            return_value=httpx.Response(200, json={"final": "location"})
        ),
        "original": router.get(action).mock(
            return_value=httpx.Response(200, json={"final": "original"})
        ),
    }
    async with open_client(flavor, API, **options()) as (client, call):
        op = await call(client.submit, action, json={}, final_state_via=via)
        assert await call(op.result, timeout=60) == expected
    assert tuple(name for name, route in fetched.items() if route.called) == gets


@pytest.mark.anyio
@BOTH
async def test_an_unknown_final_state_via_is_refused(flavor: str) -> None:
    async with open_client(flavor, API, **options()) as (client, call):
        with pytest.raises(ValueError, match="final_state_via must be one of"):
            await call(client.submit, "/jobs", json={}, final_state_via="nowhere")


@pytest.mark.anyio
@BOTH
async def test_microsoft_the_final_operation_document_is_the_result(
    flavor: str, router: respx.MockRouter
) -> None:
    router.post(f"{API}/documents:analyze").mock(
        return_value=httpx.Response(202, headers={"Operation-Location": AAO})
    )
    done = {"id": "o1", "status": "succeeded", "analyzeResult": {"pages": 2}}
    router.get(AAO).mock(return_value=httpx.Response(200, json=done))
    async with open_client(flavor, API, **options(dialect="microsoft")) as (client, call):
        op = await call(client.submit, "/documents:analyze", json={})
        assert await call(op.result, timeout=60) == done


# --------------------------------------------------------------------------------------------
# Bodies are read with a bound


def _streamed(code: int, chunks: list[bytes], consumed: list[int], **kw: Any) -> Any:
    """A handler answering ``code`` with a body streamed chunk by chunk, counting the
    chunks the client pulled."""

    def body() -> Iterator[bytes]:
        for chunk in chunks:
            consumed.append(len(chunk))
            yield chunk

    async def abody() -> Any:
        for chunk in body():
            yield chunk

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(code, content=body(), **kw)

    async def ahandler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(code, content=abody(), **kw)

    return handler, ahandler


@pytest.mark.anyio
@BOTH
async def test_a_huge_error_body_is_read_only_up_to_the_bound(flavor: str) -> None:
    consumed: list[int] = []
    chunks = [b'{"error": {"message": "' + b"x" * 65_536] + [b"x" * 65_536] * 800  # ~50 MiB
    handler, ahandler = _streamed(422, chunks, consumed)
    transport = httpx.MockTransport(ahandler) if flavor == "async" else httpx.MockTransport(handler)
    async with open_client(flavor, API, transport=transport, **options()) as (client, call):
        with pytest.raises(SubmissionRejectedError) as info:
            await call(client.submit, "/jobs", json={})
    assert sum(consumed) <= (1 << 20) + 65_536 + 64  # the default bound, one chunk past
    assert len(str(info.value)) <= 1001
    assert isinstance(info.value.error, str) and len(info.value.error) <= 501


@pytest.mark.anyio
@BOTH
async def test_a_status_answer_over_the_bound_is_a_protocol_error(
    flavor: str, router: respx.MockRouter
) -> None:
    router.post(f"{API}/jobs").mock(return_value=accepted("/jobs/1"))
    big = {"jobId": "1", "status": "running", "pad": "x" * 4096}
    router.get(f"{API}/jobs/1").mock(return_value=httpx.Response(200, json=big))
    async with open_client(flavor, API, **options(max_body_size=1024)) as (client, call):
        op = await call(client.submit, "/jobs", json={})
        with pytest.raises(
            ProtocolError, match=r"larger than the client reads \(max_body_size=1024"
        ):
            await call(op.refresh)
    async with open_client(flavor, API, **options(max_body_size=None)) as (client, call):
        op = await call(client.submit, "/jobs", json={})
        assert (await call(op.refresh)).state is JobState.PROCESSING


@pytest.mark.anyio
@BOTH
async def test_a_result_is_not_bounded(flavor: str, router: respx.MockRouter) -> None:
    router.post(f"{API}/jobs").mock(return_value=accepted("/jobs/1"))
    router.get(f"{API}/jobs/1").mock(
        return_value=httpx.Response(
            303, headers={"Location": "/jobs/1/result"}, json={"jobId": "1", "status": "completed"}
        )
    )
    result = {"rows": ["y" * 100] * 100}  # ~10 KB, over the 1 KB bound
    router.get(f"{API}/jobs/1/result").mock(return_value=httpx.Response(200, json=result))
    async with open_client(flavor, API, **options(max_body_size=1024)) as (client, call):
        op = await call(client.submit, "/jobs", json={})
        assert await call(op.result, timeout=60) == result


@pytest.mark.parametrize("client_type", [Client, AsyncClient])
@pytest.mark.parametrize("bad", [0, -1, 1.5, "1"])
def test_a_bad_max_body_size_fails_at_construction(client_type: Any, bad: Any) -> None:
    with pytest.raises(ValueError, match="max_body_size"):
        client_type(API, max_body_size=bad, http_client=_http(client_type))


@pytest.mark.parametrize("reference_server", [FAST], indirect=True, ids=["reference"])
def test_asyncreply_status_on_the_collection_url_is_a_protocol_error(
    reference_server: Any,
) -> None:
    import io

    from asyncreply_client.cli import main
    from asyncreply_client.cli._exit import ExitCode

    out, err = io.StringIO(), io.StringIO()
    code = main(["status", reference_server.base_url + "/jobs"], stdout=out, stderr=err, environ={})
    assert code == ExitCode.PROTOCOL, (out.getvalue(), err.getvalue())
    assert "auto dialect: the status URL answered" in err.getvalue()  # an empty listing here


@pytest.mark.anyio
@BOTH
@pytest.mark.parametrize(
    ("code", "cls"), [(401, AuthenticationError), (403, PermissionDeniedError)]
)
async def test_a_401_or_403_on_cancel_is_an_auth_error(
    flavor: str, router: respx.MockRouter, code: int, cls: type[Exception]
) -> None:
    router.delete(f"{API}/jobs/1").mock(return_value=httpx.Response(code, json={"error": "no"}))
    async with open_client(flavor, API, **options()) as (client, call):
        op = client.operation(f"{API}/jobs/1")
        with pytest.raises(cls) as info:
            await call(op.cancel)
    assert info.value.operation is op
