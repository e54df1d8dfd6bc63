"""Driving the I/O-free flows by hand: scripted replies, a virtual clock, recorded commands.

No sockets, no real time: ``Sleep`` advances a number, ``Send`` takes the next scripted
response. A tiny reference-shaped dialect and a fixed policy stand in for the real ones so
that these tests pin the flows' behaviour and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from asyncreply_client._commands import (
    CloseStream,
    Command,
    Emit,
    ReadBytes,
    ReadChunk,
    Send,
    Sleep,
)
from asyncreply_client._errors import (
    JobExpiredError,
    JobNotFoundError,
    ProtocolError,
)
from asyncreply_client._flow import FlowConfig, StreamBudget
from asyncreply_client._headers import parse_retry_after
from asyncreply_client._http import HttpResponse
from asyncreply_client._models import JobError, JobState, JobStatus, Progress
from asyncreply_client._policies import PollDecision, PollObservation
from asyncreply_client._retry import RetryPolicy
from asyncreply_client._security import RequestFactory
from asyncreply_client._sse import SSEOptions
from asyncreply_client._urls import resolve_url
from asyncreply_client.dialects import Dialect, Submission

BASE = "http://api.test"
STATES = {s.value: s for s in JobState}


def response(
    status: int = 200,
    body: Any = None,
    *,
    headers: Mapping[str, str] | None = None,
    url: str = BASE + "/jobs/1",
    method: str = "GET",
    content: bytes | None = None,
) -> HttpResponse:
    """An ``HttpResponse`` view; a ``body`` is sent as JSON."""
    hdrs = httpx.Headers(headers or {})
    if body is not None:
        content = json.dumps(body).encode()
        hdrs.setdefault("content-type", "application/json")
    return HttpResponse(status, hdrs, content or b"", url, method)


def doc(state: str = "pending", **extra: Any) -> dict[str, Any]:
    """A reference-dialect status document for job ``1``."""
    return {"jobId": "1", "status": state, "statusUrl": "/jobs/1", **extra}


class DoubleDialect:
    """The reference shape, minimally: enough to drive the flows."""

    name = "double"

    def _status(self, body: Any, r: HttpResponse) -> JobStatus:
        if not isinstance(body, dict) or body.get("status") not in STATES:
            raise ProtocolError("not a status document", status_code=r.status_code, url=r.url)
        progress = body.get("progress")
        error = body.get("error")
        return JobStatus(
            id=body.get("jobId"),
            state=STATES[body["status"]],
            progress=None if progress is None else Progress(**progress),
            error=None if error is None else JobError(**error),
            result=body.get("result"),
            has_result="result" in body,
            result_url=resolve_url(r.url, body.get("resultUrl")),
            retry_url=resolve_url(r.url, body.get("retryUrl")),
            cancel_url=resolve_url(r.url, body.get("cancelUrl")),
            events_url=resolve_url(r.url, body.get("eventsUrl")),
            retry_after=parse_retry_after(r.headers, body),
            http_status=r.status_code,
            raw=body,
        )

    def interpret_submit(self, r: HttpResponse) -> Submission:
        if r.status_code == 303:
            where = resolve_url(r.url, r.headers.get("location"))
            done = JobStatus(state=JobState.COMPLETED, result_url=where, http_status=303)
            return Submission(done, status_url=None)
        body = r.json()
        status = self._status(body, r)
        where = resolve_url(r.url, r.headers.get("location") or body.get("statusUrl"))
        return Submission(
            status,
            status_url=where,
            events_url=status.events_url,
            cancel_url=status.cancel_url,
            retry_after=status.retry_after,
        )

    def interpret_status(
        self, r: HttpResponse, *, submission: Submission | None = None
    ) -> JobStatus:
        if r.status_code == 404:
            raise JobNotFoundError("404")
        if r.status_code == 410:
            raise JobExpiredError("410")
        if r.status_code == 303:
            where = resolve_url(r.url, r.headers.get("location"))
            return JobStatus(id="1", state=JobState.COMPLETED, result_url=where, http_status=303)
        if r.status_code != 200:
            raise ProtocolError("bad status", status_code=r.status_code, url=r.url)
        return self._status(r.json(), r)

    def interpret_event(self, event: str, data: str, *, url: str) -> JobStatus | None:
        body = json.loads(data)
        return self._status(body, response(200, body, url=url))


@dataclass
class Fixed:
    """A policy deciding a fixed delay (and optionally a long-poll wait); records what it saw."""

    delay: float = 1.0
    hold: float | None = None
    seen: list[PollObservation] = field(default_factory=list)

    def schedule(self) -> Fixed:
        return self

    def next(self, observation: PollObservation) -> PollDecision:
        self.seen.append(observation)
        return PollDecision(self.delay, self.hold)


@dataclass
class Clock:
    t: float = 1000.0

    def now(self) -> float:
        return self.t


def config(
    *,
    clock: Clock | None = None,
    polling: Fixed | None = None,
    headers: Mapping[str, str] | None = None,
    trusted: tuple[str, ...] = (),
    template: str | None = None,
    max_redirects: int = 10,
    streams: int = 50,
    retry: RetryPolicy | None = None,
    dialect: Dialect | None = None,
    wall: float = 1_700_000_000.0,
) -> FlowConfig:
    """A flow configuration; by default one attempt per request (``retry`` sets retries)."""
    clock = clock or Clock()
    return FlowConfig(
        requests=RequestFactory.create(
            BASE, headers=headers, trusted_origins=trusted, timeout=httpx.Timeout(5.0)
        ),
        dialect=dialect or DoubleDialect(),
        now=clock.now,
        polling=polling or Fixed(),
        long_polling=Fixed(delay=0.0, hold=30.0),
        max_redirects=max_redirects,
        events_url_template=template,
        sse=SSEOptions(max_reconnects=0, retry_delay=0.0),
        streams=StreamBudget(streams),
        retry=retry or RetryPolicy(attempts=1),
        wall_now=lambda: wall,
        random=lambda: 0.5,
    )


@dataclass
class Run:
    """What a flow did: its commands, and how it ended."""

    commands: list[Command]
    value: Any = None
    error: BaseException | None = None

    @property
    def sends(self) -> list[httpx.Request]:
        return [c.request for c in self.commands if isinstance(c, Send)]

    @property
    def sleeps(self) -> list[float]:
        return [c.seconds for c in self.commands if isinstance(c, Sleep)]

    @property
    def emitted(self) -> list[JobStatus]:
        return [c.status for c in self.commands if isinstance(c, Emit)]


Reply = HttpResponse | BaseException | bytes | str | None


def drive(
    flow: Generator[Command, Any, Any], replies: list[Reply], *, clock: Clock | None = None
) -> Run:
    """Run ``flow``: each ``Send`` / ``ReadChunk`` / ``ReadBytes`` takes the next reply (an
    exception is thrown in); ``Sleep`` advances ``clock``. Errors are captured in the run."""
    pending = list(replies)
    run = Run([])
    reply: Any = None
    error: BaseException | None = None
    while True:
        try:
            command = flow.send(reply) if error is None else flow.throw(error)
        except StopIteration as stop:
            run.value = stop.value
            break
        except Exception as exc:
            run.error = exc
            break
        run.commands.append(command)
        reply, error = None, None
        if isinstance(command, Send | ReadChunk | ReadBytes):
            assert pending, f"no scripted reply left for {command}"
            item = pending.pop(0)
            if isinstance(item, BaseException):
                error = item
            else:
                reply = item
        elif isinstance(command, Sleep):
            assert command.seconds >= 0
            if clock is not None:
                clock.t += command.seconds
        else:
            assert isinstance(command, Emit | CloseStream)
    assert not pending, f"unused replies: {pending}"
    return run


def transport_error() -> httpx.TransportError:
    """A fault as the drivers throw it into a flow: httpx's own exception."""
    return httpx.ConnectError("connection refused")
