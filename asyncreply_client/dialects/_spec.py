"""The plain data a :class:`~asyncreply_client.dialects.DeclarativeDialect` is made of.

Body paths (``urls.get``, ``errors.data.0``), URL templates (``/v2/{endpoint}/status/{id}``)
and the state vocabulary, each validated when built (a ``ValueError`` that names the key),
and the pure readers that apply them to a JSON document. Nothing here knows about HTTP.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from .._models import JobState
from ._fields import Doc

__all__ = ["MISSING", "BodyPath", "EventRole", "UrlSpec", "Vocabulary", "lookup"]

#: What :func:`lookup` returns for a path the document does not hold.
MISSING: Any = object()
_SEGMENT = re.compile(r"[^.{}\s]+")
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
#: The roles an event of an event stream may play (``events={"done": "end", ...}``).
EventRole = str
EVENT_ROLES = ("status", "progress", "output", "error", "end")
_STATE_NAMES = {state.value: state for state in JobState} | {"canceled": JobState.CANCELLED}


def _path_segments(key: str, text: object) -> tuple[str, ...]:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{key}: a body path must be a non-empty string; got {text!r}")
    segments = tuple(text.strip().split("."))
    if not all(_SEGMENT.fullmatch(segment) for segment in segments):
        raise ValueError(f"{key}: {text!r} is not a body path (dotted names, e.g. 'urls.get')")
    return segments


def lookup(doc: object, path: tuple[str, ...]) -> Any:
    """The value at ``path`` in ``doc`` (mappings by key, lists by index), else ``MISSING``.

    Example:
        >>> lookup({"urls": {"get": "/p/1"}}, ("urls", "get"))
        '/p/1'
        >>> lookup({"errors": {"data": [{"code": "x"}]}}, ("errors", "data", "0", "code"))
        'x'
    """
    value: Any = doc
    for segment in path:
        if isinstance(value, Mapping):
            if segment not in value:
                return MISSING
            value = value[segment]
        elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return MISSING
    return value


@dataclass(frozen=True, slots=True)
class BodyPath:
    """A dotted path to a field of the body (``output``, ``urls.get``, ``errors.data.0``)."""

    text: str
    segments: tuple[str, ...]

    @classmethod
    def parse(cls, key: str, text: object) -> BodyPath:
        """Validate ``text`` as the body path of option ``key``.

        Raises:
            ValueError: not a dotted path.
        """
        return cls(str(text).strip(), _path_segments(key, text))

    def get(self, doc: object) -> Any:
        """The value at this path, ``None`` when absent."""
        value = lookup(doc, self.segments)
        return None if value is MISSING else value


@dataclass(frozen=True, slots=True)
class UrlSpec:
    """Where a URL is: a body path (``urls.get``) or a template (``/v1/batches/{id}``).

    A value that starts with ``/`` or ``http`` or holds a ``{`` is a template; it must name
    at least one field. Each ``{name}`` is filled with the body's field at that path
    (percent-encoded), else with the segment of the request URL's path that the template puts
    at the same place (``/v2/{endpoint}/status/{id}`` takes ``endpoint`` from ``/v2/abc/run``).
    A template that starts with a field extends the URL that field holds, as it is
    (``{status_url}/stream``).
    """

    key: str
    path: BodyPath | None = None
    template: str | None = None
    fields: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def parse(cls, key: str, text: object) -> UrlSpec:
        """Validate ``text`` as option ``key``'s URL.

        Raises:
            ValueError: an empty value, a template naming no field or a malformed one.
        """
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{key}: expected a body path or a URL template; got {text!r}")
        text = text.strip()
        if not (text.startswith(("/", "http:", "https:")) or "{" in text):
            return cls(key, path=BodyPath.parse(key, text))
        if "{{" in text or "}}" in text:
            raise ValueError(f"{key}: a URL template has no escaped braces; got {text!r}")
        fields: list[tuple[str, tuple[str, ...]]] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise ValueError(f"{key}: malformed URL template {text!r} ({exc})") from None
        for _, name, spec, conversion in parsed:
            if name is None:
                continue
            if spec or conversion:
                raise ValueError(f"{key}: template field {{{name}}} takes no format or conversion")
            fields.append((name, _path_segments(f"{key} template field", name)))
        if not fields:
            raise ValueError(f"{key}: the URL template {text!r} names no field (e.g. {{id}})")
        return cls(key, template=text, fields=tuple(fields))

    def build(self, doc: object, request_url: str) -> str | None:
        """The URL (relative or absolute, unresolved) for ``doc``; ``None`` when unknown."""
        if self.path is not None:
            value = self.path.get(doc)
            return value if isinstance(value, str) and value.strip() else None
        assert self.template is not None  # one of the two, by construction
        from_url = _segments_by_name(self.template, request_url)
        values: dict[str, str] = {}
        for index, (name, segments) in enumerate(self.fields):
            value = lookup(doc, segments)
            if index == 0 and self.template.startswith("{"):
                # A URL the body holds, extended (``{status_url}/stream``): not encoded.
                if not isinstance(value, str) or not value.strip():
                    return None
                values[name] = value.strip()
            elif isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
                values[name] = quote(str(value), safe="")
            elif name in from_url:
                values[name] = from_url[name]
            else:
                return None
        # Literal substitution: ``{job.key}`` names a body path, not an attribute.
        return _PLACEHOLDER.sub(lambda match: values[match.group(1)], self.template)


def _segments_by_name(template: str, request_url: str) -> dict[str, str]:
    """The placeholders of ``template`` that the request URL's path fills in, position by
    position while the two agree (``/v2/{endpoint}/status/{id}`` vs ``/v2/abc/run``)."""
    wanted = urlsplit(template).path.split("/") if "//" in template else template.split("/")
    have = urlsplit(request_url).path.split("/")
    found: dict[str, str] = {}
    for pattern, segment in zip(wanted, have, strict=False):
        if pattern.startswith("{") and pattern.endswith("}") and pattern.count("{") == 1:
            if segment:
                found[pattern[1:-1]] = quote(unquote(segment), safe="")
            continue
        if pattern != segment:
            break
    return found


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """A vendor's state words and the :class:`JobState` each means."""

    words: Mapping[str, JobState]
    case_sensitive: bool

    @classmethod
    def parse(cls, key: str, value: object, *, case_sensitive: bool) -> Vocabulary:
        """Validate ``{word: state}`` (states: ``pending``, ``processing``, ``completed``,
        ``failed``, ``cancelled``).

        Raises:
            ValueError: not a mapping, empty, a blank word or an unknown state.
        """
        if not isinstance(value, Mapping):
            raise ValueError(f"{key}: expected a mapping of words to states; got {value!r}")
        if not value:
            raise ValueError(f"{key}: the vocabulary is empty")
        words: dict[str, JobState] = {}
        for word, meaning in value.items():
            if not isinstance(word, str) or not word.strip():
                raise ValueError(f"{key}: a state word must be a non-empty string; got {word!r}")
            state = meaning if isinstance(meaning, JobState) else None
            if state is None and isinstance(meaning, str):
                state = _STATE_NAMES.get(meaning.strip().lower())
            if state is None:
                raise ValueError(
                    f"{key}: {word!r} maps to {meaning!r}, not one of {', '.join(JobState)}"
                )
            words[word if case_sensitive else word.casefold()] = state
        return cls(words, case_sensitive)

    def state_of(self, word: object) -> JobState | None:
        """The state ``word`` means in this vocabulary (``None``: not one of its words)."""
        if not isinstance(word, str):
            return None
        return self.words.get(word if self.case_sensitive else word.casefold())


def as_doc(value: object) -> Doc | None:
    """``value`` when it is a JSON object."""
    return value if isinstance(value, Mapping) else None
