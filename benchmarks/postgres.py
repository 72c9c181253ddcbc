"""A private PostgreSQL server for the Django scenarios: Debian's binaries, a data directory of its own, a free port.

As root the server runs as the ``postgres`` user (PostgreSQL refuses root), through
``runuser``. ``stop()`` removes everything it made. Used by run.py; needs psycopg.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

BOOT_TIMEOUT = 30.0


def binaries() -> Path | None:
    """The newest /usr/lib/postgresql/N/bin with a ``postgres``, or the directory of ``initdb`` on PATH, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class Postgres:
    """One server on 127.0.0.1 with ``max_connections`` sessions, trust authentication, user postgres."""

    def __init__(self, bindir: Path, max_connections: int) -> None:
        self.bindir = bindir
        self.max_connections = max_connections
        self.base = Path(tempfile.mkdtemp(prefix="syncaerys-bench-pg-"))
        self.data = self.base / "data"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.as_postgres = os.geteuid() == 0

    def command(self, *argv: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if self.as_postgres else list(argv)

    def start(self, spawn: Any) -> None:
        """initdb, then the server, started with ``spawn(cmd, **popen_kwargs)`` (the runner's, killed on exit)."""
        if self.as_postgres:
            shutil.chown(self.base, "postgres")
        subprocess.run(
            self.command(
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
            timeout=120,
        )
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.base),
            "max_connections": str(self.max_connections),
            "fsync": "off",
            "synchronous_commit": "off",
            "shared_buffers": "64MB",
        }
        log = open(self.base / "server.log", "ab")
        self.process = spawn(
            self.command(
                str(self.bindir / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                *(f"-c{k}={v}" for k, v in settings.items()),
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + BOOT_TIMEOUT
        import psycopg

        while True:
            try:
                with self.connect():
                    return
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL did not start:\n{self.log()}") from None
                time.sleep(0.1)

    def log(self) -> str:
        return (self.base / "server.log").read_text(errors="replace")[-3000:]

    def connect(self, dbname: str = "postgres") -> Any:
        import psycopg

        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=dbname, autocommit=True, connect_timeout=5
        )

    def create_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name}")

    def sessions(self, dbname: str) -> int:
        """Sessions open on ``dbname`` now (pg_stat_activity, this query's own not counted)."""
        with self.connect() as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [dbname]
            ).fetchone()
        return int(row[0])

    def cpu_seconds(self) -> float:
        """CPU time of the whole server so far: the postmaster, its live backends and those it reaped (cutime)."""
        try:
            master = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return 0.0
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(pid) == master:  # utime, stime, cutime, cstime: fields 14-17 of stat(5)
                total += sum(int(x) for x in fields[11:15])
            elif int(fields[1]) == master:  # a backend: its parent is the postmaster
                total += int(fields[11]) + int(fields[12])
        return total / ticks

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # SIGINT: PostgreSQL's fast shutdown (SIGTERM's smart one waits for every session).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(BOOT_TIMEOUT)
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.base, ignore_errors=True)
