"""Values from the request reach log lines with their control characters escaped (no forged lines)."""

from __future__ import annotations

import logging

import pytest

from syncaerys.protocol.logsafe import printable
from tests.utils import RawClient
from tests.utils import Recorder
from tests.utils import serve


def test_a_path_with_a_line_break_does_not_forge_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    """Before: ``GET /chat%0a<fake line>`` was upgraded and the decoded path went into "opened from ... on PATH"."""
    caplog.set_level(logging.DEBUG, logger="syncaerys")
    recorder = Recorder()
    forged = "2026-12-06 12:00:00 INFO syncaerys.connection: client 1: opened from 10.0.0.1 on /admin"
    with serve(recorder, heartbeat_period=None) as server:
        path = "/chat%0a" + forged.replace(" ", "%20") + "%0d%1b[2J%c2%85"
        with RawClient(server.port, path=path) as client:
            assert client.status == 101
            recorder.wait_event("open")
            client.send_frame(0x8, b"\x03\xe8")
            client.recv_close()
        recorder.wait_event("close")
    opened = [r.getMessage() for r in caplog.records if "opened from" in r.getMessage()]
    assert len(opened) == 1
    # WSGI paths are latin-1 (PEP 3333): U+0085 (NEL, a line break to some tools) arrives as "Â\x85".
    assert opened[0].endswith("on /chat\\n" + forged + "\\r\\x1b[2J\u00c2\\x85")
    for record in caplog.records:
        message = record.getMessage()
        assert not any(c in message for c in "\n\r\x1b\x85\u2028"), message


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("/plain/é/路径", "/plain/é/路径"),
        ("a\nb", "a\\nb"),
        ("\x00\x07\x7f\x85\x9f", "\\x00\\x07\\x7f\\x85\\x9f"),
        ("\u2028\u2029", "\\u2028\\u2029"),
        ("tab\tcr\r", "tab\\tcr\\r"),
    ],
)
def test_printable(value: str, shown: str) -> None:
    assert printable(value) == shown
