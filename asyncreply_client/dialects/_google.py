"""Google AIP-151 long-running operations (``google.longrunning.Operation``).

The functions :func:`looks_google`, :func:`read_operation` and :func:`operation_submission`
are shared with :class:`~asyncreply_client.AutoDialect`, which recognises Operations among
other families' answers.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from urllib.parse import quote

import httpx

from .._errors import NoStatusUrlError
from .._models import JobState, JobStatus
from .._urls import resolve_url
from ._answer import Answer, header_monitor, snapshot
from ._base import DialectBase, OkMode, Submission, submission_of
from ._fields import Doc, parse_state

__all__ = [
    "DEFAULT_OPERATION_URL_TEMPLATE",
    "GoogleDialect",
    "OperationUrl",
    "looks_google",
    "operation_submission",
    "read_operation",
]

#: The status URL of an operation: ``{origin}/{version}/{name}``.
DEFAULT_OPERATION_URL_TEMPLATE = "{origin}/{version}/{name}"
#: Builds an operation's status URL from its ``name`` and the request's URL.
OperationUrl = Callable[[str, str], "str | None"]

_GOOGLE_KEYS = frozenset({"name", "metadata", "done", "response", "error"})
_GOOGLE_NAME = re.compile(r"(?:^|/)operations/[^/]+$")
_API_VERSION = re.compile(r"v\d+(?:(?:alpha|beta|p)\d*)*")
#: google.rpc.Code.CANCELLED
_RPC_CANCELLED = 1


def looks_google(doc: Doc | None) -> bool:
    """Whether a body is a ``google.longrunning.Operation`` (AIP-151)."""
    if doc is None or any(parse_state(doc.get(key)) for key in ("status", "state")):
        return False
    if not set(doc) <= _GOOGLE_KEYS | {"@type"}:
        return False
    if isinstance(doc.get("done"), bool):
        return True
    name = doc.get("name")
    return isinstance(name, str) and ("metadata" in doc or bool(_GOOGLE_NAME.search(name)))


def read_operation(answer: Answer, doc: Doc, operation_url: OperationUrl) -> JobStatus:
    """The snapshot an Operation ``doc`` describes (``done``, ``error``, ``response``)."""
    metadata = doc.get("metadata")
    extra: tuple[Doc, ...] = ()
    if isinstance(metadata, Mapping):
        # Timestamps live in metadata, or in Vertex AI's metadata.genericMetadata.
        generic = metadata.get("genericMetadata")
        extra = (metadata, generic) if isinstance(generic, Mapping) else (metadata,)
    name = doc.get("name")
    monitor = operation_url(name, answer.url) if isinstance(name, str) and name else None
    if doc.get("done") is not True:
        meta_state = parse_state(metadata.get("state")) if isinstance(metadata, Mapping) else None
        state = (
            meta_state
            if meta_state is not None and not meta_state.is_terminal
            else JobState.PENDING
        )
        return snapshot(answer, state, doc=doc, status_url=monitor, extra_docs=extra)
    error = doc.get("error")
    if error is not None:
        code = error.get("code") if isinstance(error, Mapping) else None
        state = JobState.CANCELLED if code == _RPC_CANCELLED else JobState.FAILED
        return snapshot(answer, state, doc=doc, status_url=monitor, extra_docs=extra)
    return snapshot(
        answer,
        JobState.COMPLETED,
        doc=doc,
        result=doc.get("response"),
        has_result=True,
        status_url=monitor,
        extra_docs=extra,
    )


def operation_submission(answer: Answer, doc: Doc, operation_url: OperationUrl) -> Submission:
    """The submission an Operation body starts: watched at its ``name``'s URL."""
    status = read_operation(answer, doc, operation_url)
    monitor = status.status_url or header_monitor(answer, with_location=True)
    if not status.is_terminal and monitor is None:
        raise NoStatusUrlError(
            "the Operation is not done and has no name to poll; pass "
            "GoogleDialect(operation_url_template=...) or DeclarativeDialect(status_url=...)",
            status_code=answer.status_code,
            url=answer.url,
            body=answer.content,
        )
    return submission_of(answer, status, monitor)


