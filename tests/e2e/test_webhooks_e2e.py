"""End to end: the reference server delivers signed webhooks to the aiohttp receiver on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest
from aiohttp import web

from asyncreply_client._models import JobState
from asyncreply_client.webhooks import (
    CATCH_ALL,
    VerificationScheme,
    WebhookCallback,
    WebhookEvent,
    WebhookVerifier,
    aiohttp_webhook_handler,
)
from reference_server import ServerConfig, serve
from reference_server.admin import DeliverySnapshot
from reference_server.serving import RunningServer

pytestmark = pytest.mark.anyio

SECRET = "whsec_ZTJlLXdlYmhvb2stc2VjcmV0LWZvci1hc3luY3JlcGx5"
TIMEOUT = 10.0  # an upper bound for every wait; the tests normally take milliseconds


@dataclass
class Inbox:
    """Events the receiver's callbacks accepted, with a way to wait for them."""

    events: list[WebhookEvent] = field(default_factory=list)
    calls: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def accept(self, event: WebhookEvent) -> None:
        async with self.changed:
            self.events.append(event)
            self.changed.notify_all()

    async def wait_for(self, predicate: Callable[[list[WebhookEvent]], bool]) -> None:
        with anyio.fail_after(TIMEOUT):
            async with self.changed:
                await self.changed.wait_for(lambda: predicate(self.events))


@dataclass
class Receiver:
    url: str
    answers: list[tuple[int, dict[str, Any]]]  # what the receiver answered, in order


@contextlib.asynccontextmanager
async def run_receiver(
    verifier: WebhookVerifier,
    callbacks: Mapping[str, WebhookCallback],
    *,
    lose_first_answer: bool = False,
) -> AsyncIterator[Receiver]:
    """Serve ``aiohttp_webhook_handler`` on 127.0.0.1.

    With ``lose_first_answer`` a middleware plays a proxy that loses the receiver's first
    answer and tells the sender 502, so the sender delivers the same message again.
    """
    answers: list[tuple[int, dict[str, Any]]] = []

    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        response = await handler(request)
        assert isinstance(response, web.Response) and response.body is not None
        answers.append((response.status, json.loads(bytes(response.body))))  # type: ignore[arg-type]
        if lose_first_answer and len(answers) == 1:
            return web.json_response({"error": "bad gateway"}, status=502)
        return response

    app = web.Application(middlewares=[record])
    app.router.add_post("/hooks", aiohttp_webhook_handler(verifier, callbacks))
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield Receiver(f"http://127.0.0.1:{runner.addresses[0][1]}/hooks", answers)
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def reference_server(**overrides: Any) -> AsyncIterator[RunningServer]:
    config = ServerConfig(
        webhook_secret=SECRET,
        webhook_backoff=0.001,  # retries within milliseconds
        webhook_max_attempts=5,
        webhook_timeout=5.0,
        webhook_allow_private=True,  # the receiver listens on loopback
        workers=2,
        **overrides,
    )
    async with serve(config) as server:
        yield server


async def submit(
    server: RunningServer, job: dict[str, Any], receiver: Receiver, *events: str
) -> str:
    callback: dict[str, Any] = {"url": receiver.url}
    if events:
        callback["events"] = list(events)
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        response = await client.post("/jobs", json={**job, "callback": callback})
    assert response.status_code == 202, response.text
    job_id = response.json()["jobId"]
    assert isinstance(job_id, str)
    return job_id


async def settled_delivery(server: RunningServer, job_id: str) -> DeliverySnapshot:
    """The job's single delivery once the server has recorded its outcome."""
    with anyio.fail_after(TIMEOUT):
        while True:
            records = [d for d in server.admin.deliveries() if d.job_id == job_id]
            if records and records[0].status in ("delivered", "failed"):
                assert len(records) == 1
                return records[0]
            await asyncio.sleep(0.005)  # the admin view has no change notification


@pytest.mark.parametrize("scheme", ["auto", "standard", "hmac-sha256"])
async def test_completed_event_is_delivered_and_verified(scheme: VerificationScheme) -> None:
    inbox = Inbox()
    verifier = WebhookVerifier(SECRET, scheme=scheme)
    async with (
        reference_server() as server,
        run_receiver(verifier, {"job.completed": inbox.accept}) as receiver,
    ):
        job_id = await submit(server, {"type": "echo", "input": {"n": 1}}, receiver)
        await inbox.wait_for(lambda events: len(events) >= 1)
        record = await settled_delivery(server, job_id)

    [event] = inbox.events
    assert event.scheme == ("standard" if scheme == "auto" else scheme)
    assert (event.type, event.job_id, event.status) == ("job.completed", job_id, JobState.COMPLETED)
    assert event.delivery_id == record.id
    assert event.data is not None and event.data["resultUrl"] == f"/jobs/{job_id}/result"
    assert (record.status, record.attempts, record.response_status) == ("delivered", 1, 200)
    assert receiver.answers == [(200, {"status": "processed", "deliveryId": record.id})]


