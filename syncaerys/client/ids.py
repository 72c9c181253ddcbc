"""Client ids: what every API that takes one accepts."""

from __future__ import annotations

__all__ = ["check_client_id"]


def check_client_id(client_id: object, name: str = "client_id") -> None:
    """Raise :class:`TypeError` unless ``client_id`` is an ``int`` (``bool`` is not one here).

    Ids arrive from JSON or query strings as ``str``; a send to ``"2"`` must
    fail loudly rather than reach nobody. Pure; thread-safe; never blocks.
    """
    if type(client_id) is not int and (not isinstance(client_id, int) or isinstance(client_id, bool)):
        hint = "; convert it with int() where it arrives" if isinstance(client_id, str) else ""
        raise TypeError(
            f"{name} must be an int (the id on_open received), not {type(client_id).__name__} {client_id!r}{hint}"
        )
