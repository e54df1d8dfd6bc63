"""The ``asyncreply`` command line: submit, follow, cancel and check async request-reply jobs.

Output goes to stdout (the result, a status or a report, as JSON unless stated) and every
message to stderr, so the command composes in pipelines. On a terminal, ``--wait`` shows a
live progress bar (rich when installed, plain text otherwise); when stderr is not a terminal
there is no progress and no colour.

Exit codes::

    0   done (the job completed, the command succeeded)
    1   other error (bad input file, bad JSON, unexpected failure)
    2   usage error (bad command-line arguments)
    3   the job failed
    4   the job was cancelled
    5   the job expired (410) or is unknown (404)
    6   the wait timed out (the job goes on; wait again with `asyncreply wait URL`)
    7   protocol error (the server broke the async request-reply protocol)
    8   transport error (network failures or transient statuses after every retry)
    9   the contract check found failures
    10  webhook verification failed
    11  the server rejected the submission (4xx)
    130 interrupted (Ctrl-C)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn, Protocol

import httpx

from ._errors import (
    AsyncReplyError,
    JobCancelledError,
    JobExpiredError,
    JobFailedError,
    JobNotFoundError,
    ProtocolError,
    SubmissionRejectedError,
    TransportError,
    WaitTimeoutError,
)
from ._models import JobState, JobStatus, ResultFile

if TYPE_CHECKING:
    from ._client import Client
    from ._operation import Operation

__all__ = ["EXIT_CODES", "ExitCode", "main"]


class ExitCode:
    """The exit statuses of ``asyncreply`` (see the module docstring)."""

    OK = 0
    ERROR = 1
    USAGE = 2
    FAILED = 3
    CANCELLED = 4
    GONE = 5
    TIMEOUT = 6
    PROTOCOL = 7
    TRANSPORT = 8
    CHECK_FAILED = 9
    WEBHOOK_INVALID = 10
    REJECTED = 11
    INTERRUPTED = 130


#: Exit status -> meaning, as documented in ``--help``.
EXIT_CODES: dict[int, str] = {
    ExitCode.OK: "done",
    ExitCode.ERROR: "other error",
    ExitCode.USAGE: "usage error",
    ExitCode.FAILED: "the job failed",
    ExitCode.CANCELLED: "the job was cancelled",
    ExitCode.GONE: "the job expired (410) or is unknown (404)",
    ExitCode.TIMEOUT: "the wait timed out (the job goes on)",
    ExitCode.PROTOCOL: "protocol error (the server broke the protocol)",
    ExitCode.TRANSPORT: "transport error (after retries)",
    ExitCode.CHECK_FAILED: "the contract check found failures",
    ExitCode.WEBHOOK_INVALID: "webhook verification failed",
    ExitCode.REJECTED: "the server rejected the submission (4xx)",
    ExitCode.INTERRUPTED: "interrupted",
}

_PROG = "asyncreply"


class CliError(Exception):
    """An error that ends the command with ``code`` and a one-line message on stderr."""

    def __init__(self, message: str, code: int = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.code = code


def exit_code_for(exc: BaseException) -> int:
    """Map a client error to its exit status."""
    table: tuple[tuple[type[BaseException], int], ...] = (
        (JobFailedError, ExitCode.FAILED),
        (JobCancelledError, ExitCode.CANCELLED),
        (JobExpiredError, ExitCode.GONE),
        (JobNotFoundError, ExitCode.GONE),
        (WaitTimeoutError, ExitCode.TIMEOUT),
        (ProtocolError, ExitCode.PROTOCOL),
        (TransportError, ExitCode.TRANSPORT),
        (SubmissionRejectedError, ExitCode.REJECTED),
    )
    for kind, code in table:
        if isinstance(exc, kind):
            return code
    return ExitCode.ERROR


# --------------------------------------------------------------------------------------------
# Terminal output


@dataclass
class Terminal:
    """Where output goes and how it looks (progress and colours only on a terminal)."""

    stdout: IO[str]
    stderr: IO[str]
    quiet: bool = False
    stdout_tty: bool = False
    stderr_tty: bool = False
    _rich_ok: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.stdout_tty = _isatty(self.stdout)
        self.stderr_tty = _isatty(self.stderr) and not self.quiet
        self._rich_ok = _rich_available() and not os.environ.get("NO_COLOR")

    def error(self, message: str) -> None:
        """Print a one-line error on stderr."""
        first_line = " ".join(str(message).split())
        print(f"{_PROG}: error: {first_line}", file=self.stderr)

    def info(self, message: str) -> None:
        """Print a message on stderr, only on a terminal."""
        if self.stderr_tty:
            print(message, file=self.stderr)

    def emit_json(self, value: Any) -> None:
        """Print ``value`` as JSON on stdout (pretty, coloured on a terminal)."""
        text = json.dumps(value, indent=2 if self.stdout_tty else None, ensure_ascii=False)
        if self.stdout_tty and self._rich_ok:
            from rich.console import Console

            Console(file=self.stdout).print_json(text)
        else:
            print(text, file=self.stdout)
        self.stdout.flush()

    def emit_text(self, text: str) -> None:
        """Print plain text on stdout."""
        print(text, file=self.stdout)
        self.stdout.flush()

    def emit_bytes(self, data: bytes) -> None:
        """Write raw bytes on stdout (a file result)."""
        self.stdout.flush()
        buffer = getattr(self.stdout, "buffer", None)
        if buffer is not None:
            buffer.write(data)
            buffer.flush()
        else:
            self.stdout.write(data.decode("utf-8", "replace"))

    def progress(self) -> ProgressDisplay:
        """A progress display for a wait (nothing when stderr is not a terminal)."""
        if not self.stderr_tty:
            return NoProgress()
        if self._rich_ok:
            return RichProgress(self.stderr)
        return PlainProgress(self.stderr)


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _rich_available() -> bool:
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


class ProgressDisplay(Protocol):
    """Shows a wait's progress."""

    def update(self, status: JobStatus) -> None:
        """Show a new status snapshot."""
        ...

    def close(self) -> None:
        """Remove or finish the display."""
        ...


