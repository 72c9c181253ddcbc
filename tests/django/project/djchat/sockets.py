"""The test project's websocket handlers: each command a test can send, and what it answers."""

from __future__ import annotations

import json
import os
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db import transaction
from django.http import HttpRequest

import syncaerys.django
from syncaerys import Endpoint
from syncaerys import Message
from syncaerys import RedisBackplane
from syncaerys import Response
from syncaerys import Websocket

from .models import Note


class Chat(Websocket):
    """Rooms of logged-in users; every message is stored with the ORM, then broadcast to the room."""

    def on_start(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.rooms: dict[int, tuple[str, str]] = {}

    def on_handshake(self, request: HttpRequest, response: Response, room: str) -> Any:
        if room == "forbidden":
            raise PermissionDenied("no one enters this room")
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return {"room": room, "user": request.user.get_username(), "language": request.LANGUAGE_CODE}

    def on_open(self, client_id: int, handshake_data: Any) -> None:
        self.rooms[client_id] = (handshake_data["room"], handshake_data["user"])
        self.endpoint.join(client_id, handshake_data["room"])
        self.endpoint.send(json.dumps({"hello": handshake_data, "pid": os.getpid()}), client_id)

    def on_data(self, client_id: int, message: Message) -> None:
        text = message.result()
        assert isinstance(text, str)
        room, user = self.rooms[client_id]
        command, _, argument = text.partition(":")
        if command == "sleep":  # a wait inside the database, holding this client's connection
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_sleep(%s)", [float(argument)])
            self.endpoint.send("slept", client_id)
        elif command == "count":
            self.endpoint.send(str(Note.objects.filter(room=room).count()), client_id)
        elif command == "fail-after-insert":  # an exception after a write: ATOMIC_REQUESTS rolls it back
            Note.objects.create(room=room, author=user, text=argument)
            raise RuntimeError("the handler failed after writing")
        elif command == "autocommit-off":  # a transaction left open by the handler, then an exception
            transaction.set_autocommit(False)
            Note.objects.create(room=room, author=user, text=argument)
            raise RuntimeError("the handler failed inside its own transaction")
        elif command == "in-atomic":
            self.endpoint.send(json.dumps(connection.in_atomic_block), client_id)
        else:
            Note.objects.create(room=room, author=user, text=text)
            self.endpoint.broadcast(f"{user}: {text}", room=room)

    def on_close(self, client_id: int, code: int, reason: str) -> None:
        room, user = self.rooms.pop(client_id, ("?", "?"))
        Note.objects.create(room=room, author=user, text=f"left with {code}")


class Echo(Websocket):
    """No login; each message answered after one ORM query."""

    def on_start(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def on_data(self, client_id: int, message: Message) -> None:
        text = message.result()
        assert isinstance(text, str)
        self.endpoint.send(f"{text} ({Note.objects.count()} notes)", client_id)


# With DJ_REDIS_URL the chat spans every process (gunicorn's workers) through a Redis backplane.
_cluster = (
    {"backplane": RedisBackplane(os.environ["DJ_REDIS_URL"], channel="djchat")} if "DJ_REDIS_URL" in os.environ else {}
)
chat = syncaerys.django.websocket(Chat(), heartbeat_period=None, **_cluster)  # type: ignore[arg-type]
echo = syncaerys.django.websocket(Echo(), heartbeat_period=None)
private = syncaerys.django.websocket(Echo(), heartbeat_period=None)
