"""Resume tokens: an operation's URLs as versioned, validated JSON in base64url.

A token holds no credentials and nothing executable (STYLE.md §4): only the URLs and id of
the operation, the name of its dialect and, for a submission whose status monitor was named by a
particular header (``Azure-AsyncOperation`` / ``Operation-Location``, ``Location``) or whose final
result is the monitor's last answer (``final_state_via``), those two facts, so that a resumed
operation reads its answers by the same rules. Loading validates every field and raises
``InvalidTokenError`` for anything else.

Versions: 1 holds the URLs, the id and the dialect; 2 adds ``monitored_by`` and
``final_from_monitor``. A token is written as version 1 whenever it needs neither field (so an
older release still loads it), and both versions load.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, get_args
from urllib.parse import unquote, urlsplit, urlunsplit

from ._errors import InvalidTokenError
from ._models import JobState, JobStatus
from ._urls import is_http_url
from .dialects import MonitorKind, Submission

__all__ = ["TOKEN_VERSION", "TokenData", "dump_token", "load_token"]

TOKEN_VERSION = 2
_MAX_TOKEN = 16 * 1024
_URL_FIELDS = ("status_url", "events_url", "cancel_url", "result_url")
_V1_FIELDS = frozenset({"v", "id", "dialect", *_URL_FIELDS})
_MONITOR_FIELDS = frozenset({"monitored_by", "final_from_monitor"})
_FIELDS = {1: _V1_FIELDS, 2: _V1_FIELDS | _MONITOR_FIELDS}
_MONITOR_KINDS: dict[str, MonitorKind] = {kind: kind for kind in get_args(MonitorKind)}
# RFC 6750 §2.3: a bearer token carried in the query (the reference server's browser
# event-stream URLs do this). A resume token must not carry it along.
_CREDENTIAL_PARAMETERS = frozenset({"access_token"})


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if not parts.query:
        return url
    kept = [
        item
        for item in parts.query.split("&")
        if unquote(item.partition("=")[0]) not in _CREDENTIAL_PARAMETERS
    ]
    return urlunsplit(parts._replace(query="&".join(kept)))


@dataclass(frozen=True, slots=True)
class TokenData:
    """The content of a resume token."""

    status_url: str
    id: str | None = None
    events_url: str | None = None
    cancel_url: str | None = None
    result_url: str | None = None
    dialect: str | None = None
    monitored_by: MonitorKind | None = None
    final_from_monitor: bool = False

    def submission(self) -> Submission | None:
        """The submission facts a resumed operation's dialect needs (the header that named the
        monitor, whether the monitor's last answer is the result, where the result lives), or
        ``None`` when the token records none (the dialect's automatic rules apply)."""
        if self.monitored_by is None and not self.final_from_monitor:
            return None
        # The status is a placeholder: the operation's state follows its first answer.
        return Submission(
            status=JobStatus(state=JobState.PENDING, id=self.id),
            status_url=self.status_url,
            events_url=self.events_url,
            cancel_url=self.cancel_url,
            final_url=None if self.final_from_monitor else self.result_url,
            monitored_by=self.monitored_by,
            final_from_monitor=self.final_from_monitor,
        )


def dump_token(data: TokenData) -> str:
    """Encode ``data`` as an opaque token (``None`` fields are left out).

    Example:
        >>> load_token(dump_token(TokenData("https://api.example/jobs/1"))).status_url
        'https://api.example/jobs/1'
    """
    status_url = _without_credentials(data.status_url)
    payload: dict[str, Any] = {"v": 1, "status_url": status_url}
    for name in ("id", "events_url", "cancel_url", "result_url", "dialect"):
        value = getattr(data, name)
        if value is not None:
            payload[name] = _without_credentials(value) if name in _URL_FIELDS else value
    if data.monitored_by is not None or data.final_from_monitor:
        payload["v"] = 2
        if data.monitored_by is not None:
            payload["monitored_by"] = data.monitored_by
        if data.final_from_monitor:
            payload["final_from_monitor"] = True
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def load_token(token: object) -> TokenData:
    """Decode and validate a token made by :func:`dump_token`.

    Raises:
        InvalidTokenError: not a string, not base64url, not JSON, an unknown version, an
            unknown field, or a field of the wrong type (URLs must be absolute http(s)).
    """
    if not isinstance(token, str):
        raise InvalidTokenError(f"a resume token is a string, not {type(token).__name__}")
    if not token or len(token) > _MAX_TOKEN:
        raise InvalidTokenError("the resume token is empty or too long")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidTokenError("the resume token is not base64url-encoded JSON") from exc
    if not isinstance(payload, dict):
        raise InvalidTokenError("the resume token does not hold a JSON object")
    version = payload.get("v")
    # Only an int can name a version (a list or an object is unhashable, True is no 1).
    if not isinstance(version, int) or isinstance(version, bool) or version not in _FIELDS:
        raise InvalidTokenError(f"unsupported resume token version {version!r}")
    unknown = sorted(set(payload) - _FIELDS[version])
    if unknown:
        raise InvalidTokenError(f"unknown field(s) in the resume token: {', '.join(unknown)}")
    values: dict[str, str | None] = {}
    for name in ("id", "dialect", *_URL_FIELDS):
        value = payload.get(name)
        if value is not None and not isinstance(value, str):
            raise InvalidTokenError(f"resume token field {name!r} must be a string")
        if value is not None and name in _URL_FIELDS and not is_http_url(value):
            raise InvalidTokenError(f"resume token field {name!r} is not an absolute URL")
        values[name] = value
    status_url = values.pop("status_url")
    if status_url is None:
        raise InvalidTokenError("the resume token has no status_url")
    named = payload.get("monitored_by")
    monitored_by = _MONITOR_KINDS.get(named) if isinstance(named, str) else None
    if named is not None and monitored_by is None:
        raise InvalidTokenError(
            f"resume token field 'monitored_by' must be one of {', '.join(sorted(_MONITOR_KINDS))}"
        )
    final_from_monitor = payload.get("final_from_monitor", False)
    if not isinstance(final_from_monitor, bool):
        raise InvalidTokenError("resume token field 'final_from_monitor' must be a boolean")
    return TokenData(
        status_url=status_url,
        **values,
        monitored_by=monitored_by,
        final_from_monitor=final_from_monitor,
    )
