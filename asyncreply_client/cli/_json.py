"""The JSON every command prints: one shape per kind of thing, in the protocol's words.

Keys are camelCase, as on the wire (``jq -r .statusUrl`` works on the output of ``submit``,
``retry``, ``status`` and ``cancel`` alike, and on the line ``--wait`` writes on stderr);
whole numbers print as integers (progress ``1``, not ``1.0``); timestamps are RFC 3339 in UTC
(``2026-05-04T10:00:00.250Z``). A job's result (``wait``, ``--wait``) is printed exactly as
the server sent it: these shapes describe the command line's own documents only.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .._models import JobError, JobState, JobStatus, Progress

if TYPE_CHECKING:
    from .._operation import Operation
    from ..contract import ContractReport
    from ..webhooks import WebhookEvent

__all__ = [
    "camel",
    "camel_keys",
    "job_json",
    "number",
    "report_json",
    "rfc3339",
    "webhook_event_json",
]


def rfc3339(moment: datetime) -> str:
    """``moment`` in RFC 3339 form, in UTC with a ``Z`` (a naive time is taken as UTC).

    Fractions of a second are kept to the millisecond when that loses nothing, else to the
    microsecond, and left out when there are none.

    Example:
        >>> rfc3339(datetime(2026, 5, 4, 10, 0, 0, 250000, tzinfo=timezone.utc))
        '2026-05-04T10:00:00.250Z'
        >>> rfc3339(datetime(2026, 5, 4, 10, 0))
        '2026-05-04T10:00:00Z'
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    if moment.microsecond == 0:
        spec = "seconds"
    elif moment.microsecond % 1000 == 0:
        spec = "milliseconds"
    else:
        spec = "microseconds"
    return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def number(value: float | None) -> int | float | None:
    """A whole number as an ``int`` (``1.0`` -> ``1``), any other as it is.

    Example:
        >>> number(3.0), number(2.5), number(None)
        (3, 2.5, None)
    """
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def camel(name: str) -> str:
    """``status_code`` -> ``statusCode``.

    Example:
        >>> camel("estimated_completion")
        'estimatedCompletion'
    """
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _progress(progress: Progress) -> dict[str, Any]:
    fields = {
        "current": number(progress.current),
        "total": number(progress.total),
        "message": progress.message,
    }
    return {key: value for key, value in fields.items() if value is not None}


def _error(error: JobError) -> dict[str, Any]:
    fields = {
        "code": error.code,
        "message": error.message,
        "retryable": error.retryable,
        "details": error.details,
    }
    return {key: value for key, value in fields.items() if value is not None}


def job_json(op: Operation[Any], status: JobStatus | None = None) -> dict[str, Any]:
    """The job document of ``submit``, ``retry``, ``status`` and ``cancel``.

    Keys (each present when known, in this order): ``id``, ``state``, ``statusUrl`` (always),
    ``eventsUrl``, ``cancelUrl``, ``resultUrl``, ``retryUrl``, ``progress`` (``current``,
    ``total``, ``message``), ``result`` (a result the status carried inline), ``error``
    (``code``, ``message``, ``retryable``, ``details``), ``retryAfter`` and
    ``estimatedRemaining`` (seconds), ``estimatedCompletion``, ``createdAt``, ``startedAt``,
    ``updatedAt`` (RFC 3339), ``httpStatus`` (of the answer the status came from).

    Args:
        op: the operation (its id and URLs, when the status does not repeat them).
        status: the snapshot to print; ``op.status`` by default.
    """
    status = status if status is not None else op.status
    doc: dict[str, Any] = {
        "id": (status.id if status is not None else None) or op.id,
        "state": status.state.value if status is not None else None,
        "statusUrl": op.status_url,
        "eventsUrl": op.events_url,
    }
    if status is not None:
        doc["eventsUrl"] = doc["eventsUrl"] or status.events_url
        doc |= {
            "cancelUrl": status.cancel_url,
            "resultUrl": status.result_url,
            "retryUrl": status.retry_url,
            "progress": _progress(status.progress) if status.progress is not None else None,
            "result": status.result if status.has_result else None,
            "error": _error(status.error) if status.error is not None else None,
            "retryAfter": number(status.retry_after),
            "estimatedRemaining": number(status.estimated_remaining),
        }
        for key in ("estimated_completion", "created_at", "started_at", "updated_at"):
            moment: datetime | None = getattr(status, key)
            doc[camel(key)] = rfc3339(moment) if moment is not None else None
        doc["httpStatus"] = status.http_status
    return {key: value for key, value in doc.items() if value is not None}


def report_json(report: ContractReport) -> dict[str, Any]:
    """``check --format json``: :meth:`ContractReport.to_dict` with camelCase keys
    (``checks[].evidence.statusCode``)."""
    data = report.to_dict()
    data["checks"] = [
        {**check, "evidence": camel_keys(check["evidence"])} if "evidence" in check else check
        for check in data["checks"]
    ]
    return camel_keys(data)


def camel_keys(data: dict[str, Any]) -> dict[str, Any]:
    """The same dict with camelCase keys (one level: values are left as they are)."""
    return {camel(key): value for key, value in data.items()}


def webhook_event_json(event: WebhookEvent) -> dict[str, Any]:
    """``webhook verify``: ``type``, ``deliveryId``, ``timestamp`` (RFC 3339), ``jobId``,
    ``status``, ``scheme``, ``replayKey`` (each when known) and the ``payload`` exactly as it
    was signed."""
    status = event.status
    doc: dict[str, Any] = {
        "type": event.type,
        "deliveryId": event.delivery_id,
        "timestamp": rfc3339(event.timestamp) if event.timestamp is not None else None,
        "jobId": event.job_id,
        "status": status.value if isinstance(status, JobState) else status,
        "scheme": event.scheme,
        "replayKey": event.replay_key,
    }
    return {key: value for key, value in doc.items() if value is not None} | {
        "payload": event.payload
    }
