"""syncaerys.testing: serve() and the wsproto-based test client, against real servers."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

import syncaerys
from syncaerys import Host
from syncaerys import Message
from syncaerys import Router
from syncaerys.testing import Client
from syncaerys.testing import ConnectionClosed
from syncaerys.testing import HandshakeRejected
from syncaerys.testing import connect
from syncaerys.testing import serve
from tests.utils import PROMPTLY
from tests.utils import Recorder
from tests.utils import wait_until


def client_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "syncaerys-testing-client"]


def test_echo_text_then_client_close_code_and_reason_reach_both_sides() -> None:
    recorder = Recorder()
    with serve(recorder) as server:
        with connect(server, "/", timeout=PROMPTLY) as client:
            client.send("hi")
            assert client.receive() == "hi"
            assert (client.close_code, client.close_reason) == (None, None)
            client.close(4001, "bye")
            assert client.closed
        assert (client.close_code, client.close_reason) == (4001, "bye")
        assert recorder.wait_event("close")[2:] == (4001, "bye")
    assert client_threads() == []


def test_binary_and_a_large_message_in_many_frames() -> None:
    big = bytes(range(256)) * 800  # 204,800 bytes: the server sends 4 frames
    with serve(Recorder()) as server, connect(server, timeout=PROMPTLY) as client:
        client.send(b"\x00\x01")
        assert client.receive_bytes() == b"\x00\x01"
        client.send(bytearray(big))
        assert client.receive() == big
        client.send("text")
        with pytest.raises(TypeError, match="expected a binary message"):
            client.receive_bytes()
        client.send(b"bin")
        with pytest.raises(TypeError, match="expected a text message"):
            client.receive_text()


def test_send_fragments_reach_message_read_chunk_by_chunk() -> None:
    def on_data(rec: Recorder, client_id: int, message: Message) -> None:
        chunks = list(message)
        rec.record("chunks", chunks)
        rec.endpoint.send(str(len(chunks)), client_id)

    recorder = Recorder(on_data=on_data)
    with serve(recorder) as server, connect(server, timeout=PROMPTLY) as client:
        client.send_fragments(["ab", "cd", "é!"])
        assert client.receive() == "3"
        assert recorder.wait_event("chunks")[1] == ["ab", "cd", "é!"]
        client.send_fragments([b"\x01", b"\x02"])
        assert client.receive() == "2"
        with pytest.raises(TypeError):
            client.send_fragments(["a", b"b"])
        with pytest.raises(ValueError):
            client.send_fragments([])


def test_server_close_code_and_reason_reach_the_client() -> None:
    def on_data(rec: Recorder, client_id: int, message: Message) -> None:
        text = message.result()
        rec.endpoint.send("before " + str(text), client_id)
        rec.endpoint.close(client_id, 4002, "kicked")

    recorder = Recorder(on_data=on_data)
    with serve(recorder) as server, connect(server, timeout=PROMPTLY) as client:
        client.send("x")
        # A message sent before the close is still received, then the close.
        assert client.receive() == "before x"
        with pytest.raises(ConnectionClosed) as closed:
            client.receive()
        assert (closed.value.code, closed.value.reason) == (4002, "kicked")
        assert client.wait_closed()
        assert (client.close_code, client.close_reason) == (4002, "kicked")
        # The client echoed the close, so the server saw a clean handshake.
        assert recorder.wait_event("close")[2:] == (4002, "kicked")
        with pytest.raises(ConnectionClosed):
            client.send("too late")


def test_server_shutdown_closes_the_client_with_1001() -> None:
    recorder = Recorder()
    with serve(recorder) as server:
        client = connect(server, timeout=PROMPTLY)
        recorder.wait_event("open")
    # serve() stopped the server: on_stop, then 1001 to every client.
    assert client.wait_closed()
    assert (client.close_code, client.close_reason) == (1001, "Server shutting down")
    assert recorder.kinds()[-2:] == ["stop", "close"]


def test_abort_drops_tcp_and_the_server_sees_1006() -> None:
    recorder = Recorder()
    with serve(recorder) as server:
        client = connect(server, timeout=PROMPTLY)
        recorder.wait_event("open")
        client.abort()
        assert client.closed
        assert client.close_code == 1006
        assert recorder.wait_event("close")[2:] == (1006, "Client closed underlying TCP connection")


def test_denied_handshake_raises_with_status_headers_and_body() -> None:
    def deny(request: Any, response: syncaerys.Response) -> None:
        response.status = 401
        response.set_header("WWW-Authenticate", 'Bearer realm="test"')
        response.send("no token")

    recorder = Recorder(handshake=deny)
    with serve(recorder) as server:
        with pytest.raises(HandshakeRejected) as denied:
            connect(server, "/private", timeout=PROMPTLY)
    assert denied.value.status == 401
    assert denied.value.headers["www-authenticate"] == 'Bearer realm="test"'
    assert denied.value.body == b"no token"
    assert denied.value.text == "no token"
    assert "open" not in recorder.kinds()


def test_protocol_level_rejections_are_handshake_rejected() -> None:
    gateway = syncaerys.websocket(Recorder(), allowed_origins=["http://good.example"])
    with serve(Router().get("/ws", gateway)) as server:
        with pytest.raises(HandshakeRejected) as not_found:
            connect(server, "/elsewhere", timeout=PROMPTLY)
        assert not_found.value.status == 404
        with pytest.raises(HandshakeRejected) as forbidden:
            connect(server, "/ws", origin="http://evil.example", timeout=PROMPTLY)
        assert forbidden.value.status == 403
        with connect(server, "/ws", origin="http://good.example", timeout=PROMPTLY) as client:
            client.send("ok")
            assert client.receive() == "ok"


def test_subprotocol_negotiation() -> None:
    with serve(Recorder(), subprotocols=["chat.v2", "chat.v1"]) as server:
        with connect(server, subprotocols=["chat.v1", "other"], timeout=PROMPTLY) as client:
            assert client.subprotocol == "chat.v1"
        with connect(server, subprotocols=["chat.v1", "chat.v2"], timeout=PROMPTLY) as client:
            assert client.subprotocol == "chat.v2"  # the server's preference wins
        with connect(server, timeout=PROMPTLY) as client:
            assert client.subprotocol is None


def test_request_headers_reach_on_handshake_and_response_headers_reach_the_client() -> None:
    def handshake(request: Any, response: syncaerys.Response) -> Any:
        response.set_header("X-Server", "syncaerys")
        response.set_cookie("session", "abc")
        return (request.headers.get("X-Token"), request.cookies.get("theme"))

    recorder = Recorder(handshake=handshake)
    headers = {"X-Token": "t0k3n", "Cookie": "theme=dark"}
    with serve(recorder) as server, connect(server, headers=headers, timeout=PROMPTLY) as client:
        assert recorder.wait_event("open")[2] == ("t0k3n", "dark")
        assert client.response_headers["X-Server"] == "syncaerys"
        assert client.response_headers["Set-Cookie"].startswith("session=abc")


def test_client_ping_is_answered_with_a_pong() -> None:
    with serve(Recorder()) as server, connect(server, timeout=PROMPTLY) as client:
        assert 0 <= client.ping() < PROMPTLY
        assert 0 <= client.ping(b"payload") < PROMPTLY
        client.send("still open")
        assert client.receive() == "still open"


def test_server_pings_are_answered_while_the_test_is_idle() -> None:
    recorder = Recorder()
    with serve(recorder, heartbeat_period=0.1) as server, connect(server, timeout=PROMPTLY) as client:
        client_id = recorder.wait_event("open")[1]
        endpoint = recorder.endpoint
        # No receive() call: the client's own thread answers every ping.
        wait_until(lambda: endpoint.get_info(client_id).pongs_received >= 3)  # type: ignore[union-attr]
        assert client.pings_received >= 3
        assert endpoint.get_clients() == [client_id]
        assert client.close_code is None


def test_receive_timeout_leaves_the_client_usable() -> None:
    with serve(Recorder()) as server, connect(server, timeout=PROMPTLY) as client:
        with pytest.raises(TimeoutError):
            client.receive(timeout=0.05)
        client.send("after the timeout")
        assert client.receive() == "after the timeout"


@pytest.mark.parametrize("kind", ["router", "host", "wsgi", "gateway"])
def test_serve_accepts_routers_hosts_gateways_and_wsgi_apps(kind: str) -> None:
    recorder = Recorder(handshake=lambda request, response, **args: args)
    gateway = syncaerys.websocket(recorder)
    router = Router().get("/room/<name>", gateway)

    def wsgi_app(environ: dict[str, Any], start_response: Any) -> Any:
        environ["syncaerys.route_args"] = {"name": environ["PATH_INFO"].rsplit("/", 1)[-1]}
        return gateway(environ, start_response)

    target: object = {"router": router, "host": Host().use(router), "wsgi": wsgi_app, "gateway": gateway}[kind]
    with serve(target) as server, connect(server, "/room/lobby", timeout=PROMPTLY) as client:
        client.send("hello")
        assert client.receive() == "hello"
        # Route arguments reach on_handshake (a bare gateway has none).
        assert recorder.wait_event("open")[2] == ({} if kind == "gateway" else {"name": "lobby"})
    assert recorder.kinds()[0] == "start"
    assert recorder.kinds()[-1] == "stop"


def test_serve_an_aerys_view_and_see_its_plain_response() -> None:
    def view(request: Any, response: syncaerys.Response) -> None:
        response.status = 418
        response.send("not a websocket")

    with serve(view) as server:
        with pytest.raises(HandshakeRejected) as rejected:
            connect(server, "/", timeout=PROMPTLY)
    assert (rejected.value.status, rejected.value.body) == (418, b"not a websocket")


def test_serve_refuses_gateway_options_for_a_ready_made_app() -> None:
    with pytest.raises(TypeError, match="only apply to a handler"):
        with serve(syncaerys.websocket(Recorder()), heartbeat_period=None):
            pass  # pragma: no cover
    with pytest.raises(TypeError, match="not the class"):
        with serve(Recorder):
            pass  # pragma: no cover


def test_connect_by_url_with_a_query_string() -> None:
    recorder = Recorder(handshake=lambda request, response: request.args.get("name"))
    with serve(recorder) as server:
        with connect(f"ws://127.0.0.1:{server.port}/chat?name=ann", timeout=PROMPTLY) as client:
            assert isinstance(client, Client)
            assert recorder.wait_event("handshake")[1] == "/chat"
            assert recorder.wait_event("open")[2] == "ann"
    with pytest.raises(ValueError, match="not a ws"):
        connect("http://127.0.0.1:1/", timeout=PROMPTLY)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a test certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


def test_tls_host(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    recorder = Recorder()
    host = Host().encrypt(str(cert), str(key)).use(syncaerys.websocket(recorder))
    with serve(host) as server:
        assert server.url.startswith("wss://127.0.0.1:")
        with connect(server, timeout=PROMPTLY) as client:
            big = b"\xab" * 300_000
            client.send(big)
            assert client.receive() == big
            assert 0 <= client.ping() < PROMPTLY
            client.close(4000, "tls bye")
        assert client.close_code == 4000
        # A verifying context that does not trust the certificate fails the TLS handshake.
        with pytest.raises(ssl.SSLError):
            connect(server, ssl_context=ssl.create_default_context(), timeout=PROMPTLY)
    assert recorder.wait_event("close")[2:] == (4000, "tls bye")
