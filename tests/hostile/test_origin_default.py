"""Cross-site WebSocket hijacking is refused by default."""

from __future__ import annotations

import socket

import pytest

from syncaerys.protocol.handshake import check_origin
from tests.test_handshake import upgrade_request
from tests.utils import PROMPTLY
from tests.utils import Recorder
from tests.utils import serve


def exchange(port: int, raw: bytes) -> tuple[int, None, None]:
    """Send a request; the status of the answer (a 101 keeps the connection, so only the head is read)."""
    with socket.create_connection(("127.0.0.1", port), timeout=PROMPTLY) as sock:
        sock.sendall(raw)
        head = b""
        while b"\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    return int(head.split(b" ", 2)[1]), None, None


def status_for(origin: str | None, host: str | None = None, **options: object) -> tuple[int, list[str]]:
    recorder = Recorder()
    with serve(recorder, **options) as server:
        headers = {"Origin": origin, "Cookie": "session=victim"}
        if host is not None:
            headers["Host"] = host
        status, _, _ = exchange(server.port, upgrade_request(server.port, headers=headers))
    return status, recorder.kinds()


def test_a_cross_site_origin_with_the_victims_cookie_gets_403_and_never_reaches_on_handshake() -> None:
    status, kinds = status_for("https://evil.example")
    assert status == 403
    assert "handshake" not in kinds


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        (None, None),  # not a browser: no Origin header
        ("http://127.0.0.1:{port}", None),
        ("HTTP://127.0.0.1:{port}", None),
        ("https://chat.example", "chat.example"),  # TLS ended at a proxy: the scheme differs
        ("https://chat.example", "chat.example:443"),
        ("http://chat.example:8080", "chat.example:8080"),
    ],
)
def test_same_origin_and_no_origin_pass_by_default(origin: str | None, host: str | None) -> None:
    recorder = Recorder()
    # A public Host on this loopback test server is the proxy case; allowed_hosts is tested on its own.
    with serve(recorder, **({} if host is None else {"allowed_hosts": [host]})) as server:
        headers = {"Origin": origin.format(port=server.port) if origin else None}
        if host is not None:
            headers["Host"] = host
        status, _, _ = exchange(server.port, upgrade_request(server.port, headers=headers))
    assert status == 101


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("http://chat.example:8080", "chat.example"),
        ("http://chat.example.evil.example", "chat.example"),
        ("null", "chat.example"),  # sandboxed iframes, file: pages
        ("chat.example", "chat.example"),
    ],
)
def test_near_misses_are_refused(origin: str, host: str) -> None:
    assert check_origin(origin, "same-origin", host) is not None
    assert check_origin(origin, "same-origin", None) is not None


def test_star_or_none_turns_the_check_off_and_lists_still_work() -> None:
    assert status_for("https://evil.example", allowed_origins="*")[0] == 101
    assert status_for("https://evil.example", allowed_origins=None)[0] == 101
    assert status_for("https://app.example", allowed_origins=["https://app.example"])[0] == 101
    assert status_for("https://evil.example", allowed_origins=["https://app.example"])[0] == 403
