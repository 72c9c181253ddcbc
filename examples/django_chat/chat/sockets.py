"""The chat's websocket: each client on its own thread, the ORM in every callback.

Each callback runs with Django's request cycle around it (stale database
connections closed before and after), so plain blocking ORM code is all it takes.
"""

from __future__ import annotations

import threading
from typing import Any

from django.http import HttpRequest

import syncaerys.django
from syncaerys import Endpoint
from syncaerys import Message as Frame
from syncaerys import Response
from syncaerys import Websocket

from .models import Message

#: How many of a room's last lines a newcomer is shown.
HISTORY = 20


class Chat(Websocket):
    def on_start(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.members: dict[int, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def on_handshake(self, request: HttpRequest, response: Response, room: str) -> Any:
        # request is Django's: the session and the user are the project's middleware's.
        if not request.user.is_authenticated:
            response.status = 403
            response.send("log in first")
            return None
        return {"room": room, "user_id": request.user.pk, "name": request.user.get_username()}

    def on_open(self, client_id: int, handshake_data: Any) -> None:
        room = handshake_data["room"]
        with self.lock:
            self.members[client_id] = handshake_data
        self.endpoint.join(client_id, room)
        recent = Message.objects.filter(room=room).select_related("author").order_by("-created", "-id")[:HISTORY]
        for message in reversed(recent):
            self.endpoint.send(message.line(), client_id)
        self.endpoint.broadcast(f"* {handshake_data['name']} joined", room=room)

    def on_data(self, client_id: int, message: Frame) -> None:
        text = message.result()
        if not isinstance(text, str) or not text.strip():
            return
        member = self.members[client_id]
        saved = Message.objects.create(room=member["room"], author_id=member["user_id"], text=text.strip()[:1000])
        self.endpoint.broadcast(f"{member['name']}: {saved.text}", room=member["room"])

    def on_close(self, client_id: int, code: int, reason: str) -> None:
        with self.lock:
            member = self.members.pop(client_id, None)
        if member is not None:
            self.endpoint.broadcast(f"* {member['name']} left", room=member["room"])


chat = syncaerys.django.websocket(Chat())
