"""The syncaerys handler: ``syncaerys.django.websocket`` in the URLconf, each client on its own thread."""

from __future__ import annotations

import syncaerys.django
from syncaerys import Endpoint
from syncaerys import Message
from syncaerys import Websocket

from .work import answer


class Bench(Websocket):
    def on_start(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def on_data(self, client_id: int, message: Message) -> None:
        # Django's request cycle (close_old_connections) runs around this callback.
        self.endpoint.send(answer(message.result()), client_id)


bench = syncaerys.django.websocket(Bench())
