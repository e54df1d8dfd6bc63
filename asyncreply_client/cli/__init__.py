"""The ``asyncreply`` command line: submit, follow, cancel, retry and check async
request-reply jobs.

Output goes to stdout (the result, a job document or a report, as JSON unless stated) and
every message to stderr, so the command composes in pipelines. The command line's own JSON
documents use the protocol's camelCase keys, whole numbers as integers and RFC 3339 times
(:mod:`._json`); a job's result is printed as the server sent it. On a terminal, ``--wait``
shows a live progress bar (:mod:`asyncreply_client.progress`); when stderr is not a terminal
there is no progress and no colour, and ``submit --wait`` / ``retry --wait`` print the job's
URL as a JSON line on stderr as soon as the job exists.

The package: :mod:`._parser` (the grammar, as tables), :mod:`._commands` (one function per
command), :mod:`._terminal` (output), :mod:`._json` (the JSON documents), :mod:`._options`
(reading inputs), :mod:`._exit` (exit statuses and error messages), :mod:`._main` (the entry
point).

Exit codes::

    0   done (the job completed, the command succeeded)
    1   other error (bad input file, cancel of a finished job, retry of a job that cannot be
        retried, unexpected failure, busy port)
    2   usage error (bad or unknown option, bad --json, header, URL or ASYNCREPLY_HEADERS)
    3   the job failed
    4   the job was cancelled
    5   the job expired (410) or is unknown (404)
    6   the wait timed out (the job goes on; wait again with `asyncreply wait URL`)
    7   protocol error (the server broke the async request-reply protocol)
    8   transport error (network failures or transient statuses after every retry; a
        server that does not answer at all, for `check` too)
    9   the contract check found failures
    10  webhook verification failed
    11  the server rejected the submission (4xx)
    130 interrupted (Ctrl-C)
"""

from __future__ import annotations

from ._exit import EXIT_CODES, CliError, ExitCode, describe_error, exit_code_for
from ._main import main
from ._parser import build_parser

__all__ = [
    "EXIT_CODES",
    "CliError",
    "ExitCode",
    "build_parser",
    "describe_error",
    "exit_code_for",
    "main",
]
