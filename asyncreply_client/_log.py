"""The ``asyncreply`` loggers, and the redaction every log line and span attribute goes through.

Loggers (stdlib :mod:`logging`, silent until the application configures logging: the
``asyncreply`` root has a ``NullHandler``):

| logger                 | what it says                                                     |
| ---------------------- | ---------------------------------------------------------------- |
| ``asyncreply.client``  | DEBUG: each request and its answer, each decision (mode, delay   |
|                        | and why); INFO: each state change of an operation                |
| ``asyncreply.sse``     | DEBUG: streams opened, messages, reconnects, fallback to polling |
| ``asyncreply.retry``   | DEBUG: each retry, its attempt number, cause and delay           |
| ``asyncreply.webhooks``| one record per webhook delivery: DEBUG accepted / duplicate,     |
|                        | INFO refused / deferred, ERROR a callback that raised            |
| ``asyncreply.server``  | the reference server's access log                                |

Nothing that could be a secret reaches a log line: URLs lose their user info and the values of
query parameters named like credentials (``token``, ``api_key``, ``sig``...), and neither
headers nor bodies are ever logged. The messages and ``url`` attributes of the client's
errors (``_errors``) go through the same redaction, as they end up in logs too. Callers test
``enabled(logger)`` before building a line, so that logging costs one attribute lookup when
it is off.
"""

from __future__ import annotations

import contextvars
import logging
import re
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import unquote_plus, urlsplit, urlunsplit

__all__ = [
    "CLIENT",
    "RECORDER",
    "Attribute",
    "Recorder",
    "active",
    "decision",
    "REDACTED",
    "RETRY",
    "SERVER",
    "SSE",
    "WEBHOOKS",
    "enabled",
    "is_secret_name",
    "redact_text",
    "redact_url",
]

CLIENT = logging.getLogger("asyncreply.client")
SSE = logging.getLogger("asyncreply.sse")
RETRY = logging.getLogger("asyncreply.retry")
WEBHOOKS = logging.getLogger("asyncreply.webhooks")
SERVER = logging.getLogger("asyncreply.server")

# A library logs, the application decides where records go: with a handler on the root of the
# tree, Python's last-resort handler (WARNING and above to stderr) never fires for an
# application that configured no logging, so it prints nothing (the logging HOWTO's advice).
logging.getLogger("asyncreply").addHandler(logging.NullHandler())

REDACTED = "REDACTED"

#: The value of a span attribute.
Attribute = str | bool | int | float


class Recorder(Protocol):
    """Where the decisions of the flow being stepped go besides the log (its operation's span)."""

    @property
    def tracing(self) -> bool:
        """Whether recorded decisions are kept."""
        ...

    def decided(self, event: str, attributes: Mapping[str, Attribute | None]) -> None:
        """Record one decision."""
        ...


#: The recorder of the flow being stepped: set by its observer around each step, so the pure
#: code reports decisions without a recorder in any signature (``_observe``).
RECORDER: contextvars.ContextVar[Recorder | None] = contextvars.ContextVar(
    "asyncreply_recorder", default=None
)

#: Names of query parameters whose values are credentials, in the spellings seen in
#: the wild: OAuth ``access_token``, ``api_key``/``apikey``/``x-api-key``, Azure SAS ``sig``
#: and Functions ``code``, AWS/GCS signed URLs (``X-Amz-Signature``, ``X-Amz-Credential``,
#: ``X-Goog-Signature``), cookies and sessions. Matched as substrings, case-insensitively.
_SECRET_NAME = re.compile(
    r"auth|token|key|secret|passw|pwd|sig|credential|cookie|session|bearer|assertion|jwt"
    r"|^code$|^sas$|^ticket$",
    re.IGNORECASE,
)


def enabled(logger: logging.Logger, level: int = logging.DEBUG) -> bool:
    """Whether a line at ``level`` would be emitted: test it before building the arguments."""
    return logger.isEnabledFor(level)


def active(logger: logging.Logger) -> bool:
    """Whether a :func:`decision` would be kept: ``logger`` logs DEBUG, or the flow being
    stepped belongs to a traced operation. Test it before computing a decision's details."""
    if logger.isEnabledFor(logging.DEBUG):
        return True
    recorder = RECORDER.get()
    return recorder is not None and recorder.tracing


def decision(
    logger: logging.Logger,
    event: str,
    attributes: Mapping[str, Attribute | None],
    message: str,
    *args: object,
) -> None:
    """Report a decision of the flow being stepped: a DEBUG line on ``logger`` (``message``
    %-formatted with ``args`` only when emitted) and an ``event`` on its operation's span.

    Never pass secrets or bodies: URLs go through :func:`redact_url`.
    """
    recorder = RECORDER.get()
    if recorder is not None:
        recorder.decided(event, attributes)
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(message, *args)


def is_secret_name(name: str) -> bool:
    """Whether a query parameter or header named ``name`` may carry a credential."""
    return _SECRET_NAME.search(name) is not None


def redact_url(url: object) -> str:
    """``url`` as text, without user info and fragment and with the values of secret-looking
    query parameters replaced by ``REDACTED`` (the other parameters are kept as they were
    written); never raises (an unparsable URL becomes a marker). A URL with nothing to
    redact comes back unchanged.

    Example:
        >>> redact_url("https://u:p@example.com/jobs/1?api_key=abc&wait=5")
        'https://example.com/jobs/1?api_key=REDACTED&wait=5'
    """
    text = str(url)
    try:
        parts = urlsplit(text)
        netloc = parts.netloc.rpartition("@")[2]
        query = parts.query
        if query:
            query = "&".join(_redact_parameter(item) for item in query.split("&"))
        if netloc == parts.netloc and query == parts.query and "#" not in text:
            return text
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        return "<unparsable URL>"


def _redact_parameter(item: str) -> str:
    """One ``name=value`` of a query, its value replaced when the name looks secret."""
    name, sep, _ = item.partition("=")
    if sep and is_secret_name(unquote_plus(name)):
        return f"{name}={REDACTED}"
    return item


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def redact_text(text: str) -> str:
    """``text`` (an error message, a reason) with every URL in it passed through
    :func:`redact_url`.

    Example:
        >>> redact_text("GET https://h/e?token=abc failed")
        'GET https://h/e?token=REDACTED failed'
        >>> redact_text("(HTTP 404 from https://h/e?sig=abc).")
        '(HTTP 404 from https://h/e?sig=REDACTED).'
    """
    return _URL_IN_TEXT.sub(_redact_match, text)


def _redact_match(match: re.Match[str]) -> str:
    # Punctuation that closes the sentence around a URL ("(from https://h/p?sig=x).") is
    # not part of it: kept after the redacted URL.
    url = match.group(0)
    core = url.rstrip(").,;:!?]")
    return redact_url(core) + url[len(core) :]
