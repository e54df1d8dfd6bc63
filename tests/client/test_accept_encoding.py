"""A user's ``Accept-Encoding``: sent as given when the client decodes what it names, refused
at construction otherwise; the decoded-bytes cap applies to every answer all the same."""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
import pytest

from asyncreply_client import AsyncClient, Client, FixedInterval, ProtocolError
from asyncreply_client._decoding import check_accept_encoding
from asyncreply_client.testing import FakeClock
from tests.client.chunks import Chunks
from tests.client.harness import BOTH, open_client

API = "https://api.test"
MAX_BODY = 1 << 20


def options(**extra: Any) -> dict[str, Any]:
    return {"clock": FakeClock(), "polling": FixedInterval(1.0), "max_body_size": MAX_BODY, **extra}


def server(seen: list[httpx.Request], status: httpx.Response | None = None) -> Any:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            headers = {"Location": f"{API}/jobs/1", "Retry-After": "0"}
            return httpx.Response(202, headers=headers, json={"jobId": "1", "status": "pending"})
        if status is not None:
            return status
        return httpx.Response(200, json={"jobId": "1", "status": "completed", "result": 7})

    return handle


@BOTH
@pytest.mark.anyio
@pytest.mark.parametrize("value", ["identity", "gzip", "deflate;q=1, gzip;q=0.5", "br;q=0, gzip"])
async def test_a_users_accept_encoding_the_client_decodes_is_sent_as_given(
    flavor: str, value: str
) -> None:
    seen: list[httpx.Request] = []
    transport = httpx.MockTransport(server(seen))
    headers = {"accept-encoding": value}
    async with open_client(flavor, API, transport=transport, headers=headers, **options()) as (
        client,
        call,
    ):
        op = await call(client.submit, "/jobs", json={})
        assert await call(op.result, timeout=5) == 7
    assert [r.headers.get_list("Accept-Encoding") for r in seen] == [[value]] * len(seen)


@BOTH
@pytest.mark.anyio
async def test_without_one_the_client_asks_for_the_codings_it_decodes(flavor: str) -> None:
    seen: list[httpx.Request] = []
    async with open_client(
        flavor, API, transport=httpx.MockTransport(server(seen)), **options()
    ) as (client, call):
        op = await call(client.submit, "/jobs", json={})
        assert await call(op.result, timeout=5) == 7
    assert {r.headers["Accept-Encoding"] for r in seen} == {"gzip, deflate"}


@pytest.mark.parametrize("cls", [Client, AsyncClient])
@pytest.mark.parametrize("value", ["br", "zstd", "br, zstd", "gzip, br", "*", "compress"])
def test_a_coding_the_client_cannot_decode_is_refused_at_construction(
    cls: type[Client] | type[AsyncClient], value: str
) -> None:
    with pytest.raises(ValueError, match="Accept-Encoding") as raised:
        cls(API, headers={"Accept-Encoding": value})
    assert "supported: gzip, deflate, identity" in str(raised.value)
    assert str(raised.value).startswith("headers:")


def test_the_check_reads_codings_and_weights() -> None:
    for fine in ("", "identity", "GZIP", "gzip;q=0.8, deflate", "*;q=0", "br; q=0.000, gzip"):
        check_accept_encoding(fine)
    for refused in ("br;q=0.1", "*", "x-gzip"):
        with pytest.raises(ValueError, match="cannot decode"):
            check_accept_encoding(refused)


@BOTH
@pytest.mark.anyio
async def test_the_body_cap_applies_when_the_server_compresses_anyway(flavor: str) -> None:
    document = json.dumps({"jobId": "1", "status": "completed", "result": "x" * (2 * MAX_BODY)})
    body = gzip.compress(document.encode())
    assert len(body) < MAX_BODY // 10
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    status = httpx.Response(200, headers=headers, stream=Chunks(body))
    seen: list[httpx.Request] = []
    transport = httpx.MockTransport(server(seen, status))
    identity = {"Accept-Encoding": "identity"}
    async with open_client(flavor, API, transport=transport, headers=identity, **options()) as (
        client,
        call,
    ):
        op = await call(client.submit, "/jobs", json={})
        with pytest.raises(ProtocolError, match="max_body_size"):
            await call(op.wait, timeout=5)
    assert seen[-1].headers["Accept-Encoding"] == "identity"
