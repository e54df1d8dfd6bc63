"""Issue 10's vendor shapes, pure: each row is an answer a real API gives at first contact
(Microsoft REST guidelines, Azure ARM, Google AIP-151, status-code servers, RFC 9457) and what
the dialects must make of it. Scenario tables, no sockets."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from asyncreply_client._errors import ProtocolError
from asyncreply_client._http import HttpResponse
from asyncreply_client.dialects import (
    ArmDialect,
    AutoDialect,
    Dialect,
    GoogleDialect,
    MicrosoftDialect,
    ReferenceDialect,
    StatusCodeDialect,
)

WALL = 1_795_424_400.0
API = "https://api.test"
JSON = {"Content-Type": "application/json"}


def resp(
    code: int,
    body: Any = None,
    headers: dict[str, str] | None = None,
    *,
    url: str = f"{API}/jobs/1",
    method: str = "GET",
) -> HttpResponse:
    """A response view; a non-bytes body is JSON-encoded with a JSON Content-Type."""
    h = dict(headers or {})
    if body is None:
        content = b""
    elif isinstance(body, bytes):
        content = body
    else:
        content = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    return HttpResponse(code, httpx.Headers(h), content, url, method)


def every_dialect() -> list[Dialect]:
    clock = {"wall_clock": lambda: WALL}
    return [
        AutoDialect(**clock),
        ReferenceDialect(**clock),
        StatusCodeDialect(**clock),
        MicrosoftDialect(**clock),
        GoogleDialect(**clock),
        ArmDialect(**clock),
    ]


DIALECTS = pytest.mark.parametrize("dialect", every_dialect(), ids=lambda d: d.name)


# --------------------------------------------------------------------------------------------
# Invalid JSON on a status answer


@DIALECTS
@pytest.mark.parametrize("code", [200, 201, 202])
@pytest.mark.parametrize(
    "body", [b'{"status": "runn', b"not json at all", b"\xff\xfe{", b"[" * 100_000]
)
def test_a_status_answer_labelled_json_that_does_not_decode(
    dialect: Dialect, code: int, body: bytes
) -> None:
    with pytest.raises(ProtocolError) as info:
        dialect.interpret_status(resp(code, body, JSON))
    message = str(info.value)
    assert "status answer's body is not valid JSON" in message
    assert "result" not in message.split("(HTTP")[0]
    assert isinstance(info.value.__cause__, (json.JSONDecodeError, UnicodeError, RecursionError))
    assert info.value.status_code == code and info.value.url == f"{API}/jobs/1"


@pytest.mark.parametrize(
    "dialect",
    [ReferenceDialect(), MicrosoftDialect(), GoogleDialect()],
    ids=lambda d: d.name,
)
def test_an_unlabelled_garbage_body_is_not_json_where_documents_are_required(
    dialect: Dialect,
) -> None:
    with pytest.raises(ProtocolError, match="not valid JSON") as info:
        dialect.interpret_status(resp(200, b"{oops"))
    assert isinstance(info.value.__cause__, json.JSONDecodeError)


def test_an_unlabelled_non_json_200_stays_a_file_result_where_results_may_be_anything() -> None:
    status = StatusCodeDialect().interpret_status(resp(200, b"\x00\x01binary"))
    assert status.has_result and status.result.content_type == "application/octet-stream"


def test_valid_json_null_and_empty_bodies_are_not_decoding_errors() -> None:
    response = resp(200, b"null", JSON)
    assert response.json_error() is None
    assert resp(204).json_error() is None
    assert resp(200, {"a": 1}).json_error() is None
    assert isinstance(resp(200, b"{", JSON).json_error(), json.JSONDecodeError)
