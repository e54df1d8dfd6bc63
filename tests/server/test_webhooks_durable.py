"""Durable webhook deliveries with ``--store sqlite`` (issue 12).

A server process killed with SIGKILL in the middle of a delivery (waiting out its backoff, or
waiting for the receiver's answer) resumes it after a restart under the same delivery id; the
receiver's de-duplication sees the event exactly once.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from aiohttp import web

from asyncreply_client.webhooks import WebhookEvent, WebhookVerifier, handle_webhook_async

from .conftest import WEBHOOK_SECRET, poll_until

pytestmark = pytest.mark.anyio


@dataclass
class DedupingReceiver:
    """Answers the first arrival as told; de-duplicates every later one with a verifier."""

    first: str  # "503": fail the first attempt; "hold": process it, then never answer
    verifier: WebhookVerifier = field(
        default_factory=lambda: WebhookVerifier(WEBHOOK_SECRET, scheme="standard")
    )
    arrivals: list[str] = field(default_factory=list)  # webhook-id of every arrival
    answers: list[str] = field(default_factory=list)
    processed: list[WebhookEvent] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.arrivals.append(request.headers.get("webhook-id", ""))
        if len(self.arrivals) == 1 and self.first == "503":
            self.answers.append("503")
            return web.Response(status=503)
        answer = await handle_webhook_async(
            self.verifier, request.headers, body, {"*": self.processed.append}
        )
        self.answers.append(json.loads(answer.body).get("status", "error"))
        if len(self.arrivals) == 1 and self.first == "hold":
            await anyio.sleep_forever()  # processed, but the sender never hears of it
        return web.Response(status=answer.status_code, body=answer.body)


@pytest.fixture
async def receiver_for(request: pytest.FixtureRequest) -> AsyncIterator[DedupingReceiver]:
    recv = DedupingReceiver(first=request.param)
    app = web.Application()
    app.router.add_post("/hook", recv.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    recv.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield recv
    finally:
        await runner.cleanup()


@dataclass
class ServerProcess:
    proc: subprocess.Popen[str]
    base_url: str


@contextlib.contextmanager
def server_process(db: Path, log: Path, backoff: float) -> Iterator[ServerProcess]:
    """``python -m reference_server --store sqlite`` on a free port, killed at exit."""
    args = [
        sys.executable, "-m", "reference_server",
        "--store", "sqlite", "--sqlite-path", str(db), "--port", "0",
        "--workers", "2", "--webhook-allow-private", "--webhook-secret", WEBHOOK_SECRET,
        "--webhook-backoff", str(backoff), "--webhook-max-attempts", "5",
        "--webhook-timeout", "30",
    ]  # fmt: skip
    with log.open("a") as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on " in line, line
        yield ServerProcess(proc, line.rsplit(" ", 1)[1].strip())
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


async def deliveries(client: httpx.AsyncClient, base_url: str) -> list[dict[str, Any]]:
    answer = await client.get(f"{base_url}/webhooks/deliveries")
    assert answer.status_code == 200
    items = answer.json()["deliveries"]
    assert isinstance(items, list)
    return items


@pytest.mark.parametrize(
    ("receiver_for", "backoff"),
    [("503", 2.0), ("hold", 0.01)],
    ids=["killed-mid-backoff", "killed-mid-attempt"],
    indirect=["receiver_for"],
)
async def test_a_delivery_survives_kill_9_and_arrives_once(
    receiver_for: DedupingReceiver, backoff: float, tmp_path: Path
) -> None:
    recv = receiver_for
    db, log = tmp_path / "jobs.sqlite3", tmp_path / "server.log"
    async with httpx.AsyncClient(timeout=10) as client:
        with server_process(db, log, backoff) as first:
            submitted = await client.post(
                f"{first.base_url}/jobs",
                json={"type": "echo", "input": {}, "callback": {"url": recv.url}},
            )
            assert submitted.status_code == 202
            job_id = submitted.json()["jobId"]
            await poll_until(lambda: len(recv.answers) == 1, within=20)
            if recv.first == "503":
                # Kill only once the failed attempt is on record: the server is backing off.
                async def failed_attempt_recorded() -> bool:
                    items = await deliveries(client, first.base_url)
                    return bool(items) and items[0]["attempts"] == 1

                with anyio.fail_after(20):
                    while not await failed_attempt_recorded():  # noqa: ASYNC110 - another process
                        await anyio.sleep(0.01)
            os.kill(first.proc.pid, signal.SIGKILL)
            first.proc.wait(timeout=30)
        with server_process(db, log, backoff) as second:
            await poll_until(lambda: len(recv.arrivals) >= 2, within=30)

            async def delivered() -> list[dict[str, Any]]:
                items = await deliveries(client, second.base_url)
                return [d for d in items if d["status"] == "delivered"]

            with anyio.fail_after(20):
                while not await delivered():  # noqa: ASYNC110 - another process
                    await anyio.sleep(0.01)
            (item,) = await deliveries(client, second.base_url)
            assert item["jobId"] == job_id
            assert item["attempts"] >= 1
    assert len(set(recv.arrivals)) == 1, "every attempt carries the same delivery id"
    assert [event.job_id for event in recv.processed] == [job_id], "processed exactly once"
    expected = ["503", "processed"] if recv.first == "503" else ["processed", "duplicate"]
    assert recv.answers == expected
