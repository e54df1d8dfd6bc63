"""The callback policy refuses every IANA special-purpose range (issue 19 item 6).

``ipaddress.is_global`` let ``192.0.0.8`` (RFC 7600) through, and differs across Python
versions; the policy now refuses each block of the IPv4 and IPv6 special-purpose registries
(``reference_server.special_purpose``), checked here at its first, middle and last address,
in every spelling the policy reads, while the public neighbours of the blocks still pass.
"""

from __future__ import annotations

import ipaddress

import pytest

from reference_server.callbacks_policy import CallbackPolicy
from reference_server.special_purpose import SPECIAL_PURPOSE, SpecialRange, special_purpose

from .conftest import ServerFactory, error_code

pytestmark = pytest.mark.anyio


def _url(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    return f"https://{host}:8443/hook"


def _samples(
    net: ipaddress.IPv4Network | ipaddress.IPv6Network,
) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    first, last = int(net.network_address), int(net.broadcast_address)
    return [ipaddress.ip_address(n) for n in {first, (first + last) // 2, last}]


@pytest.mark.parametrize("entry", SPECIAL_PURPOSE, ids=[str(e.network) for e in SPECIAL_PURPOSE])
def test_every_special_purpose_block_is_refused(entry: SpecialRange) -> None:
    net = entry.network
    policy = CallbackPolicy()
    for ip in _samples(net):
        assert policy.address_refusal(ip) is not None, ip
        assert policy.url_refusal(_url(ip)) is not None, ip
        assert special_purpose(ip) is not None
    assert CallbackPolicy(allow_private=True).address_refusal(net.network_address) is None


@pytest.mark.parametrize(
    ("address", "rfc"),
    [
        ("192.0.0.8", "RFC 7600"),
        ("192.0.0.1", "RFC 7335"),
        ("192.0.0.200", "RFC 6890 §2.1"),
        ("198.18.0.1", "RFC 2544"),
        ("198.19.255.254", "RFC 2544"),
        ("100.64.0.1", "RFC 6598"),
        ("100.127.255.255", "RFC 6598"),
        ("192.31.196.1", "RFC 7535"),
        ("192.52.193.1", "RFC 7450"),
        ("192.88.99.1", "RFC 7526"),
        ("192.175.48.1", "RFC 7534"),
        ("64:ff9b:1::1", "RFC 8215"),
        ("64:ff9b::808:808", "RFC 6052"),
        ("2001::1", "RFC 4380, RFC 8190"),
        ("2001:1ff::1", "RFC 2928"),
        ("2001:2::1", "RFC 5180, RFC Errata 1752"),
        ("2001:20::1", "RFC 7343"),
        ("2001:30::1", "RFC 9374"),
        ("2001:db8::1", "RFC 3849"),
        ("2002:808:808::1", "RFC 3056"),
        ("2620:4f:8000::1", "RFC 7534"),
        ("3fff::1", "RFC 9637"),
        ("5f00::1", "RFC 9602"),
        ("100::1", "RFC 6666"),
    ],
)
def test_each_named_block_is_refused_and_found_in_the_table(address: str, rfc: str) -> None:
    ip = ipaddress.ip_address(address)
    assert CallbackPolicy().address_refusal(ip) is not None
    entry = special_purpose(ip)
    assert entry is not None and entry.rfc == rfc


def test_a_block_python_calls_global_is_refused_by_name() -> None:
    # 192.0.0.9 (PCP anycast) is globally reachable in the registry, so is_global is true:
    # only the table refuses it, and the reason says which entry did.
    ip = ipaddress.ip_address("192.0.0.9")
    assert ip.is_global
    assert CallbackPolicy().address_refusal(ip) == (
        "special-purpose: Port Control Protocol Anycast (RFC 7723)"
    )


@pytest.mark.parametrize(
    "address",
    [
        "192.0.1.1",
        "198.17.255.255",
        "198.20.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "192.31.197.1",
        "8.8.8.8",
        "2001:200::1",
        "2606:4700::1",
        "2a00:1450:4001::1",
        "3001::1",
    ],
)
def test_public_neighbours_pass(address: str) -> None:
    assert CallbackPolicy().address_refusal(ipaddress.ip_address(address)) is None
    assert CallbackPolicy().url_refusal(_url(ipaddress.ip_address(address))) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://192.0.0.8/hook",
        "http://3221225480/hook",  # 192.0.0.8 as one number
        "http://0xc0.0.0.8/hook",
        "http://[::ffff:192.0.0.8]/hook",
        "http://198.18.7.7/hook",
        "http://[64:ff9b:1::c000:8]/hook",
    ],
)
async def test_submission_refuses_a_special_purpose_callback(
    make_server: ServerFactory, url: str
) -> None:
    srv = await make_server(webhook_allow_private=False)
    response = await srv.submit("echo", {}, extra={"callback": {"url": url}})
    assert response.status_code == 400, response.text
    assert error_code(response) == "callback_url_refused"
    assert (await srv.get("/jobs")).json()["jobs"] == []
