"""The HTTP side: what the threaded server adds to werkzeug's, and what a WSGI host hands the gateway.

Hardening of the requests (header limits and deadlines, the bounded drain),
the trusted proxies, the bytes read past the handshake request (early data),
and how the gateway finds the socket under the hosts it runs on. Nothing here
imports the user-facing modules, ``standalone/``, or a client's connection.
Internal: import the public names from :mod:`syncaerys`.
"""
