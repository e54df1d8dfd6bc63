"""The protocol as an OpenAPI 3.1 document, served at ``GET /openapi.json``.

The document describes the server that serves it: its dialect (which HTTP statuses carry
which states), its job types (the submission body is one alternative per type, each with the
job type's input model), and whether a bearer token is required. Request bodies come from the
pydantic models (the submission envelope, every job type's input model); the answers, which
the server builds as plain dictionaries (``reference_server.documents``), are kept here by
hand. ``tests/server/test_openapi.py`` validates the document with ``openapi-spec-validator``,
checks that it lists exactly the application's routes, and runs Schemathesis against a live
server with it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from aiohttp import web
from pydantic import BaseModel, TypeAdapter

from .config import ServerConfig

__all__ = [
    "OPENAPI_KEY",
    "OPENAPI_PATH",
    "OPENAPI_VERSION",
    "build_document",
    "openapi_document",
    "server_version",
]

#: Where the document is served (no authentication needed).
OPENAPI_PATH = "/openapi.json"
OPENAPI_VERSION = "3.1.0"
#: Where the application keeps its document (built once, when the application is made).
OPENAPI_KEY = web.AppKey("asyncreply_openapi", dict[str, Any])
_REF = "#/components/schemas/{model}"
_STATES = ["pending", "processing", "completed", "failed", "cancelled"]
_DATE_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_DATE_TIME = {"type": ["string", "null"], "format": "date-time"}
_JOB_ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _hoist(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """Move a pydantic schema's ``$defs`` into ``components.schemas``; return the rest."""
    schema = copy.deepcopy(schema)
    for name, definition in schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    return schema


# --------------------------------------------------------------------- answers (hand-kept)
_HAND_KEPT: dict[str, Any] = {
    "Error": {
        "type": "object",
        "description": "Every error answer (docs/protocol.md §1).",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {},
                },
            }
        },
    },
    "Progress": {
        "type": "object",
        "required": ["current"],
        "properties": {
            "current": {"type": "number"},
            "total": {"type": ["number", "null"]},
            "message": {"type": ["string", "null"]},
        },
    },
    "JobError": {
        "type": "object",
        "required": ["code", "message", "retryable"],
        "properties": {
            "code": {"type": "string"},
            "message": {"type": "string"},
            "retryable": {"type": "boolean"},
        },
    },
    "Accepted": {
        "type": "object",
        "description": "The 202 answer to a submission (docs/protocol.md §5).",
        "required": ["jobId", "status", "statusUrl", "eventsUrl", "cancelUrl"],
        "properties": {
            "jobId": _JOB_ID,
            "status": {"const": "pending"},
            "state": {"type": "string"},
            "statusUrl": {"type": "string"},
            "eventsUrl": {"type": "string"},
            "cancelUrl": {"type": "string"},
            "estimatedWaitTime": {"type": "number", "minimum": 0},
            "originalJobId": _JOB_ID,
        },
    },
    "UploadForm": {
        "type": "object",
        "description": "A multipart/form-data submission (docs/protocol.md §5): text fields "
        "and file parts. 'input' is the base of the job input; each other text field is an "
        "input string; each file part (a filename, or a type other than text/plain) is one "
        'entry of input["files"] ({"field", "filename", "contentType", "size", "data"}: '
        "base64).",
        "required": ["type"],
        "properties": {
            "type": {"type": "string", "description": "The job type."},
            "input": {"type": "string", "description": "JSON text of an object."},
            "callback": {"type": "string", "description": "JSON text of the callback."},
            "notBefore": _DATE_TIME,
        },
        "additionalProperties": {
            "description": "A text field (an input string) or a file part.",
            "type": "string",
        },
    },
    "Status": {
        "type": "object",
        "description": "A job's status document (docs/protocol.md §6).",
        "required": ["jobId", "type", "status", "statusUrl", "eventsUrl", "cancelUrl"],
        "properties": {
            "jobId": _JOB_ID,
            "type": {"type": "string"},
            "status": {"enum": _STATES},
            "state": {"type": "string", "description": "status-code dialect only"},
            "attempt": {"type": "integer", "minimum": 0},
            "progress": {"oneOf": [_ref("Progress"), {"type": "null"}]},
            "createdAt": _DATE_TIME,
            "startedAt": _NULLABLE_DATE_TIME,
            "updatedAt": _DATE_TIME,
            "estimatedCompletion": _NULLABLE_DATE_TIME,
            "retryAfter": {"type": ["number", "null"]},
            "statusUrl": {"type": "string"},
            "eventsUrl": {"type": "string"},
            "cancelUrl": {"type": "string"},
            "notBefore": _DATE_TIME,
            "originalJobId": _JOB_ID,
            "resultUrl": {"type": "string"},
            "completedAt": _DATE_TIME,
            "result": {"description": "inline completion style only"},
            "error": {"anyOf": [_ref("JobError"), {"type": "object"}]},
            "deadLetter": {"type": "boolean"},
            "failedAt": _DATE_TIME,
            "retryUrl": {"type": "string"},
            "cancelledAt": _DATE_TIME,
        },
    },
    "JobList": {
        "type": "object",
        "required": ["jobs", "nextCursor"],
        "properties": {
            "jobs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["jobId", "type", "status"],
                    "properties": {
                        "jobId": _JOB_ID,
                        "type": {"type": "string"},
                        "status": {"enum": _STATES},
                    },
                },
            },
            "nextCursor": {"type": ["string", "null"]},
        },
    },
    "Delivery": {
        "type": "object",
        "required": ["id", "jobId", "event", "url", "attempts", "status"],
        "properties": {
            "id": {"type": "string"},
            "jobId": {"type": "string"},
            "event": {"type": "string"},
            "url": {"type": "string"},
            "attempts": {"type": "integer", "minimum": 0},
            "status": {"enum": ["pending", "delivered", "failed"]},
            "lastError": {"type": ["string", "null"]},
            "responseStatus": {"type": ["integer", "null"]},
            "createdAt": _NULLABLE_DATE_TIME,
            "updatedAt": _NULLABLE_DATE_TIME,
        },
    },
    "DeliveryList": {
        "type": "object",
        "required": ["deliveries"],
        "properties": {"deliveries": {"type": "array", "items": _ref("Delivery")}},
    },
}

