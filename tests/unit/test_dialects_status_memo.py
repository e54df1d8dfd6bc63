"""The built-in dialects' memo of status answers (``dialects/_status_memo``): an answer read
again gives the snapshot a fresh reading would, with its own ``raw`` and the time left
measured again; what depends on the clock or the submission is never taken from the memo."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import httpx
import pytest

from asyncreply_client._headers import preference_applied_wait, retry_after_reads_date
from asyncreply_client._http import HttpResponse
from asyncreply_client._models import JobState, JobStatus
from asyncreply_client.dialects import AutoDialect, ReferenceDialect, StatusCodeDialect, Submission
from asyncreply_client.dialects._answer import Answer
from asyncreply_client.dialects._status_memo import StatusMemo, memo_key

URL = "http://api.test:8080/jobs/j1"
WALL = 1_795_424_400.0  # 2026-11-23T09:00:00Z
DATE = "Mon, 23 Nov 2026 09:00:00 GMT"
RUNNING = {
    "jobId": "j1",
    "status": "processing",
    "progress": {"current": 1, "total": 4},
    "createdAt": "2026-11-23T08:59:00.000Z",
    "estimatedCompletion": "2026-11-23T09:01:00.000Z",
    "statusUrl": "/jobs/j1",
    "eventsUrl": "/jobs/j1/events",
}


class Clock:
    def __init__(self, now: float = WALL) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def answer(
    body: Any = RUNNING, *, headers: dict[str, str] | None = None, truncated: bool = False
) -> HttpResponse:
    """A fresh response each call (its JSON not decoded yet), as the driver makes one."""
    return HttpResponse(
        200,
        httpx.Headers({"Content-Type": "application/json", "Date": DATE, **(headers or {})}),
        json.dumps(body).encode(),
        URL,
        truncated=truncated,
    )


def fresh(response: HttpResponse, clock: Clock, submission: Submission | None = None) -> JobStatus:
    """What a dialect that never saw the answer reads."""
    return AutoDialect(wall_clock=clock).interpret_status(response, submission=submission)


def same(a: JobStatus, b: JobStatus) -> None:
    assert a == b
    assert a.model_fields_set == b.model_fields_set


@pytest.mark.parametrize("make", [AutoDialect, ReferenceDialect])
def test_an_answer_read_again_is_read_as_afresh_with_its_own_raw(make: Any) -> None:
    clock = Clock()
    dialect = make(wall_clock=clock)
    first = dialect.interpret_status(answer())
    clock.now += 1.5  # 1.5 s later, the same answer (its Date within the skew allowed)
    again = dialect.interpret_status(answer())
    assert again.estimated_remaining == pytest.approx(60.0 - 1.5)
    assert first.estimated_remaining == pytest.approx(60.0)
    same(again, make(wall_clock=clock).interpret_status(answer()))
    assert again.raw == first.raw and again.raw is not first.raw  # never shared
    assert again.raw["progress"] is not first.raw["progress"]
    assert again is not first
    first.raw["progress"]["current"] = 99  # a caller changing its document changes no other
    third = dialect.interpret_status(answer())
    assert third.raw == json.loads(json.dumps(RUNNING)) and third.progress == again.progress


def test_a_document_changed_before_the_first_equal_answer_changes_no_later_one() -> None:
    # The first reading only puts its snapshot aside: the document kept for copies is the
    # first equal answer's own, never the one the first caller holds (and may change).
    clock = Clock()
    dialect = ReferenceDialect(wall_clock=clock)
    first = dialect.interpret_status(answer())
    first.raw["progress"]["current"] = 99
    first.raw["statusUrl"] = "/elsewhere"
    second = dialect.interpret_status(answer())
    second.raw["progress"]["total"] = 0
    third = dialect.interpret_status(answer())
    expected = json.loads(json.dumps(RUNNING))
    assert second.raw is not third.raw
    assert third.raw == expected
    same(third, fresh(answer(), clock))
    assert second.progress == third.progress == first.progress


def test_the_servers_date_still_wins_over_a_skewed_clock() -> None:
    clock = Clock()
    dialect = AutoDialect(wall_clock=clock)
    dialect.interpret_status(answer())
    clock.now += 3600  # the client's clock jumped: the answer's Date is the reference
    again = dialect.interpret_status(answer())
    assert again.estimated_remaining == pytest.approx(60.0)
    same(again, fresh(answer(), clock))


def test_a_retry_after_date_measured_with_the_clock_is_measured_each_time() -> None:
    body = {"jobId": "j1", "status": "processing"}
    no_date = {"Retry-After": "Mon, 23 Nov 2026 09:00:30 GMT"}

    def undated() -> HttpResponse:
        response = answer(body, headers=no_date)
        del response.headers["Date"]
        return response

    clock = Clock()
    dialect = AutoDialect(wall_clock=clock)
    assert dialect.interpret_status(undated()).retry_after == pytest.approx(30.0)
    clock.now += 10
    assert dialect.interpret_status(undated()).retry_after == pytest.approx(20.0)
    # With the server's Date the HTTP-date is measured from it: the same every time.
    dated = dialect.interpret_status(answer(body, headers=no_date))
    clock.now += 10
    assert dialect.interpret_status(answer(body, headers=no_date)) == dated
    assert dated.retry_after == pytest.approx(30.0)


def test_an_answer_that_differs_only_by_its_date_is_kept_and_measured_from_its_own_date() -> None:
    clock = Clock()
    dialect = AutoDialect(wall_clock=clock)
    memo = dialect._status_memo
    assert memo is not None
    dialect.interpret_status(answer())
    assert memo_key(answer()) == memo_key(answer(headers={"Date": "Mon, 23 Nov 2026 09:00:05 GMT"}))
    # 20 s later by the server's Date, the client's clock an hour off: the time left is
    # measured from this answer's Date, as a fresh reading measures it.
    clock.now += 3600
    later = answer(headers={"Date": "Mon, 23 Nov 2026 09:00:20 GMT"})
    kept = dialect.interpret_status(later)
    assert kept.estimated_remaining == pytest.approx(40.0)
    same(kept, fresh(answer(headers={"Date": "Mon, 23 Nov 2026 09:00:20 GMT"}), clock))


def test_a_retry_after_date_is_measured_from_each_answers_own_date() -> None:
    body = {"jobId": "j1", "status": "processing"}
    at = {"Retry-After": "Mon, 23 Nov 2026 09:00:30 GMT"}
    dialect = AutoDialect(wall_clock=Clock())
    first = dialect.interpret_status(answer(body, headers=at))
    later = dialect.interpret_status(
        answer(body, headers={**at, "Date": "Mon, 23 Nov 2026 09:00:10 GMT"})
    )
    assert first.retry_after == pytest.approx(30.0)
    assert later.retry_after == pytest.approx(20.0)


def test_a_terminal_answer_is_read_each_time() -> None:
    body = {"jobId": "j1", "status": "completed", "result": {"n": [1, 2]}}
    dialect = AutoDialect(wall_clock=Clock())
    first = dialect.interpret_status(answer(body))
    again = dialect.interpret_status(answer(body))
    assert first.state is JobState.COMPLETED and first == again
    assert again.result is not first.result  # a result is never shared either


def test_a_cut_body_or_an_error_is_not_kept() -> None:
    clock = Clock()
    dialect = AutoDialect(wall_clock=clock)
    assert memo_key(answer(truncated=True)) is None
    gone = HttpResponse(404, httpx.Headers(), b"", URL)
    for _ in range(2):
        with pytest.raises(Exception, match="no such job"):
            dialect.interpret_status(gone)


def test_what_the_submission_says_is_part_of_the_key() -> None:
    status = JobStatus(state=JobState.PENDING)
    by_location = Submission(status, URL, monitored_by="location")
    by_operation = Submission(status, URL, monitored_by="operation")
    memo = StatusMemo()
    response = answer()
    read = AutoDialect(wall_clock=Clock()).interpret_status(response)
    key = memo_key(response)
    assert key is not None
    memo.put(key, by_location, read, Answer.of(response, WALL))
    assert memo.get(key, answer(), by_operation, WALL) is None
    assert memo.get(key, answer(), None, WALL) is None
    kept = memo.get(key, answer(), by_location.with_status(read), WALL)
    assert kept is not None
    same(kept, read)


def test_a_subclass_reads_every_answer_itself() -> None:
    class Counting(AutoDialect):
        __slots__ = ("reads",)

        def __init__(self) -> None:
            super().__init__(wall_clock=Clock())
            self.reads = 0

        def _read_status(self, answer: Any, submission: Any) -> JobStatus:
            self.reads += 1
            return super()._read_status(answer, submission)

    dialect = Counting()
    for _ in range(3):
        dialect.interpret_status(answer())
    assert dialect.reads == 3
    assert StatusCodeDialect()._status_memo is None  # only auto and reference opt in


def test_submission_with_status_is_replace() -> None:
    status = JobStatus(state=JobState.PROCESSING, id="j1")
    submission = Submission(
        JobStatus(state=JobState.PENDING),
        URL,
        events_url=URL + "/events",
        cancel_url=URL,
        final_url="http://api.test:8080/r",
        retry_after=1.5,
        monitored_by="operation",
        final_from_monitor=True,
    )
    assert submission.with_status(status) == replace(submission, status=status)


@pytest.mark.parametrize(
    ("headers", "reads"),
    [
        ({}, False),
        ({"Retry-After": "3"}, False),
        ({"Retry-After": "Sun, 06 Nov 1994 08:49:40 GMT"}, True),
        ({"Retry-After": "Sun, 06 Nov 1994 08:49:40 GMT", "Date": DATE}, True),
        ({"Retry-After": "Sun, 06 Nov 1994 08:49:40 GMT", "Date": "garbage"}, True),
        ({"Retry-After": "3", "Date": DATE}, False),
        ({"Retry-After": "Sun, 06 Nov 1994 08:49:40 GMT", "Retry-After-Ms": "200"}, False),
        ({"Retry-After": "soon"}, True),
    ],
)
def test_retry_after_reads_date(headers: dict[str, str], reads: bool) -> None:
    assert retry_after_reads_date(httpx.Headers(headers)) is reads


def test_preference_applied_wait_read_again_is_the_same() -> None:
    for _ in range(2):  # the second time from its memo of values
        assert preference_applied_wait({"Preference-Applied": "wait=10"}) == 10.0
        assert preference_applied_wait({"Preference-Applied": "respond-async"}) is None
        assert preference_applied_wait({"Preference-Applied": "wait=-3"}) == 0.0
        assert preference_applied_wait({"Preference-Applied": "wait=x"}) == 0.0
        both = httpx.Headers(
            [("Preference-Applied", "return=minimal"), ("Preference-Applied", "wait=4")]
        )
        assert preference_applied_wait(both) == 4.0


def test_a_subclass_without_the_base_init_still_reads_status() -> None:
    class Bare(ReferenceDialect):
        __slots__ = ()

        def __init__(self) -> None:  # the base's __init__ not called
            self._wall_clock = Clock()

    status = Bare().interpret_status(answer())
    assert status.state is JobState.PROCESSING and status.id == "j1"
