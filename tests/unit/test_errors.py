"""Errors by whose fault they are, and the one boundary between redis-py's errors and syncaerys's."""

from __future__ import annotations

from typing import Any

import pytest
import redis

import syncaerys
from syncaerys.backplane.errors import redis_errors
from syncaerys.exceptions import HostError
from syncaerys.protocol.frames import OP_TEXT
from tests.utils import PROMPTLY
from tests.utils import RawClient
from tests.utils import Recorder
from tests.utils import client_frame
from tests.utils import serve


def test_the_tree() -> None:
    for name in ("UnknownClient", "ClientClosed", "BackplaneError"):
        assert issubclass(getattr(syncaerys, name), syncaerys.ClientException)
    assert not issubclass(syncaerys.UnknownClient, syncaerys.ClientClosed)
    assert not issubclass(syncaerys.ClientClosed, syncaerys.UnknownClient)
    assert issubclass(HostError, syncaerys.SyncaerysError)
    assert issubclass(HostError, RuntimeError)  # what caught it before still does


def test_a_send_to_an_id_nobody_has_is_unknown_client() -> None:
    recorder = Recorder()
    with serve(recorder):
        recorder.wait_event("start")
        with pytest.raises(syncaerys.UnknownClient, match="client 12345 is not open"):
            recorder.endpoint.send("hello", 12345).result(PROMPTLY)


def test_a_message_cut_short_by_the_peer_is_client_closed() -> None:
    raised: list[BaseException] = []

    def read(recorder: Recorder, client_id: int, message: Any) -> None:
        try:
            message.result(timeout=PROMPTLY)
        except syncaerys.ClientException as error:
            raised.append(error)
        recorder.record("read", client_id)

    recorder = Recorder(on_data=read)
    with serve(recorder) as server:
        with RawClient(server.port) as client:
            assert client.status == 101
            client.send(client_frame(OP_TEXT, b"the first half", fin=False))
            recorder.wait_event("open")
        recorder.wait_event("read")  # the TCP connection dropped mid-message
    assert len(raised) == 1 and isinstance(raised[0], syncaerys.ClientClosed), raised


@pytest.mark.parametrize("error", [redis.ConnectionError("refused"), redis.TimeoutError("slow"), OSError("reset")])
def test_redis_errors_become_a_chained_backplane_error(error: Exception) -> None:
    with pytest.raises(syncaerys.BackplaneError) as raised, redis_errors("could not publish to Redis"):
        raise error
    assert str(raised.value) == f"could not publish to Redis: {error}"
    assert raised.value.__cause__ is error


def test_other_errors_pass_through_redis_errors() -> None:
    with pytest.raises(ValueError, match="not redis"), redis_errors("x"):
        raise ValueError("not redis")
