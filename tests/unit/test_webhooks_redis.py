"""The Redis replay store: N receiver instances process each delivery exactly once, with a real
redis-server (issue 18.4), sync and async."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
import redis.asyncio

from asyncreply_client.webhooks import (
    AsyncRedisReplayStore,
    RedisReplayStore,
    ReplayedDeliveryError,
    WebhookEvent,
    WebhookVerifier,
    handle_webhook,
    handle_webhook_async,
    sign,
)

NOW = 1_700_000_000
SECRET = "whsec_c2VjcmV0LWtleS1mb3ItdGVzdHM="
DELIVERIES = 40


def _delivery(number: int) -> tuple[dict[str, str], bytes]:
    body = f'{{"type": "job.completed", "jobId": "j{number}"}}'.encode()
    return sign(body, SECRET, msg_id=f"msg_{number}", timestamp=NOW, scheme="standard"), body


@pytest.fixture
def clients(redis_url: str) -> Iterator[list[redis.Redis]]:
    made = [redis.Redis.from_url(redis_url) for _ in range(2)]
    try:
        yield made
    finally:
        for client in made:
            client.close()


def _sync_instance(client: redis.Redis, **options: Any) -> WebhookVerifier:
    store = RedisReplayStore(client, clock=lambda: NOW)
    return WebhookVerifier(SECRET, replay_store=store, clock=lambda: NOW, **options)


def test_two_sync_instances_process_each_delivery_exactly_once(
    clients: list[redis.Redis],
) -> None:
    instances = [_sync_instance(client) for client in clients]
    processed: Counter[str | None] = Counter()
    lock = threading.Lock()

    def on_completed(event: WebhookEvent) -> None:
        with lock:
            processed[event.job_id] += 1

    def deliver(job: tuple[int, int]) -> tuple[int, str]:
        number, instance = job
        headers, body = _delivery(number)
        answer = handle_webhook(instances[instance], headers, body, {"job.completed": on_completed})
        return answer.status_code, answer.json().get("status") or answer.json()["error"]["code"]

    # Every delivery reaches both instances at once (a sender's retry racing the original).
    jobs = [(number, instance) for number in range(DELIVERIES) for instance in (0, 1)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(deliver, jobs))
    assert processed == Counter({f"j{n}": 1 for n in range(DELIVERIES)})
    kinds = Counter(answers)
    assert kinds[(200, "processed")] == DELIVERIES
    assert kinds[(200, "duplicate")] + kinds[(503, "delivery_in_progress")] == DELIVERIES


@pytest.mark.anyio
async def test_two_async_instances_process_each_delivery_exactly_once(redis_url: str) -> None:
    made = [redis.asyncio.Redis.from_url(redis_url) for _ in range(2)]
    try:
        instances = [
            WebhookVerifier(
                SECRET,
                replay_store=AsyncRedisReplayStore(client, clock=lambda: NOW),
                clock=lambda: NOW,
            )
            for client in made
        ]
        processed: Counter[str | None] = Counter()

        async def on_completed(event: WebhookEvent) -> None:
            processed[event.job_id] += 1
            await asyncio.sleep(0)  # let the other instance's copy arrive meanwhile

        async def deliver(number: int, instance: int) -> int:
            headers, body = _delivery(number)
            answer = await handle_webhook_async(
                instances[instance], headers, body, {"job.completed": on_completed}
            )
            return answer.status_code

        codes = await asyncio.gather(*(deliver(n, i) for n in range(DELIVERIES) for i in (0, 1)))
    finally:
        for client in made:
            await client.aclose()
    assert processed == Counter({f"j{n}": 1 for n in range(DELIVERIES)})
    assert codes.count(200) >= DELIVERIES and set(codes) <= {200, 503}


def test_the_claim_lives_for_the_window_under_the_documented_keys(
    clients: list[redis.Redis],
) -> None:
    verifier = _sync_instance(clients[0], tolerance=300, remember_for=0)
    headers, body = _delivery(1)
    answer = handle_webhook(verifier, headers, body, {})
    assert answer.status_code == 200
    keys = sorted(key.decode() for key in clients[1].keys("*"))
    assert keys == [
        "asyncreply:webhooks:done:id:msg_1",
        "asyncreply:webhooks:seen:id:msg_1",
    ]
    # TTL = the tolerance window (timestamp + tolerance), counted by Redis itself.
    ttl = clients[1].pttl("asyncreply:webhooks:seen:id:msg_1")
    assert 0 < ttl <= 300_000


def test_a_failed_callback_releases_the_claim_for_another_instance(
    clients: list[redis.Redis],
) -> None:
    first, second = (_sync_instance(client) for client in clients)
    headers, body = _delivery(7)

    def broken(event: WebhookEvent) -> None:
        raise RuntimeError("database down")

    assert handle_webhook(first, headers, body, {"*": broken}).status_code == 500
    assert clients[0].keys("*") == []
    seen: list[str | None] = []
    assert handle_webhook(second, headers, body, {"*": lambda e: seen.append(e.job_id)}).json() == {
        "status": "processed",
        "deliveryId": "msg_7",
    }
    assert seen == ["j7"]


@pytest.mark.anyio
async def test_an_async_store_needs_the_async_entry_points(redis_url: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        verifier = WebhookVerifier(
            SECRET,
            replay_store=AsyncRedisReplayStore(client, prefix="tenant-a:", clock=lambda: NOW),
            clock=lambda: NOW,
        )
        headers, body = _delivery(3)
        with pytest.raises(TypeError, match="verify_async"):
            verifier.verify(headers, body)
        with pytest.raises(TypeError, match="handle_webhook_async"):
            handle_webhook(verifier, headers, body, {})
        event = await verifier.verify_async(body, headers)
        with pytest.raises(ReplayedDeliveryError) as replay:
            await verifier.verify_async(headers, body)
        assert replay.value.processed is False
        assert await client.exists("tenant-a:seen:id:msg_3") == 1
        await verifier.forget_async(event)
        assert (await verifier.verify_async(headers, body)).delivery_id == "msg_3"
    finally:
        await client.aclose()


# One receiver process: http.server + handle_webhook + RedisReplayStore; its callback records
# the job id in a Redis list, the ledger the test reads. It prints its port, then serves.
_RECEIVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import redis

from asyncreply_client.webhooks import RedisReplayStore, WebhookVerifier, handle_webhook

url, secret, now = sys.argv[1], sys.argv[2], float(sys.argv[3])
client = redis.Redis.from_url(url)
verifier = WebhookVerifier(
    secret, replay_store=RedisReplayStore(client, clock=lambda: now), clock=lambda: now
)


def record(event):
    client.rpush("ledger", event.job_id)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        answer = handle_webhook(verifier, self.headers, body, {"job.completed": record})
        self.send_response(answer.status_code)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def test_three_receiver_processes_process_each_delivery_exactly_once(redis_url: str) -> None:
    import subprocess
    import sys

    import httpx

    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _RECEIVER, redis_url, SECRET, str(NOW)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        ports = [int(p.stdout.readline()) for p in processes if p.stdout is not None]
        assert len(ports) == 3

        http = httpx.Client(timeout=30)

        def deliver(job: tuple[int, int]) -> int:
            number, port = job
            headers, body = _delivery(number)
            url = f"http://127.0.0.1:{port}/hooks"
            return http.post(url, content=body, headers=headers).status_code

        # Each delivery goes to all three instances at once, as a load balancer that retried.
        jobs = [(number, port) for number in range(DELIVERIES) for port in ports]
        with http, ThreadPoolExecutor(max_workers=12) as pool:
            codes = list(pool.map(deliver, jobs))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
            if process.stdout is not None:
                process.stdout.close()
    ledger = redis.Redis.from_url(redis_url)
    try:
        processed = Counter(item.decode() for item in ledger.lrange("ledger", 0, -1))
    finally:
        ledger.close()
    assert processed == Counter({f"j{n}": 1 for n in range(DELIVERIES)})
    assert set(codes) <= {200, 503} and codes.count(200) >= DELIVERIES
