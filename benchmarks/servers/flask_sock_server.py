"""flask-sock (simple-websocket) on werkzeug's threaded server; broadcast loops over a set.

The blocking work runs in the route, on the request's thread. The gevent variant
(flask_sock_gevent_server.py) serves this same app.
"""

from __future__ import annotations

import threading

import _common
from flask import Flask
from flask_sock import Sock
from simple_websocket import ConnectionClosed
from werkzeug.serving import make_server

app = Flask(__name__)
sock = Sock(app)
clients: set = set()
clients_lock = threading.Lock()


@sock.route("/")
def echo(ws) -> None:  # type: ignore[no-untyped-def]
    with clients_lock:
        clients.add(ws)
    try:
        while True:
            message = ws.receive()
            if _common.is_block(message):
                ws.send(_common.block(message))
                continue
            command = _common.parse_broadcast(message)
            if command is None:
                ws.send(message)
                continue
            count, payload = command
            with clients_lock:
                targets = list(clients)
            for _ in range(count):
                for client in targets:
                    try:
                        client.send(payload)
                    except Exception:  # a client that left meanwhile
                        pass
    except ConnectionClosed:
        pass
    finally:
        with clients_lock:
            clients.discard(ws)


def main() -> None:
    port = _common.setup()
    make_server("127.0.0.1", port, app, threaded=True).serve_forever()


if __name__ == "__main__":
    main()
