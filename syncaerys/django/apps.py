"""The Django app ``syncaerys.django``: put it in ``INSTALLED_APPS``."""

from __future__ import annotations

from django.apps import AppConfig


class SyncaerysConfig(AppConfig):
    """Validates ``settings.SYNCAERYS``, registers the system checks, starts and stops the gateways."""

    name = "syncaerys.django"
    label = "syncaerys"
    verbose_name = "syncaerys"

    def ready(self) -> None:
        from . import checks
        from . import connect_signals
        from .conf import validate

        validate()
        checks.register()
        connect_signals()
