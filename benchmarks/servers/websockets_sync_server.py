"""websockets' threaded server (websockets.sync.server), broadcast with its broadcast().

The blocking work runs in the handler, on the connection's thread.
"""

from __future__ import annotations

import _common
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server
from websockets.sync.server import ServerConnection
from websockets.sync.server import broadcast
from websockets.sync.server import serve

server: Server


def handler(ws: ServerConnection) -> None:
    try:
        for message in ws:
            if _common.is_block(message):
                ws.send(_common.block(message))
                continue
            command = _common.parse_broadcast(message)
            if command is None:
                ws.send(message)
                continue
            count, payload = command
            for _ in range(count):
                broadcast(server.connections, payload)
    except ConnectionClosed:
        pass


def main() -> None:
    global server
    port = _common.setup()
    # Defaults otherwise (keepalive pings on, as users run it); max_size=None
    # because the default cap is exactly the 1 MiB of the large-message scenario.
    with serve(handler, "127.0.0.1", port, compression=None, max_size=None) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