class NoProgress:
    """No display (not a terminal, or ``--quiet``)."""

    def update(self, status: JobStatus) -> None:
        """Ignore the snapshot."""

    def close(self) -> None:
        """Nothing to close."""


def _describe(status: JobStatus) -> str:
    message = status.progress.message if status.progress is not None else None
    return message or status.state.value


def _remaining(status: JobStatus) -> float | None:
    """Seconds left by the server's estimate, or ``None``.

    ``estimated_remaining`` is measured against the response's own ``Date``, so it does not
    suffer from clock skew between server and client; ``estimated_completion`` against the
    local clock is the fallback.
    """
    if status.estimated_remaining is not None:
        return max(0.0, status.estimated_remaining)
    estimate = status.estimated_completion
    if estimate is None:
        return None
    if estimate.tzinfo is None:
        estimate = estimate.replace(tzinfo=timezone.utc)
    return max(0.0, (estimate - datetime.now(timezone.utc)).total_seconds())


def _format_eta(seconds: float | None) -> str:
    """``ETA 1m05s`` / ``ETA 12s`` / ``ETA now``, or ``""`` without an estimate."""
    if seconds is None:
        return ""
    if seconds < 0.5:
        return "ETA now"
    minutes, secs = divmod(round(seconds), 60)
    return f"ETA {minutes}m{secs:02d}s" if minutes else f"ETA {secs}s"


