"""One client's I/O: its connection, send queue, socket, deadlines, and the gateway's registry of clients.

The layer between the sans-I/O :mod:`syncaerys.protocol` and the user-facing
modules. Nothing here imports ``serving/``, ``standalone/`` or the user-facing
modules (``websocket``, ``gateway``, ``endpoint``...): the application is
reached through :class:`~syncaerys.client.handler.Handler`. Internal: import
the public names from :mod:`syncaerys`.
"""
