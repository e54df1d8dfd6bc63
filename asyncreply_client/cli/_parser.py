"""The command line's grammar, as data: shared option groups and one entry per command.

:func:`build_parser` turns the tables into argparse parsers; adding a command or an option
is an edit of :data:`COMMANDS` or :data:`GROUPS`, not of code.
"""

from __future__ import annotations

import argparse
import difflib
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from .._version import __version__
from ..dialects import DIALECT_NAMES
from ._commands import (
    Context,
    cmd_cancel,
    cmd_check,
    cmd_retry,
    cmd_status,
    cmd_submit,
    cmd_wait,
    cmd_webhook_verify,
)
from ._exit import EXIT_CODES, PROG, ExitCode
from ._options import SECRET_ENV, dialect_option, non_negative_float, positive_float

__all__ = ["COMMANDS", "GROUPS", "Arg", "Command", "build_parser", "unknown_arguments"]


@dataclass(frozen=True)
class Arg:
    """One ``add_argument`` call: its flags (or positional name) and keywords."""

    flags: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)


def arg(*flags: str, **options: Any) -> Arg:
    """Shorthand for a table entry."""
    return Arg(flags, options)


@dataclass(frozen=True)
class Group:
    """Options shared by several commands, listed under their own heading in each command's
    ``--help`` (``exclusive``: at most one of them)."""

    title: str
    args: tuple[Arg, ...]
    exclusive: bool = False


@dataclass(frozen=True)
class Command:
    """One (sub)command: its help, its option groups, its own arguments and handler."""

    name: str
    help: str
    description: str = ""
    groups: tuple[str, ...] = ()
    args: tuple[Arg, ...] = ()
    handler: Callable[[Context], int] | None = None
    subcommands: tuple[Command, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)
    add_help: bool = True


_HEADER = arg(
    "-H",
    "--header",
    action="append",
    metavar="'NAME: VALUE'",
    help="extra request header (repeatable; also ASYNCREPLY_HEADERS)",
)
_URL_SUBMIT = arg("url", metavar="URL", help="the submission URL, e.g. http://host/jobs")
_URL_STATUS = arg("url", metavar="URL", help="the job's status URL")
_METHOD = arg("-X", "--method", default="POST", help="submission method (default: POST)")
_WAIT = arg("--wait", action="store_true", help="wait for the result and print it")
_KEY = arg("--idempotency-key", metavar="KEY", help="Idempotency-Key (default: random)")
_CONNECT_RETRY = arg(
    "--connect-retry",
    type=non_negative_float,
    default=10.0,
    metavar="SECONDS",
    help="how long a refused connection is tried again, as while a server restarts "
    "(default: 10; 0: fail at once)",
)

GROUPS: dict[str, Group] = {
    "http": Group(
        "request options (every command that talks to a server)",
        (
            _HEADER,
            arg("--token", help="bearer token (default: $ASYNCREPLY_TOKEN)"),
            arg(
                "--http-timeout",
                type=positive_float,
                default=30.0,
                metavar="SECONDS",
                help="timeout of each HTTP request (default: 30)",
            ),
            arg("-q", "--quiet", action="store_true", help="no progress or messages on stderr"),
            arg(
                "--dialect",
                type=dialect_option,
                default="auto",
                metavar="NAME|FILE",
                help="how to read the server's answers: "
                f"{', '.join(DIALECT_NAMES)}, or a .json/.toml file describing the API "
                "(default: auto)",
            ),
        ),
    ),
    "waiting": Group(
        "waiting options",
        (
            arg(
                "--mode",
                choices=["auto", "sse", "long-poll", "poll"],
                default="auto",
                help="how to wait: server-sent events, long polling, polling, or auto (default)",
            ),
            arg(
                "--timeout",
                type=positive_float,
                default=None,
                metavar="SECONDS",
                help="give up waiting after this long (exit 6; the job goes on)",
            ),
            arg("-o", "--output", metavar="FILE", help="save the result to FILE, not stdout"),
        ),
    ),
    "body": Group(
        "request body (one of)",
        (
            arg("--json", metavar="JSON", help="the request body, as JSON text"),
            arg(
                "--data",
                metavar="@FILE|-|TEXT",
                help="the request body: @FILE reads a file, - reads stdin, anything else is "
                "sent as is",
            ),
        ),
        exclusive=True,
    ),
}


