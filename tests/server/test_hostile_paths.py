"""Encoded paths: the events ``access_token`` is judged on the path the router matched.

Issue 19 item 7: ``/jobs/<id>%2Fevents?access_token=…`` was authorised on the decoded path
(``/jobs/<id>/events``, where the token is valid) but routed on the raw one (the status of a
job named ``<id>/events``): the answer was 404 instead of 401. Requests go over a raw socket so
that no client normalises the percent-encoding.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import anyio
import pytest

from .conftest import Server, ServerFactory
from .test_hostile_clients import connect, raw_connections

pytestmark = pytest.mark.anyio


async def _raw_get(srv: Server, target: str) -> int:
    async with raw_connections(srv) as conns:
        reader, _ = await connect(
            srv, conns, f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        )
        with anyio.fail_after(10):
            head = await reader.readuntil(b"\r\n")
    return int(head.split()[1])


async def _token_job(make_server: ServerFactory) -> tuple[Server, str, str]:
    srv = await make_server(tokens={"t-alice": "alice"})
    srv.default_user = "t-alice"
    accepted = (await srv.submit("echo", {})).json()
    job_id = accepted["jobId"]
    (token,) = parse_qs(urlsplit(accepted["eventsUrl"]).query)["access_token"]
    await srv.wait_terminal(job_id)
    return srv, job_id, token


@pytest.mark.parametrize("slash", ["%2F", "%2f"])
async def test_an_encoded_slash_is_not_the_events_path(
    make_server: ServerFactory, slash: str
) -> None:
    srv, job_id, token = await _token_job(make_server)
    assert await _raw_get(srv, f"/jobs/{job_id}/events?access_token={token}") == 200
    # Routed as the status of a job named "<id>/events": not the token's route, so 401.
    assert await _raw_get(srv, f"/jobs/{job_id}{slash}events?access_token={token}") == 401


async def test_encoded_characters_of_the_events_path_are_the_events_path(
    make_server: ServerFactory,
) -> None:
    srv, job_id, token = await _token_job(make_server)
    first = f"%{ord(job_id[0]):02X}"
    # The router decodes "%6A" to "j" in a path segment: same route, same job, so the
    # token holds, exactly as for the plain spelling.
    encoded_id = first + job_id[1:]
    assert await _raw_get(srv, f"/jobs/{encoded_id}/events?access_token={token}") == 200
    assert await _raw_get(srv, f"/jobs/{job_id}/%65vents?access_token={token}") == 200
    # Anything the router does not match as the events route gets no help from the token.
    for target in (f"/jobs/{job_id}/events/", f"/jobs/{job_id}/events%2F", f"/jobs/{job_id}"):
        assert await _raw_get(srv, f"{target}?access_token={token}") == 401, target
