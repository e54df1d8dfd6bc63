"""Typed configuration of the reference server: one pydantic model for every behaviour.

Every field is also a command-line flag of ``python -m reference_server`` (see
:mod:`reference_server.__main__`). Durations are float seconds so tests can use milliseconds.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["DEV_WEBHOOK_SECRET", "FaultConfig", "ServerConfig"]

#: The development webhook secret (Standard Webhooks ``whsec_`` form: base64 of
#: ``asyncreply-dev-webhook-secret``). Never use it outside development and tests.
DEV_WEBHOOK_SECRET = "whsec_YXN5bmNyZXBseS1kZXYtd2ViaG9vay1zZWNyZXQ="
_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._~-]+)(:[0-9]{1,5})?")


class FaultConfig(BaseModel):
    """Fault injection for client tests; everything is off by default.

    Faults apply to the job endpoints (``/jobs`` and below) only, never to ``/health`` or
    ``/webhooks/deliveries``. For each request the server first adds ``latency``, then draws
    one random number to decide between a dropped connection, a 503 and a 500 (in that
    order of precedence).

    Example:
        >>> FaultConfig(p_503=0.2, retry_after=1, seed=7).p_503
        0.2
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    p_503: float = Field(default=0.0, ge=0.0, le=1.0, description="Probability of a 503 answer.")
    retry_after: int = Field(
        default=1, ge=0, le=3600, description="Retry-After (s) sent with a 503."
    )
    p_500: float = Field(default=0.0, ge=0.0, le=1.0, description="Probability of a 500 answer.")
    p_drop: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Probability of closing the connection unanswered."
    )
    latency: float = Field(
        default=0.0, ge=0.0, le=60.0, description="Seconds added to every answer."
    )
    sse_cut_after: int | None = Field(
        default=None, ge=1, description="End every SSE stream after this many events."
    )
    seed: int | None = Field(default=None, description="Seed of the fault random generator.")

    @property
    def active(self) -> bool:
        """Whether any fault is switched on."""
        return bool(self.p_503 or self.p_500 or self.p_drop or self.latency or self.sse_cut_after)


