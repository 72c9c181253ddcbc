"""The client's real address behind reverse proxies, trusted by configuration only.

``X-Forwarded-For`` and ``Forwarded`` are written by whoever sends the
request, so they are believed only when the connection comes from a proxy the
operator listed (``trusted_proxies``), and then read from the right: the
first address that is not itself a trusted proxy is the client.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

__all__ = ["TrustedProxies"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_FORWARDED_FOR = re.compile(r'for="?\[?([^\]";,]+)\]?(?::\d+)?"?', re.IGNORECASE)


class TrustedProxies:
    """The addresses whose forwarding headers are believed (sans-I/O; thread-safe: immutable)."""

    def __init__(self, proxies: Iterable[str]) -> None:
        if isinstance(proxies, str):
            proxies = [proxies]
        networks: list[Network] = []
        for proxy in proxies:
            try:
                networks.append(ipaddress.ip_network(proxy, strict=False))
            except ValueError:
                raise ValueError(
                    f"trusted_proxies: {proxy!r} is not an IP address or network (such as 10.0.0.0/8)"
                ) from None
        self.networks = tuple(networks)

    def trusts(self, address: str) -> bool:
        """Whether ``address`` is one of the trusted proxies. Thread-safe; never blocks."""
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def client_address(self, peer: str, forwarded: str | None, x_forwarded_for: str | None) -> str | None:
        """The client behind ``peer``, or ``None`` when ``peer`` is not trusted or names no one.

        ``Forwarded`` (RFC 7239) wins over ``X-Forwarded-For`` when both are there.

        Thread-safe; never blocks.
        """
        if not self.trusts(peer):
            return None
        if forwarded:
            hops = [match.group(1) for match in _FORWARDED_FOR.finditer(forwarded)]
        elif x_forwarded_for:
            hops = [hop.strip() for hop in x_forwarded_for.split(",")]
        else:
            return None
        for hop in reversed(hops):
            if not hop:
                continue
            if not self.trusts(hop):
                return hop if _is_address(hop) else None
        return None


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
