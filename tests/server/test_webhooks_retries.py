"""A webhook retry later than the receiver's tolerance still verifies (issue 12).

Every attempt is signed afresh: the payload's ``timestamp`` and the timestamp headers are the
attempt's time, while ``deliveryId`` / ``webhook-id`` stay the same, so our own verifier
accepts a retry 400 s after the first attempt and de-duplicates it with either scheme.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from aiohttp import web

from asyncreply_client.webhooks import (
    WebhookEvent,
    WebhookVerifier,
    handle_webhook_async,
)
from reference_server import ServerConfig, serve

from .conftest import FAST_DEFAULTS, WEBHOOK_SECRET

pytestmark = pytest.mark.anyio

TOLERANCE = 300.0


@dataclass
class FakeClock:
    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class CheckingReceiver:
    """Verifies each attempt with both schemes on the shared fake clock."""

    clock: FakeClock
    answers: list[int]
    attempts: list[dict[str, Any]] = field(default_factory=list)
    processed: dict[str, list[WebhookEvent]] = field(default_factory=dict)
    changed: anyio.Event = field(default_factory=anyio.Event)
    verifiers: dict[str, WebhookVerifier] = field(default_factory=dict)
    url: str = ""

    def __post_init__(self) -> None:
        for scheme in ("standard", "hmac-sha256"):
            self.verifiers[scheme] = WebhookVerifier(
                WEBHOOK_SECRET,
                scheme=scheme,
                tolerance=TOLERANCE,
                clock=self.clock,
            )
            self.processed[scheme] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        answer = self.answers.pop(0) if self.answers else 200
        outcome: dict[str, Any] = {"payload": json.loads(body), "headers": dict(request.headers)}
        for scheme, verifier in self.verifiers.items():
            result = await handle_webhook_async(
                verifier, request.headers, body, {"*": self.processed[scheme].append}
            )
            outcome[scheme] = json.loads(result.body)
            if answer != 200:
                # The receiver failed after verifying: forget it so the retry is processed.
                for event in self.processed[scheme][-1:]:
                    verifier.forget(event)
                del self.processed[scheme][-1:]
        self.attempts.append(outcome)
        if answer != 200:
            self.clock.now += TOLERANCE + 100  # the retry comes well outside the window
        self.changed.set()
        return web.Response(status=answer)


@pytest.fixture
async def checking_receiver() -> AsyncIterator[CheckingReceiver]:
    recv = CheckingReceiver(FakeClock(), answers=[503])
    app = web.Application()
    app.router.add_post("/hook", recv.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    recv.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield recv
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_a_retry_after_the_tolerance_still_verifies(
    checking_receiver: CheckingReceiver, store: str, tmp_path: Path
) -> None:
    recv = checking_receiver
    config = ServerConfig(**FAST_DEFAULTS, store=store, sqlite_path=str(tmp_path / "jobs.sqlite3"))
    async with serve(config, clock=recv.clock) as server, httpx.AsyncClient() as client:
        submitted = await client.post(
            f"{server.base_url}/jobs",
            json={"type": "echo", "input": {"n": 1}, "callback": {"url": recv.url}},
        )
        assert submitted.status_code == 202
        with anyio.fail_after(10):
            while len(recv.attempts) < 2:
                recv.changed = anyio.Event()
                await recv.changed.wait()
        first, second = recv.attempts
        # Both attempts verified with both schemes, each at its own time.
        for attempt in (first, second):
            assert attempt["standard"]["status"] == "processed", attempt
            assert attempt["hmac-sha256"]["status"] == "processed", attempt
        assert first["payload"]["deliveryId"] == second["payload"]["deliveryId"]
        assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"]
        assert first["payload"]["deliveryId"] == first["headers"]["webhook-id"]
        gap = int(second["headers"]["webhook-timestamp"]) - int(
            first["headers"]["webhook-timestamp"]
        )
        assert gap >= TOLERANCE
        assert first["payload"]["timestamp"] != second["payload"]["timestamp"]
        # Each scheme processed the event once.
        assert [len(events) for events in recv.processed.values()] == [1, 1]


async def test_a_resent_attempt_is_a_duplicate_for_both_schemes() -> None:
    # What a receiver sees when the sender retries an attempt it already processed (its 200
    # was lost): same deliveryId, fresh timestamp and body. Both schemes de-duplicate it.
    from asyncreply_client.webhooks import sign
    from reference_server.webhooks import render_payload

    clock = FakeClock()
    event = {"type": "job.completed", "jobId": "j1", "data": {"status": "completed"}}
    answers = {}
    for scheme in ("standard", "hmac-sha256"):
        verifier = WebhookVerifier(WEBHOOK_SECRET, scheme=scheme, clock=clock)
        seen: list[WebhookEvent] = []
        statuses = []
        for at in (clock.now, clock.now + 1000):
            body = render_payload("msg_same", event, at)
            headers = sign(body, WEBHOOK_SECRET, msg_id="msg_same", timestamp=int(at))
            clock.now = at
            answer = await handle_webhook_async(verifier, headers, body, {"*": seen.append})
            statuses.append(json.loads(answer.body)["status"])
        answers[scheme] = statuses
        assert len(seen) == 1
    assert answers == {
        "standard": ["processed", "duplicate"],
        "hmac-sha256": ["processed", "duplicate"],
    }
