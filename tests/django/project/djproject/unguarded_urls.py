"""The project's URLconf, ending with an unguarded ``syncaerys.run()``: Django imports it, and run() must say so.

``DJ_OWN_PORT`` is the port run() would take over if it did not notice.
"""

import os

import syncaerys
from djproject.urls import urlpatterns
from djproject.wsgi import application

__all__ = ["urlpatterns"]

syncaerys.run(application, port=int(os.environ["DJ_OWN_PORT"]), cpu=None)
