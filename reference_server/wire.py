"""Reading requests off the wire: bounded bodies, strict JSON, headers, query parameters.

Every way a request can be malformed ends in :class:`HTTPError` carrying the protocol's
error document (``docs/protocol.md`` §1); nothing here raises a bare ``ValueError`` into
the routes. The limits (body size and read time, JSON nesting depth, non-finite numbers,
``notBefore`` range) are documented in ``docs/protocol.md`` §16.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import math
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Protocol, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from .config import ServerConfig
from .documents import error_body

__all__ = [
    "MAX_NOT_BEFORE_AHEAD",
    "HTTPError",
    "canonical_hash",
    "decode_cursor",
    "encode_cursor",
    "error",
    "exceeds_depth",
    "idempotency_key",
    "parse_json",
    "parse_not_before",
    "parse_prefer_wait",
    "parse_wait",
    "read_body",
    "validate_submission",
    "validation_details",
]

_MAX_KEY_LEN = 255
#: How far ahead ``notBefore`` may lie (seconds); the earliest is the Unix epoch.
MAX_NOT_BEFORE_AHEAD = 366 * 86400.0


def error(
    status: int,
    code: str,
    message: str,
    *,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """Return the JSON error document ``{"error": {"code", "message", "details"?}}``."""
    return web.json_response(
        error_body(code, message, details), status=status, headers=dict(headers or {})
    )


class HTTPError(Exception):
    """Raised inside route code to answer with an error document."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.response = error(status, code, message, details=details, headers=headers)


def validation_details(exc: ValidationError) -> Any:
    """The ``details`` of an ``invalid_input`` error: pydantic's errors as JSON."""
    try:
        return json.loads(exc.json(include_url=False))
    except ValueError:
        return [
            {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False, include_context=False)
        ]


def canonical_hash(value: Any) -> str:
    """SHA-256 of the canonical JSON of ``value`` (for Idempotency-Key body comparison)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def parse_wait(raw: str | None, config: ServerConfig) -> float | None:
    """Parse ``?wait=N``: ``None`` when absent; capped at ``max_wait``; 400 when invalid."""
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise HTTPError(400, "invalid_wait", "wait must be a number of seconds") from None
    if math.isnan(value) or value < 0:
        raise HTTPError(400, "invalid_wait", "wait must be a non-negative number of seconds")
    return min(value, config.max_wait)


def parse_prefer_wait(request: web.Request, config: ServerConfig) -> float | None:
    """Return the ``Prefer: wait=N`` value (RFC 7240 §4.3), capped; ignore it if malformed."""
    for header in request.headers.getall("Prefer", []):
        for pref in header.split(","):
            token, _, value = pref.split(";", 1)[0].strip().partition("=")
            if token.strip().lower() != "wait":
                continue
            try:
                seconds = float(value.strip().strip('"'))
            except ValueError:
                return None
            if not math.isfinite(seconds) and seconds != math.inf:
                return None
            if seconds < 0:
                return None
            return min(seconds, config.max_wait)
    return None


def idempotency_key(request: web.Request) -> str | None:
    """The request's ``Idempotency-Key`` (bare or RFC 8941 sf-string form); 400 if bad."""
    raw = request.headers.get("Idempotency-Key")
    if raw is None:
        return None
    key = raw.strip()
    # Both the bare form and the quoted form (an RFC 8941 sf-string) are accepted.
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key or len(key) > _MAX_KEY_LEN or not key.isprintable():
        raise HTTPError(
            400,
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1..{_MAX_KEY_LEN} printable characters",
        )
    return key


