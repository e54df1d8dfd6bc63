"""One reference server with a probe of its event loop's lag (run by ``redis_blocking``).

Run as a script with the tree under test first on ``PYTHONPATH``, so one benchmark can serve
the code of two checkouts (before and after a change) side by side. It prints
``{"port": N}`` once it listens; on a line ``start`` on its standard input it forgets the
lags seen so far; on ``stop`` it prints ``{"lags_ms": [...]}`` (how late each 2 ms timer on
its loop fired) and exits.

Run: ``PYTHONPATH=TREE python benchmarks/_loop_probe.py STORE REDIS_URL``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

TICK = 0.002


async def serve(store: str, redis_url: str) -> None:
    """Serve until ``stop`` arrives on stdin, probing the loop every :data:`TICK` seconds."""
    from aiohttp import web

    from reference_server import ServerConfig, create_app

    options = {"store": store, "redis_url": redis_url, "workers": 16, "retry_after_min": 0.01}
    config = ServerConfig.model_validate(options)  # store: a name from the command line
    runner = web.AppRunner(create_app(config))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print(json.dumps({"port": runner.addresses[0][1]}), flush=True)
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    stopping = asyncio.Event()

    async def control() -> None:
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if line == "start":
                lags.clear()
            elif line in ("stop", ""):
                stopping.set()
                return

    controller = asyncio.create_task(control())
    while not stopping.is_set():
        started = time.perf_counter()
        await asyncio.sleep(TICK)
        lags.append((time.perf_counter() - started - TICK) * 1000)
    await controller
    print(json.dumps({"lags_ms": [round(lag, 4) for lag in lags]}), flush=True)
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], sys.argv[2]))
