"""Submissions that carry files: ``multipart/form-data`` forms and raw bodies.

Both become the same submission document as a JSON one, so that everything after parsing
(validation, idempotency, the job's stored input) is shared:

- a ``multipart/form-data`` form: the ``type`` field names the job type; ``input`` (JSON
  text) is the base of the job input; ``callback`` (JSON text) and ``notBefore`` are the
  envelope's; every other text field is an input string; every file part is one entry of
  ``input["files"]``;
- any other body with ``?type=NAME`` in the query: the whole body is the one file, named
  ``body``, of its ``Content-Type``.

A file entry is ``{"field", "filename", "contentType", "size", "data"}`` (``data``:
standard base64), the input of upload job types such as ``digest``.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
from typing import Any

from aiohttp import web

from .documents import error_body
from .wire import HTTPError

__all__ = [
    "ACCEPTED_MEDIA_TYPES",
    "MULTIPART",
    "UPLOADS_ACCEPTED",
    "accepts_upload",
    "parse_form",
    "unsupported_media_type",
    "upload_submission",
]

MULTIPART = "multipart/form-data"
_ENVELOPE_JSON = ("input", "callback")
#: The media types ``POST /jobs`` takes (a raw upload: any type, with ``?type=``).
ACCEPTED_MEDIA_TYPES = ("application/json", MULTIPART, "application/octet-stream")
#: What the 415 answer to another body says.
UPLOADS_ACCEPTED = (
    "the body must be application/json, multipart/form-data (a 'type' field naming the job "
    "type), or raw bytes (application/octet-stream) with ?type=<job type> in the query"
)


def _file(field: str, filename: str | None, content_type: str, data: bytes) -> dict[str, Any]:
    return {
        "field": field,
        "filename": filename,
        "contentType": content_type,
        "size": len(data),
        "data": base64.b64encode(data).decode("ascii"),
    }


def _json_field(name: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise HTTPError(400, "invalid_json", f"the form field {name!r} must be JSON text") from None


def _envelope(fields: list[tuple[str, str]], files: list[dict[str, Any]]) -> dict[str, Any]:
    """The submission document of a form's text ``fields`` and ``files``."""
    envelope: dict[str, Any] = {}
    extra: dict[str, str] = {}
    for name, text in fields:
        if name in envelope or name in extra:
            raise HTTPError(400, "invalid_input", f"the form field {name!r} is given twice")
        if name in _ENVELOPE_JSON:
            envelope[name] = _json_field(name, text)
        elif name in ("type", "notBefore"):
            envelope[name] = text
        else:
            extra[name] = text
    if "type" not in envelope:
        raise HTTPError(400, "invalid_input", "the form needs a 'type' field naming the job type")
    base = envelope.get("input", {})
    if not isinstance(base, dict):
        raise HTTPError(400, "invalid_input", "the form field 'input' must be a JSON object")
    envelope["input"] = {**base, **extra, **({"files": files} if files else {})}
    return envelope


def parse_form(content_type: str, body: bytes) -> dict[str, Any]:
    """The submission document of a ``multipart/form-data`` body.

    Raises:
        HTTPError: 400 ``invalid_input`` (no boundary, no ``type``, a field given twice),
            ``invalid_json`` (an ``input`` or ``callback`` field that is not JSON).
    """
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart() or message.get_boundary() is None:
        raise HTTPError(400, "invalid_input", "the multipart form has no boundary or no parts")
    fields: list[tuple[str, str]] = []
    files: list[dict[str, Any]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            raise HTTPError(400, "invalid_input", "a form part has no name")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None or part.get_content_type() != "text/plain":
            ctype = part.get("content-type") or "application/octet-stream"
            files.append(_file(name, filename, str(ctype), data))
        else:
            fields.append((name, data.decode(part.get_content_charset() or "utf-8", "replace")))
    return _envelope(fields, files)


def unsupported_media_type() -> web.Response:
    """The 415 answer to a body ``POST /jobs`` does not take (an urlencoded form, say).

    It names what would be taken twice: an ``Accept-Post`` header and an RFC 9457
    ``application/problem+json`` body (``accept``: the list), which also carries the
    server's usual ``error`` document (``code``: ``unsupported_media_type``).
    """
    accepted = list(ACCEPTED_MEDIA_TYPES)
    body = {
        "type": "about:blank",
        "title": "Unsupported Media Type",
        "status": 415,
        "detail": UPLOADS_ACCEPTED,
        "accept": accepted,
        **error_body("unsupported_media_type", UPLOADS_ACCEPTED, {"accept": accepted}),
    }
    return web.json_response(
        body,
        status=415,
        content_type="application/problem+json",
        headers={"Accept-Post": ", ".join(accepted)},
    )


def accepts_upload(request: web.Request) -> bool:
    """Whether a body that is not JSON is one this module reads: a form, or any body
    with ``?type=`` (checked before the body is read, as the 415 of other bodies is)."""
    return request.content_type == MULTIPART or bool(request.query.get("type"))


def upload_submission(request: web.Request, body: bytes) -> dict[str, Any]:
    """The submission document of a body that is not JSON (``body``: already read, within
    the server's limits; :func:`accepts_upload` said yes).

    Raises:
        HTTPError: 400 as :func:`parse_form`.
    """
    content_type = request.headers.get("Content-Type", "")
    if request.content_type == MULTIPART:
        return parse_form(content_type, body)
    ctype = content_type or "application/octet-stream"
    job_type = request.query.get("type", "")
    return {"type": job_type, "input": {"files": [_file("body", None, ctype, body)]}}
