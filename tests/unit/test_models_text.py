"""States and progress read as words and numbers as sent (``print(status.state,
status.progress)``), and progress serialises its whole numbers as integers."""

from __future__ import annotations

import pytest

from asyncreply_client import JobState, JobStatus
from asyncreply_client._models import Progress


@pytest.mark.parametrize("state", list(JobState))
def test_a_state_prints_as_its_wire_name(state: JobState) -> None:
    assert str(state) == f"{state}" == state.value
    assert repr(state).startswith("<JobState.")  # the repr stays a repr


@pytest.mark.parametrize(
    ("progress", "text"),
    [
        (Progress(current=1, total=4, message="step 1/4"), "1/4 (25%) step 1/4"),
        (Progress(current=0.5, total=1.0), "0.5/1 (50%)"),
        (Progress(current=2.5, total=10), "2.5/10 (25%)"),
        (Progress(current=3), "3"),
        (Progress(message="warming up"), "warming up"),
        (Progress(), ""),
    ],
)
def test_progress_prints_as_a_person_writes_it(progress: Progress, text: str) -> None:
    assert str(progress) == text


def test_whole_numbers_stay_integers_through_a_status() -> None:
    status = JobStatus.model_validate(
        {"state": "processing", "progress": {"current": 1.0, "total": 4, "message": "m"}}
    )
    assert status.progress is not None
    assert status.progress.model_dump(mode="json") == {"current": 1, "total": 4, "message": "m"}
    assert type(status.progress.current) is int
    huge = Progress(current=2.0**60, total=2.0**61)
    assert type(huge.current) is float  # beyond 2**53 a float is kept as it came


def test_the_docstring_examples_hold() -> None:
    import doctest

    from asyncreply_client import _models

    outcome = doctest.testmod(_models)
    assert outcome.attempted >= 5 and outcome.failed == 0
