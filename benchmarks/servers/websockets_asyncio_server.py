"""websockets' asyncio server (the upper reference), broadcast with its broadcast()."""

from __future__ import annotations

import asyncio

import _common
from websockets.asyncio.server import Server
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import broadcast
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

server: Server


async def handler(ws: ServerConnection) -> None:
    try:
        async for message in ws:
            command = _common.parse_broadcast(message)
            if command is None:
                await ws.send(message)
                continue
            count, payload = command
            for _ in range(count):
                broadcast(server.connections, payload)
    except ConnectionClosed:
        pass


async def serve_forever(port: int) -> None:
    global server
    async with serve(handler, "127.0.0.1", port, compression=None, max_size=None) as server:
        await server.serve_forever()


def main() -> None:
    asyncio.run(serve_forever(_common.setup()))


if __name__ == "__main__":
    main()
