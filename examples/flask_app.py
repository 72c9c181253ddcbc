"""Chat rooms in a Flask app: a page, a websocket per room on a blueprint, and views that push.

``/`` is a page that joins a room; ``/room/<name>`` is the room's websocket,
mounted on the ``rooms`` blueprint with :func:`syncaerys.flask.route`. The
room name reaches ``on_handshake`` as a keyword argument; a bad name is
refused with 400. Every message is sent to everyone in the room, its sender
included (alone in a room, you get an echo).

Pushing from outside the handler, through ``gateway.endpoint``:

* ``POST /room/<name>/announce`` (the body is the text) pushes from the view
  itself and answers with how many clients got it;
* ``POST /room/<name>/report`` answers 202 at once and starts a background
  job that pushes "report for <name> is ready" when it is done.

The gateway starts at the app's first request, whatever it is, so a push
before any websocket client connected works (it reaches nobody, and says so).

Run it with werkzeug's dev server (``app.run``)::

    python examples/flask_app.py --port 5000

or under gunicorn's gthread worker, from the project root::

    gunicorn -c examples/gunicorn.conf.py examples.flask_app:app

then open http://127.0.0.1:5000/ (gunicorn: http://127.0.0.1:8000/), or push::

    curl -d 'hello, lobby' http://127.0.0.1:5000/room/lobby/announce
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import threading
import time
import types
from typing import Any

from flask import Blueprint
from flask import Flask
from flask import request
from werkzeug.wrappers import Request

import syncaerys
import syncaerys.flask
from syncaerys import Endpoint
from syncaerys import Message
from syncaerys import Response
from syncaerys import Websocket

ROOM_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")

PAGE = """<!doctype html>
<title>syncaerys chat</title>
<form id="join">room <input id="room" value="lobby"> <button>join</button></form>
<form id="say">say <input id="text" autocomplete="off"> <button>send</button></form>
<pre id="log"></pre>
<script>
let ws;
const log = (line) => { document.getElementById("log").textContent += line + "\\n"; };
document.getElementById("join").onsubmit = (event) => {
  event.preventDefault();
  if (ws) ws.close();
  const room = document.getElementById("room").value;
  ws = new WebSocket(`ws://${location.host}/room/${encodeURIComponent(room)}`);
  ws.onopen = () => log(`joined ${room}`);
  ws.onmessage = (event) => log(event.data);
  ws.onclose = (event) => log(`closed: ${event.code} ${event.reason}`);
};
document.getElementById("say").onsubmit = (event) => {
  event.preventDefault();
  if (ws) ws.send(document.getElementById("text").value);
  document.getElementById("text").value = "";
};
</script>
"""


class Rooms(Websocket):
    """Chat rooms: each message goes to every client in the sender's room."""

    def on_start(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def on_handshake(self, request: Request, response: Response, name: str) -> str | None:
        if not ROOM_NAME.fullmatch(name):
            response.status = 400
            response.send("room names are 1 to 32 letters, digits, '-' or '_'\n")
            return None
        return name

    def on_open(self, client_id: int, handshake_data: Any) -> None:
        self.endpoint.join(client_id, handshake_data)

    def on_data(self, client_id: int, message: Message) -> None:
        text = message.result()
        for room in self.endpoint.rooms_of(client_id):
            self.endpoint.broadcast(text, room=room)

    def on_stop(self) -> None:
        self.endpoint.broadcast("server stopping, bye")


app = Flask(__name__)
#: The rooms' gateway (a WSGI app, mounted below on the blueprint).
gateway = syncaerys.websocket(Rooms(), heartbeat_period=20)


@app.get("/")
def index() -> str:
    return PAGE


@app.post("/room/<name>/announce")
def announce(name: str) -> dict[str, Any]:
    """Push from a view: the request's body to everyone in the room."""
    sent = gateway.endpoint.broadcast(request.get_data(as_text=True), room=name)
    return {"room": name, "delivered": sent.result(timeout=5).delivered}


@app.post("/room/<name>/report")
def report(name: str) -> tuple[dict[str, Any], int]:
    """Push from a background job: answer at once, tell the room when the work is done."""

    def job() -> None:
        time.sleep(0.2)  # the slow part: a query, a call to another service...
        gateway.endpoint.broadcast(f"report for {name} is ready", room=name)

    threading.Thread(target=job, name=f"report-{name}", daemon=True).start()
    return {"room": name, "status": "started"}, 202


rooms = Blueprint("rooms", __name__)
syncaerys.flask.route(rooms, "/room/<name>", gateway)
app.register_blueprint(rooms)


def _interrupt(signum: int, frame: types.FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # werkzeug's server stops on Ctrl-C (KeyboardInterrupt); make SIGTERM do the same.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        app.run(host=args.host, port=args.port, threaded=True)
    finally:
        # werkzeug's server knows nothing of websockets: on_stop, then 1001 to every client.
        gateway.stop()


if __name__ == "__main__":
    main()
