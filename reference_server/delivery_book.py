"""The webhook delivery records of one server, bounded per owner.

A pending delivery is never evicted: it is a promise to a receiver. Each owner keeps at most
``limit`` records; a new record of a full owner first drops that owner's oldest *finished*
(delivered or failed) records, so one user's webhook volume can never erase another user's
deliveries. When every record of the owner is still pending, :meth:`DeliveryBook.add`
refuses with :class:`OwnerDeliveriesFull` (the sender decides what that means per event).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .records import DeliveryRecord

__all__ = ["DeliveryBook", "OwnerDeliveriesFull"]


class OwnerDeliveriesFull(Exception):
    """Every one of the owner's ``limit`` delivery records is still pending."""

    def __init__(self, owner: str, limit: int) -> None:
        super().__init__(
            f"all {limit} webhook delivery records of this user are pending (the most kept per"
            " user): wait until receivers answer, or submit without a callback"
        )
        self.owner = owner
        self.limit = limit


class DeliveryBook:
    """Delivery records in creation order, with per-owner pending and finished indexes.

    Args:
        limit: the most records kept per owner.

    Example:
        >>> from reference_server.records import DeliveryRecord
        >>> book = DeliveryBook(limit=1)
        >>> book.add(DeliveryRecord("m1", "j1", "ann", "job.completed", "u", 0.0, 0.0))
        []
        >>> book.get("m1").status = "delivered"; book.finished("m1")
        >>> book.add(DeliveryRecord("m2", "j2", "ann", "job.completed", "u", 1.0, 1.0))
        ['m1']
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._records: dict[str, DeliveryRecord] = {}
        self._pending: dict[str, dict[str, None]] = {}
        #: Per owner, finished record ids, oldest finished first (dicts keep insertion order).
        self._finished: dict[str, dict[str, None]] = {}
        self._by_job_event: dict[tuple[str, str], str] = {}

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[DeliveryRecord]:
        return iter(list(self._records.values()))

    def values(self) -> list[DeliveryRecord]:
        """Every record, oldest first."""
        return list(self._records.values())

    def get(self, delivery_id: str) -> DeliveryRecord | None:
        """The record ``delivery_id``, if kept."""
        return self._records.get(delivery_id)

    def of_job(self, job_id: str, event: str) -> DeliveryRecord | None:
        """The (latest) record of ``event`` (``job.completed``…) for ``job_id``, if kept."""
        delivery_id = self._by_job_event.get((job_id, event))
        return self._records.get(delivery_id) if delivery_id is not None else None

    def pending_count(self, owner: str) -> int:
        """How many of ``owner``'s deliveries are pending."""
        return len(self._pending.get(owner, ()))

    def count(self, owner: str) -> int:
        """How many records ``owner`` has."""
        return self.pending_count(owner) + len(self._finished.get(owner, ()))

    def room_for(self, owner: str, extra: int = 1) -> list[str]:
        """The finished records of ``owner`` to drop so ``extra`` more fit (oldest first).

        Raises:
            OwnerDeliveriesFull: not enough finished records to make room.
        """
        over = self.count(owner) + extra - self.limit
        if over <= 0:
            return []
        finished = self._finished.get(owner, {})
        if over > len(finished):
            raise OwnerDeliveriesFull(owner, self.limit)
        return list(finished)[:over]

    def add(self, record: DeliveryRecord, *, force: bool = False) -> list[str]:
        """Keep ``record``; return the ids of the owner's finished records dropped for it.

        Args:
            record: the new record (pending, or finished when loaded from a store).
            force: keep it even when every record of the owner is pending (a terminal event
                of a job that was already accepted: the bound is exceeded by at most the
                owner's live jobs, never by dropping a pending delivery).

        Raises:
            OwnerDeliveriesFull: the owner is full of pending records and ``force`` is off.
        """
        try:
            dropped = self.room_for(record.owner)
        except OwnerDeliveriesFull:
            if not force:
                raise
            dropped = list(self._finished.get(record.owner, {}))
        for delivery_id in dropped:
            self.remove(delivery_id)
        self._records[record.id] = record
        self._by_job_event[(record.job_id, record.event)] = record.id
        if record.status == "pending":
            self._pending.setdefault(record.owner, {})[record.id] = None
        else:
            self._finished.setdefault(record.owner, {})[record.id] = None
        return dropped

    def finished(self, delivery_id: str) -> None:
        """Record ``delivery_id`` as finished (delivered or failed): evictable from now on."""
        record = self._records.get(delivery_id)
        if record is None:
            return
        self._drop_from(self._pending, record.owner, delivery_id)
        self._finished.setdefault(record.owner, {})[delivery_id] = None

    def remove(self, delivery_id: str) -> None:
        """Forget one record."""
        record = self._records.pop(delivery_id, None)
        if record is None:
            return
        if self._by_job_event.get((record.job_id, record.event)) == delivery_id:
            del self._by_job_event[(record.job_id, record.event)]
        self._drop_from(self._pending, record.owner, delivery_id)
        self._drop_from(self._finished, record.owner, delivery_id)

    @staticmethod
    def _drop_from(index: dict[str, dict[str, None]], owner: str, delivery_id: str) -> None:
        ids = index.get(owner)
        if ids is not None:
            ids.pop(delivery_id, None)
            if not ids:
                del index[owner]

    def load(self, records: Iterable[DeliveryRecord]) -> list[str]:
        """Take over stored records (oldest first); return the ids dropped to fit the bound."""
        dropped: list[str] = []
        for record in records:
            dropped.extend(self.add(record, force=True))
        return dropped

    def clear(self) -> None:
        """Forget every record."""
        self._records.clear()
        self._pending.clear()
        self._finished.clear()
        self._by_job_event.clear()
