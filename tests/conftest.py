"""Shared pytest configuration: async tests run on asyncio through anyio's plugin; a real
``redis-server`` for the tests that ask for one (``redis_server``, ``redis_url``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.redis_server import SKIP_REASON, RedisServer, redis_server_binary


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server for the session (no persistence); skipped where it is missing."""
    if redis_server_binary() is None:
        pytest.skip(SKIP_REASON)
    server = RedisServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The URL of an empty database on the session's redis-server (flushed after the test)."""
    import redis

    db = 0  # tests run one at a time: one database, emptied before and after each test
    client = redis.Redis(host="127.0.0.1", port=redis_server.port, db=db)
    client.flushdb()
    try:
        yield redis_server.url_for(db)
    finally:
        client.flushdb()
        client.close()
