"""FakeAsyncAPI and FakeClock, exercised with plain httpx (sync and async)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from asyncreply_client.testing import FakeAsyncAPI, FakeClock


def test_reference_script_pending_progress_then_303_to_result() -> None:
    api = FakeAsyncAPI("https://api.test")
    script = (
        api.job("/jobs", retry_after=2.5)
        .pending(retry_after=0)
        .pending(retry_after=0)
        .progress(0.5, message="half way", retry_after=30)
        .completed(result={"answer": 42})
    )
    with api, httpx.Client(base_url=api.base_url) as http:
        submitted = http.post("/jobs", json={"type": "report", "input": {"n": 1}})
        assert submitted.status_code == 202
        assert submitted.headers["Retry-After"] == "3"
        assert submitted.headers["Retry-After-Ms"] == "2500"
        job = script.job
        assert submitted.headers["Location"] == job.status_url
        body = submitted.json()
        assert body["jobId"] == job.id and body["status"] == "pending"
        assert body["statusUrl"] == job.status_url and "eventsUrl" not in body

        first = http.get(job.status_url)
        assert first.status_code == 200
        assert first.json()["status"] == "pending"
        assert first.headers["Retry-After"] == "0"
        assert http.get(job.status_url).json()["status"] == "pending"
        third = http.get(job.status_url)
        doc = third.json()
        assert doc["status"] == "processing" and doc["type"] == "report"
        assert doc["progress"] == {"current": 0.5, "total": 1.0, "message": "half way"}
        assert third.headers["Retry-After-Ms"] == "30000"
        done = http.get(job.status_url)
        assert done.status_code == 303
        assert done.headers["Location"] == job.result_url
        assert done.json()["resultUrl"] == job.result_url
        assert "Retry-After" not in done.headers
        # The last step repeats; the result stays available.
        assert http.get(job.status_url).status_code == 303
        assert http.get(job.result_url).json() == {"answer": 42}
    assert job.job_input == {"n": 1}
    assert len(job.polls) == 5
    assert [r.method for r in api.requests] == ["POST"] + ["GET"] * 6


def test_follow_redirects_reaches_the_result() -> None:
    api = FakeAsyncAPI()
    api.job().completed({"x": 1})
    with httpx.Client(transport=api.transport(), base_url=api.base_url) as http:
        url = http.post("/jobs", json={}).headers["Location"]
        assert http.get(url, follow_redirects=True).json() == {"x": 1}


@pytest.mark.parametrize(
    ("step", "expected_status", "check"),
    [
        ("failed", 200, lambda d: d["error"]["code"] == "boom" and d["deadLetter"] is False),
        ("cancelled", 200, lambda d: d["status"] == "cancelled" and "cancelledAt" in d),
        ("expired", 410, lambda d: d["error"]["code"] == "expired" and set(d) == {"error"}),
        ("not_found", 404, lambda d: d["error"]["code"] == "not_found"),
        ("inline", 200, lambda d: d["status"] == "completed" and d["result"] == [1, 2]),
    ],
)
def test_reference_terminal_steps(step: str, expected_status: int, check: Any) -> None:
    api = FakeAsyncAPI()
    script = api.job()
    if step == "failed":
        script.failed(code="boom", message="it broke")
    elif step == "cancelled":
        script.cancelled()
    elif step == "expired":
        script.expired()
    elif step == "not_found":
        script.not_found()
    else:
        script.completed([1, 2], inline=True)
    with httpx.Client(transport=api.transport()) as http:
        url = http.post(api.base_url + "/jobs", json={}).headers["Location"]
        answer = http.get(url)
    assert answer.status_code == expected_status
    assert check(answer.json())


def test_status_code_dialect_answers() -> None:
    api = FakeAsyncAPI(dialect="status-code")
    ok = api.job("/ok", job_id="ok").pending().progress(1, 2).completed({"r": 1})
    failed = api.job("/failed").failed(code="x", retryable=True, dead_letter=True)
    cancelled = api.job("/cancelled").cancelled()
    report = api.job("/file").completed(file=b"a,b\n", content_type="text/csv", filename="r.csv")
    with httpx.Client(transport=api.transport(), base_url=api.base_url) as http:
        http.post("/ok", json={})
        assert ok.job.id == "ok"
        answers = [http.get(ok.job.status_url) for _ in range(3)]
        assert [a.status_code for a in answers] == [202, 202, 200]
        assert answers[0].json()["state"] == "pending"
        assert answers[1].json()["state"] == "inFlight"
        assert answers[2].json() == {"r": 1}

        http.post("/failed", json={})
        body = http.get(failed.job.status_url)
        assert body.status_code == 500
        assert body.json()["state"] == "deadLetter"
        assert body.json()["error"] == {"code": "x", "message": "the job failed", "retryable": True}

        http.post("/cancelled", json={})
        gone = http.get(cancelled.job.status_url)
        assert gone.status_code == 409 and gone.json()["state"] == "cancelled"

        http.post("/file", json={})
        redirect = http.get(report.job.status_url)
        assert redirect.status_code == 303
        result = http.get(redirect.headers["Location"])
        assert result.content == b"a,b\n"
        assert result.headers["Content-Type"] == "text/csv"
        assert result.headers["Content-Disposition"] == 'attachment; filename="r.csv"'


def test_raw_steps_and_rejections() -> None:
    api = FakeAsyncAPI()
    script = (
        api.job()
        .respond(503, headers={"Retry-After": "0"})
        .respond(200, content=b"<html>oops")
        .respond(200, json={"weird": True})
        .completed(None)
    )
    api.job("/bad").rejects(400, code="invalid_input", details=[{"loc": ["n"]}])
    with httpx.Client(transport=api.transport(), base_url=api.base_url) as http:
        http.post("/jobs", json={})
        url = script.job.status_url
        first = http.get(url)
        assert first.status_code == 503 and first.headers["Retry-After"] == "0"
        assert http.get(url).content == b"<html>oops"
        assert http.get(url).json() == {"weird": True}
        assert http.get(url).status_code == 303
        assert http.get(script.job.result_url).json() is None

        rejected = http.post("/bad", json={})
        assert rejected.status_code == 400
        assert rejected.json()["error"]["details"] == [{"loc": ["n"]}]
    assert len(api.scripts[1].submissions) == 1 and api.scripts[1].jobs == []


def test_result_before_completion_is_409_and_unknown_job_is_404() -> None:
    api = FakeAsyncAPI()
    script = api.job().pending().completed({"r": 1})
    with httpx.Client(transport=api.transport(), base_url=api.base_url) as http:
        http.post("/jobs", json={})
        assert http.get(script.job.result_url).status_code == 409
        missing = http.get("/jobs/nope")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"


def test_cancel_then_already_terminal() -> None:
    api = FakeAsyncAPI()
    script = api.job().pending().pending().completed({})
    with httpx.Client(transport=api.transport()) as http:
        url = http.post(api.base_url + "/jobs", json={}).headers["Location"]
        http.get(url)
        cancelled = http.delete(url)
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
        assert http.get(url).json()["status"] == "cancelled"
        again = http.delete(url)
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "already_terminal"
    assert script.job.state == "cancelled"


def test_idempotency_key_replays_the_submission() -> None:
    api = FakeAsyncAPI()
    script = api.job().completed({})
    with httpx.Client(transport=api.transport(), base_url=api.base_url) as http:
        first = http.post("/jobs", json={"a": 1}, headers={"Idempotency-Key": "k1"})
        again = http.post("/jobs", json={"a": 1}, headers={"Idempotency-Key": '"k1"'})
        other = http.post("/jobs", json={"a": 1}, headers={"Idempotency-Key": "k2"})
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert other.headers["Location"] != first.headers["Location"]
    assert len(script.jobs) == 2 and len(script.submissions) == 3


@pytest.mark.parametrize("dialect", ["reference", "status-code"])
def test_a_replay_answers_the_job_as_it_last_reported_itself(dialect: str) -> None:
    """As the reference server does: a 202 about the same job, the receipt before any
    status request, then the job's document as last reported (final included)."""
    api = FakeAsyncAPI(dialect=dialect)  # type: ignore[arg-type]
    script = api.job().progress(1, 2).completed({"ok": 1})
    key = {"Idempotency-Key": "k1"}
    with httpx.Client(transport=api.transport(), base_url=api.base_url) as http:
        first = http.post("/jobs", json={"a": 1}, headers=key)
        receipt = http.post("/jobs", json={"a": 1}, headers=key)
        assert receipt.status_code == 202 and receipt.json() == first.json()
        http.get(first.headers["Location"])
        running = http.post("/jobs", json={"a": 1}, headers=key)
        http.get(first.headers["Location"])
        done = http.post("/jobs", json={"a": 1}, headers=key)
    assert running.status_code == done.status_code == 202
    assert running.headers["Location"] == done.headers["Location"] == first.headers["Location"]
    assert running.headers["Idempotent-Replayed"] == done.headers["Idempotent-Replayed"] == "true"
    assert running.json()["status"] == "processing"
    assert running.json()["progress"]["current"] == 1
    assert done.json()["status"] == "completed"
    assert done.json()["resultUrl"] == script.job.result_url
    if dialect == "status-code":
        assert running.json()["state"] == "inFlight" and done.json()["state"] == "completed"
    assert len(script.jobs) == 1


