"""Opening-handshake checks and the 101 response (sans-I/O).

:func:`check_request` applies the checks of RFC 6455 4.2.1, in order, and
returns the HTTP answer for the first that fails; :func:`check_origin` the
``allowed_origins`` policy. Once the application has let a request through,
:func:`accept` takes every remaining decision (the status and subprotocol the
application chose, permessage-deflate) and returns an :class:`Accept` with the
whole 101 response, or a :class:`Rejection`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from typing import Protocol

from .deflate import DeflateParams
from .deflate import negotiate

__all__ = [
    "Accept",
    "Rejection",
    "OriginCheck",
    "SAME_ORIGIN",
    "ANY_ORIGIN",
    "check_request",
    "check_origin",
    "check_host",
    "host_name",
    "is_loopback_name",
    "LOOPBACK_IF_LOCAL",
    "choose_subprotocol",
    "accept",
    "accept_key",
    "offered_subprotocols",
    "response_101",
]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: What ``allowed_origins`` may hold: exact origins, compiled patterns (full
#: match), ``None`` (accept requests without an Origin header), or one callable.
OriginCheck = Iterable[str | re.Pattern[str] | None] | Callable[[str | None], bool]


class HeaderLookup(Protocol):
    """What :func:`check_request` reads the request's headers from (a mapping, or the WSGI environ's)."""

    def get(self, key: str) -> str | None:
        """The value of the header named ``key`` (any case), or ``None``.

        Called on the request's thread; must not block.
        """
        ...


@dataclass(frozen=True)
class Rejection:
    """An HTTP answer refusing the upgrade. Immutable (its ``headers`` list is not to be changed)."""

    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    #: What the server's log says (names the application's mistake); not sent. Empty: the reason.
    detail: str = ""

    @property
    def status_line(self) -> str:
        """``"403 Forbidden"``: the status and its reason phrase."""
        return f"{self.status} {_PHRASES.get(self.status, 'Error')}"

    @property
    def body(self) -> bytes:
        """The plain-text body: the status line and :attr:`reason`."""
        return f"{self.status} {_PHRASES.get(self.status, 'Error')}: {self.reason}\n".encode()


_PHRASES = {
    400: "Bad Request",
    403: "Forbidden",
    405: "Method Not Allowed",
    426: "Upgrade Required",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}


def _tokens(value: str | None) -> list[str]:
    if not value:
        return []
    return [token.strip().lower() for token in value.split(",")]


@dataclass(frozen=True)
class Accept:
    """The upgrade accepted: the whole ``101 Switching Protocols`` response and what was agreed. Immutable."""

    #: The response's bytes, headers included, to write before any frame.
    head: bytes
    subprotocol: str | None
    #: The permessage-deflate parameters agreed (RFC 7692), or ``None``: no compression.
    deflate: DeflateParams | None


def check_request(
    method: str,
    http_version: str,
    headers: HeaderLookup,
    has_body: bool,
) -> Rejection | None:
    """Apply the protocol checks of RFC 6455 4.2.1 (all but Origin) in order.

    ``http_version`` is the request's protocol, e.g. ``"HTTP/1.1"``.
    Returns ``None`` when the request is a valid RFC 6455 upgrade.
    Thread-safe; never blocks.
    """
    if method != "GET":
        return Rejection(405, "websocket handshakes use GET", [("Allow", "GET")])
    if http_version != "HTTP/1.1":
        return Rejection(505, "websocket handshakes require HTTP/1.1", [("Upgrade", "websocket")])
    if not headers.get("Host"):
        # RFC 7230 5.4: "A server MUST respond with a 400 (Bad Request) status code to any
        # HTTP/1.1 request message that lacks a Host header field".
        return Rejection(400, "Host header required")
    if has_body:
        return Rejection(400, "Entity body disallowed for websocket endpoint")
    if "websocket" not in _tokens(headers.get("Upgrade")):
        return Rejection(426, '"Upgrade: websocket" header required', [("Upgrade", "websocket")])
    if "upgrade" not in _tokens(headers.get("Connection")):
        return Rejection(426, '"Connection: Upgrade" header required', [("Upgrade", "websocket")])
    key = headers.get("Sec-WebSocket-Key")
    if not key or not _is_valid_key(key):
        return Rejection(400, '"Sec-WebSocket-Key" header required: base64 of 16 bytes')
    if "13" not in _tokens(headers.get("Sec-WebSocket-Version")):
        return Rejection(
            426, "Requested Websocket version unavailable", [("Sec-WebSocket-Version", "13"), ("Upgrade", "websocket")]
        )
    return None


def _is_valid_key(key: str) -> bool:
    try:
        return len(base64.b64decode(key.strip(), validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


#: ``allowed_origins`` default: a request with an ``Origin`` must come from the host it was sent to.
SAME_ORIGIN = "same-origin"
#: ``allowed_origins="*"``: no check at all.
ANY_ORIGIN = "*"


def check_origin(origin: str | None, allowed: OriginCheck | str | None, host: str | None = None) -> Rejection | None:
    """Return a 403 when ``origin`` is not allowed.

    ``allowed`` is :data:`SAME_ORIGIN` (the Origin's host and port must be the
    request's ``Host``; no Origin header passes: not a browser), :data:`ANY_ORIGIN`
    or ``None`` (no check), a callable, or an iterable of exact origins,
    compiled patterns and ``None`` (no Origin header). Thread-safe; never
    blocks, unless a callable ``allowed`` does.
    """
    if allowed is None or allowed == ANY_ORIGIN:
        return None
    if allowed == SAME_ORIGIN:
        if origin is None or (host is not None and _same_host(origin, host)):
            return None
        return Rejection(403, "Origin forbidden (cross-origin; see allowed_origins)")
    if isinstance(allowed, str):  # pragma: no cover - Options refuses other strings
        raise ValueError(f"allowed_origins {allowed!r}")
    if callable(allowed):
        ok = bool(allowed(origin))
    else:
        ok = False
        for candidate in allowed:
            if candidate is None or isinstance(candidate, str):
                ok = candidate == origin
            else:
                ok = origin is not None and candidate.fullmatch(origin) is not None
            if ok:
                break
    return None if ok else Rejection(403, "Origin forbidden")


#: ``allowed_hosts`` default: on a server bound to a loopback address, loopback names and addresses
#: only (a DNS rebinding attack reaches it with its own name in Host and Origin); elsewhere any Host.
LOOPBACK_IF_LOCAL = "loopback-if-local"


def check_host(host: str | None, allowed: tuple[str, ...] | str | None, loopback_bind: bool) -> Rejection | None:
    """Return a 403 when the request's ``Host`` is not one this server serves.

    ``allowed`` is :data:`LOOPBACK_IF_LOCAL` (with ``loopback_bind``: only
    ``localhost``, ``*.localhost`` and loopback addresses), ``"*"`` or ``None``
    (no check), or a tuple of lowercase names, ``".example.com"`` standing for
    the name and its subdomains, ``"*"`` for any. Ports are not compared.
    Pure; thread-safe; never blocks.
    """
    if allowed is None or allowed == "*" or (allowed == LOOPBACK_IF_LOCAL and not loopback_bind):
        return None
    name = host_name(host) if host else None
    if allowed == LOOPBACK_IF_LOCAL:
        ok = name is not None and is_loopback_name(name)
        hint = "a server bound to a loopback address serves loopback names only; list the name in allowed_hosts"
    else:
        ok = name is not None and any(_host_matches(name, pattern) for pattern in allowed)
        hint = "list it in allowed_hosts"
    if ok:
        return None
    return Rejection(403, "Host not allowed (see allowed_hosts)", detail=f"Host {host!r} refused: {hint}")


def host_name(host: str) -> str | None:
    """The lowercase name or address of a ``Host`` value, without port or brackets; ``None`` if malformed. Pure."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        if end < 0 or not host[end + 1 :].startswith((":", "")) or host[end + 1 : end + 2] not in ("", ":"):
            return None
        return host[1:end] or None
    if host.count(":") > 1:
        return None  # an IPv6 address without brackets is not a Host (RFC 7230 5.4)
    name = host.partition(":")[0].rstrip(".")
    return name or None


def is_loopback_name(name: str) -> bool:
    """Whether ``name`` (from :func:`host_name`) can only mean this machine: localhost or a loopback address. Pure."""
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def _host_matches(name: str, pattern: str) -> bool:
    if pattern == "*":
        return True
    if pattern.startswith("."):
        return name == pattern[1:] or name.endswith(pattern)
    return name == pattern


def _same_host(origin: str, host: str) -> bool:
    """Whether an ``Origin`` (``scheme://host[:port]``) names the ``Host`` a request was sent to.

    Default ports are left out on both sides, and the scheme is not compared:
    behind a proxy that terminates TLS the page is https and the request http.
    """
    _scheme, separator, netloc = origin.partition("://")
    if not separator or not netloc or "/" in netloc:
        return False
    return _without_default_port(netloc) == _without_default_port(host.strip())


def _without_default_port(netloc: str) -> str:
    netloc = netloc.lower()
    for default in (":80", ":443"):
        if netloc.endswith(default):
            return netloc[: -len(default)]
    return netloc


def accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` value for a client's ``Sec-WebSocket-Key``. Pure; thread-safe; never blocks."""
    return base64.b64encode(hashlib.sha1(key.strip().encode("ascii") + _GUID).digest()).decode("ascii")


def offered_subprotocols(header: str | None) -> list[str]:
    """The subprotocols a client offered, in its order of preference. Pure; thread-safe; never blocks."""
    if not header:
        return []
    return [token.strip() for token in header.split(",") if token.strip()]


def response_101(key: str, subprotocol: str | None, extra_headers: Iterable[tuple[str, str]]) -> bytes:
    """The whole ``101 Switching Protocols`` response, headers included. Pure; thread-safe; never blocks."""
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept_key(key)}",
    ]
    if subprotocol:
        lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
    for name, value in extra_headers:
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
            raise ValueError(f"header {name!r} contains a line break")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def choose_subprotocol(header: str | None, supported: Iterable[str]) -> str | None:
    """The first of ``supported`` (the server's order) that the client offered, or ``None``.

    ``header`` is the request's ``Sec-WebSocket-Protocol``. Pure; thread-safe; never blocks.
    """
    offered = offered_subprotocols(header)
    return next((protocol for protocol in supported if protocol in offered), None)


def accept(
    headers: HeaderLookup,
    status: int,
    subprotocol: str | None,
    response_headers: Iterable[tuple[str, str]],
    compression_window_bits: int | None,
) -> Accept | Rejection:
    """The server's answer to a request that passed :func:`check_request` and the application.

    ``status``, ``subprotocol`` and ``response_headers`` are what the
    application left on its response (a status of 300 or more is its denial,
    sent before this is asked); ``compression_window_bits`` is the largest
    window the server compresses with, or ``None`` not to offer
    permessage-deflate. A 500 when the application chose a status other than
    101 or a subprotocol the client did not offer (RFC 6455 4.2.2), or put a
    line break in a header. Pure; thread-safe; never blocks.
    """
    if status != 101:
        return Rejection(
            500, "invalid handshake status", detail=f"on_handshake set status {status}; 101 or 300-599 required"
        )
    if subprotocol is not None and subprotocol not in offered_subprotocols(headers.get("Sec-WebSocket-Protocol")):
        return Rejection(
            500,
            "invalid subprotocol",
            detail=f"on_handshake chose subprotocol {subprotocol!r}, which the client did not offer",
        )
    extra_headers = list(response_headers)
    deflate = None
    if compression_window_bits is not None:
        deflate = negotiate(headers.get("Sec-WebSocket-Extensions"), compression_window_bits)
        if deflate is not None:
            extra_headers.append(("Sec-WebSocket-Extensions", deflate.response_header()))
    try:
        head = response_101(headers.get("Sec-WebSocket-Key") or "", subprotocol, extra_headers)
    except ValueError as error:
        return Rejection(500, str(error), detail=f"cannot upgrade: {error}")
    return Accept(head, subprotocol, deflate)
