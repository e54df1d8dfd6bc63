"""Webhook deliveries on Redis are shared by the instances (issue 18.1, 18.2).

- ``GET /webhooks/deliveries`` on any instance lists every delivery of the user, whichever
  instance made it.
- The per-user bound (``webhook_max_deliveries_per_owner``) holds over all instances: the
  oldest finished records go first, and a user whose records are all pending gets 429 on
  every instance.
- A pending delivery of an instance that died is taken over by a live instance (its lease
  lapses) without any instance starting, under the same delivery id.
- The issue's kill storm: ``--instances 3``, ``kill -9`` of one instance at a time during a
  webhook run, deliveries to two receiver instances sharing the SDK's Redis replay store:
  every job ends, every completed job has exactly one delivery id, and the receivers together
  process each delivery id exactly once (full run: ``python -m benchmarks.kill_storm --store
  redis://… --instances 3 --receivers 2 --jobs 1000``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import redis
from aiohttp import web

from benchmarks.kill_storm import run_kill_storm

from .conftest import poll_until
from .test_instances import receiver, server, status

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]


async def submit(client: httpx.AsyncClient, url: str, hook_url: str) -> httpx.Response:
    body = {"type": "echo", "input": {}, "callback": {"url": hook_url}}
    return await client.post(f"{url}/jobs", json=body)


async def listing(client: httpx.AsyncClient, url: str) -> list[dict[str, Any]]:
    answer = await client.get(f"{url}/webhooks/deliveries")
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["deliveries"]
    return items


async def test_every_instance_lists_every_delivery_of_the_user(redis_url: str) -> None:
    async with receiver() as (hooks, hook_url):
        with server(redis_url) as a, server(redis_url) as b:
            async with httpx.AsyncClient(timeout=30) as client:
                ids = []
                for url in (a.url, b.url, a.url, b.url):
                    answer = await submit(client, url, hook_url)
                    assert answer.status_code == 202, answer.text
                    ids.append(answer.json()["jobId"])
                for job_id in ids:
                    await status(client, a.url, job_id)
                await poll_until(lambda: all(hooks.seen[j] for j in ids), within=30)
                for url in (a.url, b.url):
                    items = await listing(client, url)
                    assert sorted(d["jobId"] for d in items) == sorted(ids)
                    assert {d["id"] for d in items} == set().union(*(hooks.seen[j] for j in ids))


async def test_the_per_user_bound_holds_over_all_instances(redis_url: str) -> None:
    async with receiver() as (hooks, hook_url):
        bound = ("--webhook-max-deliveries-per-owner", "3")
        with server(redis_url, *bound) as a, server(redis_url, *bound) as b:
            async with httpx.AsyncClient(timeout=30) as client:
                ids = []
                for i in range(6):
                    answer = await submit(client, (a.url, b.url)[i % 2], hook_url)
                    assert answer.status_code == 202, answer.text
                    ids.append(answer.json()["jobId"])
                    await status(client, a.url, ids[-1])
                    await poll_until(lambda: bool(hooks.seen[ids[-1]]), within=30)
                for url in (a.url, b.url):  # the oldest finished records were dropped
                    assert [d["jobId"] for d in await listing(client, url)] == ids[3:]
        store = redis.Redis.from_url(redis_url)
        try:
            kept = sum(store.hlen(key) for key in store.scan_iter(match="ar:{*}:dlv"))
        finally:
            store.close()
        assert kept == 3


@contextlib.asynccontextmanager
async def failing_receiver() -> AsyncIterator[str]:
    """A receiver that answers every delivery 503 (they stay pending)."""

    async def handle(request: web.Request) -> web.Response:
        return web.Response(status=503)

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    finally:
        await runner.cleanup()


async def test_a_user_whose_deliveries_are_all_pending_gets_429_on_every_instance(
    redis_url: str,
) -> None:
    flags = ("--webhook-max-deliveries-per-owner", "3", "--webhook-backoff", "30")
    flags += ("--webhook-max-attempts", "100")
    async with failing_receiver() as hook_url:
        with server(redis_url, *flags) as a, server(redis_url, *flags) as b:
            async with httpx.AsyncClient(timeout=30) as client:
                for url in (a.url, b.url, a.url):
                    answer = await submit(client, url, hook_url)
                    assert answer.status_code == 202, answer.text
                    await status(client, url, answer.json()["jobId"])
                for url in (a.url, b.url):
                    refused = await submit(client, url, hook_url)
                    assert refused.status_code == 429, refused.text
                    assert refused.json()["error"]["code"] == "webhook_backlog_full"
                    items = await listing(client, url)
                    assert [d["status"] for d in items] == ["pending"] * 3


class HangingReceiver:
    """Holds the first delivery unanswered (its sender is killed meanwhile); 200 after."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.first = asyncio.Event()
        self.release = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.ids.append(request.headers["webhook-id"])
        if len(self.ids) == 1:
            self.first.set()
            await self.release.wait()
        return web.Response(text="ok")


async def test_a_live_instance_takes_over_a_dead_instances_pending_delivery(
    redis_url: str,
) -> None:
    hook = HangingReceiver()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    hook_url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    store = redis.Redis.from_url(redis_url)
    try:
        with server(redis_url) as a, server(redis_url) as b:
            procs = {a.proc.pid: a, b.proc.pid: b}
            async with httpx.AsyncClient(timeout=30) as client:
                job_id = (await submit(client, a.url, hook_url)).json()["jobId"]
                with anyio.fail_after(30):
                    await hook.first.wait()
                (delivery_id,) = hook.ids
                holder = store.get(f"ar:{{{job_id}}}:dlease:{delivery_id}")
                assert holder is not None
                sender_pid = int(holder.decode().split(":")[1])
                os.kill(sender_pid, signal.SIGKILL)  # the instance sending it dies
                procs[sender_pid].proc.wait(timeout=30)
                (live,) = (p for pid, p in procs.items() if pid != sender_pid)
                await poll_until(lambda: len(hook.ids) >= 2, within=30)
                assert set(hook.ids) == {delivery_id}  # the same delivery id, resent
                assert live.proc.poll() is None  # taken over by a running instance
                with anyio.fail_after(30):
                    while True:
                        (item,) = await listing(client, live.url)
                        if item["status"] == "delivered":
                            break
                        await asyncio.sleep(0.05)
                assert item["id"] == delivery_id
    finally:
        hook.release.set()
        store.close()
        await runner.cleanup()


@pytest.mark.timeout(300)  # several process starts: slow on a loaded machine
async def test_kill_storm_of_three_instances_with_two_deduping_receivers(
    tmp_path: Path, redis_url: str
) -> None:
    report = await run_kill_storm(
        tmp_path,
        jobs=120,
        kill_every=0.2,
        jobs_between_kills=30,
        store=redis_url,
        instances=3,
        receivers=2,
    )
    assert report.problems == []  # one delivery id per completed job, processed once
    assert report.kills >= 2
    assert report.completed == report.jobs == 120
    assert sum(report.processed_by) == 120
