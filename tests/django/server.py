"""The test project (tests/django/project) served by a real host in a subprocess: each way Django users run it."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.utils import PROMPTLY
from tests.utils import free_port

PROJECT = Path(__file__).resolve().parent / "project"
ROOT = PROJECT.parents[2]
#: How long a host may take to boot Django on a loaded machine.
BOOT_TIMEOUT = 30.0

#: Each way the project can be served, as the command that serves it on ``{port}``.
HOSTS: dict[str, list[str]] = {
    "runserver": ["manage.py", "runserver", "--noreload", "127.0.0.1:{port}"],
    "runserver-autoreload": ["manage.py", "runserver", "127.0.0.1:{port}"],
    "gunicorn": [
        "-m",
        "gunicorn",
        "-c",
        "gunicorn.conf.py",
        "-b",
        "127.0.0.1:{port}",
        "--no-control-socket",
        "djproject.wsgi",
    ],
    "runsyncaerys": ["manage.py", "runsyncaerys", "127.0.0.1:{port}"],
    "python-m-syncaerys": ["-m", "syncaerys", "djproject.wsgi:application", "--port", "{port}", "--cpu", "none"],
}


def project_env(database: str, port: int, **settings: str) -> dict[str, str]:
    """The environment of a project process: its database and the settings under test (DJ_* names)."""
    env = dict(os.environ)
    env.update({"DJ_DB_NAME": database, "DJ_DB_PORT": str(port), "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"})
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update({f"DJ_{name.upper()}": value for name, value in settings.items()})
    return env


def manage(env: dict[str, str], *argv: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """``manage.py argv`` in the project; its output, whatever the exit status."""
    return subprocess.run(
        [sys.executable, "manage.py", *argv], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=timeout
    )


class DjangoServer:
    """One host process serving the project; its output goes to a file."""

    def __init__(self, host: str, env: dict[str, str], log_path: Path) -> None:
        self.host = host
        self.env = env
        self.log_path = log_path
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, expect_failure: bool = False) -> None:
        self.port = free_port()
        command = [sys.executable, *(part.format(port=self.port) for part in HOSTS[self.host])]
        extra = self.env.get("DJ_EXTRA_ARGS", "").split()
        if extra:
            command[-1:-1] = extra  # before the target (gunicorn's app, the command's address)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, cwd=PROJECT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        if expect_failure:
            return
        deadline = time.monotonic() + BOOT_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.host} exited with {self.process.returncode}:\n{self.log()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if self.get("/health/")[0] == 200:
                    return
            time.sleep(0.05)
        raise AssertionError(f"{self.host} did not serve /health/ in time:\n{self.log()}")

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=PROMPTLY * 2)
        try:
            connection.request("GET", path, headers=headers or {})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=PROMPTLY * 2)
        try:
            connection.request("POST", path, body=body)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def login(self, name: str) -> str:
        """Log in as ``name`` through the project's test view; the Cookie header carrying the session."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=PROMPTLY * 2)
        try:
            connection.request("GET", f"/login/{name}/")
            response = connection.getresponse()
            assert response.status == 200, response.read()
            response.read()
            cookies = [v.split(";", 1)[0] for k, v in response.getheaders() if k.lower() == "set-cookie"]
        finally:
            connection.close()
        assert any(c.startswith("sessionid=") for c in cookies), cookies
        return "; ".join(cookies)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def signal(self, signum: int) -> None:
        """Signal the host's whole process group (as a terminal's Ctrl-C does)."""
        assert self.process is not None
        os.killpg(self.process.pid, signum)

    def wait(self, timeout: float = BOOT_TIMEOUT) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.signal(signal.SIGTERM)
        try:
            self.process.wait(BOOT_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                self.signal(signal.SIGKILL)
            self.process.wait(BOOT_TIMEOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
