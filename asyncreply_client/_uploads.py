"""Submission bodies: JSON, bytes or text, forms and files (multipart), byte streams. Pure.

A :class:`Body` is given to httpx afresh for each attempt of a submission (its retries and
307/308 redirects), so the request is re-encoded every time: a form's files are read again
from their start (httpx seeks each file to 0). A body that cannot be read twice (an
iterator of bytes, an unseekable file) is *one-shot*: it is sent once, never retried, and
the error that a retry would have followed says why.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["Body", "Content", "Files", "QueryParams", "encode_body", "query_params"]

#: ``content=``: bytes, text, or a byte stream (sent once: an iterator for ``Client``, an
#: async iterator for ``AsyncClient``).
Content = bytes | str | Iterable[bytes] | AsyncIterable[bytes] | None
#: ``params=``: httpx's query parameters (a mapping, pairs, or a query string).
QueryParams = Mapping[str, Any] | Sequence[tuple[str, Any]] | str
#: ``files=``: httpx's files (``{"name": file}`` or pairs; a file is bytes, text, a binary
#: file object, or ``(filename, file[, content_type[, headers]])``).
Files = Mapping[str, Any] | Sequence[tuple[str, Any]]

#: The ``Content-Type`` of ``content=`` bytes / text sent without one.
OCTET_STREAM = "application/octet-stream"
TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Body:
    """A submission's body.

    Attributes:
        content: bytes, or a byte stream (iterator, async iterator) sent once.
        data: form fields (with ``files``: a multipart form; alone: a urlencoded one).
        files: httpx's ``files=`` (``{"name": file}`` or pairs; a file is bytes, text, a
            binary file object, or ``(filename, file[, content_type[, headers]])``).
        content_type: the ``Content-Type`` to send when the caller set none (httpx sets
            a form's, with its boundary).
        one_shot: why the body cannot be sent twice (``None``: it can).
    """

    content: bytes | Iterable[bytes] | AsyncIterable[bytes] | None = None
    data: Mapping[str, Any] | None = None
    files: Any = None
    content_type: str | None = None
    one_shot: str | None = None

    def request_args(self) -> dict[str, Any]:
        """The body arguments of ``httpx.Request`` for one attempt."""
        if self.data is not None or self.files is not None:
            return {"data": self.data, "files": self.files}
        return {"content": self.content}


def _file_objects(files: Any) -> list[tuple[str, Any]]:
    """``(name, file)`` of every file object in httpx's ``files=``."""
    items = files.items() if isinstance(files, Mapping) else files
    found = []
    for item in items:
        if not (isinstance(item, tuple | list) and len(item) == 2):
            raise TypeError(
                "files= must be a mapping of field names to files, or (name, file) pairs; "
                f"got an item {item!r:.80}"
            )
        name, value = item
        file = value[1] if isinstance(value, tuple | list) and len(value) >= 2 else value
        if not isinstance(file, str | bytes):
            found.append((str(name), file))
    return found


def _unseekable(files: Any) -> str | None:
    """Why a form's files cannot be read twice, or ``None``."""
    for name, file in _file_objects(files):
        if not hasattr(file, "read"):
            raise TypeError(
                f"files={{{name!r}: ...}} must be bytes, text, a binary file object or a "
                f"(filename, file[, content_type]) tuple; got {type(file).__name__}"
            )
        seekable = getattr(file, "seekable", None)
        if not (callable(seekable) and seekable()):
            return f"the file {name!r} is not seekable, so it cannot be read again"
    return None


def _check_form(data: Any, files: Any) -> None:
    """Let httpx encode the form once now, so a bad one is refused at the call."""
    if data is not None and not isinstance(data, Mapping):
        raise TypeError(f"data= must be a mapping of form fields; got {type(data).__name__}")
    try:
        httpx.Request("POST", "http://form.invalid/", data=data, files=files)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"data= / files= cannot be encoded as a form: {exc}") from None


def _stream(content: Any, asynchronous: bool) -> Body:
    """A ``content=`` byte stream: sent once, by the matching client."""
    is_async = isinstance(content, AsyncIterable)
    if is_async and not asynchronous:
        raise TypeError(
            "content= is an async iterable: send it with AsyncClient (Client takes bytes, "
            "text or an iterable of bytes)"
        )
    if not is_async and asynchronous:
        raise TypeError(
            "content= is a synchronous iterable: AsyncClient sends bytes, text or an async "
            "iterable of bytes (or pass the file in files=, which either client can re-send)"
        )
    return Body(
        content=content,
        content_type=OCTET_STREAM,
        one_shot="the body is a one-shot stream (an iterator), which cannot be sent again; "
        "pass bytes, or a seekable file in files=, to let the client retry",
    )


def encode_body(
    *,
    json: Any = None,
    content: Any = None,
    data: Any = None,
    files: Any = None,
    callback: str | Mapping[str, Any] | None = None,
    asynchronous: bool = False,
) -> Body:
    """The body of a submission from ``submit()``'s arguments (``callback``: added to a
    JSON body as ``callback``, to a form as a ``callback`` field of JSON text).

    Raises:
        ValueError: more than one kind of body, or a bad ``callback``.
        TypeError: a body argument of a type it cannot be.
    """
    form = data is not None or files is not None
    if sum((json is not None, content is not None, form)) > 1:
        raise ValueError("pass one body, not both: json=, content=, or a form (data= / files=)")
    hook: dict[str, Any] | None = None
    if callback is not None:
        hook = {"url": callback} if isinstance(callback, str) else dict(callback)
        if not isinstance(hook.get("url"), str):
            raise ValueError("callback must be a URL or a mapping with a 'url' string")
        if content is not None:
            raise TypeError("callback= needs a JSON body (json= a mapping) or a form (data=)")
        if not form:
            json = {} if json is None else json
            if not isinstance(json, Mapping):
                raise TypeError("callback= needs a JSON object body (json= a mapping)")
            json = {**json, "callback": hook}  # a copy: the caller's mapping is never modified
    if json is not None:
        encoded = jsonlib.dumps(json, separators=(",", ":"), ensure_ascii=False)
        return Body(content=encoded.encode("utf-8"), content_type="application/json")
    if form:
        _check_form(data, files)
        fields = dict(data or {})
        if hook is not None:
            fields["callback"] = jsonlib.dumps(hook, separators=(",", ":"))
        return Body(
            data=fields if (fields or files is None) else None,
            files=files,
            one_shot=None if files is None else _unseekable(files),
        )
    if content is None:
        return Body()
    if isinstance(content, bytes | bytearray | memoryview):
        return Body(content=bytes(content), content_type=OCTET_STREAM)
    if isinstance(content, str):
        return Body(content=content.encode("utf-8"), content_type=TEXT)
    if isinstance(content, Iterable | AsyncIterable) and not isinstance(content, Mapping):
        return _stream(content, asynchronous)
    raise TypeError(
        "content= must be bytes, text, or an iterable of bytes (an async one for "
        f"AsyncClient); got {type(content).__name__}"
    )


def query_params(params: Any) -> httpx.QueryParams | None:
    """``params=`` as httpx reads it (a mapping, pairs or a query string), checked now.

    Raises:
        TypeError: not something httpx takes as query parameters.
    """
    if params is None:
        return None
    if isinstance(params, str | Mapping | Sequence | httpx.QueryParams):
        given: Any = params  # httpx checks the values
        try:
            return httpx.QueryParams(given)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"params= cannot be a query: {exc}") from None
    raise TypeError(
        f"params= must be a mapping, (name, value) pairs or a query string; got "
        f"{type(params).__name__}"
    )
