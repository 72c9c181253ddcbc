"""The Channels handler: a sync ``WebsocketConsumer``, as Channels' documentation writes ORM-using consumers.

Channels runs each of its handler calls through ``database_sync_to_async``
(asgiref's thread-sensitive executor, ``close_old_connections`` around it).
"""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import WebsocketConsumer

from .work import answer


class BenchConsumer(WebsocketConsumer):
    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        if text_data is not None:
            self.send(text_data=answer(text_data))
        elif bytes_data is not None:
            self.send(bytes_data=bytes_data)
