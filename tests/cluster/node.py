"""One server process of a test cluster: a syncaerys server on a RedisBackplane that obeys its clients.

Run as ``python node.py REDIS_URL --channel C --node-ttl 2``. It listens on a
free port of 127.0.0.1 and prints ``PORT <n>`` on stdout once it accepts
connections. A client drives it with JSON commands, one per text message::

    {"tag": 1, "op": "broadcast", "data": "hello", "room": "r", "except_ids": [id]}

and gets back ``{"re": 1, "result": ...}`` or ``{"re": 1, "error": "BackplaneError: ..."}``
(with ``local_result`` for a broadcast that reached only this process). The
backplane hooks send ``{"event": "backplane_down"}`` / ``{"event": "backplane_up"}``
to every local client. SIGTERM stops it gracefully.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import sys
import threading
from typing import Any

import syncaerys
from syncaerys import BackplaneError
from syncaerys import BroadcastResult
from syncaerys import Endpoint
from syncaerys import Message
from syncaerys import SendFuture
from syncaerys import Websocket

#: How long a command waits for the future of what it did.
FUTURE_TIMEOUT = 10.0


class Commands(Websocket):
    """Obeys the JSON commands of its clients and reports every outcome."""

    endpoint: Endpoint

    def on_start(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def on_data(self, client_id: int, message: Message) -> None:
        data = message.result()
        try:
            command = json.loads(data)
        except ValueError:
            return
        reply: dict[str, Any] = {"re": command.get("tag")}
        try:
            reply["result"] = self.run(client_id, command)
        except BackplaneError as error:
            reply["error"] = f"BackplaneError: {error}"
            if isinstance(error.local_result, BroadcastResult):
                reply["local_result"] = dataclasses.asdict(error.local_result)
        except Exception as error:
            reply["error"] = f"{type(error).__name__}: {error}"
        self.endpoint.send(json.dumps(reply), client_id)

    def run(self, me: int, command: dict[str, Any]) -> Any:
        endpoint = self.endpoint
        op = command["op"]
        data = command.get("data", "")
        binary = bool(command.get("binary"))
        if op == "whoami":
            return me
        if op == "node":
            return endpoint.backplane.node  # type: ignore[attr-defined]
        if op == "up":
            return endpoint.backplane.up
        if op == "send":
            send = endpoint.send_binary if binary else endpoint.send
            return _outcome(send(data, command.get("to", me)))
        if op == "broadcast":
            broadcast = endpoint.broadcast_binary if binary else endpoint.broadcast
            return _outcome(broadcast(data, command.get("except_ids", ()), room=command.get("room")))
        if op == "multicast":
            return _outcome(endpoint.multicast(data, command["to"]))
        if op == "close":
            endpoint.close(command.get("to", me), command.get("code", 1000), command.get("reason", ""))
            return None
        if op == "join":
            endpoint.join(command.get("to", me), command["room"])
            return None
        if op == "leave":
            endpoint.leave(command.get("to", me), command["room"])
            return None
        if op == "clients":
            return sorted(endpoint.get_clients(local=bool(command.get("local"))))
        if op == "room_clients":
            return sorted(endpoint.room_clients(command["room"], local=bool(command.get("local"))))
        if op == "rooms_of":
            return sorted(endpoint.rooms_of(command.get("id", me)))
        if op == "info":
            info = endpoint.get_info(command.get("id", me))
            return None if info is None else info.as_dict()
        raise ValueError(f"unknown op {op!r}")

    def on_backplane_down(self) -> None:
        self._tell_local_clients({"event": "backplane_down"})

    def on_backplane_up(self) -> None:
        self._tell_local_clients({"event": "backplane_up"})

    def _tell_local_clients(self, event: dict[str, str]) -> None:
        # Not a broadcast: that would reach the other processes' clients too.
        for client_id in self.endpoint.get_clients(local=True):
            self.endpoint.send(json.dumps(event), client_id)


def _outcome(future: SendFuture[Any]) -> Any:
    result = future.result(FUTURE_TIMEOUT)
    return dataclasses.asdict(result) if isinstance(result, BroadcastResult) else result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--channel", default="syncaerys-tests")
    parser.add_argument("--node-ttl", type=float, default=10.0)
    parser.add_argument("--request-timeout", type=float, default=1.0)
    parser.add_argument("--max-reconnect-delay", type=float, default=0.2)
    parser.add_argument("--host", default="127.0.0.1", help="the address to serve websockets on")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    backplane = syncaerys.RedisBackplane(
        args.url,
        channel=args.channel,
        node_ttl=args.node_ttl,
        request_timeout=args.request_timeout,
        max_reconnect_delay=args.max_reconnect_delay,
    )
    gateway = syncaerys.websocket(Commands(), backplane=backplane)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    with syncaerys.Server(gateway, host=args.host, port=0) as server:
        print(f"PORT {server.port}", flush=True)
        while not stop.wait(1.0):
            pass


if __name__ == "__main__":
    main()
