"""Webhook delivery records are bounded per owner; a pending delivery is never evicted (issue 19.3).

One user's webhook volume (a job with many progress events) must not erase another user's
pending ``job.completed`` delivery, in memory and in SQLite, also across a restart. A full
owner drops its own oldest finished records; when all of them are pending, a submission with
a callback is refused with a clear 429 and an optional event is not recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from reference_server import JobContext
from reference_server.delivery_book import DeliveryBook, OwnerDeliveriesFull
from reference_server.records import DeliveryRecord

from .conftest import Receiver, Server, ServerFactory, poll_until, served_receiver

pytestmark = pytest.mark.anyio

LIMIT = 10


class BurstInput(BaseModel):
    """Input of the ``burst`` job type: ``n`` progress reports."""

    n: int


def paced_burst(hook: Receiver) -> Any:
    """A ``burst`` handler whose report ``i`` waits until ``hook`` received ``i`` webhooks."""

    async def burst(ctx: JobContext, input: BurstInput) -> dict[str, Any]:
        for i in range(1, input.n + 1):
            await ctx.progress(i, input.n)
            await hook.wait_for(lambda got, i=i: len(got) >= i)  # type: ignore[misc]
        return {"reported": input.n}

    return burst


def record(delivery_id: str, owner: str, *, status: str = "pending") -> DeliveryRecord:
    return DeliveryRecord(
        delivery_id, f"job-{delivery_id}", owner, "job.completed", "u", 0.0, 0.0, status=status
    )


def test_the_book_drops_only_the_owners_own_finished_records() -> None:
    book = DeliveryBook(limit=2)
    book.add(record("bob1", "bob"))
    book.add(record("ann1", "ann"))
    book.add(record("ann2", "ann"))
    book.finished("ann1")
    assert book.add(record("ann3", "ann")) == ["ann1"]
    assert [r.id for r in book] == ["bob1", "ann2", "ann3"]
    with pytest.raises(OwnerDeliveriesFull, match="all 2 webhook delivery records"):
        book.add(record("ann4", "ann"))
    assert book.add(record("ann5", "ann"), force=True) == []  # a terminal event: kept
    assert book.count("ann") == 3 and book.pending_count("bob") == 1
    assert book.get("bob1") is not None


def test_loading_a_store_over_the_bound_drops_finished_records_only() -> None:
    book = DeliveryBook(limit=1)
    dropped = book.load(
        [record("a", "ann", status="delivered"), record("b", "ann"), record("c", "ann")]
    )
    assert dropped == ["a"]
    assert sorted(r.id for r in book) == ["b", "c"]


async def listing(srv: Server, user: str) -> list[dict[str, Any]]:
    answer = await srv.get("/webhooks/deliveries", user=user)
    assert answer.status_code == 200
    items: list[dict[str, Any]] = answer.json()["deliveries"]
    return items


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_one_users_volume_never_evicts_another_users_pending_delivery(
    make_server: ServerFactory, store: str, tmp_path: Path
) -> None:
    options: dict[str, Any] = {
        "store": store,
        "webhook_max_deliveries_per_owner": LIMIT,
        "webhook_backoff": 30.0,  # bob's failed first attempt leaves his delivery pending
        "webhook_max_attempts": 100,
        "sqlite_path": str(tmp_path / "bounds.sqlite3"),
    }
    async with served_receiver() as bob_hook, served_receiver() as ann_hook:
        bob_hook.default = 503
        srv = await make_server(handlers={"burst": paced_burst(ann_hook)}, **options)
        bob_job = await srv.submit_ok(
            "echo", {}, extra={"callback": {"url": bob_hook.url}}, user="bob"
        )
        await bob_hook.wait_for(lambda got: len(got) >= 1)
        ann_job = await srv.submit_ok(
            "burst",
            {"n": 5 * LIMIT},
            extra={"callback": {"url": ann_hook.url, "events": ["progress"]}},
            user="ann",
        )
        await srv.wait_terminal(ann_job, user="ann")
        await ann_hook.wait_for(lambda got: any(d.json()["type"] == "job.completed" for d in got))

        (bobs,) = await listing(srv, "bob")
        assert (bobs["jobId"], bobs["status"]) == (bob_job, "pending")
        assert bobs["event"] == "job.completed"
        anns = await listing(srv, "ann")
        assert len(anns) <= LIMIT + 1  # the bound, plus at most its live jobs' final events
        assert [d["event"] for d in anns].count("job.completed") == 1
        assert len(ann_hook.of_type("job.progress")) == 5 * LIMIT  # room made by dropping
        if store == "memory":
            return
        await srv.stop()  # type: ignore[misc]
        bob_hook.default = 200
        # Resumed at once: the largest backoff of this configuration is 0.01 s.
        options.update(webhook_backoff=0.01, webhook_max_attempts=2)
        again = await make_server(**options)
        (kept,) = await listing(again, "bob")
        assert kept["id"] == bobs["id"]
        await poll_until(lambda: len(bob_hook.received) >= 2)
        assert {d.headers["webhook-id"] for d in bob_hook.received} == {bobs["id"]}


async def test_a_user_whose_records_are_all_pending_gets_a_clear_429(
    make_server: ServerFactory,
) -> None:
    async with served_receiver() as hook:
        hook.default = 503
        srv = await make_server(
            webhook_max_deliveries_per_owner=3, webhook_backoff=30.0, webhook_max_attempts=100
        )
        with_callback = {"callback": {"url": hook.url}}
        for _ in range(3):
            job = await srv.submit_ok("echo", {}, extra=with_callback, user="ann")
            await srv.wait_terminal(job, user="ann")
        await poll_until(lambda: len(hook.received) >= 3)
        refused = await srv.submit("echo", {}, extra=with_callback, user="ann")
        assert refused.status_code == 429, refused.text
        error = refused.json()["error"]
        assert error["code"] == "webhook_backlog_full"
        assert "all 3 webhook delivery records" in error["message"]
        assert refused.headers["Retry-After"] == "1"
        await srv.submit_ok("echo", {}, user="ann")  # without a callback: accepted
        await srv.submit_ok("echo", {}, extra=with_callback, user="bob")  # another user
        assert len(await listing(srv, "ann")) == 3
