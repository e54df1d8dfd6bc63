"""Webhook deliveries: payloads, both signature schemes, retries and the failed-delivery list."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import re
import socket
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from .conftest import WEBHOOK_SECRET, Delivery, Receiver, Server, ServerFactory, poll_until

pytestmark = pytest.mark.anyio


def secret_key() -> bytes:
    return base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_"))


def assert_signed(delivery: Delivery) -> dict[str, Any]:
    """Check both signature schemes independently; return the verified payload."""
    headers = {k.lower(): v for k, v in delivery.headers.items()}
    # Standard Webhooks, verified by the reference implementation.
    payload = Webhook(WEBHOOK_SECRET).verify(delivery.body, delivery.headers)
    # The simple scheme, computed here by hand.
    expected = "sha256=" + hmac.new(secret_key(), delivery.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-webhook-signature"], expected)
    assert headers["x-webhook-delivery"] == headers["webhook-id"]
    assert headers["x-webhook-timestamp"] == headers["webhook-timestamp"]
    assert headers["x-webhook-event"] == payload["type"]
    assert headers["content-type"].startswith("application/json")
    # A tampered body fails verification.
    with pytest.raises(WebhookVerificationError):
        Webhook(WEBHOOK_SECRET).verify(delivery.body + b" ", delivery.headers)
    assert isinstance(payload, dict)
    return payload


def callback(receiver: Receiver, *events: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"url": receiver.url}
    if events:
        spec["events"] = list(events)
    return {"callback": spec}


async def wait_delivery_status(srv: Server, status: str, count: int = 1) -> list[Any]:
    """Wait until ``admin.deliveries(status=...)`` holds ``count`` records; return them."""
    await poll_until(lambda: len(srv.admin.deliveries(status=status)) >= count)
    return list(srv.admin.deliveries(status=status))


@pytest.mark.parametrize("mode", ["async", "thread"])
async def test_completed_event_is_delivered_and_signed(srv: Server, receiver: Receiver) -> None:
    job_id = await srv.submit_ok("echo", {"hook": 1}, extra=callback(receiver))
    received = await receiver.wait_for(lambda got: len(got) >= 1)

    payload = assert_signed(received[0])
    assert payload["type"] == "job.completed"
    assert payload["jobId"] == job_id
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", payload["timestamp"])
    assert payload["data"]["jobId"] == job_id
    assert payload["data"]["status"] == "completed"
    assert payload["data"]["resultUrl"] == f"/jobs/{job_id}/result"
    delivered = await wait_delivery_status(srv, "delivered")
    assert delivered[0].job_id == job_id
    assert delivered[0].attempts == 1


async def test_failed_event_is_delivered(srv: Server, receiver: Receiver) -> None:
    job_id = await srv.submit_ok(
        "fail", {"code": "kaput", "message": "m", "retryable": False}, extra=callback(receiver)
    )
    received = await receiver.wait_for(lambda got: len(got) >= 1)
    payload = assert_signed(received[0])
    assert payload["type"] == "job.failed"
    assert payload["jobId"] == job_id
    assert payload["data"]["status"] == "failed"
    assert payload["data"]["error"]["code"] == "kaput"


async def test_progress_events_are_delivered_when_asked(srv: Server, receiver: Receiver) -> None:
    for step in (1, 2, 3):
        srv.gates.open(f"wp-{step}")
    job_id = await srv.submit_ok(
        "steps",
        {"key": "wp", "total": 3},
        extra=callback(receiver, "completed", "failed", "progress"),
    )
    await receiver.wait_for(lambda got: any(d.json()["type"] == "job.completed" for d in got))
    await receiver.wait_for(lambda got: len(receiver.of_type("job.progress")) >= 3)
    progress = [assert_signed(d) for d in receiver.of_type("job.progress")]
    assert all(p["jobId"] == job_id for p in progress)
    # One job's events are delivered in order, one at a time.
    assert [p["data"]["progress"]["current"] for p in progress] == [1, 2, 3]
    assert [d.json()["type"] for d in receiver.received] == ["job.progress"] * 3 + ["job.completed"]
    delivery_ids = [d.headers["webhook-id"] for d in receiver.received]
    assert len(set(delivery_ids)) == len(delivery_ids), "one delivery id per event"


async def test_progress_is_not_delivered_unless_asked(srv: Server, receiver: Receiver) -> None:
    for step in (1, 2):
        srv.gates.open(f"np-{step}")
    await srv.submit_ok("steps", {"key": "np", "total": 2}, extra=callback(receiver))
    await receiver.wait_for(lambda got: len(got) >= 1)
    await wait_delivery_status(srv, "delivered")
    assert [d.json()["type"] for d in receiver.received] == ["job.completed"]


async def test_5xx_is_retried_until_it_succeeds(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    srv = await make_server(webhook_max_attempts=5)
    receiver.plan = [500, 503]
    await srv.submit_ok("echo", {}, extra=callback(receiver))
    received = await receiver.wait_for(lambda got: len(got) >= 3)
    assert [d.status for d in received] == [500, 503, 200]
    ids = {d.headers["webhook-id"] for d in received}
    assert len(ids) == 1, "retries keep the delivery id"
    for delivery in received:
        assert_signed(delivery)
    delivered = await wait_delivery_status(srv, "delivered")
    assert delivered[0].attempts == 3
    assert len(receiver.received) == 3


async def test_4xx_is_not_retried_and_is_kept(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    srv = await make_server(webhook_max_attempts=5)
    receiver.plan = [400]
    job_id = await srv.submit_ok("echo", {}, extra=callback(receiver))
    failed = await wait_delivery_status(srv, "failed")
    assert len(receiver.received) == 1
    assert failed[0].job_id == job_id
    assert failed[0].attempts == 1
    assert failed[0].response_status == 400

    listed = await srv.get("/webhooks/deliveries", params={"status": "failed"})
    assert listed.status_code == 200
    items = listed.json()["deliveries"]
    assert [item["jobId"] for item in items] == [job_id]
    assert items[0]["status"] == "failed"
    # Another user does not see alice's deliveries.
    other = await srv.get("/webhooks/deliveries", params={"status": "failed"}, user="bob")
    assert other.status_code == 200
    assert other.json()["deliveries"] == []


async def test_exhausted_5xx_deliveries_are_kept(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    srv = await make_server(webhook_max_attempts=3)
    receiver.default = 502
    job_id = await srv.submit_ok("echo", {}, extra=callback(receiver))
    failed = await wait_delivery_status(srv, "failed")
    assert len(receiver.received) == 3
    assert failed[0].attempts == 3
    assert failed[0].response_status == 502
    listed = (await srv.get("/webhooks/deliveries", params={"status": "failed"})).json()
    assert [item["jobId"] for item in listed["deliveries"]] == [job_id]


async def test_network_errors_are_retried_then_kept(make_server: ServerFactory) -> None:
    with socket.socket() as sock:  # a loopback port with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    srv = await make_server(webhook_max_attempts=3)
    job_id = await srv.submit_ok(
        "echo", {}, extra={"callback": {"url": f"http://127.0.0.1:{port}/hook"}}
    )
    failed = await wait_delivery_status(srv, "failed")
    assert failed[0].job_id == job_id
    assert failed[0].attempts == 3
    assert failed[0].last_error
    listed = (await srv.get("/webhooks/deliveries", params={"status": "failed"})).json()
    assert [item["jobId"] for item in listed["deliveries"]] == [job_id]
    # The server is still fine.
    assert (await srv.wait_terminal(job_id)).status_code == 303


async def test_bad_callback_is_400(srv: Server) -> None:
    for spec in ({"url": "not a url"}, {"url": "http://127.0.0.1:1/x", "events": ["explode"]}, {}):
        response = await srv.submit("echo", {}, extra={"callback": spec})
        assert response.status_code == 400, spec


async def test_3xx_fails_at_once(make_server: ServerFactory, receiver: Receiver) -> None:
    srv = await make_server(webhook_max_attempts=5)
    receiver.plan = [302]
    await srv.submit_ok("echo", {}, extra=callback(receiver))
    failed = await wait_delivery_status(srv, "failed")
    assert failed[0].attempts == 1
    assert failed[0].response_status == 302
    assert len(receiver.received) == 1


async def test_cancelled_event_only_when_listed(srv: Server, receiver: Receiver) -> None:
    listed = await srv.submit_ok(
        "gate", {"key": "wc1"}, extra=callback(receiver, "completed", "cancelled")
    )
    unlisted = await srv.submit_ok("gate", {"key": "wc2"}, extra=callback(receiver))
    await srv.gates.wait_started("wc1")
    await srv.gates.wait_started("wc2")
    assert (await srv.delete(f"/jobs/{unlisted}")).status_code == 200
    assert (await srv.delete(f"/jobs/{listed}")).status_code == 200
    received = await receiver.wait_for(lambda got: len(got) >= 1)
    payload = assert_signed(received[0])
    assert payload["type"] == "job.cancelled"
    assert payload["jobId"] == listed
    assert payload["data"]["status"] == "cancelled"
    await wait_delivery_status(srv, "delivered")
    assert [d.job_id for d in srv.admin.deliveries()] == [listed]


async def test_deliveries_listing_filters(srv: Server, receiver: Receiver) -> None:
    first = await srv.submit_ok("echo", {"n": 1}, extra=callback(receiver))
    await wait_delivery_status(srv, "delivered", 1)
    second = await srv.submit_ok("echo", {"n": 2}, extra=callback(receiver))
    await wait_delivery_status(srv, "delivered", 2)

    everything = (await srv.get("/webhooks/deliveries")).json()["deliveries"]
    assert [d["jobId"] for d in everything] == [first, second]  # oldest first
    item = everything[0]
    assert item["event"] == "job.completed"
    assert item["url"] == receiver.url
    assert item["status"] == "delivered"
    assert item["attempts"] == 1
    assert item["responseStatus"] == 200
    assert item["id"].startswith("msg_")
    assert item["id"] == receiver.received[0].headers["webhook-id"]
    only = (await srv.get("/webhooks/deliveries", params={"jobId": second})).json()
    assert [d["jobId"] for d in only["deliveries"]] == [second]
    none = (await srv.get("/webhooks/deliveries", params={"status": "failed"})).json()
    assert none["deliveries"] == []


async def test_retries_back_off_exponentially(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    backoff = 0.05
    srv = await make_server(webhook_max_attempts=4, webhook_backoff=backoff)
    receiver.plan = [503, 503, 503]
    await srv.submit_ok("echo", {}, extra=callback(receiver))
    received = await receiver.wait_for(lambda got: len(got) >= 4)
    gaps = [b.at - a.at for a, b in itertools.pairwise(received)]
    # Lower bounds only (a sleep never ends early): attempt k+1 waits backoff * 2**(k-1).
    for k, gap in enumerate(gaps, start=1):
        assert gap >= backoff * 2 ** (k - 1) * 0.9, gaps
    # Each attempt is signed afresh but keeps its delivery id.
    assert len({d.headers["webhook-id"] for d in received}) == 1
    for delivery in received:
        assert_signed(delivery)
