"""POST /jobs: the 202 answer, validation errors, idempotency keys and ``Prefer: wait``."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from .conftest import Server, ServerFactory, assert_healthy, error_code

pytestmark = pytest.mark.anyio

BOTH_MODES = pytest.mark.parametrize("mode", ["async", "thread"])


@BOTH_MODES
@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_submit_answers_202_with_headers_and_body(srv: Server) -> None:
    response = await srv.submit("sleep", {"seconds": 0.01, "steps": 1})

    assert response.status_code == 202
    body = response.json()
    job_id = body["jobId"]
    assert body["status"] == "pending"
    assert body["statusUrl"] == f"/jobs/{job_id}"
    assert body["eventsUrl"] == f"/jobs/{job_id}/events"
    assert body["cancelUrl"] == f"/jobs/{job_id}"
    assert isinstance(body["estimatedWaitTime"], (int, float))
    assert body["estimatedWaitTime"] >= 0
    assert response.headers["Location"] == f"/jobs/{job_id}"
    assert int(response.headers["Retry-After"]) >= 0
    assert int(response.headers["Retry-After-Ms"]) >= 0
    assert response.headers["Link"] == f'</jobs/{job_id}/events>; rel="events"'
    assert response.headers["Content-Type"].startswith("application/json")
    assert "Idempotent-Replayed" not in response.headers


async def test_estimated_wait_time_comes_from_the_job_type(srv: Server) -> None:
    response = await srv.submit("sleep", {"seconds": 2, "steps": 2})
    body = response.json()
    assert body["estimatedWaitTime"] == pytest.approx(2.0, abs=0.01)
    ms = int(response.headers["Retry-After-Ms"])
    assert ms == pytest.approx(2000, abs=10)
    assert int(response.headers["Retry-After"]) == -(-ms // 1000)
    assert (await srv.delete(f"/jobs/{body['jobId']}")).status_code == 200


async def test_job_ids_are_unique(srv: Server) -> None:
    ids = {await srv.submit_ok("echo", {"n": n}) for n in range(5)}
    assert len(ids) == 5


async def test_unknown_type_is_400(srv: Server) -> None:
    response = await srv.submit("no-such-type", {})
    assert response.status_code == 400
    assert error_code(response) == "unknown_type"
    await assert_healthy(srv)


@pytest.mark.parametrize(
    ("job_input", "bad_field"),
    [
        ({"seconds": "soon", "steps": 1}, "seconds"),
        ({"seconds": 0.1, "steps": "many"}, "steps"),
        ({"rows": "lots"}, "rows"),
    ],
)
async def test_invalid_input_is_400_with_pydantic_details(
    srv: Server, job_input: dict[str, object], bad_field: str
) -> None:
    job_type = "report" if "rows" in job_input else "sleep"
    response = await srv.submit(job_type, job_input)

    assert response.status_code == 400
    assert error_code(response) == "invalid_input"
    details = response.json()["error"]["details"]
    assert isinstance(details, list) and details
    locations = [entry["loc"] for entry in details]
    assert any(bad_field in [str(part) for part in loc] for loc in locations), details
    assert all("msg" in entry and "type" in entry for entry in details)
    await assert_healthy(srv)


@pytest.mark.parametrize(
    "body",
    [
        {"input": {}},  # no type
        {"type": 3, "input": {}},
        {"type": "echo", "input": {}, "callback": "http://x"},
        {"type": "echo", "input": {}, "notBefore": "not a time"},
        {"type": "echo", "input": {}, "extra": 1},
        {"type": "", "input": {}},
        {"type": "echo", "input": {}, "callback": {"url": "ftp://127.0.0.1/x"}},
        {"type": "echo", "input": {}, "callback": {"url": "/relative/hook"}},
        {"type": "echo", "input": {}, "notBefore": "2999-01-01T00:00:00Z"},
        [1, 2, 3],
        "just a string",
    ],
    ids=[
        "no-type",
        "type-int",
        "callback-str",
        "bad-notBefore",
        "unknown-field",
        "empty-type",
        "callback-ftp",
        "callback-relative",
        "notBefore-too-far",
        "array",
        "string",
    ],
)
async def test_malformed_envelope_is_400_invalid_input(srv: Server, body: object) -> None:
    response = await srv.post("/jobs", json=body)
    assert response.status_code == 400
    assert error_code(response) == "invalid_input"
    await assert_healthy(srv)


async def test_input_defaults_to_an_empty_object(srv: Server) -> None:
    response = await srv.post("/jobs", json={"type": "echo"})
    assert response.status_code == 202
    job_id = response.json()["jobId"]
    await srv.wait_terminal(job_id)
    assert (await srv.get(f"/jobs/{job_id}/result")).json() == {}


async def test_not_before_without_a_zone_is_utc(srv: Server) -> None:
    response = await srv.submit("echo", {}, extra={"notBefore": "2000-01-01T00:00:00"})
    assert response.status_code == 202  # in the past: starts at once
    job = (await srv.wait_terminal(response.json()["jobId"])).json()
    assert job["notBefore"] == "2000-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"",
        b'{"type": "echo", "input": {}',
        b"\xff\xfe",
        b'{"type": "echo", "input": {"x": NaN}}',
        b'{"type": "echo", "input": {"x": Infinity}}',
        b"[" * 100_000,
    ],
    ids=["garbage", "empty", "truncated", "not-utf8", "nan", "infinity", "deep-nesting"],
)
async def test_malformed_json_is_400_invalid_json(srv: Server, raw: bytes) -> None:
    response = await srv.post("/jobs", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert error_code(response) == "invalid_json"
    await assert_healthy(srv)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_non_json_content_type_is_415(srv: Server, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    payload = json.dumps({"type": "echo", "input": {}}).encode()
    response = await srv.post("/jobs", content=payload, headers=headers)
    assert response.status_code == 415
    assert error_code(response) == "unsupported_media_type"
    await assert_healthy(srv)


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "application/vnd.example+json"]
)
async def test_json_content_types_are_accepted(srv: Server, content_type: str) -> None:
    payload = json.dumps({"type": "echo", "input": {"a": 1}}).encode()
    response = await srv.post("/jobs", content=payload, headers={"Content-Type": content_type})
    assert response.status_code == 202


async def test_oversized_body_is_413(make_server: ServerFactory) -> None:
    srv = await make_server(max_body_bytes=2048)
    response = await srv.submit("echo", {"blob": "x" * 5000})
    assert response.status_code == 413
    assert error_code(response) == "payload_too_large"
    small = await srv.submit("echo", {"blob": "x" * 100})
    assert small.status_code == 202
    await assert_healthy(srv)


async def test_a_chunked_body_is_read_whole_and_bounded(make_server: ServerFactory) -> None:
    # No Content-Length: the bound is checked on the bytes themselves, whether they came
    # with the head (read at once) or after it (the timed read).
    srv = await make_server(max_body_bytes=2048)

    async def chunks(body: bytes, pause: bool) -> Any:
        yield body[:10]
        if pause:
            await anyio.sleep(0.01)
        yield body[10:]

    json_type = {"Content-Type": "application/json"}
    big = json.dumps({"type": "echo", "input": {"blob": "x" * 5000}}).encode()
    small = json.dumps({"type": "echo", "input": {"blob": "x" * 100}}).encode()
    assert srv.async_client is not None
    for pause in (False, True):
        refused = await srv.async_client.post(
            "/jobs", content=chunks(big, pause), headers={**srv.headers("alice"), **json_type}
        )
        assert refused.status_code == 413
        assert error_code(refused) == "payload_too_large"
        accepted = await srv.async_client.post(
            "/jobs", content=chunks(small, pause), headers={**srv.headers("alice"), **json_type}
        )
        assert accepted.status_code == 202, accepted.text
        job = await srv.wait_terminal(accepted.json()["jobId"])
        assert job.json()["status"] == "completed"
    await assert_healthy(srv)


# ---------------------------------------------------------------------------- idempotency


@BOTH_MODES
async def test_idempotency_key_replays_the_original_202(srv: Server) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = await srv.submit("echo", {"order": 42}, headers=headers)
    again = await srv.submit("echo", {"order": 42}, headers=headers)

    assert first.status_code == again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert again.json()["jobId"] == first.json()["jobId"]
    assert again.headers["Location"] == first.headers["Location"]
    # Nothing new was created.
    listing = (await srv.get("/jobs")).json()
    assert [job["jobId"] for job in listing["jobs"]] == [first.json()["jobId"]]


async def test_idempotent_replay_after_the_job_finished(srv: Server) -> None:
    headers = {"Idempotency-Key": "done-already"}
    first = await srv.submit("echo", {"x": 1}, headers=headers)
    job_id = first.json()["jobId"]
    assert (await srv.wait_terminal(job_id)).status_code == 303
    again = await srv.submit("echo", {"x": 1}, headers=headers)
    assert again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["jobId"] == job_id
    # The job as it is now (protocol §5), not the original "pending" receipt; every state
    # and both dialects: test_idempotency_replay.py.
    assert again.json()["status"] == "completed"
    assert again.json()["resultUrl"] == f"/jobs/{job_id}/result"
    assert again.json()["statusUrl"] == first.json()["statusUrl"]
    assert again.headers["Location"] == first.headers["Location"]
    assert len(srv.admin.jobs()) == 1


async def test_same_body_means_equal_after_parsing(srv: Server) -> None:
    headers = {"Idempotency-Key": "k-order", "Content-Type": "application/json"}
    first = await srv.post(
        "/jobs", content=b'{"type":"echo","input":{"a":1,"b":2}}', headers=headers
    )
    again = await srv.post(
        "/jobs", content=b'{ "input": {"b": 2, "a": 1},\n "type": "echo" }', headers=headers
    )
    assert first.status_code == again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["jobId"] == first.json()["jobId"]


async def test_rejected_requests_do_not_consume_the_key(srv: Server) -> None:
    headers = {"Idempotency-Key": "k-after-400"}
    bad = await srv.submit("sleep", {"seconds": "x"}, headers=headers)
    assert bad.status_code == 400
    good = await srv.submit("echo", {"ok": 1}, headers=headers)
    assert good.status_code == 202
    assert "Idempotent-Replayed" not in good.headers


async def test_replay_of_an_expired_job_is_410(srv: Server) -> None:
    headers = {"Idempotency-Key": "k-expired"}
    job_id = (await srv.submit("echo", {}, headers=headers)).json()["jobId"]
    await srv.wait_terminal(job_id)
    srv.admin.expire(job_id)
    replay = await srv.submit("echo", {}, headers=headers)
    assert replay.status_code == 410
    assert error_code(replay) == "expired"


@pytest.mark.parametrize("key", ["", '""', "k" * 256, '"' + "k" * 256 + '"'])
async def test_invalid_idempotency_keys_are_400(srv: Server, key: str) -> None:
    response = await srv.submit("echo", {}, headers={"Idempotency-Key": key})
    assert response.status_code == 400
    assert error_code(response) == "invalid_idempotency_key"
    await assert_healthy(srv)


async def test_quoted_and_bare_idempotency_keys_are_the_same_key(srv: Server) -> None:
    bare = await srv.submit("echo", {"x": 1}, headers={"Idempotency-Key": "abc-1"})
    quoted = await srv.submit("echo", {"x": 1}, headers={"Idempotency-Key": '"abc-1"'})
    assert quoted.status_code == 202
    assert quoted.headers.get("Idempotent-Replayed") == "true"
    assert quoted.json()["jobId"] == bare.json()["jobId"]


async def test_idempotency_key_with_a_different_body_is_422(srv: Server) -> None:
    headers = {"Idempotency-Key": "k-reused"}
    first = await srv.submit("echo", {"x": 1}, headers=headers)
    assert first.status_code == 202
    other = await srv.submit("echo", {"x": 2}, headers=headers)
    assert other.status_code == 422
    assert error_code(other) == "idempotency_key_reused"
    await assert_healthy(srv)


async def test_idempotency_keys_are_scoped_per_user(srv: Server) -> None:
    headers = {"Idempotency-Key": "shared-key"}
    alice = await srv.submit("echo", {"x": 1}, headers=headers, user="alice")
    bob = await srv.submit("echo", {"x": 1}, headers=headers, user="bob")
    assert alice.status_code == bob.status_code == 202
    assert "Idempotent-Replayed" not in bob.headers
    assert alice.json()["jobId"] != bob.json()["jobId"]
    # A different body from another user is not a reuse either.
    carol = await srv.submit("echo", {"x": 99}, headers=headers, user="carol")
    assert carol.status_code == 202


async def test_idempotency_keys_expire_after_their_ttl(make_server: ServerFactory) -> None:
    srv = await make_server(idempotency_ttl=0.05)
    headers = {"Idempotency-Key": "short-lived"}
    first = (await srv.submit("echo", {"x": 1}, headers=headers)).json()["jobId"]
    with anyio.fail_after(10):
        while True:
            response = await srv.submit("echo", {"x": 1}, headers=headers)
            assert response.status_code == 202
            if response.json()["jobId"] != first:
                break
            assert response.headers["Idempotent-Replayed"] == "true"
            await anyio.sleep(0.02)
    assert "Idempotent-Replayed" not in response.headers
    # After expiry the key may carry a different body too.
    other = await srv.submit("echo", {"x": 2}, headers={"Idempotency-Key": "short-lived-2"})
    assert other.status_code == 202


async def test_required_idempotency_key(make_server: ServerFactory) -> None:
    srv = await make_server(require_idempotency_key=True)
    missing = await srv.submit("echo", {"x": 1})
    assert missing.status_code == 400
    assert error_code(missing) == "idempotency_key_required"
    present = await srv.submit("echo", {"x": 1}, headers={"Idempotency-Key": "k1"})
    assert present.status_code == 202


# ---------------------------------------------------------------------------- Prefer: wait


@pytest.mark.parametrize("dialect", ["reference", "status-code"])
async def test_prefer_wait_answers_directly_when_the_job_finishes(srv: Server) -> None:
    response = await srv.submit("echo", {"hello": "world"}, headers={"Prefer": "wait=5"})

    assert response.headers["Preference-Applied"] == "wait=5"
    if srv.config.dialect == "reference":
        assert response.status_code == 303
        job_id = response.json()["jobId"]
        assert response.headers["Location"] == f"/jobs/{job_id}/result"
        assert response.json()["status"] == "completed"
        assert response.json()["resultUrl"] == f"/jobs/{job_id}/result"
    else:
        assert response.status_code == 200
        assert response.json() == {"hello": "world"}
        assert response.headers["Content-Location"].endswith("/result")


@pytest.mark.parametrize("prefer", ["wait=soon", "wait=-1", "respond-async", "wait="])
async def test_malformed_or_other_preferences_are_ignored(srv: Server, prefer: str) -> None:
    response = await srv.submit("echo", {}, headers={"Prefer": prefer})
    assert response.status_code == 202
    assert "Preference-Applied" not in response.headers


async def test_prefer_wait_answers_202_when_the_job_is_slower(srv: Server) -> None:
    response = await srv.submit("gate", {"key": "slow"}, headers={"Prefer": "wait=0.05"})
    assert response.status_code == 202
    assert response.json()["status"] == "processing"  # running when the hold ends
    assert response.headers["Location"] == f"/jobs/{response.json()['jobId']}"


async def test_prefer_wait_is_capped_by_max_wait(make_server: ServerFactory) -> None:
    srv = await make_server(max_wait=0.05)
    with anyio.fail_after(20):
        response = await srv.submit("gate", {"key": "capped"}, headers={"Prefer": "wait=3600"})
    assert response.status_code == 202


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain"])
async def test_a_415_names_the_media_types_it_accepts(srv: Server, content_type: str) -> None:
    # What a client's data= without files= sends (urlencoded) is refused, and the refusal
    # says what would be taken: an Accept-Post header and a problem+json body naming them.
    response = await srv.post("/jobs", content=b"type=echo", headers={"Content-Type": content_type})
    assert response.status_code == 415
    accepted = ["application/json", "multipart/form-data", "application/octet-stream"]
    assert [t.strip() for t in response.headers["Accept-Post"].split(",")] == accepted
    assert response.headers["Content-Type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 415
    assert problem["title"] == "Unsupported Media Type"
    assert problem["accept"] == accepted
    assert all(t in problem["detail"] for t in accepted)
    assert error_code(response) == "unsupported_media_type"  # the server's error document too
