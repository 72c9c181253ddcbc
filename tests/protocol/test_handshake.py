"""Opening-handshake checks (RFC 6455 4.2.1), Origin checks, the accept key and the 101 response."""

from __future__ import annotations

import base64
import hashlib
import re

import h11
import pytest
from werkzeug.datastructures import Headers
from wsproto import ConnectionType
from wsproto import WSConnection
from wsproto.events import AcceptConnection
from wsproto.events import Request

from syncaerys.protocol.deflate import DeflateParams
from syncaerys.protocol.handshake import Accept
from syncaerys.protocol.handshake import Rejection
from syncaerys.protocol.handshake import accept
from syncaerys.protocol.handshake import accept_key
from syncaerys.protocol.handshake import check_origin
from syncaerys.protocol.handshake import check_request
from syncaerys.protocol.handshake import choose_subprotocol
from syncaerys.protocol.handshake import offered_subprotocols
from syncaerys.protocol.handshake import response_101

RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

VALID = {
    "Host": "example.com",
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": RFC_KEY,
    "Sec-WebSocket-Version": "13",
}


def headers(**changes: str | None) -> Headers:
    """The valid request headers with some replaced (``None`` removes one); keys use _ for -."""
    values = dict(VALID)
    for name, value in changes.items():
        name = name.replace("_", "-")
        match = next((key for key in values if key.lower() == name.lower()), name)
        if value is None:
            values.pop(match, None)
        else:
            values[match] = value
    return Headers(list(values.items()))


def check(
    method: str = "GET", version: str = "HTTP/1.1", has_body: bool = False, **changes: str | None
) -> Rejection | None:
    return check_request(method, version, headers(**changes), has_body)


# -- check_request


def test_valid_request_is_accepted() -> None:
    assert check() is None


@pytest.mark.parametrize(
    "changes",
    [
        {"Upgrade": "WebSocket"},
        {"Upgrade": "h2c, websocket"},
        {"Connection": "keep-alive, Upgrade"},
        {"Connection": "upgrade"},
        {"Connection": "Keep-Alive,UPGRADE"},
        {"Sec-WebSocket-Key": " " + RFC_KEY + " "},
        {"Sec-WebSocket-Key": base64.b64encode(bytes(range(16))).decode()},
    ],
)
def test_valid_variants_are_accepted(changes: dict[str, str]) -> None:
    assert check(**changes) is None  # type: ignore[arg-type]


def test_header_names_are_case_insensitive() -> None:
    lowered = Headers([(name.lower(), value) for name, value in VALID.items()])
    assert check_request("GET", "HTTP/1.1", lowered, False) is None


@pytest.mark.parametrize("method", ["POST", "HEAD", "PUT", "OPTIONS", "get"])
def test_method_not_get_is_405_with_allow(method: str) -> None:
    rejection = check(method=method)
    assert rejection is not None
    assert rejection.status == 405
    assert ("Allow", "GET") in rejection.headers
    assert rejection.status_line == "405 Method Not Allowed"


@pytest.mark.parametrize("version", ["HTTP/1.0", "HTTP/2", "HTTP/2.0", "HTTP/0.9", ""])
def test_http_version_not_1_1_is_505(version: str) -> None:
    rejection = check(version=version)
    assert rejection is not None
    assert rejection.status == 505
    assert rejection.status_line == "505 HTTP Version Not Supported"


def test_request_with_a_body_is_400() -> None:
    rejection = check(has_body=True)
    assert rejection is not None
    assert rejection.status == 400
    assert rejection.reason == "Entity body disallowed for websocket endpoint"


@pytest.mark.parametrize("upgrade", [None, "", "h2c", "websocket2", "web socket"])
def test_missing_upgrade_websocket_is_426(upgrade: str | None) -> None:
    rejection = check(Upgrade=upgrade)
    assert rejection is not None
    assert rejection.status == 426
    assert ("Upgrade", "websocket") in rejection.headers
    assert rejection.status_line == "426 Upgrade Required"


