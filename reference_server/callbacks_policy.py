"""Where webhook callbacks may go: no loopback, private, link-local or own addresses (SSRF).

A callback URL is attacker-chosen, so by default the server only delivers to globally routable
addresses outside every IANA special-purpose range (the table is
:data:`reference_server.special_purpose.SPECIAL_PURPOSE`). The rule is applied three times:

1. at submission, to the URL's literal host (``127.0.0.1``, ``[::ffff:127.0.0.1]``,
   ``2130706433``, ``127.1``, ``0x7f.1``, ``localhost``, …): ``400 callback_url_refused``;
2. at delivery, to every address a host name resolves to (:class:`PolicyResolver` drops the
   refused ones, so a name that resolves to ``127.0.0.1`` is never connected to);
3. at delivery, to the connected peer itself (:class:`PolicyConnector`): the socket's
   ``getpeername()`` is checked before a byte of the request is written, which also covers
   literal addresses (aiohttp does not resolve those) and any resolver surprise.

``ServerConfig.webhook_allow_private`` (``--webhook-allow-private``) turns the policy off for
tests and local demos whose receivers listen on loopback.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from .special_purpose import special_purpose

__all__ = [
    "CallbackAddressRefused",
    "CallbackPolicy",
    "IPAddress",
    "PolicyConnector",
    "PolicyResolver",
    "default_inner_resolver",
    "literal_address",
    "local_addresses",
]

log = logging.getLogger("reference_server.webhooks")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The legacy IPv4 spellings inet_aton(3) accepts and WHATWG URL parsing honours: 1 to 4
# dot-separated parts, each decimal, octal (leading 0) or hex (0x); "127.1", "2130706433".
_LEGACY_IPV4 = re.compile(r"(?:0[xX][0-9a-fA-F]*|[0-9]+)(?:\.(?:0[xX][0-9a-fA-F]*|[0-9]+)){0,3}")
# RFC 6052 §2.1: the well-known NAT64 prefix embeds an IPv4 address in its last 32 bits.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class CallbackAddressRefused(OSError):
    """A delivery's target address is refused by the callback policy.

    An :class:`OSError`, so that aiohttp treats it as a failed connection attempt (it tries the
    host's next address, then reports the connection as failed).

    Attributes:
        reason: why, in words (``"loopback"``, ``"private"``, …); kept out of API answers.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"callback address refused: {reason}")
        self.reason = reason


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4), if any."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def literal_address(host: str) -> IPAddress | None:
    """Return the address a URL host spells literally, or ``None`` for a host name.

    Accepts IPv6 with or without brackets (and a zone id), dotted IPv4 and the legacy forms
    ``inet_aton`` reads (``2130706433``, ``127.1``, ``0x7f.0.0.1``, ``0177.0.0.1``).

    Raises:
        ValueError: the host looks numeric but is no address (e.g. ``999.1.1.1``).

    Example:
        >>> str(literal_address("2130706433")), literal_address("example.com")
        ('127.0.0.1', None)
    """
    text = host.strip("[]").rstrip(".")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(text):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            raise ValueError("a numeric host that is not an IPv4 address") from None
    if ":" in text:
        raise ValueError("an IPv6 host that does not parse")
    return None


@dataclass(frozen=True)
class CallbackPolicy:
    """Which callback targets the server refuses.

    Args:
        allow_private: deliver anywhere (the policy is off).
        own_addresses: the server's own addresses, refused even when globally routable.

    Example:
        >>> CallbackPolicy().url_refusal("http://[::ffff:127.0.0.1]:8080/hook")
        'loopback'
        >>> CallbackPolicy().url_refusal("https://hooks.example.com/x") is None
        True
    """

    allow_private: bool = False
    own_addresses: frozenset[IPAddress] = field(default_factory=frozenset)

    def address_refusal(self, ip: IPAddress) -> str | None:
        """Why ``ip`` is refused (a short category), or ``None`` when it may be reached."""
        if self.allow_private:
            return None
        # The IPv4 address an IPv6 one stands for is named first: [::ffff:127.0.0.1] is
        # refused as loopback, not as the mapped range it is written in.
        inner = _embedded_ipv4(ip)
        candidates: list[IPAddress] = [ip] if inner is None else [inner, ip]
        if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
            candidates.append(ipaddress.IPv6Address(ip.compressed.split("%")[0]))
        for candidate in candidates:
            reason = self._single_refusal(candidate)
            if reason is not None:
                return reason
        return None

    def _single_refusal(self, ip: IPAddress) -> str | None:
        checks = (
            (ip.is_loopback, "loopback"),
            (ip.is_unspecified, "unspecified"),
            (ip.is_link_local, "link-local"),
            (ip.is_multicast, "multicast"),
            (ip.is_private, "private"),
            (ip.is_reserved, "reserved"),
        )
        reason = next((reason for refused, reason in checks if refused), None)
        if reason is not None:
            return reason
        # Every IANA special-purpose range, not only what this Python's is_global knows.
        special = special_purpose(ip)
        if special is not None:
            return f"special-purpose: {special.name} ({special.rfc})"
        if not ip.is_global:
            return "not globally routable"
        if ip in self.own_addresses:
            return "the server's own address"
        return None

    def url_refusal(self, url: str) -> str | None:
        """Why a callback URL is refused from its text alone, or ``None``.

        Host names other than ``localhost`` pass here; their addresses are checked when the
        delivery resolves them. URLs with credentials (``user:pass@host``) are refused: they
        make the host hard to read for people and parsers alike, and would be listed back.
        """
        if self.allow_private:
            return None
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError:
            return "not a valid URL"
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            return "credentials in the URL"
        if not host:
            return "no host"
        name = host.rstrip(".").lower()
        # RFC 6761 §6.3: "localhost" and names under it are loopback by definition.
        if name == "localhost" or name.endswith(".localhost"):
            return "loopback"
        try:
            ip = literal_address(host)
        except ValueError:
            return "not a valid address"
        return self.address_refusal(ip) if ip is not None else None


