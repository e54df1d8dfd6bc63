"""Lenient, total parsers for the header and body values the client reads.

``Retry-After`` (RFC 9110 §10.2.3) and its millisecond variants, ``Link`` (RFC 8288),
``Preference-Applied`` (RFC 7240), ``Content-Disposition`` file names (RFC 6266) and RFC 3339
timestamps. Servers send garbage; every function here returns ``None`` (or an empty result)
for it and never raises.
"""

from __future__ import annotations

import email.utils
import functools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote

import httpx

__all__ = [
    "MAX_RETRY_AFTER",
    "HeaderIndex",
    "Link",
    "find_link",
    "header_values",
    "parse_content_disposition_filename",
    "parse_http_date",
    "parse_link_header",
    "parse_number",
    "parse_preferences",
    "parse_retry_after",
    "parse_timestamp",
    "retry_after_reads_date",
    "server_date",
    "preference_applied_wait",
]

MAX_RETRY_AFTER = 1e9
"""Upper bound of any parsed delay (seconds). Absurd hints are clamped here so that the
result stays finite; polling policies apply their own, much lower, ceilings."""

_MS_HEADERS = ("retry-after-ms", "x-ms-retry-after-ms")
_BODY_SECONDS = ("retryAfter", "retry_after")
_BODY_MS = ("retryAfterMs", "retry_after_ms")
_DELTA_SECONDS = re.compile(r"\d+(?:\.\d+)?")
_MAX_HEADER = 8192
_UTC = timezone.utc


class HeaderIndex:
    """An answer's headers indexed by lower-case name in one pass: a status answer is looked
    into for a dozen names (``Retry-After``, ``Date``, ``Link``, ``Content-Type``...), and
    each lookup is then one dict lookup instead of a walk over every header.

    Example:
        >>> HeaderIndex(httpx.Headers({"Link": "<a>", "link": "<b>"})).get_all("LINK")
        ['<a>', '<b>']
    """

    __slots__ = ("_encoding", "_values")

    def __init__(self, headers: httpx.Headers) -> None:
        values: dict[bytes, list[bytes]] = {}
        for key, value in headers.raw:
            name = key.lower()
            found = values.get(name)
            if found is None:
                values[name] = [value]
            else:
                found.append(value)
        self._values = values
        self._encoding = headers.encoding  # one that decodes every header (httpx's choice)

    def get_all(self, name: str) -> list[str]:
        """Every value of header ``name`` (any case), in order (decoded when asked for)."""
        found = self._values.get(name.lower().encode("ascii", "replace"))
        if not found:
            return []
        try:
            return [value.decode(self._encoding) for value in found]
        except (UnicodeError, LookupError):
            return []


HeadersLike = HeaderIndex | httpx.Headers | Mapping[str, str] | Iterable[tuple[str, str]] | None


def header_values(headers: HeadersLike, name: str) -> list[str]:
    """Return every value of header ``name`` (case-insensitive), in order, as strings.

    Accepts ``httpx.Headers``, a :class:`HeaderIndex`, a mapping or a list of pairs; values
    that are not strings are skipped.

    Example:
        >>> header_values({"Retry-After": "5"}, "retry-after")
        ['5']
    """
    if headers is None:
        return []
    if isinstance(headers, HeaderIndex):
        return headers.get_all(name)
    if isinstance(headers, httpx.Headers):
        # What ``get_list`` does, with the encoding looked up once instead of twice per
        # header (a status answer's header lookups were a tenth of a refresh's CPU).
        try:
            encoding = headers.encoding
            key_bytes = name.lower().encode(encoding)
            return [v.decode(encoding) for k, v in headers.raw if k.lower() == key_bytes]
        except (UnicodeError, LookupError):
            return []
    wanted = name.lower()
    items: Iterable[Any] = headers.items() if isinstance(headers, Mapping) else headers
    values: list[str] = []
    try:
        for item in items:
            if not isinstance(item, tuple) or len(item) != 2:
                continue
            key, value = item
            if isinstance(key, str) and isinstance(value, str) and key.lower() == wanted:
                values.append(value)
    except TypeError:
        return []
    return values


def _first(headers: HeadersLike, name: str) -> str | None:
    values = header_values(headers, name)
    for value in values:
        if value.strip():
            return value.strip()[:_MAX_HEADER]
    return None


