"""The webhook sender: signed POSTs of job events to callback URLs, with retries.

Events of one job are delivered in order, one at a time (a per-job lane). An attempt that
fails with a network error, a timeout or a 5xx is retried with exponential backoff
(``webhook_backoff * 2**(attempt-1)``) up to ``webhook_max_attempts``; a 3xx or 4xx answer
fails the delivery at once, and so does a target the callback policy refuses
(:mod:`reference_server.callbacks_policy`). Every delivery is kept as a
:class:`~reference_server.records.DeliveryRecord`, at most ``webhook_max_deliveries_per_owner``
per user (:mod:`reference_server.delivery_book`: pending deliveries are never evicted). The job
manager asks for a job event's deliveries (:meth:`WebhookSender.deliveries_for`), commits them
with the job in one atomic step, then hands them back to be sent (:meth:`WebhookSender.send`);
with ``--store sqlite`` deliveries and their attempts are persisted
(:mod:`reference_server.deliveries_store`) and pending ones resume after a restart under the
same delivery id. With a store several instances share (``--store redis``,
:class:`~reference_server.deliveries_store.SharedDeliveryStore`) the store is the truth for the
listing and the per-user bound, and each pending delivery carries a lease its sender renews: a
live instance takes over (atomically) the deliveries whose lease lapsed, without a restart.

Each attempt is signed afresh: the payload's ``timestamp`` and the ``webhook-timestamp`` /
``X-Webhook-Timestamp`` headers are the attempt's time, so a retry hours later still passes a
receiver's tolerance window, while ``deliveryId`` (in the signed body) and ``webhook-id`` stay
the same on every attempt for de-duplication.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import time
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver

from asyncreply_signing import sign

from .callbacks_policy import (
    CallbackAddressRefused,
    CallbackPolicy,
    PolicyConnector,
    PolicyResolver,
    local_addresses,
)
from .config import ServerConfig
from .deliveries_store import (
    DeliveryStore,
    MemoryDeliveryStore,
    PendingDelivery,
    SharedDeliveryStore,
    StoredDelivery,
)
from .delivery_book import DeliveryBook, OwnerDeliveriesFull
from .documents import rfc3339
from .eager import cancel_all
from .records import DeliveryRecord, JobRecord

__all__ = ["ALWAYS_SENT", "OPTIONAL_EVENTS", "WebhookSender", "render_payload"]

log = logging.getLogger("reference_server.webhooks")

#: Events sent to every callback.
ALWAYS_SENT = frozenset({"completed", "failed"})
#: Events sent only when listed in the callback's ``events``.
OPTIONAL_EVENTS = frozenset({"progress", "cancelled"})

# What ``lastError`` says about a failed attempt. Fixed words only: the raw connection error
# (refused, reset, which address, how long) would turn GET /webhooks/deliveries into a port
# scanner, so it goes to the server log instead.
_REFUSED = "refused by the callback policy"
_TIMED_OUT = "timed out"
_CONNECTION_FAILED = "connection failed"
_INVALID_URL = "invalid callback URL"


def render_payload(delivery_id: str, event: dict[str, Any], at: float) -> bytes:
    """Return the body of one attempt: the event plus its ``deliveryId`` and ``timestamp``.

    Example:
        >>> render_payload("msg_1", {"type": "job.completed", "jobId": "j", "data": {}}, 0)
        b'{"type":"job.completed","deliveryId":"msg_1","jobId":"j","timestamp":"1970-01-01T00:00:00.000Z","data":{}}'
    """
    document = {
        "type": event.get("type"),
        "deliveryId": delivery_id,
        "jobId": event.get("jobId"),
        "timestamp": rfc3339(at),
        "data": event.get("data"),
    }
    return json.dumps(document, separators=(",", ":")).encode()


def _refusal_in(exc: BaseException) -> CallbackAddressRefused | None:
    """The policy refusal behind an aiohttp error, if that is what it is."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, CallbackAddressRefused):
            return current
        os_error = getattr(current, "os_error", None)
        if isinstance(os_error, CallbackAddressRefused):
            return os_error
        current = current.__cause__ or current.__context__
    return None