def _tolerance(text: str) -> float:
    """``webhook verify --tolerance``: a finite number >= 0 (0 skips the timestamp check)."""
    try:
        if float(text) == 0:
            return 0.0
    except ValueError:
        pass  # positive_float names the bad value
    return positive_float(text)


_VERIFY = Command(
    "verify",
    help="verify a webhook delivery read from stdin",
    description="Verify the signature of a webhook delivery: the raw body on stdin, the "
    "headers with --header. Prints the event as JSON, or the exact reason it failed (exit 10). "
    f"The secret comes from --secret, --secret-file, --secret-env or ${SECRET_ENV}.",
    args=(
        arg(
            "--secret",
            action="append",
            help="signing secret (repeat for key rotation; whsec_... is base64); visible in "
            "`ps`: prefer --secret-file or --secret-env",
        ),
        arg(
            "--secret-file",
            action="append",
            metavar="FILE",
            help="read the secret(s) from FILE, one per line (repeatable)",
        ),
        arg(
            "--secret-env",
            action="append",
            metavar="VAR",
            help=f"read the secret(s) from the environment variable VAR (default: {SECRET_ENV})",
        ),
        arg("-H", "--header", action="append", metavar="'NAME: VALUE'", help="a delivery header"),
        arg(
            "--scheme",
            choices=["auto", "hmac-sha256", "standard"],
            default="auto",
            help="signature scheme (default: auto)",
        ),
        arg(
            "--tolerance",
            type=_tolerance,
            default=300.0,
            metavar="SECONDS",
            help="accepted clock skew of the timestamp (default: 300; 0 skips the check)",
        ),
        arg(
            "--no-timestamp-check",
            action="store_true",
            help="skip the timestamp check (a captured delivery of any age), like --tolerance 0",
        ),
    ),
    handler=cmd_webhook_verify,
    defaults={"quiet": False},
)

COMMANDS: tuple[Command, ...] = (
    Command(
        "submit",
        help="submit a job (and, with --wait, follow it to its result)",
        description="Submit a job: prints its job document ({id, state, statusUrl, ...}), or the "
        "result with --wait. "
        "With --wait and stderr not a terminal, a JSON line on stderr gives the job's URL as "
        "soon as it exists.",
        groups=("http", "body", "waiting"),
        args=(_URL_SUBMIT, _WAIT, _METHOD, _KEY, _CONNECT_RETRY),
        handler=cmd_submit,
    ),
    Command(
        "status",
        help="print a job's current status",
        description="One status request; prints the normalised status as JSON.",
        groups=("http",),
        args=(_URL_STATUS, _CONNECT_RETRY),
        handler=cmd_status,
    ),
    Command(
        "wait",
        help="wait for an existing job and print its result",
        description="Wait for the job at URL (its status URL) and print its result.",
        groups=("http", "waiting"),
        args=(_URL_STATUS, _CONNECT_RETRY),
        handler=cmd_wait,
    ),
    Command(
        "cancel",
        help="cancel a job",
        description="Cancel the job at URL; prints its status afterwards.",
        groups=("http",),
        args=(_URL_STATUS, _CONNECT_RETRY),
        handler=cmd_cancel,
    ),
    Command(
        "retry",
        help="run a failed job again (and, with --wait, follow the new job)",
        description="POST the retry URL of the failed job at URL: prints the new job's document, "
        "or its result with --wait.",
        groups=("http", "waiting"),
        args=(_URL_STATUS, _WAIT, _KEY, _CONNECT_RETRY),
        handler=cmd_retry,
    ),
    Command(
        "check",
        help="check that a server implements the async request-reply pattern",
        description="Submit a job to URL and check the protocol step by step (exit 9 on any "
        "failure, 8 when the server does not answer).",
        groups=("http", "body"),
        args=(
            _URL_SUBMIT,
            arg("--format", choices=["table", "json"], default="table", help="report format"),
            _METHOD,
            arg("--junit-xml", metavar="FILE", help="also write a JUnit XML report to FILE"),
            arg("--idempotency", action="store_true", help="also check Idempotency-Key replays"),
            arg(
                "--timeout",
                type=positive_float,
                default=30.0,
                metavar="SECONDS",
                help="deadline for the job to finish (default: 30)",
            ),
        ),
        handler=cmd_check,
    ),
    Command("serve", help=f"run the reference server (see `{PROG} serve --help`)", add_help=False),
    Command("webhook", help="webhook tools", description="Webhook tools.", subcommands=(_VERIFY,)),
)

