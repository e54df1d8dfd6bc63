"""The commands of ``asyncreply``: each takes a :class:`Context` and returns an exit status."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .._errors import JobOutcomeError

# The public names: the dialects' private home is being reorganised (issue 9).
from .._models import JobState, JobStatus, ResultFile
from ..dialects import dialect_from
from ._exit import PROG, CliError, ExitCode
from ._json import job_json, report_json, webhook_event_json
from ._options import load_body, origin, parse_header, request_headers, webhook_secrets
from ._terminal import Terminal

if TYPE_CHECKING:
    from .._client import Client
    from .._operation import Operation
    from ..contract import ContractReport

__all__ = [
    "Context",
    "cmd_cancel",
    "cmd_check",
    "cmd_retry",
    "cmd_serve",
    "cmd_status",
    "cmd_submit",
    "cmd_wait",
    "cmd_webhook_verify",
]


@dataclass
class Context:
    """What every command gets."""

    args: argparse.Namespace
    term: Terminal
    environ: Mapping[str, str]
    stdin: IO[str]


def _client(ctx: Context, url: str) -> Client:
    base_url = origin(url)
    headers = request_headers(ctx.args, ctx.environ)
    from .._client import Client
    from .._retry_policy import RetryPolicy

    return Client(
        base_url,
        headers=headers,
        timeout=ctx.args.http_timeout,
        retry=RetryPolicy(connect_for=ctx.args.connect_retry),
        dialect=getattr(ctx.args, "dialect", None),
    )


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None


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


def _follow(ctx: Context, op: Operation[Any]) -> int:
    """Wait for ``op`` (showing its progress on a terminal), then deliver its result."""
    args = ctx.args
    ctx.term.job_url = op.status_url
    with ctx.term.progress() as display:
        value = op.result(timeout=args.timeout, mode=args.mode, on_progress=display)
    _deliver_result(ctx, value)
    return ExitCode.OK


def _started(ctx: Context, op: Operation[Any], event: str) -> int:
    """A job now exists: announce it, then follow it (``--wait``) or print its summary."""
    summary = job_json(op)
    if ctx.args.wait:
        ctx.term.announce(event, summary)
        return _follow(ctx, op)
    ctx.term.emit_json(summary)
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
        return _started(ctx, client.submit(args.url, **kwargs), "submitted")


def cmd_retry(ctx: Context) -> int:
    """``asyncreply retry URL``: run a failed, retryable job again (its retry URL, through
    ``Operation.retry``); prints the new job, or its result with ``--wait``."""
    args = ctx.args
    with _client(ctx, args.url) as client:
        try:
            retried = client.operation(args.url).retry(idempotency_key=args.idempotency_key)
        except JobOutcomeError as exc:
            if type(exc) is not JobOutcomeError:  # a failed / cancelled outcome says it all
                raise
            raise CliError(_cannot_retry(exc.status)) from None
        return _started(ctx, retried, "retried")


def _cannot_retry(status: JobStatus | None) -> str:
    """Why a job offers no retry URL, in words (exit 1)."""
    if status is None:
        return "cannot retry: the job offers no retry URL"
    if status.state is not JobState.FAILED:
        return (
            f"cannot retry: the job is {status.state.value}; only a failed job whose error is "
            "retryable can be run again"
        )
    summary = status.error.summary if status.error is not None else ""
    reason = f" ({summary})" if summary else ""
    return f"cannot retry: the job failed with an error that is not retryable{reason}"


def cmd_status(ctx: Context) -> int:
    """``asyncreply status URL``: one status request; prints the job document."""
    with _client(ctx, ctx.args.url) as client:
        op = client.operation(ctx.args.url)
        ctx.term.emit_json(job_json(op, op.refresh()))
    return ExitCode.OK


def cmd_wait(ctx: Context) -> int:
    """``asyncreply wait URL``: wait for an existing job and print its result."""
    with _client(ctx, ctx.args.url) as client:
        return _follow(ctx, client.operation(ctx.args.url))


def cmd_cancel(ctx: Context) -> int:
    """``asyncreply cancel URL``: cancel a job; prints its job document afterwards.

    A job that had already finished (completed, failed or cancelled before this command)
    cannot be cancelled: its document is printed and the command exits 1, whichever way it
    finished. The status is read first, because a server answers a cancellation of a
    finished job with its terminal status (409), which does not say who cancelled it.
    """
    with _client(ctx, ctx.args.url) as client:
        op = client.operation(ctx.args.url)
        status = op.refresh()
        if not status.is_terminal:
            status = op.cancel()
            if status.state is JobState.CANCELLED or not status.is_terminal:
                ctx.term.emit_json(job_json(op, status))  # cancelled, or being cancelled
                return ExitCode.OK
    ctx.term.emit_json(job_json(op, status))
    raise CliError(f"cannot cancel: the job is already {status.state.value}")


def _unanswered(report: ContractReport) -> str | None:
    """Why the submission got no answer at all (the server is down), or ``None``."""
    submit = report.get("submit")
    if submit is None or submit.evidence is None or submit.outcome.value != "fail":
        return None
    evidence = submit.evidence
    return None if evidence.status_code is not None else (evidence.note or submit.summary)


def cmd_check(ctx: Context) -> int:
    """``asyncreply check URL``: run the contract checker against a server."""
    from .. import contract

    args = ctx.args
    origin(args.url)
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
        dialect=dialect_from(args.dialect),
        idempotency=args.idempotency,
        timeout=args.timeout,
        request_timeout=args.http_timeout,
    )
    if args.junit_xml is not None:
        _write(Path(args.junit_xml), report.to_junit_xml().encode("utf-8"))
    if args.format == "json":
        ctx.term.emit_json(report_json(report))
    else:
        ctx.term.emit_text(report.render_table())
    unanswered = _unanswered(report)
    if unanswered is not None:
        # Nothing was checked: the server is down or unreachable, not in breach of the contract.
        raise CliError(f"transport error: {unanswered}", ExitCode.TRANSPORT)
    return ExitCode.OK if report.passed else ExitCode.CHECK_FAILED


def cmd_webhook_verify(ctx: Context) -> int:
    """``asyncreply webhook verify``: verify a delivery read from stdin."""
    from ..webhooks import InvalidSignatureError, WebhookVerificationError, WebhookVerifier

    args = ctx.args
    secrets = webhook_secrets(args, ctx.environ)
    # The pairs as typed (not httpx.Headers, which refuses non-ASCII with a bare
    # UnicodeEncodeError): the verifier reads any header shape and types its own errors.
    headers: list[tuple[str, str]] = [parse_header(h, sent=False) for h in args.header or []]
    buffer = getattr(ctx.stdin, "buffer", None)
    body: bytes = buffer.read() if buffer is not None else ctx.stdin.read().encode("utf-8")
    # --tolerance 0 and --no-timestamp-check both mean the API's tolerance=None: a captured
    # delivery of any age can be checked.
    tolerance = None if args.no_timestamp_check or not args.tolerance else args.tolerance
    try:
        verifier = WebhookVerifier(secrets, scheme=args.scheme, tolerance=tolerance)
    except ValueError as exc:  # an empty secret, a whsec_ secret that is not base64
        raise CliError(f"bad secret: {exc}", ExitCode.USAGE) from None
    try:
        event = verifier.verify(headers, body)
    except WebhookVerificationError as exc:
        message = f"verification failed ({type(exc).__name__}): {exc}"
        if isinstance(exc, InvalidSignatureError) and _signed_without_newline(
            secrets, args.scheme, headers, body
        ):
            message += (
                "; the body on stdin ends with a newline the sender did not sign: the body "
                "must be byte-exact (printf '%s' \"$BODY\", or a file saved as received)"
            )
        raise CliError(message, ExitCode.WEBHOOK_INVALID) from None
    ctx.term.emit_json(webhook_event_json(event))
    return ExitCode.OK


def _signed_without_newline(
    secrets: list[str], scheme: Any, headers: list[tuple[str, str]], body: bytes
) -> bool:
    """Whether ``body`` fails only because of trailing line breaks (``echo`` adds one)."""
    from ..webhooks import WebhookVerificationError, WebhookVerifier

    stripped = body.rstrip(b"\r\n")
    if stripped == body:
        return False
    verifier = WebhookVerifier(secrets, scheme=scheme, tolerance=None, replay_store=None)
    try:
        verifier.verify(headers, stripped)
    except WebhookVerificationError:
        return False
    return True


def cmd_serve(argv: Sequence[str]) -> int:
    """``asyncreply serve ...``: run the reference server (its own flags and ``--help``)."""
    try:
        from reference_server import __main__ as server_cli
    except ImportError as exc:
        raise CliError(
            f"the reference server needs `pip install asyncreply[server]`: {exc}"
        ) from None
    try:
        # --help, bad flags, a busy port, an unusable database: one line each, under the
        # name `asyncreply serve` (exit 2 for a bad flag, 1 otherwise).
        code = server_cli.main(list(argv), prog=f"{PROG} serve")
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else ExitCode.ERROR
    return code if isinstance(code, int) else ExitCode.OK
