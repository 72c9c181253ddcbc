"""The client's real address behind reverse proxies, trusted by configuration only.

``X-Forwarded-For`` and ``Forwarded`` are written by whoever sends the
request, so the one the operator names (``proxy_header``) is believed only
when the connection comes from a proxy the operator listed
(``trusted_proxies``), and then read from the right: the first address that
is not itself a trusted proxy is the client. The other header is never read.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

__all__ = ["TrustedProxies"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_HEADERS = {"x-forwarded-for": "HTTP_X_FORWARDED_FOR", "forwarded": "HTTP_FORWARDED"}
_FORWARDED_FOR = re.compile(r'for="?\[?([^\]";,]+)\]?(?::\d+)?"?', re.IGNORECASE)


class TrustedProxies:
    """The addresses whose forwarding header is believed, and which header (sans-I/O; thread-safe: immutable).

    One header only, the one the operator's proxy writes (``X-Forwarded-For``
    by default, as werkzeug's ``ProxyFix`` reads): a proxy passes the other one
    through from the client untouched (nginx does), so believing it too would
    let any client choose its address.
    """

    def __init__(self, proxies: Iterable[str], header: str = "X-Forwarded-For") -> None:
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
        if not isinstance(header, str) or header.lower() not in _HEADERS:
            raise ValueError(f"proxy_header must be 'X-Forwarded-For' or 'Forwarded' (RFC 7239), not {header!r}")
        #: The header believed, and its WSGI environ key.
        self.header = header
        self.environ_key = _HEADERS[header.lower()]

    def trusts(self, address: str) -> bool:
        """Whether ``address`` is one of the trusted proxies. Thread-safe; never blocks."""
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def client_address(self, peer: str, value: str | None) -> str | None:
        """The client behind ``peer`` according to ``value`` (the :attr:`header`'s); ``None`` if not believed.

        ``None`` when ``peer`` is not trusted or the header names no one.
        Thread-safe; never blocks.
        """
        if not self.trusts(peer) or not value:
            return None
        if self.environ_key == "HTTP_FORWARDED":
            hops = [match.group(1) for match in _FORWARDED_FOR.finditer(value)]
        else:
            hops = [hop.strip() for hop in value.split(",")]
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
