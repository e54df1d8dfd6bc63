"""The Redis connection and key naming shared by the Redis job and delivery stores.

One :class:`redis.asyncio.Redis` per store (per process), with its connection pool: every
call is awaited, so no call to Redis ever blocks the event loop.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

from .store import StoreUnavailable

try:
    import redis
    import redis.asyncio
except ImportError:  # pragma: no cover - the server extra installs it
    redis = None  # type: ignore[assignment]

__all__ = ["PREFIX", "RedisClient", "job_key", "owner_key"]

PREFIX = "ar"


def job_key(job_id: str, part: str) -> str:
    """The key of one part (``job``, ``events``…) of a job, hash-tagged by its id.

    Example:
        >>> job_key("0f3a", "events")
        'ar:{0f3a}:events'
    """
    return f"{PREFIX}:{{{job_id}}}:{part}"


def owner_key(owner: str, part: str) -> str:
    """The key of one per-user index (``dlv:pending``, ``dlv:done``), by a digest of the user.

    Example:
        >>> owner_key("ann", "dlv:pending")[:12]
        'ar:owner:499'
    """
    digest = hashlib.sha256(owner.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{PREFIX}:owner:{digest}:{part}"


def text(value: bytes | str) -> str:
    """A reply as text (the client answers bytes; its type stubs allow either)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def raw(value: bytes | str) -> bytes:
    """A reply as bytes."""
    return value if isinstance(value, bytes) else value.encode()


class RedisClient:
    """The store's open connection pool (redis-py's asyncio client), shared with its deliveries."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._redis: redis.asyncio.Redis | None = None

    @property
    def redis(self) -> redis.asyncio.Redis:
        """The open client."""
        if self._redis is None:
            raise RuntimeError("the redis store is not open")
        return self._redis

    async def open(self) -> None:
        """Connect and check that Redis answers.

        Raises:
            StoreUnavailable: Redis does not answer.
        """
        if redis is None:
            raise RuntimeError(
                "--store redis needs the redis package: pip install 'asyncreply[server]'"
            )
        await self.close()  # opened again: the previous pool goes
        self._redis = redis.asyncio.Redis.from_url(
            self.url, socket_timeout=10, socket_connect_timeout=10, health_check_interval=30
        )
        try:
            await self._redis.ping()
        except (redis.RedisError, OSError) as exc:
            await self.close()
            raise StoreUnavailable(
                f"the redis store at {self.url} does not answer: {exc}"
            ) from None

    async def close(self) -> None:
        """Disconnect (the pool's connections are closed)."""
        if self._redis is not None:
            client, self._redis = self._redis, None
            await client.aclose()

    async def scan(self, pattern: str) -> AsyncIterator[bytes]:
        """Every key matching ``pattern``."""
        async for key in self.redis.scan_iter(match=pattern, count=1000):
            yield key