def default_inner_resolver() -> AbstractResolver:
    """The resolver under the policy filter: aiohttp's default (tests replace this function)."""
    return aiohttp.DefaultResolver()


class PolicyResolver(AbstractResolver):
    """An aiohttp resolver that keeps only the addresses the policy allows.

    Args:
        policy: the callback policy.
        inner: the resolver that does the lookup (default: aiohttp's ``DefaultResolver``).

    Raises (from :meth:`resolve`):
        CallbackAddressRefused: every address of the host is refused.
    """

    def __init__(self, policy: CallbackPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner if inner is not None else default_inner_resolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve ``host`` and drop every refused address."""
        results = await self._inner.resolve(host, port, family)
        kept: list[ResolveResult] = []
        reasons: list[str] = []
        for result in results:
            try:
                reason = self._policy.address_refusal(ipaddress.ip_address(result["host"]))
            except ValueError:
                reason = "not a valid address"
            if reason is None:
                kept.append(result)
            else:
                reasons.append(reason)
        if not kept:
            raise CallbackAddressRefused(reasons[0] if reasons else "no address")
        return kept

    async def close(self) -> None:
        """Close the inner resolver."""
        await self._inner.close()


class PolicyConnector(aiohttp.TCPConnector):
    """A ``TCPConnector`` that checks the connected peer against the policy before use.

    It extends aiohttp's per-address connection step (``_wrap_create_connection``, which has
    had this shape since aiohttp 3.0): a refused peer closes the transport and counts as a
    failed connection, so aiohttp moves on to the host's next address or fails the request.
    """

    def __init__(self, policy: CallbackPolicy, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._policy = policy

    async def _wrap_create_connection(self, *args: Any, **kwargs: Any) -> Any:
        transport, protocol = await super()._wrap_create_connection(*args, **kwargs)
        peer = transport.get_extra_info("peername")
        reason = "no peer address"
        if isinstance(peer, tuple) and peer:
            try:
                reason = self._policy.address_refusal(ipaddress.ip_address(peer[0])) or ""
            except ValueError:
                reason = "not a valid address"
        if reason:
            transport.close()
            req = kwargs.get("req")
            key = getattr(req, "connection_key", None)
            raise aiohttp.ClientConnectorError(key, CallbackAddressRefused(reason))  # type: ignore[arg-type]
        return transport, protocol


async def local_addresses(config_host: str, *, timeout: float = 1.0) -> frozenset[IPAddress]:
    """The server's own addresses: its listening host and what its host name resolves to.

    Lookups run off the event loop; one that fails or takes longer than ``timeout`` seconds
    is skipped (logged at debug level).
    """
    found: set[IPAddress] = set()
    names: list[str] = [socket.gethostname()]
    try:
        literal = literal_address(config_host)
    except ValueError:
        literal = None
    if literal is not None:
        found.add(literal)
    elif config_host:
        names.append(config_host)
    loop = asyncio.get_running_loop()
    for name in dict.fromkeys(names):
        try:
            infos = await asyncio.wait_for(loop.getaddrinfo(name, None), timeout)
        except (OSError, asyncio.TimeoutError, UnicodeError) as exc:
            log.debug("own addresses: cannot resolve %r: %s", name, exc)
            continue
        found.update(_addresses(info[4][0] for info in infos))
    return frozenset(found)


def _addresses(texts: Iterable[Any]) -> set[IPAddress]:
    out: set[IPAddress] = set()
    for text in texts:
        try:
            out.add(ipaddress.ip_address(str(text).split("%")[0]))
        except ValueError:
            continue
    return out
