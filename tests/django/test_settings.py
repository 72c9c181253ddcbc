"""What the project's settings decide: the Origin check, the proxy's TLS, ALLOWED_HOSTS, SYNCAERYS, and the
misconfigurations that must be a clear error at start or at the first upgrade, naming the fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from syncaerys.testing import HandshakeRejected
from syncaerys.testing import connect
from tests.django.conftest import ServerFactory
from tests.django.postgres import Postgres
from tests.django.server import PROJECT
from tests.django.server import manage
from tests.django.server import project_env
from tests.utils import PROMPTLY
from tests.utils import accepts
from tests.utils import free_port
from tests.utils import http_request
from tests.utils import wait_until


def _refused(url: str, **kwargs: object) -> HandshakeRejected:
    with pytest.raises(HandshakeRejected) as refused:
        connect(url, **kwargs)  # type: ignore[arg-type]
    return refused.value


def test_a_cross_origin_page_is_refused_with_what_was_compared(django_server: ServerFactory) -> None:
    server = django_server("runsyncaerys")
    assert _refused(server.url("/ws/echo/"), origin="http://evil.example").status == 403
    wait_until(lambda: "Origin 'http://evil.example' is neither this site (http://127.0.0.1:" in server.log())
    with connect(server.url("/ws/echo/"), origin=server.origin) as client:  # same origin
        client.send("hi")
        assert client.receive_text().startswith("hi")
    with connect(server.url("/ws/echo/")) as client:  # no Origin: not a browser
        client.send("hi")
        assert client.receive_text().startswith("hi")


def test_csrf_trusted_origins_let_other_origins_in(django_server: ServerFactory) -> None:
    server = django_server("runsyncaerys", trusted_origins="https://*.example.com,http://partner.test")
    for origin in ("https://app.example.com", "http://partner.test"):
        with connect(server.url("/ws/echo/"), origin=origin) as client:
            client.send("hi")
            assert client.receive_text().startswith("hi")
    for origin in ("http://app.example.com", "https://example.org", "https://partner.test"):
        assert _refused(server.url("/ws/echo/"), origin=origin).status == 403


def test_the_proxy_ssl_header_makes_an_https_page_same_origin(django_server: ServerFactory) -> None:
    server = django_server("runsyncaerys", proxy_ssl=1)
    https_page = f"https://127.0.0.1:{server.port}"
    with connect(server.url("/ws/echo/"), origin=https_page, headers={"X-Forwarded-Proto": "https"}) as client:
        client.send("hi")
        assert client.receive_text().startswith("hi")
    # Without the header Django sees http: the https page is another origin, and the log says why.
    assert _refused(server.url("/ws/echo/"), origin=https_page).status == 403
    wait_until(lambda: "only the scheme differs" in server.log() and "SECURE_PROXY_SSL_HEADER" in server.log())


def test_a_host_outside_allowed_hosts_gets_django_s_400(django_server: ServerFactory) -> None:
    server = django_server("runsyncaerys")
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    request = (
        "GET /ws/echo/ HTTP/1.1\r\nHost: evil.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    status, _, _ = http_request(server.port, request.encode())
    assert status == 400
    wait_until(lambda: "Invalid HTTP_HOST header: 'evil.example'" in server.log())


def test_django_denials_from_on_handshake_and_from_a_decorated_view(django_server: ServerFactory) -> None:
    server = django_server("runsyncaerys")
    cookie = server.login("ann")
    assert _refused(server.url("/ws/chat/forbidden/"), headers={"Cookie": cookie}).status == 403
    # login_required in front of serve(): anonymous is redirected, a logged-in user is served.
    refused = _refused(server.url("/ws/private/"))
    assert refused.status == 302
    assert refused.headers["location"] == "/login/?next=/ws/private/"
    with connect(server.url("/ws/private/"), headers={"Cookie": cookie}) as client:
        client.send("in")
        assert client.receive_text().startswith("in")


def test_syncaerys_options_apply_to_every_gateway(django_server: ServerFactory) -> None:
    server = django_server("runsyncaerys", syncaerys=json.dumps({"OPTIONS": {"max_message_size": 16}}))
    with connect(server.url("/ws/echo/")) as client:
        client.send("short")
        assert client.receive_text().startswith("short")
        client.send("x" * 17)
        assert client.wait_closed()
        assert client.close_code == 1009


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"OPTION": {}}, "settings.SYNCAERYS has unknown keys ['OPTION']: the keys are OPTIONS, SERVER"),
        ({"OPTIONS": {"heartbeet": 5}}, "settings.SYNCAERYS['OPTIONS']: unknown option 'heartbeet'"),
        ({"SERVER": {"heartbeat_period": 5}}, "settings.SYNCAERYS['SERVER'] has unknown keys ['heartbeat_period']"),
    ],
)
def test_a_wrong_syncaerys_setting_stops_the_start(
    setting: dict[str, object], message: str, postgres: Postgres, database: str
) -> None:
    result = manage(project_env(database, postgres.port, syncaerys=json.dumps(setting)), "check")
    assert result.returncode != 0
    assert message in result.stderr


def test_routes_on_handshake_cannot_take_are_refused_at_start(postgres: Postgres, database: str) -> None:
    env = project_env(database, postgres.port, urlconf="djproject.bad_urls")
    result = manage(env, "check")
    assert result.returncode != 0
    assert (
        "syncaerys.E001" in result.stderr
        and "route 'ws/<int:number>/' passes the arguments (number) to Chat.on_handshake" in result.stderr
    )
    assert "syncaerys.E002" in result.stderr and "captures 1 unnamed group(s)" in result.stderr
    result = manage(env, "runsyncaerys", "127.0.0.1:1")
    assert result.returncode != 0 and "syncaerys.E001" in result.stderr


def test_an_unguarded_run_in_a_module_django_imports_leaves_the_serving_to_django(
    django_server: ServerFactory,
) -> None:
    own_port = free_port()
    server = django_server("runserver", urlconf="djproject.unguarded_urls", own_port=own_port)
    with connect(server.url("/ws/echo/")) as client:
        client.send("hello")
        assert client.receive_text(timeout=PROMPTLY).startswith("hello (")
    assert "syncaerys.run() was called while Django imports the module djproject.unguarded_urls" in server.log()
    assert not accepts(own_port), "run() took the process over"


def test_gunicorn_reports_bad_routes_at_the_first_request(django_server: ServerFactory) -> None:
    server = django_server("gunicorn", urlconf="djproject.bad_urls")
    wait_until(lambda: "ERROR syncaerys.django: syncaerys.E001" in server.log())
    assert _refused(server.url("/ws/7/")).status == 500


def test_without_the_app_in_installed_apps_the_upgrade_names_it(django_server: ServerFactory) -> None:
    server = django_server("gunicorn", no_app=1)
    assert _refused(server.url("/ws/echo/")).status == 500
    wait_until(lambda: "add 'syncaerys.django' to INSTALLED_APPS" in server.log())


def test_a_users_view_under_atomic_requests_must_opt_out(django_server: ServerFactory) -> None:
    server = django_server("runsyncaerys", atomic=1)
    cookie = server.login("ann")
    assert _refused(server.url("/ws/private/"), headers={"Cookie": cookie}).status == 500
    wait_until(lambda: "decorate it with @transaction.non_atomic_requests" in server.log())


def test_daphne_before_the_app_is_a_warning_of_the_checks(postgres: Postgres, database: str) -> None:
    env = project_env(database, postgres.port, daphne="1")
    env["PYTHONPATH"] += os.pathsep + str(Path(__file__).with_name("stubs"))
    result = manage(env, "check")
    assert result.returncode == 0, result.stderr
    assert "syncaerys.W001" in result.stderr and "its runserver is an ASGI server" in result.stderr


ASGI_REQUEST = """
import asyncio, django
django.setup()
from django.test import AsyncClient

async def main():
    client = AsyncClient()
    try:
        await client.get("/ws/echo/", headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    except Exception as error:
        print(type(error).__name__, error)

asyncio.run(main())
"""


def test_an_upgrade_through_django_s_asgi_handler_names_the_fix(postgres: Postgres, database: str) -> None:
    env = project_env(database, postgres.port)
    env["DJANGO_SETTINGS_MODULE"] = "djproject.settings"
    result = subprocess.run(
        [sys.executable, "-c", ASGI_REQUEST], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60
    )
    assert "ImproperlyConfigured this websocket request came through Django's ASGI handler" in result.stdout, (
        result.stdout + result.stderr
    )
