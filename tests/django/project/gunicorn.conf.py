"""gunicorn settings of the test project: the gthread worker and syncaerys's hooks."""

from syncaerys.gunicorn import post_worker_init  # noqa: F401
from syncaerys.gunicorn import worker_exit  # noqa: F401
from syncaerys.gunicorn import worker_int  # noqa: F401

worker_class = "gthread"
threads = 32
worker_connections = 32
