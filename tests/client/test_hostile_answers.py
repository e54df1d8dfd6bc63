"""Both clients against hostile answers and inputs (issue 19, items 9, 10 and 12), through
``httpx.MockTransport``: unparsable redirects, malformed resume tokens, inline file results,
non-ASCII headers, compression bombs (memory measured with ``tracemalloc``) and the secrets
of URLs in error messages and attributes."""

from __future__ import annotations

import base64
import functools
import io
import json
import tracemalloc
import zlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from asyncreply_client import (
    FixedInterval,
    InvalidTokenError,
    JobNotFoundError,
    ProtocolError,
    RequestRejectedError,
    RetryPolicy,
    SSEOptions,
    TransportError,
)
from asyncreply_client.contract import acheck, check
from asyncreply_client.testing import FakeClock
from tests.client.chunks import Chunks
from tests.client.harness import BOTH, open_client

pytestmark = [pytest.mark.anyio, BOTH]

API = "https://api.test"
MAX_BODY = 1 << 20
#: The decoded size of the bombs: 64 MiB of zeros, about 65 KB once compressed.
BOMB = 64 << 20

Handler = Callable[[httpx.Request], httpx.Response]


def options(**extra: Any) -> dict[str, Any]:
    return {"clock": FakeClock(), "polling": FixedInterval(1.0), "max_body_size": MAX_BODY, **extra}


def accepted(location: str = f"{API}/jobs/1", **headers: str) -> httpx.Response:
    return httpx.Response(
        202,
        headers={"Location": location, "Retry-After": "0", **headers},
        json={"jobId": "1", "status": "pending"},
    )


def submit_then(answer: Handler) -> Handler:
    """A server that accepts the submission, then answers everything else with ``answer``."""

    def handle(request: httpx.Request) -> httpx.Response:
        return accepted() if request.method == "POST" else answer(request)

    return handle


def token(payload: object) -> str:
    raw = json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# --------------------------------------------------------------------------------------------
# Item 9: untyped exceptions


@pytest.mark.parametrize(
    "location",
    [
        "javascript:alert(1)",
        "mailto:someone@example.com",
        "http://xn--a.test/",
        "http://xn--zz--.test/",
    ],
)
async def test_a_redirect_to_an_unparsable_location_is_a_protocol_error(
    flavor: str, location: str
) -> None:
    transport = httpx.MockTransport(
        submit_then(lambda _: httpx.Response(302, headers={"Location": location}))
    )
    async with open_client(flavor, API, transport=transport, **options()) as (client, call):
        with pytest.raises(ProtocolError, match="Location") as raised:
            await call(client.run, "/jobs", json={}, timeout=5)
    assert raised.value.url == f"{API}/jobs/1"


async def test_the_contract_checker_reports_an_unparsable_location(flavor: str) -> None:
    def serve(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return accepted()
        return httpx.Response(302, headers={"Location": "http://xn--a.test/"})

    transport = httpx.MockTransport(serve)
    fast = {"timeout": 2.0, "min_poll_interval": 0.0, "max_poll_interval": 0.01}
    if flavor == "async":
        async with httpx.AsyncClient(transport=transport) as http:
            report = await acheck(f"{API}/jobs", json={}, http_client=http, **fast)
    else:
        with httpx.Client(transport=transport) as sync_http:
            report = check(f"{API}/jobs", json={}, http_client=sync_http, **fast)
    evidence = report["submit"].evidence
    assert evidence is not None and (evidence.note or "").startswith("unusable URL")


@pytest.mark.parametrize("payload", [{"v": []}, {"v": {}}, {"v": True}, {"v": 1.0}, [], "x"])
async def test_resuming_a_token_of_a_malformed_version_is_an_invalid_token(
    flavor: str, payload: object
) -> None:
    transport = httpx.MockTransport(lambda _: httpx.Response(500))
    async with open_client(flavor, API, transport=transport) as (client, _):
        with pytest.raises(InvalidTokenError):
            client.resume(token(payload))


async def test_downloading_a_file_the_status_url_answers_writes_its_bytes(flavor: str) -> None:
    pdf = b"%PDF-1.7\n" + bytes(range(256))
    transport = httpx.MockTransport(
        submit_then(
            lambda _: httpx.Response(200, headers={"Content-Type": "application/pdf"}, content=pdf)
        )
    )
    sink = io.BytesIO()
    async with open_client(flavor, API, transport=transport, **options()) as (client, call):
        op = await call(client.submit, "/jobs", json={})
        assert await call(op.download, sink, timeout=5) == len(pdf)
    assert sink.getvalue() == pdf


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"idempotency_key": "clé-1"}, "idempotency_key"),
        ({"headers": {"X-Trace": "café"}}, "'X-Trace'"),
        ({"headers": {"X-Trace": "a\r\nInjected: 1"}}, "'X-Trace'"),
        ({"headers": {"X-Tracé": "a"}}, "'X-Tracé'"),
    ],
)
async def test_a_header_that_cannot_be_sent_is_a_value_error_naming_it(
    flavor: str, arguments: dict[str, Any], named: str
) -> None:
    sent: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda request: sent.append(request) or accepted())
    async with open_client(flavor, API, transport=transport, **options()) as (client, call):
        with pytest.raises(ValueError, match=named) as raised:
            await call(client.submit, "/jobs", json={}, **arguments)
    assert not isinstance(raised.value, UnicodeError)
    assert sent == []


