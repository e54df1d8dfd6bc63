"""Replay stores on Redis, shared by several receiver processes (needs the ``redis`` extra).

Each claim is one atomic ``SET key 1 NX PX <ttl>``: of N receivers that get the same delivery
at once, exactly one sees ``OK`` and processes it; the others see a duplicate. The key lives
as long as the verifier's window for that delivery (its timestamp plus the tolerance, and at
least ``remember_for``), counted by Redis itself, so a receiver's clock and Redis's never
need to agree.

Key layout: ``<prefix><kind>:<replay key>``, for example
``asyncreply:webhooks:seen:id:msg_2KWPBgLlAfxdpx2AI54pPJ85f4W`` (claimed) and
``asyncreply:webhooks:done:id:msg_…`` (processed: a later duplicate is answered 200). Give
each sender (each secret) its own ``prefix`` when several share one Redis database.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis
    import redis.asyncio

__all__ = ["AsyncRedisReplayStore", "DEFAULT_PREFIX", "RedisReplayStore"]

DEFAULT_PREFIX = "asyncreply:webhooks:"
"""The default prefix of the replay keys."""


class _Layout:
    """The key names and time-to-live rules both Redis stores share (no I/O)."""

    def __init__(self, prefix: str, clock: Callable[[], float]) -> None:
        if not isinstance(prefix, str):
            raise TypeError("prefix must be a string")
        self.prefix = prefix
        self.clock = clock

    def key(self, key: str) -> str:
        return self.prefix + key

    def ttl_ms(self, expires_at: float) -> int:
        # Relative, so that Redis counts it down with its own clock; at least 1 ms, because a
        # key that is already expired is still a claim for this call (PX must be positive).
        remaining = expires_at - self.clock()
        if not math.isfinite(remaining):
            raise ValueError("expires_at must be a finite number of seconds since the epoch")
        return max(1, math.ceil(remaining * 1000))


class RedisReplayStore:
    """A :class:`ReplayStore` on Redis for synchronous receivers (``redis.Redis``).

    Args:
        client: a ``redis.Redis`` client (``redis.Redis.from_url("redis://…")``).
        prefix: prepended to every key.
        clock: seconds since the epoch: the verifier's clock.

    Example:
        >>> import redis
        >>> client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        >>> verifier = WebhookVerifier("whsec_c2VjcmV0", replay_store=RedisReplayStore(client))
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Wrap ``client`` (see the class docstring)."""
        self._client: Any = client
        self._layout = _Layout(prefix, clock)

    def __repr__(self) -> str:
        return f"RedisReplayStore(prefix={self._layout.prefix!r})"

    def add(self, key: str, expires_at: float) -> bool:
        """Claim ``key`` until ``expires_at`` unless it is claimed (``SET NX PX``, atomic)."""
        layout = self._layout
        return bool(self._client.set(layout.key(key), 1, nx=True, px=layout.ttl_ms(expires_at)))

    def discard(self, key: str) -> None:
        """Forget ``key``."""
        self._client.delete(self._layout.key(key))

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is claimed and not expired."""
        return isinstance(key, str) and bool(self._client.exists(self._layout.key(key)))


class AsyncRedisReplayStore:
    """An :class:`AsyncReplayStore` on Redis for asynchronous receivers (``redis.asyncio``).

    Use it with :func:`handle_webhook_async`, :meth:`WebhookVerifier.verify_async` and the
    ready aiohttp and Starlette receivers.

    Args:
        client: a ``redis.asyncio.Redis`` client.
        prefix: prepended to every key.
        clock: seconds since the epoch: the verifier's clock.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Wrap ``client`` (see the class docstring)."""
        self._client: Any = client
        self._layout = _Layout(prefix, clock)

    def __repr__(self) -> str:
        return f"AsyncRedisReplayStore(prefix={self._layout.prefix!r})"

    async def add(self, key: str, expires_at: float) -> bool:
        """Claim ``key`` until ``expires_at`` unless it is claimed (``SET NX PX``, atomic)."""
        layout = self._layout
        answer = await self._client.set(layout.key(key), 1, nx=True, px=layout.ttl_ms(expires_at))
        return bool(answer)

    async def discard(self, key: str) -> None:
        """Forget ``key``."""
        await self._client.delete(self._layout.key(key))

    async def contains(self, key: str) -> bool:
        """Whether ``key`` is claimed and not expired."""
        return bool(await self._client.exists(self._layout.key(key)))
