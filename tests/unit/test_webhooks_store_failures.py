"""A replay store that fails (Redis down) never crashes a receiver: nothing processed is a 503
the sender retries; work already done is acknowledged. Sync and async drivers alike."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from asyncreply_client.webhooks import (
    RedisReplayStore,
    WebhookEvent,
    WebhookResponse,
    WebhookVerifier,
    handle_webhook,
    handle_webhook_async,
    sign,
)

NOW = 1_700_000_000
BODY = b'{"type": "job.completed", "jobId": "j1"}'
HEADERS = sign(BODY, "s3cret", msg_id="m1", timestamp=NOW)


class FlakyStore:
    """An in-process store whose operations on keys with a given prefix raise."""

    def __init__(self, failing: str) -> None:
        self.failing = failing
        self.keys: set[str] = set()

    def _check(self, key: str) -> None:
        if key.startswith(self.failing):
            raise ConnectionError("store down")

    def add(self, key: str, expires_at: float) -> bool:
        self._check(key)
        if key in self.keys:
            return False
        self.keys.add(key)
        return True

    def discard(self, key: str) -> None:
        self._check(key)
        self.keys.discard(key)

    def __contains__(self, key: object) -> bool:
        return key in self.keys


Deliver = Callable[[WebhookVerifier, dict[str, Any]], WebhookResponse]


def _sync(verifier: WebhookVerifier, callbacks: dict[str, Any]) -> WebhookResponse:
    return handle_webhook(verifier, HEADERS, BODY, callbacks)


def _async(verifier: WebhookVerifier, callbacks: dict[str, Any]) -> WebhookResponse:
    import asyncio

    run: Coroutine[Any, Any, WebhookResponse] = handle_webhook_async(
        verifier, HEADERS, BODY, callbacks
    )
    return asyncio.run(run)


DRIVERS = pytest.mark.parametrize("deliver", [_sync, _async], ids=["sync", "async"])


def _broken(event: WebhookEvent) -> None:
    raise RuntimeError("database down")


@DRIVERS
def test_a_store_down_before_processing_answers_503(
    deliver: Deliver, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str | None] = []
    verifier = WebhookVerifier("s3cret", replay_store=FlakyStore("seen:"), clock=lambda: NOW)
    with caplog.at_level(logging.DEBUG, logger="asyncreply"):
        answer = deliver(verifier, {"*": lambda e: seen.append(e.job_id)})
    assert (answer.status_code, answer.json()["error"]["code"]) == (
        503,
        "replay_store_unavailable",
    )
    assert answer.headers["Retry-After"] == "1"
    assert seen == []
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            logging.ERROR,
            "webhook delivery not recorded: the replay store failed (ConnectionError): "
            "answered 503",
        )
    ]


@DRIVERS
def test_work_done_is_acknowledged_when_the_store_cannot_record_it(
    deliver: Deliver, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str | None] = []
    store = FlakyStore("done:")
    verifier = WebhookVerifier("s3cret", replay_store=store, clock=lambda: NOW)
    with caplog.at_level(logging.DEBUG, logger="asyncreply"):
        answer = deliver(verifier, {"*": lambda e: seen.append(e.job_id)})
    assert answer.json() == {"status": "processed", "deliveryId": "m1"}
    assert seen == ["j1"]
    assert len(caplog.records) == 1 and caplog.records[0].levelno == logging.ERROR
    # The claim stays: a retry is not processed twice.
    assert deliver(verifier, {"*": lambda e: seen.append(e.job_id)}).status_code == 503
    assert seen == ["j1"]


@DRIVERS
def test_a_failed_callback_with_a_failed_release_still_answers_500(
    deliver: Deliver, caplog: pytest.LogCaptureFixture
) -> None:
    store = FlakyStore("never")
    verifier = WebhookVerifier("s3cret", replay_store=store, clock=lambda: NOW)

    def broken_and_store_down(event: WebhookEvent) -> None:
        store.failing = ""  # every key fails from now on
        raise RuntimeError("database down")

    with caplog.at_level(logging.DEBUG, logger="asyncreply"):
        answer = deliver(verifier, {"*": broken_and_store_down})
    assert answer.status_code == 500
    assert len(caplog.records) == 1
    assert (
        caplog.records[0]
        .getMessage()
        .endswith("answered 500 (the replay store could not release its claim)")
    )


def test_a_redis_that_is_down_answers_503() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # No client-side retries: the receiver's answer is what is tested, not redis-py's backoff.
    client = redis.Redis(host="127.0.0.1", port=port, retry=Retry(NoBackoff(), 0))
    verifier = WebhookVerifier(
        "s3cret", replay_store=RedisReplayStore(client, clock=lambda: NOW), clock=lambda: NOW
    )
    try:
        answer = handle_webhook(verifier, HEADERS, BODY, {"*": _broken})
    finally:
        client.close()
    assert (answer.status_code, answer.json()["error"]["code"]) == (
        503,
        "replay_store_unavailable",
    )