class PlainProgress:
    """A one-line text progress bar for terminals without rich."""

    WIDTH = 30

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._shown = False

    def update(self, status: JobStatus) -> None:
        """Redraw the line."""
        fraction = status.progress.fraction if status.progress is not None else None
        if fraction is None:
            bar = "[" + "?" * self.WIDTH + "]"
            percent = "   ?%"
        else:
            filled = round(fraction * self.WIDTH)
            bar = "[" + "#" * filled + "-" * (self.WIDTH - filled) + "]"
            percent = f"{fraction * 100:4.0f}%"
        eta = _format_eta(_remaining(status))
        line = f"{bar} {percent} {_describe(status)} {eta}".rstrip()
        self._stream.write("\r" + line[:120].ljust(80))
        self._stream.flush()
        self._shown = True

    def close(self) -> None:
        """End the line."""
        if self._shown:
            self._stream.write("\n")
            self._stream.flush()


class RichProgress:
    """A rich live progress bar: the server's message, bar, percentage, and ETA.

    The ETA counts down from the server's estimate between updates; without one, rich's own
    estimate from the progress rate is shown.
    """

    def __init__(self, stream: IO[str]) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            SpinnerColumn,
            Task,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.text import Text

        class ServerEta(TimeRemainingColumn):
            def render(self, task: Task) -> Text:
                ends_at = task.fields.get("ends_at")
                if isinstance(ends_at, float):
                    left = ends_at - time.monotonic()
                    return Text(_format_eta(max(0.0, left)), style="progress.remaining")
                return super().render(task)

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            ServerEta(),
            console=Console(file=stream),
            transient=False,
        )
        self._task = self._progress.add_task("submitted", total=None, ends_at=None)
        self._progress.start()

    def update(self, status: JobStatus) -> None:
        """Show the snapshot's progress, message and ETA."""
        fraction = status.progress.fraction if status.progress is not None else None
        if status.state is JobState.COMPLETED:
            fraction = 1.0
        remaining = _remaining(status)
        self._progress.update(
            self._task,
            description=_describe(status),
            total=None if fraction is None else 1.0,
            completed=fraction or 0.0,
            ends_at=None if remaining is None else time.monotonic() + remaining,
        )

    def close(self) -> None:
        """Stop the live display."""
        self._progress.stop()


# --------------------------------------------------------------------------------------------
# Options


def parse_header(text: str) -> tuple[str, str]:
    """Parse ``"Name: value"``.

    Raises:
        CliError: when there is no colon or the name is empty or not a token.
    """
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not name or any(c.isspace() for c in name):
        raise CliError(f"bad header {text!r}: expected 'Name: value'", ExitCode.USAGE)
    return name, value.strip()


def env_headers(raw: str | None) -> list[tuple[str, str]]:
    """Headers from ``ASYNCREPLY_HEADERS``: a JSON object, or ``Name: value`` lines.

    Raises:
        CliError: when the variable cannot be parsed.
    """
    if raw is None or not raw.strip():
        return []
    text = raw.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise CliError(f"ASYNCREPLY_HEADERS is not valid JSON: {exc}") from None
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise CliError("ASYNCREPLY_HEADERS must be a JSON object of strings")
        return [(str(k), v) for k, v in value.items()]
    return [parse_header(line) for line in text.splitlines() if line.strip()]


def request_headers(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, str]:
    """Headers for every request: env, then ``-H`` (which wins), then the bearer token."""
    headers: dict[str, str] = {}
    for name, value in env_headers(environ.get("ASYNCREPLY_HEADERS")):
        headers[name] = value
    for text in args.header or []:
        name, value = parse_header(text)
        headers[name] = value
    token = args.token if args.token is not None else environ.get("ASYNCREPLY_TOKEN")
    if token:
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
        path = Path(data[1:])
        try:
            return None, path.read_bytes()
        except OSError as exc:
            raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    return None, data.encode("utf-8")


def _origin(url: str) -> str:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise CliError(f"bad URL {url!r}: {exc}", ExitCode.USAGE) from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise CliError(f"bad URL {url!r}: expected an absolute http(s) URL", ExitCode.USAGE)
    return str(parsed.copy_with(path="/", query=None, fragment=None)).rstrip("/")


# --------------------------------------------------------------------------------------------
# Commands


