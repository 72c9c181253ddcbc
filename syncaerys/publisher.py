"""``syncaerys.publisher``: the :class:`Publisher` import path (it lives in ``syncaerys/backplane/``)."""

from __future__ import annotations

from .backplane.publisher import Publisher

__all__ = ["Publisher"]
