"""Fakes of five vendor job APIs, each following the vendor's public API documentation:

- Replicate predictions (``POST /v1/predictions``; ``urls.get`` / ``urls.cancel`` (POST) /
  ``urls.stream`` (SSE ``output`` / ``logs`` / ``error`` / ``done``); ``Prefer: wait``);
- fal.ai queue (``POST /{app}``; ``status_url``, ``response_url``, ``cancel_url`` (PUT); a
  failed request's ``response_url`` answers 422 with ``detail``);
- RunPod serverless (``POST /v2/{endpoint}/run``, ``GET /v2/{endpoint}/status/{id}``,
  ``POST /v2/{endpoint}/cancel/{id}``);
- OpenAI Batch (``POST /v1/batches``, ``GET /v1/batches/{id}``, ``POST .../cancel``, the
  output file at ``GET /v1/files/{output_file_id}/content``);
- AssemblyAI transcripts (``POST /v2/transcript``, ``GET /v2/transcript/{id}``; ``DELETE``
  deletes the transcript: there is no cancel).

A job advances one step per status read (queued, running x2, then done or failed), so tests
need no clock. ``VendorFake.requests`` records every request.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tests.vendors._base import STEPS, Job, VendorFake


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


class Replicate(VendorFake):
    prefix = "rep"
    STATES = {
        "queued": "starting",
        "running": "processing",
        "done": "succeeded",
        "failed": "failed",
        "cancelled": "canceled",
    }

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/predictions", self.create)
        router.add_get("/v1/predictions/{id}", self.get)
        router.add_post("/v1/predictions/{id}/cancel", self.cancel)
        router.add_get("/stream/{id}", self.stream)

    def doc(self, job: Job) -> dict[str, Any]:
        phase = job.phase
        logs = "".join(f"step {n}/{STEPS}\n" for n in range(1, min(job.step, STEPS) + 1))
        base = self.url(f"/v1/predictions/{job.id}")
        return {
            "id": job.id,
            "model": "owner/model",
            "version": "v1",
            "input": job.input,
            "logs": logs,
            "output": ["Hello", ", world"] if phase == "done" else None,
            "error": "CUDA out of memory" if phase == "failed" else None,
            "status": self.STATES[phase],
            "created_at": "2026-12-06T12:00:00Z",
            "urls": {
                "get": base,
                "cancel": base + "/cancel",
                "stream": self.url(f"/stream/{job.id}"),
            },
        }

    async def create(self, request: web.Request) -> web.Response:
        job = self.new_job(await request.json())
        if "wait" in request.headers.get("Prefer", ""):
            job.finish()  # held until the end (the fake's jobs are instant when held)
        return _json(self.doc(job), 201)

    async def get(self, request: web.Request) -> web.Response:
        job = self.job(request)
        job.advance()
        return _json(self.doc(job))

    async def cancel(self, request: web.Request) -> web.Response:
        job = self.job(request)
        if not job.finished:
            job.cancelled = True
        return _json(self.doc(job))

    async def stream(self, request: web.Request) -> web.StreamResponse:
        job = self.job(request)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        async def send(event: str, data: str) -> None:
            await response.write(f"event: {event}\ndata: {data}\n\n".encode())

        job.finish()  # the stream carries the job to its end
        await send("logs", f"step 1/{STEPS}")
        if job.fails:
            await send("error", json.dumps({"detail": "CUDA out of memory"}))
            await send("done", json.dumps({"reason": "error"}))
        else:
            await send("output", "Hello")
            await send("output", ", world")
            await send("done", "{}")
        return response


class Fal(VendorFake):
    prefix = "fal-"
    STATES = {"queued": "IN_QUEUE", "running": "IN_PROGRESS", "done": "COMPLETED"}

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/fal-ai/{app}", self.submit)
        router.add_get("/fal-ai/{app}/requests/{id}/status", self.status)
        router.add_get("/fal-ai/{app}/requests/{id}/status/stream", self.stream)
        router.add_get("/fal-ai/{app}/requests/{id}", self.response)
        router.add_put("/fal-ai/{app}/requests/{id}/cancel", self.cancel)
        router.add_get("/.well-known/jwks.json", self.jwks)  # rest.fal.ai's, on the same fake

    async def jwks(self, request: web.Request) -> web.Response:
        """fal's published webhook keys: one Ed25519 key (RFC 8037 JWK), made per fake."""
        import base64

        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        public = (
            Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        )
        x = base64.urlsafe_b64encode(public).rstrip(b"=").decode()
        return _json({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "fal-1", "x": x}]})

    def urls(self, request: web.Request, job: Job) -> dict[str, str]:
        base = self.url(f"/fal-ai/{request.match_info['app']}/requests/{job.id}")
        return {
            "response_url": base,
            "status_url": base + "/status",
            "cancel_url": base + "/cancel",
        }

    async def submit(self, request: web.Request) -> web.Response:
        job = self.new_job(await request.json())
        return _json(
            {"status": "IN_QUEUE", "request_id": job.id, "queue_position": 0}
            | self.urls(request, job)
        )

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """Status documents as server-sent events, one per change, until COMPLETED."""
        job = self.job(request)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        while True:
            job.advance()
            doc = self.status_doc(request, job)
            await response.write(f"data: {json.dumps(doc)}\n\n".encode())
            if job.finished:
                return response

    async def status(self, request: web.Request) -> web.Response:
        job = self.job(request)
        job.advance()
        return _json(self.status_doc(request, job))

    def status_doc(self, request: web.Request, job: Job) -> dict[str, Any]:
        # fal reports a failed request as COMPLETED: its response_url answers the error.
        word = "CANCELED" if job.cancelled else self.STATES.get(job.phase, "COMPLETED")
        doc: dict[str, Any] = {
            "status": word,
            "response_url": self.urls(request, job)["response_url"],
        }
        if job.phase == "queued":
            doc["queue_position"] = 0
        else:
            doc["logs"] = [
                {
                    "message": f"step {n}/{STEPS}",
                    "level": "INFO",
                    "timestamp": "2026-12-06T12:00:00Z",
                }
                for n in range(1, min(job.step, STEPS) + 1)
            ]
        return doc

    async def response(self, request: web.Request) -> web.Response:
        job = self.job(request)
        if not job.finished:
            return _json({"detail": "Request is still in progress"}, 400)
        if job.phase == "failed":
            detail = [
                {"loc": ["body", "prompt"], "msg": "prompt is too long", "type": "value_error"}
            ]
            return _json({"detail": detail}, 422)
        return _json({"images": [{"url": "https://fal.media/files/cat.png"}], "seed": 42})

    async def cancel(self, request: web.Request) -> web.Response:
        job = self.job(request)
        if job.finished:
            return _json({"status": "ALREADY_COMPLETED"}, 400)
        job.cancelled = True
        return _json({"status": "CANCELLATION_REQUESTED"}, 202)


