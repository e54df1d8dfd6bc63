"""An idempotent replay of ``POST /jobs`` answers what its job is now (protocol §5).

Same key and body: the same job (same ``jobId`` and ``Location``), nothing created, marked
``Idempotent-Replayed: true``, in the shape of a first answer given at that moment: a 202
with ``Location``, ``Retry-After`` and the job's current document (running, or final), not
the original "pending" receipt. ``Prefer: wait`` holds a replay as it holds a first
submission: a job that ends meanwhile is answered as ``GET /jobs/{id}`` answers it.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest

from .conftest import Server, ServerFactory, poll_until

pytestmark = pytest.mark.anyio

BOTH_DIALECTS = pytest.mark.parametrize("dialect", ["reference", "status-code"])
# Fields of a running job's document that do not move while it waits on its gate.
_STABLE_FIELDS = ("jobId", "type", "status", "attempt", "progress", "createdAt", "startedAt")


async def _server(make_server: ServerFactory, store: str, request: pytest.FixtureRequest) -> Server:
    if store == "redis":
        return await make_server(store="redis", redis_url=request.getfixturevalue("redis_url"))
    return await make_server()


def _running(response: httpx.Response) -> bool:
    body = response.json()
    return body.get("status") == "processing" and body.get("progress", {}).get("current") == 1


@BOTH_DIALECTS
@pytest.mark.parametrize("store", ["memory", "sqlite", "redis"])
async def test_a_replay_of_a_running_job_answers_its_current_document(
    make_server: ServerFactory, store: str, dialect: str, request: pytest.FixtureRequest
) -> None:
    srv = await _server(make_server, store, request)
    headers = {"Idempotency-Key": f"running-{store}"}
    job = {"key": f"run-{store}", "total": 2}
    first = await srv.submit("steps", job, headers=headers)
    assert first.status_code == 202 and first.json()["status"] == "pending"  # the receipt
    job_id = first.json()["jobId"]
    await srv.wait_until(job_id, _running)  # step 1 of 2 reported, waiting on its gate

    again = await srv.submit("steps", job, headers=headers)
    now = await srv.get(f"/jobs/{job_id}")

    assert again.status_code == 202, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"] == f"/jobs/{job_id}"
    assert int(again.headers["Retry-After"]) >= 0 and int(again.headers["Retry-After-Ms"]) >= 0
    assert again.headers["Link"] == first.headers["Link"]
    assert "Preference-Applied" not in again.headers  # it was not held
    body = again.json()
    assert body["status"] == "processing"
    assert body["progress"] == {"current": 1, "total": 2, "message": "step 1/2"}
    assert body["attempt"] == 1
    if dialect == "status-code":
        assert body["state"] == "inFlight"
    # The document GET /jobs/{id} gives (same keys, same values but the moving hints).
    assert now.status_code == (200 if dialect == "reference" else 202)
    assert set(body) == set(now.json())
    assert {k: body[k] for k in _STABLE_FIELDS} == {k: now.json()[k] for k in _STABLE_FIELDS}
    assert [j["jobId"] for j in (await srv.get("/jobs")).json()["jobs"]] == [job_id]
    for step in (1, 2):
        srv.gates.open(f"run-{store}-{step}")
    await srv.wait_terminal(job_id)


async def _finish(srv: Server, outcome: str, key: str) -> dict[str, Any]:
    """Submit a ``gate`` job with ``key`` and bring it to ``outcome``; its submission body."""
    gate: dict[str, Any] = {"key": key}
    if outcome == "failed":
        gate["fail_code"] = "nope"
    submission = {"type": "gate", "input": gate}
    first = await srv.post("/jobs", json=submission, headers={"Idempotency-Key": key})
    assert first.status_code == 202
    job_id = first.json()["jobId"]
    if outcome == "cancelled":
        assert (await srv.delete(f"/jobs/{job_id}")).status_code == 200
    else:
        srv.gates.open(key)
    await srv.wait_terminal(job_id)
    return submission


#: The status-code dialect's ``state`` word of each final state.
_STATE_WORD = {"completed": "completed", "failed": "failed", "cancelled": "cancelled"}


@BOTH_DIALECTS
@pytest.mark.parametrize("outcome", ["completed", "failed", "cancelled"])
async def test_a_replay_of_a_finished_job_answers_202_with_its_final_document(
    srv: Server, dialect: str, outcome: str
) -> None:
    # Not held: the 202 a submission answers (same Location as the first), whose document
    # says the job ended and how; before, the original "pending" receipt.
    key = f"finished-{outcome}"
    submission = await _finish(srv, outcome, key)
    again = await srv.post("/jobs", json=submission, headers={"Idempotency-Key": key})
    (listed,) = (await srv.get("/jobs")).json()["jobs"]  # nothing new was created
    job_id = listed["jobId"]

    assert again.status_code == 202, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == f"/jobs/{job_id}"
    assert int(again.headers["Retry-After"]) >= 0
    assert "Preference-Applied" not in again.headers
    body = again.json()
    assert body == listed  # the job's document, as GET /jobs lists it
    assert body["status"] == outcome
    if dialect == "status-code":
        assert body["state"] == _STATE_WORD[outcome]
    if outcome == "completed":
        assert body["resultUrl"] == f"/jobs/{job_id}/result"
    if outcome == "failed":
        assert body["error"]["code"] == "nope"


@BOTH_DIALECTS
async def test_a_replay_asking_to_wait_is_held_like_a_first_submission(
    srv: Server, dialect: str
) -> None:
    headers = {"Idempotency-Key": "held-replay"}
    job_id = await srv.submit_ok("gate", {"key": "held-replay"}, headers=headers)
    await srv.gates.wait_started("held-replay")

    # The hold ends before the job does: a 202 with the running job's document, held.
    short = await srv.submit(
        "gate", {"key": "held-replay"}, headers={**headers, "Prefer": "wait=0.05"}
    )
    assert short.status_code == 202
    assert short.headers["Preference-Applied"] == "wait=0.05"
    assert short.headers["Idempotent-Replayed"] == "true"
    assert short.json()["status"] == "processing"

    # The job ends during the hold: the replay answers its end.
    answers: list[httpx.Response] = []
    posts = srv.admin.count("POST", "/jobs")

    async def replay() -> None:
        prefer = {**headers, "Prefer": "wait=10"}
        answers.append(await srv.submit("gate", {"key": "held-replay"}, headers=prefer))

    async with anyio.create_task_group() as tg:
        tg.start_soon(replay)
        await poll_until(lambda: srv.admin.count("POST", "/jobs") > posts)
        srv.gates.open("held-replay")
    (held,) = answers
    assert held.status_code == (303 if dialect == "reference" else 200), held.text
    assert held.headers["Preference-Applied"] == "wait=10"
    assert held.headers["Idempotent-Replayed"] == "true"
    if dialect == "reference":
        assert held.json()["jobId"] == job_id and held.json()["status"] == "completed"
    else:
        assert held.json() == {"key": "held-replay", "attempt": 1}  # the result itself
    assert len(srv.admin.jobs()) == 1
