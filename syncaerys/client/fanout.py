"""A broadcast's loop over this process's clients: choosing them, and queuing one copy for each.

:class:`~syncaerys.Endpoint` checks the arguments, creates the future and
publishes to the other processes; these run once per client, so they are
among the modules ``SYNCAERYS_COMPILE=1`` compiles. Thread-safe; never block.
"""

from __future__ import annotations

from collections.abc import Hashable
from collections.abc import Iterable

from ..futures import BroadcastTracker
from ..protocol.frames import Encoded
from ..protocol.frames import OutFrame
from .connection import Connection
from .sendqueue import WRITTEN_UNTOLD

__all__ = ["open_clients", "queue_copies"]


def open_clients(candidates: Iterable[Connection], excluded: set[int]) -> list[Connection]:
    """Those of ``candidates`` that are open and whose id is not in ``excluded``."""
    return [c for c in candidates if c.is_open and c.id not in excluded]


def queue_copies(
    opcode: int, payload: bytes, targets: list[Connection] | list[Connection | int], tracker: BroadcastTracker
) -> None:
    """Queue one copy of a message for each target, reporting every outcome to ``tracker``.

    An ``int`` target is an id that could not be reached (unknown or closing):
    counted as failed. The frames are encoded once per kind of client (frame
    size, compression parameters) and the same bytes go to each socket.
    """
    encoded: dict[Hashable, bytes | list[OutFrame]] = {}
    size = len(payload)
    # Copies written at once are counted here and reported to the tracker together (one
    # lock instead of one per client); the others report themselves when written.
    written_now = 0
    for target in targets:
        if not isinstance(target, Connection):
            tracker.skip(target)
            continue
        # A target that closed since it was chosen is refused by its sealed queue (send() is None).
        key = target.session.shared_key(size)
        frames: Encoded
        if key is None:
            frames = target.encode(opcode, payload)
        else:
            shared = encoded.get(key)
            if shared is None:
                built = target.encode(opcode, payload)
                # A key means the encoding is bytes or a list, the same for every client with that key.
                assert not callable(built)
                shared = encoded[key] = built
            frames = shared
        queued = target.send(frames, tracker, tell_written_now=False)
        if queued is None:
            tracker.skip(target.id)
        elif queued == WRITTEN_UNTOLD:
            written_now += 1
    if written_now:
        tracker.messages_written(written_now)
