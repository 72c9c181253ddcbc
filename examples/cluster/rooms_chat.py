"""A chat with rooms, served by as many processes as you like, sharing one Redis.

Start Redis (``apt-get install redis-server``, or ``redis-server --port 6379``
in a terminal), then two server processes on two ports::

    python examples/cluster/rooms_chat.py --port 8001
    python examples/cluster/rooms_chat.py --port 8002

Connect one client to each (any WebSocket client; ``websockets`` has one)::

    python -m websockets "ws://127.0.0.1:8001/chat?name=ann&room=lobby"
    python -m websockets "ws://127.0.0.1:8002/chat?name=bob&room=lobby"

What one types reaches everyone in the same room, whichever process they
are connected to. Lines starting with ``/`` are commands:

* ``/join ROOM``, ``/leave ROOM``: change rooms (a client may be in several);
* ``/who``: the members of your rooms, across the cluster;
* ``/all TEXT``: a message to everyone connected to any process.

``--redis URL`` points at another Redis (default ``redis://127.0.0.1:6379/0``).
The same handler runs under gunicorn with several workers: see
``gunicorn.conf.py`` and ``wsgi.py`` next to this file.
"""

from __future__ import annotations

import argparse
import os
import re
import threading
from typing import Any

from werkzeug.wrappers import Request

import syncaerys
from syncaerys import BackplaneError
from syncaerys import Endpoint
from syncaerys import Message
from syncaerys import RedisBackplane
from syncaerys import Response
from syncaerys import Websocket

NAME = re.compile(r"[\w.-]{1,20}")
DEFAULT_REDIS = os.environ.get("SYNCAERYS_REDIS", "redis://127.0.0.1:6379/0")


class RoomsChat(Websocket):
    """Rooms across processes: every method below is plain blocking code."""

    def __init__(self) -> None:
        self.endpoint: Endpoint
        # Names of this process's clients; other processes put names in their messages.
        self.names: dict[int, str] = {}
        self.lock = threading.Lock()

    def on_start(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def on_handshake(self, request: Request, response: Response, **route_args: Any) -> Any:
        name = str(request.args.get("name", ""))
        room = str(request.args.get("room", "lobby"))
        if not NAME.fullmatch(name) or not NAME.fullmatch(room):
            response.status = 400
            response.send("Join with /chat?name=NAME&room=ROOM (1-20 letters, digits, '.', '-', '_')\n")
            return None
        return {"name": name, "room": room}

    def on_open(self, client_id: int, handshake_data: Any) -> None:
        with self.lock:
            self.names[client_id] = handshake_data["name"]
        self._join(client_id, handshake_data["room"])

    def on_data(self, client_id: int, message: Message) -> None:
        text = str(message.result())
        name = self.names.get(client_id, "?")
        command, _, argument = text.partition(" ")
        if command == "/join" and NAME.fullmatch(argument):
            self._join(client_id, argument)
        elif command == "/leave":
            self.endpoint.leave(client_id, argument)
            self._say(f"* {name} left {argument}", room=argument)
        elif command == "/who":
            for room in sorted(self.endpoint.rooms_of(client_id)):
                members = self.endpoint.room_clients(room)
                self.endpoint.send(f"* {room}: {len(members)} member(s), ids {members}", client_id)
        elif command == "/all":
            self._say(f"{name} (to all): {argument}")
        else:
            for room in sorted(self.endpoint.rooms_of(client_id)):
                self._say(f"[{room}] {name}: {text}", room=room)

    def on_close(self, client_id: int, code: int, reason: str) -> None:
        with self.lock:
            self.names.pop(client_id, None)

    def on_backplane_down(self) -> None:
        self._say_local("* the cluster link is down: only this server's clients hear you")

    def on_backplane_up(self) -> None:
        self._say_local("* the cluster link is back")

    def _join(self, client_id: int, room: str) -> None:
        self.endpoint.join(client_id, room)
        self._say(f"* {self.names.get(client_id, '?')} joined {room}", room=room)

    def _say(self, text: str, room: str | None = None) -> None:
        future = self.endpoint.broadcast(text, room=room)
        future.add_done_callback(_log_backplane_failure)

    def _say_local(self, text: str) -> None:
        for client_id in self.endpoint.get_clients(local=True):
            self.endpoint.send(text, client_id)


def _log_backplane_failure(future: syncaerys.SendFuture[Any]) -> None:
    error = future.exception()
    if isinstance(error, BackplaneError):
        print(f"not delivered to the other processes: {error}")


def make_gateway(redis_url: str = DEFAULT_REDIS) -> syncaerys.Gateway:
    """The chat websocket, with a backplane on ``redis_url`` (channel "rooms-chat")."""
    backplane = RedisBackplane(redis_url, channel="rooms-chat")
    return syncaerys.websocket(RoomsChat(), text_only=True, backplane=backplane)


def main() -> None:
    parser = argparse.ArgumentParser(description="A chat with rooms across processes (Redis backplane)")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="Redis URL (default %(default)s)")
    args = parser.parse_args()
    router = syncaerys.Router().get("/chat", make_gateway(args.redis))
    syncaerys.run(router, host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
