"""Server on a busy port raises OSError; star import without redis-py."""

from __future__ import annotations

import errno
import socket
import subprocess
import sys
import textwrap

import pytest

import syncaerys
from tests.utils import Recorder


def test_a_busy_port_raises_os_error_naming_the_address() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(OSError, match=rf"127\.0\.0\.1:{port}") as caught:
            syncaerys.Server(syncaerys.websocket(Recorder()), "127.0.0.1", port)
    assert caught.value.errno == errno.EADDRINUSE
    assert not isinstance(caught.value, SystemExit)


def test_an_address_that_cannot_be_bound_raises_os_error() -> None:
    with pytest.raises(OSError, match=r"192\.0\.2\.1"):
        syncaerys.Server(syncaerys.websocket(Recorder()), "192.0.2.1", 0)  # TEST-NET-1: not on this host


def run_without_redis(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter where ``import redis`` fails."""
    prelude = "import sys\nsys.modules['redis'] = None  # import redis raises ImportError\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )


def test_star_import_works_without_redis_py() -> None:
    done = run_without_redis(
        """
        from syncaerys import *
        print(sorted(name for name in ("RedisBackplane", "Publisher", "Websocket") if name in globals()))
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['Publisher', 'RedisBackplane', 'Websocket']"


def test_without_redis_py_building_a_backplane_names_the_extra() -> None:
    done = run_without_redis(
        """
        import syncaerys
        for build in (lambda: syncaerys.RedisBackplane(), lambda: syncaerys.Publisher()):
            try:
                build()
            except ImportError as error:
                print(error)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("pip install 'syncaerys[redis]'") == 2
