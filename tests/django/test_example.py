"""examples/django_chat: its own tests under Django's test runner on PostgreSQL, and its documented start."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.django.postgres import Postgres
from tests.django.server import ROOT

EXAMPLE = ROOT / "examples" / "django_chat"


@pytest.mark.timeout(120)
def test_the_examples_tests_pass_on_postgresql(postgres: Postgres) -> None:
    """Django's test runner makes its test database; syncaerys.django.testing serves and connects."""
    env = dict(
        os.environ, CHAT_DATABASE_URL=f"postgres://postgres@127.0.0.1:{postgres.port}/chat", PYTHONPATH=str(ROOT)
    )
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "test", "chat", "-v", "2"],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Ran 4 tests" in output and "OK" in output, output
