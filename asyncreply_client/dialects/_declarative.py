"""A dialect described as plain data: any JSON job API without writing code.

:class:`DeclarativeDialect` reads answers through a description (which field holds the state
and what its words mean, where the status, result, cancel and events URLs are, where the
output, error and progress are). It only reads: the flow makes every decision, as for every
other dialect. The presets (``dialect="replicate"``…) are descriptions of this kind.
"""

from __future__ import annotations

import importlib
import inspect
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from .._errors import NoStatusUrlError
from .._headers import parse_number
from .._http import HttpResponse
from .._models import JobError, JobState, JobStatus, Progress
from ._answer import Answer, header_monitor, raise_not_found_or_gone, snapshot
from ._base import Dialect, Submission
from ._fields import MAX_TEXT, Doc, job_error, parse_state, progress_of, short_text
from ._rejections import rejection_of
from ._spec import EVENT_ROLES, BodyPath, UrlSpec, Vocabulary, as_doc

__all__ = ["CANCEL_METHODS", "DeclarativeDialect", "cancel_method_of", "result_failure_of"]

#: The methods a cancel request may use.
CANCEL_METHODS = ("POST", "PUT", "PATCH", "DELETE", "GET")
_URL_OPTIONS = ("status_url", "result_url", "cancel_url", "events_url")
_PATH_OPTIONS = (
    "state",
    "id",
    "output",
    "error",
    "error_code",
    "progress",
    "progress_current",
    "progress_total",
    "progress_message",
    "event_state",
)


