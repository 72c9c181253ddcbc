"""``python -m syncaerys app:Chat --reload``: restart the server when its source changes.

For development, as ``flask run --debug`` does: a supervising process runs
the server in a child process (the same command line without ``--reload``),
watches the modules the child imported, and on a change stops the child
gracefully (SIGTERM: ``on_stop``, 1001 to every client) and starts a new one.
The child reports its modules' files on a pipe, so that a change anywhere in
the application is seen, not only in the target's file.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable
from collections.abc import Sequence
from pathlib import Path

__all__ = ["RELOADER_FD", "report_modules", "supervise"]

logger = logging.getLogger("syncaerys.reloader")

#: The environment variable through which the child gets the pipe for its module list.
RELOADER_FD = "SYNCAERYS_RELOADER_FD"
#: How often the files are looked at.
POLL_INTERVAL = 0.5


def _module_files() -> set[str]:
    files = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and path.endswith(".py") and os.path.isfile(path):
            files.add(os.path.abspath(path))
    return files


def report_modules() -> None:
    """In a child of :func:`supervise`: send the files of every imported module to the supervisor.

    Called by the command line once the target is imported; a no-op elsewhere.

    Call once, from one thread; blocks while it writes to the pipe, which the supervisor reads at once.
    """
    fd = os.environ.pop(RELOADER_FD, None)
    if fd is None:
        return
    with os.fdopen(int(fd), "w") as pipe:
        pipe.write("\n".join(sorted(_module_files())))


def _snapshot(files: Iterable[str]) -> dict[str, float]:
    stamps = {}
    for path in files:
        try:
            stamps[path] = os.stat(path).st_mtime
        except OSError:
            stamps[path] = -1.0  # gone: coming back counts as a change
    return stamps


def _start(argv: Sequence[str]) -> tuple[subprocess.Popen[bytes], list[str]]:
    read, write = os.pipe()
    env = {**os.environ, RELOADER_FD: str(write)}
    child = subprocess.Popen([sys.executable, "-m", "syncaerys", *argv], env=env, pass_fds=(write,))
    os.close(write)
    files: list[str] = []

    def collect() -> None:
        with os.fdopen(read) as pipe:
            files.extend(line for line in pipe.read().splitlines() if line)

    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    reader.join(60)  # until the child imported the target (or exited)
    return child, files


def _stop(child: subprocess.Popen[bytes], timeout: float) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def supervise(argv: Sequence[str], watch: Iterable[Path] = ()) -> int:
    """Run ``python -m syncaerys *argv`` and restart it when a source file changes.

    Blocks until SIGINT or SIGTERM, which stop the child gracefully; returns
    its exit status. ``watch`` adds files or directories (``*.py`` under
    them) to the imported modules' files.

    Call from the main thread: it installs signal handlers.
    """
    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    extra = {str(p.resolve()) for root in watch for p in ([root] if root.is_file() else root.rglob("*.py"))}
    while True:
        child, files = _start(argv)
        stamps = _snapshot({*files, *extra})
        logger.info("reloader: watching %d files for changes", len(stamps))
        changed = None
        while not stopping.wait(POLL_INTERVAL):
            if child.poll() is not None and not files:
                break  # it failed before it could import the target: wait for a fix
            now = _snapshot(stamps)
            changed = next((path for path, stamp in now.items() if stamp != stamps[path]), None)
            if changed is not None:
                break
        if stopping.is_set():
            _stop(child, 10.0)
            return child.returncode or 0
        if changed is None:
            # The child exited (an error at start): restart once something changes.
            logger.error("reloader: the server exited with %s; waiting for a change", child.returncode)
            while not stopping.wait(POLL_INTERVAL):
                if _snapshot(stamps) != stamps:
                    break
            if stopping.is_set():
                return child.returncode or 0
            continue
        logger.info("reloader: %s changed, restarting", changed)
        _stop(child, 10.0)
