"""Every common header shape is read, with the real types (issue 20.7), and ``verify`` takes
both argument orders (issue 20.8)."""

from __future__ import annotations

import http.client
import io
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import requests
from multidict import CIMultiDict, CIMultiDictProxy
from starlette.datastructures import Headers as StarletteHeaders
from werkzeug.datastructures import EnvironHeaders
from werkzeug.datastructures import Headers as WerkzeugHeaders
from werkzeug.test import EnvironBuilder

from asyncreply_client.webhooks import (
    MalformedHeaderError,
    SigningScheme,
    WebhookVerifier,
    handle_webhook,
    sign,
)

NOW = 1_700_000_000
BODY = b'{"type": "job.completed", "jobId": "j1", "data": {"status": "completed"}}'


def _message(signed: dict[str, str]) -> Any:
    # What http.server hands a handler as self.headers: http.client.HTTPMessage, an
    # email.message.Message, parsed from the raw header block.
    raw = "".join(f"{name}: {value}\r\n" for name, value in signed.items()) + "\r\n"
    return http.client.parse_headers(io.BytesIO(raw.encode("latin-1")))


def _environ(signed: dict[str, str]) -> Any:
    return EnvironBuilder(method="POST", path="/hooks", headers=signed, data=BODY).get_environ()


def _asgi(signed: dict[str, str]) -> Any:
    # An ASGI server's scope["headers"]: lower-case byte names, byte values.
    return [
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in signed.items()
    ]


def _asgi_scope(signed: dict[str, str]) -> Any:
    return {"type": "http", "method": "POST", "path": "/hooks", "headers": _asgi(signed)}


def _requests(signed: dict[str, str]) -> Any:
    return (
        requests.Request("POST", "http://127.0.0.1/hooks", headers=signed, data=BODY)
        .prepare()
        .headers
    )


SHAPES: dict[str, Callable[[dict[str, str]], Any]] = {
    "dict": dict,
    "pairs": lambda signed: list(signed.items()),
    "email.message.Message": _message,
    "wsgi environ": _environ,
    "asgi headers": _asgi,
    "asgi scope": _asgi_scope,
    "httpx.Headers": httpx.Headers,
    "httpx request": lambda signed: (
        httpx.Request("POST", "http://127.0.0.1/", headers=signed).headers
    ),
    "requests": _requests,
    "aiohttp multidict": lambda signed: CIMultiDictProxy(CIMultiDict(signed)),
    "starlette": lambda signed: StarletteHeaders(scope=_asgi_scope(signed)),
    "werkzeug Headers": lambda signed: WerkzeugHeaders(signed),
    "flask EnvironHeaders": lambda signed: EnvironHeaders(_environ(signed)),
}


@pytest.mark.parametrize("scheme", ["standard", "hmac-sha256"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_header_shape_verifies(shape: str, scheme: SigningScheme) -> None:
    signed = sign(BODY, "s3cret", msg_id="msg_1", timestamp=NOW, scheme=scheme)
    headers = SHAPES[shape](signed)
    verifier = WebhookVerifier("s3cret", clock=lambda: NOW)
    event = verifier.verify(headers, BODY)
    assert (event.scheme, event.job_id) == (scheme, "j1")


@pytest.mark.parametrize("shape", list(SHAPES))
def test_handle_webhook_answers_200_for_every_shape(shape: str) -> None:
    signed = sign(BODY, "s3cret", msg_id="msg_1", timestamp=NOW, scheme="standard")
    seen: list[str | None] = []
    answer = handle_webhook(
        WebhookVerifier("s3cret", clock=lambda: NOW),
        SHAPES[shape](signed),
        BODY,
        {"job.completed": lambda event: seen.append(event.job_id)},
    )
    assert answer.status_code == 200, answer.body
    assert seen == ["j1"]


def test_a_message_with_a_repeated_conflicting_signature_header_is_malformed() -> None:
    signed = sign(BODY, "s3cret", msg_id="msg_1", timestamp=NOW, scheme="standard")
    message = _message(signed)
    message["webhook-id"] = "msg_2"  # Message keeps both
    with pytest.raises(MalformedHeaderError, match="repeated"):
        WebhookVerifier("s3cret", clock=lambda: NOW).verify(message, BODY)


def test_an_environ_ignores_its_non_header_keys() -> None:
    signed = sign(BODY, "s3cret", msg_id="msg_1", timestamp=NOW, scheme="standard")
    environ = _environ(signed)
    assert not isinstance(environ["wsgi.input"], (str, bytes))  # a file: skipped, not read
    assert WebhookVerifier("s3cret", clock=lambda: NOW).verify(environ, BODY).delivery_id == "msg_1"


@pytest.mark.parametrize("bad", [42, "webhook-id: x", b"raw", [("a", "b", "c")], ["ab"]])
def test_what_is_not_headers_is_malformed(bad: Any) -> None:
    with pytest.raises(MalformedHeaderError):
        WebhookVerifier("s3cret", clock=lambda: NOW).verify(bad, BODY)


# --------------------------------------------------------------------------------------------
# verify(headers, body) and the peers' verify(payload, headers)


def _signed() -> dict[str, str]:
    return sign(BODY, "s3cret", msg_id="msg_1", timestamp=NOW, scheme="standard")


@pytest.mark.parametrize(
    "call",
    [
        lambda v, h: v.verify(h, BODY),
        lambda v, h: v.verify(BODY, h),  # Svix / standardwebhooks order
        lambda v, h: v.verify(payload=BODY, headers=h),
        lambda v, h: v.verify(headers=h, body=BODY),
        lambda v, h: v.verify(h, payload=bytearray(BODY)),
        lambda v, h: v.verify(memoryview(BODY), h),
    ],
    ids=["ours", "peers", "payload-kw", "body-kw", "payload-bytearray", "peers-memoryview"],
)
def test_both_argument_orders_verify(call: Callable[[WebhookVerifier, Any], Any]) -> None:
    verifier = WebhookVerifier("s3cret", clock=lambda: NOW)
    assert call(verifier, _signed()).delivery_id == "msg_1"


def test_text_in_the_peers_order_names_the_order_and_asks_for_bytes() -> None:
    verifier = WebhookVerifier("s3cret", clock=lambda: NOW)
    with pytest.raises(TypeError, match=r"verify\(payload, headers\) got text.*raw bytes"):
        verifier.verify(BODY.decode(), _signed())
    with pytest.raises(TypeError, match="raw bytes"):
        verifier.verify(_signed(), BODY.decode())


def test_arguments_that_fit_neither_order_name_both() -> None:
    verifier = WebhookVerifier("s3cret", clock=lambda: NOW)
    with pytest.raises(
        TypeError, match=r"\(headers, body\) or the peers' order \(payload, headers\)"
    ):
        verifier.verify(_signed(), {"not": "bytes"})
    with pytest.raises(TypeError, match="once"):
        verifier.verify(_signed(), BODY, payload=BODY)