class DeclarativeDialect:
    """A JSON job API described as data: fields, state words and URLs.

    Every option is plain data, validated here (a ``ValueError`` names the option at
    fault). A *body path* is dotted (``urls.get``, ``errors.data.0``); a *URL* is a body
    path or a template (it starts with ``/`` or ``http``, or holds ``{``) whose
    ``{field}`` placeholders are filled from the body, else from the request URL's path
    segment at the same place (``/v2/{endpoint}/status/{id}``).

    Args:
        name: the dialect's name (logs, errors, the contract report).
        state: body path of the state word (required).
        states: ``{word: state}`` with states ``pending``, ``processing``, ``completed``,
            ``failed``, ``cancelled``; words it lacks fall back to the shared vocabulary.
        case_sensitive: whether ``states`` words match exactly (default: ignore case).
        id: body path of the job's id.
        status_url: the status monitor (a submission that states a running job and gives
            none is a :class:`~asyncreply_client.NoStatusUrlError`, never a result).
        output: body path of the finished job's output (``None``: the document itself).
        result_url: a URL to GET for the output (it wins over ``output``); a 4xx/5xx
            answered there with an error body is the job's failure.
        error, error_code: body paths of the failure's text (a string, an error object,
            or a list of them) and code.
        progress: body path of a percentage, a fraction or a ``{current, total}`` object;
            ``progress_current`` / ``progress_total``: paths of the two numbers;
            ``progress_message``: a path of text (a log string's last line, a list of log
            entries' last ``message``).
        cancel_url: where to cancel (``None``: this API cannot cancel, and ``cancel()``
            raises :class:`~asyncreply_client.CancelNotSupportedError`, sending nothing).
        cancel_method: the cancel request's method (default ``POST``).
        events_url: an SSE stream; ``events`` maps event names to roles: ``status`` (the
            data is a status document), ``progress`` (a log line), ``output`` (a chunk of
            output: the job runs), ``error`` (the job failed; the data is its error),
            ``end`` (the job ended: ``event_state`` is the body path of the word saying how,
            completed when absent). Without ``events`` every event's data is read as a
            status document.
        wall_clock: epoch seconds, for ``Retry-After`` dates (inject a fake one in tests).

    Example:
        >>> d = DeclarativeDialect(name="jobs", state="phase", status_url="/jobs/{id}",
        ...                        states={"WAIT": "pending", "RUN": "processing",
        ...                                "OK": "completed", "KO": "failed"})
        >>> d.name, d.cancel_method
        ('jobs', None)
        >>> DeclarativeDialect(state="status", status_url="/jobs/all")
        Traceback (most recent call last):
        ...
        ValueError: status_url: the URL template '/jobs/all' names no field (e.g. {id})
    """

    __slots__ = (
        "_events",
        "_options",
        "_paths",
        "_urls",
        "_vocabulary",
        "_wall_clock",
        "cancel_method",
        "name",
    )

    def __init__(
        self,
        *,
        name: str = "declarative",
        state: str = "status",
        states: Mapping[str, str] | None = None,
        case_sensitive: bool = False,
        id: str | None = "id",
        status_url: str | None = None,
        output: str | None = None,
        result_url: str | None = None,
        error: str | None = "error",
        error_code: str | None = None,
        progress: str | None = None,
        progress_current: str | None = None,
        progress_total: str | None = None,
        progress_message: str | None = None,
        cancel_url: str | None = None,
        cancel_method: str = "POST",
        events_url: str | None = None,
        events: Mapping[str, str] | None = None,
        event_state: str | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"name: expected a non-empty string; got {name!r}")
        if not isinstance(case_sensitive, bool):
            raise ValueError(f"case_sensitive: expected true or false; got {case_sensitive!r}")
        self.name = name.strip()
        values: dict[str, Any] = dict(
            state=state,
            id=id,
            output=output,
            error=error,
            error_code=error_code,
            progress=progress,
            progress_current=progress_current,
            progress_total=progress_total,
            progress_message=progress_message,
            event_state=event_state,
        )
        if state is None:
            raise ValueError("state: the body path of the state word is required")
        self._paths: dict[str, BodyPath] = {
            key: BodyPath.parse(key, value) for key, value in values.items() if value is not None
        }
        urls = dict(
            status_url=status_url,
            result_url=result_url,
            cancel_url=cancel_url,
            events_url=events_url,
        )
        self._urls: dict[str, UrlSpec] = {
            key: UrlSpec.parse(key, value) for key, value in urls.items() if value is not None
        }
        self._vocabulary = (
            None
            if states is None
            else Vocabulary.parse("states", states, case_sensitive=case_sensitive)
        )
        method = cancel_method.strip().upper() if isinstance(cancel_method, str) else None
        if method not in CANCEL_METHODS:
            raise ValueError(
                f"cancel_method: expected one of {', '.join(CANCEL_METHODS)}; got {cancel_method!r}"
            )
        #: The cancel request's method; ``None``: this API has no cancel.
        self.cancel_method: str | None = method if cancel_url is not None else None
        self._events = None if events is None else _event_roles(events)
        if self._events is not None and events_url is None:
            raise ValueError("events: event roles need an events_url")
        self._options: dict[str, Any] = {
            key: value
            for key, value in dict(
                name=self.name,
                **values,
                **urls,
                states=None if states is None else dict(states),
                case_sensitive=case_sensitive or None,
                cancel_method=self.cancel_method if self.cancel_method != "POST" else None,
                events=None if events is None else dict(events),
            ).items()
            if value is not None
        }
        self._wall_clock = wall_clock

    # -- construction from data ------------------------------------------------------------

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> DeclarativeDialect:
        """A dialect from a mapping of its options (parsed JSON or TOML).

        Raises:
            ValueError: not a mapping, an unknown key, or an invalid option.

        Example:
            >>> DeclarativeDialect.from_mapping({"name": "x", "state": "s", "colour": 1})
            Traceback (most recent call last):
            ...
            ValueError: unknown dialect option(s): colour
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a dialect description is a mapping; got {type(data).__name__}")
        unknown = sorted(str(key) for key in data if key not in OPTIONS)
        if unknown:
            raise ValueError(f"unknown dialect option(s): {', '.join(unknown)}")
        return cls(**{str(key): value for key, value in data.items()})

    @classmethod
    def from_file(cls, path: str | Path) -> DeclarativeDialect:
        """A dialect from a JSON (``.json``) or TOML (``.toml``) file of its options.

        Raises:
            ValueError: another suffix, a file that does not parse, or invalid options.
            OSError: the file cannot be read.
        """
        file = Path(path)
        suffix = file.suffix.lower()
        text = file.read_text(encoding="utf-8")
        try:
            if suffix == ".json":
                data = json.loads(text)
            elif suffix == ".toml":
                data = _load_toml(text)
            else:
                raise ValueError(f"{file}: a dialect file ends in .json or .toml")
        except ValueError as exc:
            raise ValueError(f"{file}: {exc}") from None
        return cls.from_mapping(data)

    def describe(self) -> dict[str, Any]:
        """The options this dialect was built from (those set), as plain data."""
        return dict(self._options)

    def __repr__(self) -> str:
        return f"DeclarativeDialect({self.name!r})"

    # -- the Dialect protocol --------------------------------------------------------------

    def interpret_submit(self, response: HttpResponse) -> Submission:
        """Read a submission's answer (see :meth:`Dialect.interpret_submit`).

        Raises:
            NoStatusUrlError: it states a running job and names no status URL.
            SubmissionRejectedError: a 4xx.
            ProtocolError: an answer that states no state this dialect knows.
        """
        answer = self._answer(response)
        code = answer.status_code
        if code == 303:
            status = self._see_other(answer)
            return Submission(status=status, status_url=None)
        if code is not None and 200 <= code < 300:
            state = self._state(answer, required=code != 202) or JobState.PENDING
            status = self._status(answer, state)
            monitor = status.status_url or header_monitor(answer, with_location=code == 202)
            if monitor is None and answer.method == "GET" and not state.is_terminal:
                monitor = answer.url
            if monitor is None and not state.is_terminal:
                raise NoStatusUrlError(
                    f"{self.name} dialect: the job is {state.value} but the answer names no "
                    "status URL; set the dialect's status_url (a body path such as 'urls.get' "
                    "or a template such as '/jobs/{id}')",
                    status_code=code,
                    url=answer.url,
                    body=answer.content,
                )
            return Submission(
                status=status,
                status_url=monitor,
                events_url=status.events_url,
                cancel_url=status.cancel_url,
                retry_after=status.retry_after,
                monitored_by=None if monitor is None else "body",
            )
        failed = self._failure(answer)
        if failed is not None:
            return Submission(status=failed, status_url=failed.status_url)
        if code is not None and 400 <= code < 500:
            raise rejection_of(answer, submission=True)
        raise answer.protocol_error(f"{self.name} dialect: unexpected answer to a submission")

    def interpret_status(
        self, response: HttpResponse, *, submission: Submission | None = None
    ) -> JobStatus:
        """Read a status answer (see :meth:`Dialect.interpret_status`).

        Raises:
            JobNotFoundError: 404.
            JobExpiredError: 410.
            ProtocolError: an answer that states no state this dialect knows.
        """
        answer = self._answer(response)
        code = answer.status_code
        raise_not_found_or_gone(answer)
        if code == 303:
            return self._see_other(answer)
        if code in (200, 201, 202):
            invalid = answer.invalid_json_error("the status answer's body")
            if invalid is not None:
                raise invalid
            state = self._state(answer, required=code != 202) or JobState.PENDING
            return self._status(answer, state)
        failed = self._failure(answer)
        if failed is not None:
            return failed
        if code is not None and 400 <= code < 500:
            raise rejection_of(answer, what="status request")
        raise answer.protocol_error(f"{self.name} dialect: unexpected status answer")

    def interpret_event(self, event: str, data: str, *, url: str) -> JobStatus | None:
        """Read one SSE event by the role ``events`` gives its name (``None``: no status)."""
        text = data if isinstance(data, str) else ""
        try:
            value: Any = json.loads(text) if text.strip() else None
        except (ValueError, RecursionError):
            value = None
        answer = Answer.build(
            status_code=None,
            headers=httpx.Headers(),
            content=text.encode("utf-8", "replace"),
            url=url,
            method="GET",
            value=value,
            wall_now=self._wall_clock(),
        )
        role = "status" if self._events is None else self._events.get(event)
        if role == "status":
            state = self._state(answer, required=self._events is not None)
            return None if state is None else self._status(answer, state, with_result=False)
        if role == "progress":
            message = _last_line(text)
            progress = None if message is None else Progress(message=message)
            status = snapshot(answer, JobState.PROCESSING)
            return status if progress is None else status.model_copy(update={"progress": progress})
        if role == "output":
            return snapshot(answer, JobState.PROCESSING)
        if role == "error":
            error = self._error(answer.doc) if answer.doc is not None else None
            if error is None:
                error = JobError(message=text.strip()[:MAX_TEXT] or None)
            return snapshot(answer, JobState.FAILED).model_copy(update={"error": error})
        if role == "end":
            return self._end(answer)
        return None

    def interpret_result_failure(self, response: HttpResponse) -> JobStatus | None:
        """The job's failure a result-URL answer states, else ``None``.

        With a ``result_url``, a 4xx (other than 401, 403, 404, 410) or 5xx answered there
        with a JSON body is the vendor's documented failure: the job failed, for the reason
        the body gives (fal answers a failed request's ``response_url`` this way).
        """
        code = response.status_code
        if "result_url" not in self._urls or code < 400 or code in (401, 403, 404, 410):
            return None
        answer = self._answer(response)
        if answer.doc is None:
            return None
        status = snapshot(answer, JobState.FAILED)
        return status.model_copy(update={"error": self._error(answer.doc) or JobError()})

    # -- reading ---------------------------------------------------------------------------

    def _answer(self, response: HttpResponse) -> Answer:
        return Answer.of(response, self._wall_clock())

    def _get(self, key: str, doc: object) -> Any:
        path = self._paths.get(key)
        return None if path is None else path.get(doc)

    def _url(self, key: str, answer: Answer) -> str | None:
        spec = self._urls.get(key)
        if spec is None:
            return None
        return answer.resolve(spec.build(answer.doc or {}, answer.url))

    def _word_state(self, word: object, where: str, answer: Answer) -> JobState:
        state = self._vocabulary.state_of(word) if self._vocabulary is not None else None
        state = state or parse_state(word)
        if state is None:
            raise answer.protocol_error(
                f"{self.name} dialect: unknown state word {word!r} at {where!r}; add it to "
                "the dialect's states"
            )
        return state

    def _state(self, answer: Answer, *, required: bool) -> JobState | None:
        word = self._get("state", answer.doc)
        if word is None:
            if required:
                raise answer.protocol_error(
                    f"{self.name} dialect: the answer states no job state at "
                    f"{self._paths['state'].text!r}"
                )
            return None
        return self._word_state(word, self._paths["state"].text, answer)

    def _see_other(self, answer: Answer) -> JobStatus:
        location = answer.location()
        if location is None:
            raise answer.protocol_error("303 See Other without a usable Location")
        return snapshot(answer, JobState.COMPLETED, result_url=location)

    def _failure(self, answer: Answer) -> JobStatus | None:
        """A 409 / 5xx whose body states a failed or cancelled job."""
        code = answer.status_code or 0
        if not (code == 409 or 500 <= code < 600) or answer.doc is None:
            return None
        word = self._get("state", answer.doc)
        state = None if word is None else self._vocabulary_or_shared(word)
        wanted = JobState.CANCELLED if code == 409 else JobState.FAILED
        return self._status(answer, state) if state is wanted else None

    def _vocabulary_or_shared(self, word: object) -> JobState | None:
        state = self._vocabulary.state_of(word) if self._vocabulary is not None else None
        return state or parse_state(word)

    def _status(self, answer: Answer, state: JobState, *, with_result: bool = True) -> JobStatus:
        doc = answer.doc or {}
        result: Any = None
        has_result = False
        result_url = None
        if state is JobState.COMPLETED:
            # A URL is no result: an event's completed document may name it too.
            result_url = self._url("result_url", answer)
            if result_url is None and with_result:
                has_result = True
                result = self._get("output", doc) if "output" in self._paths else answer.raw
        status = snapshot(
            answer,
            state,
            result=result,
            has_result=has_result,
            result_url=result_url,
            status_url=self._url("status_url", answer),
        )
        update: dict[str, Any] = {
            "id": short_text(self._get("id", doc)),
            "progress": self._progress(doc),
            "error": self._error(doc) or JobError() if state is JobState.FAILED else None,
            "cancel_url": self._url("cancel_url", answer) if self.cancel_method else None,
            "events_url": self._url("events_url", answer),
        }
        if state is JobState.CANCELLED:
            update["error"] = self._error(doc)
        update = {key: value for key, value in update.items() if value is not None}
        return status.model_copy(update=update) if update else status

    def _end(self, answer: Answer) -> JobStatus:
        word = self._get("event_state", answer.doc)
        state = JobState.COMPLETED
        if word is not None:
            state = self._word_state(word, self._paths["event_state"].text, answer)
        if not state.is_terminal:
            raise answer.protocol_error(f"{self.name} dialect: an end event says {word!r}")
        return self._status(answer, state, with_result=False)

    def _error(self, doc: Doc | None) -> JobError | None:
        if doc is None:
            return None
        error = _error_value(self._get("error", doc)) if "error" in self._paths else None
        code = short_text(self._get("error_code", doc))
        if code is not None:
            error = (error or JobError()).model_copy(update={"code": code})
        # Else the shared reading, then a FastAPI-style ``detail: [{msg}]`` list.
        return error or job_error(doc) or _error_value(doc.get("detail"))

    def _progress(self, doc: Doc) -> Progress | None:
        progress = None
        if "progress" in self._paths:
            progress = progress_of({"progress": self._get("progress", doc)})
        current = parse_number(self._get("progress_current", doc))
        total = parse_number(self._get("progress_total", doc))
        if current is not None or total is not None:
            progress = Progress(current=current, total=total)
        message = _last_line(self._get("progress_message", doc))
        if message is not None:
            progress = (progress or Progress()).model_copy(update={"message": message})
        return progress


#: The option names a description may hold (``from_mapping``, ``from_file``).
OPTIONS = frozenset(
    name
    for name in inspect.signature(DeclarativeDialect.__init__).parameters
    if name not in ("self", "wall_clock")
)


def _event_roles(events: object) -> dict[str, str]:
    if not isinstance(events, Mapping):
        raise ValueError(f"events: expected a mapping of event names to roles; got {events!r}")
    if not events:
        raise ValueError("events: the mapping of event names to roles is empty")
    roles: dict[str, str] = {}
    for event, role in events.items():
        if not isinstance(event, str) or not event.strip():
            raise ValueError(f"events: an event name must be a non-empty string; got {event!r}")
        if role not in EVENT_ROLES:
            raise ValueError(
                f"events: {event!r} has role {role!r}, not one of {', '.join(EVENT_ROLES)}"
            )
        roles[event] = role
    return roles


def _error_value(value: object) -> JobError | None:
    """A failure's text: a string, an error object, or the first of a list of them."""
    if isinstance(value, str):
        return JobError(message=value[:MAX_TEXT]) if value.strip() else None
    if isinstance(value, list) and value:
        return _error_value(value[0])
    doc = as_doc(value)
    if doc is not None:
        error = job_error(doc)
        if error is None and isinstance(doc.get("msg"), str):  # pydantic-style detail
            error = JobError(message=doc["msg"][:MAX_TEXT])
        return error
    return None


def _last_line(value: object) -> str | None:
    """The latest line of a log: a string's last non-blank line, a list's last entry."""
    if isinstance(value, str):
        lines = [line.strip() for line in value.splitlines() if line.strip()]
        return lines[-1][:MAX_TEXT] if lines else None
    if isinstance(value, list) and value:
        return _last_line(value[-1])
    doc = as_doc(value)
    if doc is not None:
        return _last_line(doc.get("message"))
    return None


def _load_toml(text: str) -> Any:
    # tomllib is in the standard library from Python 3.11; on 3.10 tomli is the same parser.
    for module in ("tomllib", "tomli"):
        try:
            parser = importlib.import_module(module)
        except ModuleNotFoundError:
            continue
        try:
            return parser.loads(text)
        except parser.TOMLDecodeError as exc:
            raise ValueError(f"not valid TOML ({exc})") from None
    raise ValueError("reading TOML on Python 3.10 needs the tomli package")


def cancel_method_of(dialect: Dialect) -> str | None:
    """The method a cancel request uses with ``dialect``: its ``cancel_method`` attribute
    (``None``: the API has no cancel), ``DELETE`` for a dialect without one."""
    method = getattr(dialect, "cancel_method", "DELETE")
    return method if isinstance(method, str) or method is None else "DELETE"


def result_failure_of(dialect: Dialect, response: HttpResponse) -> JobStatus | None:
    """The job's failure a result-URL answer states, when ``dialect`` reads such answers
    (an ``interpret_result_failure`` method); ``None`` otherwise."""
    reader = getattr(dialect, "interpret_result_failure", None)
    if not callable(reader):
        return None
    status = reader(response)
    return status if isinstance(status, JobStatus) else None