class RunPod(VendorFake):
    prefix = "rp-"
    STATES = {
        "queued": "IN_QUEUE",
        "running": "IN_PROGRESS",
        "done": "COMPLETED",
        "failed": "FAILED",
        "cancelled": "CANCELLED",
    }

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v2/{endpoint}/run", self.run)
        router.add_get("/v2/{endpoint}/status/{id}", self.status)
        router.add_post("/v2/{endpoint}/cancel/{id}", self.cancel)

    def doc(self, job: Job) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": job.id, "status": self.STATES[job.phase]}
        if job.phase == "done":
            doc |= {"delayTime": 12, "executionTime": 34, "output": {"answer": 42}}
        if job.phase == "failed":
            doc |= {"error": "handler raised ValueError: bad prompt"}
        return doc

    async def run(self, request: web.Request) -> web.Response:
        job = self.new_job(await request.json())
        return _json({"id": job.id, "status": "IN_QUEUE"})

    async def status(self, request: web.Request) -> web.Response:
        job = self.job(request)
        job.advance()
        return _json(self.doc(job))

    async def cancel(self, request: web.Request) -> web.Response:
        job = self.job(request)
        if not job.finished:
            job.cancelled = True
        return _json(self.doc(job))


class OpenAIBatch(VendorFake):
    prefix = "batch_"

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/batches", self.create)
        router.add_get("/v1/batches/{id}", self.retrieve)
        router.add_post("/v1/batches/{id}/cancel", self.cancel)
        router.add_get("/v1/files/{file}/content", self.content)

    def doc(self, job: Job) -> dict[str, Any]:
        words = {"queued": "validating", "running": "in_progress", "done": "completed"}
        status = words.get(job.phase, job.phase)
        if job.phase == "running" and job.step == STEPS:
            status = "finalizing"
        if job.cancelled:
            status = "cancelled" if job.extra.get("seen_cancelling") else "cancelling"
        errors = None
        if job.phase == "failed":
            line = {"code": "invalid_json_line", "message": "Line 1 is not valid JSON"}
            errors = {"object": "list", "data": [{**line, "param": None, "line": 1}]}
        done = min(job.step, STEPS)
        return {
            "id": job.id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "input_file_id": job.input.get("input_file_id"),
            "completion_window": "24h",
            "status": status,
            "errors": errors,
            "output_file_id": f"file-out-{job.id}" if job.phase == "done" else None,
            "error_file_id": None,
            "request_counts": {"total": STEPS, "completed": done, "failed": 0},
        }

    async def create(self, request: web.Request) -> web.Response:
        return _json(self.doc(self.new_job(await request.json())))

    async def retrieve(self, request: web.Request) -> web.Response:
        job = self.job(request)
        if job.cancelled:
            doc = self.doc(job)
            job.extra["seen_cancelling"] = True
            return _json(doc)
        job.advance()
        return _json(self.doc(job))

    async def cancel(self, request: web.Request) -> web.Response:
        job = self.job(request)
        if not job.finished:
            job.cancelled = True
        return _json(self.doc(job))

    async def content(self, request: web.Request) -> web.Response:
        lines = [{"custom_id": f"req-{n}", "response": {"status_code": 200}} for n in (1, 2)]
        text = "".join(json.dumps(line) + "\n" for line in lines)
        return web.Response(body=text.encode(), content_type="application/octet-stream")


