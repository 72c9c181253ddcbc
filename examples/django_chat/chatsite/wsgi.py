"""The example's WSGI application: what runserver, gunicorn and runsyncaerys serve, websockets included."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")

application = get_wsgi_application()