async def test_a_credential_that_cannot_be_sent_is_refused_without_being_quoted(
    flavor: str,
) -> None:
    with pytest.raises(ValueError, match="'Authorization'") as raised:
        async with open_client(flavor, API, headers={"Authorization": "Bearer s3crét"}):
            pass  # pragma: no cover
    assert "s3cr" not in str(raised.value)


async def test_a_client_header_that_cannot_be_sent_is_refused_at_construction(
    flavor: str,
) -> None:
    with pytest.raises(ValueError, match="'X-Tenant'"):
        async with open_client(flavor, API, headers={"X-Tenant": "Zürich"}):
            pass  # pragma: no cover


# --------------------------------------------------------------------------------------------
# Item 10: compression bombs


@functools.cache
def bomb(coding: str, prefix: bytes = b"") -> bytes:
    """``prefix`` and ``BOMB`` zero bytes, compressed, made without holding them."""
    wbits = zlib.MAX_WBITS | 16 if coding == "gzip" else zlib.MAX_WBITS
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    parts = [compressor.compress(prefix)]
    block = bytes(1 << 20)
    parts += [compressor.compress(block) for _ in range(BOMB >> 20)]
    parts.append(compressor.flush())
    return b"".join(parts)


def bombing(status: int, coding: str, content_type: str, prefix: bytes = b"") -> httpx.Response:
    body = bomb(coding, prefix)
    assert len(body) < 100_000  # one network read, that httpx would decode whole
    headers = {"Content-Type": content_type, "Content-Encoding": coding}
    return httpx.Response(status, headers=headers, stream=Chunks(body))


async def peak_of(action: Callable[[], Any]) -> tuple[Any, int]:
    """What ``action()`` returned or raised, and the peak of memory allocated meanwhile."""
    tracemalloc.start()
    try:
        try:
            outcome = await action()
        except Exception as exc:
            outcome = exc
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
async def test_a_compressed_status_bomb_is_refused_with_bounded_memory(
    flavor: str, coding: str
) -> None:
    transport = httpx.MockTransport(
        submit_then(lambda _: bombing(200, coding, "application/json", b'{"status": "'))
    )
    async with open_client(flavor, API, transport=transport, **options()) as (client, call):
        op = await call(client.submit, "/jobs", json={})
        outcome, peak = await peak_of(lambda: call(op.wait, timeout=5))
    assert isinstance(outcome, ProtocolError) and "max_body_size" in str(outcome)
    assert peak < 10 * MAX_BODY, f"peak {peak / 2**20:.1f} MiB"


async def test_a_compressed_error_bomb_is_read_with_bounded_memory(flavor: str) -> None:
    transport = httpx.MockTransport(submit_then(lambda _: bombing(404, "gzip", "text/plain")))
    async with open_client(flavor, API, transport=transport, **options()) as (client, call):
        op = await call(client.submit, "/jobs", json={})
        outcome, peak = await peak_of(lambda: call(op.wait, timeout=5))
    assert isinstance(outcome, JobNotFoundError)
    assert peak < 10 * MAX_BODY, f"peak {peak / 2**20:.1f} MiB"


async def test_a_compressed_result_bomb_downloads_with_bounded_memory(flavor: str) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/result"):
            return bombing(200, "gzip", "application/octet-stream")
        return httpx.Response(
            200, json={"jobId": "1", "status": "completed", "resultUrl": "/jobs/1/result"}
        )

    written = 0

    def count(data: bytes) -> int:
        nonlocal written
        written += len(data)
        return len(data)

    sink = io.RawIOBase()
    sink.write = count  # type: ignore[method-assign]
    sink.writable = lambda: True  # type: ignore[method-assign]
    transport = httpx.MockTransport(submit_then(answer))
    async with open_client(flavor, API, transport=transport, **options()) as (client, call):
        op = await call(client.submit, "/jobs", json={})
        outcome, peak = await peak_of(lambda: call(op.download, sink, timeout=5))
    assert outcome == BOMB == written
    assert peak < 10 * MAX_BODY, f"peak {peak / 2**20:.1f} MiB"


async def test_a_compressed_event_stream_bomb_is_read_with_bounded_memory(flavor: str) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return bombing(200, "gzip", "text/event-stream", b"data: ")
        return httpx.Response(200, json={"jobId": "1", "status": "completed", "result": 7})

    transport = httpx.MockTransport(answer)
    sse = SSEOptions(max_buffer=MAX_BODY)
    async with open_client(flavor, API, transport=transport, sse=sse, **options()) as (
        client,
        call,
    ):
        op = client.operation(f"{API}/jobs/1", events_url=f"{API}/jobs/1/events")
        outcome, peak = await peak_of(lambda: call(op.result, mode="sse", timeout=5))
    assert outcome == 7  # the stream was refused as too long, polling found the result
    assert peak < 10 * MAX_BODY, f"peak {peak / 2**20:.1f} MiB"


