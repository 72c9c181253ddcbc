"""The HTTP side: Router, Host chain, TLS, connection limits, slowloris, header limits, CLI."""

from __future__ import annotations

import ast
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect
from werkzeug.wrappers import Response as WerkzeugResponse

import syncaerys
from syncaerys import Host
from syncaerys import Router
from syncaerys import websocket
from syncaerys.standalone.runner import servers_for
from tests.utils import PROMPTLY
from tests.utils import RawClient
from tests.utils import Recorder
from tests.utils import http_request
from tests.utils import wait_until


def get(port: int, path: str, method: str = "GET", extra: str = "") -> tuple[int, dict[str, str], bytes]:
    request = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{extra}\r\n"
    return http_request(port, request.encode())


def hello(request: Any, response: Any, **args: Any) -> None:
    response.send(f"hello {args.get('name', 'world')}")


# -- Router


def test_router_routes_views_and_websockets_with_route_arguments() -> None:
    recorder = Recorder(handshake=lambda request, response, **args: args)
    router = Router().get("/", hello).get("/hello/<name>", hello).get("/room/<name>", websocket(recorder))
    with syncaerys.Server(router, port=0) as server:
        assert get(server.port, "/")[::2] == (200, b"hello world")
        assert get(server.port, "/hello/ada")[::2] == (200, b"hello ada")
        with connect(f"{server.url}/room/lobby") as ws:
            ws.send("hi")
            assert ws.recv(timeout=PROMPTLY) == "hi"
        assert recorder.wait_event("open")[2] == {"name": "lobby"}


def test_router_404_and_405_with_allow() -> None:
    router = Router().get("/", hello).post("/submit", hello)
    with syncaerys.Server(router, port=0) as server:
        assert get(server.port, "/missing")[0] == 404
        status, headers, _ = get(server.port, "/submit")
        assert status == 405
        assert "POST" in headers["allow"]


def test_a_view_may_return_a_werkzeug_response_or_text() -> None:
    router = (
        Router()
        .get("/w", lambda request, response: WerkzeugResponse("from werkzeug", status=201))
        .get("/t", lambda request, response: "plain text")
    )
    with syncaerys.Server(router, port=0) as server:
        assert get(server.port, "/w")[::2] == (201, b"from werkzeug")
        assert get(server.port, "/t")[::2] == (200, b"plain text")


def test_a_websocket_route_answers_plain_http_with_426() -> None:
    router = Router().get("/ws", websocket(Recorder()))
    with syncaerys.Server(router, port=0) as server:
        status, headers, _ = get(server.port, "/ws")
        assert status == 426
        assert headers["upgrade"] == "websocket"


# -- Host


def test_host_chain_tries_responders_in_order_then_404() -> None:
    calls: list[str] = []

    def silent(request: Any, response: Any) -> None:
        calls.append("silent")  # leaves the response untouched: the next responder tries

    def wsgi_404(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        calls.append("wsgi")
        start_response("404 Not Found", [("Content-Length", "0")])
        return []

    host = Host().use(silent).use(wsgi_404).use(Router().get("/known", hello))
    with syncaerys.Server(host, port=0) as server:
        assert get(server.port, "/known")[::2] == (200, b"hello world")
        assert calls == ["silent", "wsgi"]
        assert get(server.port, "/unknown")[0] == 404


def test_empty_host_says_it_works() -> None:
    with syncaerys.Server(Host(), port=0) as server:
        status, _, body = get(server.port, "/")
        assert status == 200
        assert b"It works!" in body


def test_host_gateways_start_with_the_server() -> None:
    recorder = Recorder()
    host = Host().use(Router().get("/ws", websocket(recorder)))
    with syncaerys.Server(host, port=0):
        assert recorder.kinds() == ["start"]
    assert recorder.kinds() == ["start", "stop"]


def test_default_host_address() -> None:
    assert Host().addresses == [("127.0.0.1", 1337)]
    assert Host().expose("::1", 0).addresses == [("::1", 0)]


def test_the_http_layer_has_no_import_cycle() -> None:
    # host -> router -> responders -> response, each imported at the top: no function-level import
    # hides a cycle (every import counts, TYPE_CHECKING ones included).
    layer = {"host", "router", "responders", "response"}
    imports = {}
    for name in layer:
        tree = ast.parse((Path(syncaerys.__file__).parent / f"{name}.py").read_text(encoding="utf-8"))
        imports[name] = {
            node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 1
        } & layer
    assert imports == {
        "host": {"responders", "router"},
        "router": {"responders"},
        "responders": {"response"},
        "response": set(),
    }


def test_ipv6() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    recorder = Recorder()
    try:
        server = syncaerys.Server(websocket(recorder), host="::1", port=0)
    except OSError as error:
        pytest.skip(f"::1 unavailable: {error}")
    with server:
        with connect(f"ws://[::1]:{server.port}/") as ws:
            ws.send("six")
            assert ws.recv(timeout=PROMPTLY) == "six"


# -- TLS


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 made with openssl."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    result = subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        capture_output=True,
        check=False,
    )  # fmt: skip
    if result.returncode != 0:
        pytest.skip(f"openssl failed: {result.stderr.decode()[:200]}")
    return str(cert), str(key)


