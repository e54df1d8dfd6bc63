"""Hostile header input never crashes a receiver: typed errors, 4xx answers (issue 12).

A ``webhook-id`` with the byte 0xff used to raise UnicodeEncodeError before verification, and a
non-string header value a bare TypeError; the aiohttp handler then answered 500.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncreply_client.webhooks import (
    MalformedHeaderError,
    WebhookVerificationError,
    WebhookVerifier,
    aiohttp_webhook_handler,
    handle_webhook,
    sign,
)

SECRET = "whsec_YXN5bmNyZXBseS1ob3N0aWxlLXNlY3JldA=="
NOW = 1_700_000_000
BODY = json.dumps({"type": "job.completed", "jobId": "j1"}).encode()
SIGNATURE_HEADERS = (
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "X-Webhook-Signature",
    "X-Webhook-Delivery",
    "X-Webhook-Timestamp",
    "X-Webhook-Event",
)


def verifier() -> WebhookVerifier:
    return WebhookVerifier(SECRET, clock=lambda: NOW)


def signed() -> dict[str, str]:
    return sign(BODY, SECRET, msg_id="msg_1", timestamp=NOW, event_type="job.completed")


@pytest.mark.parametrize(
    "value",
    [b"\xff", "\udcff", "msg\ud800", b"msg_\xc3\x28"],
    ids=["byte", "escaped", "lone", "bad-utf8"],
)
@pytest.mark.parametrize("header", SIGNATURE_HEADERS)
def test_a_signature_header_that_is_not_utf8_is_malformed(header: str, value: Any) -> None:
    headers: dict[str, Any] = {**signed(), header: value}
    with pytest.raises(MalformedHeaderError) as caught:
        verifier().verify(headers, BODY)
    assert caught.value.header == header.lower()


@pytest.mark.parametrize("value", [17, 1.5, None, ["msg_1"], object()], ids=repr)
def test_a_header_value_that_is_not_text_is_malformed(value: Any) -> None:
    with pytest.raises(MalformedHeaderError):
        verifier().verify({**signed(), "webhook-id": value}, BODY)
    with pytest.raises(MalformedHeaderError):
        verifier().verify({**signed(), "x-unrelated": value}, BODY)


@pytest.mark.parametrize(
    "headers",
    [None, 42, [("webhook-id",)], [("a", "b", "c")], [42], {7: "x"}],
    ids=["none", "int", "one-item", "three-items", "not-a-pair", "int-name"],
)
def test_headers_that_are_not_headers_are_malformed(headers: Any) -> None:
    with pytest.raises(MalformedHeaderError):
        verifier().verify(headers, BODY)


def test_other_headers_keep_their_obs_text_bytes() -> None:
    # RFC 9110 §5.5 allows obs-text in field values: unrelated headers are not our business.
    headers = [*((k.encode(), v.encode()) for k, v in signed().items()), (b"x-note", b"\xff")]
    assert verifier().verify(headers, BODY).delivery_id == "msg_1"


header_values = st.one_of(
    st.text(max_size=40),
    st.binary(max_size=40),
    st.integers(),
    st.none(),
    st.floats(allow_nan=True),
    st.lists(st.text(max_size=5), max_size=2),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    replaced=st.dictionaries(
        st.sampled_from([*SIGNATURE_HEADERS, "content-type"]), header_values, max_size=4
    ),
    body=st.one_of(st.just(BODY), st.binary(max_size=60)),
)
def test_any_header_values_end_in_a_typed_error_or_an_event(
    replaced: dict[str, Any], body: bytes
) -> None:
    headers: dict[str, Any] = {**signed(), **replaced}
    with contextlib.suppress(WebhookVerificationError):
        verifier().verify(headers, body)
    answer = handle_webhook(verifier(), headers, body, {"*": lambda event: None})
    assert answer.status_code in (200, 400, 401), answer


# ------------------------------------------------------------------------- the aiohttp adapter


@pytest.fixture
async def hook_url() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/hook", aiohttp_webhook_handler(verifier(), {"*": lambda event: None}))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    finally:
        await runner.cleanup()


@pytest.mark.anyio
@pytest.mark.parametrize("header", ["webhook-id", "webhook-signature", "X-Webhook-Signature"])
async def test_the_aiohttp_handler_answers_400_to_a_0xff_header(hook_url: str, header: str) -> None:
    headers: dict[str, Any] = {**signed(), header: b"msg_\xff"}
    async with httpx.AsyncClient() as client:
        answer = await client.post(hook_url, content=BODY, headers=headers)
        fine = await client.post(hook_url, content=BODY, headers=signed())
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "malformed_header"
    assert fine.status_code == 200