def test_a_replay_of_a_dead_lettered_job_says_so_in_the_status_code_dialect() -> None:
    api = FakeAsyncAPI(dialect="status-code")
    api.job().failed(code="boom", dead_letter=True)
    key = {"Idempotency-Key": "k1"}
    with httpx.Client(transport=api.transport(), base_url=api.base_url) as http:
        first = http.post("/jobs", json={}, headers=key)
        http.get(first.headers["Location"])
        again = http.post("/jobs", json={}, headers=key)
    assert again.status_code == 202
    assert again.json()["state"] == "deadLetter" and again.json()["error"]["code"] == "boom"


def test_match_dispatches_scripts_on_one_path() -> None:
    api = FakeAsyncAPI()
    fast = api.job(match=lambda r: json.loads(r.content)["type"] == "fast").completed("fast")
    slow = api.job().pending().completed("slow")
    with httpx.Client(transport=api.transport(), base_url=api.base_url) as http:
        http.post("/jobs", json={"type": "fast"})
        http.post("/jobs", json={"type": "slow"})
    assert len(fast.jobs) == 1 and len(slow.jobs) == 1
    assert api.jobs == [fast.job, slow.job]


def test_base_path_status_template_and_put_method() -> None:
    api = FakeAsyncAPI("http://localhost:8123/api/v2")
    script = api.job(
        "/reports", method="put", status_path="/operations/{id}", job_id="op1"
    ).completed({"ok": 1}, inline=True)
    with httpx.Client(transport=api.transport()) as http:
        submitted = http.put("http://localhost:8123/api/v2/reports", json={})
        assert submitted.headers["Location"] == "http://localhost:8123/api/v2/operations/op1"
        assert http.get(submitted.headers["Location"]).json()["result"] == {"ok": 1}
        http.put("http://localhost:8123/api/v2/reports", json={})
    assert [job.id for job in script.jobs] == ["op1", "op1-2"]
    assert api.get_job("op1") is script.jobs[0]


