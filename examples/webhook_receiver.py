"""Receive the reference server's signed webhooks with a verifying aiohttp handler.

Run::

    python examples/webhook_receiver.py

It starts a receiver (``aiohttp_webhook_handler`` + ``WebhookVerifier``) and a reference
server sharing a secret, submits a job with ``callback=<receiver URL>``, and prints the
verified ``job.completed`` event. A forged delivery is refused with 401.
"""

from __future__ import annotations

import asyncio
import sys
import time

import httpx
from aiohttp import web

from asyncreply_client import AsyncClient
from asyncreply_client.webhooks import (
    WebhookEvent,
    WebhookVerifier,
    aiohttp_webhook_handler,
    sign,
)

# A Standard Webhooks secret ("whsec_" + base64). Keep real ones out of source code.
SECRET = "whsec_ZXhhbXBsZS13ZWJob29rLXNlY3JldC0xMjM0NTY="


async def main() -> int:
    from reference_server import ServerConfig, serve

    received: asyncio.Queue[WebhookEvent] = asyncio.Queue()

    async def on_completed(event: WebhookEvent) -> None:
        await received.put(event)

    app = web.Application()
    verifier = WebhookVerifier(SECRET)
    app.router.add_post(
        "/hooks", aiohttp_webhook_handler(verifier, {"job.completed": on_completed})
    )
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    hook_url = f"http://{host}:{port}/hooks"
    try:
        # The receiver listens on loopback, which the server refuses unless told otherwise.
        config = ServerConfig(workers=2, webhook_secret=SECRET, webhook_allow_private=True)
        async with serve(config) as srv, AsyncClient(srv.base_url) as client:
            op = await client.submit(
                "/jobs",
                json={"type": "echo", "input": {"order": 1234}},
                callback={"url": hook_url, "events": ["completed"]},
            )
            print(f"submitted job {op.id} with callback {hook_url}")
            event = await asyncio.wait_for(received.get(), timeout=30)
            print(f"verified {event.type} for job {event.job_id} ({event.scheme} signature)")
            print(
                f"status in the event: {event.status}; result URL: "
                f"{(event.data or {}).get('resultUrl')}"
            )

            # A delivery signed with the wrong secret is refused.
            body = b'{"type": "job.completed", "jobId": "forged"}'
            headers = sign(body, "not-the-secret", msg_id="msg_forged", timestamp=int(time.time()))
            async with httpx.AsyncClient() as http:
                forged = await http.post(hook_url, content=body, headers=headers)
            print(f"forged delivery answered {forged.status_code}")
    finally:
        await runner.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
