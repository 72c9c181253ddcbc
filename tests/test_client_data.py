"""``endpoint.client_data(client_id)``: per-client state without a dict keyed by id, a lock or a cleanup."""

from __future__ import annotations

from typing import Any

import pytest
from websockets.sync.client import connect

import syncaerys
from syncaerys import ClientException
from syncaerys import Message
from tests.utils import PROMPTLY
from tests.utils import serve
from tests.utils import url
from tests.utils import wait_until


class Counter(syncaerys.Websocket):
    """What a flask-sock handler kept in local variables: the user and a count of messages."""

    def __init__(self) -> None:
        self.farewells: dict[str, int] = {}

    def on_start(self, endpoint: syncaerys.Endpoint) -> None:
        self.endpoint = endpoint

    def on_handshake(self, request: Any, response: Any) -> Any:
        return request.args["user"]

    def on_open(self, client_id: int, user: str) -> None:
        data = self.endpoint.client_data(client_id)
        data["user"], data["count"] = user, 0

    def on_data(self, client_id: int, message: Message) -> None:
        data = self.endpoint.client_data(client_id)
        data["count"] += 1
        self.endpoint.send(f"{data['user']} #{data['count']}: {message.result()!s}", client_id)

    def on_close(self, client_id: int, code: int, reason: str) -> None:
        data = self.endpoint.client_data(client_id)  # still there during on_close
        self.farewells[data["user"]] = data["count"]


def test_each_client_has_its_own_data_until_the_end_of_on_close() -> None:
    handler = Counter()
    with serve(handler) as server:
        with connect(url(server, "/?user=ann")) as ann, connect(url(server, "/?user=bob")) as bob:
            ann.send("a")
            assert ann.recv(timeout=PROMPTLY) == "ann #1: a"
            bob.send("b")
            assert bob.recv(timeout=PROMPTLY) == "bob #1: b"
            ann.send("c")
            assert ann.recv(timeout=PROMPTLY) == "ann #2: c"
            ids = handler.endpoint.get_clients()
        wait_until(lambda: len(handler.farewells) == 2)
        assert handler.farewells == {"ann": 2, "bob": 1}
        for client_id in ids:  # gone with the client: nothing to clean up
            with pytest.raises(ClientException, match=f"client {client_id} is not a client of this process"):
                handler.endpoint.client_data(client_id)
        with pytest.raises(TypeError):
            handler.endpoint.client_data("1")  # type: ignore[arg-type]
