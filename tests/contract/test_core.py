"""The checker's I/O-free core, driven by hand: no sockets, no clock, no sleeping."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from asyncreply_client._commands import CloseStream, ReadChunk, Send, Sleep
from asyncreply_client._http import HttpResponse
from asyncreply_client.contract import ContractReport, Outcome
from asyncreply_client.contract._audits import _unknown_id
from asyncreply_client.contract._checks import _Checker
from asyncreply_client.contract._runner import _options
from asyncreply_client.dialects import ReferenceDialect

Answer = Callable[[httpx.Request], HttpResponse]


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> float:
        return self.t


def answer(request: httpx.Request, status: int, body: Any = None, **headers: str) -> HttpResponse:
    content = b"" if body is None else json.dumps(body).encode()
    hdrs = httpx.Headers({k.replace("_", "-"): v for k, v in headers.items()})
    if body is not None:
        hdrs["Content-Type"] = "application/json"
    return HttpResponse(status, hdrs, content, str(request.url), request.method)


def drive(serve: Answer, **options: Any) -> tuple[ContractReport, list[float], list[Send]]:
    """Run the checker against ``serve``; return the report, the sleeps and the requests."""
    clock = FakeClock()
    opts = _options(
        "http://api.test/jobs",
        json={"type": "demo"},
        content=None,
        method="POST",
        headers={"Authorization": "Bearer secret"},
        timeout=options.pop("timeout", 30.0),
        request_timeout=10.0,
        min_poll_interval=0.05,
        max_poll_interval=options.pop("max_poll_interval", 1.0),
        max_retry_after=3600.0,
        idempotency=False,
        alternate_content=None,
    )
    flow = _Checker(opts, ReferenceDialect(), clock.now, wall=lambda: 0.0).run()
    sleeps: list[float] = []
    sent: list[Send] = []
    reply: Any = None
    while True:
        try:
            command = flow.send(reply)
        except StopIteration as stop:
            return stop.value, sleeps, sent
        reply = None
        if isinstance(command, Sleep):
            sleeps.append(command.seconds)
            clock.t += command.seconds
        elif isinstance(command, Send):
            sent.append(command)
            # A Send is one attempt: the checker observes raw answers.
            reply = serve(command.request)
            clock.t += 0.001
        else:
            assert isinstance(command, ReadChunk | CloseStream)


def doc(state: str, **extra: Any) -> dict[str, Any]:
    return {"jobId": "j1", "status": state, **extra}


def test_retry_after_is_honoured_but_capped_and_nothing_else_is_offered() -> None:
    polls = 0

    def serve(request: httpx.Request) -> HttpResponse:
        nonlocal polls
        path = request.url.path
        if request.method == "POST":
            return answer(request, 202, doc("pending"), Location="/jobs/j1", Retry_After="120")
        if path == "/jobs/j1":
            polls += 1
            if polls == 1:
                return answer(request, 200, doc("processing"), Retry_After_Ms="300")
            return answer(request, 303, doc("completed"), Location="/jobs/j1/result")
        if path == "/jobs/j1/result":
            return answer(request, 200, {"answer": 42})
        return answer(request, 404, {"error": {"code": "not_found"}})

    report, sleeps, sent = drive(serve)

    # 120 s from the 202 is capped to max_poll_interval; 300 ms is honoured.
    assert sleeps == [1.0, 0.3]
    assert report["terminal_state"].outcome is Outcome.PASS
    assert report["result"].summary.startswith("303 See Other to http://api.test/jobs/j1/result")
    assert report["retry_after"].summary == "2 Retry-After hints, all valid (0.3-120 s)"
    # No cancel URL, no event stream, no progress: skipped, not failed.
    skipped = {c.name for c in report.checks if c.outcome is Outcome.SKIPPED}
    assert skipped == {"cancellation", "sse", "progress_monotonic", "idempotency"}
    assert report.passed
    # The unknown id replaces the job's id in the status URL's path.
    last = sent[-1].request
    assert last.url.path.startswith("/jobs/") and last.url.path != "/jobs/j1"
    assert len(last.url.path) == len("/jobs/j1")


def test_polling_never_sleeps_past_the_deadline() -> None:
    def serve(request: httpx.Request) -> HttpResponse:
        if request.method == "POST":
            return answer(request, 202, doc("pending"), Location="/jobs/j1")
        if request.url.path == "/jobs/j1":
            return answer(request, 200, doc("processing"), Retry_After="1")
        return answer(request, 404, {"error": {"code": "not_found"}})

    report, sleeps, _ = drive(serve, timeout=2.5, max_poll_interval=1.0)

    assert sum(sleeps) <= 2.5 + 1e-9
    assert sleeps[-1] < 1.0  # the last sleep was cut to the deadline
    result = report["terminal_state"]
    assert result.outcome is Outcome.FAIL
    assert result.summary.startswith("no terminal state within 2.5 s")


def test_credentials_go_only_to_the_submission_origin() -> None:
    def serve(request: httpx.Request) -> HttpResponse:
        if request.method == "POST":
            return answer(request, 202, doc("pending"), Location="https://elsewhere.test/ops/j1")
        return answer(request, 200, doc("completed", result={"ok": True}))

    _, _, sent = drive(serve)

    by_host = {(s.request.method, s.request.url.host): s.request.headers for s in sent}
    assert by_host[("POST", "api.test")]["Authorization"] == "Bearer secret"
    assert "Authorization" not in by_host[("GET", "elsewhere.test")]


def test_a_404_monitor_fails_the_submit_check_only() -> None:
    def serve(request: httpx.Request) -> HttpResponse:
        if request.method == "POST":
            return answer(request, 202, doc("pending"), Location="/jobs/j1")
        return answer(request, 404, {"error": {"code": "not_found"}})

    report, _, _ = drive(serve)

    assert [c.name for c in report.failures] == ["submit"]
    evidence = report["submit"].evidence
    assert evidence is not None and evidence.status_code == 404
    assert evidence.url == "http://api.test/jobs/j1"


def test_a_cancel_that_arrives_after_the_job_finished_may_answer_409() -> None:
    jobs = 0

    def serve(request: httpx.Request) -> HttpResponse:
        nonlocal jobs
        if request.method == "POST":
            jobs += 1
            job = f"j{jobs}"
            body = {"jobId": job, "status": "pending", "cancelUrl": f"/jobs/{job}"}
            return answer(request, 202, body, Location=f"/jobs/{job}")
        if request.method == "DELETE":  # every job is finished by the time it is cancelled
            return answer(request, 409, {"error": {"code": "already_terminal"}})
        job = request.url.path.rsplit("/", 1)[-1]
        if job in ("j1", "j2"):
            return answer(request, 200, {"jobId": job, "status": "completed", "result": 1})
        return answer(request, 404, {"error": {"code": "not_found"}})

    report, _, _ = drive(serve)

    result = report["cancellation"]
    assert result.outcome is Outcome.PASS
    assert result.summary == (
        "a finished job: 409; the second job finished (completed) before it could be cancelled: 409"
    )


def test_transient_answers_are_waited_out_and_a_job_that_vanishes_fails() -> None:
    polls = 0

    def serve(request: httpx.Request) -> HttpResponse:
        nonlocal polls
        if request.method == "POST":
            return answer(request, 202, doc("pending"), Location="/status?id=j1")
        if request.url.path == "/status":
            polls += 1
            if request.url.params["id"] != "j1":
                return answer(request, 404, {"error": {"code": "not_found"}})
            if polls == 1:
                return answer(request, 503, None, Retry_After="0")
            if polls == 2:
                return answer(request, 200, doc("processing"))
            return answer(request, 410, {"error": {"code": "expired"}})
        return answer(request, 404, {"error": {"code": "not_found"}})

    report, _, sent = drive(serve)

    assert [c.name for c in report.failures] == ["terminal_state"]
    result = report["terminal_state"]
    assert result.summary == "the job vanished (HTTP 410) before reaching a terminal state"
    assert result.evidence is not None and result.evidence.status_code == 410
    # The unknown id was derived from the query string.
    assert report["unknown_id"].outcome is Outcome.PASS
    assert sent[-1].request.url.params["id"] != "j1"


def test_an_unknown_id_is_never_the_jobs_own(monkeypatch: pytest.MonkeyPatch) -> None:
    draws = iter("j1k2")  # the first draw happens to give the job's id back
    monkeypatch.setattr(random.SystemRandom, "choice", lambda self, seq: next(draws))
    assert _unknown_id("j1") == "k2"
    assert _unknown_id("--") == "--0"  # nothing to draw: still another id
