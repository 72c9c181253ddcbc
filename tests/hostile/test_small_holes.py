"""Smaller holes: reason phrases, the CPU-lock directory, TLS past max_connections,
a second signal during on_stop, duplicate headers, Content-Length games, a missing Host (items 11-13)."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import syncaerys
from syncaerys.standalone.process import claim_cpu
from tests.test_handshake import exchange
from tests.test_handshake import header_values
from tests.test_handshake import upgrade_request
from tests.test_http import certificate  # noqa: F401  (a fixture)
from tests.test_run import echo_server
from tests.utils import PROMPTLY
from tests.utils import RawClient
from tests.utils import Recorder
from tests.utils import serve
from tests.utils import wait_until

# -- 11: the reason phrase


@pytest.mark.parametrize("reason", ["Nope\r\nSet-Cookie: stolen=1", "a\nb", "tab\x00", "snow ☃"])
def test_a_reason_phrase_with_line_breaks_or_controls_is_refused_when_set(reason: str) -> None:
    response = syncaerys.Response(403)
    with pytest.raises(ValueError, match="reason phrase"):
        response.reason = reason
    assert response.status_line == "403 Forbidden"


def test_a_handler_that_injects_through_the_reason_gets_a_500_and_no_extra_header() -> None:
    def deny(request: Any, response: syncaerys.Response) -> None:
        response.status = 403
        response.reason = request.args.get("why", "")

    recorder = Recorder(handshake=deny)
    with serve(recorder) as server:
        raw = upgrade_request(server.port).replace(b"GET /chat ", b"GET /chat?why=x%0D%0ASet-Cookie:%20stolen=1 ")
        status, headers, _ = exchange(server.port, raw)
    assert status == 500
    assert header_values(headers, "set-cookie") == []


# -- 12: the CPU-lock directory


def test_a_lock_directory_open_to_others_is_not_used(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    directory = tmp_path / "locks"
    directory.mkdir(mode=0o700)
    directory.chmod(0o777)
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs")
    assert claim_cpu(directory) is None
    assert "open to other users" in caplog.text
    assert list(directory.iterdir()) == []


def test_a_lock_directory_that_is_a_link_is_not_used(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    link = tmp_path / "locks"
    link.symlink_to(target)
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs")
    assert claim_cpu(link) is None
    assert "not a directory" in caplog.text


LINKED_LOCK = """
import os, sys
from pathlib import Path
from syncaerys.standalone.process import claim_cpu
directory = Path(sys.argv[1])
victim = Path(sys.argv[2])
for cpu in sorted(os.sched_getaffinity(0)):
    (directory / f"cpu{cpu}.lock").symlink_to(victim)
print(claim_cpu(directory))
"""


def test_lock_files_replaced_by_links_are_not_followed(tmp_path: Path) -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs")
    directory = tmp_path / "locks"
    directory.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_bytes(b"")
    done = subprocess.run(
        [sys.executable, "-c", LINKED_LOCK, str(directory), str(victim)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "None"  # every lock was a link: nothing claimed through one


# -- 13: TLS past max_connections


def test_past_max_connections_a_tls_client_sees_a_closed_connection_not_plaintext(
    certificate: tuple[str, str],  # noqa: F811
) -> None:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    recorder = Recorder()
    server = syncaerys.Server(syncaerys.websocket(recorder), port=0, ssl_context=context, max_connections=1)
    with server:
        # The first connection takes the only slot (its TLS handshake waits in its thread).
        holder = socket.create_connection(("127.0.0.1", server.port), timeout=PROMPTLY)
        with holder, socket.create_connection(("127.0.0.1", server.port), timeout=PROMPTLY) as raw:
            raw.settimeout(PROMPTLY)
            raw.sendall(b"\x16\x03\x01\x00\x05hello")  # the start of a ClientHello
            assert raw.recv(100) == b""  # closed, and no "HTTP/1.1 503" in plaintext


# -- 13: a second signal while on_stop blocks

BLOCKING_STOP = """
import sys, threading
import syncaerys

class Stuck(syncaerys.Websocket):
    def on_stop(self):
        print("in on_stop", flush=True)
        threading.Event().wait(60)

port = int(sys.argv[sys.argv.index("--port") + 1])
syncaerys.run(syncaerys.websocket(Stuck(), close_period=60.0), host="127.0.0.1", port=port)
"""


def test_a_second_signal_while_on_stop_blocks_stops_at_once_without_blaming_on_stop(tmp_path: Path) -> None:
    script = tmp_path / "blocking_stop.py"
    script.write_text(BLOCKING_STOP)
    with echo_server(tmp_path, "blocking-stop", script) as (process, port), RawClient(port) as client:
        assert client.status == 101
        process.send_signal(signal.SIGTERM)
        log = tmp_path / "blocking-stop.log"
        wait_until(lambda: "in on_stop" in log.read_text(), timeout=2 * PROMPTLY)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=2 * PROMPTLY) == 0
    output = log.read_text()
    assert "exception in on_stop" not in output, output
    assert "stopping at once" in output


# -- 13: duplicate headers, lengths, Host


def test_our_own_rejections_carry_one_connection_close() -> None:
    with serve(Recorder()) as server:
        status, headers, _ = exchange(server.port, upgrade_request(server.port, method="POST"))
    assert status == 405
    assert header_values(headers, "connection") == ["close"]


@pytest.mark.parametrize(
    "extra",
    [
        b"Content-Length: 5\r\nContent-Length: 0\r\n",
        b"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n",
    ],
    ids=["two-lengths", "length-and-chunked"],
)
def test_conflicting_lengths_get_400(extra: bytes) -> None:
    recorder = Recorder()
    with serve(recorder) as server:
        raw = upgrade_request(server.port).replace(b"\r\n\r\n", b"\r\n" + extra + b"\r\n", 1)
        with socket.create_connection(("127.0.0.1", server.port), timeout=PROMPTLY) as sock:
            sock.sendall(raw + b"hello")
            answer = sock.recv(200)
    assert answer.startswith(b"HTTP/1.1 400") or answer.startswith(b"HTTP/1.0 400"), answer
    assert "handshake" not in recorder.kinds()


def test_an_upgrade_without_host_gets_400() -> None:
    recorder = Recorder()
    with serve(recorder) as server:
        status, _, body = exchange(server.port, upgrade_request(server.port, headers={"Host": None}))
    assert status == 400 and b"Host" in body
    assert "handshake" not in recorder.kinds()
