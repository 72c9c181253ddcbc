"""An empty app named ``daphne``: enough for the system check that warns about daphne's ASGI runserver."""
