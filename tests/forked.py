"""Run ``python -m MODULE ARGS``, ``python PATH ARGS`` or ``python -c CODE`` as a fork of a
process that has already imported what they import (a zygote), instead of a fresh interpreter.

The CLI tests, the documentation blocks and the examples each started a new interpreter that
imported httpx, pydantic and the SDK (0.3-1 s on a loaded CI machine, some 270 times a run).
Here one process (``python -m tests.forked FD MODULE...``) imports them once; each run is a
``fork()`` of it, given its own stdin/stdout/stderr pipes, environment, working directory and
``sys.argv``, that then runs the module or the script as ``__main__`` (as ``python -m`` and
``python PATH`` do) or the code in a fresh ``__main__`` module (as ``python -c`` does). The
test still talks to a separate process: its exit status, its bytes on real pipes (the
non-terminal case), no state shared with the test process or with an earlier run (the zygote
itself never runs anything). Tests that need the interpreter's own start (signals, a
terminal, the console script, a process that spawns itself again) start one as before.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["Zygote"]

ROOT = Path(__file__).resolve().parents[1]
_MAX_MESSAGE = 1 << 20


def _exit_code(exc: SystemExit) -> int:
    """The status ``sys.exit(code)`` gives a process (as the interpreter maps it)."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    print(exc.code, file=sys.stderr)
    return 1


def _python_path(env: Mapping[str, str]) -> list[str]:
    return [os.path.abspath(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]


#: The zygote's ``sys.path`` after its first entry and its ``PYTHONPATH``: the standard library
#: and site-packages, which every run keeps (set when the zygote starts).
_SITE: list[str] = []


def _set_path(first: str, env: Mapping[str, str]) -> None:
    """``sys.path`` as a fresh interpreter started with ``env`` would have it."""
    sys.path[:] = [first, *_python_path(env), *_SITE]


def _become(request: dict[str, Any]) -> None:
    """Run the request as ``python -m`` / ``python PATH`` / ``python -c`` would (in the child)."""
    import builtins
    import runpy
    import types

    env = request["env"]
    if "module" in request:
        _set_path(os.getcwd(), env)  # ``python -m`` puts the working directory first
        sys.argv = [request["module"], *request["args"]]
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    elif "path" in request:
        path = os.path.abspath(request["path"])
        _set_path(os.path.dirname(path), env)  # ``python PATH``: the script's directory
        sys.argv = [request["path"], *request["args"]]
        runpy.run_path(path, run_name="__main__")
    else:
        _set_path("", env)  # ``python -c``: the working directory, as ""
        sys.argv = ["-c", *request["args"]]
        main = types.ModuleType("__main__")
        main.__dict__["__builtins__"] = builtins
        sys.modules["__main__"] = main
        exec(compile(request["code"], "<string>", "exec"), main.__dict__)


def _run_child(fds: list[int], request: dict[str, Any]) -> None:
    """In the forked child: become the requested program; never returns."""
    import atexit
    import traceback

    code = 1
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        try:
            _become(request)
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc)
        except BaseException as exc:  # what the interpreter does with an uncaught exception
            tb = exc.__traceback__
            while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
                tb = tb.tb_next  # the zygote's own frames are not the program's
            traceback.print_exception(type(exc), exc, tb)
            code = 1
        # What the interpreter does at exit: wait for the non-daemon threads, run the atexit
        # functions, flush the standard streams.
        threading._shutdown()  # type: ignore[attr-defined]
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                code = code or 120  # as the interpreter does when stdout cannot be flushed
    finally:
        os._exit(code)


def _serve(sock: socket.socket, preload: Sequence[str]) -> None:
    """The zygote's loop: one run at a time, until the test process goes away."""
    own = set(_python_path(os.environ))
    _SITE[:] = [p for p in sys.path[1:] if os.path.abspath(p) not in own]
    for name in preload:
        importlib.import_module(name)  # the point: imported once, here
    while True:
        try:
            data, fds, _flags, _addr = socket.recv_fds(sock, _MAX_MESSAGE, 3)
        except OSError:
            return
        if not data:
            return
        request = json.loads(data)
        pid = os.fork()
        if pid == 0:
            sock.close()
            _run_child(fds, request)
        for fd in fds:
            os.close(fd)
        sock.send(json.dumps({"pid": pid}).encode())
        _, status = os.waitpid(pid, 0)
        sock.send(json.dumps({"status": os.waitstatus_to_exitcode(status)}).encode())


