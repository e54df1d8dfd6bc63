"""Uploads (issue 20, item 6): ``params=``, ``content=``, ``data=`` and ``files=`` through
both clients to the real reference server's ``digest`` job type, retries that re-send a
file from its start, and one-shot streams that are never re-sent."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from asyncreply_client import ProtocolError, SubmissionRejectedError, TransportError
from asyncreply_client._uploads import encode_body
from tests.client.harness import BOTH, open_client

pytestmark = pytest.mark.anyio

SERVER = pytest.mark.parametrize(
    "reference_server", [{"workers": 2, "retry_backoff": 0.01}], indirect=True, ids=["ref"]
)
AUDIO = bytes(range(256)) * 64  # 16 KiB, every byte value


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _FirstPostFails:
    """Reads the first POST's whole body, then answers it 503 (``Retry-After: 0``) without
    passing it on: its retry must carry the same bytes again."""

    def __init__(self) -> None:
        self.first: bytes | None = None
        self.posts = 0

    def fails(self, request: httpx.Request) -> bool:
        if request.method != "POST":
            return False
        self.posts += 1
        return self.posts == 1

    @staticmethod
    def answer() -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": "0"})


class FailFirstPost(httpx.BaseTransport, _FirstPostFails):
    def __init__(self) -> None:
        _FirstPostFails.__init__(self)
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.fails(request):
            self.first = request.read()
            return self.answer()
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


class AsyncFailFirstPost(httpx.AsyncBaseTransport, _FirstPostFails):
    def __init__(self) -> None:
        _FirstPostFails.__init__(self)
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.fails(request):
            self.first = await request.aread()
            return self.answer()
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _flaky(flavor: str) -> Any:
    return AsyncFailFirstPost() if flavor == "async" else FailFirstPost()


def _chunks(flavor: str, data: bytes) -> Any:
    """``data`` as a byte stream of the flavour (a generator, or an async one)."""
    pieces = [data[i : i + 4096] for i in range(0, len(data), 4096)]

    def sync() -> Iterator[bytes]:
        yield from pieces

    async def asynchronous() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    return asynchronous() if flavor == "async" else sync()


@BOTH
@SERVER
async def test_a_multipart_upload_runs_a_job(flavor: str, reference_server: Any) -> None:
    files = {
        "audio": ("talk.wav", AUDIO, "audio/wav"),
        "notes": ("notes.txt", io.BytesIO(b"hello"), "text/plain"),
    }
    form = {"type": "digest", "language": "fr"}
    async with open_client(flavor, reference_server.base_url) as (client, call):
        result = await call(client.run, "/jobs", data=form, files=files, timeout=30)
    assert result["fields"] == {"language": "fr"}
    assert [(f["field"], f["filename"], f["contentType"]) for f in result["files"]] == [
        ("audio", "talk.wav", "audio/wav"),
        ("notes", "notes.txt", "text/plain"),
    ]
    assert [(f["size"], f["sha256"]) for f in result["files"]] == [
        (len(AUDIO), sha(AUDIO)),
        (5, sha(b"hello")),
    ]


@BOTH
@SERVER
async def test_a_retried_upload_sends_each_file_again_from_its_start(
    flavor: str, reference_server: Any
) -> None:
    transport = _flaky(flavor)
    upload = io.BytesIO(AUDIO)
    async with open_client(flavor, reference_server.base_url, transport=transport) as (
        client,
        call,
    ):
        op = await call(
            client.submit,
            "/jobs",
            data={"type": "digest"},
            files={"audio": ("talk.wav", upload, "audio/wav")},
        )
        result = await call(op.result, timeout=30)
    assert transport.posts == 2 and transport.first is not None
    assert AUDIO in transport.first  # the first attempt carried the whole file too
    [digest] = result["files"]
    assert (digest["size"], digest["sha256"]) == (len(AUDIO), sha(AUDIO))


@BOTH
@SERVER
async def test_raw_bytes_with_params_default_to_octet_stream(
    flavor: str, reference_server: Any
) -> None:
    async with open_client(flavor, reference_server.base_url) as (client, call):
        plain = await call(client.run, "/jobs", params={"type": "digest"}, content=AUDIO)
        typed = await call(
            client.run,
            "/jobs",
            params=[("type", "digest")],
            content=b"RIFF",
            headers={"Content-Type": "audio/wav"},
        )
    assert plain["files"][0]["contentType"] == "application/octet-stream"
    assert plain["files"][0]["sha256"] == sha(AUDIO)
    assert typed["files"][0]["contentType"] == "audio/wav"


@BOTH
@SERVER
async def test_a_stream_is_sent_once(flavor: str, reference_server: Any) -> None:
    async with open_client(flavor, reference_server.base_url) as (client, call):
        result = await call(
            client.run, "/jobs", params={"type": "digest"}, content=_chunks(flavor, AUDIO)
        )
    assert result["files"][0]["sha256"] == sha(AUDIO)


@BOTH
@SERVER
async def test_a_stream_is_never_retried_and_says_why(flavor: str, reference_server: Any) -> None:
    transport = _flaky(flavor)
    async with open_client(flavor, reference_server.base_url, transport=transport) as (
        client,
        call,
    ):
        with pytest.raises(TransportError) as info:
            await call(
                client.submit, "/jobs", params={"type": "digest"}, content=_chunks(flavor, AUDIO)
            )
    assert transport.posts == 1
    assert "not retried" in str(info.value) and "one-shot stream" in str(info.value)


@BOTH
@SERVER
async def test_an_unseekable_file_is_sent_once(flavor: str, reference_server: Any) -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "wb") as writer:
        writer.write(b"from a pipe")
    transport = _flaky(flavor)
    with os.fdopen(read_end, "rb") as pipe:
        async with open_client(flavor, reference_server.base_url, transport=transport) as (
            client,
            call,
        ):
            with pytest.raises(TransportError) as info:
                await call(client.submit, "/jobs", data={"type": "digest"}, files={"audio": pipe})
    assert transport.posts == 1
    assert "'audio' is not seekable" in str(info.value)


@BOTH
@SERVER
async def test_the_server_refuses_other_bodies_and_bad_forms(
    flavor: str, reference_server: Any
) -> None:
    async with open_client(flavor, reference_server.base_url) as (client, call):
        with pytest.raises(SubmissionRejectedError) as untyped:
            await call(client.submit, "/jobs", content=b"raw")
        with pytest.raises(SubmissionRejectedError) as no_type:
            await call(client.submit, "/jobs", files={"audio": b"x"})
    assert untyped.value.status_code == 415
    assert "multipart/form-data" in str(untyped.value) and "?type=" in str(untyped.value)
    assert no_type.value.status_code == 400 and "'type' field" in str(no_type.value)


@BOTH
async def test_bodies_of_the_wrong_kind_are_refused_at_the_call(flavor: str) -> None:
    sent: list[httpx.Request] = []
    transport: Any = httpx.MockTransport(
        lambda request: sent.append(request) or httpx.Response(500)
    )
    other = "sync" if flavor == "async" else "async"
    async with open_client(flavor, "http://127.0.0.1:8080", transport=transport) as (
        client,
        call,
    ):
        with pytest.raises(TypeError, match="content="):
            await call(client.submit, "/jobs", content=_chunks(other, b"x"))
        with pytest.raises(TypeError, match="files="):
            await call(client.submit, "/jobs", files={"a": 3})
        with pytest.raises(TypeError, match="params="):
            await call(client.submit, "/jobs", json={}, params=3)
        with pytest.raises(ValueError, match="one body"):
            await call(client.run, "/jobs", json={}, files={"a": b"x"})
    assert sent == []


@BOTH
async def test_a_redirect_that_would_resend_a_stream_is_an_error(flavor: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        return httpx.Response(307, headers={"Location": "/elsewhere"})

    transport: Any = httpx.MockTransport(handler)
    async with open_client(flavor, "http://127.0.0.1:8080", transport=transport) as (
        client,
        call,
    ):
        with pytest.raises(ProtocolError, match="redirected"):
            await call(client.submit, "/jobs", content=_chunks(flavor, b"x" * 10))


@pytest.mark.parametrize(
    ("kwargs", "content_type", "one_shot"),
    [
        ({"content": b"x"}, "application/octet-stream", False),
        ({"content": "x"}, "text/plain; charset=utf-8", False),
        ({"json": {"a": 1}}, "application/json", False),
        ({"files": {"a": io.BytesIO(b"x")}}, None, False),
        ({"files": [("a", ("n.bin", b"x"))], "data": {"type": "t"}}, None, False),
        ({"content": iter([b"x"])}, "application/octet-stream", True),
    ],
)
def test_body_kinds(kwargs: dict[str, Any], content_type: str | None, one_shot: bool) -> None:
    body = encode_body(**kwargs)
    assert body.content_type == content_type
    assert (body.one_shot is not None) is one_shot


def test_a_callback_goes_into_a_form_as_json_text() -> None:
    body = encode_body(data={"type": "t"}, files={"a": b"x"}, callback="https://h.test/x")
    assert body.data == {"type": "t", "callback": '{"url":"https://h.test/x"}'}
