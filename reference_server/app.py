"""The HTTP layer of the reference server (aiohttp.web): routes, users, faults, dialects.

``create_app`` wires a :class:`~reference_server.jobs.JobManager`, a store and the webhook
sender into an :class:`aiohttp.web.Application`. Everything on the wire follows
``docs/protocol.md``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import hashlib
import hmac
import json
import logging
import math
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from aiohttp import web
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, ValidationError, field_validator

from .access_log import access_log
from .config import FaultConfig, ServerConfig
from .documents import (
    error_body,
    estimated_completion,
    format_seconds,
    retry_headers,
    retry_hint,
    status_code_state,
    status_document,
)
from .handlers import BUILTIN_HANDLERS
from .jobs import Handler, JobExpired, JobManager, JobNotFound, JobType
from .records import JobRecord, JobState
from .store import MemoryStore, SqliteStore, Store
from .webhooks import ALWAYS_SENT, OPTIONAL_EVENTS, WebhookSender

__all__ = ["STATE_KEY", "ServerState", "create_app"]

log = logging.getLogger("reference_server")

_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_MAX_KEY_LEN = 255
# A bearer token is visible ASCII (RFC 6750 §2.1 allows less; we only insist on this much).
# ASCII digits only (str.isdigit() also accepts "²", which int() refuses), bounded length.
_DIGITS = re.compile(r"[0-9]{1,18}")
_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")
_MAX_NOT_BEFORE = 366 * 86400.0
_JSON_TYPE = re.compile(r"^application/([a-z0-9.+-]+\+)?json$")


@dataclass
class ServerState:
    """The live state behind one application (shared with :class:`~reference_server.Admin`)."""

    config: ServerConfig
    manager: JobManager
    webhooks: WebhookSender
    faults: FaultConfig
    rng: random.Random
    total_requests: int = 0
    path_counts: collections.Counter[str] = field(default_factory=collections.Counter)
    route_counts: collections.Counter[str] = field(default_factory=collections.Counter)
    loop: asyncio.AbstractEventLoop | None = None

    def set_faults(self, faults: FaultConfig) -> None:
        """Replace the fault configuration (re-seeding the generator when a seed is given)."""
        self.faults = faults
        self.rng = random.Random(faults.seed)


STATE_KEY = web.AppKey("asyncreply_state", ServerState)


# --------------------------------------------------------------------------- helpers
def _error(
    status: int,
    code: str,
    message: str,
    *,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    return web.json_response(
        error_body(code, message, details), status=status, headers=dict(headers or {})
    )


class _HTTPError(Exception):
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
        self.response = _error(status, code, message, details=details, headers=headers)


def _state(request: web.Request) -> ServerState:
    return request.app[STATE_KEY]


def _validation_details(exc: ValidationError) -> Any:
    try:
        return json.loads(exc.json(include_url=False))
    except ValueError:
        return [
            {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False, include_context=False)
        ]


_CONTENT_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(;[ -~]*)?")


def _safe_content_type(value: str) -> str:
    """A handler's content type if it is well-formed, else ``application/octet-stream``."""
    return value if _CONTENT_TYPE.fullmatch(value) else "application/octet-stream"


def _safe_filename(name: str | None) -> str:
    """A filename safe inside ``Content-Disposition: attachment; filename="…"``."""
    cleaned = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in name or "")
    return cleaned[:200] or "result.bin"


