"""The entry point: parse, run one command, turn every error into a message and an exit status."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO

from .._errors import AsyncReplyError, WaitTimeoutError
from ._commands import Context, cmd_serve
from ._exit import PROG, CliError, ExitCode, describe_error, exit_code_for
from ._parser import build_parser, unknown_arguments
from ._terminal import Terminal

__all__ = ["main"]


def _resume_hint(term: Terminal, exc: WaitTimeoutError | None = None) -> str:
    """``the job goes on[; last state: S]; `asyncreply wait URL` resumes waiting``, from the
    structured facts rather than the exception's text (which says some of it already)."""
    last = exc.status if exc is not None else None
    state = f"; last state: {last.state.value}" if last is not None else ""
    return f"the job goes on{state}; `{PROG} wait {term.job_url or 'URL'}` resumes waiting"


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
    term = Terminal(out, err, environ=env)
    try:
        with _redirected(out, err):
            if arguments and arguments[0] == "serve":
                return cmd_serve(arguments[1:])
            args, extra = build_parser().parse_known_args(arguments)
            if extra:  # `submit --jsn '{}' URL`: refused, not read as URL '{}'
                print(unknown_arguments(args, extra), file=err)
                return ExitCode.USAGE
        term = Terminal(out, err, quiet=bool(getattr(args, "quiet", False)), environ=env)
        handler: Callable[[Context], int] = args.handler
        return handler(Context(args, term, env, stdin if stdin is not None else sys.stdin))
    except SystemExit as exit_:  # argparse: --help, --version, usage errors
        return exit_.code if isinstance(exit_.code, int) else ExitCode.ERROR
    except CliError as exc:
        term.error(str(exc))
        return exc.code
    except WaitTimeoutError as exc:
        term.error(f"wait timed out ({_resume_hint(term, exc)})")
        return ExitCode.TIMEOUT
    except AsyncReplyError as exc:
        term.error(describe_error(exc))
        return exit_code_for(exc)
    except KeyboardInterrupt:
        term.error("interrupted" + (f" ({_resume_hint(term)})" if term.job_url else ""))
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        return ExitCode.ERROR
    except Exception as exc:  # one line for users; ASYNCREPLY_DEBUG=1 shows the traceback
        if env.get("ASYNCREPLY_DEBUG"):
            raise
        term.error(f"unexpected {type(exc).__name__}: {exc} (set ASYNCREPLY_DEBUG=1 for details)")
        return ExitCode.ERROR


@contextlib.contextmanager
def _redirected(out: IO[str], err: IO[str]) -> Iterator[None]:
    """Send argparse's help (stdout) and usage errors (stderr) to the given streams."""
    if out is sys.stdout and err is sys.stderr:
        yield
        return
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        yield