_ENVIRONMENT = (
    ("ASYNCREPLY_TOKEN", "bearer token (like --token)"),
    ("ASYNCREPLY_HEADERS", "extra headers: a JSON object, or 'Name: value' lines"),
    (SECRET_ENV, "webhook verify's signing secret(s), one per line"),
    ("ASYNCREPLY_PROGRESS", "progress bar library: auto, rich, tqdm or plain"),
    ("NO_COLOR", "disable colours"),
    ("ASYNCREPLY_DEBUG", "show tracebacks of unexpected errors"),
)


def _epilog() -> str:
    """The exit codes and environment variables, once, in ``asyncreply --help``."""
    lines = ["exit codes:"] + [f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES.items()]
    lines += ["", "environment:"] + [f"  {name:<26} {text}" for name, text in _ENVIRONMENT]
    return "\n".join(lines)


#: The last line of every command's ``--help``: where the shared facts are.
_SEE_MAIN_HELP = f"exit codes and environment variables: `{PROG} --help`"


def _add_args(parser: argparse.ArgumentParser, args: tuple[Arg, ...], group: Group | None) -> None:
    target: Any = parser
    if group is not None:
        target = parser.add_argument_group(group.title)
        if group.exclusive:
            target = target.add_mutually_exclusive_group()
    for item in args:
        target.add_argument(*item.flags, **item.options)


def _add_command(sub: Any, command: Command) -> None:
    if not command.add_help:
        sub.add_parser(command.name, help=command.help, add_help=False)
        return
    parser: argparse.ArgumentParser = sub.add_parser(
        command.name,
        help=command.help,
        description=textwrap.fill(command.description, 88) if command.description else None,
        epilog=None if command.subcommands else _SEE_MAIN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    _add_args(parser, command.args, None)
    for name in command.groups:
        _add_args(parser, GROUPS[name].args, GROUPS[name])
    if command.subcommands:
        nested = parser.add_subparsers(
            dest=f"{command.name}_command", metavar="COMMAND", required=True
        )
        for child in command.subcommands:
            _add_command(nested, child)
    if command.handler is not None:
        parser.set_defaults(handler=command.handler, **command.defaults)


def _find(names: list[str]) -> Command | None:
    commands, found = COMMANDS, None
    for name in names:
        found = next((c for c in commands if c.name == name), None)
        if found is None:
            return None
        commands = found.subcommands
    return found


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line under the command's name, exit 2: ``asyncreply submit: error:
    … (`asyncreply submit --help` shows the usage)``, not a usage block that buries them.
    (Subcommands' parsers are of the same class: argparse creates them with the parent's.)"""

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message}{_see_help(self.prog)}\n")


def _see_help(prog: str) -> str:
    return f" (`{prog} --help` shows the usage)"


def unknown_arguments(args: argparse.Namespace, extra: list[str]) -> str:
    """The usage error for arguments no parser took, naming the command and, for a mistyped
    option, the one meant (``asyncreply submit: error: unknown option --jsn (did you mean
    --json?) …``)."""
    names = [args.command, *[getattr(args, f"{args.command}_command", None) or ""]]
    names = [name for name in names if name]
    command = _find(names)
    path = " ".join(names)
    known = [
        flag
        for item in (command.args if command else ())
        + tuple(a for g in (command.groups if command else ()) for a in GROUPS[g].args)
        for flag in item.flags
        if flag.startswith("--")
    ]
    options = [word for word in extra if word.startswith("-") and word != "-"]
    prog = f"{PROG} {path}"
    if options:
        option = options[0].split("=", 1)[0]
        close = difflib.get_close_matches(option, known, n=1)
        meant = f" (did you mean {close[0]}?)" if close else ""
        problem = f"unknown option {option}{meant}"
    else:
        problem = f"unexpected argument {extra[0]!r}"
    return f"{prog}: error: {problem}{_see_help(prog)}"


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser from :data:`COMMANDS` (exposed for documentation and tests)."""
    parser = _Parser(
        prog=PROG,
        description="Submit, follow, cancel, retry and check async request-reply jobs.",
        epilog=_epilog() + f"\n\n`{PROG} serve --help` shows the reference server's flags.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        _add_command(sub, command)
    return parser
