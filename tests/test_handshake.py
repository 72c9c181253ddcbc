"""The opening handshake: protocol checks (RFC 6455 4.2), on_handshake, subprotocols, options."""

from __future__ import annotations

import logging
import re
import socket
from typing import Any

import pytest
from websockets.sync.client import connect

import syncaerys
from tests.utils import PROMPTLY
from tests.utils import RawClient
from tests.utils import Recorder
from tests.utils import client_frame
from tests.utils import http_request
from tests.utils import serve
from tests.utils import url

SAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
SAMPLE_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def upgrade_request(
    port: int,
    *,
    method: str = "GET",
    version: str = "HTTP/1.1",
    headers: dict[str, str | None] | None = None,
    body: bytes = b"",
) -> bytes:
    """A valid upgrade request; ``headers`` override (``None`` removes) the defaults."""
    fields: dict[str, str | None] = {
        "Host": f"127.0.0.1:{port}",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": SAMPLE_KEY,
        "Sec-WebSocket-Version": "13",
    }
    fields.update(headers or {})
    lines = [f"{method} /chat {version}"]
    lines += [f"{name}: {value}" for name, value in fields.items() if value is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def parse_head(head: bytes) -> tuple[int, list[tuple[str, str]]]:
    """The status and the headers (lower-cased names, in order, repeats kept)."""
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    return status, headers


def header_values(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [value for key, value in headers if key == name.lower()]


def read_response(sock: socket.socket) -> tuple[int, list[tuple[str, str]], bytes]:
    """Read one HTTP response whose body is delimited by Content-Length (keep-alive safe)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"EOF inside the response head: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, headers = parse_head(head)
    (length,) = header_values(headers, "content-length")
    while len(body) < int(length):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("EOF inside the response body")
        body += chunk
    assert len(body) == int(length), "bytes after the announced body"
    return status, headers, body


def exchange(port: int, raw: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=PROMPTLY) as sock:
        sock.sendall(raw)
        return read_response(sock)


# -- the protocol checks, in order, before on_handshake


@pytest.mark.parametrize(
    ("request_args", "status", "header"),
    [
        ({"method": "POST"}, 405, ("allow", "GET")),
        ({"method": "PUT"}, 405, ("allow", "GET")),
        ({"version": "HTTP/1.0"}, 505, None),
        ({"headers": {"Content-Length": "5"}, "body": b"hello"}, 400, None),
        ({"headers": {"Upgrade": None}}, 426, ("upgrade", "websocket")),
        ({"headers": {"Upgrade": "h2c"}}, 426, ("upgrade", "websocket")),
        ({"headers": {"Connection": "keep-alive"}}, 426, None),
        ({"headers": {"Connection": None}}, 426, None),
        ({"headers": {"Sec-WebSocket-Key": None}}, 400, None),
        ({"headers": {"Sec-WebSocket-Key": "not base64!"}}, 400, None),
        ({"headers": {"Sec-WebSocket-Key": "AAAAAAAAAAAAAAAAAAAA"}}, 400, None),  # 15 bytes
        ({"headers": {"Sec-WebSocket-Key": "AAAAAAAAAAAAAAAAAAAAAAAA"}}, 400, None),  # 18 bytes
        ({"headers": {"Sec-WebSocket-Version": "8"}}, 426, ("sec-websocket-version", "13")),
        ({"headers": {"Sec-WebSocket-Version": None}}, 426, ("sec-websocket-version", "13")),
    ],
    ids=[
        "post",
        "put",
        "http-1.0",
        "body",
        "no-upgrade",
        "upgrade-not-websocket",
        "connection-without-upgrade",
        "no-connection",
        "no-key",
        "key-not-base64",
        "key-15-bytes",
        "key-18-bytes",
        "version-8",
        "no-version",
    ],
)
def test_protocol_check_failures_answer_without_calling_on_handshake(
    request_args: dict[str, Any], status: int, header: tuple[str, str] | None
) -> None:
    recorder = Recorder()
    with serve(recorder) as server:
        got_status, headers, body = http_request(server.port, upgrade_request(server.port, **request_args))
        assert got_status == status, body
        if header is not None:
            assert headers.get(header[0]) == header[1]
        assert "handshake" not in recorder.kinds()
    assert recorder.kinds() == ["start", "stop"]


@pytest.mark.parametrize(
    ("request_args", "status"),
    [
        ({"method": "POST", "version": "HTTP/1.0", "headers": {"Upgrade": None}}, 405),
        ({"version": "HTTP/1.0", "headers": {"Content-Length": "5"}, "body": b"hello"}, 505),
        ({"headers": {"Content-Length": "5", "Upgrade": None}, "body": b"hello"}, 400),
        ({"headers": {"Upgrade": None, "Sec-WebSocket-Key": None}}, 426),
        ({"headers": {"Connection": "close", "Sec-WebSocket-Key": None}}, 426),
        ({"headers": {"Sec-WebSocket-Key": "short", "Sec-WebSocket-Version": "8"}}, 400),
        ({"headers": {"Sec-WebSocket-Version": "8", "Origin": "https://evil.example"}}, 426),
    ],
    ids=[
        "method-first",
        "version-before-body",
        "body-before-upgrade",
        "upgrade-before-key",
        "connection-before-key",
        "key-before-version",
        "version-before-origin",
    ],
)
def test_checks_apply_in_the_documented_order(request_args: dict[str, Any], status: int) -> None:
    recorder = Recorder()
    with serve(recorder, allowed_origins=["https://good.example"]) as server:
        got_status, _, body = http_request(server.port, upgrade_request(server.port, **request_args))
        assert got_status == status, body
    assert recorder.kinds() == ["start", "stop"]


def test_upgrade_and_connection_tokens_are_case_insensitive_lists() -> None:
    recorder = Recorder()
    with serve(recorder) as server:
        raw = upgrade_request(server.port, headers={"Upgrade": "WebSocket", "Connection": "keep-alive, UPGRADE"})
        with socket.create_connection(("127.0.0.1", server.port), timeout=PROMPTLY) as sock:
            sock.sendall(raw)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                assert chunk, data
                data += chunk
        assert parse_head(data.partition(b"\r\n\r\n")[0])[0] == 101
        recorder.wait_event("close")


# -- Origin


def origin_status(server: syncaerys.Server, origin: str | None) -> int:
    headers = {"Origin": origin} if origin is not None else {}
    with RawClient(server.port, headers=headers) as client:
        return client.status


@pytest.mark.parametrize(
    ("allowed", "accepted", "refused"),
    [
        (
            ["https://good.example"],
            ["https://good.example"],
            ["https://evil.example", "https://good.example.evil", None],
        ),
        (
            [re.compile(r"https://[a-z]+\.good\.example")],
            ["https://app.good.example", "https://www.good.example"],
            ["https://app.good.example.evil", "http://app.good.example", None],
        ),
        (
            lambda origin: origin is not None and origin.endswith(".trusted.test"),
            ["https://a.trusted.test"],
            ["https://a.trusted.test.evil", None],
        ),
        (["https://good.example", None], ["https://good.example", None], ["https://evil.example"]),
    ],
    ids=["exact", "regex", "callable", "none-allows-no-header"],
)
def test_allowed_origins(allowed: Any, accepted: list[str | None], refused: list[str | None]) -> None:
    recorder = Recorder()
    with serve(recorder, allowed_origins=allowed) as server:
        for origin in refused:
            headers: dict[str, str | None] = {"Origin": origin}
            status, _, _ = http_request(server.port, upgrade_request(server.port, headers=headers))
            assert status == 403, origin
        assert "handshake" not in recorder.kinds()
        for origin in accepted:
            assert origin_status(server, origin) == 101, origin
        recorder.wait_for(lambda events: len([e for e in events if e[0] == "close"]) == len(accepted))
    assert recorder.kinds().count("handshake") == len(accepted)


# -- a valid handshake


def test_valid_handshake_gets_101_with_the_rfc_accept_and_no_body() -> None:
    recorder = Recorder()
    with serve(recorder) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=PROMPTLY) as sock:
            sock.sendall(upgrade_request(server.port))
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                assert chunk, data
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101 ")
            status, headers = parse_head(head)
            assert status == 101
            assert header_values(headers, "sec-websocket-accept") == [SAMPLE_ACCEPT]
            assert header_values(headers, "upgrade") == ["websocket"]
            assert header_values(headers, "connection") == ["Upgrade"]
            assert header_values(headers, "content-length") in ([], ["0"])
            assert header_values(headers, "sec-websocket-protocol") == []
            recorder.wait_event("open")
            # The first bytes after the head are the echo of our frame: no body came before it.
            sock.sendall(client_frame(0x1, b"x"))
            expected = b"\x81\x01x"
            while len(rest) < len(expected):
                chunk = sock.recv(65536)
                assert chunk, rest
                rest += chunk
            assert rest == expected
        assert recorder.wait_event("handshake")[1] == "/chat"


# -- on_handshake


@pytest.mark.parametrize(
    ("status", "header", "body"),
    [
        (403, ("X-Deny-Reason", "banned"), b"go away"),
        (401, ("WWW-Authenticate", 'Basic realm="chat"'), b"log in first"),
        (429, ("Retry-After", "30"), b"slow down"),
        (302, ("Location", "/elsewhere"), b""),
    ],
    ids=["403", "401", "429", "302"],
)
def test_on_handshake_denial_is_sent_as_is_and_never_opens(status: int, header: tuple[str, str], body: bytes) -> None:
    def deny(request: Any, response: syncaerys.Response) -> None:
        response.status = status
        response.set_header(*header)
        if body:
            response.send(body)

    recorder = Recorder(handshake=deny)
    with serve(recorder) as server:
        got_status, headers, got_body = exchange(server.port, upgrade_request(server.port))
        assert got_status == status
        assert header_values(headers, header[0]) == [header[1]]
        assert got_body == body
        assert header_values(headers, "sec-websocket-accept") == []
        assert "open" not in recorder.kinds()
    assert recorder.kinds() == ["start", "handshake", "stop"]


def test_headers_and_cookies_set_in_on_handshake_go_out_with_the_101() -> None:
    def handshake(request: Any, response: syncaerys.Response) -> None:
        response.set_cookie("session", "abc123", httponly=True)
        response.set_cookie("theme", "dark")
        response.set_header("X-Server-Says", "hello")

    recorder = Recorder(handshake=handshake)
    with serve(recorder) as server, RawClient(server.port) as client:
        assert client.status == 101
        _, headers = parse_head(client.head.encode("latin-1"))
        cookies = header_values(headers, "set-cookie")
        assert len(cookies) == 2
        assert cookies[0].startswith("session=abc123")
        assert "httponly" in cookies[0].lower()
        assert cookies[1].startswith("theme=dark")
        assert header_values(headers, "x-server-says") == ["hello"]
        recorder.wait_event("open")


def test_handshake_data_reaches_on_open() -> None:
    def handshake(request: Any, response: syncaerys.Response) -> Any:
        return {"user": request.args.get("user"), "cookie": request.cookies.get("sid")}

    recorder = Recorder(handshake=handshake)
    with (
        serve(recorder) as server,
        connect(url(server, "/?user=bob"), additional_headers={"Cookie": "sid=s1"}) as ws,
    ):
        event = recorder.wait_event("open")
        assert event[2] == {"user": "bob", "cookie": "s1"}
        ws.send("x")
        assert ws.recv(timeout=PROMPTLY) == "x"


def test_exception_in_on_handshake_is_500_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    def handshake(request: Any, response: syncaerys.Response) -> None:
        raise RuntimeError("boom in on_handshake")

    recorder = Recorder(handshake=handshake)
    with caplog.at_level(logging.ERROR, logger="syncaerys"), serve(recorder) as server:
        status, _, _ = http_request(server.port, upgrade_request(server.port))
        assert status == 500
    assert "boom in on_handshake" in caplog.text
    assert any(record.exc_info is not None for record in caplog.records if record.levelno >= logging.ERROR)
    assert recorder.kinds() == ["start", "handshake", "stop"]


# -- subprotocols


def test_gateway_subprotocols_pick_the_first_of_the_servers_list() -> None:
    recorder = Recorder()
    with serve(recorder, subprotocols=("b", "a")) as server:
        with RawClient(server.port, headers={"Sec-WebSocket-Protocol": "a, b"}) as client:
            assert client.status == 101
            _, headers = parse_head(client.head.encode("latin-1"))
            assert header_values(headers, "sec-websocket-protocol") == ["b"]
            client_id = recorder.wait_event("open")[1]
            info = recorder.endpoint.get_info(client_id)
            assert info is not None
            assert info.subprotocol == "b"
        with connect(url(server), subprotocols=["a", "b"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "b"


def test_on_handshake_may_override_the_subprotocol() -> None:
    def handshake(request: Any, response: syncaerys.Response) -> str | None:
        preset = response.subprotocol
        response.subprotocol = "a"
        return preset

    recorder = Recorder(handshake=handshake)
    with serve(recorder, subprotocols=("b", "a")) as server, connect(url(server), subprotocols=["a", "b"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "a"
        _, client_id, preset = recorder.wait_event("open")
        assert preset == "b"  # what the gateway's option had picked
        info = recorder.endpoint.get_info(client_id)
        assert info is not None
        assert info.subprotocol == "a"


def test_on_handshake_may_refuse_every_subprotocol() -> None:
    def handshake(request: Any, response: syncaerys.Response) -> None:
        response.subprotocol = None

    recorder = Recorder(handshake=handshake)
    with (
        serve(recorder, subprotocols=("b", "a")) as server,
        RawClient(server.port, headers={"Sec-WebSocket-Protocol": "a, b"}) as client,
    ):
        assert client.status == 101
        _, headers = parse_head(client.head.encode("latin-1"))
        assert header_values(headers, "sec-websocket-protocol") == []
        info = recorder.endpoint.get_info(recorder.wait_event("open")[1])
        assert info is not None
        assert info.subprotocol is None


@pytest.mark.parametrize(
    ("server_list", "offered"),
    [(("c",), "a, b"), (("a",), None), ((), "a, b")],
    ids=["no-common", "none-offered", "none-configured"],
)
def test_no_subprotocol_match_sends_no_header(server_list: tuple[str, ...], offered: str | None) -> None:
    recorder = Recorder()
    headers = {"Sec-WebSocket-Protocol": offered} if offered is not None else {}
    with serve(recorder, subprotocols=server_list) as server, RawClient(server.port, headers=headers) as client:
        assert client.status == 101
        _, head = parse_head(client.head.encode("latin-1"))
        assert header_values(head, "sec-websocket-protocol") == []
        client_id = recorder.wait_event("open")[1]
        info = recorder.endpoint.get_info(client_id)
        assert info is not None
        assert info.subprotocol is None


def test_on_handshake_choosing_an_unoffered_subprotocol_is_500() -> None:
    def handshake(request: Any, response: syncaerys.Response) -> None:
        response.subprotocol = "z"

    recorder = Recorder(handshake=handshake)
    with serve(recorder) as server:
        raw = upgrade_request(server.port, headers={"Sec-WebSocket-Protocol": "a, b"})
        status, _, _ = http_request(server.port, raw)
        assert status == 500
    assert "open" not in recorder.kinds()


# -- options are validated at construction


def test_unknown_option_is_an_option_error_naming_it() -> None:
    with pytest.raises(syncaerys.OptionError) as info:
        syncaerys.websocket(Recorder(), max_mesage_size=10)  # type: ignore[call-arg]
    assert isinstance(info.value, ValueError)
    assert "max_mesage_size" in str(info.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_message_size", 0),
        ("max_message_size", -1),
        ("max_message_size", 1.5),
        ("max_message_size", "1000"),
        ("max_frame_size", True),
        ("max_bytes_per_minute", 0),
        ("max_frames_per_second", "many"),
        ("auto_frame_size", 0),
        ("max_send_queue", -5),
        ("heartbeat_period", "x"),
        ("heartbeat_period", 0),
        ("heartbeat_period", -1.0),
        ("heartbeat_period", float("nan")),
        ("queued_ping_limit", 0),
        ("queued_ping_limit", None),
        ("close_period", 0),
        ("close_period", None),
        ("text_only", 1),
        ("text_only", "yes"),
        ("subprotocols", [""]),
        ("subprotocols", ["a b"]),
        ("subprotocols", ["a,b"]),
        ("subprotocols", [1]),
        ("subprotocols", 5),
        ("allowed_origins", [5]),
        ("allowed_origins", 5),
    ],
)
def test_bad_option_values_raise_naming_the_option(name: str, value: object) -> None:
    with pytest.raises((ValueError, TypeError)) as info:
        syncaerys.websocket(Recorder(), **{name: value})  # type: ignore[arg-type]
    assert isinstance(info.value, syncaerys.OptionError)
    assert name in str(info.value)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"max_message_size": None, "max_frame_size": None, "max_send_queue": None}, {}),
        ({"max_bytes_per_minute": None, "max_frames_per_second": None, "heartbeat_period": None}, {}),
        ({"heartbeat_period": 0.5, "close_period": 1, "queued_ping_limit": 1, "text_only": True}, {}),
        (
            {"subprotocols": "chat", "allowed_origins": "https://a.example"},
            {"subprotocols": ("chat",), "allowed_origins": ("https://a.example",)},
        ),
        ({"subprotocols": ["b", "a"]}, {"subprotocols": ("b", "a")}),
    ],
)
def test_good_option_values_are_accepted(options: dict[str, Any], expected: dict[str, Any]) -> None:
    gateway = syncaerys.websocket(Recorder(), **options)
    for name, value in {**options, **expected}.items():
        assert getattr(gateway.options, name) == value


def test_allowed_origins_callable_is_kept() -> None:
    def check(origin: str | None) -> bool:
        return origin == "https://a.example"

    gateway = syncaerys.websocket(Recorder(), allowed_origins=check)
    assert gateway.options.allowed_origins is check
