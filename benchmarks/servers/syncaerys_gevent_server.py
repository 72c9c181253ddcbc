"""syncaerys's gateway on gevent's WSGIServer, monkey-patched: the same handler as syncaerys_server.py.

``gevent.monkey.patch_all()`` runs first, so syncaerys's client threads are
greenlets in one OS thread and the handler's ``time.sleep`` yields to them
(``examples/gevent_app.py`` is the documented way to run it).
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import _common  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402
from syncaerys_server import bench_gateway  # noqa: E402


def main() -> None:
    port = _common.setup()
    # log=None: no access line per request (the other servers log warnings only).
    WSGIServer(("127.0.0.1", port), bench_gateway(), log=None).serve_forever()


if __name__ == "__main__":
    main()
