"""websockets_asyncio_server.py with a 1,000-thread default executor for asyncio.to_thread.

``loop.set_default_executor(ThreadPoolExecutor(1000))``: as many threads as the
biggest blocking scenario has clients, so no request waits for a free thread.
"""

from __future__ import annotations

import websockets_asyncio_server

if __name__ == "__main__":
    websockets_asyncio_server.main(executor_threads=1000)