def parse_number(value: object) -> float | None:
    """Return a finite float from a JSON number or a numeric string, else ``None``.

    Booleans are not numbers here. Infinite or too large values give ``None``.

    Example:
        >>> parse_number("2.5"), parse_number(3), parse_number(True), parse_number("x")
        (2.5, 3.0, None, None)
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:
            return None
    elif isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 64:
            return None
        try:
            number = float(text)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _clamp_delay(seconds: float) -> float:
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def parse_http_date(value: str) -> float | None:
    """Parse an HTTP-date (IMF-fixdate, RFC 850 or asctime) into epoch seconds, or ``None``.

    Example:
        >>> parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT")
        784111777.0
    """
    if not isinstance(value, str) or not value.strip() or len(value) > 256:
        return None
    return _parse_http_date_text(value)


@functools.lru_cache(maxsize=64)
def _parse_http_date_text(value: str) -> float | None:
    """:func:`parse_http_date` of a string, cached (a ``Date`` repeats within its second)."""
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        # RFC 9110 §5.6.7: HTTP-dates are always UTC.
        parsed = parsed.replace(tzinfo=_UTC)
    try:
        return parsed.timestamp()
    except (OverflowError, ValueError, OSError):
        return None


def _delta(value: str) -> float | None:
    """Non-negative decimal digits (fractions accepted leniently) as a clamped float."""
    if not _DELTA_SECONDS.fullmatch(value):
        return None
    if len(value) > 32:
        return MAX_RETRY_AFTER  # a very long run of digits: absurd, not garbage
    number = parse_number(value)
    return None if number is None else _clamp_delay(number)


def _retry_after_header(value: str, reference: float | None) -> float | None:
    # RFC 9110 allows only whole seconds; fractions are accepted leniently.
    delta = _delta(value)
    if delta is not None:
        return delta
    when = parse_http_date(value)
    if when is None or reference is None:
        return None
    return _clamp_delay(when - reference)


def server_date(headers: HeadersLike) -> float | None:
    """When the server sent an answer (its first non-blank ``Date``, epoch seconds), ``None``
    when absent or unusable.

    Example:
        >>> server_date({"Date": "Sun, 06 Nov 1994 08:49:37 GMT"})
        784111777.0
    """
    value = _first(headers, "date")
    return parse_http_date(value) if value is not None else None


def retry_after_reads_date(headers: HeadersLike) -> bool:
    """Whether :func:`parse_retry_after` of ``headers`` may depend on when the answer was
    sent: a ``Retry-After`` that is not delta-seconds (an HTTP-date, measured from the
    ``Date`` header or else the clock; or garbage) and no millisecond header before it.
    (Conservative: ``True`` for some values that turn out not to depend on it.)

    Example:
        >>> retry_after_reads_date({"Retry-After": "3"})
        False
        >>> retry_after_reads_date({"Retry-After": "Sun, 06 Nov 1994 08:49:40 GMT"})
        True
    """
    for name in _MS_HEADERS:
        raw = _first(headers, name)
        if raw is not None and _delta(raw) is not None:
            return False
    raw = _first(headers, "retry-after")
    return raw is not None and _delta(raw) is None


def parse_retry_after(
    headers: HeadersLike, body: Any = None, *, now: float | None = None
) -> float | None:
    """Return the server's "wait this long" hint in seconds, or ``None`` when it gave none.

    Sources, most precise first: the ``Retry-After-Ms`` / ``x-ms-retry-after-ms`` headers
    (milliseconds); ``Retry-After`` as delta-seconds, or as an HTTP-date measured from the
    response's own ``Date`` header (immune to clock skew) or else from ``now``; then the body
    hints ``retryAfter`` / ``retry_after`` (seconds) and ``retryAfterMs`` (milliseconds).
    A date in the past gives ``0.0``; ``0`` stays ``0.0`` (poll now, not "no hint");
    absurdly large values are clamped to :data:`MAX_RETRY_AFTER`. Garbage is ignored.

    Args:
        headers: the response headers.
        body: the parsed JSON body (anything; only a dict is looked into).
        now: the wall-clock time in epoch seconds, used for HTTP-dates when the response
            has no usable ``Date`` header.

    Example:
        >>> parse_retry_after({"Retry-After": "3", "Retry-After-Ms": "2500"})
        2.5
        >>> parse_retry_after(
        ...     {"Retry-After": "Sun, 06 Nov 1994 08:49:40 GMT",
        ...      "Date": "Sun, 06 Nov 1994 08:49:37 GMT"})
        3.0
        >>> parse_retry_after({}, {"retryAfter": 0})
        0.0
    """
    for name in _MS_HEADERS:
        raw = _first(headers, name)
        millis = None if raw is None else _delta(raw)
        if millis is not None:
            return _clamp_delay(millis / 1000.0)
    raw = _first(headers, "retry-after")
    if raw is not None:
        date_header = _first(headers, "date")
        reference = parse_http_date(date_header) if date_header is not None else None
        if reference is None and now is not None and math.isfinite(now):
            reference = now
        parsed = _retry_after_header(raw, reference)
        if parsed is not None:
            return parsed
    if isinstance(body, Mapping):
        for key in _BODY_MS:
            number = parse_number(body.get(key))
            if number is not None and number >= 0:
                return _clamp_delay(number / 1000.0)
        for key in _BODY_SECONDS:
            number = parse_number(body.get(key))
            if number is not None and number >= 0:
                return _clamp_delay(number)
    return None


# --- parameters shared by Link and Content-Disposition (RFC 9110 §5.6.6) -----------------

_TOKEN_CHARS = re.compile(r"[^\s;,=\"]+")


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t":
        i += 1
    return i


def _quoted(text: str, i: int) -> tuple[str, int]:
    """Read a quoted-string starting at ``text[i] == '"'``; return (value, index after)."""
    out: list[str] = []
    i += 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    return "".join(out), i


def _params(text: str, i: int, *, stop_at_comma: bool) -> tuple[dict[str, str], int]:
    """Parse ``; name=value; name="value"`` pairs from ``i``; first occurrence of a name wins."""
    params: dict[str, str] = {}
    while i < len(text):
        i = _skip_ws(text, i)
        if i >= len(text):
            break
        ch = text[i]
        if ch == "," and stop_at_comma:
            break
        if ch in ";,":
            i += 1
            continue
        match = _TOKEN_CHARS.match(text, i)
        if match is None:
            i += 1
            continue
        name = match.group(0).lower()
        i = _skip_ws(text, match.end())
        value = ""
        if i < len(text) and text[i] == "=":
            i = _skip_ws(text, i + 1)
            if i < len(text) and text[i] == '"':
                value, i = _quoted(text, i)
            else:
                end = i
                while (
                    end < len(text)
                    and text[end] not in ";,"
                    and not (text[end] in " \t" and stop_at_comma)
                ):
                    end += 1
                value = text[i:end].strip()
                i = end
        params.setdefault(name, value)
    return params, i


@dataclass(frozen=True, slots=True)
class Link:
    """One link of a ``Link`` header: its target (as written) and its relation types.

    Attributes:
        url: the target between ``<`` and ``>``, unresolved.
        rels: the lower-cased relation types of ``rel`` (space-separated in the header).
        params: every parameter, lower-cased names, first occurrence kept.
    """

    url: str
    rels: frozenset[str]
    params: tuple[tuple[str, str], ...] = ()


def parse_link_header(value: str) -> list[Link]:
    """Parse a ``Link`` header value (RFC 8288 §3) into links; malformed parts are skipped.

    Example:
        >>> [(l.url, sorted(l.rels)) for l in parse_link_header(
        ...     '</jobs/1/events>; rel="events", </jobs/1>; rel="monitor self"')]
        [('/jobs/1/events', ['events']), ('/jobs/1', ['monitor', 'self'])]
    """
    if not isinstance(value, str):
        return []
    text = value[: _MAX_HEADER * 4]
    links: list[Link] = []
    i = 0
    while i < len(text):
        start = text.find("<", i)
        if start < 0:
            break
        end = text.find(">", start + 1)
        if end < 0:
            break
        url = text[start + 1 : end].strip()
        params, i = _params(text, end + 1, stop_at_comma=True)
        rels = frozenset(r.lower() for r in params.get("rel", "").split() if r)
        if url:
            links.append(Link(url=url, rels=rels, params=tuple(params.items())))
    return links


def find_link(headers: HeadersLike, rel: str) -> str | None:
    """Return the target of the first ``Link`` with relation ``rel``, unresolved, or ``None``.

    Example:
        >>> find_link({"Link": '</jobs/1/events>; rel="events"'}, "events")
        '/jobs/1/events'
    """
    wanted = rel.lower()
    for value in header_values(headers, "link"):
        for link in _links_of(value):
            if wanted in link.rels:
                return link.url
    return None


@functools.lru_cache(maxsize=64)
def _links_of(value: str) -> tuple[Link, ...]:
    """:func:`parse_link_header`, cached: a poller's answers repeat their ``Link`` header."""
    return tuple(parse_link_header(value))