class Zygote:
    """The test side: starts the zygote (importing ``preload``), then runs programs as forks
    of it, one at a time.

    ``env`` is the zygote's own environment: what the interpreter reads at start-up
    (``PYTHONPATH``, locale, ``PYTHONWARNINGS``) comes from it; each run sets its own
    ``os.environ``.
    """

    def __init__(self, preload: Sequence[str], env: Mapping[str, str]) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._sock = ours
        self._lock = threading.Lock()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.forked", str(theirs.fileno()), *preload],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            cwd=ROOT,
            env=dict(env),
        )
        theirs.close()

    def run_module(
        self,
        module: str,
        args: Sequence[str],
        *,
        input: bytes | None = None,
        env: Mapping[str, str],
        cwd: str | Path,
        timeout: float,
    ) -> tuple[int, bytes, bytes]:
        """``python -m module *args``: its exit status, stdout and stderr."""
        request = {"module": module, "args": list(args), "env": dict(env), "cwd": str(cwd)}
        return self._run(request, input, timeout)

    def run_path(
        self,
        path: str | Path,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str],
        cwd: str | Path,
        timeout: float,
    ) -> tuple[int, bytes, bytes]:
        """``python path *args``: its exit status, stdout and stderr."""
        request = {"path": str(path), "args": list(args), "env": dict(env), "cwd": str(cwd)}
        return self._run(request, None, timeout)

    def run_code(
        self, code: str, *, env: Mapping[str, str], cwd: str | Path, timeout: float
    ) -> tuple[int, bytes, bytes]:
        """``python -c code``: its exit status, stdout and stderr."""
        request = {"code": code, "args": [], "env": dict(env), "cwd": str(cwd)}
        return self._run(request, None, timeout)

    def _run(
        self, request: dict[str, Any], input: bytes | None, timeout: float
    ) -> tuple[int, bytes, bytes]:
        with self._lock:
            stdin_r, stdin_w = os.pipe()
            stdout_r, stdout_w = os.pipe()
            stderr_r, stderr_w = os.pipe()
            try:
                message = json.dumps(request).encode()
                socket.send_fds(self._sock, [message], [stdin_r, stdout_w, stderr_w])
            finally:
                for fd in (stdin_r, stdout_w, stderr_w):
                    os.close(fd)
            out: dict[int, bytes] = {}

            def feed() -> None:
                # The program may exit without reading all of its input.
                with contextlib.suppress(BrokenPipeError), open(stdin_w, "wb") as pipe:
                    if input:
                        pipe.write(input)

            def drain(fd: int) -> None:
                with open(fd, "rb") as pipe:
                    out[fd] = pipe.read()

            threads = [
                threading.Thread(target=feed, daemon=True),
                threading.Thread(target=drain, args=(stdout_r,), daemon=True),
                threading.Thread(target=drain, args=(stderr_r,), daemon=True),
            ]
            for thread in threads:
                thread.start()
            self._sock.settimeout(timeout)
            pid = self._receive()["pid"]
            try:
                status = self._receive()["status"]
            except TimeoutError:
                os.kill(pid, signal.SIGKILL)
                self._sock.settimeout(None)
                self._receive()
                raise subprocess.TimeoutExpired(str(request), timeout) from None
            for thread in threads:
                thread.join()
            return status, out[stdout_r], out[stderr_r]

    def _receive(self) -> dict[str, Any]:
        data = self._sock.recv(_MAX_MESSAGE)
        if not data:
            raise RuntimeError("the zygote exited")
        message: dict[str, Any] = json.loads(data)
        return message

    def close(self) -> None:
        """Stop the zygote (it exits when its socket closes)."""
        self._sock.close()
        self._proc.wait(timeout=10)


if __name__ == "__main__":
    _serve(socket.socket(fileno=int(sys.argv[1])), sys.argv[2:])