_HEADER = {"schema": {"type": "string"}}
_RETRY_AFTER = {
    "description": "Seconds until the next poll is useful (RFC 9110 §10.2.3).",
    "schema": {"type": "string"},
}


def _json(description: str, schema: Any, headers: Mapping[str, Any] | None = None) -> Any:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    if headers:
        answer["headers"] = dict(headers)
    return answer


def _error(description: str) -> Any:
    return _json(description, _ref("Error"))


_LOCATION = {"Location": {"required": True, **_HEADER}}
_ERRORS = {
    "400": _error("The request is invalid (the error code says how)."),
    "401": _error("No acceptable credentials (WWW-Authenticate: Bearer)."),
    "404": _error("No such job for this user, or no such resource."),
    "410": _error("The job (or its result) has expired."),
}


def _status_answers(config: ServerConfig) -> dict[str, Any]:
    """What ``GET /jobs/{id}`` (and a held submission) answers, by dialect."""
    status = _ref("Status")
    if config.dialect == "reference":
        return {
            "200": _json("The job's status (a completed job inline: with its result).", status),
            "303": _json("Completed: the result is at Location.", status, _LOCATION),
        }
    return {
        "200": {
            "description": "Completed: the JSON result itself.",
            "content": {"application/json": {"schema": {}}},
        },
        "202": _json("Not finished yet.", status, {"Retry-After": _RETRY_AFTER}),
        "303": _json("Completed with a file: the result is at Location.", status, _LOCATION),
        "409": _json("The job was cancelled.", status),
        "500": _json("The job failed (the document carries the job's error).", status),
    }


def _job_id_parameter() -> dict[str, Any]:
    return {"name": "job_id", "in": "path", "required": True, "schema": _JOB_ID}


