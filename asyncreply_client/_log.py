"""The ``asyncreply`` loggers, and the redaction every log line and span attribute goes through.

Loggers (stdlib :mod:`logging`, silent until the application configures logging):

| logger                 | what it says                                                     |
| ---------------------- | ---------------------------------------------------------------- |
| ``asyncreply.client``  | DEBUG: each request and its answer, each decision (mode, delay   |
|                        | and why); INFO: each state change of an operation                |
| ``asyncreply.sse``     | DEBUG: streams opened, messages, reconnects, fallback to polling |
| ``asyncreply.retry``   | DEBUG: each retry, its attempt number, cause and delay           |
| ``asyncreply.webhooks``| webhook verification and delivery                                |
| ``asyncreply.server``  | the reference server's access log                                |

Nothing that could be a secret reaches a log line: URLs lose their user info and the values of
query parameters named like credentials (``token``, ``api_key``, ``sig``...), and neither
headers nor bodies are ever logged. Callers test ``enabled(logger)``
before building a line, so that logging costs one attribute lookup when it is off.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = [
    "CLIENT",
    "REDACTED",
    "RETRY",
    "SERVER",
    "SSE",
    "WEBHOOKS",
    "enabled",
    "is_secret_name",
    "redact_url",
]

CLIENT = logging.getLogger("asyncreply.client")
SSE = logging.getLogger("asyncreply.sse")
RETRY = logging.getLogger("asyncreply.retry")
WEBHOOKS = logging.getLogger("asyncreply.webhooks")
SERVER = logging.getLogger("asyncreply.server")

REDACTED = "REDACTED"

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


def is_secret_name(name: str) -> bool:
    """Whether a query parameter or header named ``name`` may carry a credential."""
    return _SECRET_NAME.search(name) is not None


def redact_url(url: object) -> str:
    """``url`` as text, without user info and with the values of secret-looking query
    parameters replaced by ``REDACTED``; never raises (an unparsable URL becomes a marker).

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
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode(
                [(name, REDACTED if is_secret_name(name) else value) for name, value in pairs],
                safe="/:",
            )
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        return "<unparsable URL>"
