"""The webhook side of job events: which deliveries an event causes, planned before the job's
commit (so the store writes them in the same atomic step) and sent after it.

Planning is synchronous: nothing is awaited between a change of a job and its commit. What a
plan needs from a shared store (may an optional event be recorded?) is asked before the
change (:meth:`Notices.room`).

The job manager calls :class:`Notices`; the webhook sender implements :class:`Notifier`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from .deliveries_store import PendingDelivery, StoredDelivery
from .records import JobRecord, JobState
from .store import Store

__all__ = ["Notices", "Notifier"]

log = logging.getLogger("reference_server")

#: The webhook event of each final state.
TERMINAL_EVENTS = {
    JobState.COMPLETED: "completed",
    JobState.FAILED: "failed",
    JobState.CANCELLED: "cancelled",
}


class Notifier(Protocol):
    """Turns job events into webhook deliveries (the webhook sender implements it)."""

    def deliveries_for(
        self, job: JobRecord, event: str, document: dict[str, Any], *, room: bool = True
    ) -> list[PendingDelivery]:
        """The deliveries ``event`` (completed/failed/cancelled/progress) causes, unsent
        (``room``: what :meth:`room_for` answered for an optional event)."""

    async def room_for(self, job: JobRecord, event: str) -> bool:
        """Whether a delivery of optional ``event`` may be recorded for ``job`` now."""

    async def send(self, deliveries: list[PendingDelivery]) -> None:
        """Start sending deliveries the store has committed."""

    async def restore(self, stored: list[StoredDelivery]) -> None:
        """Take over the deliveries the store handed back when it opened."""

    def discard(self, deliveries: list[PendingDelivery]) -> None:
        """Forget deliveries whose commit the store refused."""

    def delivery_of(self, job_id: str, event: str) -> str | None:
        """The id of the recorded delivery of ``event`` for ``job_id``, if any."""


class Notices:
    """Plans, sends and re-derives the webhook deliveries of one job manager's jobs.

    Args:
        notifier: the webhook sender (``None``: no webhooks).
        store: the job store (a re-derived delivery is committed with its job).
    """

    def __init__(self, notifier: Notifier | None, store: Store) -> None:
        self.notifier = notifier
        self.store = store

    async def room(self, job: JobRecord, event: str) -> bool:
        """Whether webhook ``event`` of ``job`` may be recorded (asked before the change; a
        failure to tell is logged and answers no: an optional event is then not recorded)."""
        if self.notifier is None or job.callback is None:
            return True
        try:
            return await self.notifier.room_for(job, event)
        except Exception:
            log.exception("webhook notifier failed for job %s", job.id)
            return False

    def plan(
        self, job: JobRecord, event: str, document: dict[str, Any], *, room: bool = True
    ) -> list[PendingDelivery]:
        """The deliveries of webhook ``event``; a final job remembers its delivery's id."""
        if self.notifier is None or job.callback is None:
            return []
        try:
            deliveries = self.notifier.deliveries_for(job, event, document, room=room)
        except Exception:
            log.exception("webhook notifier failed for job %s", job.id)
            return []
        if deliveries and job.state.is_terminal:
            job.webhook_delivery_id = deliveries[0].record.id
        return deliveries

    async def send(self, deliveries: list[PendingDelivery]) -> None:
        """Start sending committed deliveries."""
        if deliveries and self.notifier is not None:
            await self.notifier.send(deliveries)

    def discard(self, deliveries: list[PendingDelivery]) -> None:
        """Forget planned deliveries whose commit the store refused."""
        if deliveries and self.notifier is not None:
            self.notifier.discard(deliveries)

    async def restore(self, stored: list[StoredDelivery]) -> None:
        """Hand the deliveries a store loaded to the sender (pending ones resume)."""
        if self.notifier is not None:
            await self.notifier.restore(stored)

    async def rederive(
        self, job: JobRecord, document: Callable[[JobRecord], dict[str, Any]]
    ) -> None:
        """Give a reloaded final job the delivery its callback asked for, if it has none.

        A job written by a server that saved the state and the delivery separately may have
        been killed in between: its delivery is derived now (or an existing record of its
        terminal event adopted). A job that has a delivery id keeps it, even when the
        record itself was since dropped as finished.
        """
        event = TERMINAL_EVENTS.get(job.state)
        if (
            event is None
            or self.notifier is None
            or job.callback is None
            or job.webhook_delivery_id is not None
        ):
            return
        existing = self.notifier.delivery_of(job.id, event)
        if existing is not None:
            job.webhook_delivery_id = existing
            await self.store.save_job(job)
            return
        deliveries = self.plan(job, event, document(job))
        if deliveries:
            log.warning("job %s is %s without its webhook on record: derived", job.id, event)
            await self.store.commit(job, None, deliveries)
            await self.send(deliveries)
