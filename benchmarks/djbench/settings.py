"""Settings of the Django benchmark project (benchmarks/run.py --group django), from the environment.

BENCH_PG_PORT, BENCH_PG_DB: the PostgreSQL the runner started on 127.0.0.1 (user postgres, trust).
BENCH_DB_POOL: max_size of Django's psycopg connection pool (default 100).

The same settings serve syncaerys (``manage.py runsyncaerys``, WSGI) and Channels
(daphne, uvicorn: ``asgi.py``). The database goes through Django's psycopg pool
(Django 5.1+): with ``CONN_MAX_AGE = 0`` every callback (syncaerys) or sync
handler call (Channels, asgiref's ``close_old_connections`` around it) would
otherwise open a new PostgreSQL connection, a process forked by the server, for a
5 ms query; with the pool, "closing" gives the connection back and the process
holds at most ``max_size`` of them.
"""

import os

SECRET_KEY = "benchmark-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
ROOT_URLCONF = "djbench.urls"
WSGI_APPLICATION = "djbench.wsgi.application"
ASGI_APPLICATION = "djbench.asgi.application"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "channels",
    "syncaerys.django",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("BENCH_PG_DB", "bench"),
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": os.environ.get("BENCH_PG_PORT", "5432"),
        "CONN_MAX_AGE": 0,  # the pool requires it: "closing" a pooled connection returns it
        "OPTIONS": {"pool": {"min_size": 4, "max_size": int(os.environ.get("BENCH_DB_POOL", "100")), "timeout": 30}},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# syncaerys.django's gateway options: the same as benchmarks/servers/syncaerys_server.py
# (limits and the heartbeat off); the server: runsyncaerys's (run()'s) defaults, no connection cap.
SYNCAERYS = {
    "OPTIONS": {
        "max_frames_per_second": None,
        "max_bytes_per_minute": None,
        "max_message_size": None,
        "max_frame_size": None,
        "max_send_queue": None,
        "heartbeat_period": None,
    },
    "SERVER": {"max_connections": None},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
