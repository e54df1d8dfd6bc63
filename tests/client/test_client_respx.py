"""Both clients against shapes the reference server does not produce (respx, no sockets):
vendor dialects end to end, cross-origin URLs and credentials, redirect loops, garbage
bodies, HTTP-date ``Retry-After``, idempotent retries. Time is virtual (``FakeClock``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import respx

from asyncreply_client import (
    FixedInterval,
    InvalidTokenError,
    JobFailedError,
    JobState,
    JobStatus,
    ProtocolError,
    ReferenceDialect,
    RetryPolicy,
    TransportError,
    WaitTimeoutError,
)
from asyncreply_client.testing import FakeClock
from tests.client.harness import BOTH, open_client

pytestmark = [pytest.mark.anyio, BOTH]

API = "https://api.test"
OTHER = "https://status.other.test"
SECRET = "Bearer s3cret"


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


def accepted(location: str, **headers: str) -> httpx.Response:
    return httpx.Response(
        202,
        headers={"Location": location, "Retry-After": "0", **headers},
        json={"jobId": "1", "status": "pending"},
    )


def ref_doc(state: str, **extra: Any) -> dict[str, Any]:
    return {"jobId": "1", "status": state, **extra}


def options(**extra: Any) -> dict[str, Any]:
    return {"clock": FakeClock(), "polling": FixedInterval(1.0), **extra}


# --------------------------------------------------------------------------------------------
# credentials by origin


async def test_credentials_never_reach_a_cross_origin_status_url(
    flavor: str, router: respx.MockRouter
) -> None:
    router.post(f"{API}/jobs").mock(return_value=accepted(f"{OTHER}/ops/1"))
    status = router.get(f"{OTHER}/ops/1").mock(
        return_value=httpx.Response(200, json=ref_doc("completed", result={"ok": 1}))
    )
    opts = options(headers={"Authorization": SECRET, "X-Api-Key": "k"}, auth=("user", "pw"))
    async with open_client(flavor, API, **opts) as (client, call):
        op = await call(client.submit, "/jobs", json={}, headers={"X-Call": "c"})
        assert await call(op.result, timeout=10) == {"ok": 1}
    submit_request = router.calls[0].request
    assert submit_request.headers["Authorization"].startswith("Basic ")  # auth= wins
    assert submit_request.headers["X-Api-Key"] == "k"
    assert submit_request.headers["X-Call"] == "c"
    for request in (c.request for c in status.calls):
        for name in ("Authorization", "X-Api-Key", "X-Call", "Cookie"):
            assert name not in request.headers


async def test_basic_auth_goes_to_the_base_origin_only(
    flavor: str, router: respx.MockRouter
) -> None:
    router.post(f"{API}/jobs").mock(return_value=accepted(f"{OTHER}/ops/1"))
    router.get(f"{OTHER}/ops/1").mock(return_value=httpx.Response(200, json=ref_doc("completed")))
    async with open_client(flavor, API, **options(auth=("user", "pw"))) as (client, call):
        op = await call(client.submit, "/jobs", json={})
        await call(op.wait, timeout=10)
    submit, status = (c.request for c in router.calls)
    assert submit.headers["Authorization"].startswith("Basic ")
    assert "Authorization" not in status.headers


async def test_trusted_origins_receive_the_credentials(
    flavor: str, router: respx.MockRouter
) -> None:
    router.post(f"{API}/jobs").mock(return_value=accepted(f"{OTHER}/ops/1"))
    router.get(f"{OTHER}/ops/1").mock(return_value=httpx.Response(200, json=ref_doc("completed")))
    opts = options(headers={"Authorization": SECRET}, trusted_origins=[OTHER])
    async with open_client(flavor, API, **opts) as (client, call):
        op = await call(client.submit, "/jobs", json={})
        await call(op.wait, timeout=10)
    assert router.calls[1].request.headers["Authorization"] == SECRET


async def test_a_users_http_client_headers_and_auth_are_kept_to_its_origin(
    flavor: str, router: respx.MockRouter
) -> None:
    router.post(f"{API}/jobs").mock(return_value=accepted(f"{OTHER}/ops/1"))
    router.get(f"{OTHER}/ops/1").mock(return_value=httpx.Response(200, json=ref_doc("completed")))
    kind = httpx.AsyncClient if flavor == "async" else httpx.Client
    http = kind(headers={"Authorization": SECRET}, auth=("u", "p"))
    try:
        async with open_client(flavor, API, http_client=http, **options()) as (client, call):
            op = await call(client.submit, "/jobs", json={})
            await call(op.wait, timeout=10)
    finally:
        if isinstance(http, httpx.AsyncClient):
            await http.aclose()
        else:
            http.close()
    assert router.calls[0].request.headers["Authorization"].startswith("Basic ")  # its auth
    assert "Authorization" not in router.calls[1].request.headers


# --------------------------------------------------------------------------------------------
# broken servers


async def test_a_redirect_loop_on_the_status_url_is_a_protocol_error(
    flavor: str, router: respx.MockRouter
) -> None:
    router.post(f"{API}/jobs").mock(return_value=accepted("/jobs/1"))
    router.get(f"{API}/jobs/1").mock(
        return_value=httpx.Response(307, headers={"Location": "/jobs/1/moved"})
    )
    router.get(f"{API}/jobs/1/moved").mock(
        return_value=httpx.Response(308, headers={"Location": "/jobs/1"})
    )
    async with open_client(flavor, API, **options()) as (client, call):
        op = await call(client.submit, "/jobs", json={})
        with pytest.raises(ProtocolError, match="loop"):
            await call(op.wait, timeout=10)


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="<html>hello</html>", headers={"Content-Type": "text/html"}),
        httpx.Response(200, content=b'{"status": ', headers={"Content-Type": "application/json"}),
        httpx.Response(200, json={"status": "dancing"}),
    ],
    ids=["html", "truncated-json", "unknown-state"],
)
async def test_garbage_status_bodies_are_protocol_errors(
    flavor: str, router: respx.MockRouter, answer: httpx.Response
) -> None:
    router.post(f"{API}/jobs").mock(return_value=accepted("/jobs/1"))
    router.get(f"{API}/jobs/1").mock(return_value=answer)
    async with open_client(flavor, API, **options(dialect=ReferenceDialect())) as (client, call):
        op = await call(client.submit, "/jobs", json={})
        with pytest.raises(ProtocolError) as info:
            await call(op.wait, timeout=10)
    assert info.value.url == f"{API}/jobs/1"


@pytest.mark.parametrize("content_type", ["text/html", "text/html; charset=utf-8"])
async def test_an_html_status_answer_is_a_protocol_error_in_the_auto_dialect(
    flavor: str, router: respx.MockRouter, content_type: str
) -> None:
    # A proxy's or a login page answering the status poll is not the job's result.
    page = "<html><body>Please sign in</body></html>"
    router.post(f"{API}/jobs").mock(return_value=accepted("/jobs/1"))
    router.get(f"{API}/jobs/1").mock(
        return_value=httpx.Response(200, text=page, headers={"Content-Type": content_type})
    )
    async with open_client(flavor, API, **options()) as (client, call):
        op = await call(client.submit, "/jobs", json={})
        with pytest.raises(ProtocolError) as info:
            await call(op.wait, timeout=10)
    assert info.value.url == f"{API}/jobs/1"
    assert info.value.status_code == 200
    assert "Please sign in" in info.value.body_excerpt


async def test_a_submit_without_a_monitor_is_a_protocol_error(
    flavor: str, router: respx.MockRouter
) -> None:
    router.post(f"{API}/jobs").mock(return_value=httpx.Response(202, text="accepted"))
    async with open_client(flavor, API, **options()) as (client, call):
        with pytest.raises(ProtocolError):
            await call(client.submit, "/jobs", json={})


# --------------------------------------------------------------------------------------------
# transient faults and idempotency


async def test_http_date_retry_after_on_a_503_is_honoured(
    flavor: str, router: respx.MockRouter
) -> None:
    now = datetime(2026, 11, 23, 9, 0, 0, tzinfo=timezone.utc)
    busy = httpx.Response(
        503,
        headers={
            "Date": format_datetime(now, usegmt=True),
            "Retry-After": format_datetime(now + timedelta(seconds=7), usegmt=True),
        },
    )
    route = router.post(f"{API}/jobs").mock(side_effect=[busy, accepted("/jobs/1")])
    clock = FakeClock()
    async with open_client(flavor, API, **options(clock=clock)) as (client, call):
        await call(client.submit, "/jobs", json={})
    assert route.call_count == 2
    assert clock.sleeps == [7.0]


async def test_submissions_are_retried_with_one_key(flavor: str, router: respx.MockRouter) -> None:
    route = router.post(f"{API}/jobs").mock(
        side_effect=[
            httpx.Response(503, headers={"Retry-After": "0"}),
            httpx.ConnectError("refused"),
            httpx.Response(502),
            accepted("/jobs/1"),
        ]
    )
    async with open_client(flavor, API, **options()) as (client, call):
        await call(client.submit, "/jobs", json={})
        keys = {c.request.headers["Idempotency-Key"] for c in route.calls}
        assert route.call_count == 4 and len(keys) == 1
        route.side_effect = None
        route.return_value = accepted("/jobs/2")
        await call(client.submit, "/jobs", json={})
        await call(client.submit, "/jobs", json={}, idempotency_key="mine")
    assert route.calls[-2].request.headers["Idempotency-Key"] not in keys  # one per call
    assert route.calls[-1].request.headers["Idempotency-Key"] == "mine"


async def test_without_a_key_a_submission_is_never_retried(
    flavor: str, router: respx.MockRouter
) -> None:
    route = router.post(f"{API}/jobs").mock(
        return_value=httpx.Response(503, headers={"Retry-After": "0"})
    )
    async with open_client(flavor, API, **options()) as (client, call):
        with pytest.raises(TransportError) as info:
            await call(client.submit, "/jobs", json={}, idempotency_key=None)
    assert route.call_count == 1 and info.value.attempts == 1
    assert "Idempotency-Key" not in route.calls[0].request.headers


async def test_retries_are_bounded(flavor: str, router: respx.MockRouter) -> None:
    router.post(f"{API}/jobs").mock(return_value=accepted("/jobs/1"))
    status = router.get(f"{API}/jobs/1").mock(side_effect=httpx.ReadTimeout("slow"))
    clock = FakeClock()
    retry = RetryPolicy(attempts=3, initial=0.5, factor=2.0, cap=0.75, jitter=False)
    async with open_client(flavor, API, **options(clock=clock, retry=retry)) as (client, call):
        op = await call(client.submit, "/jobs", json={})
        with pytest.raises(TransportError) as info:
            await call(op.refresh)
    assert status.call_count == 3 and info.value.attempts == 3
    assert clock.sleeps == [0.5, 0.75]


async def test_a_500_that_is_a_job_state_is_not_retried(
    flavor: str, router: respx.MockRouter
) -> None:
    router.post(f"{API}/jobs").mock(return_value=accepted("/jobs/1"))
    failed = {"jobId": "1", "state": "failed", "error": {"code": "boom", "message": "no"}}
    status = router.get(f"{API}/jobs/1").mock(return_value=httpx.Response(500, json=failed))
    async with open_client(flavor, API, **options()) as (client, call):
        op = await call(client.submit, "/jobs", json={})
        final = await call(op.wait, timeout=10)
    assert final.state is JobState.FAILED and status.call_count == 1


# --------------------------------------------------------------------------------------------
# vendor dialects end to end


async def test_microsoft_operation(flavor: str, router: respx.MockRouter) -> None:
    op_url = f"{API}/operations/9?api-version=1"
    router.post(f"{API}/documents:analyze").mock(
        return_value=httpx.Response(202, headers={"Operation-Location": op_url, "Retry-After": "5"})
    )
    router.get(op_url).mock(
        side_effect=[
            httpx.Response(200, json={"id": "9", "status": "NotStarted"}),
            httpx.Response(200, json={"id": "9", "status": "Running", "percentComplete": 50}),
            httpx.Response(200, json={"id": "9", "status": "Succeeded", "result": {"pages": 3}}),
        ]
    )
    clock = FakeClock()
    seen: list[JobStatus] = []
    async with open_client(flavor, API, **options(clock=clock, on_progress=seen.append)) as (
        client,
        call,
    ):
        op = await call(client.submit, "/documents:analyze", json={"url": "x"})
        assert await call(op.result, timeout=60) == {"pages": 3}
    assert clock.sleeps[0] == 5.0  # the 202's Retry-After, before the first poll
    assert [s.state for s in seen] == [JobState.PROCESSING, JobState.COMPLETED]


async def test_google_operation(flavor: str, router: respx.MockRouter) -> None:
    name = "projects/p/operations/op1"
    router.post(f"{API}/v1/projects/p/things").mock(
        return_value=httpx.Response(200, json={"name": name, "done": False})
    )
    router.get(f"{API}/v1/{name}").mock(
        side_effect=[
            httpx.Response(200, json={"name": name, "done": False}),
            httpx.Response(200, json={"name": name, "done": True, "response": {"id": 7}}),
        ]
    )
    async with open_client(flavor, API, **options()) as (client, call):
        op = await call(client.submit, "/v1/projects/p/things", json={})
        assert op.status_url == f"{API}/v1/{name}"
        assert await call(op.result, timeout=60) == {"id": 7}


async def test_arm_put_gets_the_final_resource_from_the_original_uri(
    flavor: str, router: respx.MockRouter
) -> None:
    resource = f"{API}/subscriptions/s/resourceGroups/g/providers/P/accounts/a"
    aao = f"{API}/subscriptions/s/providers/P/operations/o1"
    router.put(resource).mock(
        return_value=httpx.Response(
            201,
            headers={"Azure-AsyncOperation": aao, "Retry-After": "1"},
            json={"id": "/a", "properties": {"provisioningState": "Creating"}},
        )
    )
    router.get(aao).mock(
        side_effect=[
            httpx.Response(200, json={"status": "InProgress"}),
            httpx.Response(200, json={"status": "Succeeded"}),
        ]
    )
    router.get(resource).mock(
        return_value=httpx.Response(
            200, json={"id": "/a", "properties": {"provisioningState": "Succeeded"}}
        )
    )
    async with open_client(flavor, API, **options()) as (client, call):
        op = await call(client.submit, resource, method="PUT", json={"location": "x"})
        final = await call(op.result, timeout=60)
    assert final["properties"]["provisioningState"] == "Succeeded"


# --------------------------------------------------------------------------------------------
# virtual time, tokens, callbacks


async def test_a_long_job_finishes_in_virtual_time_and_deadlines_hold(
    flavor: str, router: respx.MockRouter
) -> None:
    router.post(f"{API}/jobs").mock(return_value=accepted("/jobs/1", **{"Retry-After": "10"}))
    router.get(f"{API}/jobs/1").mock(
        return_value=httpx.Response(200, headers={"Retry-After": "10"}, json=ref_doc("processing"))
    )
    clock = FakeClock()
    async with open_client(flavor, API, **options(clock=clock, polling=None)) as (client, call):
        op = await call(client.submit, "/jobs", json={})
        with pytest.raises(WaitTimeoutError) as info:
            await call(op.wait, timeout=25)
    assert info.value.operation is op
    assert sum(clock.sleeps) == pytest.approx(25.0)
    assert all(s <= 10.0 for s in clock.sleeps)


async def test_async_callbacks_are_awaited_and_sync_ones_called(
    flavor: str, router: respx.MockRouter
) -> None:
    router.post(f"{API}/jobs").mock(return_value=accepted("/jobs/1"))
    router.get(f"{API}/jobs/1").mock(
        return_value=httpx.Response(200, json=ref_doc("completed", result=1))
    )
    seen: list[str] = []

    async def async_callback(status: JobStatus) -> None:
        seen.append("async:" + status.state.value)

    def sync_callback(status: JobStatus) -> None:
        seen.append("sync:" + status.state.value)

    callbacks: list[Any] = [sync_callback] + ([async_callback] if flavor == "async" else [])
    async with open_client(flavor, API, **options(on_progress=callbacks)) as (client, call):
        op = await call(client.submit, "/jobs", json={})
        await call(op.result, timeout=10, on_progress=lambda s: seen.append("call"))
    expected = ["sync:completed"] + (["async:completed"] if flavor == "async" else []) + ["call"]
    assert seen == expected


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not base64 !!",
        "bnVsbA",  # null
        "eyJ2IjozLCJzdGF0dXNfdXJsIjoiaHR0cDovL2gvaiJ9",  # v=3
        "eyJ2IjoxfQ",  # no status_url
        "eyJ2IjoxLCJzdGF0dXNfdXJsIjoiZmlsZTovLy9ldGMvcGFzc3dkIn0",  # file: URL
        "eyJ2IjoxLCJzdGF0dXNfdXJsIjoiaHR0cDovL2gvaiIsInB3IjoieCJ9",  # unknown field
        "eyJ2Ijp0cnVlLCJzdGF0dXNfdXJsIjoiaHR0cDovL2gvaiJ9",  # v=true
        "eyJ2IjoxLCJzdGF0dXNfdXJsIjoxMjN9",  # status_url not a string
        "//79",  # bytes that are not UTF-8
    ],
)
async def test_bad_tokens_are_invalid_token_errors(flavor: str, token: str) -> None:
    async with open_client(flavor, API, **options()) as (client, _):
        with pytest.raises(InvalidTokenError):
            client.resume(token)


async def test_tokens_round_trip_without_credentials(flavor: str, router: respx.MockRouter) -> None:
    router.post(f"{API}/jobs").mock(
        return_value=accepted("/jobs/1", Link='</jobs/1/events>; rel="events"')
    )
    async with open_client(flavor, API, **options(headers={"Authorization": SECRET})) as (
        client,
        call,
    ):
        op = await call(client.submit, "/jobs", json={})
        token = op.to_token()
        again = client.resume(token)
    assert (again.id, again.status_url, again.events_url) == (op.id, op.status_url, op.events_url)
    assert again.events_url == f"{API}/jobs/1/events"
    import base64

    payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    assert "s3cret" not in json.dumps(payload)
    # Version 2: the monitor was named by Location, which the resumed operation must know.
    assert payload["v"] == 2 and payload["monitored_by"] == "location"


async def test_a_result_on_another_origin_is_fetched_without_credentials(
    flavor: str, router: respx.MockRouter
) -> None:
    router.post(f"{API}/jobs").mock(return_value=accepted("/jobs/1"))
    router.get(f"{API}/jobs/1").mock(
        return_value=httpx.Response(
            303, headers={"Location": f"{OTHER}/r/1"}, json=ref_doc("completed")
        )
    )
    router.get(f"{OTHER}/r/1").mock(
        return_value=httpx.Response(302, headers={"Location": "https://cdn.test/blob"})
    )
    blob = router.get("https://cdn.test/blob").mock(return_value=httpx.Response(200, json=[1]))
    opts = options(headers={"Authorization": SECRET}, dialect=ReferenceDialect())
    async with open_client(flavor, API, **opts) as (client, call):
        op = await call(client.submit, "/jobs", json={})
        assert await call(op.result, timeout=10) == [1]
    assert blob.call_count == 1
    assert router.calls[1].request.headers["Authorization"] == SECRET
    for call_ in router.calls[2:]:
        assert "Authorization" not in call_.request.headers


async def test_a_failed_download_leaves_no_file_behind(
    flavor: str, router: respx.MockRouter, tmp_path: Any
) -> None:
    router.post(f"{API}/jobs").mock(return_value=accepted("/jobs/1"))
    failed = ref_doc("failed", error={"code": "boom", "message": "no"})
    router.get(f"{API}/jobs/1").mock(return_value=httpx.Response(200, json=failed))
    target = tmp_path / "out.bin"
    async with open_client(flavor, API, **options()) as (client, call):
        op = await call(client.submit, "/jobs", json={})
        with pytest.raises(JobFailedError):
            await call(op.download, target)
    assert list(tmp_path.iterdir()) == []
