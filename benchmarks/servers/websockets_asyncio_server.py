"""websockets' asyncio server (the upper reference), broadcast with its broadcast().

The blocking work goes to a thread with ``asyncio.to_thread``, as asyncio's
documentation advises for blocking calls: on the loop's default executor
(``min(32, CPUs + 4)`` threads), or with ``main(executor_threads=N)`` on a
``ThreadPoolExecutor(N)`` set as the default executor
(websockets_asyncio_pool_server.py).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

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
            if _common.is_block(message):
                await ws.send(await asyncio.to_thread(_common.block, message))
                continue
            command = _common.parse_broadcast(message)
            if command is None:
                await ws.send(message)
                continue
            count, payload = command
            for _ in range(count):
                broadcast(server.connections, payload)
    except ConnectionClosed:
        pass


async def serve_forever(port: int, executor_threads: int | None) -> None:
    global server
    if executor_threads is not None:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(executor_threads))
    async with serve(handler, "127.0.0.1", port, compression=None, max_size=None) as server:
        await server.serve_forever()


def main(executor_threads: int | None = None) -> None:
    asyncio.run(serve_forever(_common.setup(), executor_threads))


if __name__ == "__main__":
    main()
