"""syncaerys behind a real nginx: the proxy configuration of the README, tested.

Each test starts Debian's nginx on a free port with a generated configuration
(``daemon off``, one process, everything under the test's temporary
directory) in front of a syncaerys server. Skipped without nginx; mandatory
where ``SYNCAERYS_REQUIRE_NGINX=1`` (CI).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

import syncaerys
from tests.test_http import certificate  # noqa: F401  (a fixture)
from tests.utils import PROMPTLY
from tests.utils import Recorder
from tests.utils import accepts
from tests.utils import free_port
from tests.utils import wait_until

MiB = 1 << 20

#: The location block of the README's nginx guide, with the test's backend and timeout filled in.
LOCATION = """
        location / {{
            proxy_pass http://127.0.0.1:{backend};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;            # with the port: Origin checks compare it
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header Forwarded "";
            proxy_read_timeout {read_timeout};
        }}
"""

CONFIG = """
daemon off;
master_process off;
worker_processes 1;
error_log {tmp}/error.log info;
pid {tmp}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    server {{
        listen 127.0.0.1:{port};
{location}
    }}
{tls}
}}
"""

TLS = """
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
{location}
    }}
"""


def nginx_path() -> str:
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if path is None:
        if os.environ.get("SYNCAERYS_REQUIRE_NGINX") == "1":
            pytest.fail("SYNCAERYS_REQUIRE_NGINX=1 but nginx is not installed (apt-get install nginx)")
        pytest.skip("nginx is not installed (apt-get install nginx)")
    return path


class Nginx:
    def __init__(self, process: subprocess.Popen[bytes], port: int, tls_port: int | None, log: Path) -> None:
        self.process = process
        self.port = port
        self.tls_port = tls_port
        self.log = log


@contextlib.contextmanager
def nginx(
    tmp_path: Path, backend: int, *, read_timeout: str = "60s", tls: tuple[str, str] | None = None
) -> Iterator[Nginx]:
    executable = nginx_path()
    port = free_port()
    tls_port = free_port() if tls else None
    location = LOCATION.format(backend=backend, read_timeout=read_timeout)
    tls_block = TLS.format(port=tls_port, cert=tls[0], key=tls[1], location=location) if tls else ""
    config = tmp_path / "nginx.conf"
    config.write_text(CONFIG.format(tmp=tmp_path, port=port, location=location, tls=tls_block))
    log = tmp_path / "nginx.out"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [executable, "-c", str(config), "-p", str(tmp_path)], stdout=output, stderr=subprocess.STDOUT
        )
    try:
        wait_until(lambda: process.poll() is not None or accepts(port), timeout=4 * PROMPTLY, interval=0.02)
        assert process.poll() is None, log.read_text() + (tmp_path / "error.log").read_text()
        yield Nginx(process, port, tls_port, log)
    finally:
        process.terminate()
        try:
            process.wait(PROMPTLY)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def backend(handler: object | None = None, **options: object) -> Iterator[tuple[syncaerys.Server, Recorder]]:
    recorder = handler if isinstance(handler, Recorder) else Recorder()
    server_options = {k: options.pop(k) for k in ("trusted_proxies", "proxy_header") if k in options}
    gateway = syncaerys.websocket(recorder, **options)  # type: ignore[arg-type]
    with syncaerys.Server(gateway, port=0, **server_options) as server:  # type: ignore[arg-type]
        yield server, recorder


def test_echo_through_nginx_with_the_upgrade_headers(tmp_path: Path) -> None:
    with backend() as (server, recorder), nginx(tmp_path, server.port) as proxy:
        with connect(f"ws://127.0.0.1:{proxy.port}/") as ws:
            ws.send("through nginx")
            assert ws.recv(timeout=PROMPTLY) == "through nginx"
        recorder.wait_event("close")


def test_a_megabyte_message_through_the_proxy_buffers(tmp_path: Path) -> None:
    payload = os.urandom(MiB)
    with backend() as (server, _), nginx(tmp_path, server.port) as proxy:
        with connect(f"ws://127.0.0.1:{proxy.port}/", max_size=2 * MiB) as ws:
            ws.send(payload)
            assert ws.recv(timeout=4 * PROMPTLY) == payload


@pytest.mark.timeout(60)
def test_a_quiet_client_survives_proxy_read_timeout_thanks_to_the_heartbeat(tmp_path: Path) -> None:
    # proxy_read_timeout 1s against heartbeat_period 0.3: the pings keep the proxied connection busy.
    with backend(heartbeat_period=0.3) as (server, _), nginx(tmp_path, server.port, read_timeout="1s") as proxy:
        with connect(f"ws://127.0.0.1:{proxy.port}/") as ws:
            with pytest.raises(TimeoutError):
                ws.recv(timeout=3.0)  # three proxy timeouts of silence from both applications
            ws.send("still here")
            assert ws.recv(timeout=PROMPTLY) == "still here"


@pytest.mark.timeout(60)
def test_without_the_heartbeat_nginx_drops_a_quiet_connection(tmp_path: Path) -> None:
    # The other side of the previous test: what heartbeat_period protects against.
    with backend(heartbeat_period=None) as (server, recorder), nginx(tmp_path, server.port, read_timeout="1s") as proxy:
        with connect(f"ws://127.0.0.1:{proxy.port}/") as ws, pytest.raises(ConnectionClosed):
            ws.recv(timeout=4 * PROMPTLY)
        assert recorder.wait_event("close")[2] == 1006


def test_wss_terminated_at_nginx(tmp_path: Path, certificate: tuple[str, str]) -> None:  # noqa: F811
    cert, key = certificate
    scheme = Recorder(handshake=lambda request, response: request.headers.get("X-Forwarded-Proto"))
    with backend(scheme) as (server, recorder), nginx(tmp_path, server.port, tls=(cert, key)) as proxy:
        context = ssl.create_default_context(cafile=cert)
        with connect(f"wss://127.0.0.1:{proxy.tls_port}/", ssl=context) as ws:
            ws.send("encrypted to nginx, plain behind it")
            assert ws.recv(timeout=PROMPTLY) == "encrypted to nginx, plain behind it"
        assert recorder.wait_event("open")[2] == "https"  # what the page's scheme was, for the app to know


def test_a_graceful_stop_reaches_the_client_through_nginx(tmp_path: Path) -> None:
    recorder = Recorder()
    gateway = syncaerys.websocket(recorder)
    server = syncaerys.Server(gateway, port=0)
    server.serve_in_thread()
    try:
        with nginx(tmp_path, server.port) as proxy, connect(f"ws://127.0.0.1:{proxy.port}/") as ws:
            recorder.wait_event("open")
            server.stop()
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=4 * PROMPTLY)
            assert closed.value.rcvd is not None
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1001, "Server shutting down")
    finally:
        server.stop()


def connect_from(address: str, port: int, **headers: str) -> object:
    """A websocket client whose connection comes from ``address`` (any 127.x works on Linux)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=PROMPTLY, source_address=(address, 0))
    return connect(f"ws://127.0.0.1:{port}/", sock=sock, additional_headers=headers or None)


