"""Resume tokens keep how a submission's answers are read (issue 12): the header that named the
status monitor (``monitored_by``) and whether its last answer is the result
(``final_from_monitor``), in a version 2 token; version 1 tokens still load."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from asyncreply_client import FixedInterval, InvalidTokenError, JobState, ProtocolError
from asyncreply_client._http import HttpResponse
from asyncreply_client._token import TokenData, dump_token, load_token
from asyncreply_client.testing import FakeClock
from tests.client.harness import BOTH, open_client

API = "https://management.example.com"
MONITOR = f"{API}/providers/P/operations/o1"
RESULT = f"{API}/providers/P/results/r1"


def encode(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    return payload


# --------------------------------------------------------------------------------------------
# The token format


def test_a_version_1_token_still_loads_and_has_no_submission_facts() -> None:
    old = encode({"v": 1, "status_url": MONITOR, "id": "o1", "result_url": RESULT})
    data = load_token(old)
    assert data == TokenData(status_url=MONITOR, id="o1", result_url=RESULT)
    assert data.monitored_by is None and data.final_from_monitor is False
    assert data.submission() is None


def test_a_token_without_submission_facts_is_still_written_as_version_1() -> None:
    assert decode(dump_token(TokenData(MONITOR, id="o1")))["v"] == 1


@pytest.mark.parametrize(
    ("monitored_by", "final_from_monitor"),
    [("operation", False), ("location", False), ("operation", True), (None, True)],
)
def test_submission_facts_round_trip_in_a_version_2_token(
    monitored_by: Any, final_from_monitor: bool
) -> None:
    data = TokenData(
        MONITOR,
        id="o1",
        result_url=RESULT,
        monitored_by=monitored_by,
        final_from_monitor=final_from_monitor,
    )
    token = dump_token(data)
    assert decode(token)["v"] == 2
    assert load_token(token) == data
    submission = load_token(token).submission()
    assert submission is not None
    assert submission.monitored_by == monitored_by
    assert submission.final_from_monitor is final_from_monitor
    assert submission.status_url == MONITOR
    # The monitor's last answer is the result, or the result lives at the result URL.
    assert submission.final_url == (None if final_from_monitor else RESULT)


@pytest.mark.parametrize(
    "payload",
    [
        {"v": 1, "status_url": MONITOR, "monitored_by": "operation"},  # a v2 field in v1
        {"v": 1, "status_url": MONITOR, "final_from_monitor": True},
        {"v": 2, "status_url": MONITOR, "monitored_by": "header"},
        {"v": 2, "status_url": MONITOR, "monitored_by": ["operation"]},
        {"v": 2, "status_url": MONITOR, "monitored_by": 1},
        {"v": 2, "status_url": MONITOR, "final_from_monitor": "yes"},
        {"v": 2, "status_url": MONITOR, "final_from_monitor": 1},
        {"v": 3, "status_url": MONITOR},
        {"v": True, "status_url": MONITOR},
        {"v": 2, "status_url": MONITOR, "other": 1},
    ],
)
def test_bad_submission_facts_are_invalid_tokens(payload: dict[str, Any]) -> None:
    with pytest.raises(InvalidTokenError):
        load_token(encode(payload))


# --------------------------------------------------------------------------------------------
# A submitted operation's token, against Azure's shapes (Azure-AsyncOperation + Location)


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


def azure_accepted() -> httpx.Response:
    return httpx.Response(
        202, headers={"Azure-AsyncOperation": MONITOR, "Location": RESULT, "Retry-After": "0"}
    )


def monitor_answer(code: int, body: Any = None) -> HttpResponse:
    content = b"" if body is None else json.dumps(body).encode()
    headers = httpx.Headers({"Content-Type": "application/json"} if body is not None else {})
    return HttpResponse(code, headers, content, MONITOR, "GET")


# Answers of the operation monitor whose reading depends on the submission's facts.
ANSWERS = [
    monitor_answer(200, {"status": "InProgress"}),
    monitor_answer(200, {"status": "Succeeded"}),
    monitor_answer(200, {"status": "Succeeded", "properties": {"output": 1}}),
    monitor_answer(200, {"value": 1}),  # no status: not "done" for an operation monitor
    monitor_answer(204),
    monitor_answer(200, {"status": "Failed", "error": {"code": "Boom", "message": "no"}}),
]


def reading(dialect: Any, answer: HttpResponse, submission: Any) -> Any:
    """How ``dialect`` reads ``answer``: the snapshot's essentials, or the error's class."""
    try:
        status = dialect.interpret_status(answer, submission=submission)
    except ProtocolError as exc:
        return type(exc).__name__
    return (status.state, status.has_result, status.result, status.result_url)


@BOTH
@pytest.mark.anyio
@pytest.mark.parametrize("via", [None, "azure-async-operation", "location"])
async def test_a_resumed_operation_reads_answers_as_the_submitted_one_did(
    flavor: str, via: Any, router: respx.MockRouter
) -> None:
    router.post(f"{API}/things").mock(return_value=azure_accepted())
    opts: dict[str, Any] = {"clock": FakeClock(), "polling": FixedInterval(1.0)}
    async with open_client(flavor, API, **opts) as (client, call):
        op = await call(client.submit, "/things", json={}, final_state_via=via)
        token = op.to_token()
        submitted = op._state.submission
        assert submitted is not None and submitted.monitored_by == "operation"
    data = load_token(token)
    assert data.monitored_by == "operation"
    assert data.final_from_monitor is (via == "azure-async-operation")
    resumed = data.submission()
    readings = [reading(client.dialect, a, resumed) for a in ANSWERS]
    assert readings == [reading(client.dialect, a, submitted) for a in ANSWERS]
    # ... which is not how an operation without them reads the same answers.
    assert readings != [reading(client.dialect, a, None) for a in ANSWERS]
    assert readings[3] == "ProtocolError"  # an operation monitor's 2xx must state a status
    if via == "azure-async-operation":
        assert readings[2] == (
            JobState.COMPLETED,
            True,
            {"status": "Succeeded", "properties": {"output": 1}},
            None,
        )
    else:
        assert readings[1] == (JobState.COMPLETED, False, None, RESULT)


@BOTH
@pytest.mark.anyio
@pytest.mark.parametrize(
    ("via", "expected"),
    [
        (None, {"name": "r1"}),  # the result lives at the Location
        ("azure-async-operation", {"status": "Succeeded", "properties": {"output": 1}}),
    ],
)
async def test_client_resume_follows_the_submissions_final_result_rules(
    flavor: str, via: Any, expected: Any, router: respx.MockRouter
) -> None:
    router.post(f"{API}/things").mock(return_value=azure_accepted())
    router.get(MONITOR).mock(
        return_value=httpx.Response(200, json={"status": "Succeeded", "properties": {"output": 1}})
    )
    router.get(RESULT).mock(return_value=httpx.Response(200, json={"name": "r1"}))
    opts: dict[str, Any] = {"clock": FakeClock(), "polling": FixedInterval(1.0)}
    async with open_client(flavor, API, **opts) as (client, call):
        op = await call(client.submit, "/things", json={}, final_state_via=via)
        token = op.to_token()
    async with open_client(flavor, API, **opts) as (client, call):
        resumed = client.resume(token)
        assert await call(resumed.result, timeout=60) == expected
