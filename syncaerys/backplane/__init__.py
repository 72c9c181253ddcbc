"""Backplanes: how an Endpoint reaches the clients of other processes.

:class:`LocalBackplane` (the default) keeps everything in the process;
:class:`RedisBackplane` (``pip install syncaerys[redis]``) spreads endpoint
operations, membership and rooms over a cluster through Redis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from .base import Backplane
from .base import LocalBackplane

if TYPE_CHECKING:
    from .redis_backplane import RedisBackplane

__all__ = ["Backplane", "LocalBackplane", "RedisBackplane"]


def __getattr__(name: str) -> Any:
    # Imported on use, so that redis is needed only by those who use it.
    if name == "RedisBackplane":
        from .redis_backplane import RedisBackplane

        return RedisBackplane
    raise AttributeError(name)
