"""A typed app: every callback annotated, checked with ``mypy --strict`` (CI does).

Rooms behind a token: ``ws://127.0.0.1:1337/room/<name>?token=let-me-in``.
Without the right token the upgrade is denied with a 401 and a
``WWW-Authenticate`` header, returned from ``on_handshake`` as a werkzeug
``Response``. Each message goes to everyone in the room; ``/quit`` closes the
sender with ``CloseCode.NORMAL_CLOSURE``.

Run it with ``python examples/typed_app.py`` (``--port N`` to change the port).
Check it with ``mypy --strict examples/typed_app.py``.
"""

from __future__ import annotations

import argparse
import hmac

from werkzeug.wrappers import Response as WerkzeugResponse

import syncaerys
from syncaerys import CloseCode
from syncaerys import Endpoint
from syncaerys import Message
from syncaerys import Request
from syncaerys import Response
from syncaerys import SendFuture
from syncaerys import Websocket

TOKEN = "let-me-in"


class Rooms(Websocket):
    def on_start(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def on_handshake(self, request: Request, response: Response, name: str) -> str | WerkzeugResponse:
        if not hmac.compare_digest(request.args.get("token", ""), TOKEN):
            return WerkzeugResponse("a token is needed\n", status=401, headers={"WWW-Authenticate": "Bearer"})
        return name

    def on_open(self, client_id: int, handshake_data: str) -> None:
        self.endpoint.join(client_id, handshake_data)
        welcome: SendFuture[int] = self.endpoint.send(f"welcome to {handshake_data}", client_id)
        welcome.add_done_callback(lambda sent: None)

    def on_data(self, client_id: int, message: Message) -> None:
        text = message.result()
        if text == "/quit":
            self.endpoint.close(client_id, CloseCode.NORMAL_CLOSURE, "bye")
            return
        for room in self.endpoint.rooms_of(client_id):
            self.endpoint.broadcast(text, room=room)

    def on_close(self, client_id: int, code: int, reason: str) -> None:
        if code not in (CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY):
            print(f"client {client_id} left with {code} {reason}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1337)
    args = parser.parse_args()
    gateway = syncaerys.websocket(Rooms(), max_message_size=64 * 1024, heartbeat_period=20.0, text_only=True)
    router = syncaerys.Router().get("/room/<name>", gateway)
    syncaerys.run(router, host=args.host, port=args.port, max_connections=500, header_timeout=5.0)


if __name__ == "__main__":
    main()
