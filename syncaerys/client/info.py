"""ClientInfo: the snapshot of one client's statistics that ``Endpoint.get_info`` returns."""

from __future__ import annotations

from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import fields
from typing import Any

__all__ = ["ClientInfo"]


@dataclass(frozen=True)
class ClientInfo:
    """A snapshot of one client's statistics (Aerys's ``getInfo`` and more).

    Timestamps are Unix seconds as floats; 0.0 means "never". Immutable.
    """

    bytes_read: int
    bytes_sent: int
    frames_read: int
    frames_sent: int
    messages_read: int
    messages_sent: int
    connected_at: float
    closed_at: float
    close_code: int | None
    close_reason: str | None
    last_read_at: float
    last_sent_at: float
    last_data_read_at: float
    last_data_sent_at: float
    remote_address: str
    subprotocol: str | None
    compression: bool
    send_queue_bytes: int
    pings_sent: int
    pongs_received: int
    latency: float | None

    def as_dict(self) -> dict[str, Any]:
        """The same fields as a plain ``dict``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ClientInfo | None:
        """The inverse of :meth:`as_dict` (another process's answer); ``None`` if fields are missing."""
        try:
            return cls(**{f.name: values[f.name] for f in fields(cls)})
        except (KeyError, TypeError):
            return None
