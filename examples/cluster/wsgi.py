"""The rooms chat as a WSGI application, for gunicorn with several workers.

From the project root, with Redis running::

    gunicorn -c examples/cluster/gunicorn.conf.py examples.cluster.wsgi:app

Each worker is a process with its own clients; the Redis backplane makes a
broadcast, a send or a room reach them all. The backplane connects when the
worker starts (after the fork), so ``--preload`` is safe.
"""

from __future__ import annotations

from examples.cluster.rooms_chat import make_gateway
from syncaerys import Router

app = Router().get("/chat", make_gateway())
