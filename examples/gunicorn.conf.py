"""gunicorn configuration for syncaerys websockets (gthread worker).

Run, from the project root::

    gunicorn -c examples/gunicorn.conf.py examples.flask_app:app

Command-line options override this file, e.g. ``-b 127.0.0.1:9000 --threads 200``.

* ``worker_class = "gthread"``: each websocket is served in one of the
  worker's threads for its whole life. The ``sync`` worker would block on the
  first websocket and its ``--timeout`` would kill the worker (the hooks log an
  error if it is used).
* ``threads``: at least the websockets you expect per worker, plus headroom for
  plain HTTP requests. When every thread holds a websocket, new requests wait
  in gunicorn's queue; the hooks log a warning when fewer than a tenth of the
  threads are free.
* ``workers``: more workers multiply the capacity, but each has its own clients;
  a broadcast reaches one worker's clients only (without a cluster backplane).
* ``graceful_timeout``: on SIGTERM the hooks run ``on_stop`` and close every
  client with 1001 at once, then wait up to ``close_period`` (3 s by default)
  for the closing handshakes; keep this above ``close_period`` plus a second.
  SIGINT/SIGQUIT (quick shutdown) close with 1001 and wait at most 1 s.
* The hooks come from :mod:`syncaerys.gunicorn`: ``post_worker_init`` (SIGTERM
  handling, worker checks), ``worker_int`` (SIGINT/SIGQUIT) and ``worker_exit``.
"""

from syncaerys.gunicorn import post_worker_init  # noqa: F401
from syncaerys.gunicorn import worker_exit  # noqa: F401
from syncaerys.gunicorn import worker_int  # noqa: F401

bind = "127.0.0.1:8000"
worker_class = "gthread"
workers = 1
threads = 64
# A gthread worker accepts connections up to worker_connections (1000 by default)
# whatever its free threads; a websocket accepted past its threads waits for one.
# Equal to threads, a busy worker leaves new connections to the other workers.
worker_connections = threads
# Every accepted connection gets a thread: idle HTTP keep-alive connections, which gthread
# parks without one, would need worker_connections > threads (gunicorn warns otherwise).
keepalive = 0
graceful_timeout = 10
# gthread's main thread tells the master it is alive while requests run, so
# long-lived websockets do not trip this timeout (unlike the sync worker's).
timeout = 30
