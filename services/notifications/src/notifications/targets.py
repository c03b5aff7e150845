"""Where a webhook may be delivered (server-side request forgery).

A target is ``https`` (plain ``http`` only where the operator allows it: local mode, tests) and
every address its name resolves to is global, or inside a network the operator allowed. The name
is resolved again at every delivery, because a name checked at creation may point elsewhere later
(DNS rebinding), and the connection goes to the address just checked (pinned): the name travels
only in the Host header and in TLS (SNI and the certificate check).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]


class RefusedTarget(Exception):
    """The URL's scheme or one of its addresses is not allowed; the message says which rule."""


class Unresolved(Exception):
    """The name does not resolve (now): not a refusal, the endpoint is simply unreachable."""


@dataclass(frozen=True)
class Target:
    url: str  # the URL with the checked address in place of the name
    host: str  # the name, for the Host header
    sni: str | None  # the name for TLS (None for a literal address)


def networks(text: str) -> tuple[Network, ...]:
    """The operator's allow-list: comma-separated CIDRs (ValueError names a bad one)."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip())


def refused(address: Address, allowed: tuple[Network, ...] = ()) -> bool:
    """Anything but a global unicast address, unless the operator allowed its network."""
    if any(address in network for network in allowed if network.version == address.version):
        return False
    if address.version == 6 and (address.ipv4_mapped or address.sixtofour or address.teredo):
        return True  # an IPv4 address in IPv6 clothing: judged by nobody, refused
    return (not address.is_global or address.is_private or address.is_loopback or address.is_link_local
            or address.is_multicast or address.is_reserved or address.is_unspecified)


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def check_scheme(url: httpx.URL, allow_http: bool) -> None:
    if url.scheme != "https" and not (allow_http and url.scheme == "http"):
        raise RefusedTarget("webhook URLs must use https")


async def checked(url: str, settings, resolver: Resolver = system_resolver) -> Target:
    """The target to connect to under the operator's settings (``WEBHOOK_ALLOW_HTTP``,
    ``WEBHOOK_ALLOWED_NETWORKS``), pinned to an address that passed the check; RefusedTarget or
    Unresolved otherwise. Every address of the name must pass, not only the first."""
    parsed = httpx.URL(url)
    check_scheme(parsed, settings.webhook_allow_http)
    host = parsed.host
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    addresses = await _addresses(host, port, resolver, settings.webhook_resolve_timeout_seconds)
    allowed = networks(settings.webhook_allowed_networks)
    if any(refused(a, allowed) for a in addresses):
        raise RefusedTarget("webhook URLs must point at public addresses (this one is loopback, private, "
                            "link-local or otherwise not global)")
    literal = _literal(host) is not None
    return Target(str(parsed.copy_with(host=str(addresses[0]))), parsed.netloc.decode("ascii"),
                  None if literal else host)


async def _addresses(host: str, port: int, resolver: Resolver, timeout: float) -> list[Address]:
    literal = _literal(host)
    if literal is not None:
        return [literal]
    try:
        found = await asyncio.wait_for(resolver(host, port), timeout)
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]
    except (OSError, TimeoutError, ValueError) as exc:
        raise Unresolved(host) from exc
    if not addresses:
        raise Unresolved(host)
    return addresses


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
