"""What every vendor fake shares: jobs that advance one step per status read, a request log,
and serving an aiohttp app on loopback (in the test's event loop, or in a thread)."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import itertools
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

#: Running steps a job goes through before it ends.
STEPS = 2
_IDS = itertools.count(1)


@dataclass
class Job:
    """One job: queued (step 0), running (steps 1..STEPS), then done or failed; a job whose
    input says ``{"fail": true}`` fails."""

    id: str
    input: dict[str, Any]
    step: int = 0
    cancelled: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fails(self) -> bool:
        return bool(self.input.get("fail"))

    @property
    def phase(self) -> str:
        """``queued``, ``running``, ``done``, ``failed`` or ``cancelled``."""
        if self.cancelled:
            return "cancelled"
        if self.step == 0:
            return "queued"
        if self.step <= STEPS:
            return "running"
        return "failed" if self.fails else "done"

    @property
    def finished(self) -> bool:
        return self.phase in ("done", "failed", "cancelled")

    def advance(self) -> None:
        """One step further (a status read moves the job on: deterministic, no clock)."""
        if not self.finished:
            self.step += 1

    def finish(self) -> None:
        self.step = STEPS + 1


class VendorFake(abc.ABC):
    """Base of a fake: ``app`` to serve, ``jobs`` by id, ``requests`` seen (method, path)."""

    prefix = "job"

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.requests: list[tuple[str, str]] = []
        self.base_url = ""
        self.app = web.Application(middlewares=[self._record])
        self.routes(self.app.router)

    @abc.abstractmethod
    def routes(self, router: web.UrlDispatcher) -> None:
        """Add the vendor's routes."""

    @web.middleware
    async def _record(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        return await handler(request)

    def new_job(self, body: Any) -> Job:
        data = body if isinstance(body, dict) else {}
        payload = data.get("input", data)
        job = Job(f"{self.prefix}{next(_IDS)}", payload if isinstance(payload, dict) else {})
        self.jobs[job.id] = job
        return job

    def job(self, request: web.Request, key: str = "id") -> Job:
        job = self.jobs.get(request.match_info[key])
        if job is None:
            raise web.HTTPNotFound(text='{"detail": "Not found."}', content_type="application/json")
        return job

    def url(self, path: str) -> str:
        return self.base_url + path


@contextlib.asynccontextmanager
async def serving(fake: VendorFake) -> AsyncIterator[str]:
    """Serve ``fake`` on a free loopback port in the running event loop; yield its base URL."""
    runner = web.AppRunner(fake.app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.base_url = f"http://127.0.0.1:{port}"
    try:
        yield fake.base_url
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def serving_in_thread(fake: VendorFake) -> Iterator[str]:
    """Serve ``fake`` from a background thread (for synchronous scripts); yield its base URL."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop = asyncio.Event()
    urls: list[str] = []

    async def main() -> None:
        async with serving(fake) as url:
            urls.append(url)
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield urls[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