def parse_content_disposition_filename(value: str | None) -> str | None:
    """Return the file name of a ``Content-Disposition`` header, or ``None``.

    ``filename*`` (RFC 8187 ``charset''percent-encoded``) wins over ``filename``. Directory
    parts are removed, so the name is safe to join to a download directory.

    Example:
        >>> parse_content_disposition_filename('attachment; filename="report.csv"')
        'report.csv'
        >>> parse_content_disposition_filename("attachment; filename*=UTF-8''na%C3%AFve.txt")
        'naïve.txt'
    """
    if not isinstance(value, str) or not value.strip():
        return None
    text = value[:_MAX_HEADER]
    semi = text.find(";")
    if semi < 0:
        return None
    params, _ = _params(text, semi + 1, stop_at_comma=False)
    name: str | None = None
    extended = params.get("filename*")
    if extended:
        charset, _, rest = extended.partition("'")
        _, _, encoded = rest.partition("'")
        if encoded:
            try:
                name = unquote(encoded, encoding=charset or "utf-8", errors="replace")
            except LookupError:
                name = unquote(encoded, encoding="utf-8", errors="replace")
    if not name:
        name = params.get("filename") or None
    if name is None:
        return None
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip().replace("\x00", "")
    return name if name not in ("", ".", "..") else None


