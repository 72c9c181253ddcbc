"""The flask-sock porting guide's whole app: the session login reaches on_handshake, per-client state, abort."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

import syncaerys
from tests.docs.blocks import collect
from tests.utils import PROMPTLY

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "howto" / "flask-sock.md"


def guide_app() -> Any:
    block = next(b for b in collect(GUIDE) if "client_data" in b.code)
    namespace: dict[str, Any] = {"__name__": "ported_chat"}
    exec(compile(block.code, str(GUIDE), "exec"), namespace)
    return namespace["app"]


def log_in(port: int, name: str) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=PROMPTLY)
    try:
        connection.request("POST", f"/login/{name}")
        reply = connection.getresponse()
        assert reply.status == 204
        return reply.getheader("Set-Cookie", "").split(";", 1)[0]
    finally:
        connection.close()


def test_the_session_login_per_client_state_and_abort_work_as_the_guide_says() -> None:
    with syncaerys.Server(guide_app(), port=0) as server:
        cookie = log_in(server.port, "ann")
        address = f"ws://127.0.0.1:{server.port}/chat/kitchen"
        with connect(address, additional_headers={"Cookie": cookie}, open_timeout=PROMPTLY) as ann:
            assert json.loads(ann.recv(timeout=PROMPTLY)) == {"type": "welcome", "user": "ann", "room": "kitchen"}
            with connect(address, open_timeout=PROMPTLY) as guest:
                assert json.loads(guest.recv(timeout=PROMPTLY))["user"] == "guest"
                ann.send(json.dumps({"text": "héllo"}))
                for ws in (ann, guest):  # the room's members, each with its own user in its client_data
                    assert json.loads(ws.recv(timeout=PROMPTLY)) == {
                        "type": "message",
                        "user": "ann",
                        "text": "héllo",
                        "length": 5,
                    }
        banned = log_in(server.port, "banned")
        with pytest.raises(InvalidStatus) as refused:
            connect(address, additional_headers={"Cookie": banned}, open_timeout=PROMPTLY)
        assert refused.value.response.status_code == 403
