"""``_decoding.BodyDecoder``: Content-Encoding decoded in bounded pieces, I/O-free."""

from __future__ import annotations

import gzip
import zlib

import httpx
import pytest

from asyncreply_client._decoding import PIECE, BodyDecoder
from asyncreply_client._security import check_headers

DATA = b"".join(b"%d," % i for i in range(100_000))  # about 590 KB, compressible


def deflate(data: bytes, wbits: int) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, wbits)
    return compressor.compress(data) + compressor.flush()


def decode(coding: str | None, body: bytes, step: int = 1000) -> list[bytes]:
    decoder = BodyDecoder(coding)
    pieces: list[bytes] = []
    for start in range(0, len(body), step):
        pieces += decoder.feed(body[start : start + step])
    pieces += decoder.end()
    return pieces


@pytest.mark.parametrize(
    ("coding", "body"),
    [
        ("gzip", gzip.compress(DATA)),
        ("GZip ", gzip.compress(DATA)),
        ("deflate", deflate(DATA, zlib.MAX_WBITS)),  # zlib-wrapped, as RFC 9110 says
        ("deflate", deflate(DATA, -zlib.MAX_WBITS)),  # raw, as some servers send it
        ("gzip, deflate", deflate(gzip.compress(DATA), zlib.MAX_WBITS)),  # applied in order
        ("identity", DATA),
        ("br", DATA),  # not asked for, not decoded: left as it is, as httpx does
        (None, DATA),
    ],
)
def test_every_coding_decodes_to_the_body_in_bounded_pieces(coding: str, body: bytes) -> None:
    pieces = decode(coding, body)
    assert b"".join(pieces) == DATA
    assert max(len(piece) for piece in pieces) <= max(PIECE, 1000)


def test_a_bomb_in_one_chunk_comes_out_a_piece_at_a_time() -> None:
    bomb = gzip.compress(bytes(16 << 20))
    pieces = BodyDecoder("gzip").feed(bomb)  # lazy: nothing decoded before it is asked for
    first = next(pieces)
    assert len(first) == PIECE
    assert sum(len(piece) for piece in pieces) + len(first) == 16 << 20


def test_bytes_that_are_not_of_the_coding_are_a_decoding_error() -> None:
    request = httpx.Request("GET", "https://api.test/jobs/1")
    decoder = BodyDecoder("gzip", request=request)
    with pytest.raises(httpx.DecodingError, match="Content-Encoding") as raised:
        list(decoder.feed(b"\x1f\x8b not gzip"))
    assert raised.value.request is request


def test_a_response_already_read_is_not_decoded_again() -> None:
    response = httpx.Response(
        200, headers={"Content-Encoding": "gzip"}, content=gzip.compress(b"{}")
    )
    assert response.is_stream_consumed and response.content == b"{}"
    assert list(BodyDecoder.of(response).feed(response.content)) == [b"{}"]


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({"X-A": "café"}, ValueError),
        ({"X-A": "a\nB: c"}, ValueError),
        ({"X-A": "a\x00"}, ValueError),
        ({"X A": "a"}, ValueError),
        ({"": "a"}, ValueError),
        ({"X-A": b"\xe9"}, ValueError),
        ({"X-A": 1}, TypeError),
    ],
)
def test_headers_that_cannot_be_sent_are_refused(headers: dict[str, object], error: type) -> None:
    with pytest.raises(error, match="headers"):
        check_headers(headers)  # type: ignore[arg-type]


def test_headers_that_can_be_sent_pass() -> None:
    check_headers({"X-A": "a b\tc ~!", "Idempotency-Key": "k-1", "X-B": b"bytes"})  # type: ignore[dict-item]
    check_headers(None)
