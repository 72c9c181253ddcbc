"""Echo and broadcast: the smallest useful syncaerys server.

Run it with ``python examples/echo.py`` (add ``--port N`` to change the port),
then connect with any WebSocket client to ws://127.0.0.1:1337/. Every text
message is echoed to its sender; a message starting with ``/all `` is
broadcast to every client instead. Ctrl-C stops it gracefully.
"""

from __future__ import annotations

import argparse

import syncaerys
from syncaerys import Endpoint
from syncaerys import Message
from syncaerys import Websocket


class Echo(Websocket):
    def on_start(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def on_open(self, client_id: int, handshake_data: object) -> None:
        self.endpoint.send(f"welcome, client {client_id}", client_id)

    def on_data(self, client_id: int, message: Message) -> None:
        data = message.result()
        if isinstance(data, str) and data.startswith("/all "):
            self.endpoint.broadcast(f"{client_id}: {data[5:]}")
        else:
            self.endpoint.send(data, client_id)

    def on_stop(self) -> None:
        self.endpoint.broadcast("server stopping, bye")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1337)
    args = parser.parse_args()
    syncaerys.run(syncaerys.websocket(Echo()), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
