"""SSRF: callbacks never reach loopback, private, link-local or the server's own addresses
unless ``webhook_allow_private`` is set (issue 12).

The rule is checked on the URL's literal host at submission (400 ``callback_url_refused``), on
every resolved address at delivery, and on the connected peer; a refusal at delivery is a
failed delivery whose ``lastError`` reveals nothing about the network.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Mapping, Sequence

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from reference_server import callbacks_policy
from reference_server.callbacks_policy import (
    CallbackAddressRefused,
    CallbackPolicy,
    PolicyConnector,
    PolicyResolver,
    literal_address,
)

from .conftest import Receiver, ServerFactory, error_code, poll_until

pytestmark = pytest.mark.anyio

# Every spelling of "this machine" or "the internal network" we know of.
REFUSED_URLS = [
    "http://127.0.0.1:9/hook",
    "http://localhost:9/hook",
    "http://LOCALHOST./hook",
    "http://api.localhost/hook",
    "http://[::ffff:127.0.0.1]:9/hook",
    "http://2130706433:9/hook",
    "http://127.1:9/hook",
    "http://0x7f.1/hook",
    "http://0177.0.0.1/hook",
    "http://user:pass@127.0.0.1:9/hook",
    "http://user:pass@hooks.example.com/hook",
    "http://hooks.example.com@127.0.0.1/hook",
    "http://[::1]:9/hook",
    "http://0.0.0.0:9/hook",
    "http://[::]/hook",
    "http://10.1.2.3/hook",
    "http://172.16.0.1/hook",
    "http://192.168.1.10/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/hook",
    "http://[fd00::1]/hook",
    "http://224.0.0.1/hook",
    "http://100.64.0.1/hook",
    "http://240.0.0.1/hook",
    "http://[64:ff9b::7f00:1]/hook",
    "http://[2002:7f00:1::]/hook",
]


class MapResolver(AbstractResolver):
    """A resolver answering from a table (no DNS in tests)."""

    def __init__(self, table: Mapping[str, Sequence[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self.table:
            raise OSError(f"unknown host {host}")
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self.table[host]
        ]

    async def close(self) -> None:
        pass


# ------------------------------------------------------------------------------ the rule


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_the_policy_refuses_every_spelling(url: str) -> None:
    assert CallbackPolicy().url_refusal(url) is not None
    assert CallbackPolicy(allow_private=True).url_refusal(url) is None


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/x", "http://93.184.216.34/x", "http://[2606:4700::1]/x"]
)
def test_public_targets_pass(url: str) -> None:
    assert CallbackPolicy().url_refusal(url) is None


def test_the_servers_own_public_address_is_refused() -> None:
    own = ipaddress.ip_address("93.184.216.34")
    policy = CallbackPolicy(own_addresses=frozenset({own}))
    assert policy.url_refusal("http://93.184.216.34/x") == "the server's own address"


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("example.com", None),
    ],
)
def test_literal_addresses_in_every_form(host: str, address: str | None) -> None:
    found = literal_address(host)
    assert (str(found) if found is not None else None) == address


async def test_the_resolver_keeps_only_allowed_addresses() -> None:
    inner = MapResolver({"mixed.test": ["127.0.0.1", "93.184.216.34"], "inside.test": ["10.0.0.1"]})
    resolver = PolicyResolver(CallbackPolicy(), inner)
    kept = await resolver.resolve("mixed.test", 80)
    assert [r["host"] for r in kept] == ["93.184.216.34"]
    with pytest.raises(CallbackAddressRefused):
        await resolver.resolve("inside.test", 80)


@pytest.fixture
async def loopback_hook() -> AsyncIterator[tuple[int, list[str]]]:
    hits: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield runner.addresses[0][1], hits
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("host", ["peer.test", "127.0.0.1"])
async def test_the_connector_checks_the_connected_peer(
    loopback_hook: tuple[int, list[str]], host: str
) -> None:
    # The resolver under test lies (no filter), and aiohttp never resolves a literal address:
    # the peer check alone must stop the request before it is written.
    port, hits = loopback_hook
    policy = CallbackPolicy()
    connector = PolicyConnector(policy, resolver=MapResolver({"peer.test": ["127.0.0.1"]}))
    async with aiohttp.ClientSession(connector=connector) as session:
        with pytest.raises(aiohttp.ClientConnectorError) as caught:
            await session.post(f"http://{host}:{port}/hook", data=b"{}")
    assert isinstance(caught.value.os_error, CallbackAddressRefused)
    assert hits == []
    allowed = PolicyConnector(CallbackPolicy(allow_private=True))
    async with (
        aiohttp.ClientSession(connector=allowed) as session,
        session.post(f"http://127.0.0.1:{port}/hook", data=b"{}") as answer,
    ):
        assert answer.status == 200
    assert hits == ["/hook"]


# ------------------------------------------------------------------------------ the server


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_submit_refuses_internal_callbacks_by_default(make_server: ServerFactory) -> None:
    srv = await make_server(webhook_allow_private=False)
    for url in REFUSED_URLS:
        answer = await srv.submit("echo", {}, extra={"callback": {"url": url}})
        assert answer.status_code == 400, url
        assert error_code(answer) == "callback_url_refused", url
        assert "--webhook-allow-private" in answer.json()["error"]["message"]
    listed = (await srv.get("/jobs")).json()
    assert listed["jobs"] == [], "a refused submission creates no job"
    allowed = await srv.submit(
        "echo", {}, extra={"callback": {"url": "https://hooks.example.com/x"}}
    )
    assert allowed.status_code == 202


async def test_allow_private_accepts_loopback(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    srv = await make_server(webhook_allow_private=True)
    await srv.submit_ok("echo", {}, extra={"callback": {"url": receiver.url}})
    received = await receiver.wait_for(lambda got: len(got) >= 1)
    assert received[0].status == 200


@pytest.mark.parametrize("store", ["memory", "sqlite"])
@pytest.mark.parametrize("mode", ["async", "thread"])
async def test_a_name_resolving_inside_is_refused_at_delivery(
    make_server: ServerFactory, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = receiver.url.rsplit(":", 1)[1].split("/")[0]
    table = {"hooks.test": ["127.0.0.1"], "twice.test": ["10.0.0.7", "::1"]}
    monkeypatch.setattr(callbacks_policy, "default_inner_resolver", lambda: MapResolver(table))
    srv = await make_server(webhook_allow_private=False, webhook_max_attempts=3)
    first = await srv.submit_ok(
        "echo", {}, extra={"callback": {"url": f"http://hooks.test:{port}/hook"}}
    )
    second = await srv.submit_ok(
        "echo", {}, extra={"callback": {"url": f"http://twice.test:{port}/hook"}}
    )
    await poll_until(lambda: len(srv.admin.deliveries(status="failed")) == 2)
    assert receiver.received == []
    listed = (await srv.get("/webhooks/deliveries")).json()["deliveries"]
    assert {d["jobId"] for d in listed} == {first, second}
    for item in listed:
        # Refused at once (no retry), and nothing about addresses, ports or errnos.
        assert item["attempts"] == 1
        assert item["lastError"] == "refused by the callback policy"
        assert item["responseStatus"] is None
        text = str(item)
        assert "127.0.0.1" not in text and "10.0.0.7" not in text and "::1" not in text


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_connection_errors_are_not_echoed(make_server: ServerFactory) -> None:
    with socket.socket() as sock:  # a loopback port with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    srv = await make_server(webhook_allow_private=True, webhook_max_attempts=2)
    await srv.submit_ok("echo", {}, extra={"callback": {"url": f"http://127.0.0.1:{port}/hook"}})
    await poll_until(lambda: len(srv.admin.deliveries(status="failed")) == 1)
    (item,) = (await srv.get("/webhooks/deliveries")).json()["deliveries"]
    assert item["attempts"] == 2
    assert item["lastError"] == "connection failed"
    assert item["responseStatus"] is None
