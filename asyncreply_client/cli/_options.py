"""Reading the command line's inputs: headers, bodies, URLs, numbers and secrets."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import httpx

from .._security import check_headers
from ..dialects import DIALECT_NAMES, DeclarativeDialect
from ._exit import CliError, ExitCode

__all__ = [
    "SECRET_ENV",
    "dialect_option",
    "env_headers",
    "load_body",
    "origin",
    "parse_header",
    "non_negative_float",
    "positive_float",
    "request_headers",
    "webhook_secrets",
]

#: The environment variable ``webhook verify`` reads its secret(s) from by default.
SECRET_ENV = "ASYNCREPLY_WEBHOOK_SECRET"


def parse_header(text: str, *, sent: bool = True) -> tuple[str, str]:
    """Parse ``"Name: value"``.

    ``sent=False`` for headers the CLI only reads (``webhook verify``'s, as a sender sent
    them): their values are the verifier's to judge (exit 10), not a usage error.

    Raises:
        CliError: when there is no colon or the name is empty; for a header to send, also when
            the name is not a token or the value is not ASCII text without control characters
            (a usage error, exit 2).
    """
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not name or any(c.isspace() for c in name):
        raise CliError(f"bad header {text!r}: expected 'Name: value'", ExitCode.USAGE)
    value = value.strip()
    if not sent:
        return name, value
    try:
        check_headers({name: value}, "header")
    except ValueError as exc:
        raise CliError(f"bad header {text!r}: {exc}", ExitCode.USAGE) from None
    return name, value


def env_headers(raw: str | None) -> list[tuple[str, str]]:
    """Headers from ``ASYNCREPLY_HEADERS``: a JSON object, or ``Name: value`` lines.

    Raises:
        CliError: (usage, exit 2, as for a bad ``-H``) when the variable cannot be parsed.
    """
    if raw is None or not raw.strip():
        return []
    text = raw.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise CliError(f"ASYNCREPLY_HEADERS is not valid JSON: {exc}", ExitCode.USAGE) from None
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise CliError("ASYNCREPLY_HEADERS must be a JSON object of strings", ExitCode.USAGE)
        try:
            check_headers(value, "ASYNCREPLY_HEADERS")
        except ValueError as exc:
            raise CliError(str(exc), ExitCode.USAGE) from None
        return [(str(k), v) for k, v in value.items()]
    try:
        return [parse_header(line) for line in text.splitlines() if line.strip()]
    except CliError as exc:
        raise CliError(f"ASYNCREPLY_HEADERS: {exc}", ExitCode.USAGE) from None


def request_headers(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, str]:
    """Headers for every request: env, then ``-H`` (which wins), then the bearer token.

    Raises:
        CliError: (usage, exit 2) a header, or the token of ``--token`` or
            ``$ASYNCREPLY_TOKEN``, that cannot be sent (its value is not shown).
    """
    headers: dict[str, str] = {}
    for name, value in env_headers(environ.get("ASYNCREPLY_HEADERS")):
        headers[name] = value
    for text in args.header or []:
        name, value = parse_header(text)
        headers[name] = value
    source = "--token" if args.token is not None else "ASYNCREPLY_TOKEN"
    token = args.token if args.token is not None else environ.get("ASYNCREPLY_TOKEN")
    if token:
        try:
            check_headers({"Authorization": f"Bearer {token}"}, source)
        except ValueError:
            raise CliError(
                f"{source} must be ASCII text without control characters (RFC 9110 §5.5), "
                "its value is not shown",
                ExitCode.USAGE,
            ) from None
        headers["Authorization"] = f"Bearer {token}"
    return headers


def load_body(args: argparse.Namespace, stdin: IO[str]) -> tuple[Any, bytes | None]:
    """The submission body: ``(json, None)`` from ``--json``, ``(None, bytes)`` from ``--data``.

    ``--data @file`` reads a file, ``--data -`` or ``--data @-`` reads stdin, any other
    value is the body itself.
    """
    if args.json is not None:
        try:
            return json.loads(args.json), None
        except ValueError as exc:
            raise CliError(f"--json is not valid JSON: {exc}", ExitCode.USAGE) from None
    data: str | None = args.data
    if data is None:
        return None, None
    if data in ("-", "@-"):
        return None, stdin.read().encode("utf-8")
    if data.startswith("@"):
        return None, _read_file(Path(data[1:]))
    return None, data.encode("utf-8")


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None


def origin(url: str) -> str:
    """The scheme, host and port of an absolute http(s) URL.

    Raises:
        CliError: (usage) for a relative or non-http URL.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise CliError(f"bad URL {url!r}: {exc}", ExitCode.USAGE) from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise CliError(f"bad URL {url!r}: expected an absolute http(s) URL", ExitCode.USAGE)
    return str(parsed.copy_with(path="/", query=None, fragment=None)).rstrip("/")


def dialect_option(text: str) -> str | DeclarativeDialect:
    """An argparse type: a dialect name (``replicate``…), or a JSON / TOML file describing
    the API (:meth:`DeclarativeDialect.from_file`)."""
    name = text.strip().lower()
    if name in DIALECT_NAMES:
        return name
    if not name.endswith((".json", ".toml")):
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a dialect ({', '.join(DIALECT_NAMES)}) nor a .json/.toml file"
        )
    try:
        return DeclarativeDialect.from_file(text)
    except (OSError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"cannot use the dialect file {text}: {exc}") from None


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    value = _finite(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0: {text!r}")
    return value


def _secret_lines(text: str) -> list[str]:
    # One secret per line (several for key rotation); surrounding blanks are not part of it.
    return [line.strip() for line in text.splitlines() if line.strip()]


def webhook_secrets(args: argparse.Namespace, environ: Mapping[str, str]) -> list[str]:
    """The signing secrets of ``webhook verify``, from every source given.

    ``--secret`` values, the lines of each ``--secret-file``, the value (one secret per line)
    of each ``--secret-env`` variable; with none of those, ``$ASYNCREPLY_WEBHOOK_SECRET``.
    Files and variables keep secrets out of ``ps`` listings and shell history.

    Raises:
        CliError: (usage) no secret anywhere, an unreadable or empty file, an unset variable.
    """
    secrets: list[str] = list(args.secret or [])
    for name in args.secret_file or []:
        try:
            text = Path(name).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise CliError(f"cannot read --secret-file {name}: {reason}", ExitCode.USAGE) from None
        found = _secret_lines(text)
        if not found:
            raise CliError(f"--secret-file {name} holds no secret", ExitCode.USAGE)
        secrets += found
    for variable in args.secret_env or []:
        found = _secret_lines(environ.get(variable, ""))
        if not found:
            raise CliError(
                f"--secret-env {variable}: the variable is unset or empty", ExitCode.USAGE
            )
        secrets += found
    if not secrets:
        secrets = _secret_lines(environ.get(SECRET_ENV, ""))
    if not secrets:
        raise CliError(
            f"no signing secret: give --secret, --secret-file or --secret-env, or set {SECRET_ENV}",
            ExitCode.USAGE,
        )
    return secrets
