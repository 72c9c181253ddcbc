#!/usr/bin/env python
"""The Django chat example's manage.py. Start it (from the repository's root) with:

    python examples/django_chat/manage.py runsyncaerys --migrate

then open http://127.0.0.1:8000/ in two browsers.
"""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
