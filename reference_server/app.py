"""The HTTP layer of the reference server (aiohttp.web): routes, users, faults, dialects.

``create_app`` wires a :class:`~reference_server.jobs.JobManager`, a store and the webhook
sender into an :class:`aiohttp.web.Application`. Everything on the wire follows
``docs/protocol.md``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

from .access_log import access_log
from .auth import auth, resolve_user, user_of
from .config import ServerConfig
from .documents import (
    estimated_completion,
    format_seconds,
    retry_headers,
    retry_hint,
    safe_content_type,
    safe_filename,
    status_code_state,
)
from .event_stream import job_events
from .job_lookup import job_id_of, lookup
from .job_types import BUILTIN_HANDLERS
from .jobs import Handler, JobManager, JobRejected, JobType
from .middlewares import cors, cors_headers, errors_and_counts, inject_faults
from .openapi import OPENAPI_KEY, OPENAPI_PATH, build_document, openapi_document, server_version
from .records import JobRecord, JobState
from .result_stream import json_with_raw_result, stream
from .server_state import STATE_KEY, ServerState, state_of
from .store import KeyTaken, MemoryStore, SqliteStore, Store
from .stream_tokens import EVENTS_ROUTE, StreamTokens
from .timing import FINISHED_HEADER, AnswerTimes
from .tracing import tracing
from .uploads import accepts_upload, unsupported_media_type, upload_submission
from .webhooks import ALWAYS_SENT, OPTIONAL_EVENTS, WebhookSender
from .wire import (
    canonical_hash,
    decode_cursor,
    encode_cursor,
    idempotency_key,
    parse_json,
    parse_not_before,
    parse_prefer_wait,
    parse_wait,
    read_body,
    validate_submission,
)
from .wire import error as _error

__all__ = ["STATE_KEY", "ServerState", "create_app"]

log = logging.getLogger("reference_server")

# ASCII digits only (str.isdigit() also accepts "²", which int() refuses), bounded length.
_DIGITS = re.compile(r"[0-9]{1,18}")
_JSON_TYPE = re.compile(r"^application/([a-z0-9.+-]+\+)?json$")


# --------------------------------------------------------------------------- helpers
def _links(job: JobRecord) -> dict[str, str]:
    return {"Link": f'</jobs/{job.id}/events>; rel="events"'}


def _document(state: ServerState, job: JobRecord) -> dict[str, Any]:
    doc = state.manager.document(job)
    if state.config.dialect == "status-code":
        doc["state"] = status_code_state(job)
    if state.stream_tokens is not None:
        state.stream_tokens.add_to(doc, job.owner, job.id)
    return doc


def _listed_document(state: ServerState, job: JobRecord) -> dict[str, Any]:
    """A job's document in a listing; one job that cannot render never fails the page."""
    try:
        return _document(state, job)
    except Exception:
        log.exception("job %s does not render; listed in its minimal form", job.id)
        return {"jobId": job.id, "type": job.type, "status": job.state.value}


