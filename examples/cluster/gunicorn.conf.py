"""gunicorn with 4 workers sharing one Redis backplane (see ``wsgi.py``).

gunicorn -c examples/cluster/gunicorn.conf.py examples.cluster.wsgi:app
"""

from syncaerys.gunicorn import post_worker_init  # noqa: F401
from syncaerys.gunicorn import worker_exit  # noqa: F401
from syncaerys.gunicorn import worker_int  # noqa: F401

bind = "127.0.0.1:8000"
worker_class = "gthread"
# Four processes, each with its own clients; the backplane joins them up.
workers = 4
threads = 64
# A gthread worker accepts connections up to worker_connections (1000 by default)
# whatever its free threads; a websocket accepted past its threads waits for one.
# Equal to threads, a busy worker leaves new connections to the other workers.
worker_connections = threads
# Every accepted connection gets a thread: idle HTTP keep-alive connections, which gthread
# parks without one, would need worker_connections > threads (gunicorn warns otherwise).
keepalive = 0
graceful_timeout = 10
timeout = 30
