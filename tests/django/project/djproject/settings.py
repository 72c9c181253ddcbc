"""Settings of the test project, from the environment the tests give each server process.

DJ_DB_NAME, DJ_DB_PORT: the PostgreSQL database (the tests' own server on 127.0.0.1).
DJ_CONN_MAX_AGE, DJ_HEALTH_CHECKS, DJ_ATOMIC: the database settings under test.
DJ_SYNCAERYS: settings.SYNCAERYS as JSON. DJ_NO_APP: leave syncaerys.django out of INSTALLED_APPS.
DJ_TRUSTED_ORIGINS: CSRF_TRUSTED_ORIGINS, comma-separated. DJ_PROXY_SSL: trust X-Forwarded-Proto.
DJ_DAPHNE: put an app named daphne first (tests/django/stubs must be on PYTHONPATH).
DJ_URLCONF: another URLconf (djproject.bad_urls: routes the checks must refuse).
"""

import json
import os

SECRET_KEY = "test-only-not-secret"
DEBUG = os.environ.get("DJ_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
USE_TZ = True
ROOT_URLCONF = os.environ.get("DJ_URLCONF", "djproject.urls")
WSGI_APPLICATION = "djproject.wsgi.application"
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "French")]
USE_I18N = True

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "djchat",
]
if os.environ.get("DJ_DAPHNE") == "1":  # tests/django/stubs on the path: the check that warns about it
    INSTALLED_APPS.insert(0, "daphne")
if os.environ.get("DJ_NO_APP") != "1":
    INSTALLED_APPS.append("syncaerys.django")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("DJ_DB_NAME", "syncaerys"),
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": os.environ.get("DJ_DB_PORT", "5432"),
        "CONN_MAX_AGE": int(os.environ.get("DJ_CONN_MAX_AGE", "0")),
        "CONN_HEALTH_CHECKS": os.environ.get("DJ_HEALTH_CHECKS") == "1",
        "ATOMIC_REQUESTS": os.environ.get("DJ_ATOMIC") == "1",
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "/login/"

CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("DJ_TRUSTED_ORIGINS", "").split(",") if o]
if os.environ.get("DJ_PROXY_SSL") == "1":
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

SYNCAERYS = json.loads(os.environ.get("DJ_SYNCAERYS", "{}"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "loggers": {
        "syncaerys": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