@pytest.mark.parametrize("connection", [None, "", "keep-alive", "close", "upgrades"])
def test_missing_connection_upgrade_is_426(connection: str | None) -> None:
    rejection = check(Connection=connection)
    assert rejection is not None
    assert rejection.status == 426
    assert rejection.reason == '"Connection: Upgrade" header required'


@pytest.mark.parametrize(
    "key",
    [
        None,
        "",
        "   ",
        "not base64!",
        base64.b64encode(b"x" * 15).decode(),
        base64.b64encode(b"x" * 17).decode(),
        RFC_KEY.rstrip("="),
        "dGhlIHNhbXBsZSBub25jZQ==dGhl",
    ],
)
def test_missing_or_malformed_key_is_400(key: str | None) -> None:
    rejection = check(Sec_WebSocket_Key=key)
    assert rejection is not None
    assert rejection.status == 400
    assert "Sec-WebSocket-Key" in rejection.reason


@pytest.mark.parametrize("version", [None, "", "12", "8", "14", "130"])
def test_version_not_13_is_426_with_version_header(version: str | None) -> None:
    rejection = check(Sec_WebSocket_Version=version)
    assert rejection is not None
    assert rejection.status == 426
    assert ("Sec-WebSocket-Version", "13") in rejection.headers


@pytest.mark.parametrize(
    ("arguments", "status"),
    [
        ({"method": "POST", "version": "HTTP/1.0", "has_body": True, "Upgrade": None}, 405),
        ({"version": "HTTP/1.0", "has_body": True, "Upgrade": None}, 505),
        ({"has_body": True, "Upgrade": None, "Connection": None}, 400),
        ({"Upgrade": None, "Connection": None, "Sec_WebSocket_Key": None}, 426),
        ({"Connection": None, "Sec_WebSocket_Key": None, "Sec_WebSocket_Version": "12"}, 426),
        ({"Sec_WebSocket_Key": None, "Sec_WebSocket_Version": "12"}, 400),
    ],
)
def test_checks_apply_in_the_spec_order(arguments: dict[str, object], status: int) -> None:
    rejection = check(**arguments)  # type: ignore[arg-type]
    assert rejection is not None
    assert rejection.status == status


def test_connection_check_precedes_the_key_check() -> None:
    rejection = check(Connection=None, Sec_WebSocket_Key=None)
    assert rejection is not None
    assert rejection.reason == '"Connection: Upgrade" header required'


def test_rejection_body_names_status_and_reason() -> None:
    rejection = check(method="POST")
    assert rejection is not None
    assert rejection.body.startswith(b"405 Method Not Allowed: ")
    assert rejection.reason.encode() in rejection.body


# -- check_origin


def test_no_allowed_origins_means_no_check() -> None:
    assert check_origin("https://anything.example", None) is None
    assert check_origin(None, None) is None


@pytest.mark.parametrize(
    ("origin", "ok"),
    [
        ("https://app.example.com", True),
        ("https://other.example.com", False),
        ("https://app.example.com.evil.net", False),
        ("https://app.example.co", False),
        (None, False),
        ("", False),
    ],
)
def test_origin_strings_match_exactly(origin: str | None, ok: bool) -> None:
    rejection = check_origin(origin, ["http://localhost:8000", "https://app.example.com"])
    if ok:
        assert rejection is None
    else:
        assert rejection is not None
        assert rejection.status == 403


@pytest.mark.parametrize(
    ("origin", "ok"),
    [
        ("https://app.example.com", True),
        ("https://www.example.com", True),
        ("https://app.example.com.evil.net", False),  # a search would match; fullmatch does not
        ("xhttps://app.example.com", False),
        ("https://example.com", False),
        (None, False),
    ],
)
def test_origin_regexes_fullmatch(origin: str | None, ok: bool) -> None:
    rejection = check_origin(origin, [re.compile(r"https://[a-z]+\.example\.com")])
    assert (rejection is None) is ok
    if rejection is not None:
        assert rejection.status == 403


