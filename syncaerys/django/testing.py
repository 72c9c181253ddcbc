"""Test a Django project's websockets with Django's own test tools, over real sockets.

Django's ``LiveServerTestCase`` (and pytest-django's ``live_server``) serve the
project with runserver's server, which serves its websockets too. A client logs
in as Django's test client does (``force_login``) and connects with that session::

    from syncaerys.django.testing import LiveServerTestCase

    class ChatTests(LiveServerTestCase):
        def test_hello(self):
            ann = User.objects.create_user("ann")
            with self.websocket("/ws/chat/lobby/", user=ann) as client:
                assert client.receive_text() == "welcome, ann"

With pytest-django: ``connect(live_server.url, "/ws/chat/lobby/", user=ann)``.
The clients are :class:`syncaerys.testing.Client` objects: every blocking call is
bounded by a timeout.
"""

from __future__ import annotations

import unittest
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from django.conf import settings
from django.test import Client as HttpClient
from django.test import LiveServerTestCase as DjangoLiveServerTestCase

from ..testing import DEFAULT_TIMEOUT
from ..testing import Client
from ..testing import connect as connect_client
from . import gateways

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser

__all__ = ["LiveServerTestCase", "connect", "disconnect_all", "session_cookie"]


def session_cookie(user: AbstractBaseUser, backend: str | None = None) -> str:
    """A ``Cookie`` header value carrying a session logged in as ``user`` (Django's ``force_login``).

    Needs the database (a test with database access). Not thread-safe (Django's test
    client); never blocks beyond the session's database write.
    """
    client = HttpClient()
    client.force_login(user, backend)
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}"


def connect(
    live_server_url: str,
    path: str,
    *,
    user: AbstractBaseUser | None = None,
    headers: Mapping[str, str] | None = None,
    origin: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    **options: Any,
) -> Client:
    """A websocket client of the live server at ``live_server_url`` (``http://host:port``), on ``path``.

    With ``user``, the handshake carries a session logged in as that user. The Origin
    is the live server's own (a page of the site) unless ``origin`` is given. Other
    ``options`` are :func:`syncaerys.testing.connect`'s. Blocks until the handshake is
    done (at most ``timeout``); raises :class:`~syncaerys.testing.HandshakeRejected` when refused.
    """
    if not live_server_url.startswith(("http://", "https://")):
        raise ValueError(f"live_server_url must be http://host:port (live_server.url), not {live_server_url!r}")
    all_headers = dict(headers or {})
    if user is not None:
        cookie = session_cookie(user)
        all_headers["Cookie"] = f"{all_headers['Cookie']}; {cookie}" if "Cookie" in all_headers else cookie
    url = "ws" + live_server_url[len("http") :].rstrip("/") + path
    return connect_client(
        url, path="/", headers=all_headers, origin=origin or live_server_url, timeout=timeout, **options
    )


def disconnect_all(timeout: float = DEFAULT_TIMEOUT) -> None:
    """Close every client of every gateway of this process (1001) and wait until their ``on_close`` ran.

    Between tests: the next test's database is not touched by the last one's handlers.
    The gateways stay started. Thread-safe; blocks until they are gone, at most ``timeout``
    (then :class:`TimeoutError`).
    """
    for gateway in gateways():
        for client_id in gateway.endpoint.get_clients(local=True):
            gateway.endpoint.close(client_id, 1001, "test over")
    for gateway in gateways():
        if not gateway.wait_idle(timeout):
            raise TimeoutError(f"{gateway.connection_count()} clients of {gateway!r} still closing after {timeout}s")


class LiveServerTestCase(DjangoLiveServerTestCase):
    """Django's ``LiveServerTestCase`` with :meth:`websocket`; a test's clients are gone before the next test.

    Thread model as Django's: the test runs on the main thread, the live server and
    each websocket client's callbacks on threads of their own.
    """

    _disconnects_after: unittest.TestCase | None = None

    def websocket(self, path: str, *, user: AbstractBaseUser | None = None, **options: Any) -> Client:
        """A client of this test's live server on ``path`` (see :func:`connect`).

        After the test (its cleanups run last first) the client is closed, then every
        client of the process, and their ``on_close`` have run before the database is reset.
        """
        if self._disconnects_after is not self:
            self.addCleanup(disconnect_all)
            self._disconnects_after = self
        client = connect(self.live_server_url, path, user=user, **options)
        self.addCleanup(client.close)
        return client