def client_context(cert: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=cert)
    return context


def test_wss_echo_broadcast_and_close(certificate: tuple[str, str], caplog: pytest.LogCaptureFixture) -> None:
    cert, key = certificate
    recorder = Recorder()
    host = Host().expose("127.0.0.1", 0).encrypt(cert, key).use(websocket(recorder))
    (server,) = servers_for(host)
    with server:
        assert server.url.startswith("wss://")
        with connect(f"{server.url}/", ssl=client_context(cert)) as ws:
            big = os.urandom(300_000)
            ws.send(big)
            assert ws.recv(timeout=PROMPTLY) == big
            for number in range(50):
                ws.send(f"m{number}")
            assert [ws.recv(timeout=PROMPTLY) for _ in range(50)] == [f"m{n}" for n in range(50)]
            ws.close(4000, "tls bye")
        assert recorder.wait_event("close")[2:] == (4000, "tls bye")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_tls_handshake_from_a_plain_client_loses_its_thread(certificate: tuple[str, str]) -> None:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with syncaerys.Server(websocket(Recorder()), port=0, ssl_context=context) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=PROMPTLY) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
            assert b"HTTP/" not in answer  # at most a TLS alert, then the connection is closed
        # The server still serves TLS clients.
        with connect(f"{server.url}/", ssl=client_context(cert)) as ws:
            ws.send("ok")
            assert ws.recv(timeout=PROMPTLY) == "ok"


# -- limits


def test_max_connections_answers_503_without_a_thread() -> None:
    recorder = Recorder()
    with syncaerys.Server(websocket(recorder), port=0, max_connections=2) as server:
        with connect(f"{server.url}/") as first, connect(f"{server.url}/") as second:
            recorder.wait_for(lambda events: [e[0] for e in events].count("open") == 2)
            threads = len(os.listdir("/proc/self/task"))
            status, headers, _ = get(server.port, "/")
            assert status == 503
            assert headers["retry-after"] == "1"
            assert len(os.listdir("/proc/self/task")) <= threads
            first.send("still served")
            assert first.recv(timeout=PROMPTLY) == "still served"
            second.close()
        # A slot is free again once a client has gone.
        wait_until(lambda: server.connection_count() < 2)
        with connect(f"{server.url}/") as third:
            third.send("back")
            assert third.recv(timeout=PROMPTLY) == "back"


@pytest.mark.parametrize("behaviour", ["silent", "byte-a-second"])
def test_slowloris_loses_its_thread_within_header_timeout(behaviour: str) -> None:
    recorder = Recorder()
    with syncaerys.Server(websocket(recorder), port=0, header_timeout=0.5) as server:
        slow = socket.create_connection(("127.0.0.1", server.port), timeout=PROMPTLY)
        started = time.monotonic()
        received = b""
        if behaviour == "silent":
            received = slow.recv(1024)
        else:
            request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            slow.settimeout(0.2)
            for byte in request:
                try:
                    slow.send(bytes([byte]))
                    received = slow.recv(1024)
                    break
                except TimeoutError:
                    continue
                except OSError:
                    break
            else:
                raise AssertionError("the server never dropped the slow client")
        elapsed = time.monotonic() - started
        assert received == b""
        assert elapsed < 5 * PROMPTLY
        slow.close()
        # Other clients are served meanwhile and afterwards.
        with connect(f"{server.url}/") as ws:
            ws.send("fine")
            assert ws.recv(timeout=PROMPTLY) == "fine"
        assert recorder.kinds().count("handshake") == 1


def test_header_size_cap_gives_431() -> None:
    with syncaerys.Server(websocket(Recorder()), port=0, max_header_bytes=4096) as server:
        big = "".join(f"X-Filler-{n}: {'y' * 100}\r\n" for n in range(60))
        status, _, _ = get(server.port, "/", extra=big)
        assert status == 431


# -- the command line


def test_python_m_syncaerys_serves_a_handler_class(tmp_path: Path) -> None:
    (tmp_path / "cli_app.py").write_text(
        "import syncaerys\n"
        "class Echo(syncaerys.Websocket):\n"
        "    def on_start(self, endpoint): self.endpoint = endpoint\n"
        "    def on_data(self, client_id, message): self.endpoint.send(message.result(), client_id)\n"
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parent.parent), str(tmp_path)]))
    process = subprocess.Popen(
        [sys.executable, "-m", "syncaerys", "cli_app:Echo", "--port", str(port), "--log-level", "WARNING"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:

        def accepting() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return True
            except OSError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                return False

        wait_until(accepting, timeout=10 * PROMPTLY / 5)
        with connect(f"ws://127.0.0.1:{port}/") as ws:
            ws.send("from the shell")
            assert ws.recv(timeout=PROMPTLY) == "from the shell"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=PROMPTLY) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_raw_client_sees_nothing_after_close_on_the_own_server() -> None:
    with syncaerys.Server(Router().get("/ws", websocket(Recorder())), port=0) as server:
        with RawClient(server.port, "/ws") as client:
            client.send_frame(0x8, (1000).to_bytes(2, "big"))
            assert client.recv_frame()[0] == 0x8
            assert client.recv_until_eof() == b""