def _operations(config: ServerConfig) -> dict[str, Any]:
    job = [_job_id_parameter()]
    wait = {
        "name": "wait",
        "in": "query",
        "description": f"Long poll: hold up to N seconds (capped at {config.max_wait:g}).",
        "schema": {"type": "number", "minimum": 0},
    }
    prefer = {
        "name": "Prefer",
        "in": "header",
        "description": "RFC 7240 `wait=N`: hold the answer up to N seconds.",
        "schema": {"type": "string", "pattern": "^wait=[0-9]{1,3}$"},
    }
    accepted = _json(
        "Accepted: the job exists (held by Prefer: wait and not final yet, or an idempotent "
        "replay, final or not: the job's status document at that moment).",
        {"anyOf": [_ref("Accepted"), _ref("Status")]},
        {**_LOCATION, "Retry-After": _RETRY_AFTER},
    )
    public: list[Any] = []
    return {
        "/health": {
            "get": {
                "operationId": "health",
                "summary": "Liveness (no authentication).",
                "security": public,
                "responses": {
                    "200": _json(
                        "The server is up.",
                        {
                            "type": "object",
                            "required": ["status"],
                            "properties": {"status": {"const": "ok"}},
                        },
                    )
                },
            }
        },
        OPENAPI_PATH: {
            "get": {
                "operationId": "openapi",
                "summary": "This document (no authentication).",
                "security": public,
                "responses": {"200": _json("The OpenAPI document.", {"type": "object"})},
            }
        },
        "/jobs": {
            "post": {
                "operationId": "submitJob",
                "summary": "Submit a job (docs/protocol.md §5).",
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "schema": {"type": "string", "pattern": "^[!-~]{1,255}$"},
                    },
                    prefer,
                    {
                        "name": "type",
                        "in": "query",
                        "description": "A raw upload's job type (ignored with a JSON or "
                        "multipart body).",
                        "schema": {"type": "string"},
                    },
                ],
                "requestBody": {
                    "required": True,
                    "description": "A JSON submission; or a multipart/form-data form; or a "
                    "raw upload (any other media type) with ?type=<job type>: both become the "
                    'submission {"type", "input": {..., "files": [...]}} (the digest job type).',
                    "content": {
                        "application/json": {"schema": _ref("Submission")},
                        "multipart/form-data": {
                            "schema": _ref("UploadForm"),
                            "encoding": {
                                name: {"contentType": "text/plain"}
                                for name in ("type", "input", "callback", "notBefore")
                            },
                        },
                        "application/octet-stream": {
                            "schema": {
                                "description": "The one file of the job's input (named "
                                "'body'); needs ?type=<job type>.",
                                "type": "string",
                                "contentMediaType": "application/octet-stream",
                            }
                        },
                    },
                },
                "responses": {
                    # Held (Prefer: wait) until finished: the status answers; else 202.
                    **_status_answers(config),
                    "202": accepted,
                    **_ERRORS,
                    "408": _error("The body was not received within body_timeout."),
                    "413": _error("The body exceeds max_body_bytes."),
                    "415": {
                        "description": "The body is neither application/json nor "
                        "multipart/form-data, and no ?type= names a raw upload's job type: "
                        "an RFC 9457 problem naming the media types taken (also in "
                        "Accept-Post), with the usual error document.",
                        "headers": {"Accept-Post": {"required": True, **_HEADER}},
                        "content": {
                            "application/problem+json": {
                                "schema": {
                                    "allOf": [_ref("Error")],
                                    "type": "object",
                                    "required": ["title", "status", "detail", "accept"],
                                    "properties": {
                                        "type": {"type": "string"},
                                        "title": {"type": "string"},
                                        "status": {"const": 415},
                                        "detail": {"type": "string"},
                                        "accept": {"type": "array", "items": {"type": "string"}},
                                    },
                                }
                            }
                        },
                    },
                    "422": _error("The Idempotency-Key was used with another body."),
                },
            },
            "get": {
                "operationId": "listJobs",
                "summary": "The caller's jobs, newest first (docs/protocol.md §11).",
                "parameters": [
                    {"name": "status", "in": "query", "schema": {"enum": _STATES}},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                    },
                    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": _json("A page of jobs.", _ref("JobList")),
                    "400": _ERRORS["400"],
                    "401": _ERRORS["401"],
                },
            },
        },
        "/jobs/{job_id}": {
            "get": {
                "operationId": "getJob",
                "summary": "A job's status (docs/protocol.md §6).",
                "parameters": [*job, wait, prefer],
                "responses": {**_status_answers(config), **_ERRORS},
            },
            "delete": {
                "operationId": "cancelJob",
                "summary": "Cancel a job (docs/protocol.md §8).",
                "parameters": job,
                "responses": {
                    "200": _json("Cancelled (or cancelling).", _ref("Status")),
                    **_ERRORS,
                    "409": _error("The job already finished."),
                },
            },
        },
        "/jobs/{job_id}/result": {
            "get": {
                "operationId": "getResult",
                "summary": "A completed job's result (docs/protocol.md §7).",
                "parameters": job,
                "responses": {
                    "200": {
                        "description": "The result: JSON, or a file (Content-Disposition).",
                        "content": {"application/json": {"schema": {}}, "*/*": {"schema": {}}},
                    },
                    **_ERRORS,
                    "409": _error("The job has not completed."),
                },
            }
        },
        "/jobs/{job_id}/retry": {
            "post": {
                "operationId": "retryJob",
                "summary": "Retry a failed job as a new one (docs/protocol.md §9).",
                "parameters": job,
                "responses": {
                    "202": accepted,
                    **_ERRORS,
                    "409": _error("Only a failed job with a retryable error is retried."),
                },
            }
        },
        "/jobs/{job_id}/events": {
            "get": {
                "operationId": "jobEvents",
                "summary": "Server-Sent Events of a job (docs/protocol.md §10).",
                "security": _events_security(config),
                "parameters": [
                    *job,
                    {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"}},
                    {"name": "lastEventId", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {
                        "description": "The event stream (status, progress, complete).",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **_ERRORS,
                },
            }
        },
        "/webhooks/deliveries": {
            "get": {
                "operationId": "listDeliveries",
                "summary": "The caller's webhook deliveries (docs/protocol.md §12).",
                "parameters": [
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {"enum": ["pending", "delivered", "failed"]},
                    },
                    {"name": "jobId", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": _json("The deliveries.", _ref("DeliveryList")),
                    "400": _ERRORS["400"],
                    "401": _ERRORS["401"],
                },
            }
        },
    }


def _security(config: ServerConfig) -> list[dict[str, list[str]]]:
    # Dev mode (no token map): a token is optional (no token: the user "anonymous").
    return [{"bearer": []}] if config.tokens is not None else [{}, {"bearer": []}]


def _events_security(config: ServerConfig) -> list[dict[str, list[str]]]:
    if config.tokens is None:
        return _security(config)
    return [{"bearer": []}, {"eventsToken": []}]


def _submission(
    envelope: type[BaseModel], inputs: Mapping[str, TypeAdapter[Any]], schemas: dict[str, Any]
) -> dict[str, Any]:
    """One alternative per job type: the envelope model with that type and its input."""
    base = _hoist(envelope.model_json_schema(ref_template=_REF), schemas)
    schemas["SubmissionEnvelope"] = base
    alternatives = []
    for name in sorted(inputs):
        input_schema = _hoist(inputs[name].json_schema(ref_template=_REF), schemas)
        alternatives.append(
            {
                "allOf": [_ref("SubmissionEnvelope")],
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"const": name}, "input": input_schema},
            }
        )
    return {"oneOf": alternatives} if alternatives else base