@dataclass
class Context:
    """What every command gets."""

    args: argparse.Namespace
    term: Terminal
    environ: Mapping[str, str]
    stdin: IO[str]


def _client(ctx: Context, url: str) -> Client:
    base_url = _origin(url)
    headers = request_headers(ctx.args, ctx.environ)
    from ._client import Client

    return Client(base_url, headers=headers, timeout=ctx.args.http_timeout)


def _status_json(status: JobStatus) -> dict[str, Any]:
    return status.model_dump(mode="json", exclude={"raw"}, exclude_none=True)


def _deliver_result(ctx: Context, value: Any) -> None:
    """Print the result on stdout, or save it to ``-o FILE``."""
    output: str | None = getattr(ctx.args, "output", None)
    if isinstance(value, ResultFile):
        if output is None:
            ctx.term.emit_bytes(value.content)
            return
        _write(Path(output), value.content)
        ctx.term.info(f"saved {value.size} bytes ({value.content_type}) to {output}")
        return
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    if output is None:
        ctx.term.emit_json(value)
        return
    _write(Path(output), json.dumps(value, indent=2, ensure_ascii=False).encode() + b"\n")
    ctx.term.info(f"saved the result to {output}")


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None


def _follow(ctx: Context, op: Operation[Any]) -> int:
    """Wait for ``op`` (showing its progress on a terminal), then deliver its result."""
    args = ctx.args
    display = ctx.term.progress()
    try:
        value = op.result(timeout=args.timeout, mode=args.mode, on_progress=display.update)
    finally:
        display.close()
    _deliver_result(ctx, value)
    return ExitCode.OK


def cmd_submit(ctx: Context) -> int:
    """``asyncreply submit URL``: submit a job; with ``--wait``, follow it to its result."""
    args = ctx.args
    payload, content = load_body(args, ctx.stdin)
    headers: dict[str, str] = {}
    configured = {name.lower() for name in request_headers(args, ctx.environ)}
    if content is not None and "content-type" not in configured:
        headers["Content-Type"] = "application/json"
    with _client(ctx, args.url) as client:
        kwargs: dict[str, Any] = {"method": args.method, "headers": headers or None}
        if args.idempotency_key is not None:
            kwargs["idempotency_key"] = args.idempotency_key
        if content is not None:
            kwargs["content"] = content
        else:
            kwargs["json"] = payload if payload is not None else {}
        op = client.submit(args.url, **kwargs)
        if args.wait:
            ctx.term.info(f"submitted: {op.status_url}")
            return _follow(ctx, op)
        summary: dict[str, Any] = {"id": op.id, "statusUrl": op.status_url}
        if op.events_url is not None:
            summary["eventsUrl"] = op.events_url
        if op.status is not None:
            summary["state"] = op.status.state.value
        ctx.term.emit_json(summary)
        return ExitCode.OK


def cmd_status(ctx: Context) -> int:
    """``asyncreply status URL``: one status request; prints the normalised status."""
    with _client(ctx, ctx.args.url) as client:
        status = client.operation(ctx.args.url).refresh()
        ctx.term.emit_json(_status_json(status))
    return ExitCode.OK


def cmd_wait(ctx: Context) -> int:
    """``asyncreply wait URL``: wait for an existing job and print its result."""
    with _client(ctx, ctx.args.url) as client:
        return _follow(ctx, client.operation(ctx.args.url))


def cmd_cancel(ctx: Context) -> int:
    """``asyncreply cancel URL``: cancel a job; prints its status afterwards."""
    with _client(ctx, ctx.args.url) as client:
        status = client.operation(ctx.args.url).cancel()
    ctx.term.emit_json(_status_json(status))
    if status.is_terminal and status.state is not JobState.CANCELLED:
        raise CliError(f"cannot cancel: the job is already {status.state.value}")
    return ExitCode.OK


