"""The client and the reference server's browser event-stream tokens (issue 12).

With bearer users configured, ``eventsUrl`` carries a short-lived ``access_token``. The client
follows it with its own ``Authorization`` (which wins), and a resume token never carries the
``access_token`` along (resume tokens hold no credentials).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from asyncreply_client._token import TokenData, dump_token, load_token
from tests.client.harness import BOTH, open_client

pytestmark = pytest.mark.anyio

USERS = {"reference_server": [{"workers": 2, "tokens": {"t-alice": "alice"}}]}


def test_a_resume_token_drops_access_tokens_from_its_urls() -> None:
    token = dump_token(
        TokenData(
            "https://api.example/jobs/1?access_token=s3cret",
            events_url="https://api.example/jobs/1/events?lastEventId=2&access%5Ftoken=s3cret",
            result_url="https://api.example/jobs/1/result?x=1",
        )
    )
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    assert "s3cret" not in raw
    data = load_token(token)
    assert data.status_url == "https://api.example/jobs/1"
    assert data.events_url == "https://api.example/jobs/1/events?lastEventId=2"
    assert data.result_url == "https://api.example/jobs/1/result?x=1"


@BOTH
@pytest.mark.parametrize("reference_server", USERS["reference_server"], indirect=True)
@pytest.mark.parametrize("mode", ["sse", "auto"])
async def test_the_client_streams_and_resumes_without_leaking_the_token(
    flavor: str, mode: str, reference_server: Any
) -> None:
    async with open_client(
        flavor, reference_server.base_url, headers={"Authorization": "Bearer t-alice"}
    ) as (client, call):
        op = await call(client.submit, "/jobs", json={"type": "sleep", "input": {"seconds": 0.05}})
        # The submission's eventsUrl carries the browser token; the client streams from it
        # with its own Authorization.
        assert "access_token=" in (op.events_url or "")
        status = await call(op.wait, mode=mode, timeout=20)
        assert status.state.value == "completed"
        token = op.to_token()
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    assert "access_token" not in raw
    assert json.loads(raw)["status_url"].endswith(f"/jobs/{op.id}")
    async with open_client(
        flavor, reference_server.base_url, headers={"Authorization": "Bearer t-alice"}
    ) as (client, call):
        again = client.resume(token)
        assert await call(again.result, timeout=20) == {"slept": 0.05}