def _classify_failure(exc: BaseException) -> tuple[str, bool]:
    """``(lastError, retry?)`` for an attempt that raised ``exc``."""
    if _refusal_in(exc) is not None:
        return _REFUSED, False
    if isinstance(exc, asyncio.TimeoutError):
        return _TIMED_OUT, True
    if isinstance(exc, aiohttp.InvalidURL):
        return _INVALID_URL, False
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        return _CONNECTION_FAILED, True
    return _INVALID_URL, False  # ValueError: the URL cannot be sent at all


class WebhookSender:
    """Delivers job events to callback URLs (implements the job manager's ``Notifier``).

    Args:
        config: the server configuration.
        store: where deliveries persist: the job store's ``deliveries`` (opened, loaded and
            closed by the job manager with the job store; default: nothing persisted).
        clock: epoch seconds (timestamps, backoff deadlines).
        resolver: the DNS resolver under the policy filter (default: aiohttp's); tests
            inject one that maps names to chosen addresses.
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        store: DeliveryStore | None = None,
        clock: Callable[[], float] = time.time,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        #: Every delivery record, bounded per owner.
        self.deliveries = DeliveryBook(config.webhook_max_deliveries_per_owner)
        self.policy = CallbackPolicy(allow_private=config.webhook_allow_private)
        self._resolver = resolver
        self._lanes: dict[str, list[PendingDelivery]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._full_owners: set[str] = set()
        self._store: DeliveryStore = store if store is not None else MemoryDeliveryStore()
        #: The store's shared side (``--store redis``), if it has one.
        self._shared = store if isinstance(store, SharedDeliveryStore) else None
        #: Deliveries queued or in flight here, by id (their leases are renewed).
        self._active: dict[str, PendingDelivery] = {}
        self._lease_task: asyncio.Task[None] | None = None
        #: Records evicted by the bound, deleted from the store at the next :meth:`send`.
        self._evicted: list[str] = []

    def refuse_callback(self, url: str) -> str | None:
        """The client-facing reason a callback URL is refused at submission, or ``None``."""
        reason = self.policy.url_refusal(url)
        if reason is None:
            return None
        return (
            f"callback.url is refused ({reason}): callbacks must reach a public address; "
            "a server for local development allows private ones with --webhook-allow-private"
        )

    async def backlog_refusal(self, owner: str) -> str | None:
        """Why ``owner`` may not submit a job with a callback now (``None``: it may).

        Refused while every one of the owner's delivery records is pending: its terminal
        event could only be recorded beyond the bound.
        """
        try:
            await self._room_for(owner)
        except OwnerDeliveriesFull as exc:
            return str(exc)
        return None

    async def _room_for(self, owner: str) -> None:
        """Raise :class:`OwnerDeliveriesFull` when every record of ``owner`` is pending."""
        if self._shared is None:
            self.deliveries.room_for(owner)
        elif await self._shared.pending_count(owner) >= self.deliveries.limit:
            raise OwnerDeliveriesFull(owner, self.deliveries.limit)

    async def room_for(self, job: JobRecord, event: str) -> bool:
        """Whether a delivery of optional ``event`` may be recorded for ``job`` now.

        Asked before the job changes, so that planning its deliveries awaits nothing: only a
        shared store is asked (its count of the owner's pending deliveries); otherwise the
        book decides when the delivery is planned.
        """
        callback = job.callback
        if self._shared is None or event in ALWAYS_SENT or callback is None:
            return True
        if event not in set(callback.get("events") or ()):
            return True  # not asked for: nothing would be recorded
        try:
            await self._room_for(job.owner)
        except OwnerDeliveriesFull:
            return False
        return True

    async def records_of(self, owner: str) -> list[DeliveryRecord]:
        """Every delivery record of ``owner``, oldest first (a shared store's, all instances')."""
        if self._shared is not None:
            return await self._shared.records_of(owner)
        return [d for d in self.deliveries.values() if d.owner == owner]

    async def start(self) -> None:
        """Learn the server's own addresses and open the HTTP session.

        Stored deliveries come back through :meth:`restore` when the job store opens.
        """
        if not self.policy.allow_private:
            own = await local_addresses(self.config.host)
            self.policy = dataclasses.replace(self.policy, own_addresses=own)
        connector = PolicyConnector(
            self.policy, resolver=PolicyResolver(self.policy, self._resolver)
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.config.webhook_timeout),
            headers={"User-Agent": "asyncreply-reference-server"},
        )

    async def restore(self, stored: list[StoredDelivery]) -> None:
        """Take over the deliveries a store handed back (oldest first); resume pending ones."""
        for delivery_id in self.deliveries.load(s.pending.record for s in stored):
            await self._store.delete(delivery_id)
        pending = [s.pending for s in stored if s.pending.record.status == "pending"]
        if pending:
            log.info("resuming %d pending webhook deliveries", len(pending))
        await self.send(pending)
        if self._shared is not None and self._session is not None and self._lease_task is None:
            self._lease_task = asyncio.create_task(
                self._keep_leases(self._shared), name="asyncreply-webhook-leases"
            )

    async def _keep_leases(self, shared: SharedDeliveryStore) -> None:
        """Renew the leases of the deliveries sent here; take over those whose lease lapsed."""
        ttl = self.config.job_lease
        while self._session is not None:  # stopped: ends even if a cancel was absorbed
            try:
                await shared.renew(list(self._active), ttl)
                for stored in await shared.claim(ttl):
                    pending = stored.pending
                    if pending.record.id in self._active:
                        continue
                    log.info("webhook %s: its sender's lease lapsed, taken over", pending.record.id)
                    self.deliveries.add(pending.record, force=True)
                    self._enqueue(pending)
            except Exception as exc:  # a Redis outage: try again at the next beat
                log.warning("webhook leases not renewed (%s): retrying", exc)
            await asyncio.sleep(ttl / 3)

    def delivery_of(self, job_id: str, event: str) -> str | None:
        """The id of the recorded delivery of ``event`` (``completed``…) for ``job_id``."""
        record = self.deliveries.of_job(job_id, f"job.{event}")
        return record.id if record is not None else None

    async def stop(self) -> None:
        """Cancel pending deliveries (a persistent store keeps them), close the session.

        Jobs may still end while this runs: their deliveries are committed but not sent
        (:meth:`send` sees no session), and a persistent store resumes them on the next start.
        """
        session, self._session = self._session, None
        tasks = list(self._tasks.values())
        if self._lease_task is not None:
            tasks.append(self._lease_task)
            self._lease_task = None
        await cancel_all(tasks)
        self._tasks.clear()
        self._lanes.clear()
        self._active.clear()
        if session is not None:
            await session.close()

    async def clear(self) -> None:
        """Forget every delivery record (in-flight deliveries go on)."""
        self.deliveries.clear()
        self._evicted.clear()
        await self._store.clear()

    def deliveries_for(
        self, job: JobRecord, event: str, document: dict[str, Any], *, room: bool = True
    ) -> list[PendingDelivery]:
        """The deliveries ``event`` of ``job`` causes, recorded here but not yet sent.

        The caller commits them with the job (:meth:`Store.commit`), then calls
        :meth:`send`. A ``completed``/``failed`` delivery is always recorded; an optional
        event (progress, cancelled) of an owner whose records are all pending is not, and
        a warning says so: pending deliveries are never evicted to make room. With a shared
        store, ``room`` is what :meth:`room_for` answered (this call awaits nothing).
        """
        callback = job.callback
        if callback is None:
            return []
        wanted = set(callback.get("events") or ()) | ALWAYS_SENT
        if event not in wanted:
            return []
        now = self.clock()
        event_document = {"type": f"job.{event}", "jobId": job.id, "data": document}
        rec = DeliveryRecord(
            id=f"msg_{uuid.uuid4().hex}",
            job_id=job.id,
            owner=job.owner,
            event=f"job.{event}",
            url=str(callback["url"]),
            created_at=now,
            updated_at=now,
        )
        rec.payload = render_payload(rec.id, event_document, now)
        try:
            if self._shared is not None:  # the store bounds it (in the commit)
                if not room and event not in ALWAYS_SENT:
                    raise OwnerDeliveriesFull(job.owner, self.deliveries.limit)
                self.deliveries.add(rec, force=True)
                dropped = []
            else:
                dropped = self.deliveries.add(rec, force=event in ALWAYS_SENT)
        except OwnerDeliveriesFull as exc:
            if job.owner not in self._full_owners:  # once per episode, not once per event
                self._full_owners.add(job.owner)
                log.warning("webhook job.%s of job %s not recorded: %s", event, job.id, exc)
            return []
        self._full_owners.discard(job.owner)
        self._evicted.extend(dropped)
        return [PendingDelivery(rec, event_document, next_attempt_at=now)]

    def discard(self, deliveries: list[PendingDelivery]) -> None:
        """Forget deliveries whose commit the store refused (they never existed)."""
        for pending in deliveries:
            self.deliveries.remove(pending.record.id)

    async def send(self, deliveries: list[PendingDelivery]) -> None:
        """Start sending deliveries that are on record (a stopped sender leaves them pending).

        The records the bound evicted meanwhile are deleted from the store first.
        """
        while self._evicted:
            await self._store.delete(self._evicted.pop())
        if self._session is None:
            return
        for pending in deliveries:
            self._enqueue(pending)

    def _enqueue(self, pending: PendingDelivery) -> None:
        if self._session is None:  # stopped: the record stays pending in the store
            return
        job_id = pending.record.job_id
        self._active[pending.record.id] = pending
        self._lanes.setdefault(job_id, []).append(pending)
        if job_id not in self._tasks:
            self._tasks[job_id] = asyncio.create_task(
                self._drain(job_id), name=f"asyncreply-webhooks-{job_id}"
            )

    async def _drain(self, job_id: str) -> None:
        try:
            lane = self._lanes[job_id]
            while lane:
                pending = lane[0]
                await self._deliver(pending)
                lane.pop(0)
                self._active.pop(pending.record.id, None)
        finally:
            for left in self._lanes.pop(job_id, []):
                self._active.pop(left.record.id, None)
            self._tasks.pop(job_id, None)

    def _largest_backoff(self) -> float:
        return self.config.webhook_backoff * 2 ** max(self.config.webhook_max_attempts - 2, 0)

    async def _deliver(self, pending: PendingDelivery) -> None:
        rec = pending.record
        while rec.status == "pending" and self._session is not None:
            if rec.attempts >= self.config.webhook_max_attempts:
                await self._finish(pending, "failed")
                return
            # The deadline survives restarts; the clamp keeps a clock that jumped (or an
            # injected one) from stalling a delivery beyond the configured backoff.
            delay = min(pending.next_attempt_at - self.clock(), self._largest_backoff())
            if delay > 0:
                await asyncio.sleep(delay)
            if self._session is None:  # stopped meanwhile: left pending for the next start
                return
            await self._attempt(pending)

    async def _attempt(self, pending: PendingDelivery) -> None:
        """Send one attempt and record its outcome (in memory and in the store)."""
        assert self._session is not None
        rec = pending.record
        attempt = rec.attempts + 1
        now = self.clock()
        timestamp = math.floor(now)
        body = render_payload(rec.id, pending.event, now)
        headers = sign(
            body,
            self.config.webhook_secret,
            msg_id=rec.id,
            timestamp=timestamp,
            event_type=rec.event,
            scheme="both",
        )
        headers["Content-Type"] = "application/json"
        rec.attempts, rec.payload = attempt, body
        retry = True
        try:
            reason = self.policy.url_refusal(rec.url)  # a restored delivery, a changed policy
            if reason is not None:
                raise CallbackAddressRefused(reason)
            async with self._session.post(
                rec.url, data=body, headers=headers, allow_redirects=False
            ) as resp:
                rec.response_status = resp.status
                with contextlib.suppress(Exception):
                    await resp.read()
            rec.last_error = None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
            retry = resp.status >= 500
            outcome = "delivered" if rec.last_error is None else rec.last_error
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
            rec.last_error, retry = _classify_failure(exc)
            rec.response_status = None
            outcome = rec.last_error
            log.info("webhook %s attempt %d to %s failed: %r", rec.id, attempt, rec.url, exc)
        rec.updated_at = self.clock()
        await self._store.record_attempt(
            rec.id, attempt, rec.updated_at, outcome, rec.response_status
        )
        if rec.last_error is None:
            await self._finish(pending, "delivered")
        elif not retry or attempt >= self.config.webhook_max_attempts:
            await self._finish(pending, "failed")
        else:
            pending.next_attempt_at = rec.updated_at + self.config.webhook_backoff * (
                2 ** (attempt - 1)
            )
            await self._store.save(pending)

    async def _finish(self, pending: PendingDelivery, status: str) -> None:
        rec = pending.record
        rec.status = status
        rec.updated_at = self.clock()
        await self._store.save(pending)
        self.deliveries.finished(rec.id)
        if status == "failed":
            log.info("webhook %s to %s failed: %s", rec.id, rec.url, rec.last_error)
