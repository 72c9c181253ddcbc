"""The Origin check of a Django project: same-origin as Django sees it, or ``CSRF_TRUSTED_ORIGINS``.

A browser sends ``Origin`` with every WebSocket handshake, and a cross-site page
can open a socket to any site, cookies included (cross-site WebSocket hijacking).
The gateway lets a handshake in when its Origin is this site as Django computes it
(``request.scheme``, which follows ``SECURE_PROXY_SSL_HEADER``, and
``request.get_host()``, which follows ``ALLOWED_HOSTS`` and ``USE_X_FORWARDED_HOST``)
or is trusted by ``CSRF_TRUSTED_ORIGINS`` (exact, or ``https://*.example.com``), the
rule Django's CSRF middleware applies to unsafe requests. A request without
``Origin`` is not from a browser and passes.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest
from django.utils.http import is_same_domain

from ..protocol.handshake import Rejection

__all__ = ["origin_verdict"]


def origin_verdict(request: HttpRequest) -> Rejection | None:
    """``None`` when ``request``'s Origin may open a websocket, else the 403 to answer.

    ``request.get_host()`` raises :class:`~django.core.exceptions.DisallowedHost` for a
    Host not in ``ALLOWED_HOSTS`` (Django answers 400). Thread-safe; never blocks.
    """
    origin = request.META.get("HTTP_ORIGIN")
    if origin is None:
        return None
    site = f"{request.scheme}://{request.get_host()}"
    if origin == site or _trusted(origin):
        return None
    hint = ""
    if origin.partition("://")[2] == site.partition("://")[2]:
        hint = (
            "; only the scheme differs: if a proxy terminates TLS, set SECURE_PROXY_SSL_HEADER so that "
            "Django sees the request as https"
        )
    return Rejection(403, f"Origin {origin!r} is neither this site ({site}) nor in CSRF_TRUSTED_ORIGINS{hint}")


def _trusted(origin: str) -> bool:
    trusted = list(getattr(settings, "CSRF_TRUSTED_ORIGINS", ()))
    if origin in trusted:
        return True
    try:
        parsed = urlsplit(origin)
    except ValueError:
        return False
    for pattern in trusted:
        if "*" not in pattern:
            continue
        allowed = urlsplit(pattern)
        if allowed.scheme == parsed.scheme and is_same_domain(parsed.netloc, allowed.netloc.lstrip("*")):
            return True
    return False
