"""What the fake server answers: the HTTP responses for a job's scripted steps, in either
dialect (docs/protocol.md), and the small helpers they share."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any, Literal, Protocol

import httpx

from ._clock import FakeClock
from ._script import CANCELLED, FakeJob, Step

__all__ = [
    "Answers",
    "FakeDialect",
    "bare_key",
    "error",
    "json_or_none",
    "requested_wait",
]

FakeDialect = Literal["reference", "status-code"]

# The reconnection delay the fake's event streams ask for (WHATWG SSE ``retry:`` field).
SSE_RETRY_MS = 10


class _Settings(Protocol):
    """What the answers read from the fake API (it may be reconfigured between requests)."""

    dialect: FakeDialect
    clock: FakeClock


class Answers:
    """The responses of one fake API: built from a job, its current step and the settings."""

    def __init__(self, api: _Settings) -> None:
        self._api = api

    def accepted(self, job: FakeJob, *, current: bool = False) -> httpx.Response:
        """The 202 of a submission: its receipt, or with ``current`` (an idempotent
        replay, as the reference server answers one) the job's document as it last
        reported it, final or not."""
        script = job.script
        headers = {"Location": job.status_url}
        headers.update(retry_headers(script.retry_after))
        step = job.current
        body: dict[str, Any]
        if current and step is not None and step.is_document:
            body = self.document(job, step)
            if self._api.dialect == "status-code":  # its state word, as the server's
                body["state"] = (
                    "deadLetter"
                    if step.dead_letter
                    else "inFlight"
                    if step.kind == "processing"
                    else step.kind
                )
        else:
            body = {
                "jobId": job.id,
                "status": "pending",
                "statusUrl": job.status_url,
                "cancelUrl": job.status_url,
                "estimatedWaitTime": script.retry_after,
            }
            if script.events:
                body["eventsUrl"] = job.events_url
        if job.original_job_id is not None:
            body["originalJobId"] = job.original_job_id
        if script.events:
            headers["Link"] = f'<{job.events_url}>; rel="events"'
        return httpx.Response(202, json=body, headers=headers)

    def status(self, job: FakeJob, step: Step) -> httpx.Response:
        if step.kind == "raw":
            headers = dict(step.headers)
            if step.content is not None:
                return httpx.Response(step.status_code, content=step.content, headers=headers)
            if step.body is not None:
                return httpx.Response(step.status_code, json=step.body, headers=headers)
            return httpx.Response(step.status_code, headers=headers)
        if step.kind == "expired":
            return error(410, "expired", f"job {job.id} has expired")
        if step.kind == "not_found":
            return error(404, "not_found", f"no job {job.id!r}")
        doc = self.document(job, step)
        headers = retry_headers(step.retry_after) if not step.is_terminal else {}
        if self._api.dialect == "status-code":
            return self._status_code_answer(job, step, doc, headers)
        if step.kind == "completed" and not step.inline:
            headers["Location"] = job.result_url
            return httpx.Response(303, json=doc, headers=headers)
        return httpx.Response(200, json=doc, headers=headers)

    def _status_code_answer(
        self, job: FakeJob, step: Step, doc: dict[str, Any], headers: dict[str, str]
    ) -> httpx.Response:
        if step.kind in ("pending", "processing"):
            doc["state"] = "pending" if step.kind == "pending" else "inFlight"
            return httpx.Response(202, json=doc, headers=headers)
        if step.kind == "completed":
            if step.file is not None:
                return httpx.Response(303, headers={"Location": job.result_url})
            return json_response(200, step.result)
        if step.kind == "failed":
            assert step.error is not None
            code, message, retryable = step.error
            body = {
                "jobId": job.id,
                "state": "deadLetter" if step.dead_letter else "failed",
                "error": {"code": code, "message": message, "retryable": retryable},
            }
            if job.retryable:
                body["retryUrl"] = job.retry_url
            return httpx.Response(500, json=body)
        body = {
            "jobId": job.id,
            "state": "cancelled",
            "error": {"code": "cancelled", "message": f"job {job.id} was cancelled"},
        }
        return httpx.Response(409, json=body)

    def document(self, job: FakeJob, step: Step) -> dict[str, Any]:
        now = rfc3339(self._api.clock.wall())
        progress = None
        if job.last_progress is not None:
            current, total, message = job.last_progress
            progress = {"current": current, "total": total, "message": message}
        doc: dict[str, Any] = {
            "jobId": job.id,
            "type": job.job_type,
            "status": step.kind,
            "attempt": 1,
            "progress": progress,
            "createdAt": rfc3339(job.created_at),
            "startedAt": None if step.kind == "pending" else rfc3339(job.created_at),
            "updatedAt": now,
            "estimatedCompletion": None,
            "retryAfter": None if step.is_terminal else step.retry_after,
            "statusUrl": job.status_url,
            "cancelUrl": job.status_url,
        }
        if job.script.events:
            doc["eventsUrl"] = job.events_url
        if step.kind == "completed":
            doc["resultUrl"] = job.result_url
            if step.inline:
                doc["result"] = step.result
        elif step.kind == "failed":
            assert step.error is not None
            code, message, retryable = step.error
            doc["error"] = {"code": code, "message": message, "retryable": retryable}
            doc["deadLetter"] = step.dead_letter
            if job.retryable:
                doc["retryUrl"] = job.retry_url
        elif step.kind == "cancelled":
            doc["cancelledAt"] = now
        return doc

    def result(self, job: FakeJob) -> httpx.Response:
        step = job.current
        if step is None or step.kind not in ("completed", "expired", "not_found"):
            return error(409, "not_completed", f"job {job.id} is {job.state}")
        if step.kind == "expired":
            return error(410, "expired", f"the result of job {job.id} has expired")
        if step.kind == "not_found":
            return error(404, "not_found", f"no job {job.id!r}")
        if step.file is not None:
            headers = {"Content-Type": step.content_type}
            if step.filename is not None:
                headers["Content-Disposition"] = f'attachment; filename="{step.filename}"'
            return httpx.Response(200, content=step.file, headers=headers)
        return json_response(200, step.result)

    def cancel(self, job: FakeJob) -> httpx.Response:
        step = job.current
        if job.cancelled or (step is not None and step.is_terminal):
            return error(409, "already_terminal", f"job {job.id} is already {job.state}")
        job.cancelled = True
        job.current = CANCELLED
        return httpx.Response(200, json=self.document(job, job.current))

    def events(self, job: FakeJob) -> httpx.Response:
        # The stream carries the job's remaining scripted states at once: a ``status`` event
        # (the current state), ``progress`` events, and ``complete`` for a terminal state. It
        # ends early at a step that is not a state (410, raw answer) or at the end of the
        # script, so the client reconnects or falls back to polling, as with a real server.
        if not job.script.events:
            return error(404, "not_found", "this job offers no event stream")
        if not job._peek().is_document:
            job.polls.append(job.requests[-1])
            return self.status(job, job._advance())
        lines = [f"retry: {SSE_RETRY_MS}", ""]

        def emit(name: str, step: Step) -> None:
            job.event_seq += 1
            data = json.dumps(self.document(job, step), separators=(",", ":"))
            lines.extend([f"id: {job.event_seq}", f"event: {name}", f"data: {data}", ""])

        step = job._advance()
        emit("status", step)
        if step.is_terminal:
            emit("complete", step)
        while not step.is_terminal and not job._exhausted and job._peek().is_document:
            step = job._advance()
            emit("complete" if step.is_terminal else "progress", step)
        return httpx.Response(
            200,
            content=("\n".join(lines) + "\n").encode(),
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"},
        )


def retry_headers(retry_after: float | None) -> dict[str, str]:
    # Retry-After takes whole seconds (RFC 9110 §10.2.3); Retry-After-Ms carries the precise
    # hint, as the reference server does.
    if retry_after is None:
        return {}
    return {
        "Retry-After": str(math.ceil(retry_after)),
        "Retry-After-Ms": str(round(retry_after * 1000)),
    }


def error(status: int, code: str, message: str, details: Any = None) -> httpx.Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return httpx.Response(status, json={"error": error})


def requested_wait(request: httpx.Request) -> str | None:
    """The N of ``?wait=N`` or ``Prefer: wait=N`` (RFC 7240), when the request asks to be held."""
    value = request.url.params.get("wait")
    if value is None:
        for preference in request.headers.get("prefer", "").split(","):
            name, _, raw = preference.strip().partition("=")
            if name.strip().lower() == "wait" and raw.strip():
                value = raw.strip()
                break
    try:
        return None if value is None or float(value) < 0 else value
    except ValueError:
        return None


def bare_key(value: str) -> str:
    # Idempotency-Key may be sent bare or as a quoted string (protocol.md).
    return value.strip().strip('"')


def json_response(status: int, value: Any) -> httpx.Response:
    # httpx treats ``json=None`` as "no body"; a JSON ``null`` result must still be sent.
    return httpx.Response(
        status,
        content=json.dumps(value).encode(),
        headers={"Content-Type": "application/json"},
    )


def json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content) if content.strip() else None
    except (ValueError, UnicodeDecodeError):
        return None


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
