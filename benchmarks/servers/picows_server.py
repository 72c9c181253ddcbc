"""picows (its core API: a WSListener per connection, on asyncio's loop), broadcast loops over a set.

Echo sends the received payload back as picows's documentation does (the frame's
memoryview, no copy). Fragmented messages are joined first. The blocking work
goes to ``loop.run_in_executor`` on a ``ThreadPoolExecutor(1000)``; the reply
is sent from the loop when it is done (a picows transport may only be used on
the loop's thread). Otherwise ``ws_create_server``'s defaults (aiofastnet, which
picows installs, for the sockets; auto-ping off, auto-pong on).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import _common
from picows import WSFrame
from picows import WSListener
from picows import WSMsgType
from picows import WSTransport
from picows import WSUpgradeRequest
from picows import ws_create_server

clients: set[WSTransport] = set()
executor = ThreadPoolExecutor(1000)
COMMANDS = (_common.PREFIX.encode(), _common.BLOCK_PREFIX.encode(), _common.BLOCKC_PREFIX.encode())


class Listener(WSListener):
    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.first_type = WSMsgType.BINARY

    def on_ws_connected(self, transport: WSTransport) -> None:
        clients.add(transport)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        clients.discard(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        msg_type = frame.msg_type
        if msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
            return
        if msg_type == WSMsgType.CONTINUATION:
            self.parts.append(frame.get_payload_as_bytes())
            if frame.fin:
                self.on_message(transport, self.first_type, b"".join(self.parts))
                self.parts = []
            return
        if msg_type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            return  # PING is answered by picows (enable_auto_pong), PONG is ignored
        if not frame.fin:
            self.first_type = msg_type
            self.parts = [frame.get_payload_as_bytes()]
            return
        self.on_message(transport, msg_type, frame.get_payload_as_memoryview())

    def on_message(self, transport: WSTransport, msg_type: WSMsgType, payload: bytes | memoryview) -> None:
        if msg_type != WSMsgType.TEXT or not bytes(payload[:11]).startswith(COMMANDS):
            transport.send(msg_type, payload)
            return
        text = bytes(payload).decode()
        if _common.is_block(text):
            future = asyncio.get_running_loop().run_in_executor(executor, _common.block, text)
            future.add_done_callback(lambda f: reply(transport, f))
            return
        command = _common.parse_broadcast(text)
        assert command is not None
        count, data = command
        encoded = data.encode()
        targets = list(clients)
        for _ in range(count):
            for target in targets:
                target.send(WSMsgType.TEXT, encoded)


def reply(transport: WSTransport, future: asyncio.Future[str]) -> None:
    if not transport.is_disconnected:
        transport.send(WSMsgType.TEXT, future.result().encode())


async def serve_forever(port: int) -> None:
    def listener_factory(request: WSUpgradeRequest) -> Listener:
        return Listener()

    server = await ws_create_server(listener_factory, "127.0.0.1", port)
    await server.serve_forever()


def main() -> None:
    asyncio.run(serve_forever(_common.setup()))


if __name__ == "__main__":
    main()