async def test_a_body_that_is_not_of_its_coding_is_a_protocol_error(flavor: str) -> None:
    garbage = httpx.Response(
        200,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        stream=Chunks(b"\x1f\x8b not gzip at all"),
    )
    transport = httpx.MockTransport(submit_then(lambda _: garbage))
    async with open_client(flavor, API, transport=transport, **options()) as (client, call):
        op = await call(client.submit, "/jobs", json={})
        with pytest.raises(ProtocolError, match="Content-Encoding"):
            await call(op.wait, timeout=5)


async def test_an_event_stream_that_is_not_of_its_coding_falls_back_to_polling(
    flavor: str,
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            headers = {"Content-Type": "text/event-stream", "Content-Encoding": "gzip"}
            return httpx.Response(200, headers=headers, stream=Chunks(b"\x1f\x8b garbage"))
        return httpx.Response(200, json={"jobId": "1", "status": "completed", "result": 7})

    transport = httpx.MockTransport(answer)
    async with open_client(flavor, API, transport=transport, **options()) as (client, call):
        op = client.operation(f"{API}/jobs/1", events_url=f"{API}/jobs/1/events")
        assert await call(op.result, mode="sse", timeout=5) == 7


async def test_a_compressed_status_is_read_as_before(flavor: str) -> None:
    document = json.dumps({"jobId": "1", "status": "completed", "result": "x" * 300_000})
    compressed = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    body = compressed.compress(document.encode()) + compressed.flush()
    status = httpx.Response(
        200,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        stream=Chunks(body[:100], body[100:]),
    )
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return status

    transport = httpx.MockTransport(submit_then(answer))
    async with open_client(flavor, API, transport=transport, **options()) as (client, call):
        op = await call(client.submit, "/jobs", json={})
        assert await call(op.result, timeout=5) == "x" * 300_000
    assert seen[0].headers["Accept-Encoding"] == "gzip, deflate"


# --------------------------------------------------------------------------------------------
# Item 12: secrets in error messages and URL attributes

SECRET = "S3CRET"


def assert_redacted(error: BaseException, *names: str) -> None:
    text = str(error)
    assert SECRET not in text, text
    url = getattr(error, "url", None)
    assert url is None or SECRET not in url, url
    for name in names:
        assert f"{name}=REDACTED" in text or f"{name}=REDACTED" in (url or ""), (text, url)


async def test_a_not_found_error_does_not_carry_the_urls_secrets(flavor: str) -> None:
    transport = httpx.MockTransport(lambda _: httpx.Response(404, json={"error": "nope"}))
    status_url = f"{API}/jobs/1/events?access_token={SECRET}&api_key={SECRET}&wait=5"
    async with open_client(flavor, API, transport=transport, **options()) as (client, call):
        op = client.operation(status_url)
        with pytest.raises(JobNotFoundError) as raised:
            await call(op.wait, mode="poll", timeout=5)
    assert_redacted(raised.value, "access_token", "api_key")
    assert "wait=5" in str(raised.value)  # what users need to act on is kept


async def test_a_transport_error_does_not_carry_the_urls_secrets(flavor: str) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("down", request=request)

    retry = RetryPolicy(attempts=2, initial=0.0)
    transport = httpx.MockTransport(down)
    async with open_client(flavor, API, transport=transport, **options(retry=retry)) as (
        client,
        call,
    ):
        op = client.operation(f"https://u:{SECRET}@api.test/jobs/1?sig={SECRET}&sv=2024")
        with pytest.raises(TransportError) as raised:
            await call(op.wait, mode="poll", timeout=5)
    assert_redacted(raised.value, "sig")
    assert raised.value.url == f"{API}/jobs/1?sig=REDACTED&sv=2024"


async def test_rejections_and_protocol_errors_do_not_carry_the_urls_secrets(flavor: str) -> None:
    transport = httpx.MockTransport(
        lambda request: (
            httpx.Response(400, json={"error": {"code": "bad"}})
            if request.method == "POST"
            else httpx.Response(200, text="<html>")
        )
    )
    async with open_client(flavor, API, transport=transport, **options()) as (client, call):
        with pytest.raises(RequestRejectedError) as rejected:
            await call(client.submit, f"/jobs?api_key={SECRET}", json={})
        op = client.operation(f"{API}/jobs/1?token={SECRET}")
        with pytest.raises(ProtocolError) as broken:
            await call(op.wait, mode="poll", timeout=5)
    assert_redacted(rejected.value, "api_key")
    assert_redacted(broken.value, "token")
    assert f"from {API}/jobs/1?token=REDACTED)" in str(broken.value)  # the sentence is intact


async def test_a_url_without_secrets_is_kept_as_it_is(flavor: str) -> None:
    transport = httpx.MockTransport(lambda _: httpx.Response(404))
    status_url = f"{API}/jobs/1?a=b%20c&d="
    async with open_client(flavor, API, transport=transport, **options()) as (client, call):
        with pytest.raises(JobNotFoundError, match="a=b%20c&d="):
            await call(client.operation(status_url).wait, mode="poll", timeout=5)