def test_create_attaches_without_submission() -> None:
    api = FakeAsyncAPI()
    job = api.job().progress(2, 5, message="step 2/5").failed(code="late").create()
    with httpx.Client(transport=api.transport()) as http:
        doc = http.get(job.status_url).json()
        assert doc["progress"] == {"current": 2, "total": 5, "message": "step 2/5"}
        failed = http.get(job.status_url).json()
    assert failed["status"] == "failed" and failed["progress"]["current"] == 2


def _sse(text: str) -> list[dict[str, str]]:
    events: list[dict[str, str]] = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        if "event" in fields:
            events.append(fields)
    return events


def test_event_stream_carries_the_remaining_script() -> None:
    api = FakeAsyncAPI()
    script = api.job(events=True).pending().progress(0.5).completed({"done": True})
    with httpx.Client(transport=api.transport(), base_url=api.base_url) as http:
        submitted = http.post("/jobs", json={})
        job = script.job
        assert submitted.json()["eventsUrl"] == job.events_url
        assert submitted.headers["Link"] == f'<{job.events_url}>; rel="events"'
        stream = http.get(job.events_url)
        assert stream.headers["Content-Type"] == "text/event-stream"
        events = _sse(stream.text)
        assert [e["event"] for e in events] == ["status", "progress", "complete"]
        assert [e["id"] for e in events] == ["1", "2", "3"]
        assert json.loads(events[-1]["data"])["resultUrl"] == job.result_url
        # The job is now complete for polling too; a new stream replays status + complete.
        assert http.get(job.status_url).status_code == 303
        again = _sse(http.get(job.events_url).text)
        assert [e["event"] for e in again] == ["status", "complete"]
        assert [e["id"] for e in again] == ["4", "5"]


