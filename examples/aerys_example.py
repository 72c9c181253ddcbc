"""The Aerys documentation's websocket example, ported to syncaerys.

Run ``python examples/aerys_example.py`` and open http://localhost:1337/ in a
browser: the page connects to ws://localhost:1337/websocket, gets "Heyho!",
and every message it sends is echoed back. Ctrl-C stops the server; connected
pages receive "Byebye!" before the 1001 close.

Until syncaerys has its own Host and Router, the two routes are dispatched by
a ten-line WSGI function (``app`` below); the handler class is exactly the
seed's.
"""

from __future__ import annotations

import argparse
from typing import Any

import syncaerys
from syncaerys import Websocket
from syncaerys import websocket


class MyAwesomeWebsocket(Websocket):
    def on_start(self, endpoint: Any) -> None:
        self.endpoint = endpoint

    def on_handshake(self, request: Any, response: Any) -> None:
        pass  # verify a session here; set response.status = 403 to deny

    def on_open(self, client_id: int, handshake_data: Any) -> None:
        self.endpoint.send("Heyho!", client_id)

    def on_data(self, client_id: int, message: Any) -> None:
        text = message.result()  # blocks until the whole message has arrived
        self.endpoint.send(text, client_id).result()  # blocks until it is written

    def on_close(self, client_id: int, code: int, reason: str) -> None:
        pass

    def on_stop(self) -> None:
        self.endpoint.broadcast("Byebye!")


PAGE = b"""<!doctype html>
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

gateway = websocket(MyAwesomeWebsocket())


def index(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(PAGE)))])
    return [PAGE]


def app(environ: dict[str, Any], start_response: Any) -> Any:
    if environ.get("PATH_INFO") == "/websocket":
        return gateway(environ, start_response)
    if environ.get("PATH_INFO") == "/":
        return index(environ, start_response)
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "10")])
    return [b"Not Found\n"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="The Aerys websocket example on syncaerys")
    parser.add_argument("--port", type=int, default=1337)
    args = parser.parse_args()
    syncaerys.run(app, host="127.0.0.1", port=args.port)
