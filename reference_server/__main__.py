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
import logging
import signal
import sys
import typing
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from .config import FaultConfig, ServerConfig
from .serving import serve

__all__ = ["build_parser", "config_from_args", "main", "port_in_use"]


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


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser (one flag per config field)."""
    parser = argparse.ArgumentParser(
        prog="asyncreply-server",
        description="Run the asyncreply reference server (async request-reply protocol).",
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
    parser.add_argument("--log-level", default="INFO", help="Logging level (default: INFO).")
    return parser


def config_from_args(argv: Sequence[str] | None = None) -> ServerConfig:
    """Parse ``argv`` into a :class:`ServerConfig` (exits with a message on bad values)."""
    parser = build_parser()
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
        parser.error(str(exc))
        raise  # unreachable: parser.error exits


async def _run(config: ServerConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with serve(config) as server:
        print(f"asyncreply reference server listening on {server.base_url}", flush=True)
        await stop.wait()
    print("asyncreply reference server stopped", flush=True)


def port_in_use(config: ServerConfig) -> str:
    """The one-line message for a server whose port is taken."""
    return (
        f"port {config.port} is in use on {config.host} (choose another with --port, or "
        "--port 0 for any free port)"
    )


def main(argv: Sequence[str] | None = None, *, prog: str = "asyncreply-server") -> int:
    """Entry point of ``asyncreply-server``: 0 once stopped, 1 when the port is in use.

    Args:
        argv: the arguments (``sys.argv[1:]`` when ``None``).
        prog: the program name of error messages (``asyncreply`` for ``asyncreply serve``).
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=str(args.log_level).upper(), format="%(levelname)s %(message)s")
    config = config_from_args(argv)
    if config.instances > 1:
        from .instances import supervise

        return supervise(config, list(sys.argv[1:] if argv is None else argv))
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_run(config))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        print(f"{prog}: error: {port_in_use(config)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
