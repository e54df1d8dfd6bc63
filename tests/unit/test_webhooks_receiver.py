"""The webhook receiver: dispatch, answers, de-duplication, and the aiohttp handler."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import httpx
import pytest
from aiohttp import web

from asyncreply_client.webhooks import (
    CATCH_ALL,
    WebhookCallback,
    WebhookEvent,
    WebhookResponse,
    WebhookVerifier,
    aiohttp_webhook_handler,
    handle_webhook,
    handle_webhook_async,
    sign,
)

SECRET = "whsec_YXN5bmNyZXBseS1yZWNlaXZlci1zZWNyZXQ="
NOW = 1_700_000_000


def delivery(
    event_type: str = "job.completed", *, msg_id: str = "msg_1", ts: int = NOW
) -> tuple[dict[str, str], bytes]:
    body = json.dumps(
        {"type": event_type, "jobId": "j1", "data": {"jobId": "j1", "status": "completed"}}
    ).encode()
    return sign(body, SECRET, msg_id=msg_id, timestamp=ts), body


def make_verifier(**options: Any) -> WebhookVerifier:
    return WebhookVerifier(SECRET, clock=lambda: NOW, **options)


Deliver = Callable[
    [WebhookVerifier, Mapping[str, str], bytes, Mapping[str, WebhookCallback]], WebhookResponse
]


def deliver_sync(
    verifier: WebhookVerifier,
    headers: Mapping[str, str],
    body: bytes,
    callbacks: Mapping[str, WebhookCallback],
) -> WebhookResponse:
    return handle_webhook(verifier, headers, body, callbacks)


def deliver_async(
    verifier: WebhookVerifier,
    headers: Mapping[str, str],
    body: bytes,
    callbacks: Mapping[str, WebhookCallback],
) -> WebhookResponse:
    return asyncio.run(handle_webhook_async(verifier, headers, body, callbacks))


@pytest.fixture(params=[deliver_sync, deliver_async], ids=["sync", "async"])
def deliver(request: pytest.FixtureRequest) -> Deliver:
    chosen: Deliver = request.param
    return chosen


def document(answer: WebhookResponse) -> Any:
    assert answer.headers["Content-Type"] == "application/json"
    return json.loads(answer.body)


def test_a_valid_delivery_is_dispatched_by_type(deliver: Deliver) -> None:
    completed: list[WebhookEvent] = []
    failed: list[WebhookEvent] = []
    headers, body = delivery("job.completed")
    answer = deliver(
        make_verifier(),
        headers,
        body,
        {"job.completed": completed.append, "job.failed": failed.append},
    )
    assert answer.status_code == 200
    assert document(answer) == {"status": "processed", "deliveryId": "msg_1"}
    assert [event.job_id for event in completed] == ["j1"] and failed == []


def test_the_catch_all_takes_unnamed_types_only(deliver: Deliver) -> None:
    named: list[str | None] = []
    other: list[str | None] = []
    callbacks = {
        "job.completed": lambda e: named.append(e.type),
        CATCH_ALL: lambda e: other.append(e.type),
    }
    verifier = make_verifier()
    for i, event_type in enumerate(["job.completed", "job.progress", "job.failed"]):
        headers, body = delivery(event_type, msg_id=f"m{i}")
        assert deliver(verifier, headers, body, callbacks).status_code == 200
    assert named == ["job.completed"]
    assert other == ["job.progress", "job.failed"]


def test_an_event_nobody_listens_to_is_acknowledged(deliver: Deliver) -> None:
    headers, body = delivery("job.progress")
    answer = deliver(make_verifier(), headers, body, {"job.completed": lambda e: None})
    assert answer.status_code == 200
    assert document(answer)["status"] == "ignored"


def test_a_duplicate_is_acknowledged_and_processed_once(deliver: Deliver) -> None:
    calls: list[str | None] = []
    verifier = make_verifier()
    headers, body = delivery()
    callbacks = {CATCH_ALL: lambda e: calls.append(e.delivery_id)}
    assert deliver(verifier, headers, body, callbacks).status_code == 200
    answer = deliver(verifier, headers, body, callbacks)
    assert answer.status_code == 200
    assert document(answer) == {"status": "duplicate", "deliveryId": "msg_1"}
    assert calls == ["msg_1"]


def test_a_failing_callback_answers_500_and_the_retry_is_processed(
    deliver: Deliver, caplog: pytest.LogCaptureFixture
) -> None:
    attempts: list[int] = []

    def flaky(event: WebhookEvent) -> None:
        attempts.append(len(attempts) + 1)
        if len(attempts) < 3:
            raise RuntimeError("database down")

    verifier = make_verifier()
    headers, body = delivery()
    with caplog.at_level(logging.ERROR, logger="asyncreply.webhooks"):
        first = deliver(verifier, headers, body, {"job.completed": flaky})
    assert first.status_code == 500
    assert document(first)["error"]["code"] == "callback_failed"
    assert "database down" not in first.body.decode()  # internals are not sent back
    assert "database down" in caplog.text
    assert deliver(verifier, headers, body, {"job.completed": flaky}).status_code == 500
    assert deliver(verifier, headers, body, {"job.completed": flaky}).status_code == 200
    assert deliver(verifier, headers, body, {"job.completed": flaky}).status_code == 200
    assert attempts == [1, 2, 3]


def test_a_duplicate_during_processing_is_told_to_come_back(deliver: Deliver) -> None:
    verifier = make_verifier()
    headers, body = delivery()
    inner: list[WebhookResponse] = []

    def reentrant(event: WebhookEvent) -> None:
        # The sender timed out and re-sent while the first copy is still being handled.
        inner.append(handle_webhook(verifier, headers, body, {CATCH_ALL: lambda e: None}))

    assert deliver(verifier, headers, body, {CATCH_ALL: reentrant}).status_code == 200
    assert inner[0].status_code == 503
    assert inner[0].headers["Retry-After"] == "1"
    assert document(inner[0])["error"]["code"] == "delivery_in_progress"


@pytest.mark.parametrize(
    ("mutate", "status", "code"),
    [
        (lambda h, b: ({**h, "webhook-signature": "v1," + "A" * 44}, b), 401, "invalid_signature"),
        (lambda h, b: (h, b + b" "), 401, "invalid_signature"),
        (lambda h, b: ({**h, "webhook-signature": "v1"}, b), 400, "malformed_header"),
        (lambda h, b: ({}, b), 400, "missing_header"),
        (
            lambda h, b: (sign(b"nope", SECRET, msg_id="x", timestamp=NOW), b"nope"),
            400,
            "invalid_payload",
        ),
        (
            lambda h, b: (sign(b, SECRET, msg_id="x", timestamp=NOW - 301), b),
            401,
            "stale_timestamp",
        ),
        (
            lambda h, b: (sign(b, SECRET, msg_id="x", timestamp=NOW + 301), b),
            401,
            "future_timestamp",
        ),
    ],
)
def test_verification_failures_answer_4xx(
    deliver: Deliver,
    mutate: Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]],
    status: int,
    code: str,
) -> None:
    calls: list[WebhookEvent] = []
    headers, body = mutate(*delivery())
    answer = deliver(make_verifier(), headers, body, {CATCH_ALL: calls.append})
    assert answer.status_code == status
    assert document(answer)["error"]["code"] == code
    assert calls == []


def test_without_a_replay_store_every_copy_is_processed(deliver: Deliver) -> None:
    calls: list[WebhookEvent] = []
    verifier = make_verifier(replay_store=None)
    headers, body = delivery()
    for _ in range(2):
        assert deliver(verifier, headers, body, {CATCH_ALL: calls.append}).status_code == 200
    assert len(calls) == 2


class Interrupted(BaseException):
    pass


def test_an_interrupted_callback_propagates_and_the_delivery_is_forgotten(
    deliver: Deliver,
) -> None:
    verifier = make_verifier()
    headers, body = delivery()

    def interrupted(event: WebhookEvent) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        deliver(verifier, headers, body, {CATCH_ALL: interrupted})
    assert deliver(verifier, headers, body, {CATCH_ALL: lambda e: None}).status_code == 200


def test_the_async_variant_awaits_coroutine_callbacks() -> None:
    seen: list[str | None] = []

    async def on_completed(event: WebhookEvent) -> None:
        await asyncio.sleep(0)
        seen.append(event.job_id)

    async def failing(event: WebhookEvent) -> None:
        await asyncio.sleep(0)
        raise ValueError("boom")

    headers, body = delivery()
    verifier = make_verifier()
    failed = asyncio.run(handle_webhook_async(verifier, headers, body, {CATCH_ALL: failing}))
    assert failed.status_code == 500
    ok = asyncio.run(handle_webhook_async(verifier, headers, body, {CATCH_ALL: on_completed}))
    assert ok.status_code == 200
    assert seen == ["j1"]


def test_the_sync_variant_refuses_coroutine_functions_up_front() -> None:
    async def on_completed(event: WebhookEvent) -> None:
        return None

    headers, body = delivery()
    verifier = make_verifier()
    with pytest.raises(TypeError, match="handle_webhook_async"):
        handle_webhook(verifier, headers, body, {CATCH_ALL: on_completed})
    # Nothing was recorded: the delivery is still new.
    assert handle_webhook(verifier, headers, body, {CATCH_ALL: lambda e: None}).status_code == 200


def test_the_sync_variant_closes_a_stray_coroutine_and_answers_500() -> None:
    async def later() -> None:
        return None

    headers, body = delivery()
    verifier = make_verifier()
    # A lambda returning a coroutine slips past the up-front check; it is closed, not leaked
    # (pytest turns a "never awaited" warning into an error here).
    answer = handle_webhook(verifier, headers, body, {CATCH_ALL: lambda e: later()})
    assert answer.status_code == 500
    assert handle_webhook(verifier, headers, body, {CATCH_ALL: lambda e: None}).status_code == 200


def test_response_unpacks_as_status_and_body() -> None:
    headers, body = delivery()
    status_code, answer_body = handle_webhook(make_verifier(), headers, body, {})
    assert status_code == 200 and json.loads(answer_body)["status"] == "ignored"
    assert "Retry-After" not in WebhookResponse(200, b"{}").headers


# ------------------------------------------------------------------------- aiohttp handler


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[WebhookEvent], WebhookVerifier]]:
    events: list[WebhookEvent] = []
    attempts = {"n": 0}

    async def on_completed(event: WebhookEvent) -> None:
        events.append(event)

    def on_failed(event: WebhookEvent) -> None:
        attempts["n"] += 1
        if attempts["n"] == 1:
            raise RuntimeError("first attempt fails")
        events.append(event)

    verifier = make_verifier()
    app = web.Application()
    app.router.add_post(
        "/hook",
        aiohttp_webhook_handler(verifier, {"job.completed": on_completed, "job.failed": on_failed}),
    )
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/hook", events, verifier
    finally:
        await runner.cleanup()


@pytest.mark.anyio
async def test_aiohttp_handler_end_to_end(
    receiver: tuple[str, list[WebhookEvent], WebhookVerifier],
) -> None:
    url, events, _ = receiver
    async with httpx.AsyncClient() as client:
        headers, body = delivery("job.completed", msg_id="a")
        first = await client.post(url, content=body, headers=headers)
        again = await client.post(url, content=body, headers=headers)
        forged = await client.post(url, content=body + b" ", headers=headers)
        headers, body = delivery("job.failed", msg_id="b")
        failed_once = await client.post(url, content=body, headers=headers)
        retried = await client.post(url, content=body, headers=headers)
    assert (first.status_code, first.json()["status"]) == (200, "processed")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert forged.status_code == 401
    assert forged.headers["content-type"].startswith("application/json")
    assert failed_once.status_code == 500
    assert retried.status_code == 200
    assert [(e.type, e.delivery_id) for e in events] == [
        ("job.completed", "a"),
        ("job.failed", "b"),
    ]
