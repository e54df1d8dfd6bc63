"""Small async request-reply servers, each broken in exactly one deliberate way.

:class:`MiniServer` is a conforming implementation of the reference protocol (reference
dialect) small enough to read in one sitting; a :class:`Breakage` switches one behaviour to
a wrong one. Jobs advance one step per status request rather than with time, so every run is
deterministic and fast. :func:`running` starts a server on ``127.0.0.1`` (port 0) in a
background thread, so the synchronous checker can be pointed at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["Breakage", "MiniServer", "running"]

STEPS = 3


class Breakage(enum.Enum):
    """The one thing a :class:`MiniServer` gets wrong."""

    MISSING_LOCATION = "202 without Location, statusUrl or any other monitor"
    GARBAGE_RETRY_AFTER = "Retry-After: soon"
    PROGRESS_BACKWARDS = "progress 3/3, 2/3, 1/3"
    NEVER_FINISHES = "the job stays processing forever"
    RESULT_404 = "303 to a result URL that answers 404"
    SSE_WRONG_CONTENT_TYPE = "the event stream is served as application/json"
    IDEMPOTENCY_IGNORED = "a replayed Idempotency-Key creates a second job"
    # More ways to be wrong, for the checker's other checks.
    MONITOR_404 = "the Location of the 202 answers 404"
    UNREADABLE_STATUS = "status answers are HTML pages labelled application/json"
    SSE_WITHOUT_IDS = "events carry no id"
    UNKNOWN_ID_200 = "any id answers 200 with a pending job"
    CANCEL_FINISHED_200 = "cancelling a finished job answers 200"
    IDEMPOTENCY_BODY_IGNORED = "a reused Idempotency-Key with another body replays the job"
    ABSURD_RETRY_AFTER = "Retry-After: 86400000 (a thousand days)"
    # Conforming variations the checker must accept.
    RETRY_AFTER_DATE = "Retry-After as an HTTP-date (valid)"


@dataclass
class Job:
    id: str
    polls: int = 0
    cancelled: bool = False

    @property
    def base(self) -> str:
        return f"/jobs/{self.id}"


@dataclass
class MiniServer:
    """A tiny server for the contract checker's tests; ``breakage=None`` is conforming."""

    breakage: Breakage | None = None
    jobs: dict[str, Job] = field(default_factory=dict)
    keys: dict[str, tuple[str, str]] = field(default_factory=dict)
    submissions: int = 0

    # ------------------------------------------------------------------ job model
    def state(self, job: Job) -> str:
        if job.cancelled:
            return "cancelled"
        if job.polls == 0:
            return "pending"
        if self.breakage is Breakage.NEVER_FINISHES or job.polls <= STEPS:
            return "processing"
        return "completed"

    def progress(self, job: Job) -> dict[str, Any] | None:
        if self.state(job) != "processing":
            return None
        step = min(job.polls, STEPS)
        if self.breakage is Breakage.PROGRESS_BACKWARDS:
            step = STEPS + 1 - step
        return {"current": step, "total": STEPS, "message": f"step {step}/{STEPS}"}

    def document(self, job: Job) -> dict[str, Any]:
        state = self.state(job)
        doc: dict[str, Any] = {
            "jobId": job.id,
            "type": "demo",
            "status": state,
            "attempt": 1,
            "progress": self.progress(job),
            "createdAt": "2026-11-23T09:00:00.000Z",
            "startedAt": None if state == "pending" else "2026-11-23T09:00:00.010Z",
            "updatedAt": "2026-11-23T09:00:00.020Z",
            "estimatedCompletion": None,
            "retryAfter": None if state in ("completed", "cancelled") else 0.01,
            "statusUrl": job.base,
            "eventsUrl": f"{job.base}/events",
            "cancelUrl": job.base,
        }
        if state == "completed":
            doc["resultUrl"] = self.result_path(job)
        if state == "cancelled":
            doc["cancelledAt"] = "2026-11-23T09:00:00.030Z"
        return doc

    def result_path(self, job: Job) -> str:
        if self.breakage is Breakage.RESULT_404:
            return f"{job.base}/output"  # nothing is served there
        return f"{job.base}/result"

    def retry_headers(self) -> dict[str, str]:
        if self.breakage is Breakage.GARBAGE_RETRY_AFTER:
            return {"Retry-After": "soon"}
        if self.breakage is Breakage.ABSURD_RETRY_AFTER:
            return {"Retry-After": "86400000"}
        if self.breakage is Breakage.RETRY_AFTER_DATE:
            # One second after the answer's own Date (RFC 9110 §10.2.3 measures from it).
            return {
                "Date": "Mon, 23 Nov 2026 09:00:00 GMT",
                "Retry-After": "Mon, 23 Nov 2026 09:00:01 GMT",
            }
        return {"Retry-After": "0", "Retry-After-Ms": "10"}

    # ------------------------------------------------------------------ routes
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/jobs", self.submit)
        app.router.add_get("/jobs/{id}", self.status)
        app.router.add_delete("/jobs/{id}", self.cancel)
        app.router.add_get("/jobs/{id}/result", self.result)
        app.router.add_get("/jobs/{id}/events", self.events)
        return app

    def find(self, request: web.Request) -> Job:
        job = self.jobs.get(request.match_info["id"])
        if job is None and self.breakage is Breakage.UNKNOWN_ID_200:
            return Job(request.match_info["id"])
        if job is None:
            raise web.HTTPNotFound(
                text=json.dumps({"error": {"code": "not_found", "message": "no such job"}}),
                content_type="application/json",
            )
        return job

    def accepted(self, job: Job) -> web.Response:
        body: dict[str, Any] = {"jobId": job.id, "status": "pending"}
        headers = self.retry_headers()
        if self.breakage is not Breakage.MISSING_LOCATION:
            body.update(statusUrl=job.base, eventsUrl=f"{job.base}/events", cancelUrl=job.base)
            headers["Location"] = job.base
            if self.breakage is Breakage.MONITOR_404:
                headers["Location"] = f"/monitors/{job.id}"
                body["statusUrl"] = f"/monitors/{job.id}"
            headers["Link"] = f'<{job.base}/events>; rel="events"'
        return web.json_response(body, status=202, headers=headers)

    async def submit(self, request: web.Request) -> web.Response:
        raw = await request.read()
        digest = hashlib.sha256(raw).hexdigest()
        key = request.headers.get("Idempotency-Key")
        if key is not None and self.breakage is not Breakage.IDEMPOTENCY_IGNORED:
            known = self.keys.get(key)
            if known is not None:
                if known[1] != digest and self.breakage is not Breakage.IDEMPOTENCY_BODY_IGNORED:
                    return web.json_response(
                        {"error": {"code": "idempotency_key_reused", "message": "reused"}},
                        status=422,
                    )
                return self.accepted(self.jobs[known[0]])
        self.submissions += 1
        job = Job(uuid.uuid4().hex)
        self.jobs[job.id] = job
        if key is not None:
            self.keys[key] = (job.id, digest)
        return self.accepted(job)

    async def status(self, request: web.Request) -> web.Response:
        job = self.find(request)
        if not job.cancelled:
            job.polls += 1
        doc = self.document(job)
        if self.breakage is Breakage.UNREADABLE_STATUS:
            return web.Response(
                text="<html><body>Working on it</body></html>", content_type="application/json"
            )
        if doc["status"] == "completed":
            return web.json_response(doc, status=303, headers={"Location": self.result_path(job)})
        if doc["status"] == "cancelled":
            return web.json_response(doc)
        return web.json_response(doc, headers=self.retry_headers())

    async def cancel(self, request: web.Request) -> web.Response:
        job = self.find(request)
        if self.breakage is Breakage.CANCEL_FINISHED_200 and self.state(job) == "completed":
            return web.json_response(self.document(job))
        if self.state(job) in ("completed", "cancelled"):
            return web.json_response(
                {"error": {"code": "already_terminal", "message": "too late"}}, status=409
            )
        job.cancelled = True
        return web.json_response(self.document(job))

    async def result(self, request: web.Request) -> web.Response:
        job = self.find(request)
        if self.state(job) != "completed":
            return web.json_response(
                {"error": {"code": "not_completed", "message": "not yet"}}, status=409
            )
        return web.json_response({"answer": 42})

    async def events(self, request: web.Request) -> web.StreamResponse:
        job = self.find(request)
        response = web.StreamResponse(headers={"Cache-Control": "no-cache"})
        if self.breakage is Breakage.SSE_WRONG_CONTENT_TYPE:
            response.content_type = "application/json"
        else:
            response.content_type = "text/event-stream"
        await response.prepare(request)
        await response.write(b"retry: 20\n\n")
        event_id = 0

        async def send(name: str) -> None:
            nonlocal event_id
            event_id += 1
            data = json.dumps(self.document(job))
            head = "" if self.breakage is Breakage.SSE_WITHOUT_IDS else f"id: {event_id}\n"
            await response.write(f"{head}event: {name}\ndata: {data}\n\n".encode())

        try:
            await send("status")
            while self.state(job) not in ("completed", "cancelled"):
                if self.breakage is Breakage.NEVER_FINISHES:
                    await response.write(b": keepalive\n\n")
                    await asyncio.sleep(0.05)
                    continue
                job.polls += 1
                await send("progress")
            await send("complete")
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client went away (the checker closes a stream it has seen enough of)
        return response


@contextlib.contextmanager
def running(server: MiniServer) -> Iterator[str]:
    """Serve ``server`` on 127.0.0.1 (a free port) in a thread; yield its ``/jobs`` URL."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(server.app(), handle_signals=False)
    ready = threading.Event()
    stop: asyncio.Future[None] | None = None
    address: list[str] = []
    failure: list[BaseException] = []

    async def main() -> None:
        nonlocal stop
        stop = loop.create_future()
        try:
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            address.append(f"http://{host}:{port}/jobs")
        except BaseException as exc:
            failure.append(exc)
            raise
        finally:
            ready.set()
        try:
            await stop
        finally:
            await runner.cleanup()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        if failure or not address:
            raise RuntimeError(f"the mini server did not start: {failure!r}")
        yield address[0]
    finally:
        if stop is not None:
            loop.call_soon_threadsafe(stop.set_result, None)
        thread.join(10)
        loop.close()
