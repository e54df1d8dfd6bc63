"""Property tests: whatever a server sends, a dialect answers with a ``JobStatus`` /
``Submission`` or one of our typed errors, never anything else."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncreply_client._errors import (
    JobExpiredError,
    JobNotFoundError,
    ProtocolError,
    RequestRejectedError,
)
from asyncreply_client._http import HttpResponse
from asyncreply_client._models import JobStatus
from asyncreply_client.dialects import (
    PRESETS,
    ArmDialect,
    AutoDialect,
    DeclarativeDialect,
    Dialect,
    GoogleDialect,
    MicrosoftDialect,
    ReferenceDialect,
    StatusCodeDialect,
    Submission,
    is_job_failure_response,
    preset,
)

DIALECTS: list[Dialect] = [
    ReferenceDialect(wall_clock=lambda: 1e9),
    StatusCodeDialect(wall_clock=lambda: 1e9),
    MicrosoftDialect(wall_clock=lambda: 1e9),
    GoogleDialect("{origin}/v1/{name}", wall_clock=lambda: 1e9),
    GoogleDialect("{name}{origin}{{}}", wall_clock=lambda: float("nan")),
    ArmDialect(wall_clock=lambda: 1e9),
    AutoDialect(wall_clock=lambda: 1e9),
    *(preset(name) for name in PRESETS),
    DeclarativeDialect(
        state="state",
        states={"RUN": "processing", "OK": "completed"},
        status_url="/v2/{tenant}/jobs/{id}",
        result_url="resultUrl",
        progress="progress",
        progress_message="metadata",
        cancel_url="cancelUrl",
        events_url="eventsUrl",
        events={"status": "status", "message": "progress", "complete": "end"},
        event_state="status",
        wall_clock=lambda: 1e9,
    ),
]
ALLOWED = (ProtocolError, JobNotFoundError, JobExpiredError, RequestRejectedError)

KEYS = [
    "jobId", "id", "name", "status", "state", "done", "error", "result", "response",
    "metadata", "progress", "percentComplete", "progressPercent", "properties",
    "provisioningState", "statusUrl", "status_url", "monitorUrl", "href", "_links",
    "eventsUrl", "cancelUrl", "retryUrl", "resultUrl", "resourceLocation", "retryAfter",
    "retryAfterMs", "estimatedCompletion", "estimatedWaitTime", "createdAt", "startTime",
    "updateTime", "genericMetadata", "code", "message", "retryable", "details", "current",
    "total", "state", "deadLetter", "@type",
]  # fmt: skip
WORDS = [
    "pending", "processing", "completed", "failed", "cancelled", "inFlight", "deadLetter",
    "NotStarted", "Running", "Succeeded", "Failed", "Canceled", "InProgress", "Creating",
    "RUNNING", "done", "",
]  # fmt: skip
URLISH = [
    "/jobs/1", "jobs/1", "../x", "http://other.test/a", "https://h:99999/x", "http://[::1",
    "javascript:alert(1)", "//evil.test/x", "?q=1", "#frag", "http://h/\x00", " ",
    "operations/1", "http://ünï.test/x",
]  # fmt: skip
TIMES = ["2026-11-23T09:00:00.123Z", "2026-13-45T99:99:99Z", "1994-11-06", "soon", "0"]

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.sampled_from([10**400, -(10**400)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(WORDS),
    st.sampled_from(URLISH),
    st.sampled_from(TIMES),
    st.text(max_size=20),
)
json_values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(KEYS), st.text(max_size=5)), children, max_size=8
        ),
    ),
    max_leaves=30,
)


def _encode(value: Any) -> bytes:
    return json.dumps(value).encode()


documents = st.dictionaries(st.sampled_from(KEYS), json_values, min_size=1, max_size=10)
bodies = st.one_of(
    documents.map(_encode),
    json_values.map(_encode),
    st.binary(max_size=200),
    st.sampled_from([b"", b"null", b"{", b'"x"', b"[]", b"\xff\xfe", b"NaN", b"1e999"]),
)
header_names = st.one_of(
    st.sampled_from(
        [
            "Location",
            "Operation-Location",
            "Azure-AsyncOperation",
            "Retry-After",
            "Retry-After-Ms",
            "x-ms-retry-after-ms",
            "Link",
            "Date",
            "Content-Type",
            "Content-Disposition",
            "Preference-Applied",
        ]
    ),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=10),
)
header_values = st.one_of(
    st.sampled_from(URLISH).map(str.encode),
    st.sampled_from(
        [
            b"application/json",
            b"text/csv",
            b"application/problem+json",
            b"0",
            b"5",
            b"-1",
            b"Sun, 06 Nov 1994 08:49:37 GMT",
            b'</e>; rel="events"',
            b"<",
            b"wait=5",
            b'attachment; filename="../x"',
            b"99999999999999999999999999999999999",
        ]
    ),
    st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
)
headers = st.lists(st.tuples(header_names, header_values), max_size=6)
codes = st.one_of(
    st.sampled_from([200, 201, 202, 204, 303, 404, 409, 410, 500]),
    st.integers(min_value=100, max_value=599),
)
urls = st.sampled_from(
    ["http://api.test/jobs", "https://api.test:8443/v1/x?y=1", "http://127.0.0.1:1/"]
)
methods = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"])


def _response(code: int, hdrs: list[tuple[str, bytes]], body: bytes, url: str, method: str):
    raw = [(name.encode("ascii", "ignore") or b"x", value) for name, value in hdrs]
    return HttpResponse(code, httpx.Headers(raw), body, url, method)


def _check_status(status: JobStatus) -> None:
    assert isinstance(status, JobStatus)
    if status.retry_after is not None:
        assert status.retry_after >= 0 and math.isfinite(status.retry_after)
    if status.estimated_remaining is not None:
        assert status.estimated_remaining >= 0
    for url in (status.result_url, status.status_url, status.events_url, status.cancel_url):
        assert url is None or url.startswith(("http://", "https://"))


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: repr(d))
@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(code=codes, hdrs=headers, body=bodies, url=urls, method=methods)
def test_interpret_status_is_total(
    dialect: Dialect, code: int, hdrs: list[tuple[str, bytes]], body: bytes, url: str, method: str
) -> None:
    response = _response(code, hdrs, body, url, method)
    try:
        status = dialect.interpret_status(response)
    except ALLOWED:
        return
    _check_status(status)


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: repr(d))
@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(code=codes, hdrs=headers, body=bodies, url=urls, method=methods)
def test_interpret_submit_is_total(
    dialect: Dialect, code: int, hdrs: list[tuple[str, bytes]], body: bytes, url: str, method: str
) -> None:
    response = _response(code, hdrs, body, url, method)
    try:
        submission = dialect.interpret_submit(response)
    except ALLOWED:
        return
    assert isinstance(submission, Submission)
    _check_status(submission.status)
    # Not terminal means there is somewhere to poll.
    assert submission.status.is_terminal or submission.status_url is not None
    assert submission.retry_after == submission.status.retry_after


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: repr(d))
@given(
    event=st.one_of(st.sampled_from(["status", "progress", "complete", "message", ""]), st.text()),
    data=st.one_of(json_values.map(json.dumps), st.text(max_size=100)),
)
def test_interpret_event_is_total(dialect: Dialect, event: str, data: str) -> None:
    try:
        status = dialect.interpret_event(event, data, url="http://api.test/jobs/1/events")
    except ProtocolError:
        return
    if status is not None:
        _check_status(status)


@given(code=codes, hdrs=headers, body=bodies)
def test_is_job_failure_response_is_total(
    code: int, hdrs: list[tuple[str, bytes]], body: bytes
) -> None:
    response = _response(code, hdrs, body, "http://api.test/jobs/1", "GET")
    for dialect in DIALECTS:
        verdict = is_job_failure_response(response, dialect=dialect)
        assert isinstance(verdict, bool)
        # The verdict and interpret_status agree for server errors (what the retry layer uses).
        if 500 <= code < 600 and code != 500:
            continue
        if code == 500:
            try:
                dialect.interpret_status(response)
            except ALLOWED:
                assert not verdict
            else:
                assert verdict


# --------------------------------------------------------------------------------------------
# Auto recognition: on the reference server's own shapes, auto agrees with the explicit dialect.

REF = ReferenceDialect(wall_clock=lambda: 1e9)
SC = StatusCodeDialect(wall_clock=lambda: 1e9)
AUTO = AutoDialect(wall_clock=lambda: 1e9)
STATES = ["pending", "processing", "completed", "failed", "cancelled"]


@st.composite
def reference_documents(draw: st.DrawFn) -> dict[str, Any]:
    state = draw(st.sampled_from(STATES))
    doc: dict[str, Any] = {
        "jobId": draw(st.text(min_size=1, max_size=8)),
        "type": "t",
        "status": state,
        "attempt": draw(st.integers(1, 5)),
        "progress": draw(
            st.one_of(
                st.none(),
                st.fixed_dictionaries(
                    {"current": st.integers(0, 10), "total": st.integers(1, 10)},
                    optional={"message": st.text(max_size=10)},
                ),
            )
        ),
        "createdAt": "2026-11-23T09:00:00.000Z",
        "retryAfter": draw(st.one_of(st.none(), st.floats(0, 10))),
        "statusUrl": "/jobs/x",
        "eventsUrl": "/jobs/x/events",
        "cancelUrl": "/jobs/x",
    }
    if state == "completed":
        doc["resultUrl"] = "/jobs/x/result"
        if draw(st.booleans()):
            doc["result"] = draw(json_values)
    if state == "failed":
        doc["error"] = {"code": "e", "message": "m", "retryable": draw(st.booleans())}
        doc["deadLetter"] = draw(st.booleans())
    return doc


def _same(a: JobStatus, b: JobStatus) -> None:
    keys = ("state", "id", "progress", "result", "has_result", "result_url", "error")
    assert {k: getattr(a, k) for k in keys} == {k: getattr(b, k) for k in keys}
    assert (a.retry_url, a.events_url, a.retry_after) == (b.retry_url, b.events_url, b.retry_after)


@given(doc=reference_documents(), retry_ms=st.one_of(st.none(), st.integers(0, 10_000)))
def test_auto_agrees_with_reference_on_reference_documents(
    doc: dict[str, Any], retry_ms: int | None
) -> None:
    hdrs = [("Content-Type", b"application/json")]
    if retry_ms is not None:
        hdrs.append(("Retry-After-Ms", str(retry_ms).encode()))
    response = _response(200, hdrs, _encode(doc), "http://api.test/jobs/x", "GET")
    _same(AUTO.interpret_status(response), REF.interpret_status(response))
    event = json.dumps(doc)
    url = "http://api.test/jobs/x/events"
    first, second = (
        AUTO.interpret_event("status", event, url=url),
        REF.interpret_event("status", event, url=url),
    )
    assert first is not None and second is not None
    _same(first, second)


@given(
    code=st.sampled_from([202, 303, 409, 500]),
    state=st.sampled_from(["pending", "inFlight", "failed", "deadLetter", "cancelled"]),
)
def test_auto_agrees_with_status_code_on_its_shapes(code: int, state: str) -> None:
    body = {"jobId": "x", "state": state, "error": {"code": state}}
    hdrs = [("Content-Type", b"application/json"), ("Location", b"/jobs/x/result")]
    response = _response(code, hdrs, _encode(body), "http://api.test/jobs/x", "GET")
    try:
        expected = SC.interpret_status(response)
    except (ProtocolError, RequestRejectedError) as exc:
        with pytest.raises(type(exc)):
            AUTO.interpret_status(response)
        return
    _same(AUTO.interpret_status(response), expected)


@given(result=json_values)
def test_auto_reads_a_stateless_200_as_the_result(result: Any) -> None:
    # ... of a job this client submitted (else it could be a wrong URL: see test_dialects).
    document_keys = ("status", "state", "provisioningState", "done", "name", "properties")
    if isinstance(result, dict) and any(k in result for k in document_keys):
        return  # shapes auto reads as status documents (see the module docs)
    response = _response(
        200, [("Content-Type", b"application/json")], _encode(result), "http://a.test/j", "GET"
    )
    submitted = AUTO.interpret_submit(
        _response(202, [("Location", b"/j")], b"", "http://a.test/jobs", "POST")
    )
    try:
        status = AUTO.interpret_status(response, submission=submitted)
    except ProtocolError as exc:
        assert "a listing of jobs" in str(exc)  # a list or page of job documents
        return
    _same(status, SC.interpret_status(response))
    assert status.has_result
