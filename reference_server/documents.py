"""The JSON documents the server answers with, and the adaptive Retry-After hint.

Pure functions of a :class:`~reference_server.records.JobRecord`, the current time and the
configuration: the HTTP layer, the SSE event log and webhooks all render jobs through them.
"""

from __future__ import annotations

import functools
import math
import re
from datetime import datetime, timezone
from typing import Any

from .config import ServerConfig
from .records import JobRecord, JobState

__all__ = [
    "error_body",
    "estimated_completion",
    "format_seconds",
    "retry_hint",
    "retry_headers",
    "rfc3339",
    "safe_content_type",
    "safe_filename",
    "status_code_state",
    "status_document",
]


def rfc3339(ts: float | None) -> str | None:
    """Format epoch seconds as an RFC 3339 UTC string with milliseconds (``…T09:00:00.123Z``)."""
    if ts is None:
        return None
    return _rfc3339(ts)


@functools.lru_cache(maxsize=1024)
def _rfc3339(ts: float) -> str:
    # Memoised: a job's document repeats its times (createdAt in each of its documents,
    # startedAt and updatedAt in several), and a poller renders the same job again and again.
    dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (  # noqa: UP031 - faster than strftime
        dt.year,
        dt.month,
        dt.day,
        dt.hour,
        dt.minute,
        dt.second,
        dt.microsecond // 1000,
    )


def format_seconds(value: float) -> str:
    """Format a duration for a header: ``5`` for 5.0, ``0.25`` for 0.25."""
    if value == int(value):
        return str(int(value))
    return repr(round(value, 3))


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """Return the error document ``{"error": {"code", "message", "details"?}}``."""
    err: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        err["details"] = details
    return {"error": err}


def estimated_completion(job: JobRecord, now: float) -> float | None:
    """Estimate when ``job`` completes, or ``None`` when there is nothing to base it on.

    A running job with progress extrapolates its progress rate: ``startedAt + elapsed /
    fraction`` where ``elapsed`` is measured at the last progress report (so the estimate
    does not drift between reports). Otherwise a handler-declared estimate of the run time
    is added to the start (or, for a pending job, to the later of now and ``notBefore``).
    """
    if job.state is JobState.PROCESSING and job.started_at is not None:
        p = job.progress
        if (
            p is not None
            and p.total is not None
            and p.total > 0
            and p.current > 0
            and job.progress_at is not None
        ):
            fraction = min(p.current / p.total, 1.0)
            elapsed = max(job.progress_at - job.started_at, 0.0)
            return job.started_at + elapsed / fraction
        if job.estimate is not None:
            return job.started_at + job.estimate
        return None
    if job.state is JobState.PENDING and job.estimate is not None:
        start = max(job.run_at or now, now)
        return start + job.estimate
    return None


def retry_hint(job: JobRecord, now: float, config: ServerConfig) -> float | None:
    """Return how many seconds a poller should wait before asking again (``None`` if final).

    The hint is the expected remaining time, clamped to ``[retry_after_min,
    retry_after_max]``: it shrinks as the job nears its estimated end. Without an estimate it
    is the time the job has already waited or run (so pollers back off as a job gets older),
    and a job waiting for ``notBefore`` or a retry backoff is told to come back then.
    """
    if job.state.is_terminal:
        return None
    eta = estimated_completion(job, now)
    if eta is not None:
        remaining = eta - now
    elif job.state is JobState.PENDING and job.run_at is not None and job.run_at > now:
        remaining = job.run_at - now
    else:
        since = job.started_at if job.state is JobState.PROCESSING else job.created_at
        remaining = now - (since if since is not None else now)
    low, high = config.retry_after_min, max(config.retry_after_min, config.retry_after_max)
    hint = min(max(remaining, low), high)
    # Millisecond precision, never negative.
    return max(math.ceil(hint * 1000), 0) / 1000


def retry_headers(hint: float | None) -> dict[str, str]:
    """Return ``Retry-After`` (whole seconds, rounded up) and ``Retry-After-Ms`` for ``hint``."""
    if hint is None:
        return {}
    ms = max(math.ceil(hint * 1000), 0)
    return {"Retry-After": str(math.ceil(ms / 1000)), "Retry-After-Ms": str(ms)}


def status_code_state(job: JobRecord) -> str:
    """Return the status-code dialect's ``state`` word for ``job``."""
    if job.state is JobState.PROCESSING:
        return "inFlight"
    if job.state is JobState.FAILED and job.dead_letter:
        return "deadLetter"
    return str(job.state.value)


def status_document(job: JobRecord, now: float, config: ServerConfig) -> dict[str, Any]:
    """Return the reference-dialect status document of ``job``.

    Example:
        The document of a running job looks like::

            {"jobId": "…", "type": "sleep", "status": "processing", "attempt": 1,
             "progress": {"current": 2, "total": 5, "message": "step 2/5"}, …}
    """
    base = f"/jobs/{job.id}"
    eta = estimated_completion(job, now)
    doc: dict[str, Any] = {
        "jobId": job.id,
        "type": job.type,
        "status": job.state.value,
        "attempt": job.attempt,
        "progress": job.progress.to_json() if job.progress is not None else None,
        "createdAt": rfc3339(job.created_at),
        "startedAt": rfc3339(job.started_at),
        "updatedAt": rfc3339(job.updated_at),
        "estimatedCompletion": rfc3339(max(eta, now)) if eta is not None else None,
        "retryAfter": retry_hint(job, now, config),
        "statusUrl": base,
        "eventsUrl": f"{base}/events",
        "cancelUrl": base,
    }
    if job.not_before is not None:
        doc["notBefore"] = rfc3339(job.not_before)
    if job.original_job_id is not None:
        doc["originalJobId"] = job.original_job_id
    if job.state is JobState.COMPLETED:
        doc["resultUrl"] = f"{base}/result"
        doc["completedAt"] = rfc3339(job.finished_at)
    elif job.state is JobState.FAILED:
        assert job.error is not None
        doc["error"] = job.error.to_json()
        doc["deadLetter"] = job.dead_letter
        doc["failedAt"] = rfc3339(job.finished_at)
        if job.error.retryable:
            doc["retryUrl"] = f"{base}/retry"
    elif job.state is JobState.CANCELLED:
        doc["cancelledAt"] = rfc3339(job.cancelled_at)
    return doc


_CONTENT_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(;[ -~]*)?")


def safe_content_type(value: str) -> str:
    """A handler's content type if it is well-formed, else ``application/octet-stream``."""
    return value if _CONTENT_TYPE.fullmatch(value) else "application/octet-stream"


def safe_filename(name: str | None) -> str:
    """A filename safe inside ``Content-Disposition: attachment; filename="…"``."""
    cleaned = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in name or "")
    return cleaned[:200] or "result.bin"