@pytest.mark.parametrize(
    ("trusted", "spoofed", "expected"),
    [
        (None, None, "127.0.0.1"),  # the default: the proxy's address; headers are not believed
        (["127.0.0.1"], None, "127.0.0.2"),
        (["127.0.0.1"], "203.0.113.7", "127.0.0.2"),  # a client's own header does not fool it
        (["127.0.0.0/30"], None, None),  # the client itself counts as a proxy: no one to name
    ],
    ids=["untrusted", "trusted", "spoofed", "all-trusted"],
)
def test_the_real_client_address_comes_from_trusted_proxies_only(
    tmp_path: Path, trusted: list[str] | None, spoofed: str | None, expected: str | None
) -> None:
    options = {} if trusted is None else {"trusted_proxies": trusted}
    with backend(**options) as (server, recorder), nginx(tmp_path, server.port) as proxy:
        extra = {"X-Forwarded-For": spoofed} if spoofed else {}
        with connect_from("127.0.0.2", proxy.port, **extra) as ws:  # type: ignore[attr-defined]
            _, client_id, _ = recorder.wait_event("open")
            info = recorder.endpoint.get_info(client_id)
            assert info is not None
            ws.send("x")
            ws.recv(timeout=PROMPTLY)
    if expected is None:
        assert info.remote_address.startswith("127.0.0.1:")  # nothing believable: the peer, with its port
    else:
        assert info.remote_address.split(":")[0] == expected


def test_forwarding_headers_from_a_peer_that_is_not_a_trusted_proxy_are_ignored() -> None:
    with backend(trusted_proxies=["10.0.0.1"]) as (server, recorder):
        with connect_from("127.0.0.2", server.port, **{"X-Forwarded-For": "203.0.113.7"}):  # type: ignore[attr-defined]
            _, client_id, _ = recorder.wait_event("open")
            info = recorder.endpoint.get_info(client_id)
    assert info is not None and info.remote_address.startswith("127.0.0.2:")


def test_the_readme_shows_the_configuration_tested_here() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("```nginx", 1)[1].split("```", 1)[0]
    for line in LOCATION.strip().splitlines():
        directive = line.strip()
        if directive.startswith(("proxy_http_version", "proxy_set_header")):
            assert directive in block, f"the README's nginx block lacks {directive!r}"
    assert "map $http_upgrade $connection_upgrade" in block