def parse_preferences(value: str | None) -> dict[str, str]:
    """Parse a ``Prefer`` / ``Preference-Applied`` value into ``{name: value}`` (RFC 7240).

    Example:
        >>> parse_preferences("wait=5, respond-async")
        {'wait': '5', 'respond-async': ''}
    """
    if not isinstance(value, str):
        return {}
    prefs: dict[str, str] = {}
    for part in value[:_MAX_HEADER].split(","):
        token = part.partition(";")[0]
        name, _, pref_value = token.partition("=")
        name = name.strip().lower()
        if name:
            prefs.setdefault(name, pref_value.strip().strip('"'))
    return prefs


def preference_applied_wait(headers: HeadersLike) -> float | None:
    """The ``wait`` the server says it applied (``Preference-Applied: wait=N``), or ``None``.

    A server answering with it held the request: it supports long polling.

    Example:
        >>> preference_applied_wait({"Preference-Applied": "wait=30"})
        30.0
    """
    for value in header_values(headers, "preference-applied"):
        found = _applied_wait(value)
        if found is not None:
            return found
    return None


# A server sends few distinct ``Preference-Applied`` values: a held submission's answer and
# each long poll's is parsed once per value.
@functools.lru_cache(maxsize=64)
def _applied_wait(value: str) -> float | None:
    prefs = parse_preferences(value)
    if "wait" not in prefs:
        return None
    number = parse_number(prefs["wait"])
    return 0.0 if number is None else max(number, 0.0)


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"\s*([Zz]|[+-]\d{2}(?::?\d{2})?)?)?"
)
#: The usual shape of a server's timestamp: UTC, to the second, millisecond or microsecond
#: (the fractions ``datetime.fromisoformat`` takes on Python 3.10 as on later versions).
_CANONICAL = re.compile(r"\d{4}-\d{2}-\d{2}T(?:[01]\d|2[0-3]):\d{2}:\d{2}(?:\.\d{3}|\.\d{6})?Z")
# Epoch numbers outside this range are more likely garbage than timestamps.
_EPOCH_MAX = 1e11


def parse_timestamp(value: object) -> datetime | None:
    """Parse an RFC 3339 / ISO 8601 timestamp (or epoch seconds) leniently; ``None`` if bad.

    Any number of fractional digits and a ``Z`` or numeric offset are accepted; a missing
    offset means UTC. The result is always timezone-aware.

    Example:
        >>> parse_timestamp("2026-11-23T09:00:00.123Z").isoformat()
        '2026-11-23T09:00:00.123000+00:00'
        >>> parse_timestamp("yesterday") is None
        True
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = parse_number(value)
        if number is None or not 0 <= number <= _EPOCH_MAX:
            return None
        try:
            return datetime.fromtimestamp(number, tz=_UTC)
        except (OverflowError, ValueError, OSError):
            return None
    if not isinstance(value, str) or len(value) > 64:
        return None
    return _parse_text_timestamp(value)


@functools.lru_cache(maxsize=256)
def _parse_text_timestamp(value: str) -> datetime | None:
    """The text form of :func:`parse_timestamp`, cached: every poll of a job repeats its
    ``createdAt``/``startedAt``/``updatedAt`` (the ``datetime`` results are immutable)."""
    if _CANONICAL.fullmatch(value) is not None:
        # What servers send (``2026-11-23T09:00:00.123Z``): parsed in C. A second of 60
        # (a leap second) or an impossible date goes on to the general parse below.
        try:
            return datetime.fromisoformat(value[:-1]).replace(tzinfo=_UTC)
        except ValueError:
            pass
    match = _RFC3339.fullmatch(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        tz = _UTC
        if offset and offset not in ("Z", "z"):
            sign = -1 if offset[0] == "-" else 1
            digits = offset[1:].replace(":", "")
            hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
            tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        sec = int(second or 0)
        leap = sec == 60  # RFC 3339 allows a leap second; datetime does not.
        parsed = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            59 if leap else sec,
            micro,
            tzinfo=tz,
        )
        return parsed + timedelta(seconds=1) if leap else parsed
    except (ValueError, OverflowError):
        return None