def test_event_stream_stops_at_a_non_state_step() -> None:
    api = FakeAsyncAPI()
    job = api.job(events=True).pending().expired().create()
    with httpx.Client(transport=api.transport()) as http:
        assert [e["event"] for e in _sse(http.get(job.events_url).text)] == ["status"]
        assert http.get(job.events_url).status_code == 410
    no_events = api.job("/plain").completed({}).create()
    with httpx.Client(transport=api.transport()) as http:
        assert http.get(no_events.events_url).status_code == 404


@pytest.mark.anyio
async def test_async_client_with_global_patching() -> None:
    api = FakeAsyncAPI()
    script = api.job().pending(retry_after=10).completed({"r": "async"})
    async with api, httpx.AsyncClient() as http:
        url = (await http.post(api.base_url + "/jobs", json={})).headers["Location"]
        assert (await http.get(url)).json()["retryAfter"] == 10
        final = await http.get(url, follow_redirects=True)
    assert final.json() == {"r": "async"}
    assert len(script.job.requests) == 4


def test_unmocked_requests_fail_loudly() -> None:
    api = FakeAsyncAPI()
    api.job()
    with api, httpx.Client() as http, pytest.raises(Exception, match="not mocked"):
        http.get("https://elsewhere.test/")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_url": "/relative"}, "absolute"),
        ({"dialect": "soap"}, "dialect"),
    ],
)
def test_constructor_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FakeAsyncAPI(**kwargs)


def test_script_validation() -> None:
    api = FakeAsyncAPI()
    with pytest.raises(ValueError, match="start with"):
        api.job("jobs")
    with pytest.raises(ValueError, match="method"):
        api.job(method="GET")
    with pytest.raises(ValueError, match="status_path"):
        api.job(status_path="/ops")
    with pytest.raises(ValueError, match="retry_after"):
        api.job().pending(retry_after=-1)
    with pytest.raises(ValueError, match="either"):
        api.job().completed({"a": 1}, file=b"x")
    with pytest.raises(ValueError, match="cannot also reject"):
        api.job().pending().rejects()
    with pytest.raises(ValueError, match="cannot have status"):
        api.job().rejects().pending()
    with pytest.raises(ValueError, match="4xx"):
        api.job().rejects(302)
    with pytest.raises(LookupError, match="no job"):
        _ = api.job("/x").job
    with pytest.raises(LookupError, match="no fake job"):
        api.get_job("missing")


def test_fake_clock() -> None:
    clock = FakeClock(100.0)
    clock.sleep(30)
    clock.sleep(-5)
    clock.advance(1.5)
    assert clock.now() == 131.5
    assert clock.sleeps == [30.0, 0.0]
    assert clock.slept == 30.0
    assert clock.wall().isoformat() == "2026-01-01T00:00:31.500000+00:00"
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)


@pytest.mark.anyio
async def test_fake_clock_async_sleep_advances_instantly() -> None:
    clock = FakeClock()
    await clock.asleep(3600)
    assert clock.now() == 3600.0 and clock.sleeps == [3600.0]