def test_none_entry_accepts_requests_without_origin() -> None:
    allowed = [None, "https://app.example.com"]
    assert check_origin(None, allowed) is None
    assert check_origin("https://app.example.com", allowed) is None
    rejection = check_origin("https://evil.example", allowed)
    assert rejection is not None
    assert rejection.status == 403


def test_empty_allowed_origins_refuse_everything() -> None:
    for origin in (None, "", "https://app.example.com"):
        rejection = check_origin(origin, [])
        assert rejection is not None
        assert rejection.status == 403


def test_mixed_entries_in_a_tuple() -> None:
    allowed = ("https://a.example", re.compile(r"https://.*\.b\.example"), None)
    assert check_origin("https://a.example", allowed) is None
    assert check_origin("https://x.b.example", allowed) is None
    assert check_origin(None, allowed) is None
    assert check_origin("https://b.example", allowed) is not None


def test_callable_decides_and_receives_the_origin() -> None:
    seen: list[str | None] = []

    def allow(origin: str | None) -> bool:
        seen.append(origin)
        return origin is not None and origin.endswith(".trusted.example")

    assert check_origin("https://app.trusted.example", allow) is None
    rejection = check_origin("https://app.example", allow)
    assert rejection is not None
    assert rejection.status == 403
    assert check_origin(None, allow) is not None
    assert seen == ["https://app.trusted.example", "https://app.example", None]


def test_callable_result_is_taken_for_its_truth() -> None:
    assert check_origin("https://x", lambda origin: 1) is None  # type: ignore[arg-type]
    assert check_origin("https://x", lambda origin: "") is not None  # type: ignore[arg-type]


# -- accept_key


def test_accept_key_rfc_vector() -> None:
    assert accept_key(RFC_KEY) == RFC_ACCEPT


def test_accept_key_aerys_vector() -> None:
    assert accept_key("x3JJHMbDL1EzLkh9GBhXDw==") == "HSmrc0sMlYUkAGmm5OPpG2HaGWk="


def test_accept_key_matches_the_rfc_formula() -> None:
    key = base64.b64encode(bytes(range(100, 116))).decode()
    expected = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
    assert accept_key(key) == expected.decode()


# -- response_101


def test_response_101_exact_bytes() -> None:
    assert response_101(RFC_KEY, None, []) == (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        b"\r\n"
    )


def test_response_101_with_subprotocol_and_extra_headers() -> None:
    head = response_101(RFC_KEY, "chat", [("Set-Cookie", "session=abc; HttpOnly"), ("X-Served-By", "syncaerys")])
    assert head.endswith(b"\r\n\r\n")
    assert head.count(b"\r\n\r\n") == 1  # no body
    lines = head[:-4].split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 101 Switching Protocols"
    assert b"Sec-WebSocket-Protocol: chat" in lines
    assert b"Set-Cookie: session=abc; HttpOnly" in lines
    assert b"X-Served-By: syncaerys" in lines
    assert b"Sec-WebSocket-Accept: " + RFC_ACCEPT.encode() in lines


def test_response_101_parses_as_http() -> None:
    client = h11.Connection(h11.CLIENT)
    proposal = [("Host", "example.com"), ("Upgrade", "websocket"), ("Connection", "Upgrade")]
    client.send(h11.Request(method="GET", target="/", headers=proposal))
    client.receive_data(response_101(RFC_KEY, "chat", [("X-Extra", "1")]))
    event = client.next_event()
    assert isinstance(event, h11.InformationalResponse)
    assert event.status_code == 101
    received = {name.decode(): value.decode() for name, value in event.headers}
    assert received["sec-websocket-accept"] == RFC_ACCEPT
    assert received["sec-websocket-protocol"] == "chat"
    assert received["x-extra"] == "1"


