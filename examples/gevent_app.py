"""A blocking handler on gevent's WSGIServer: one greenlet per client instead of one thread.

Run it with ``pip install gevent`` then ``python examples/gevent_app.py`` (add
``--port N`` to change the port) and connect to ws://127.0.0.1:8765/. Each
message is answered after a blocking call (``time.sleep`` standing in for a
query); ``/all text`` is broadcast. SIGTERM or Ctrl-C stops it gracefully.

``gevent.monkey.patch_all()`` comes first, before any other import: it turns
syncaerys's threads, locks and sockets, and the handler's blocking calls, into
greenlets that wait cooperatively. Without it syncaerys refuses to upgrade
(500, and an error in the log naming what is not patched).
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402

import syncaerys  # noqa: E402
from syncaerys import Endpoint  # noqa: E402
from syncaerys import Message  # noqa: E402
from syncaerys import Websocket  # noqa: E402


class Lookup(Websocket):
    def on_start(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def on_data(self, client_id: int, message: Message) -> None:
        text = message.result()
        if isinstance(text, str) and text.startswith("/all "):
            self.endpoint.broadcast(f"{client_id}: {text[5:]}")
            return
        time.sleep(0.05)  # blocking work: patched, it lets the other clients' greenlets run
        self.endpoint.send(f"looked up {text}", client_id)

    def on_stop(self) -> None:
        self.endpoint.broadcast("server stopping, bye")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    gateway = syncaerys.websocket(Lookup())
    server = WSGIServer((args.host, args.port), gateway, log=None)

    def shut_down() -> None:
        # The gateway first: WSGIServer.stop() kills the handlers still running after its
        # timeout, and every open websocket is one; closed with 1001 they have returned.
        gateway.stop()
        server.stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, gevent.spawn, shut_down)
    logging.getLogger("syncaerys").info("listening on ws://%s:%d/", args.host, args.port)
    server.serve_forever()


if __name__ == "__main__":
    main()