async def test_progress_events_arrive_in_order_then_completion() -> None:
    inbox = Inbox()
    verifier = WebhookVerifier(SECRET)
    async with (
        reference_server() as server,
        run_receiver(verifier, {CATCH_ALL: inbox.accept}) as receiver,
    ):
        job_id = await submit(
            server, {"type": "sleep", "input": {"seconds": 0.01, "steps": 2}}, receiver, "progress"
        )
        await inbox.wait_for(lambda events: any(e.type == "job.completed" for e in events))

    progress = [e for e in inbox.events if e.type == "job.progress"]
    assert inbox.events[-1].type == "job.completed"
    assert {e.job_id for e in inbox.events} == {job_id}
    currents = [e.data["progress"]["current"] for e in progress if e.data is not None]
    assert currents == sorted(currents) and currents[-1] == 2
    assert len({e.delivery_id for e in inbox.events}) == len(inbox.events)


async def test_a_receiver_failing_twice_is_retried_until_it_succeeds() -> None:
    inbox = Inbox()

    async def flaky(event: WebhookEvent) -> None:
        inbox.calls += 1
        if inbox.calls <= 2:
            raise RuntimeError(f"transient failure {inbox.calls}")
        await inbox.accept(event)

    verifier = WebhookVerifier(SECRET)
    async with (
        reference_server() as server,
        run_receiver(verifier, {"job.completed": flaky}) as receiver,
    ):
        job_id = await submit(server, {"type": "echo", "input": {"n": 2}}, receiver)
        await inbox.wait_for(lambda events: len(events) >= 1)
        record = await settled_delivery(server, job_id)

    assert inbox.calls == 3
    assert [e.job_id for e in inbox.events] == [job_id]
    assert [status for status, _ in receiver.answers] == [500, 500, 200]
    assert (record.status, record.attempts, record.response_status) == ("delivered", 3, 200)


async def test_a_duplicate_delivery_is_processed_once() -> None:
    inbox = Inbox()

    async def count(event: WebhookEvent) -> None:
        inbox.calls += 1
        await inbox.accept(event)

    verifier = WebhookVerifier(SECRET)
    async with (
        reference_server() as server,
        run_receiver(verifier, {"job.completed": count}, lose_first_answer=True) as receiver,
    ):
        job_id = await submit(server, {"type": "echo", "input": {"n": 3}}, receiver)
        record = await settled_delivery(server, job_id)

    # The answer was lost once (502 to the server), so the server sent the message again.
    assert (record.status, record.attempts) == ("delivered", 2)
    assert receiver.answers == [
        (200, {"status": "processed", "deliveryId": record.id}),
        (200, {"status": "duplicate", "deliveryId": record.id}),
    ]
    assert inbox.calls == 1
    assert [e.job_id for e in inbox.events] == [job_id]


async def test_a_replayed_capture_is_acknowledged_but_not_processed_again() -> None:
    inbox = Inbox()
    captured: list[tuple[dict[str, str], bytes]] = []

    async def capture(event: WebhookEvent) -> None:
        await inbox.accept(event)

    @web.middleware
    async def keep_raw(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        captured.append((dict(request.headers), await request.read()))
        return await handler(request)

    verifier = WebhookVerifier(SECRET)
    app = web.Application(middlewares=[keep_raw])
    app.router.add_post("/hooks", aiohttp_webhook_handler(verifier, {CATCH_ALL: capture}))
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/hooks"
        async with reference_server() as server:
            job_id = await submit(server, {"type": "echo", "input": {}}, Receiver(url, []))
            await inbox.wait_for(lambda events: len(events) >= 1)
            await settled_delivery(server, job_id)
        sent_headers, body = captured[0]
        hop_by_hop = {"host", "content-length", "connection", "transfer-encoding"}
        headers = {k: v for k, v in sent_headers.items() if k.lower() not in hop_by_hop}
        async with httpx.AsyncClient() as client:
            replay = await client.post(url, content=body, headers=headers)
            tampered = await client.post(url, content=body + b" ", headers=headers)
    finally:
        await runner.cleanup()

    assert (replay.status_code, replay.json()["status"]) == (200, "duplicate")
    assert tampered.status_code == 401
    assert len(inbox.events) == 1


async def test_a_receiver_with_the_wrong_secret_answers_401_and_is_not_retried() -> None:
    inbox = Inbox()
    verifier = WebhookVerifier("whsec_bm90LXRoZS1zZXJ2ZXJzLXNlY3JldA==")
    async with (
        reference_server() as server,
        run_receiver(verifier, {CATCH_ALL: inbox.accept}) as receiver,
    ):
        job_id = await submit(server, {"type": "echo", "input": {}}, receiver)
        record = await settled_delivery(server, job_id)

    assert (record.status, record.attempts, record.response_status) == ("failed", 1, 401)
    assert [(status, body["error"]["code"]) for status, body in receiver.answers] == [
        (401, "invalid_signature")
    ]
    assert inbox.events == []