class AssemblyAI(VendorFake):
    prefix = "tr-"

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v2/transcript", self.create)
        router.add_get("/v2/transcript/{id}", self.get)
        router.add_delete("/v2/transcript/{id}", self.delete)

    def doc(self, job: Job) -> dict[str, Any]:
        words = {
            "queued": "queued",
            "running": "processing",
            "done": "completed",
            "failed": "error",
        }
        doc: dict[str, Any] = {
            "id": job.id,
            "status": words[job.phase],
            "audio_url": job.input.get("audio_url"),
            "text": None,
        }
        if job.phase == "done":
            doc |= {"text": "Hello world.", "confidence": 0.98, "words": [{"text": "Hello"}]}
        if job.phase == "failed":
            doc["error"] = "Download error, unable to download https://example.test/a.mp3"
        return doc

    async def create(self, request: web.Request) -> web.Response:
        return _json(self.doc(self.new_job(await request.json())))

    async def get(self, request: web.Request) -> web.Response:
        job = self.job(request)
        job.advance()
        return _json(self.doc(job))

    async def delete(self, request: web.Request) -> web.Response:
        job = self.job(request)
        del self.jobs[job.id]  # AssemblyAI's DELETE removes the transcript: not a cancel
        return _json(self.doc(job))


FAKES: dict[str, type[VendorFake]] = {
    "replicate": Replicate,
    "fal": Fal,
    "runpod": RunPod,
    "openai-batch": OpenAIBatch,
    "assemblyai": AssemblyAI,
}


class GitHubStats(VendorFake):
    """GitHub's repository statistics: ``202 Accepted`` (no Location) while they are being
    computed, then ``200`` with the statistics at the same URL."""

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/repos/{owner}/{repo}/stats/contributors", self.contributors)

    async def contributors(self, request: web.Request) -> web.Response:
        job = self.jobs.setdefault(request.path, Job(request.path, {}))
        job.advance()
        if not job.finished:
            return _json({}, 202)
        return _json([{"author": {"login": "octocat"}, "total": 135, "weeks": []}])


class Unfollowable(VendorFake):
    """Answers ``POST /submit`` with the status code and body the request names: a vendor's
    running-job answer stripped of every URL (the silent-wrong-result case of issue 17)."""

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/submit", self.submit)

    async def submit(self, request: web.Request) -> web.Response:
        wanted = await request.json()
        return _json(wanted["body"], wanted["code"])
