"""Token buckets for the inbound rate limits (sans-I/O: ``now`` is passed in)."""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    """A budget of ``capacity`` units refilled at ``rate`` units per second.

    Spending may take the budget below zero (a read has already happened);
    :meth:`delay` then says how long to stop reading until it is back to zero.

    Not thread-safe (one caller at a time: the client's thread); never blocks
    (the caller does the waiting).
    """

    __slots__ = ("_updated", "capacity", "level", "rate")

    def __init__(self, capacity: float, rate: float, now: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self.level = capacity
        self._updated = now

    def _refill(self, now: float) -> None:
        elapsed = now - self._updated
        if elapsed > 0:
            self.level = min(self.capacity, self.level + elapsed * self.rate)
            self._updated = now

    def spend(self, amount: float, now: float) -> None:
        """Take ``amount`` units out of the budget."""
        self._refill(now)
        self.level -= amount

    def delay(self, now: float) -> float:
        """Seconds until the budget is no longer negative (0 when it is not)."""
        self._refill(now)
        if self.level >= 0:
            return 0.0
        return -self.level / self.rate
