"""The contract run (:class:`_Checker`): the submit check, then the checks of the job it
started (terminal state, result, event stream), of a second job (cancellation), of keyed
resubmissions (idempotency) and of an unknown id."""

from __future__ import annotations

import uuid
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import httpx

from .._commands import CloseStream, Command, ReadChunk
from .._errors import AsyncReplyError, excerpt
from .._http import HttpResponse
from .._models import JobState, JobStatus
from .._sse import SSEDecoder
from .._urls import resolve_url
from ..dialects import Submission, cancel_method_of
from ._audits import (
    _alternate_body,
    _evidence,
    _Fault,
    _header,
    _plural,
    _reason,
    _replace_id,
    _Watch,
)
from ._checker import _CheckerBase
from ._report import CHECKS, CheckResult, ContractReport, Evidence, Outcome

__all__ = ["_Checker"]

_SSE_MAX_BUFFER = 1 << 20
_SSE_PROBE = 2.0  # seconds the SSE stream of an unfinished job is observed

_Flow = Generator[Command, Any, ContractReport]


@dataclass
class _Events:
    """What reading an event stream saw."""

    count: int = 0
    terminal: JobStatus | None = None
    problem: tuple[str, Evidence] | None = None
    ended: bool = False


class _Checker(_CheckerBase):
    """The whole contract run, as a generator of flow commands: ``run()`` returns the
    :class:`ContractReport`."""

    # ------------------------------------------------------------------ the run
    def run(self) -> _Flow:
        """Run every check; return the report."""
        started = self.now()
        submission = yield from self._check_submit()
        if submission is not None:
            yield from self._after_submit(submission)
        ordered = []
        for name, _ in CHECKS:
            result = self.results.get(name)
            if result is None:
                result = CheckResult(name, Outcome.SKIPPED, "not run: the submit check failed")
            ordered.append(result)
        return ContractReport(
            url=self.o.url,
            method=self.o.method,
            dialect=self.dialect.name,
            checks=tuple(ordered),
            duration=self.now() - started,
        )

    def _check_submit(self) -> Generator[Command, Any, Submission | None]:
        started = self.now()
        reply = yield from self._submit_request()
        if not isinstance(reply, _Fault):
            self.retry_after.observe(reply)
        submission, problem, evidence = self._interpret_submit(reply)
        if submission is None:
            self._fail("submit", problem or "the submission failed", evidence, started)
            return None
        code = (
            "202 Accepted"
            if submission.status.http_status in (None, 202)
            else (
                f"HTTP {submission.status.http_status} (a running job, as the {self.dialect.name} "
                "dialect describes it)"
            )
        )
        self._pass("submit", f"{code}; status monitor {submission.status_url}", started)
        return submission

    def _after_submit(self, submission: Submission) -> Generator[Command, Any, None]:
        assert submission.status_url is not None  # _interpret_submit guarantees it
        status_url = submission.status_url
        first_hint = submission.retry_after
        started = self.now()
        watch = yield from self._watch(
            status_url,
            submission,
            first_hint=first_hint,
            deadline=started + self.o.timeout,
            track_progress=True,
        )
        if watch.unresolvable:
            self._fail(
                "submit",
                watch.problem or "the status monitor cannot be resolved",
                watch.problem_evidence,
                started,
            )
            self._set(self.retry_after.result())
            return
        last = watch.status
        self._set(self.progress.result())
        self._terminal_result(watch, started)
        job_id = (last.id if last is not None else None) or submission.status.id
        cancel_url = submission.cancel_url or (last.cancel_url if last is not None else None)
        events_url = submission.events_url or (last.events_url if last is not None else None)

        yield from self._check_result(watch, submission)
        yield from self._check_sse(events_url, watch)
        yield from self._check_cancellation(cancel_url, watch)
        yield from self._check_idempotency()
        yield from self._check_unknown_id(status_url, job_id)
        # Last: it audits the answers of every check above.
        self._set(self.retry_after.result())
        self._set(self._documents_result())

    # ------------------------------------------------------------------ SSE
    def _check_sse(self, events_url: str | None, watch: _Watch) -> Generator[Command, Any, None]:
        if events_url is None:
            self._skip("sse", "the server offers no event stream")
            return
        started = self.now()
        expect_terminal = watch.terminal
        window = self.o.timeout if expect_terminal else min(self.o.timeout, _SSE_PROBE)
        reply = yield from self._send(
            "GET",
            events_url,
            headers={"Accept": "text/event-stream", "Cache-Control": "no-cache"},
            stream=True,
            read_timeout=window,
        )
        if isinstance(reply, _Fault):
            self._fail("sse", "the event stream cannot be opened", reply.evidence(), started)
            return
        if reply.status_code != 200 or reply.content_type != "text/event-stream":
            yield from self._refused_stream(reply, started)
            return
        seen = yield from self._read_events(reply, started + window)
        yield CloseStream()
        self._judge_events(seen, reply, expect_terminal, window, started)

    def _refused_stream(self, reply: HttpResponse, started: float) -> Generator[Command, Any, None]:
        content_type = _header(reply, "Content-Type")
        body = yield from self._read_excerpt()
        evidence = Evidence(
            method="GET",
            url=reply.url,
            status_code=reply.status_code,
            header=f"Content-Type: {content_type}",
            body=excerpt(body) or None,
        )
        if reply.status_code != 200:
            summary = f"the event stream answered HTTP {reply.status_code}, expected 200"
        else:
            summary = (
                f"the event stream's Content-Type is {content_type!r}, expected text/event-stream"
            )
        self._fail("sse", summary, evidence, started)

    def _read_events(
        self, reply: HttpResponse, deadline: float
    ) -> Generator[Command, Any, _Events]:
        """Read the open stream until a terminal event, a problem, its end or ``deadline``."""
        decoder = SSEDecoder(max_buffer=_SSE_MAX_BUFFER)
        seen = _Events()
        ids: set[str] = set()
        while seen.terminal is None and seen.problem is None and self.now() < deadline:
            try:
                chunk: str | None = yield ReadChunk()
            except httpx.HTTPError:
                break  # silence until the window closed, or a broken stream
            if chunk is None:
                seen.ended = True
                break
            try:
                events = decoder.feed(chunk)
            except AsyncReplyError as exc:
                seen.problem = (f"the event stream is malformed: {exc}", Evidence(url=reply.url))
                break
            for event in events:
                seen.count += 1
                shown = Evidence(
                    method="GET",
                    url=reply.url,
                    status_code=200,
                    body=excerpt(f"id: {event.id}\nevent: {event.event}\ndata: {event.data}"),
                )
                if not event.id or event.id in ids:
                    what = f"event #{seen.count} ({event.event!r})"
                    seen.problem = (f"{what} has no id of its own", shown)
                    break
                ids.add(event.id)
                try:
                    status = self.dialect.interpret_event(event.event, event.data, url=reply.url)
                except AsyncReplyError as exc:
                    what = f"event #{seen.count} ({event.event!r})"
                    seen.problem = (f"{what} cannot be read: {_reason(exc)}", shown)
                    break
                if status is not None and status.is_terminal:
                    seen.terminal = status
                    break
        return seen

    def _judge_events(
        self,
        seen: _Events,
        reply: HttpResponse,
        expect_terminal: bool,
        window: float,
        started: float,
    ) -> None:
        if seen.problem is not None:
            self._fail("sse", seen.problem[0], seen.problem[1], started)
            return
        content_type = _header(reply, "Content-Type")
        where = Evidence(
            method="GET", url=reply.url, status_code=200, header=f"Content-Type: {content_type}"
        )
        count = seen.count
        if seen.terminal is not None:
            self._pass(
                "sse",
                f"{_plural(count, 'event')} with ids, ending with a terminal event "
                f"({seen.terminal.state.value})",
                started,
            )
        elif not expect_terminal:
            if count:
                self._pass(
                    "sse",
                    f"{_plural(count, 'well-formed event')} with ids (the job did not finish, "
                    "so no terminal event was expected)",
                    started,
                )
            else:
                self._fail("sse", f"no event within {window:g} s", where, started)
        else:
            why = "the stream ended" if seen.ended else f"none within {window:g} s"
            self._fail(
                "sse",
                f"no terminal event for the finished job ({why}; {_plural(count, 'event')})",
                where,
                started,
            )

    # ------------------------------------------------------------------ cancellation
    @property
    def _cancel_method(self) -> str:
        """The cancel request's method: the dialect's (``DELETE`` for the built-in ones)."""
        return cancel_method_of(self.dialect) or "DELETE"

    def _check_cancellation(
        self, cancel_url: str | None, watch: _Watch
    ) -> Generator[Command, Any, None]:
        name = "cancellation"
        if cancel_method_of(self.dialect) is None:
            self._skip(name, f"the {self.dialect.name} dialect says this API has no cancel")
            return
        if cancel_url is None:
            self._skip(name, "the server offers no cancel URL")
            return
        started = self.now()
        notes: list[str] = []
        if watch.terminal:
            reply = yield from self._send(self._cancel_method, cancel_url)
            if isinstance(reply, _Fault):
                self._fail(
                    name, "cancelling the finished job got no answer", reply.evidence(), started
                )
                return
            if reply.status_code != 409:
                self._fail(
                    name,
                    f"cancelling a finished job answered HTTP {reply.status_code}, expected 409",
                    _evidence(reply),
                    started,
                )
                return
            notes.append("a finished job: 409")
        yield from self._cancel_running(started, notes)

    def _cancel_running(self, started: float, notes: list[str]) -> Generator[Command, Any, None]:
        """Submit a second job and cancel it while it runs."""
        name = "cancellation"
        reply = yield from self._submit_request()
        if not isinstance(reply, _Fault):
            self.retry_after.observe(reply)
        second, problem, evidence = self._interpret_submit(reply, what="a second submission")
        if second is None:
            self._fail(name, problem or "the second submission failed", evidence, started)
            return
        url = second.cancel_url
        if url is None:
            shown = reply.evidence() if isinstance(reply, _Fault) else _evidence(reply)
            self._fail(name, "the second job offers no cancel URL", shown, started)
            return
        reply = yield from self._send(self._cancel_method, url)
        if isinstance(reply, _Fault):
            self._fail(name, "the cancel request got no answer", reply.evidence(), started)
            return
        if reply.status_code == 409:
            # The job may have finished before the DELETE arrived: then 409 is right.
            after = yield from self._watch_second(second)
            if (
                after.terminal
                and after.status is not None
                and (after.status.state is not JobState.CANCELLED)
            ):
                notes.append(
                    f"the second job finished ({after.status.state.value}) before it could be "
                    "cancelled: 409"
                )
                self._pass(name, "; ".join(notes), started)
                return
            self._fail(name, "cancelling a running job answered 409", _evidence(reply), started)
            return
        if not 200 <= reply.status_code < 300:
            self._fail(
                name,
                f"cancelling a running job answered HTTP {reply.status_code}, expected 200",
                _evidence(reply),
                started,
            )
            return
        yield from self._after_cancel(second, url, reply.status_code, started, notes)

    def _watch_second(self, second: Submission) -> Generator[Command, Any, _Watch]:
        assert second.status_url is not None  # _interpret_submit guarantees it
        return (
            yield from self._watch(
                second.status_url,
                second,
                first_hint=0.0,
                deadline=self.now() + self.o.timeout,
                track_progress=False,
            )
        )

    def _after_cancel(
        self, second: Submission, url: str, code: int, started: float, notes: list[str]
    ) -> Generator[Command, Any, None]:
        """The cancelled job must end cancelled, and cancelling it again must answer 409."""
        name = "cancellation"
        after = yield from self._watch_second(second)
        if after.unreadable:
            self._skip(name, "not judged: a status answer could not be read (status_documents)")
            return
        if not after.terminal or after.status is None:
            why = after.problem or f"no terminal state within {self.o.timeout:g} s"
            ev = after.problem_evidence or (
                _evidence(after.response) if after.response is not None else None
            )
            self._fail(name, f"after the cancel (HTTP {code}): {why}", ev, started)
            return
        if after.status.state is not JobState.CANCELLED:
            self._fail(
                name,
                f"after the cancel (HTTP {code}) the job ended {after.status.state.value}, "
                "not cancelled",
                _evidence(after.response) if after.response is not None else None,
                started,
            )
            return
        again = yield from self._send(self._cancel_method, url)
        if isinstance(again, _Fault):
            self._fail(name, "the second cancel request got no answer", again.evidence(), started)
            return
        if again.status_code != 409:
            self._fail(
                name,
                f"cancelling an already cancelled job answered HTTP {again.status_code}, "
                "expected 409",
                _evidence(again),
                started,
            )
            return
        notes.insert(0, f"cancel: {code}, then cancelled; again: 409")
        self._pass(name, "; ".join(notes), started)

    # ------------------------------------------------------------------ idempotency
    def _check_idempotency(self) -> Generator[Command, Any, None]:
        name = "idempotency"
        if not self.o.idempotency:
            self._skip(name, "not requested (idempotency=False)")
            return
        started = self.now()
        key = f"contract-check-{uuid.uuid4()}"
        first_reply = yield from self._submit_request(key=key)
        if not isinstance(first_reply, _Fault):
            self.retry_after.observe(first_reply)
        first, problem, evidence = self._interpret_submit(
            first_reply, what="a submission with an Idempotency-Key"
        )
        if first is None:
            self._fail(name, problem or "the keyed submission failed", evidence, started)
            return
        assert isinstance(first_reply, HttpResponse)
        replay = yield from self._submit_request(key=key)
        if isinstance(replay, _Fault):
            self._fail(name, "the resubmission got no answer", replay.evidence(), started)
            return
        if not 200 <= replay.status_code < 400:
            expected = "expected a replay of the 202"
            what = f"the resubmission with the same key and body answered HTTP {replay.status_code}"
            self._keyed_failure(f"{what}, {expected}", replay, key, started)
            return
        same, shown = self._same_job(first_reply, first, replay)
        if not same:
            what = "the resubmission with the same Idempotency-Key created a second job"
            self._keyed_failure(f"{what} ({shown})", replay, key, started)
            return
        other = self.o.alternate_content or _alternate_body(self.o.content)
        reused = yield from self._submit_request(key=key, content=other)
        if isinstance(reused, _Fault):
            self._fail(
                name,
                "the submission with a different body got no answer",
                reused.evidence(),
                started,
            )
            return
        if not 400 <= reused.status_code < 500:
            what = "the same Idempotency-Key with a different body answered HTTP"
            self._keyed_failure(f"{what} {reused.status_code}, expected 4xx", reused, key, started)
            return
        self._pass(
            name,
            f"replay: HTTP {replay.status_code}, same job ({shown}); different body: "
            f"HTTP {reused.status_code}",
            started,
        )

    def _keyed_failure(self, summary: str, reply: HttpResponse, key: str, started: float) -> None:
        evidence = _evidence(reply, header=f"Idempotency-Key: {key}")
        self._fail("idempotency", summary, evidence, started)

    def _same_job(
        self, first_reply: HttpResponse, first: Submission, replay: HttpResponse
    ) -> tuple[bool, str]:
        """Whether ``replay`` designates the job ``first`` started, and how it looks."""
        if replay.status_code == 202:
            try:
                again = self.dialect.interpret_submit(replay)
            except AsyncReplyError:
                again = None
            if again is not None:
                if first.status.id and again.status.id:
                    return again.status.id == first.status.id, (
                        f"job {first.status.id} / {again.status.id}"
                    )
                return again.status_url == first.status_url, (
                    f"monitor {first.status_url} / {again.status_url}"
                )
        a, b = _header(first_reply, "Location"), _header(replay, "Location")
        if b is not None:
            same = resolve_url(replay.url, b) == resolve_url(first_reply.url, a)
            return same, f"Location {a} / {b}"
        body_a, body_b = first_reply.json(), replay.json()
        if isinstance(body_a, dict) and isinstance(body_b, dict) and body_a.get("jobId"):
            return body_a.get("jobId") == body_b.get("jobId"), (
                f"job {body_a.get('jobId')} / {body_b.get('jobId')}"
            )
        return False, "the replay names no job"

    # ------------------------------------------------------------------ unknown id
    def _check_unknown_id(
        self, status_url: str, job_id: str | None
    ) -> Generator[Command, Any, None]:
        name = "unknown_id"
        if not job_id:
            self._skip(name, "the job id is unknown, so no unknown id can be derived")
            return
        url = _replace_id(status_url, job_id)
        if url is None:
            self._skip(name, f"the job id {job_id!r} is not part of the status URL")
            return
        started = self.now()
        reply = yield from self._send("GET", url)
        if isinstance(reply, _Fault):
            self._fail(name, "the unknown id's URL got no answer", reply.evidence(), started)
            return
        if reply.status_code not in (404, 410):
            self._fail(
                name,
                f"an unknown job id answered HTTP {reply.status_code}, expected 404 or 410",
                _evidence(reply),
                started,
            )
            return
        self._pass(name, f"{url} answered HTTP {reply.status_code}", started)
