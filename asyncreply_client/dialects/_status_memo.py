"""A dialect's memo of the running jobs' status answers it read last.

A poller gets the same answer again and again while a job runs: the same status code,
headers and body, but for the ``Date`` header, which changes once a second. What a built-in
dialect reads from such an answer depends on the answer alone, but for what is measured
from when it was sent (its ``Date``, or the clock): the time left until an
``estimatedCompletion``, and a ``Retry-After`` HTTP-date. So the snapshot read from an
answer is kept (16 answers per dialect), keyed by everything the dialect looks at but the
``Date``: status code, URL, method, the other headers, body, and what it reads of the
submission (its final URL, whether its monitor's last answer is the result, what its
monitor is). An equal answer gets a new snapshot made of it, with the time left measured
again (from its own ``Date`` and the clock) and a document of its own: ``raw`` is never
shared between snapshots (the first equal answer's own document is a copy's model, kept
and copied for each later snapshot, several times cheaper than decoding it again). An
answer read for the first time only puts its snapshot aside: the copy and the fields are
made at the first equal answer, as most answers are never seen again (each long poll's,
each change of a job's progress). Only non-terminal snapshots are
kept (a job's end is read once), never an error, and never a snapshot whose
``Retry-After`` is an HTTP-date (it is measured from the answer's ``Date``).
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING, Any

from .._headers import retry_after_reads_date, server_date
from .._http import HttpResponse
from .._models import JobStatus
from ._answer import Answer, remaining_until

if TYPE_CHECKING:
    from ._base import Submission

#: What a built-in dialect reads of a submission when it reads a status answer.
_Terms = tuple[str | None, bool, str | None] | None


def _terms(submission: Submission | None) -> _Terms:
    if submission is None:
        return None
    return (submission.final_url, submission.final_from_monitor, submission.monitored_by)


__all__ = ["StatusMemo", "memo_key"]

#: Answers kept per dialect: a poller's few; a fan-out's new ones pass through.
_MAX_ENTRIES = 16

_Key = tuple[int, str, str, bytes, tuple[tuple[bytes, bytes], ...]]


def memo_key(response: HttpResponse) -> _Key | None:
    """What a dialect reads of ``response`` (``None``: not to be memoised, a cut body)."""
    if response.truncated:
        return None
    return (
        response.status_code,
        response.url,
        response.method,
        response.content,
        tuple([pair for pair in response.headers.raw if pair[0].lower() != b"date"]),
    )


def _copy(value: Any) -> Any:
    """A decoded JSON document copied (its objects and arrays; strings and numbers are
    immutable): what decoding the same bytes again would give."""
    kind = type(value)
    if kind is dict:
        return {
            key: _copy(item) if type(item) in _CONTAINERS else item for key, item in value.items()
        }
    if kind is list:
        return [_copy(item) if type(item) in _CONTAINERS else item for item in value]
    return value


_CONTAINERS = frozenset({dict, list})


class _Entry:
    """A kept snapshot. Kept as it was read (``status``), and made ready for copies at the
    first equal answer (``fields``: its constructor's arguments but for ``raw`` and the
    time left; ``raw``: a copy of its document; ``eta``: the estimated completion the time
    left is measured to): most answers are never seen again (a long poll's, a job's
    progress), so what only a hit needs is not paid for at every reading."""

    __slots__ = ("eta", "fields", "raw", "status", "terms")

    def __init__(self, terms: _Terms, status: JobStatus) -> None:
        self.terms = terms
        self.status: JobStatus | None = status
        self.fields: dict[str, Any] = {}
        self.raw: dict[str, Any] = {}
        self.eta: float | None = None

    def ready(self, status: JobStatus, raw: dict[str, Any]) -> None:
        """Make the entry ready for copies (at the first hit); ``raw``: a document equal to
        the kept snapshot's, that no caller holds yet."""
        eta: float | None = None
        if status.estimated_completion is not None:
            try:
                eta = status.estimated_completion.timestamp()
            except (OverflowError, ValueError, OSError):
                eta = None  # no time left can be measured from it, now or later
        self.fields = {
            name: getattr(status, name)
            for name in status.model_fields_set
            if name != "raw" and (eta is None or name != "estimated_remaining")
        }
        self.raw = _copy(raw)
        self.eta = eta
        self.status = None


class StatusMemo:
    """The snapshots of the last status answers one dialect read (thread-safe enough: a
    lost or doubled entry only costs a reading)."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[_Key, _Entry] = {}

    def get(
        self,
        key: _Key,
        response: HttpResponse,
        submission: Submission | None,
        wall_now: float,
    ) -> JobStatus | None:
        """A new snapshot of an answer equal to a kept one (``None``: none kept)."""
        entry = self._entries.get(key)
        if entry is None or entry.terms != _terms(submission):
            return None
        raw: Any
        kept = entry.status
        if kept is not None:
            # The first equal answer: its own document (the same bytes decoded, what a
            # full reading would give it), and a copy kept for the next ones.
            raw = response.json()
            if type(raw) is not dict or retry_after_reads_date(response.headers):
                # A Retry-After measured from the answer's Date is read again each time
                # (the headers looked at here are the kept answer's: only its Date differs).
                self._drop(key)
                return None
            try:
                entry.ready(kept, raw)
            except RecursionError:  # a document too deep to copy is not kept
                self._drop(key)
                return None
        else:
            raw = _copy(entry.raw)
        values = dict(entry.fields)
        values["raw"] = raw
        if entry.eta is not None:
            remaining = remaining_until(
                entry.eta,
                server_date(response.headers),
                wall_now if math.isfinite(wall_now) else 0.0,
            )
            if remaining is not None:
                values["estimated_remaining"] = remaining
        return JobStatus(**values)

    def _drop(self, key: _Key) -> None:
        with contextlib.suppress(KeyError):
            del self._entries[key]

    def put(
        self, key: _Key, submission: Submission | None, status: JobStatus, answer: Answer
    ) -> None:
        """Keep ``status``, read from ``answer``, when an equal answer may be read so again."""
        raw = answer.raw
        if status.is_terminal or status.raw is not raw or type(raw) is not dict:
            return
        entries = self._entries
        if len(entries) >= _MAX_ENTRIES:
            # The oldest goes (another thread may have taken it first).
            with contextlib.suppress(KeyError, RuntimeError, StopIteration):
                del entries[next(iter(entries))]
        entries[key] = _Entry(_terms(submission), status)
