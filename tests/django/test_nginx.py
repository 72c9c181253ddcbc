"""The Django project behind a real nginx that terminates TLS, with the README's proxy configuration.

nginx passes the page's scheme in ``X-Forwarded-Proto``, which Django believes with
``SECURE_PROXY_SSL_HEADER``, and the browser's Host (with its port) in ``Host``: an https
page of the site is then same-origin for Django, and the same page over http is not.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import pytest

from syncaerys.testing import HandshakeRejected
from syncaerys.testing import connect
from tests.django.conftest import ServerFactory
from tests.test_http import certificate  # noqa: F401 - the fixture
from tests.test_nginx import nginx


def test_a_logged_in_https_page_through_nginx(
    django_server: ServerFactory,
    tmp_path: Path,
    certificate: tuple[str, str],  # noqa: F811 - the fixture
) -> None:
    cert, key = certificate
    server = django_server("runsyncaerys", proxy_ssl=1)
    cookie = server.login("ann")
    with nginx(tmp_path, server.port, tls=(cert, key)) as proxy:
        assert proxy.tls_port is not None
        page = f"https://127.0.0.1:{proxy.tls_port}"
        context = ssl.create_default_context(cafile=cert)
        url = f"wss://127.0.0.1:{proxy.tls_port}/ws/chat/lobby/"
        with connect(url, headers={"Cookie": cookie}, origin=page, ssl_context=context) as client:
            assert json.loads(client.receive_text())["hello"]["user"] == "ann"
            client.send("through nginx")
            assert client.receive_text() == "ann: through nginx"
        with pytest.raises(HandshakeRejected) as refused:
            connect(url, headers={"Cookie": cookie}, origin=f"http://127.0.0.1:{proxy.tls_port}", ssl_context=context)
        assert refused.value.status == 403
