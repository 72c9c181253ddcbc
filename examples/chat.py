"""A broadcast chat room: a page at "/" and its websocket at "/chat".

Run ``python examples/chat.py`` (``--port N`` to change the port) and open
http://127.0.0.1:1337/ in two browser tabs. Each tab joins with a name, passed
as a query parameter (``/chat?name=ann``) and checked in ``on_handshake``: a
missing name gets 400, an unacceptable one 403, and the name reaches
``on_open`` as the handshake data. Every message is broadcast to everyone as
"name: text"; joins and leaves are announced as "* name joined" and
"* name left". Ctrl-C (or SIGTERM) stops the server gracefully.

Any WebSocket client works as well::

    python -m websockets ws://127.0.0.1:1337/chat?name=ann
"""

from __future__ import annotations

import argparse
import re
import threading
from typing import Any

from werkzeug.wrappers import Request

import syncaerys
from syncaerys import Endpoint
from syncaerys import Host
from syncaerys import Message
from syncaerys import Response
from syncaerys import Router
from syncaerys import Websocket
from syncaerys import websocket

#: Names are 1 to 20 letters, digits, spaces, dots, dashes or underscores.
NAME = re.compile(r"[\w .-]{1,20}")


class Chat(Websocket):
    """One room: everyone receives every message."""

    def __init__(self) -> None:
        self.endpoint: Endpoint
        # client id -> name; written by client threads, read by all of them.
        self.names: dict[int, str] = {}
        self.lock = threading.Lock()

    def on_start(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def on_handshake(self, request: Request, response: Response, **route_args: Any) -> str | None:
        name = str(request.args.get("name", "")).strip()
        if not name:
            response.status = 400
            response.send("Join with a name: /chat?name=...\n")
            return None
        if not NAME.fullmatch(name):
            response.status = 403
            response.send("Names are 1-20 letters, digits, spaces, '.', '-' or '_'.\n")
            return None
        return name  # handed to on_open as handshake_data

    def on_open(self, client_id: int, handshake_data: Any) -> None:
        name = str(handshake_data)
        with self.lock:
            self.names[client_id] = name
        self.endpoint.broadcast(f"* {name} joined")

    def on_data(self, client_id: int, message: Message) -> None:
        text = message.result()
        assert isinstance(text, str)  # text only: the gateway refuses binary with 1003
        with self.lock:
            name = self.names.get(client_id, "?")
        self.endpoint.broadcast(f"{name}: {text}")

    def on_close(self, client_id: int, code: int, reason: str) -> None:
        with self.lock:
            name = self.names.pop(client_id, None)
        if name is not None:
            self.endpoint.broadcast(f"* {name} left")

    def on_stop(self) -> None:
        self.endpoint.broadcast("* the server is stopping")


PAGE = """<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>syncaerys chat</title>
<style>
  body { font: 16px system-ui, sans-serif; max-width: 40em; margin: 2em auto; }
  #messages { list-style: none; padding: 0; min-height: 10em; border: 1px solid #ccc; }
  #messages li { padding: 0.2em 0.5em; }
</style>
<h1>syncaerys chat</h1>
<form id="join-form">
  <input id="name" placeholder="your name" maxlength="20" autocomplete="off">
  <button id="join" type="submit">join</button>
</form>
<p id="status">not connected</p>
<ul id="messages"></ul>
<form id="send-form">
  <input id="text" placeholder="message" autocomplete="off" disabled>
  <button id="send" type="submit" disabled>send</button>
</form>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let socket = null;

function show(line) {
  const item = document.createElement("li");
  item.textContent = line;
  $("messages").appendChild(item);
}

$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = $("name").value.trim();
  if (!name || socket) return;
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  socket = new WebSocket(scheme + location.host + "/chat?name=" + encodeURIComponent(name));
  $("status").textContent = "connecting";
  socket.onopen = () => {
    $("status").textContent = "connected as " + name;
    $("name").disabled = $("join").disabled = true;
    $("text").disabled = $("send").disabled = false;
    $("text").focus();
  };
  socket.onmessage = (event) => show(event.data);
  socket.onclose = (event) => {
    $("status").textContent = "closed " + event.code + (event.reason ? " " + event.reason : "");
    $("text").disabled = $("send").disabled = true;
    $("name").disabled = $("join").disabled = false;
    socket = null;
  };
});

$("send-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("text").value;
  if (!text || !socket || socket.readyState !== WebSocket.OPEN) return;
  socket.send(text);
  $("text").value = "";
});

const preset = new URLSearchParams(location.search).get("name");
if (preset) $("name").value = preset;
</script>
</html>
"""


def index(request: Request, response: Response) -> None:
    """The chat page."""
    response.set_header("Content-Type", "text/html; charset=utf-8")
    response.send(PAGE)


def make_host(port: int) -> Host:
    """The page and the chat websocket on 127.0.0.1:``port``."""
    chat = websocket(Chat(), text_only=True, max_message_size=16 * 1024)
    router = Router().get("/", index).get("/chat", chat)
    return Host().expose("127.0.0.1", port).use(router)


def main() -> None:
    parser = argparse.ArgumentParser(description="A broadcast chat room on syncaerys")
    parser.add_argument("--port", type=int, default=1337)
    args = parser.parse_args()
    syncaerys.run(make_host(args.port))


if __name__ == "__main__":
    main()