class GoogleDialect(DialectBase):
    """Google AIP-151 long-running operations.

    The body is an Operation ``{name, metadata, done, response | error}``. ``done`` false (or
    absent, as proto3 JSON omits it) means not finished, even on a 200 submit. The status URL
    is built from ``name`` with ``operation_url_template``, whose placeholders are
    ``{origin}`` (the request's ``scheme://host[:port]``), ``{version}`` (the request path's
    first version segment such as ``v1`` or ``v1beta1``; ``v1`` when there is none) and
    ``{name}``. ``metadata.progressPercent`` and similar become progress; an ``error`` with
    code 1 (CANCELLED) is a cancelled job.

    Example:
        >>> GoogleDialect().operation_url("operations/42", "https://g.test/v2beta/x:run")
        'https://g.test/v2beta/operations/42'
        >>> GoogleDialect("{origin}/v1/operations/{name}").operation_url("42", "https://g.test/")
        'https://g.test/v1/operations/42'
    """

    name = "google"
    _ok_mode: OkMode = "document"
    __slots__ = ("template",)

    def __init__(
        self,
        operation_url_template: str = DEFAULT_OPERATION_URL_TEMPLATE,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """Create the dialect.

        Args:
            operation_url_template: how to build a status URL from an operation's ``name``.
            wall_clock: wall-clock time in epoch seconds (see :class:`ReferenceDialect`).
        """
        super().__init__(wall_clock=wall_clock)
        self.template = operation_url_template

    def __repr__(self) -> str:
        return f"GoogleDialect({self.template!r})"

    def operation_url(self, name: str, request_url: str) -> str | None:
        """The status URL of the operation ``name``, from the template (``None`` if invalid)."""
        absolute = resolve_url(request_url, name) if "://" in name else None
        if absolute is not None:
            return absolute
        try:
            parsed = httpx.URL(request_url)
            origin = f"{parsed.scheme}://{parsed.netloc.decode('ascii')}"
        except (httpx.InvalidURL, ValueError, TypeError):
            return None
        version = next((seg for seg in parsed.path.split("/") if _API_VERSION.fullmatch(seg)), "v1")
        safe_name = quote(name.lstrip("/"), safe="/:@-._~!$&'()*+,;=")
        url = (
            self.template.replace("{origin}", origin)
            .replace("{version}", version)
            .replace("{name}", safe_name)
        )
        return resolve_url(request_url, url)

    def _states(self, answer: Answer) -> bool:
        return looks_google(answer.doc) or super()._states(answer)

    def _event_status(self, answer: Answer) -> JobStatus | None:
        if answer.doc is not None and looks_google(answer.doc):
            return read_operation(answer, answer.doc, self.operation_url)
        return super()._event_status(answer)

    def _status_of_2xx(self, answer: Answer, submission: Submission | None) -> JobStatus:
        if answer.doc is None or not looks_google(answer.doc):
            raise answer.protocol_error("google dialect: the answer is not an Operation")
        return read_operation(answer, answer.doc, self.operation_url)

    def _failure_state(self, answer: Answer) -> JobState | None:
        # Google reports a failed operation as a 200 Operation with an error: a 5xx is a fault.
        return None

    def _submission_of_2xx(self, answer: Answer) -> Submission:
        if answer.doc is None or not looks_google(answer.doc):
            return super()._submission_of_2xx(answer)
        return operation_submission(answer, answer.doc, self.operation_url)

    def _submission_of_202(self, answer: Answer) -> Submission:
        if answer.doc is not None and looks_google(answer.doc):
            return operation_submission(answer, answer.doc, self.operation_url)
        return super()._submission_of_202(answer)