def encode_cursor(seq: int) -> str:
    """The opaque, versioned listing cursor for "jobs before ``seq``"."""
    raw = json.dumps({"v": 1, "before": seq}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """Decode a cursor made by :func:`encode_cursor`; 400 ``invalid_cursor`` otherwise."""
    try:
        if len(cursor) > 200:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("v") != 1:
            raise ValueError("bad version")
        seq = data["before"]
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise ValueError("bad position")
        return seq
    except (ValueError, KeyError, binascii.Error, UnicodeDecodeError):
        raise HTTPError(
            400, "invalid_cursor", "cursor is not a cursor this server issued"
        ) from None


async def read_body(request: web.Request, limit: int, timeout: float) -> bytes:
    """Read the whole body: 413 beyond ``limit`` bytes, 408 if it takes over ``timeout`` s.

    The time bound stops a client that trickles its body (or stops sending half-way) from
    holding the request, and its connection, forever.
    """
    if request.content_length is not None and request.content_length > limit:
        raise HTTPError(413, "payload_too_large", f"the body exceeds {limit} bytes")
    content = request.content
    if content.is_eof():
        # The whole body came with the head (the common small submission): take it as it
        # is, without the timed read below (on Python 3.11, wait_for runs it in a task of its
        # own: two loop turns for bytes already here).
        body = content.read_nowait()
        if len(body) > limit:
            raise HTTPError(413, "payload_too_large", f"the body exceeds {limit} bytes")
        return body

    async def read() -> bytes:
        buf = bytearray()
        async for chunk in request.content.iter_chunked(65536):
            buf += chunk
            if len(buf) > limit:
                raise HTTPError(413, "payload_too_large", f"the body exceeds {limit} bytes")
        return bytes(buf)

    try:
        if sys.version_info >= (3, 11):
            # In this task: wait_for would run the read in a task of its own (two loop
            # turns more once the body arrives).
            async with asyncio.timeout(timeout):
                return await read()
        return await asyncio.wait_for(read(), timeout)  # pragma: no cover - Python 3.10
    except asyncio.TimeoutError:
        raise HTTPError(
            408,
            "request_timeout",
            f"the body was not received within {timeout:g} s",
            headers={"Connection": "close"},
        ) from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    # RFC 8259 §6 numbers have no infinity, yet "1e99999" overflows to one in Python.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is not a finite number")
    return value


#: One strict decoder for every body (``json.loads`` with options builds one per call).
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def exceeds_depth(value: Any, limit: int) -> bool:
    """Whether ``value`` nests objects/arrays deeper than ``limit`` (``{}`` has depth 1).

    Iterative, so it cannot itself hit the recursion limit.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def parse_json(body: bytes, *, max_depth: int) -> Any:
    """Parse a request body as strict JSON; 400 ``invalid_json`` for anything else.

    Refused: bad UTF-8, ``NaN``/``Infinity`` and numbers that overflow to them, lone
    surrogate escapes, and nesting deeper than ``max_depth`` (a document the server could
    accept but not reload after a restart must never be stored).
    """
    try:
        value = _DECODER.decode(body.decode("utf-8"))
        # JSON escapes can smuggle in lone surrogates ("\udcff"), which are not Unicode
        # text (RFC 8259 §8.2) and would break every later encoding step: refuse them here.
        # Only a "\u" escape can make one (the UTF-8 decode refused raw ones).
        if b"\\u" in body:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeError, RecursionError):
        raise HTTPError(400, "invalid_json", "the body is not valid JSON") from None
    if exceeds_depth(value, max_depth):
        raise HTTPError(
            400, "invalid_json", f"the body nests deeper than {max_depth} levels"
        ) from None
    return value


def parse_not_before(value: datetime, now: float) -> float:
    """``notBefore`` as epoch seconds; 400 unless between the epoch and a year ahead.

    A naive time is UTC. The bounds keep every time the server renders within what RFC 3339
    (and :mod:`datetime`) can represent: ``0001-01-01T00:00:00+00:01`` is refused here,
    before any job exists.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    try:
        seconds = value.timestamp()
    except (OverflowError, ValueError, OSError):
        seconds = -1.0
    if not 0.0 <= seconds <= now + MAX_NOT_BEFORE_AHEAD:
        raise HTTPError(
            400,
            "invalid_input",
            "notBefore must lie between 1970-01-01T00:00:00Z and 366 days from now",
            details=[{"loc": ["notBefore"], "msg": "out of range", "type": "value_error"}],
        )
    return seconds


class _JobTypes(Protocol):
    """What :func:`validate_submission` needs of the job manager."""

    @property
    def types(self) -> Any:
        """The served job types by name."""

    def validate_input(self, type_name: str, raw: Any) -> Any:
        """Validate ``raw`` against the input model of ``type_name``."""


class _Envelope(Protocol):
    type: str
    input: Any


M = TypeVar("M", bound=BaseModel)


def validate_submission(model: type[M], body: Any, manager: _JobTypes) -> M:
    """Validate a whole submission (envelope and job input) before anything is created.

    Raises:
        HTTPError: 400 ``invalid_input`` or ``unknown_type``.
    """
    try:
        sub = model.model_validate(body)
    except ValidationError as exc:
        raise HTTPError(
            400, "invalid_input", "the request body is invalid", details=validation_details(exc)
        ) from None
    envelope: _Envelope = sub  # type: ignore[assignment]
    if envelope.type not in manager.types:
        raise HTTPError(
            400,
            "unknown_type",
            f"unknown job type {envelope.type!r}",
            details={"known": sorted(manager.types)},
        )
    try:
        manager.validate_input(envelope.type, envelope.input)
    except ValidationError as exc:
        raise HTTPError(
            400, "invalid_input", "the job input is invalid", details=validation_details(exc)
        ) from None
    except (TypeError, ValueError) as exc:
        # A custom input model whose validator raised something pydantic does not wrap.
        raise HTTPError(
            400, "invalid_input", f"the job input is invalid: {type(exc).__name__}"
        ) from None
    return sub
