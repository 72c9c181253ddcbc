"""Counters of one gateway since it was made, for operators (``syncaerys.metrics`` exports them).

Cheap on purpose: nothing here runs per message. A connection's own counters
(``bytes_read``, ``messages_read``...) are added to the gateway's totals when
it closes; while it is open, readers add its live values themselves. So the
hot paths are untouched and a scrape costs one pass over the open clients.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

__all__ = ["GatewayStats", "LATENCY_BUCKETS", "Totals"]

#: Upper bounds (seconds) of the heartbeat latency histogram.
LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Totals:
    """Traffic of the connections that have closed.

    Not thread-safe: an instance has one owner at a time (the gateway's totals
    are kept under :class:`GatewayStats`'s lock); never blocks.
    """

    bytes_in: int = 0
    bytes_out: int = 0
    messages_in: int = 0
    messages_out: int = 0
    frames_in: int = 0
    frames_out: int = 0

    def add(self, other: Totals) -> None:
        """Add ``other``'s counts to these."""
        self.bytes_in += other.bytes_in
        self.bytes_out += other.bytes_out
        self.messages_in += other.messages_in
        self.messages_out += other.messages_out
        self.frames_in += other.frames_in
        self.frames_out += other.frames_out


class GatewayStats:
    """Thread-safe: every method takes the lock; none blocks otherwise."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handshakes: Counter[str] = Counter()
        self._closes: Counter[int] = Counter()
        self._closed = Totals()
        self._latency_buckets = [0] * len(LATENCY_BUCKETS)
        self._latency_count = 0
        self._latency_sum = 0.0

    def handshake(self, outcome: str) -> None:
        """Count a handshake: ``"accepted"`` or the status of its refusal (``"403"``...)."""
        with self._lock:
            self._handshakes[outcome] += 1

    def closed(self, code: int | None, traffic: Totals) -> None:
        """Count a closed connection with its close code and add its traffic to the totals."""
        with self._lock:
            self._closes[1005 if code is None else code] += 1
            self._closed.add(traffic)

    def latency(self, seconds: float) -> None:
        """Record one heartbeat round trip."""
        with self._lock:
            self._latency_count += 1
            self._latency_sum += seconds
            for index, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    self._latency_buckets[index] += 1
                    break

    def snapshot(self) -> tuple[dict[str, int], dict[int, int], Totals, list[int], int, float]:
        """Handshakes by outcome, closes by code, closed traffic, latency buckets (not cumulative), count, sum."""
        with self._lock:
            closed = Totals(**vars(self._closed))
            return (
                dict(self._handshakes),
                dict(self._closes),
                closed,
                list(self._latency_buckets),
                self._latency_count,
                self._latency_sum,
            )
