"""The one boundary between redis-py's errors and syncaerys's: :func:`redis_errors`.

redis-py raises :class:`redis.RedisError` subclasses, and a raw
:class:`OSError` from some socket paths; code above the backplane sees
:class:`~syncaerys.BackplaneError` only, chained to the original
(``error.__cause__``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ..exceptions import BackplaneError

__all__ = ["REDIS_ERRORS", "redis_errors"]

try:
    import redis

    #: What a Redis command can raise besides its result.
    REDIS_ERRORS: tuple[type[Exception], ...] = (redis.RedisError, OSError)
except ImportError:  # pragma: no cover - redis-py is optional; nothing calls Redis then
    REDIS_ERRORS = (OSError,)


@contextlib.contextmanager
def redis_errors(what: str) -> Iterator[None]:
    """Raise :class:`~syncaerys.BackplaneError` ``"{what}: {error}"`` from any Redis error in the block.

    Thread-safe; blocks only as the block does.
    """
    try:
        yield
    except REDIS_ERRORS as error:
        raise BackplaneError(f"{what}: {error}") from error