class ServerConfig(BaseModel):
    """Configuration of the reference server.

    Example:
        >>> cfg = ServerConfig(dialect="status-code", workers=2, job_ttl=60)
        >>> cfg.max_wait
        60.0
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(default="127.0.0.1", description="Interface to listen on.")
    port: int = Field(default=8080, ge=0, le=65535, description="TCP port (0: any free port).")
    dialect: Literal["reference", "status-code"] = Field(
        default="reference", description="How job states map onto HTTP status codes."
    )
    completion_style: Literal["redirect", "inline"] = Field(
        default="redirect", description="Completed jobs: 303 to the result, or 200 with it inline."
    )
    store: Literal["memory", "sqlite", "redis"] = Field(
        default="memory",
        description="Job storage backend (a redis:// URL means redis with that redis_url).",
    )
    sqlite_path: str = Field(
        default="asyncreply.sqlite3", description="Database file of the sqlite store."
    )
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="Server of the redis store: redis://host:port/db (rediss:// for TLS).",
    )
    workers: int = Field(default=4, ge=1, le=1024, description="Size of the worker pool.")
    max_attempts: int = Field(
        default=3, ge=1, le=100, description="Attempts per job for retryable failures."
    )
    retry_backoff: float = Field(
        default=0.5, ge=0.0, le=3600.0, description="Base of the exponential retry backoff (s)."
    )
    cancel_grace: float = Field(
        default=2.0,
        ge=0.0,
        le=3600.0,
        description="Seconds a cancelled handler may run on before its task is cancelled.",
    )
    job_ttl: float = Field(
        default=3600.0,
        gt=0.0,
        description="Seconds a finished job is kept before it expires (410).",
    )
    result_ttl: float = Field(
        default=3600.0, gt=0.0, description="Seconds a result is kept after completion."
    )
    idempotency_ttl: float = Field(
        default=86400.0, gt=0.0, description="Seconds an Idempotency-Key is remembered."
    )
    require_idempotency_key: bool = Field(
        default=False, description="Reject POST /jobs without an Idempotency-Key (400)."
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=64, le=1 << 30, description="Largest accepted request body."
    )
    max_json_depth: int = Field(
        default=64, ge=2, le=256, description="Deepest nesting of a JSON body (400 beyond)."
    )
    max_result_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024,
        le=1 << 31,
        description="Largest job result; a bigger one fails the job (result_too_large).",
    )
    max_result_rows: int = Field(
        default=100_000,
        ge=1,
        le=100_000_000,
        description="Most rows a job may generate (report); more fails it (result_too_large).",
    )
    header_timeout: float = Field(
        default=10.0,
        gt=0.0,
        le=3600.0,
        description="Seconds a new connection has to send its first request head.",
    )
    body_timeout: float = Field(
        default=30.0, gt=0.0, le=3600.0, description="Seconds to receive a request body (408)."
    )
    keepalive_timeout: float = Field(
        default=75.0,
        gt=0.0,
        le=3600.0,
        description="Seconds an idle keep-alive connection waits for its next request.",
    )
    write_timeout: float = Field(
        default=30.0,
        gt=0.0,
        le=3600.0,
        description="Seconds a result being sent may wait for a reader that reads nothing "
        "(the connection is then closed).",
    )
    max_connections: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="Open connections at most (None: the open-file limit minus 128).",
    )
    max_wait: float = Field(
        default=60.0, ge=0.0, le=3600.0, description="Cap of ?wait=N long polls and Prefer: wait=N."
    )
    retry_after_min: float = Field(
        default=0.05, ge=0.0, le=3600.0, description="Smallest Retry-After hint (s)."
    )
    retry_after_max: float = Field(
        default=30.0, ge=0.0, le=86400.0, description="Largest Retry-After hint (s)."
    )
    sse_keepalive: float = Field(
        default=15.0, gt=0.0, le=3600.0, description="Seconds between SSE keep-alive comments."
    )
    sse_retry_ms: int = Field(
        default=1000, ge=0, le=3_600_000, description="Reconnection delay announced to SSE clients."
    )
    job_lease: float = Field(
        default=5.0,
        gt=0.0,
        le=3600.0,
        description="Seconds a running job's lease lasts (shared stores): an instance that "
        "stops renewing it loses the job to another, which runs it again.",
    )
    instances: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Server processes sharing the port (SO_REUSEPORT); more than one needs "
        "the redis store.",
    )
    reuse_port: bool = Field(
        default=False, description="Bind with SO_REUSEPORT (set for each of --instances)."
    )
    cleanup_interval: float = Field(
        default=1.0, gt=0.0, le=3600.0, description="Seconds between expiry sweeps."
    )
    tokens: dict[str, str] | None = Field(
        default=None, description="Bearer token -> user name; None: any token is its own user."
    )
    webhook_secret: str = Field(default=DEV_WEBHOOK_SECRET, description="Webhook signing secret.")
    webhook_max_attempts: int = Field(
        default=5, ge=1, le=100, description="Delivery attempts per webhook event."
    )
    webhook_backoff: float = Field(
        default=0.5, ge=0.0, le=3600.0, description="Base of the webhook retry backoff (s)."
    )
    webhook_max_deliveries_per_owner: int = Field(
        default=10_000,
        ge=1,
        le=10_000_000,
        description="Webhook delivery records kept per user; a full user's oldest finished ones "
        "are dropped, pending ones never (a submission with a callback is refused with 429 "
        "while all of them are pending).",
    )
    webhook_timeout: float = Field(
        default=10.0, gt=0.0, le=600.0, description="Timeout of one webhook delivery attempt (s)."
    )
    events_token_ttl: float = Field(
        default=300.0,
        gt=0.0,
        le=86400.0,
        description="Seconds the access_token of a status answer's eventsUrl stays valid "
        "(bearer users only; for browsers' EventSource).",
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="Deliver webhooks to loopback, private and link-local addresses and to the "
        "server's own (local development and tests only; see docs/protocol.md).",
    )
    timing_headers: bool = Field(
        default=False,
        description="Benchmarks: a finished job's status answer carries Job-Finished-At, the "
        "server's epoch seconds with microseconds (completedAt keeps milliseconds).",
    )
    cors_origins: tuple[str, ...] = Field(
        default=(),
        description="Origins whose browser pages may call the API (CORS), e.g. "
        "'https://app.example.com'; '*' for any. Empty: no CORS headers.",
    )
    faults: FaultConfig = Field(default_factory=FaultConfig, description="Fault injection.")

    @model_validator(mode="after")
    def _instances_share_a_store(self) -> ServerConfig:
        if self.instances > 1 and self.store != "redis":
            raise ValueError("several instances need a shared store: --store redis://…")
        return self

    @model_validator(mode="before")
    @classmethod
    def _store_url(cls, data: object) -> object:
        """``store="redis://host:port/db"`` is ``store="redis"`` with that ``redis_url``."""
        if isinstance(data, dict):
            store = data.get("store")
            if isinstance(store, str) and store.startswith(("redis://", "rediss://", "unix://")):
                return {**data, "store": "redis", "redis_url": store}
        return data

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """Each origin is ``*`` or ``scheme://host[:port]`` (RFC 6454 §6.2 serialisation)."""
        for origin in value:
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"{origin!r} is not an origin: expected scheme://host[:port] (no path, "
                    "no trailing slash) or '*'"
                )
        return value