def cmd_check(ctx: Context) -> int:
    """``asyncreply check URL``: run the contract checker against a server."""
    from . import contract

    args = ctx.args
    _origin(args.url)
    payload, content = load_body(args, ctx.stdin)
    headers = request_headers(args, ctx.environ)
    if content is not None and "content-type" not in {name.lower() for name in headers}:
        headers["Content-Type"] = "application/json"
    body_json: Any = None
    if content is None:
        body_json = payload if payload is not None else {}
    report = contract.check(
        args.url,
        json=body_json,
        content=content,
        method=args.method,
        headers=headers,
        dialect=args.dialect,
        idempotency=args.idempotency,
        timeout=args.timeout,
        request_timeout=args.http_timeout,
    )
    if args.junit_xml is not None:
        _write(Path(args.junit_xml), report.to_junit_xml().encode("utf-8"))
    if args.format == "json":
        ctx.term.emit_text(report.to_json())
    else:
        ctx.term.emit_text(report.render_table())
    return ExitCode.OK if report.passed else ExitCode.CHECK_FAILED


def cmd_webhook_verify(ctx: Context) -> int:
    """``asyncreply webhook verify``: verify a delivery read from stdin."""
    from .webhooks import WebhookVerificationError, WebhookVerifier

    args = ctx.args
    headers: list[tuple[str, str]] = [parse_header(h) for h in args.header or []]
    buffer = getattr(ctx.stdin, "buffer", None)
    body: bytes = buffer.read() if buffer is not None else ctx.stdin.read().encode("utf-8")
    try:
        verifier = WebhookVerifier(args.secret, scheme=args.scheme, tolerance=args.tolerance)
    except ValueError as exc:  # an empty secret, a whsec_ secret that is not base64
        raise CliError(f"bad --secret: {exc}", ExitCode.USAGE) from None
    try:
        event = verifier.verify(httpx.Headers(headers), body)
    except WebhookVerificationError as exc:
        raise CliError(
            f"verification failed ({type(exc).__name__}): {exc}", ExitCode.WEBHOOK_INVALID
        ) from None
    ctx.term.emit_json(_jsonable(event))
    return ExitCode.OK


