"""A verified webhook delivery, as the verifier returns it and callbacks receive it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeAlias

from .._models import JobState

__all__ = ["WebhookCallback", "WebhookEvent"]


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A verified webhook delivery.

    Fields the payload does not carry are ``None``: the verifier accepts any JSON payload. The
    reference server sends ``{"type", "jobId", "timestamp", "data": {status document}}``.

    Attributes:
        type: the payload's ``type`` (``"job.completed"``, …), else the ``X-Webhook-Event``
            header (which no signature covers).
        delivery_id: ``webhook-id`` (signed), fal's ``X-Fal-Webhook-Request-Id`` (signed);
            for the simple scheme the payload's
            ``deliveryId`` (signed) when present, else the unsigned ``X-Webhook-Delivery``
            header.
        timestamp: the timestamp the replay window was checked against (UTC).
        job_id: the payload's ``jobId`` (or its ``data.jobId``).
        status: the job state from ``data.status`` / ``data.state`` (or ``status``), read
            through the dialects' shared vocabulary (a vendor's ``succeeded`` or
            ``COMPLETED`` is :attr:`JobState.COMPLETED <asyncreply_client.JobState>`) or the
            verifier's ``states``: a ``JobState`` when recognised, else the raw string.
        payload: the parsed JSON body.
        scheme: the scheme that verified the delivery.
        replay_key: the key recorded in the replay store: ``id:<webhook-id>`` for Standard
            Webhooks; for the simple scheme (whose delivery header is not signed, so it cannot
            be trusted to tell deliveries apart) ``id:<deliveryId>`` from the signed payload,
            else the body's SHA-256.

    Example:
        >>> import time
        >>> body = b'{"type": "job.completed", "jobId": "j1", "data": {"status": "completed"}}'
        >>> now = int(time.time())
        >>> headers = sign(body, "s3cret", msg_id="msg_1", timestamp=now, scheme="standard")
        >>> event = WebhookVerifier("s3cret").verify(headers, body)
        >>> event.type, event.job_id, event.status
        ('job.completed', 'j1', <JobState.COMPLETED: 'completed'>)
    """

    type: str | None
    delivery_id: str | None
    timestamp: datetime | None
    job_id: str | None
    status: JobState | str | None
    payload: Any = field(repr=False)
    scheme: Literal["hmac-sha256", "standard", "fal"]
    replay_key: str = field(repr=False)

    @property
    def data(self) -> dict[str, Any] | None:
        """The payload's ``data`` object (the status document), or ``None``."""
        data = self.payload.get("data") if isinstance(self.payload, dict) else None
        return data if isinstance(data, dict) else None


WebhookCallback: TypeAlias = Callable[[WebhookEvent], object]
"""A user callback: takes the event; a plain function or a coroutine function."""
