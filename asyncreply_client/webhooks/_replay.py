"""Replay stores: where a verifier remembers the deliveries it accepted."""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["AsyncReplayStore", "InMemoryReplayStore", "ReplayStore"]


class ReplayStore(Protocol):
    """Where a verifier remembers the deliveries it accepted, to reject replays.

    Keys are opaque strings built by the verifier. A store shared by several processes
    (:class:`~asyncreply_client.webhooks.RedisReplayStore`, a database table with a unique
    key) makes replay protection and de-duplication hold across them; give each sender (each
    secret) its own store or key prefix.
    The receiver claims a delivery before running its callback and releases the claim when
    the callback fails; with a persistent store, a process that dies in between leaves the
    claim in place, and the sender's retries are answered 503 until it expires.
    """

    def add(self, key: str, expires_at: float) -> bool:
        """Record ``key`` until ``expires_at`` (seconds since the epoch) unless it is present.

        Must be atomic: of two concurrent calls with the same key, exactly one returns ``True``.

        Returns:
            ``True`` when the key was absent (or expired) and is now recorded, else ``False``.
        """
        ...

    def discard(self, key: str) -> None:
        """Forget ``key`` (no error when it is absent)."""
        ...

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is recorded and not expired."""
        ...


class AsyncReplayStore(Protocol):
    """The asynchronous form of :class:`ReplayStore` (for example
    :class:`~asyncreply_client.webhooks.AsyncRedisReplayStore`).

    Use it with :meth:`WebhookVerifier.verify_async` and :func:`handle_webhook_async` (and
    the ready async receivers); the synchronous entry points refuse it.
    """

    async def add(self, key: str, expires_at: float) -> bool:
        """Like :meth:`ReplayStore.add` (atomic)."""
        ...

    async def discard(self, key: str) -> None:
        """Like :meth:`ReplayStore.discard`."""
        ...

    async def contains(self, key: str) -> bool:
        """Like ``key in store`` for a :class:`ReplayStore`."""
        ...


class InMemoryReplayStore:
    """A bounded, thread-safe in-process :class:`ReplayStore` with per-key expiry.

    Expired keys are dropped as new ones arrive; when ``max_entries`` live keys are held, the
    one closest to expiry is evicted first (a replay of an evicted delivery would be accepted
    again, so size the store for the deliveries that arrive within the verifier's
    ``remember_for``).

    Example:
        >>> store = InMemoryReplayStore(clock=lambda: 1000.0)
        >>> store.add("msg_1", expires_at=1300.0), store.add("msg_1", expires_at=1300.0)
        (True, False)
        >>> "msg_1" in store
        True
    """

    def __init__(
        self, *, max_entries: int = 100_000, clock: Callable[[], float] = time.time
    ) -> None:
        """Create an empty store.

        Args:
            max_entries: the most keys held at once (at least 1).
            clock: seconds since the epoch; the same clock as the verifier's.
        """
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}
        # (expires_at, key); entries whose key was discarded or re-added are stale and skipped.
        self._heap: list[tuple[float, str]] = []

    def add(self, key: str, expires_at: float) -> bool:
        """Record ``key`` until ``expires_at`` unless it is already recorded (atomic)."""
        with self._lock:
            self._prune(self._clock())
            if key in self._expiry:
                return False
            while len(self._expiry) >= self._max_entries:
                self._pop_soonest()
            self._expiry[key] = expires_at
            heapq.heappush(self._heap, (expires_at, key))
            if len(self._heap) > 2 * self._max_entries:
                self._heap = [(exp, k) for k, exp in self._expiry.items()]
                heapq.heapify(self._heap)
            return True

    def discard(self, key: str) -> None:
        """Forget ``key``."""
        with self._lock:
            self._expiry.pop(key, None)

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is recorded and not expired."""
        with self._lock:
            self._prune(self._clock())
            return key in self._expiry

    def __len__(self) -> int:
        """The number of live keys."""
        with self._lock:
            self._prune(self._clock())
            return len(self._expiry)

    def _prune(self, now: float) -> None:
        # A key stays valid through its expiry instant (``<``), matching the inclusive
        # tolerance check: a delivery exactly at the window's edge is still a replay.
        while self._heap and self._heap[0][0] < now:
            expires_at, key = heapq.heappop(self._heap)
            if self._expiry.get(key) == expires_at:  # else a stale entry: discarded or re-added
                del self._expiry[key]

    def _pop_soonest(self) -> None:
        while self._heap:
            expires_at, key = heapq.heappop(self._heap)
            if self._expiry.get(key) == expires_at:
                del self._expiry[key]
                return