def test_documents_use_the_virtual_wall_clock() -> None:
    api = FakeAsyncAPI()
    job = api.job().pending().create()
    api.clock.advance(90)
    with httpx.Client(transport=api.transport()) as http:
        doc = http.get(job.status_url).json()
    assert doc["createdAt"] == "2026-01-01T00:00:00.000Z"
    assert doc["updatedAt"] == "2026-01-01T00:01:30.000Z"


def test_routes_join_an_existing_respx_router() -> None:
    import respx

    router = respx.mock(assert_all_called=False)
    router.get("https://other.test/ping").respond(204)
    api = FakeAsyncAPI(router=router)
    api.job().completed({"shared": True})
    with router, httpx.Client() as http:
        assert http.get("https://other.test/ping").status_code == 204
        url = http.post(api.base_url + "/jobs", json={}).headers["Location"]
        assert http.get(url, follow_redirects=True).json() == {"shared": True}


def test_start_and_stop_patch_httpx() -> None:
    api = FakeAsyncAPI()
    api.job().completed({})
    api.start()
    try:
        assert httpx.post(api.base_url + "/jobs", json={}).status_code == 202
    finally:
        api.stop()
    assert len(api.requests) == 1


@pytest.mark.parametrize("dialect", ["reference", "status-code"])
def test_retryable_failure_offers_a_retry_that_continues_the_script(dialect: str) -> None:
    api = FakeAsyncAPI(dialect=dialect)  # type: ignore[arg-type]
    script = api.job().failed(code="flaky", retryable=True).pending().completed({"ok": 2})
    with httpx.Client(transport=api.transport(), base_url=api.base_url) as http:
        http.post("/jobs", json={"type": "t", "input": {"a": 1}})
        first = script.job
        failed = http.get(first.status_url).json()
        assert failed["retryUrl"] == first.retry_url
        assert http.get(first.status_url).json()["retryUrl"] == first.retry_url  # stays failed
        retried = http.post(first.retry_url, headers={"Idempotency-Key": "r1"})
        assert retried.status_code == 202
        assert retried.json()["originalJobId"] == first.id
        again = http.post(first.retry_url, headers={"Idempotency-Key": '"r1"'})
        assert again.headers["Location"] == retried.headers["Location"]
        assert again.headers["Idempotent-Replayed"] == "true"
        second = script.job
        assert second is not first and second.job_input == {"a": 1}
        assert second.original_job_id == first.id
        url = retried.headers["Location"]
        assert http.get(url).status_code == (200 if dialect == "reference" else 202)
        assert http.get(url, follow_redirects=True).json() == {"ok": 2}
        # The original job stays failed; a retry of a completed job is refused.
        assert http.get(first.status_url).status_code == (200 if dialect == "reference" else 500)
        refused = http.post(second.retry_url)
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "not_retryable"
        assert http.get(second.retry_url).status_code == 405
    assert len(script.jobs) == 2


@pytest.mark.parametrize(
    "build",
    [
        lambda s: s.failed(retryable=True),  # nothing scripted after the failure
        lambda s: s.failed(retryable=False).completed({}),  # not retryable
    ],
)
def test_failures_without_a_retry(build: Any) -> None:
    api = FakeAsyncAPI()
    job = build(api.job()).create()
    with httpx.Client(transport=api.transport()) as http:
        assert "retryUrl" not in http.get(job.status_url).json()
        assert http.post(job.retry_url).status_code == 409


def test_long_poll_requests_are_marked_as_held() -> None:
    api = FakeAsyncAPI()
    held = api.job("/held", long_poll=True).pending().completed({})
    plain = api.job("/plain").pending().completed({})
    with httpx.Client(transport=api.transport(), base_url=api.base_url) as http:
        http.post("/held", json={})
        http.post("/plain", json={})
        by_query = http.get(held.job.status_url, params={"wait": "20"})
        assert by_query.headers["Preference-Applied"] == "wait=20"
        by_header = http.get(held.job.status_url, headers={"Prefer": "respond-async, wait=5"})
        assert by_header.headers["Preference-Applied"] == "wait=5"
        assert "Preference-Applied" not in http.get(held.job.status_url).headers
        ignored = http.get(plain.job.status_url, params={"wait": "20"})
        assert "Preference-Applied" not in ignored.headers
