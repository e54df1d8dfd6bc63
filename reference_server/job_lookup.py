"""The job a request names: its id checked against the id grammar, and the job looked up for
the request's user (404 for no such job or another user's, 410 for an expired one)."""

from __future__ import annotations

import re

from aiohttp import web

from .auth import user_of
from .jobs import JobExpired, JobNotFound
from .records import JobRecord
from .server_state import state_of
from .wire import HTTPError

__all__ = ["job_id_of", "lookup"]

_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def job_id_of(request: web.Request) -> str:
    job_id = request.match_info["job_id"]
    if not _JOB_ID.fullmatch(job_id):
        raise HTTPError(404, "not_found", "no such job")
    return job_id


async def lookup(request: web.Request, job_id: str) -> JobRecord:
    state = state_of(request)
    try:
        return await state.manager.lookup(job_id, user_of(request))
    except JobNotFound:
        raise HTTPError(404, "not_found", "no such job") from None
    except JobExpired:
        raise HTTPError(410, "expired", "the job has expired") from None
