"""A private PostgreSQL server for the Django tests: Debian's binaries, a data directory of its own, a free port.

As root (CI, this project's containers) the server runs as the ``postgres`` user, which
PostgreSQL requires. Tests make a database each from a migrated template.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from tests.utils import free_port

#: How long the server may take to accept connections on a loaded machine.
BOOT_TIMEOUT = 30.0


def binaries() -> Path | None:
    """The directory of Debian's PostgreSQL binaries (the newest version), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class Postgres:
    """One PostgreSQL server on 127.0.0.1 for the session; ``stop()`` removes everything it made."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.base = Path(tempfile.mkdtemp(prefix="syncaerys-pg-"))
        self.data = self.base / "data"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._as_postgres = os.geteuid() == 0
        self._databases = 0

    def _command(self, *argv: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if self._as_postgres else list(argv)

    def start(self) -> None:
        if self._as_postgres:
            shutil.chown(self.base, "postgres")
        subprocess.run(
            self._command(
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ),
            check=True,
            capture_output=True,
        )
        self.port = free_port()
        log = open(self.base / "server.log", "ab")  # held open for the server's life
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.base),
            "max_connections": "400",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "64MB",
        }
        options = [f"-c{name}={value}" for name, value in settings.items()]
        self.process = subprocess.Popen(
            self._command(str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port), *options),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + BOOT_TIMEOUT
        while True:
            try:
                with self.connect():
                    return
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"PostgreSQL did not start:\n{self.log()}") from None
                time.sleep(0.05)

    def log(self) -> str:
        return (self.base / "server.log").read_text(errors="replace")

    def connect(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=dbname, autocommit=True)

    def create_database(self, template: str | None = None) -> str:
        self._databases += 1
        name = f"t{os.getpid()}_{self._databases}"
        with self.connect() as conn:
            clause = f" TEMPLATE {template}" if template else ""
            conn.execute(f"CREATE DATABASE {name}{clause}")
        return name

    def connections_to(self, dbname: str) -> int:
        """How many sessions the server has open on ``dbname`` (pg_stat_activity; this query's own not counted)."""
        with self.connect() as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [dbname]
            ).fetchone()
        assert row is not None
        return int(str(row[0]))

    def active_queries(self, dbname: str, like: str) -> int:
        """How many sessions on ``dbname`` are running a query containing ``like`` right now."""
        with self.connect() as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND state = 'active' AND query LIKE %s "
                "AND pid <> pg_backend_pid()",
                [dbname, f"%{like}%"],
            ).fetchone()
        assert row is not None
        return int(str(row[0]))

    def terminate(self, dbname: str, like: str) -> int:
        """End the sessions on ``dbname`` running a query containing ``like``; how many were ended."""
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND query LIKE %s "
                "AND pid <> pg_backend_pid()",
                [dbname, f"%{like}%"],
            ).fetchall()
        return len(rows)

    def scalar(self, dbname: str, query: str) -> object:
        with self.connect(dbname) as conn:
            row = conn.execute(query).fetchone()
        assert row is not None
        return row[0]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(BOOT_TIMEOUT)
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.base, ignore_errors=True)
