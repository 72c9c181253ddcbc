"""What a newcomer writes in ``on_handshake`` to deny, and what the client and the log get for it."""

from __future__ import annotations

import logging
from typing import Any

import flask
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

import syncaerys
from tests.utils import PROMPTLY
from tests.utils import Recorder
from tests.utils import serve
from tests.utils import url


def refused(server: syncaerys.Server, **headers: str) -> tuple[int, bytes]:
    with pytest.raises(InvalidStatus) as error:
        connect(url(server), open_timeout=PROMPTLY, additional_headers=headers)
    return error.value.response.status_code, bytes(error.value.response.body or b"")


@pytest.mark.parametrize("returned", [("forbidden", 403), ("forbidden", 403, {}), 403, False], ids=repr)
def test_a_return_value_that_looks_like_a_denial_is_refused_not_accepted(
    returned: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # These accepted the client and reached on_open as its handshake data.
    recorder = Recorder(handshake=lambda request, response: returned)
    with serve(recorder) as server, caplog.at_level(logging.ERROR, logger="syncaerys.gateway"):
        assert refused(server)[0] == 500
    assert "open" not in recorder.kinds()
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("would accept the client" in m and "response.status" in m for m in messages), messages


def test_data_that_is_no_denial_still_reaches_on_open() -> None:
    recorder = Recorder(handshake=lambda request, response: ("ann", "admin"))
    with serve(recorder) as server, connect(url(server), open_timeout=PROMPTLY):
        assert recorder.wait_event("open")[2] == ("ann", "admin")


def test_flask_abort_denies_with_its_status(caplog: pytest.LogCaptureFixture) -> None:
    # It was a 500 with a traceback.
    def handshake(request: Any, response: Any) -> None:
        flask.abort(403)

    with serve(Recorder(handshake=handshake)) as server, caplog.at_level(logging.INFO, logger="syncaerys.gateway"):
        assert refused(server)[0] == 403
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("denied by on_handshake with 403" in r.getMessage() for r in caplog.records)


def test_a_body_without_a_denying_status_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    # The body was dropped and the client accepted.
    recorder = Recorder(handshake=lambda request, response: response.send("go away"))
    with serve(recorder) as server, caplog.at_level(logging.ERROR, logger="syncaerys.gateway"):
        assert refused(server)[0] == 500
    assert "open" not in recorder.kinds()
    assert any("left the status at 101" in r.getMessage() for r in caplog.records)


def test_a_denial_by_response_status_is_logged_with_its_status(caplog: pytest.LogCaptureFixture) -> None:
    def handshake(request: Any, response: Any) -> None:
        response.status = 403
        response.send("no")

    with serve(Recorder(handshake=handshake)) as server, caplog.at_level(logging.INFO, logger="syncaerys.gateway"):
        assert refused(server) == (403, b"no")
    assert any("denied by on_handshake with 403" in r.getMessage() for r in caplog.records), caplog.records


def test_the_origin_refusal_log_shows_the_origin_and_host_compared(caplog: pytest.LogCaptureFixture) -> None:
    with serve(Recorder()) as server, caplog.at_level(logging.INFO, logger="syncaerys.gateway"):
        assert refused(server, Origin="https://evil.example")[0] == 403
    lines = [r.getMessage() for r in caplog.records if "Origin forbidden" in r.getMessage()]
    assert lines and "'https://evil.example'" in lines[0] and f"'127.0.0.1:{server.port}'" in lines[0], lines
