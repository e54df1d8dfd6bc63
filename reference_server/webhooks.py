"""The webhook sender: signed POSTs of job events to callback URLs, with retries.

Events of one job are delivered in order, one at a time (a per-job lane). An attempt that
fails with a network error, a timeout or a 5xx is retried with exponential backoff
(``webhook_backoff * 2**(attempt-1)``) up to ``webhook_max_attempts``; a 3xx or 4xx answer
fails the delivery at once. Every delivery is kept as a
:class:`~reference_server.records.DeliveryRecord`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp

from asyncreply_signing import sign

from .config import ServerConfig
from .documents import rfc3339
from .records import DeliveryRecord, JobRecord

__all__ = ["ALWAYS_SENT", "OPTIONAL_EVENTS", "WebhookSender"]

log = logging.getLogger("reference_server.webhooks")

#: Events sent to every callback.
ALWAYS_SENT = frozenset({"completed", "failed"})
#: Events sent only when listed in the callback's ``events``.
OPTIONAL_EVENTS = frozenset({"progress", "cancelled"})

#: Delivery records kept (the oldest are dropped beyond this).
MAX_DELIVERIES = 10_000


class WebhookSender:
    """Delivers job events to callback URLs (implements the job manager's ``Notifier``)."""

    def __init__(self, config: ServerConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.deliveries: dict[str, DeliveryRecord] = {}
        self._lanes: dict[str, list[DeliveryRecord]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the HTTP client session."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.config.webhook_timeout),
            headers={"User-Agent": "asyncreply-reference-server"},
        )

    async def stop(self) -> None:
        """Cancel pending deliveries and close the session."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def clear(self) -> None:
        """Forget every delivery record (in-flight deliveries go on)."""
        self.deliveries.clear()

    def job_event(self, job: JobRecord, event: str, document: dict[str, Any]) -> None:
        """Queue a delivery of ``event`` for ``job`` if its callback wants it."""
        callback = job.callback
        if callback is None or self._session is None:
            return
        wanted = set(callback.get("events") or ()) | ALWAYS_SENT
        if event not in wanted:
            return
        now = self.clock()
        payload = {
            "type": f"job.{event}",
            "jobId": job.id,
            "timestamp": rfc3339(now),
            "data": document,
        }
        rec = DeliveryRecord(
            id=f"msg_{uuid.uuid4().hex}",
            job_id=job.id,
            owner=job.owner,
            event=f"job.{event}",
            url=str(callback["url"]),
            created_at=now,
            updated_at=now,
            payload=json.dumps(payload, separators=(",", ":")).encode(),
        )
        self.deliveries[rec.id] = rec
        while len(self.deliveries) > MAX_DELIVERIES:
            del self.deliveries[next(iter(self.deliveries))]
        self._lanes.setdefault(job.id, []).append(rec)
        if job.id not in self._tasks:
            self._tasks[job.id] = asyncio.create_task(
                self._drain(job.id), name=f"asyncreply-webhooks-{job.id}"
            )

    async def _drain(self, job_id: str) -> None:
        try:
            lane = self._lanes[job_id]
            while lane:
                await self._deliver(lane.pop(0))
        finally:
            self._lanes.pop(job_id, None)
            self._tasks.pop(job_id, None)

    async def _deliver(self, rec: DeliveryRecord) -> None:
        assert self._session is not None
        for attempt in range(1, self.config.webhook_max_attempts + 1):
            rec.attempts = attempt
            timestamp = math.floor(self.clock())
            headers = sign(
                rec.payload,
                self.config.webhook_secret,
                msg_id=rec.id,
                timestamp=timestamp,
                event_type=rec.event,
                scheme="both",
            )
            headers["Content-Type"] = "application/json"
            retry = True
            try:
                async with self._session.post(
                    rec.url, data=rec.payload, headers=headers, allow_redirects=False
                ) as resp:
                    rec.response_status = resp.status
                    with contextlib.suppress(Exception):
                        await resp.read()
                    if 200 <= resp.status < 300:
                        rec.status = "delivered"
                        rec.last_error = None
                        rec.updated_at = self.clock()
                        return
                    rec.last_error = f"HTTP {resp.status}"
                    retry = resp.status >= 500
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
                rec.last_error = f"{type(exc).__name__}: {exc}"[:500]
            rec.updated_at = self.clock()
            if not retry or attempt == self.config.webhook_max_attempts:
                break
            await asyncio.sleep(self.config.webhook_backoff * (2 ** (attempt - 1)))
        rec.status = "failed"
        rec.updated_at = self.clock()
        log.info("webhook %s to %s failed: %s", rec.id, rec.url, rec.last_error)