@pytest.mark.parametrize("subprotocol", [None, "chat"])
def test_wsproto_client_accepts_the_101(subprotocol: str | None) -> None:
    client = WSConnection(ConnectionType.CLIENT)
    offered = ["chat", "superchat"] if subprotocol else []
    request = client.send(Request(host="example.com", target="/ws", subprotocols=offered))
    key = next(
        line.split(b":", 1)[1].strip().decode()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    assert check_request("GET", "HTTP/1.1", Headers(_request_headers(request)), False) is None
    client.receive_data(response_101(key, subprotocol, []))
    events = list(client.events())
    assert len(events) == 1
    assert isinstance(events[0], AcceptConnection)
    assert events[0].subprotocol == subprotocol


def _request_headers(request: bytes) -> list[tuple[str, str]]:
    lines = request.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]
    return [(name.decode(), value.strip().decode()) for name, value in (line.split(b":", 1) for line in lines)]


@pytest.mark.parametrize(
    "header",
    [
        ("X-Injected", "a\r\nSet-Cookie: evil=1"),
        ("X-Injected", "a\nb"),
        ("X-Injected", "a\rb"),
        ("X-Injected\r\nSet-Cookie", "evil=1"),
        ("X\nY", "1"),
    ],
)
def test_response_101_refuses_line_breaks_in_headers(header: tuple[str, str]) -> None:
    with pytest.raises(ValueError, match="line break"):
        response_101(RFC_KEY, None, [("X-Fine", "ok"), header])


# -- offered_subprotocols


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, []),
        ("", []),
        ("chat", ["chat"]),
        ("chat, superchat", ["chat", "superchat"]),
        (" a ,, b ,", ["a", "b"]),
    ],
)
def test_offered_subprotocols(header: str | None, expected: list[str]) -> None:
    assert offered_subprotocols(header) == expected


# -- choose_subprotocol and accept: the decisions once the application let the request through


@pytest.mark.parametrize(
    ("header", "supported", "expected"),
    [
        ("chat, superchat", ["superchat", "chat"], "superchat"),  # the server's order decides
        ("chat", ["superchat"], None),
        (None, ["chat"], None),
        ("chat", [], None),
    ],
)
def test_choose_subprotocol(header: str | None, supported: list[str], expected: str | None) -> None:
    assert choose_subprotocol(header, supported) == expected


def test_accept_gives_the_101_and_what_was_agreed() -> None:
    outcome = accept(headers(sec_websocket_protocol="chat"), 101, "chat", [("X-Mine", "1")], None)
    assert outcome == Accept(response_101(RFC_KEY, "chat", [("X-Mine", "1")]), "chat", None)


def test_accept_negotiates_deflate_only_when_the_server_compresses() -> None:
    offer = "permessage-deflate; client_max_window_bits"
    outcome = accept(headers(sec_websocket_extensions=offer), 101, None, [], 12)
    assert isinstance(outcome, Accept)
    assert isinstance(outcome.deflate, DeflateParams)
    assert f"Sec-WebSocket-Extensions: {outcome.deflate.response_header()}\r\n".encode() in outcome.head
    off = accept(headers(sec_websocket_extensions=offer), 101, None, [], None)
    assert isinstance(off, Accept)
    assert off.deflate is None
    assert b"Sec-WebSocket-Extensions" not in off.head


@pytest.mark.parametrize(
    ("status", "subprotocol", "extra", "reason", "detail"),
    [
        (200, None, [], "invalid handshake status", "on_handshake set status 200; 101 or 300-599 required"),
        (101, "other", [], "invalid subprotocol", "on_handshake chose subprotocol 'other', which the client"),
        (101, None, [("X-Bad", "a\r\nb")], "header 'X-Bad' contains a line break", "cannot upgrade: header"),
    ],
)
def test_accept_refuses_what_the_application_got_wrong_with_500(
    status: int, subprotocol: str | None, extra: list[tuple[str, str]], reason: str, detail: str
) -> None:
    outcome = accept(headers(sec_websocket_protocol="chat"), status, subprotocol, extra, None)
    assert isinstance(outcome, Rejection)
    assert (outcome.status, outcome.reason) == (500, reason)
    assert outcome.detail.startswith(detail)
    assert detail not in outcome.body.decode()  # the log's words are not sent
