"""flask-sock (simple-websocket) on gevent's WSGIServer, monkey-patched: the same app as flask_sock_server.py.

``gevent.monkey.patch_all()`` runs first, as gevent's documentation asks, so
the app's threads (simple-websocket's reader), locks and ``time.sleep`` of the
blocking work are greenlets and cooperative: every connection is a greenlet in
one OS thread.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import _common  # noqa: E402
import flask_sock_server  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402


def main() -> None:
    port = _common.setup()
    # log=None: no access line per request (the other servers log warnings only).
    WSGIServer(("127.0.0.1", port), flask_sock_server.app, log=None).serve_forever()


if __name__ == "__main__":
    main()