def _jsonable(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses

        return json.loads(json.dumps(dataclasses.asdict(value), default=str))
    return value


def cmd_serve(argv: Sequence[str]) -> int:
    """``asyncreply serve ...``: run the reference server (its own flags and ``--help``)."""
    try:
        from reference_server.__main__ import main as server_main
    except ImportError as exc:
        raise CliError(
            f"the reference server needs `pip install asyncreply[server]`: {exc}"
        ) from None
    try:
        code = server_main(list(argv))
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else ExitCode.ERROR
    return code if isinstance(code, int) else ExitCode.OK


# --------------------------------------------------------------------------------------------
# Parser


def _epilog() -> str:
    lines = ["exit codes:"] + [f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES.items()]
    lines += [
        "",
        "environment:",
        "  ASYNCREPLY_TOKEN    bearer token (like --token)",
        "  ASYNCREPLY_HEADERS  extra headers: a JSON object, or 'Name: value' lines",
        "  NO_COLOR            disable colours",
        "  ASYNCREPLY_DEBUG    show tracebacks of unexpected errors",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser (exposed for documentation and tests)."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Submit, follow, cancel and check async request-reply jobs.",
        epilog=_epilog() + "\n\n`asyncreply serve --help` shows the reference server's flags.",
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")

    http = argparse.ArgumentParser(add_help=False)
    http.add_argument(
        "-H",
        "--header",
        action="append",
        metavar="'NAME: VALUE'",
        help="extra request header (repeatable; also ASYNCREPLY_HEADERS)",
    )
    http.add_argument("--token", help="bearer token (default: $ASYNCREPLY_TOKEN)")
    http.add_argument(
        "--http-timeout",
        type=_positive_float,
        default=30.0,
        metavar="SECONDS",
        help="timeout of each HTTP request (default: 30)",
    )
    http.add_argument(
        "-q", "--quiet", action="store_true", help="no progress or messages on stderr"
    )

    waiting = argparse.ArgumentParser(add_help=False)
    waiting.add_argument(
        "--mode",
        choices=["auto", "sse", "long-poll", "poll"],
        default="auto",
        help="how to wait: server-sent events, long polling, polling, or auto (default)",
    )
    waiting.add_argument(
        "--timeout",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="give up waiting after this long (exit 6; the job goes on)",
    )
    waiting.add_argument(
        "-o", "--output", metavar="FILE", help="save the result to FILE instead of stdout"
    )

    body = argparse.ArgumentParser(add_help=False)
    group = body.add_mutually_exclusive_group()
    group.add_argument("--json", metavar="JSON", help="the request body, as JSON text")
    group.add_argument(
        "--data",
        metavar="@FILE|-|TEXT",
        help="the request body: @FILE reads a file, - reads stdin, anything else is sent as is",
    )

    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "submit",
        parents=[http, body, waiting],
        help="submit a job (and, with --wait, follow it to its result)",
        description="Submit a job: prints {id, statusUrl, state}, or the result with --wait.",
        epilog=_epilog(),
        formatter_class=formatter,
    )
    p.add_argument("url", metavar="URL", help="the submission URL, e.g. http://host/jobs")
    p.add_argument("--wait", action="store_true", help="wait for the result and print it")
    p.add_argument("-X", "--method", default="POST", help="submission method (default: POST)")
    p.add_argument("--idempotency-key", metavar="KEY", help="Idempotency-Key (default: random)")
    p.set_defaults(handler=cmd_submit)

    p = sub.add_parser(
        "status",
        parents=[http],
        help="print a job's current status",
        description="One status request; prints the normalised status as JSON.",
        epilog=_epilog(),
        formatter_class=formatter,
    )
    p.add_argument("url", metavar="URL", help="the job's status URL")
    p.set_defaults(handler=cmd_status)

    p = sub.add_parser(
        "wait",
        parents=[http, waiting],
        help="wait for an existing job and print its result",
        description="Wait for the job at URL (its status URL) and print its result.",
        epilog=_epilog(),
        formatter_class=formatter,
    )
    p.add_argument("url", metavar="URL", help="the job's status URL")
    p.set_defaults(handler=cmd_wait)

    p = sub.add_parser(
        "cancel",
        parents=[http],
        help="cancel a job",
        description="Cancel the job at URL; prints its status afterwards.",
        epilog=_epilog(),
        formatter_class=formatter,
    )
    p.add_argument("url", metavar="URL", help="the job's status (or cancel) URL")
    p.set_defaults(handler=cmd_cancel)

    p = sub.add_parser(
        "check",
        parents=[http, body],
        help="check that a server implements the async request-reply pattern",
        description="Submit a job to URL and check the protocol step by step (exit 9 on any "
        "failure).",
        epilog=_epilog(),
        formatter_class=formatter,
    )
    p.add_argument("url", metavar="URL", help="the submission URL, e.g. http://host/jobs")
    p.add_argument("--format", choices=["table", "json"], default="table", help="report format")
    p.add_argument("-X", "--method", default="POST", help="submission method (default: POST)")
    p.add_argument(
        "--dialect",
        choices=["auto", "reference", "status-code"],
        default="auto",
        help="how to read the server's answers (default: auto)",
    )
    p.add_argument("--junit-xml", metavar="FILE", help="also write a JUnit XML report to FILE")
    p.add_argument(
        "--idempotency", action="store_true", help="also check Idempotency-Key resubmission"
    )
    p.add_argument(
        "--timeout",
        type=_positive_float,
        default=30.0,
        metavar="SECONDS",
        help="deadline for the job to finish (default: 30)",
    )
    p.set_defaults(handler=cmd_check)

    sub.add_parser(
        "serve",
        help="run the reference server (see `asyncreply serve --help`)",
        add_help=False,
    )

    p = sub.add_parser(
        "webhook",
        help="webhook tools",
        description="Webhook tools.",
    )
    hooks = p.add_subparsers(dest="webhook_command", metavar="COMMAND", required=True)
    v = hooks.add_parser(
        "verify",
        help="verify a webhook delivery read from stdin",
        description="Verify the signature of a webhook delivery: the raw body on stdin, the "
        "headers with --header. Prints the event as JSON, or the exact reason it failed "
        "(exit 10).",
        epilog=_epilog(),
        formatter_class=formatter,
    )
    v.add_argument(
        "--secret",
        action="append",
        required=True,
        help="signing secret (repeat for key rotation; whsec_... is base64)",
    )
    v.add_argument(
        "-H",
        "--header",
        action="append",
        metavar="'NAME: VALUE'",
        help="a delivery header (repeatable)",
    )
    v.add_argument(
        "--scheme",
        choices=["auto", "hmac-sha256", "standard"],
        default="auto",
        help="signature scheme (default: auto)",
    )
    v.add_argument(
        "--tolerance",
        type=_positive_float,
        default=300.0,
        metavar="SECONDS",
        help="accepted clock skew of the timestamp (default: 300)",
    )
    v.set_defaults(handler=cmd_webhook_verify, quiet=False)
    return parser


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return value


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("asyncreply")
    except PackageNotFoundError:
        return "unknown"


# --------------------------------------------------------------------------------------------
# Entry point


def main(
    argv: Sequence[str] | None = None,
    *,
    stdin: IO[str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Run the command line and return its exit status.

    Example:
        >>> import io
        >>> err = io.StringIO()
        >>> main(["status", "relative/url"], stderr=err)
        2
        >>> print(err.getvalue(), end="")
        asyncreply: error: bad URL 'relative/url': expected an absolute http(s) URL
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    env = os.environ if environ is None else environ
    term = Terminal(out, err)
    try:
        if arguments and arguments[0] == "serve":
            return cmd_serve(arguments[1:])
        parser = build_parser()
        with _redirected(out, err):
            args = parser.parse_args(arguments)
        term = Terminal(out, err, quiet=bool(getattr(args, "quiet", False)))
        handler: Callable[[Context], int] = args.handler
        return handler(Context(args, term, env, stdin if stdin is not None else sys.stdin))
    except SystemExit as exit_:  # argparse: --help, --version, usage errors
        return exit_.code if isinstance(exit_.code, int) else ExitCode.ERROR
    except CliError as exc:
        term.error(str(exc))
        return exc.code
    except WaitTimeoutError as exc:
        term.error(f"{exc} (the job goes on; `asyncreply wait URL` resumes waiting)")
        return ExitCode.TIMEOUT
    except AsyncReplyError as exc:
        term.error(f"{_error_label(exc)}: {exc}")
        return exit_code_for(exc)
    except KeyboardInterrupt:
        term.error("interrupted")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        return ExitCode.ERROR
    except Exception as exc:  # one line for users; ASYNCREPLY_DEBUG=1 shows the traceback
        if env.get("ASYNCREPLY_DEBUG"):
            raise
        term.error(f"unexpected {type(exc).__name__}: {exc} (set ASYNCREPLY_DEBUG=1 for details)")
        return ExitCode.ERROR


def _error_label(exc: AsyncReplyError) -> str:
    labels = {
        ExitCode.FAILED: "job failed",
        ExitCode.CANCELLED: "job cancelled",
        ExitCode.GONE: "job gone",
        ExitCode.PROTOCOL: "protocol error",
        ExitCode.TRANSPORT: "transport error",
        ExitCode.REJECTED: "submission rejected",
    }
    return labels.get(exit_code_for(exc), type(exc).__name__)


@contextlib.contextmanager
def _redirected(out: IO[str], err: IO[str]) -> Iterator[None]:
    """Send argparse's help (stdout) and usage errors (stderr) to the given streams."""
    if out is sys.stdout and err is sys.stderr:
        yield
        return
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        yield


def _main() -> NoReturn:
    sys.exit(main())


if __name__ == "__main__":
    _main()
