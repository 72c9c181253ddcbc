"""syncaerys: one thread per client, broadcast with Endpoint.broadcast (encoded once).

The blocking work runs in on_data, on the client's own thread.
"""

from __future__ import annotations

import os

import _common

import syncaerys
from syncaerys import Endpoint
from syncaerys import Message
from syncaerys import Websocket


class Bench(Websocket):
    def on_start(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def on_data(self, client_id: int, message: Message) -> None:
        data = message.result()
        if _common.is_block(data):
            self.endpoint.send(_common.block(data), client_id)
            return
        command = _common.parse_broadcast(data)
        if command is None:
            self.endpoint.send(data, client_id)
            return
        count, payload = command
        for _ in range(count):
            self.endpoint.broadcast(payload)


def bench_gateway(handler: Websocket | None = None) -> syncaerys.Gateway:
    """The benchmark's gateway for ``handler`` (default :class:`Bench`): limits and the heartbeat off.

    Also served by syncaerys_gevent_server.py, and used by ../loop_bench.py.
    """
    return syncaerys.websocket(
        handler if handler is not None else Bench(),
        max_frames_per_second=None,
        max_bytes_per_minute=None,
        max_message_size=None,
        max_frame_size=None,
        max_send_queue=None,
        heartbeat_period=None,
        # The cluster benchmark (benchmarks/cluster.py) sets BENCH_REDIS.
        backplane=syncaerys.RedisBackplane(os.environ["BENCH_REDIS"], channel="bench")
        if os.environ.get("BENCH_REDIS")
        else None,
    )


def main() -> None:
    port = _common.setup()
    gateway = bench_gateway()
    # max_connections=None: the default cap ("auto", the fd soft limit less a margin)
    # would answer the burst and scale scenarios' 5,000 connections with 503 where
    # that limit is low.
    # --switch-interval (set by _common.setup()) must not be undone by run()'s own default.
    interval = {"switch_interval": None} if os.environ.get("BENCH_SWITCH_INTERVAL") else {}
    syncaerys.run(gateway, host="127.0.0.1", port=port, max_connections=None, **interval)


if __name__ == "__main__":
    main()
