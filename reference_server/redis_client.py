"""The Redis connection and key naming shared by the Redis job and delivery stores."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from .store import StoreUnavailable

try:
    import redis
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
    """The store's open connection (redis-py's blocking client), shared with its deliveries."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._redis: redis.Redis | None = None

    @property
    def redis(self) -> redis.Redis:
        """The open client."""
        if self._redis is None:
            raise RuntimeError("the redis store is not open")
        return self._redis

    def open(self) -> None:
        """Connect and check that Redis answers.

        Raises:
            StoreUnavailable: Redis does not answer.
        """
        if redis is None:
            raise RuntimeError(
                "--store redis needs the redis package: pip install 'asyncreply[server]'"
            )
        self._redis = redis.Redis.from_url(
            self.url, socket_timeout=10, socket_connect_timeout=10, health_check_interval=30
        )
        try:
            self._redis.ping()
        except redis.RedisError as exc:
            self.close()
            raise StoreUnavailable(
                f"the redis store at {self.url} does not answer: {exc}"
            ) from None

    def close(self) -> None:
        """Disconnect."""
        if self._redis is not None:
            self._redis.close()
            self._redis = None

    def scan(self, pattern: str) -> Iterator[bytes]:
        """Every key matching ``pattern``."""
        yield from self.redis.scan_iter(match=pattern, count=1000)
