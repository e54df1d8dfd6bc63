"""The checker's core: a generator of flow commands (no I/O, no clock of its own) with its
requests, its polling of a job, and the checks of the first job (terminal state, result).

Requests go through the client's own layers: the request factory (credentials only to the
submission's origin), the flow's ``send`` with retries and redirects off (every answer is
observed raw) and a recorder of every attempt, so that a request that got no answer is
reported with what was really sent. The SDK's drivers run it (``_runner``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator, Mapping
from typing import Any

import httpx

from .._commands import CloseStream, Command, ReadChunk, Sleep
from .._errors import (
    AsyncReplyError,
    JobExpiredError,
    JobNotFoundError,
    TransportError,
    excerpt,
)
from .._flow import FlowConfig, open_stream, send
from .._http import HttpResponse
from .._models import JobState, JobStatus
from .._policies import FixedInterval
from .._retry import TRANSIENT_STATUSES
from .._security import RequestFactory
from .._urls import resolve_url
from ..dialects import DeclarativeDialect, Dialect, Submission
from ._audits import (
    _evidence,
    _Fault,
    _header,
    _Options,
    _ProgressAudit,
    _reason,
    _RetryAfterAudit,
    _Watch,
)
from ._report import CheckResult, Evidence, Outcome, audit_result

__all__ = ["_CheckerBase"]

#: Transient answers (or silences) in a row after which polling gives up.
_MAX_TRANSIENT = 3
_MAX_RESULT_REDIRECTS = 5


class _CheckerBase:
    """The plumbing, the polling and the first job's checks of the contract run.

    Its commands are ``Send`` / ``ReadChunk`` / ``CloseStream`` / ``Sleep``; a failed request
    (``httpx.RequestError``) is thrown in at the ``yield`` of the command that failed.
    """

    def __init__(
        self,
        options: _Options,
        dialect: Dialect,
        now: Callable[[], float],
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.o = options
        self.dialect = dialect
        self.now = now
        self.results: dict[str, CheckResult] = {}
        self.retry_after = _RetryAfterAudit(options.max_retry_after, wall)
        self.progress = _ProgressAudit()
        self.documents = 0
        self.document_failure: tuple[str, Evidence] | None = None
        self.attempts = 0
        self.last_attempt: tuple[httpx.Request, HttpResponse | BaseException] | None = None
        self.cfg = FlowConfig(
            requests=RequestFactory.create(
                options.url,
                headers=options.headers,
                timeout=httpx.Timeout(options.request_timeout),
            ),
            dialect=dialect,
            now=now,
            # The checker polls by its own rules (_watch): the flow's policies go unused.
            polling=FixedInterval(options.max_poll_interval),
            long_polling=FixedInterval(options.max_poll_interval),
            retry=None,
            follow_redirects=False,
            record=self._record,
            wall_now=wall,
        )

    # ------------------------------------------------------------------ plumbing
    def _record(self, request: httpx.Request, outcome: HttpResponse | BaseException) -> None:
        """The flows' recorder: every attempt, and the last one kept as evidence."""
        self.attempts += 1
        self.last_attempt = (request, outcome)

    def _send(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        read_timeout: float | None = None,
    ) -> Generator[Command, Any, HttpResponse | _Fault]:
        """One request, observed raw; a ``_Fault`` when it got no answer."""
        try:
            if stream:  # a GET whose body is read by the check (result, event stream)
                timeout = self.o.request_timeout
                read = timeout if read_timeout is None else max(0.001, min(timeout, read_timeout))
                limits = {"connect": timeout, "read": read, "write": timeout, "pool": timeout}
                wanted = {"Accept": "*/*", **(headers or {})}
                return (yield from open_stream(self.cfg, url, headers=wanted, timeout=limits))
            answer = yield from send(
                self.cfg, method, url, headers=headers, content=content, accept="*/*"
            )
            return answer.response
        except TransportError:
            return self._unanswered(method, url)
        except httpx.HTTPError as exc:  # an answer whose body cannot be decoded
            return _Fault(method, url, f"no answer: {_kind(exc)}")
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            return _Fault(method, url, f"unusable URL: {exc}")

    def _unanswered(self, method: str, url: str) -> _Fault:
        """The fault of the last attempt, as the recorder saw it."""
        if self.last_attempt is None:  # pragma: no cover - a fault always follows an attempt
            return _Fault(method, url, "no answer")
        request, outcome = self.last_attempt
        return _Fault(request.method, str(request.url), f"no answer: {_kind(outcome)}")

    def _read_excerpt(self) -> Generator[Command, Any, bytes]:
        """Read the first piece of the open stream (for evidence), then close it."""
        try:
            chunk: str | None = yield ReadChunk()
        except httpx.HTTPError:
            chunk = None
        yield CloseStream()
        return (chunk or "").encode()

    def _set(self, result: CheckResult) -> None:
        # Summaries are one line whatever a server put in the text they quote.
        one_line = " ".join(result.summary.split())
        if one_line != result.summary:
            result = CheckResult(
                result.name, result.outcome, one_line, result.evidence, result.duration
            )
        self.results[result.name] = result

    def _pass(self, name: str, summary: str, started: float | None = None) -> None:
        self._set(CheckResult(name, Outcome.PASS, summary, duration=self._since(started)))

    def _fail(
        self, name: str, summary: str, evidence: Evidence | None, started: float | None = None
    ) -> None:
        self._set(CheckResult(name, Outcome.FAIL, summary, evidence, self._since(started)))

    def _skip(self, name: str, summary: str) -> None:
        self._set(CheckResult(name, Outcome.SKIPPED, summary))

    def _since(self, started: float | None) -> float:
        return 0.0 if started is None else max(0.0, self.now() - started)

    def _submit_request(
        self, *, key: str | None = None, content: bytes | None = None
    ) -> Generator[Command, Any, HttpResponse | _Fault]:
        extra: dict[str, str] = {}
        if key is not None:
            extra["Idempotency-Key"] = key
        body = self.o.content if content is None else content
        return (yield from self._send(self.o.method, self.o.url, content=body, headers=extra))

    def _interpret_submit(
        self, reply: HttpResponse | _Fault, *, what: str = "the submission"
    ) -> tuple[Submission | None, str | None, Evidence | None]:
        """``(submission, problem, evidence)`` for a submit answer that should be a 202."""
        if isinstance(reply, _Fault):
            return None, f"{what} got no answer", reply.evidence()
        described = isinstance(self.dialect, DeclarativeDialect) and 200 <= reply.status_code < 300
        if reply.status_code != 202 and not described:
            # A described API (a preset, a DeclarativeDialect) says for itself how a running
            # job is answered (Replicate: 201); the pattern's own dialects want a 202.
            location = _header(reply, "Location")
            return (
                None,
                f"{what} answered HTTP {reply.status_code}, expected 202 Accepted",
                _evidence(reply, header=None if location is None else f"Location: {location}"),
            )
        location = _header(reply, "Location")
        shown = (
            _evidence(reply, header=f"Location: {location}")
            if location is not None
            else _evidence(reply, note="no Location header")
        )
        try:
            submission = self.dialect.interpret_submit(reply)
        except AsyncReplyError as exc:
            return None, f"{what}'s 202 has no usable status monitor: {_reason(exc)}", shown
        if submission.status_url is None:
            return None, f"{what}'s {reply.status_code} names no status monitor", shown
        return submission, None, None

    # ------------------------------------------------------------------ polling
    def _next_delay(self, hint: float | None, status: JobStatus | None, backoff: float) -> float:
        if hint is None and status is not None and status.retry_after is not None:
            hint = status.retry_after
        if hint is None or not math.isfinite(hint):
            hint = backoff
        return min(max(hint, self.o.min_poll_interval), self.o.max_poll_interval)

    def _watch(
        self,
        url: str,
        submission: Submission,
        *,
        first_hint: float | None,
        deadline: float,
        track_progress: bool,
    ) -> Generator[Command, Any, _Watch]:
        """Poll ``url`` until a terminal state, the deadline, or a problem."""
        started = self.now()
        watch = _Watch()
        backoff = max(self.o.min_poll_interval, 0.01)
        step: tuple[float, int] | None = (
            self._next_delay(first_hint, submission.status, backoff),
            0,
        )
        while step is not None:
            delay, transient = step
            left = deadline - self.now()
            if watch.polls and left <= 0:
                break
            if delay > 0:
                yield Sleep(max(0.0, min(delay, left)))
            reply = yield from self._send("GET", url)
            watch.polls += 1
            backoff = min(backoff * 2, self.o.max_poll_interval)
            step = self._judge_poll(
                watch, url, submission, reply, transient, backoff, track_progress=track_progress
            )
        watch.elapsed = self.now() - started
        return watch

    def _judge_poll(
        self,
        watch: _Watch,
        url: str,
        submission: Submission,
        reply: HttpResponse | _Fault,
        transient: int,
        backoff: float,
        *,
        track_progress: bool,
    ) -> tuple[float, int] | None:
        """Record one poll's reply in ``watch``: ``(next delay, transient answers in a row)``,
        or ``None`` when polling stops."""
        if isinstance(reply, _Fault):
            if watch.polls == 1 and watch.status is None:
                watch.unresolvable = True
                watch.problem = f"the status monitor {url} cannot be reached"
                watch.problem_evidence = reply.evidence()
                return None
            if transient + 1 > _MAX_TRANSIENT:
                watch.problem = f"the status monitor stopped answering ({reply.reason})"
                watch.problem_evidence = reply.evidence()
                return None
            return backoff, transient + 1
        watch.response = reply
        hint = self.retry_after.observe(reply)
        if reply.status_code in TRANSIENT_STATUSES:
            if transient + 1 > _MAX_TRANSIENT:
                watch.problem = f"the status monitor kept answering HTTP {reply.status_code}"
                watch.problem_evidence = _evidence(reply)
                return None
            return self._next_delay(hint, None, backoff), transient + 1
        status = self._read_status(watch, url, submission, reply)
        if status is None:
            return None
        self.documents += 1
        watch.status = status
        if track_progress:
            self.progress.observe(status, reply)
        if status.is_terminal:
            watch.terminal = True
            return None
        return self._next_delay(hint, status, backoff), 0

    def _read_status(
        self, watch: _Watch, url: str, submission: Submission, reply: HttpResponse
    ) -> JobStatus | None:
        """The status a poll's answer states; ``None`` (the problem noted in ``watch``) when
        the monitor is gone or the dialect cannot read it."""
        try:
            return self.dialect.interpret_status(reply, submission=submission)
        except (JobNotFoundError, JobExpiredError) as exc:
            if watch.status is None:
                watch.unresolvable = True
                watch.problem = (
                    f"the status monitor {url} answered HTTP {reply.status_code} ({_reason(exc)})"
                )
            else:
                watch.problem = (
                    f"the job vanished (HTTP {reply.status_code}) before reaching a terminal state"
                )
        except AsyncReplyError as exc:
            if watch.status is None and reply.status_code in (404, 405, 410):
                watch.unresolvable = True
                watch.problem = f"the status monitor {url} answered HTTP {reply.status_code}"
            else:
                watch.unreadable = True
                watch.problem = f"the {self.dialect.name} dialect cannot read it: {_reason(exc)}"
                if self.document_failure is None:
                    self.document_failure = (
                        f"a status answer (HTTP {reply.status_code}) is not a status "
                        f"document the {self.dialect.name} dialect understands",
                        _evidence(reply, note=_reason(exc)),
                    )
        watch.problem_evidence = _evidence(reply)
        return None

    # ------------------------------------------------------------------ the first job
    def _documents_result(self) -> CheckResult:
        return audit_result(
            "status_documents",
            self.document_failure,
            self.documents,
            nothing="no status answer could be obtained",
            passed=lambda: (
                f"{self.documents} status answers understood by the {self.dialect.name} dialect"
            ),
        )

    def _terminal_result(self, watch: _Watch, started: float) -> None:
        if watch.terminal and watch.status is not None:
            self._pass(
                "terminal_state",
                f"{watch.status.state.value} after {watch.elapsed:.2f} s and {watch.polls} polls",
                started,
            )
            return
        if watch.unreadable:
            self._skip(
                "terminal_state", "not judged: a status answer could not be read (status_documents)"
            )
            return
        if watch.problem is not None:
            self._fail("terminal_state", watch.problem, watch.problem_evidence, started)
            return
        state = watch.status.state.value if watch.status is not None else "unknown"
        evidence = (
            _evidence(watch.response, note=f"last state {state}")
            if watch.response is not None
            else None
        )
        self._fail(
            "terminal_state",
            f"no terminal state within {self.o.timeout:g} s ({watch.polls} polls; last state "
            f"{state})",
            evidence,
            started,
        )

    def _check_result(self, watch: _Watch, submission: Submission) -> Generator[Command, Any, None]:
        status = watch.status
        if not watch.terminal or status is None:
            self._skip("result", "not judged: the job did not reach a terminal state")
            return
        if status.state is not JobState.COMPLETED:
            self._skip("result", f"the job ended {status.state.value}: no result to retrieve")
            return
        url = status.result_url or submission.final_url
        if url is None:
            if status.has_result:
                self._pass(
                    "result",
                    f"result delivered inline in the status answer (HTTP {status.http_status})",
                )
            else:
                self._skip("result", "the completed job offers no result (no URL, no body)")
            return
        started = self.now()
        via = "303 See Other to " if status.http_status == 303 else "result URL "
        for _ in range(_MAX_RESULT_REDIRECTS + 1):
            reply = yield from self._send("GET", url, stream=True)
            if isinstance(reply, _Fault):
                self._fail(
                    "result", f"the result at {url} cannot be fetched", reply.evidence(), started
                )
                return
            if 200 <= reply.status_code < 300:
                yield CloseStream()
                shown = reply.content_type or "no Content-Type"
                self._pass(
                    "result",
                    f"{via}{url} answered HTTP {reply.status_code} ({shown})",
                    started,
                )
                return
            location = _header(reply, "Location")
            if 300 <= reply.status_code < 400 and location is not None:
                yield CloseStream()
                target = resolve_url(reply.url, location)
                if target is None:
                    self._fail(
                        "result",
                        "the result's redirect has an unusable Location",
                        _evidence(reply, header=f"Location: {location}"),
                        started,
                    )
                    return
                url = target
                continue
            body = yield from self._read_excerpt()
            evidence = Evidence(
                method="GET", url=url, status_code=reply.status_code, body=excerpt(body) or None
            )
            self._fail(
                "result",
                f"the result at {url} answered HTTP {reply.status_code}, expected 2xx",
                evidence,
                started,
            )
            return
        self._fail(
            "result",
            f"more than {_MAX_RESULT_REDIRECTS} redirects to the result",
            Evidence(url=url),
            started,
        )


def _kind(error: object) -> str:
    """``Kind: message`` of an exception (its kind alone when it has no message)."""
    kind = type(error).__name__
    return f"{kind}: {error}" if str(error) else kind
