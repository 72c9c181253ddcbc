"""The Aerys websocket example ported to syncaerys.

Run ``python examples/aerys_example.py`` and open http://localhost:1337/ in a
browser: the page connects to ws://localhost:1337/websocket, gets "Heyho!",
and every message it sends is echoed back. Ctrl-C stops the server; connected
pages receive "Byebye!" before the 1001 close. ``--port`` changes the port.
"""

from __future__ import annotations

import argparse

import syncaerys
from syncaerys import Host
from syncaerys import Router
from syncaerys import Websocket
from syncaerys import websocket


class MyAwesomeWebsocket(Websocket):
    def on_start(self, endpoint):  # type: ignore[no-untyped-def]
        self.endpoint = endpoint

    def on_handshake(self, request, response):  # type: ignore[no-untyped-def]
        pass  # verify a session here; set response.status = 403 to deny

    def on_open(self, client_id, handshake_data):  # type: ignore[no-untyped-def]
        self.endpoint.send("Heyho!", client_id)

    def on_data(self, client_id, message):  # type: ignore[no-untyped-def]
        text = message.result()  # blocks until the whole message has arrived
        self.endpoint.send(text, client_id).result()  # blocks until it is written

    def on_close(self, client_id, code, reason):  # type: ignore[no-untyped-def]
        pass

    def on_stop(self):  # type: ignore[no-untyped-def]
        self.endpoint.broadcast("Byebye!")


PAGE = """<!doctype html>
<title>syncaerys</title>
<pre id="log"></pre>
<input id="text" value="hello"><button id="send">send</button>
<script>
const log = (line) => document.getElementById("log").textContent += line + "\\n";
const ws = new WebSocket("ws://" + location.host + "/websocket");
ws.onopen = () => log("open");
ws.onmessage = (event) => log("< " + event.data);
ws.onclose = (event) => log("closed " + event.code + " " + event.reason);
document.getElementById("send").onclick = () => {
  const text = document.getElementById("text").value;
  log("> " + text);
  ws.send(text);
};
</script>
"""


def index(request, response):  # type: ignore[no-untyped-def]
    response.send(PAGE)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="The Aerys websocket example on syncaerys")
    parser.add_argument("--port", type=int, default=1337)
    port = parser.parse_args().port

    router = Router().get("/websocket", websocket(MyAwesomeWebsocket())).get("/", index)
    syncaerys.run(Host().expose("127.0.0.1", port).use(router))
