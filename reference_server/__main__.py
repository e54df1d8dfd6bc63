"""Command line: ``python -m reference_server`` / ``asyncreply-server``.

Every :class:`~reference_server.config.ServerConfig` field is a flag (``--job-ttl 60``,
``--dialect status-code``, ``--fault-p-503 0.2`` …). The server prints the URL it listens on
and serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import logging
import signal
import sqlite3
import sys
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from .config import FaultConfig, ServerConfig
from .serving import serve
from .store import StoreUnavailable

__all__ = [
    "build_parser",
    "config_from_args",
    "freeze_startup_heap",
    "main",
    "port_in_use",
    "sqlite_problem",
]


def _add_model_flags(
    parser: argparse.ArgumentParser, model: type[BaseModel], prefix: str, skip: set[str]
) -> None:
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        flag = "--" + prefix + name.replace("_", "-")
        dest = prefix.replace("-", "_") + name
        annotation = info.annotation
        help_text = (info.description or "") + f" (default: {info.get_default()!r})"
        args = typing.get_args(annotation)
        origin = typing.get_origin(annotation)
        kwargs: dict[str, Any] = {"dest": dest, "default": argparse.SUPPRESS, "help": help_text}
        if name == "store":  # a name, or a redis:// URL (the model checks it)
            metavar = "{" + ",".join(args) + ",redis://HOST:PORT/DB}"
            parser.add_argument(flag, metavar=metavar, **kwargs)
        elif annotation is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        elif origin is Literal:
            parser.add_argument(flag, choices=list(args), **kwargs)
        else:
            base = annotation
            if args and type(None) in args:
                base = next(a for a in args if a is not type(None))
            converters: dict[Any, Callable[[str], Any]] = {int: int, float: float}
            converter = converters.get(base, str)
            parser.add_argument(flag, type=converter, metavar=name.upper(), **kwargs)


PROG = "asyncreply-server"


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, exit 2: the usage of some fifty flags would bury the message."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (`{self.prog} --help` lists the flags)\n")


def build_parser(*, prog: str = PROG) -> argparse.ArgumentParser:
    """Return the argument parser (one flag per config field).

    Args:
        prog: the program name of its usage and errors (``asyncreply serve`` for the CLI).
    """
    parser = _Parser(
        prog=prog,
        description="Run the asyncreply reference server (async request-reply protocol).",
        allow_abbrev=False,
    )
    _add_model_flags(parser, ServerConfig, "", {"faults", "tokens", "cors_origins"})
    parser.add_argument(
        "--cors-origin",
        action="append",
        dest="cors_origin_list",
        default=None,
        metavar="ORIGIN",
        help="Let browser pages of ORIGIN (scheme://host[:port], or '*') call the API: CORS "
        "headers on every answer and on preflight (OPTIONS). Repeatable, or a comma-separated "
        "list.",
    )
    parser.add_argument(
        "--token",
        action="append",
        dest="token_list",
        default=None,
        metavar="TOKEN=USER",
        help="Accept bearer TOKEN as USER (repeatable). Without any: dev mode, any token is "
        "its own user and no token is 'anonymous'.",
    )
    _add_model_flags(parser, FaultConfig, "fault-", set())
    parser.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        help="Logging level (default: INFO).",
    )
    return parser


def _flag_of(loc: tuple[int | str, ...], model: str) -> str:
    """The command-line flag of an error location in ``model`` (a config class's name)."""
    names = [str(part) for part in loc]
    if model == FaultConfig.__name__:
        names = ["faults", *names]
    if names[:1] == ["faults"] and len(names) > 1:
        return "--fault-" + names[1].replace("_", "-")
    if names[:1] == ["tokens"]:
        return "--token"
    return "--" + names[0].replace("_", "-") if names else "a flag"


def _explain(exc: ValidationError) -> str:
    """``--workers 0: input should be greater than or equal to 1``, one per bad value."""
    parts = []
    for error in exc.errors():
        value = error.get("input")
        shown = f" {value}" if isinstance(value, (str, int, float)) else ""
        message = str(error["msg"])
        flag = _flag_of(error["loc"], exc.title)
        parts.append(f"{flag}{shown}: {message[:1].lower()}{message[1:]}")
    return "; ".join(parts)


def config_from_args(argv: Sequence[str] | None = None, *, prog: str = PROG) -> ServerConfig:
    """Parse ``argv`` into a :class:`ServerConfig` (exits 2 with a one-line message on bad
    values)."""
    parser = build_parser(prog=prog)
    ns = vars(parser.parse_args(argv))
    ns.pop("log_level", None)
    faults = {k[len("fault_") :]: v for k, v in ns.items() if k.startswith("fault_")}
    fields = {
        k: v
        for k, v in ns.items()
        if not k.startswith("fault_") and k not in ("token_list", "cors_origin_list")
    }
    if ns.get("cors_origin_list"):
        origins = [o.strip() for item in ns["cors_origin_list"] for o in item.split(",")]
        fields["cors_origins"] = tuple(o for o in origins if o)
    tokens: dict[str, str] | None = None
    if ns.get("token_list"):
        tokens = {}
        for item in ns["token_list"]:
            token, sep, user = item.partition("=")
            if not sep or not token or not user:
                parser.error(f"--token expects TOKEN=USER, got {item!r}")
            tokens[token] = user
        fields["tokens"] = tokens
    try:
        return ServerConfig(**fields, faults=FaultConfig(**faults))
    except ValidationError as exc:
        parser.error(_explain(exc))


def freeze_startup_heap() -> None:
    """Leave what the server built at startup out of the garbage collector's full passes.

    Modules, models, the application and its OpenAPI document live as long as the process:
    about 50,000 objects, which every full pass walked (40 to 70 ms on the development
    machine, a pause for whatever request is then under way). Frozen once started
    (``gc.freeze``), a full pass walks only what serving created since.
    """
    gc.collect()
    gc.freeze()


async def _run(config: ServerConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with serve(config) as server:
        freeze_startup_heap()
        print(f"asyncreply reference server listening on {server.base_url}", flush=True)
        await stop.wait()
    print("asyncreply reference server stopped", flush=True)


def port_in_use(config: ServerConfig) -> str:
    """The one-line message for a server whose port is taken."""
    return (
        f"port {config.port} is in use on {config.host} (choose another with --port, or "
        "--port 0 for any free port)"
    )


def sqlite_problem(config: ServerConfig) -> str | None:
    """Why the SQLite database of ``config`` cannot be opened (``None``: it can, or the store
    is not SQLite), checked before the server starts so the message names the path."""
    if config.store != "sqlite":
        return None
    path = Path(config.sqlite_path)
    where = f"--sqlite-path {path}"
    if not path.parent.is_dir():
        return f"{where}: the directory {path.parent} does not exist"
    if path.is_dir():
        return f"{where}: is a directory, not a database file"
    try:
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute("PRAGMA schema_version")
    except sqlite3.Error as exc:
        return f"{where}: cannot open the SQLite database ({exc})"
    return None


def main(argv: Sequence[str] | None = None, *, prog: str = PROG) -> int:
    """Entry point of ``asyncreply-server``: 0 once stopped, 1 when the port is in use or the
    store fails, 2 for a bad flag (one line each, never a traceback).

    Args:
        argv: the arguments (``sys.argv[1:]`` when ``None``).
        prog: the program name of usage and error messages (``asyncreply serve`` for
            ``asyncreply serve``).
    """
    args = build_parser(prog=prog).parse_args(argv)
    config = config_from_args(argv, prog=prog)
    problem = sqlite_problem(config)
    if problem is not None:
        print(f"{prog}: error: {problem}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(message)s")
    if config.instances > 1:
        from .instances import supervise

        return supervise(config, list(sys.argv[1:] if argv is None else argv))
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_run(config))
    except sqlite3.Error as exc:
        print(f"{prog}: error: SQLite database {config.sqlite_path}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        print(f"{prog}: error: {port_in_use(config)}", file=sys.stderr)
        return 1
    except StoreUnavailable as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