def _canonical_hash(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _parse_wait(raw: str | None, config: ServerConfig) -> float | None:
    """Parse ``?wait=N``: ``None`` when absent; capped at ``max_wait``; 400 when invalid."""
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise _HTTPError(400, "invalid_wait", "wait must be a number of seconds") from None
    if math.isnan(value) or value < 0:
        raise _HTTPError(400, "invalid_wait", "wait must be a non-negative number of seconds")
    return min(value, config.max_wait)


def _parse_prefer_wait(request: web.Request, config: ServerConfig) -> float | None:
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


def _idempotency_key(request: web.Request) -> str | None:
    raw = request.headers.get("Idempotency-Key")
    if raw is None:
        return None
    key = raw.strip()
    # Both the bare form and the quoted form (an RFC 8941 sf-string) are accepted.
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key or len(key) > _MAX_KEY_LEN or not key.isprintable():
        raise _HTTPError(
            400,
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1..{_MAX_KEY_LEN} printable characters",
        )
    return key


def _encode_cursor(seq: int) -> str:
    raw = json.dumps({"v": 1, "before": seq}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
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
        raise _HTTPError(
            400, "invalid_cursor", "cursor is not a cursor this server issued"
        ) from None


def _job_id(request: web.Request) -> str:
    job_id = request.match_info["job_id"]
    if not _JOB_ID.fullmatch(job_id):
        raise _HTTPError(404, "not_found", "no such job")
    return job_id


def _lookup(request: web.Request, job_id: str) -> JobRecord:
    state = _state(request)
    try:
        return state.manager.lookup(job_id, _user(request))
    except JobNotFound:
        raise _HTTPError(404, "not_found", "no such job") from None
    except JobExpired:
        raise _HTTPError(410, "expired", "the job has expired") from None


def _links(job: JobRecord) -> dict[str, str]:
    return {"Link": f'</jobs/{job.id}/events>; rel="events"'}


def _document(state: ServerState, job: JobRecord) -> dict[str, Any]:
    doc = status_document(job, state.manager.clock(), state.config)
    if state.config.dialect == "status-code":
        doc["state"] = status_code_state(job)
    return doc


def _status_response(state: ServerState, job: JobRecord) -> web.Response:
    """Answer what ``GET /jobs/{id}`` answers for ``job`` in the configured dialect."""
    config = state.config
    now = state.manager.clock()
    doc = _document(state, job)
    headers = _links(job)
    headers.update(retry_headers(retry_hint(job, now, config)))
    result_url = f"/jobs/{job.id}/result"
    if config.dialect == "reference":
        if job.state is JobState.COMPLETED:
            if config.completion_style == "inline" and job.result_kind == "json":
                result = state.manager.result(job)
                if result is not None:
                    doc["result"] = json.loads(result.data)
                    headers["Content-Location"] = result_url
                    return web.json_response(doc, status=200, headers=headers)
            headers["Location"] = result_url
            return web.json_response(doc, status=303, headers=headers)
        return web.json_response(doc, status=200, headers=headers)
    # status-code dialect: the HTTP status carries the state.
    if job.state is JobState.COMPLETED:
        if job.result_kind == "json":
            result = state.manager.result(job)
            if result is None:
                return _error(410, "expired", "the result has expired")
            headers["Content-Location"] = result_url
            return web.Response(
                body=result.data, status=200, content_type="application/json", headers=headers
            )
        headers["Location"] = result_url
        return web.json_response(doc, status=303, headers=headers)
    if job.state is JobState.FAILED:
        return web.json_response(doc, status=500, headers=headers)
    if job.state is JobState.CANCELLED:
        doc["error"] = {"code": "cancelled", "message": "the job was cancelled"}
        return web.json_response(doc, status=409, headers=headers)
    return web.json_response(doc, status=202, headers=headers)


def _accepted_response(
    state: ServerState, job: JobRecord, *, replayed: bool = False
) -> web.Response:
    """The 202 answer to a submission (or its idempotent replay)."""
    config = state.config
    now = state.manager.clock()
    hint = retry_hint(job, now, config)
    if hint is None:
        hint = config.retry_after_min
    eta = estimated_completion(job, now)
    wait = max(eta - now, 0.0) if eta is not None else hint
    base = f"/jobs/{job.id}"
    body: dict[str, Any] = {
        "jobId": job.id,
        "status": JobState.PENDING.value,
        "statusUrl": base,
        "eventsUrl": f"{base}/events",
        "cancelUrl": base,
        "estimatedWaitTime": round(wait, 3),
    }
    if config.dialect == "status-code":
        body["state"] = "pending"
    if job.original_job_id is not None:
        body["originalJobId"] = job.original_job_id
    headers = {"Location": base, **_links(job), **retry_headers(hint)}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return web.json_response(body, status=202, headers=headers)


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise _HTTPError(413, "payload_too_large", f"the body exceeds {limit} bytes")
    buf = bytearray()
    async for chunk in request.content.iter_chunked(65536):
        buf += chunk
        if len(buf) > limit:
            raise _HTTPError(413, "payload_too_large", f"the body exceeds {limit} bytes")
    return bytes(buf)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_json(body: bytes) -> Any:
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
        # JSON escapes can smuggle in lone surrogates ("\udcff"), which are not Unicode
        # text (RFC 8259 §8.2) and would break every later encoding step: refuse them here.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeError, RecursionError):
        raise _HTTPError(400, "invalid_json", "the body is not valid JSON") from None
    return value


class _Callback(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl
    events: list[str] | None = Field(default=None, max_length=10)

    @field_validator("events")
    @classmethod
    def _known_events(cls, value: list[str] | None) -> list[str] | None:
        allowed = ALWAYS_SENT | OPTIONAL_EVENTS
        for event in value or ():
            if event not in allowed:
                raise ValueError(f"unknown event {event!r}; allowed: {sorted(allowed)}")
        return value


class _Submission(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=100)
    input: Any = Field(default_factory=dict)
    callback: _Callback | None = None
    notBefore: datetime | None = None


# --------------------------------------------------------------------------- routes
async def submit_job(request: web.Request) -> web.StreamResponse:
    """``POST /jobs``."""
    state = _state(request)
    config = state.config
    user = _user(request)
    if not _JSON_TYPE.match(request.content_type or ""):
        return _error(415, "unsupported_media_type", "the body must be application/json")
    key = _idempotency_key(request)
    if key is None and config.require_idempotency_key:
        return _error(400, "idempotency_key_required", "an Idempotency-Key header is required")
    body = _parse_json(await _read_body(request, config.max_body_bytes))
    body_hash = _canonical_hash(body) if key is not None else ""
    if key is not None:
        rec = state.manager.idempotency_record(user, key)
        if rec is not None:
            if rec.body_hash != body_hash:
                return _error(
                    422,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used with a different request body",
                )
            job = state.manager.get(rec.job_id)
            if job is None:
                return _error(410, "expired", "the job created with this key has expired")
            return _accepted_response(state, job, replayed=True)
    try:
        sub = _Submission.model_validate(body)
    except ValidationError as exc:
        return _error(
            400, "invalid_input", "the request body is invalid", details=_validation_details(exc)
        )
    if sub.type not in state.manager.types:
        return _error(
            400,
            "unknown_type",
            f"unknown job type {sub.type!r}",
            details={"known": sorted(state.manager.types)},
        )
    try:
        state.manager.validate_input(sub.type, sub.input)
    except ValidationError as exc:
        return _error(
            400, "invalid_input", "the job input is invalid", details=_validation_details(exc)
        )
    except (TypeError, ValueError) as exc:
        # A custom input model whose validator raised something pydantic does not wrap.
        return _error(400, "invalid_input", f"the job input is invalid: {type(exc).__name__}")
    not_before: float | None = None
    if sub.notBefore is not None:
        nb = sub.notBefore
        if nb.tzinfo is None:
            nb = nb.replace(tzinfo=timezone.utc)
        not_before = nb.timestamp()
        if not_before > state.manager.clock() + _MAX_NOT_BEFORE:
            return _error(400, "invalid_input", "notBefore is too far in the future")
    callback = sub.callback.model_dump(mode="json") if sub.callback is not None else None
    job = state.manager.submit(
        owner=user, type_name=sub.type, input=sub.input, callback=callback, not_before=not_before
    )
    if key is not None:
        state.manager.remember_key(user, key, body_hash, job.id)
    wait = _parse_prefer_wait(request, config)
    if wait is not None and wait > 0:
        await state.manager.wait_terminal(job.id, wait)
        current = state.manager.get(job.id)
        if current is not None and current.state.terminal:
            resp = _status_response(state, current)
            resp.headers["Preference-Applied"] = f"wait={format_seconds(wait)}"
            return resp
    return _accepted_response(state, job)


async def get_job(request: web.Request) -> web.StreamResponse:
    """``GET /jobs/{id}`` (``?wait=N``: long poll)."""
    state = _state(request)
    job_id = _job_id(request)
    wait = _parse_wait(request.query.get("wait"), state.config)
    if wait is None:
        wait = _parse_prefer_wait(request, state.config)
    job = _lookup(request, job_id)
    if wait is not None and wait > 0 and not job.state.terminal:
        await state.manager.wait_change(job_id, state.manager.version(job_id), wait)
        job = _lookup(request, job_id)
    resp = _status_response(state, job)
    if wait is not None:
        resp.headers["Preference-Applied"] = f"wait={format_seconds(wait)}"
    return resp


async def get_result(request: web.Request) -> web.StreamResponse:
    """``GET /jobs/{id}/result``."""
    state = _state(request)
    job = _lookup(request, _job_id(request))
    if job.state is not JobState.COMPLETED:
        return _error(
            409,
            "not_completed",
            f"the job is {job.state.value}, not completed",
            details={"status": job.state.value},
        )
    result = state.manager.result(job)
    if result is None:
        return _error(410, "expired", "the result has expired")
    if result.kind == "file":
        filename = _safe_filename(result.filename)
        return web.Response(
            body=result.data,
            headers={
                "Content-Type": _safe_content_type(result.content_type),
                "Content-Disposition": f'attachment; filename="{filename}"',
            },
        )
    return web.Response(body=result.data, content_type="application/json")


async def cancel_job(request: web.Request) -> web.StreamResponse:
    """``DELETE /jobs/{id}``."""
    state = _state(request)
    job = _lookup(request, _job_id(request))
    if not state.manager.cancel(job):
        return _error(
            409,
            "already_terminal",
            f"the job is already {job.state.value}",
            details={"status": job.state.value},
        )
    return web.json_response(_document(state, job), status=200, headers=_links(job))


async def retry_job(request: web.Request) -> web.StreamResponse:
    """``POST /jobs/{id}/retry``."""
    state = _state(request)
    job = _lookup(request, _job_id(request))
    if job.state is not JobState.FAILED or job.error is None or not job.error.retryable:
        return _error(
            409,
            "not_retryable",
            "only a failed job with a retryable error can be retried",
            details={"status": job.state.value},
        )
    if job.type not in state.manager.types:
        return _error(409, "not_retryable", f"job type {job.type!r} is no longer served")
    new = state.manager.submit(
        owner=job.owner,
        type_name=job.type,
        input=job.input,
        callback=job.callback,
        original_job_id=job.id,
    )
    return _accepted_response(state, new)


async def list_jobs(request: web.Request) -> web.StreamResponse:
    """``GET /jobs?status=&limit=&cursor=``."""
    state = _state(request)
    q = request.query
    status: JobState | None = None
    if "status" in q:
        try:
            status = JobState(q["status"])
        except ValueError:
            return _error(
                400, "invalid_status", f"status must be one of {[s.value for s in JobState]}"
            )
    limit = 20
    if "limit" in q:
        raw = q["limit"]
        if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= 100:
            return _error(400, "invalid_limit", "limit must be an integer from 1 to 100")
        limit = int(raw)
    before = _decode_cursor(q["cursor"]) if "cursor" in q else None
    page, next_seq = state.manager.list_jobs(
        _user(request), state=status, limit=limit, before_seq=before
    )
    return web.json_response(
        {
            "jobs": [_document(state, j) for j in page],
            "nextCursor": _encode_cursor(next_seq) if next_seq is not None else None,
        }
    )


def _sse_event(event_id: int, event: str, data: dict[str, Any]) -> bytes:
    payload = json.dumps(data, separators=(",", ":"))
    return f"id: {event_id}\nevent: {event}\ndata: {payload}\n\n".encode()


async def job_events(request: web.Request) -> web.StreamResponse:
    """``GET /jobs/{id}/events``: Server-Sent Events."""
    state = _state(request)
    manager = state.manager
    job_id = _job_id(request)
    job = _lookup(request, job_id)
    last_id: int | None = None
    raw_last = request.headers.get("Last-Event-ID", request.query.get("lastEventId"))
    if raw_last is not None and _DIGITS.fullmatch(raw_last.strip()):
        last_id = int(raw_last.strip())
    # Replay only what the log still holds; otherwise start afresh with the current state.
    if last_id is not None and (
        last_id > job.event_seq or last_id + 1 < manager.first_logged_event(job_id)
    ):
        last_id = None
    cut_after = state.faults.sse_cut_after
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await resp.prepare(request)
    sent = 0

    async def send(chunk: bytes) -> bool:
        """Write an event; ``False`` when the stream must end (fault cut)."""
        nonlocal sent
        await resp.write(chunk)
        sent += 1
        return cut_after is None or sent < cut_after

    try:
        await resp.write(f"retry: {state.config.sse_retry_ms}\n\n".encode())
        if last_id is None:
            doc = manager.document(job)
            if job.state.terminal:
                if await send(_sse_event(max(job.event_seq - 1, 0), "status", doc)):
                    await send(_sse_event(job.event_seq, "complete", doc))
                return resp
            if not await send(_sse_event(job.event_seq, "status", doc)):
                return resp
            last_id = job.event_seq
        keepalive = state.config.sse_keepalive
        while not manager.closing:
            version = manager.version(job_id)
            for ev in manager.events_after(job_id, last_id):
                last_id = ev.id
                if not await send(_sse_event(ev.id, ev.event, ev.data)) or ev.event == "complete":
                    return resp
            current = manager.get(job_id)
            if current is None or current.state.terminal:
                return resp
            await manager.wait_change(job_id, version, keepalive)
            if manager.version(job_id) == version and not manager.closing:
                await resp.write(b": keepalive\n\n")
    except ConnectionResetError:
        # The client went away; nothing more to send.
        pass
    return resp


async def list_deliveries(request: web.Request) -> web.StreamResponse:
    """``GET /webhooks/deliveries?status=&jobId=``: the caller's webhook deliveries."""
    state = _state(request)
    status = request.query.get("status")
    if status is not None and status not in ("pending", "delivered", "failed"):
        return _error(400, "invalid_status", "status must be pending, delivered or failed")
    job_id = request.query.get("jobId")
    from .documents import rfc3339

    items = [
        d.to_json(rfc3339)
        for d in state.webhooks.deliveries.values()
        if d.owner == _user(request)
        and (status is None or d.status == status)
        and (job_id is None or d.job_id == job_id)
    ]
    return web.json_response({"deliveries": items})


async def health(request: web.Request) -> web.StreamResponse:
    """``GET /health``: liveness (no auth, no faults)."""
    return web.json_response({"status": "ok"})


# --------------------------------------------------------------------------- middlewares
_HandlerFn = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors_and_counts(request: web.Request, handler: _HandlerFn) -> web.StreamResponse:
    """Count requests; turn every error into the JSON error document; never leak a 500 trace."""
    state = _state(request)
    state.total_requests += 1
    state.path_counts[f"{request.method} {request.path}"] += 1
    route = request.match_info.route.resource
    template = route.canonical if route is not None else request.path
    state.route_counts[f"{request.method} {template}"] += 1
    try:
        return await handler(request)
    except _HTTPError as exc:
        return exc.response
    except web.HTTPException as exc:
        if exc.status == 404:
            return _error(404, "not_found", "no such resource")
        if exc.status == 405:
            return _error(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed here",
                headers={"Allow": exc.headers.get("Allow", "")},
            )
        if exc.status == 413:
            return _error(413, "payload_too_large", "the body is too large")
        raise
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _error(500, "internal_error", "the server hit an unexpected error")


@web.middleware
async def _faults(request: web.Request, handler: _HandlerFn) -> web.StreamResponse:
    """Inject the configured faults into the job endpoints (``/jobs`` and below)."""
    state = _state(request)
    faults = state.faults
    if not faults.active or not (request.path == "/jobs" or request.path.startswith("/jobs/")):
        return await handler(request)
    if faults.latency:
        await asyncio.sleep(faults.latency)
    draw = state.rng.random()
    if draw < faults.p_drop:
        transport = request.transport
        if transport is not None:
            transport.abort()
        raise asyncio.CancelledError
    draw -= faults.p_drop
    if draw < faults.p_503:
        return _error(
            503,
            "unavailable",
            "injected fault: service unavailable",
            headers={"Retry-After": str(faults.retry_after)},
        )
    draw -= faults.p_503
    if draw < faults.p_500:
        return _error(500, "internal_error", "injected fault: internal error")
    return await handler(request)


def _resolve_user(request: web.Request) -> str | None:
    """Resolve ``Authorization: Bearer <token>`` to a user name (``None``: unauthorized)."""
    tokens = _state(request).config.tokens
    header = request.headers.get("Authorization")
    if header is None:
        return "anonymous" if tokens is None else None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not _TOKEN.fullmatch(token):
        return None
    if tokens is None:
        return token
    user: str | None = None
    for known, name in tokens.items():
        # Constant-time comparison: do not leak how much of a token matched.
        if hmac.compare_digest(known.encode(), token.encode()):
            user = name
    return user


def _user(request: web.Request) -> str:
    """The authenticated user of a request (the auth middleware has vouched for it)."""
    user = _resolve_user(request)
    if user is None:
        raise _HTTPError(401, "unauthorized", "a valid bearer token is required")
    return user


@web.middleware
async def _auth(request: web.Request, handler: _HandlerFn) -> web.StreamResponse:
    """Answer 401 unless the request carries acceptable credentials."""
    if request.path != "/health" and _resolve_user(request) is None:
        return _error(
            401,
            "unauthorized",
            "a valid bearer token is required",
            headers={"WWW-Authenticate": 'Bearer realm="asyncreply"'},
        )
    return await handler(request)


# --------------------------------------------------------------------------- factory
def _make_store(config: ServerConfig) -> Store:
    if config.store == "sqlite":
        return SqliteStore(config.sqlite_path)
    return MemoryStore()


def create_app(
    config: ServerConfig | None = None,
    *,
    handlers: Mapping[str, Handler | JobType] | None = None,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """Build the reference server application.

    Args:
        config: the server configuration (defaults: :class:`ServerConfig`).
        handlers: extra job types, merged over the built-ins (``sleep``, ``report``,
            ``echo``, ``fail``); values are handler functions or :class:`JobType`.
        clock: the wall clock (epoch seconds) used for every timestamp and TTL.

    Returns:
        An :class:`aiohttp.web.Application`; run it with ``web.run_app`` or an
        ``AppRunner``. Its live state is ``app[STATE_KEY]``.

    Example:
        >>> from aiohttp import web
        >>> app = create_app(ServerConfig(workers=2))
        >>> isinstance(app, web.Application)
        True
    """
    config = config if config is not None else ServerConfig()
    all_handlers: dict[str, Handler | JobType] = dict(BUILTIN_HANDLERS)
    all_handlers.update(handlers or {})
    sender = WebhookSender(config, clock=clock)
    manager = JobManager(config, all_handlers, _make_store(config), clock=clock, notifier=sender)
    state = ServerState(
        config=config,
        manager=manager,
        webhooks=sender,
        faults=config.faults,
        rng=random.Random(config.faults.seed),
    )
    app = web.Application(
        middlewares=[
            access_log(_resolve_user, hash_users=config.tokens is None),
            _errors_and_counts,
            _faults,
            _auth,
        ],
        client_max_size=max(config.max_body_bytes, 1024) * 2,
    )
    app[STATE_KEY] = state

    async def lifecycle(app: web.Application) -> Any:
        state.loop = asyncio.get_running_loop()
        await sender.start()
        try:
            await manager.start()
        except BaseException:
            await sender.stop()
            raise
        yield
        await manager.stop()
        await sender.stop()

    async def on_shutdown(app: web.Application) -> None:
        manager.begin_shutdown()

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(on_shutdown)
    app.router.add_get("/health", health)
    app.router.add_post("/jobs", submit_job)
    app.router.add_get("/jobs", list_jobs)
    app.router.add_get("/jobs/{job_id}", get_job)
    app.router.add_delete("/jobs/{job_id}", cancel_job)
    app.router.add_get("/jobs/{job_id}/result", get_result)
    app.router.add_post("/jobs/{job_id}/retry", retry_job)
    app.router.add_get("/jobs/{job_id}/events", job_events)
    app.router.add_get("/webhooks/deliveries", list_deliveries)
    return app
