"""The ASGI application for daphne and uvicorn: HTTP to Django, websockets to the Channels consumer."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djbench.settings")
django_asgi = get_asgi_application()  # before importing consumers: it sets Django up

from channels.routing import ProtocolTypeRouter  # noqa: E402
from channels.routing import URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from .consumers import BenchConsumer  # noqa: E402

application = ProtocolTypeRouter({"http": django_asgi, "websocket": URLRouter([path("", BenchConsumer.as_asgi())])})