async def _status_response(state: ServerState, job: JobRecord) -> web.Response:
    """Answer what ``GET /jobs/{id}`` answers for ``job`` in the configured dialect."""
    config = state.config
    now = state.manager.clock()
    doc = _document(state, job)
    headers = _links(job)
    headers.update(retry_headers(retry_hint(job, now, config)))
    if config.timing_headers and job.finished_at is not None:
        # The precise moment the job ended, for measuring sub-millisecond detection lag, and
        # when its first final answer was written (timing.py).
        headers[FINISHED_HEADER] = f"{job.finished_at:.6f}"
        headers.update(state.answer_times.header(job.id))
    result_url = f"/jobs/{job.id}/result"
    if config.dialect == "reference":
        if job.state is JobState.COMPLETED:
            if config.completion_style == "inline" and job.result_kind == "json":
                result = await state.manager.result(job)
                if result is not None:
                    headers["Content-Location"] = result_url
                    return stream(
                        json_with_raw_result(doc, result.data),
                        content_type="application/json",
                        write_timeout=config.write_timeout,
                        headers=headers,
                    )
            headers["Location"] = result_url
            return web.json_response(doc, status=303, headers=headers)
        return web.json_response(doc, status=200, headers=headers)
    # status-code dialect: the HTTP status carries the state.
    if job.state is JobState.COMPLETED:
        if job.result_kind == "json":
            result = await state.manager.result(job)
            if result is None:
                return _error(410, "expired", "the result has expired")
            headers["Content-Location"] = result_url
            return stream(
                [result.data],
                content_type="application/json",
                write_timeout=config.write_timeout,
                headers=headers,
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
    state: ServerState, job: JobRecord, *, current: bool = False
) -> web.Response:
    """The 202 answer to a submission: a receipt (``"status": "pending"``), or with
    ``current`` the job's status document at this moment (what ``GET /jobs/{id}`` gives):
    the answer to a held submission whose job is not final when the hold ends, or to an
    idempotent replay (final or not).
    """
    config = state.config
    now = state.manager.clock()
    hint = retry_hint(job, now, config)
    if hint is None:
        hint = config.retry_after_min
    base = f"/jobs/{job.id}"
    body: dict[str, Any]
    if current:
        body = _document(state, job)
    else:
        eta = estimated_completion(job, now)
        wait = max(eta - now, 0.0) if eta is not None else hint
        body = {
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
        if state.stream_tokens is not None:
            state.stream_tokens.add_to(body, job.owner, job.id)
    headers = {"Location": base, **_links(job), **retry_headers(hint)}
    return web.json_response(body, status=202, headers=headers)


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


async def _replayed_job(
    state: ServerState, user: str, key: str, body_hash: str
) -> JobRecord | web.Response | None:
    """The job a known ``Idempotency-Key`` created, or the error that answers its replay
    (``None``: the key is not known)."""
    rec = await state.manager.idempotency_record(user, key)
    if rec is None:
        return None
    if rec.body_hash != body_hash:
        return _error(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request body",
        )
    job = await state.manager.get(rec.job_id)
    if job is None:
        return _error(410, "expired", "the job created with this key has expired")
    return job


async def _answer_now(
    request: web.Request,
    state: ServerState,
    job: JobRecord,
    wait: float | None,
    *,
    replayed: bool = False,
) -> web.StreamResponse:
    """The answer to a submission of ``job`` as the job is now (protocol §5).

    Held (``Prefer: wait``, ``wait`` > 0) until the job ends or ``wait`` seconds pass: if it
    ended, what ``GET /jobs/{id}`` answers (303 / 200 / 500 / 409); otherwise a 202 that still
    says it was held (RFC 7240 §3), so a client goes straight to its wait instead of first
    sleeping the Retry-After hint. Not held (an idempotent replay without ``Prefer: wait``):
    the 202 a submission answers, whatever the job's state. Either 202's body is the job's
    current document. ``replayed``: marked ``Idempotent-Replayed: true``.
    """
    config = state.config
    held = wait if wait is not None and wait > 0 else None
    if held is not None:
        await state.manager.wait_terminal(job.id, held)
        job = await state.manager.get(job.id) or job
    final = held is not None and job.state.is_terminal
    if final:
        resp = await _status_response(state, job)
    else:
        resp = _accepted_response(state, job, current=True)
    if replayed:
        resp.headers["Idempotent-Replayed"] = "true"
    if held is not None:
        resp.headers["Preference-Applied"] = f"wait={format_seconds(held)}"
    if config.timing_headers and final:
        await state.answer_times.send(request, resp, job.id)
    return resp


# --------------------------------------------------------------------------- routes
async def submit_job(request: web.Request) -> web.StreamResponse:
    """``POST /jobs``."""
    state = state_of(request)
    config = state.config
    user = user_of(request)
    is_json = bool(_JSON_TYPE.match(request.content_type or ""))
    if not is_json and not accepts_upload(request):
        return unsupported_media_type()
    key = idempotency_key(request)
    if key is None and config.require_idempotency_key:
        return _error(400, "idempotency_key_required", "an Idempotency-Key header is required")
    raw = await read_body(request, config.max_body_bytes, config.body_timeout)
    if is_json:
        body = parse_json(raw, max_depth=config.max_json_depth)
    else:  # a form or a raw upload (uploads.py): the same document as a JSON submission
        body = upload_submission(request, raw)
    body_hash = canonical_hash(body) if key is not None else ""
    # A replay answers what its job is now (protocol §5), held as a first submission is.
    wait = parse_prefer_wait(request, config)
    known = await _replayed_job(state, user, key, body_hash) if key is not None else None
    if known is not None:
        if isinstance(known, web.Response):
            return known
        return await _answer_now(request, state, known, wait, replayed=True)
    sub = validate_submission(_Submission, body, state.manager)
    if sub.callback is not None and (
        refused := state.webhooks.refuse_callback(str(sub.callback.url))
    ):
        return _error(400, "callback_url_refused", refused)
    if sub.callback is not None and (full := await state.webhooks.backlog_refusal(user)):
        return _error(429, "webhook_backlog_full", full, headers={"Retry-After": "1"})
    not_before = None
    if sub.notBefore is not None:
        not_before = parse_not_before(sub.notBefore, state.manager.clock())
    callback = sub.callback.model_dump(mode="json") if sub.callback is not None else None
    try:
        job = await state.manager.submit(
            owner=user,
            type_name=sub.type,
            input=sub.input,
            callback=callback,
            not_before=not_before,
            idempotency=(key, body_hash) if key is not None else None,
            hold=wait is not None and wait > 0,
        )
    except JobRejected as exc:
        return _error(400, "invalid_input", str(exc))
    except KeyTaken:  # another instance committed the same key first: answer as it would
        known = await _replayed_job(state, user, key or "", body_hash)
        if known is None:
            return _error(409, "conflict", "the Idempotency-Key is being used; retry")
        if isinstance(known, web.Response):
            return known
        return await _answer_now(request, state, known, wait, replayed=True)
    if wait is None or wait <= 0:
        return _accepted_response(state, job)
    return await _answer_now(request, state, job, wait)


async def get_job(request: web.Request) -> web.StreamResponse:
    """``GET /jobs/{id}`` (``?wait=N``: long poll)."""
    state = state_of(request)
    job_id = job_id_of(request)
    wait = parse_wait(request.query.get("wait"), state.config)
    if wait is None:
        wait = parse_prefer_wait(request, state.config)
    job = await lookup(request, job_id)
    if wait is not None and wait > 0 and not job.state.is_terminal:
        await state.manager.wait_change(job_id, state.manager.version(job_id), wait)
        job = await lookup(request, job_id)
    resp = await _status_response(state, job)
    if wait is not None:
        resp.headers["Preference-Applied"] = f"wait={format_seconds(wait)}"
    if state.config.timing_headers and job.state.is_terminal:
        await state.answer_times.send(request, resp, job.id)
    return resp


async def get_result(request: web.Request) -> web.StreamResponse:
    """``GET /jobs/{id}/result``."""
    state = state_of(request)
    job = await lookup(request, job_id_of(request))
    if job.state is not JobState.COMPLETED:
        return _error(
            409,
            "not_completed",
            f"the job is {job.state.value}, not completed",
            details={"status": job.state.value},
        )
    result = await state.manager.result(job)
    if result is None:
        return _error(410, "expired", "the result has expired")
    # Streamed in chunks at the reader's pace: a reader that does not read holds one chunk,
    # not a copy of the result (issue 19 item 4).
    if result.kind == "file":
        filename = safe_filename(result.filename)
        return stream(
            [result.data],
            content_type=safe_content_type(result.content_type),
            write_timeout=state.config.write_timeout,
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return stream(
        [result.data], content_type="application/json", write_timeout=state.config.write_timeout
    )


async def cancel_job(request: web.Request) -> web.StreamResponse:
    """``DELETE /jobs/{id}``."""
    state = state_of(request)
    job = await lookup(request, job_id_of(request))
    if not await state.manager.cancel(job):
        return _error(
            409,
            "already_terminal",
            f"the job is already {job.state.value}",
            details={"status": job.state.value},
        )
    return web.json_response(_document(state, job), status=200, headers=_links(job))


async def retry_job(request: web.Request) -> web.StreamResponse:
    """``POST /jobs/{id}/retry``."""
    state = state_of(request)
    job = await lookup(request, job_id_of(request))
    if job.state is not JobState.FAILED or job.error is None or not job.error.retryable:
        return _error(
            409,
            "not_retryable",
            "only a failed job with a retryable error can be retried",
            details={"status": job.state.value},
        )
    if job.type not in state.manager.types:
        return _error(409, "not_retryable", f"job type {job.type!r} is no longer served")
    new = await state.manager.submit(
        owner=job.owner,
        type_name=job.type,
        input=job.input,
        callback=job.callback,
        original_job_id=job.id,
    )
    return _accepted_response(state, new)


async def list_jobs(request: web.Request) -> web.StreamResponse:
    """``GET /jobs?status=&limit=&cursor=``."""
    state = state_of(request)
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
    before = decode_cursor(q["cursor"]) if "cursor" in q else None
    page, next_seq = await state.manager.list_jobs(
        user_of(request), state=status, limit=limit, before_seq=before
    )
    return web.json_response(
        {
            "jobs": [_listed_document(state, j) for j in page],
            "nextCursor": encode_cursor(next_seq) if next_seq is not None else None,
        }
    )


async def list_deliveries(request: web.Request) -> web.StreamResponse:
    """``GET /webhooks/deliveries?status=&jobId=``: the caller's webhook deliveries."""
    state = state_of(request)
    status = request.query.get("status")
    if status is not None and status not in ("pending", "delivered", "failed"):
        return _error(400, "invalid_status", "status must be pending, delivered or failed")
    job_id = request.query.get("jobId")
    from .documents import rfc3339

    items = [
        d.to_json(rfc3339)
        for d in await state.webhooks.records_of(user_of(request))
        if (status is None or d.status == status) and (job_id is None or d.job_id == job_id)
    ]
    return web.json_response({"deliveries": items})


async def health(request: web.Request) -> web.StreamResponse:
    """``GET /health``: liveness (no auth, no faults)."""
    return web.json_response({"status": "ok"})


# --------------------------------------------------------------------------- factory
def _make_store(config: ServerConfig) -> Store:
    if config.store == "sqlite":
        return SqliteStore(config.sqlite_path)
    if config.store == "redis":
        from .redis_store import RedisStore  # redis is imported only when asked for

        return RedisStore(
            config.redis_url,
            max_deliveries_per_owner=config.webhook_max_deliveries_per_owner,
            delivery_lease=config.job_lease,
        )
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
    store = _make_store(config)
    sender = WebhookSender(config, store=store.deliveries, clock=clock)
    manager = JobManager(config, all_handlers, store, clock=clock, notifier=sender)
    state = ServerState(
        config=config,
        manager=manager,
        webhooks=sender,
        faults=config.faults,
        rng=random.Random(config.faults.seed),
        stream_tokens=StreamTokens.for_config(config, clock),
        answer_times=AnswerTimes(clock),
    )
    app = web.Application(
        middlewares=[
            tracing(),
            access_log(resolve_user, hash_users=config.tokens is None),
            errors_and_counts(state),
            cors(state),
            inject_faults(state),
            auth,
        ],
        client_max_size=max(config.max_body_bytes, 1024) * 2,
    )
    app[STATE_KEY] = state
    app[OPENAPI_KEY] = build_document(
        config,
        envelope=_Submission,
        inputs={name: job_type.adapter for name, job_type in manager.types.items()},
        version=server_version(),
    )

    async def lifecycle(app: web.Application) -> Any:
        state.loop = asyncio.get_running_loop()
        await sender.start()
        try:
            await manager.start()
        except BaseException:
            await sender.stop()
            raise
        yield
        # Deliveries stop first: the store they write to closes with the manager.
        await sender.stop()
        await manager.stop()

    async def on_shutdown(app: web.Application) -> None:
        manager.begin_shutdown()

    if config.cors_origins:
        app.on_response_prepare.append(cors_headers(state))
    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(on_shutdown)
    app.router.add_get("/health", health)
    app.router.add_get(OPENAPI_PATH, openapi_document)
    app.router.add_post("/jobs", submit_job)
    app.router.add_get("/jobs", list_jobs)
    app.router.add_get("/jobs/{job_id}", get_job)
    app.router.add_delete("/jobs/{job_id}", cancel_job)
    app.router.add_get("/jobs/{job_id}/result", get_result)
    app.router.add_post("/jobs/{job_id}/retry", retry_job)
    app.router.add_get(EVENTS_ROUTE, job_events)
    app.router.add_get("/webhooks/deliveries", list_deliveries)
    return app
