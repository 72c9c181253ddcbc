"""DNS rebinding: a server bound to loopback serves loopback Host names only, unless told otherwise.

After rebinding, a page of ``rebind.attacker.example`` talks to 127.0.0.1 with
its own name in both Host and Origin, so the same-origin check passes: before,
the handshake was upgraded. As Jupyter and webpack's dev server do, a loopback
bind now refuses other names (403); ``allowed_hosts`` lists names otherwise
(Django's ``ALLOWED_HOSTS``).
"""

from __future__ import annotations

import base64
import logging
import os
import socket

import pytest

import syncaerys
from syncaerys import OptionError
from syncaerys.protocol.handshake import LOOPBACK_IF_LOCAL
from syncaerys.protocol.handshake import check_host
from tests.utils import PROMPTLY
from tests.utils import Recorder
from tests.utils import serve


def handshake_status(port: int, host: str, origin: str | None = None, extra: str | None = None) -> int:
    """The status of a handshake to 127.0.0.1:port sent with ``Host: host``."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET / HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    if extra is not None:
        lines.append(extra)
    with socket.create_connection(("127.0.0.1", port), timeout=PROMPTLY) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    return int(head.split(b" ", 2)[1])


def test_a_rebound_name_is_refused_on_a_loopback_bind(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="syncaerys")
    recorder = Recorder()
    with serve(recorder) as server:
        port = server.port
        name = f"rebind.attacker.example:{port}"
        assert handshake_status(port, name, origin=f"http://{name}") == 403
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"app.localhost:{port}", f"[::1]:{port}", "127.1.2.3"):
            assert handshake_status(port, host) == 101, host
    assert "open" in recorder.kinds()
    refused = [r.getMessage() for r in caplog.records if "refused with 403" in r.getMessage()]
    assert len(refused) == 1 and "rebind.attacker.example" in refused[0] and "allowed_hosts" in refused[0]


def test_allowed_hosts_lists_the_names_served() -> None:
    with serve(Recorder(), allowed_hosts=["Chat.Example.com", ".example.org", "[::1]"]) as server:
        port = server.port
        assert handshake_status(port, f"chat.example.com:{port}") == 101
        assert handshake_status(port, "example.org") == 101
        assert handshake_status(port, "a.b.example.org") == 101
        assert handshake_status(port, f"[::1]:{port}") == 101
        assert handshake_status(port, "badexample.org") == 403
        assert handshake_status(port, f"127.0.0.1:{port}") == 403  # a list is the whole list


def test_allowed_hosts_none_turns_the_check_off() -> None:
    with serve(Recorder(), allowed_hosts=None) as server:
        assert handshake_status(server.port, "anything.example") == 101


def test_through_a_trusted_proxy_the_loopback_default_does_not_apply() -> None:
    """The README's nginx setup: syncaerys on 127.0.0.1 behind a proxy that passes the public Host."""
    with syncaerys.Server(syncaerys.websocket(Recorder()), port=0, trusted_proxies=["127.0.0.1"]) as server:
        assert handshake_status(server.port, "chat.example.com") == 101


@pytest.mark.parametrize(
    "header", ["X-Forwarded-For: 203.0.113.9", "Forwarded: for=203.0.113.9", "X-Real-IP: 203.0.113.9", "Via: 1.1 nginx"]
)
def test_a_request_through_any_proxy_is_not_held_to_the_loopback_default(header: str) -> None:
    """gunicorn or werkzeug on 127.0.0.1 behind nginx: no trusted_proxies there, but nginx adds its headers."""
    with serve(Recorder()) as server:
        assert handshake_status(server.port, "chat.example.com", extra=header) == 101
        assert handshake_status(server.port, "chat.example.com") == 403


def test_on_other_binds_the_default_checks_nothing() -> None:
    # Sans-I/O: a test server binds loopback only.
    assert check_host("chat.example.com", LOOPBACK_IF_LOCAL, loopback_bind=False) is None
    assert check_host("chat.example.com", LOOPBACK_IF_LOCAL, loopback_bind=True) is not None
    assert check_host(None, LOOPBACK_IF_LOCAL, loopback_bind=True) is not None
    assert check_host("[::ffff:127.0.0.1]:80", LOOPBACK_IF_LOCAL, loopback_bind=True) is None
    assert check_host("::1", LOOPBACK_IF_LOCAL, loopback_bind=True) is not None  # no brackets: malformed


@pytest.mark.parametrize("value", [5, [5], ["a b"], ["http://x"], [""], ["[::1"]])
def test_allowed_hosts_is_validated(value: object) -> None:
    with pytest.raises(OptionError, match="allowed_hosts"):
        syncaerys.websocket(Recorder(), allowed_hosts=value)  # type: ignore[arg-type]