def build_document(
    config: ServerConfig,
    *,
    envelope: type[BaseModel],
    inputs: Mapping[str, TypeAdapter[Any]],
    version: str,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of a server with ``config`` serving ``inputs``' job types.

    Args:
        config: the server configuration (dialect, tokens, limits).
        envelope: the pydantic model of a submission (``type``, ``input``, ``callback``,
            ``notBefore``).
        inputs: each served job type's input validator, by type name.
        version: the document's ``info.version``.

    Example:
        >>> from pydantic import BaseModel
        >>> class Env(BaseModel):
        ...     type: str
        >>> doc = build_document(ServerConfig(), envelope=Env, inputs={}, version="1")
        >>> doc["openapi"], sorted(doc["paths"])[:2]
        ('3.1.0', ['/health', '/jobs'])
    """
    schemas: dict[str, Any] = copy.deepcopy(_HAND_KEPT)
    schemas["Submission"] = _submission(envelope, inputs, schemas)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "asyncreply reference server",
            "version": version,
            "description": "The async request-reply protocol of docs/protocol.md "
            f"({config.dialect} dialect, {config.completion_style} completion style).",
        },
        "servers": [{"url": "/"}],
        "security": _security(config),
        "paths": _operations(config),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "eventsToken": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "access_token",
                    "description": "The token of a status answer's eventsUrl (browsers).",
                },
            },
        },
    }


async def openapi_document(request: web.Request) -> web.StreamResponse:
    """``GET /openapi.json``: the protocol of this server as OpenAPI 3.1 (no auth)."""
    return web.json_response(request.app[OPENAPI_KEY])


def server_version() -> str:
    """The installed distribution's version (``0+unknown`` in a source tree)."""
    try:
        return version("asyncreply")
    except PackageNotFoundError:
        return "0+unknown"
