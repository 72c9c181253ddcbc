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
import traceback
from collections.abc import Iterable
from collections.abc import Sequence
from pathlib import Path

from ..signal_flag import SignalFlag

__all__ = ["RELOADER_FD", "report_modules", "supervise", "target_file"]

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


def report_modules(error: BaseException | None = None) -> None:
    """In a child of :func:`supervise`: send the files of every imported module to the supervisor.

    Called by the command line once the target is imported, or with the ``error`` its import
    raised: the files of the error's traceback (and a SyntaxError's own file, which never became
    a module) are sent too, so that fixing them restarts the server. A no-op elsewhere.

    Call once, from one thread; blocks while it writes to the pipe, which the supervisor reads at once.
    """
    fd = os.environ.pop(RELOADER_FD, None)
    if fd is None:
        return
    files = _module_files()
    if error is not None:
        files |= _error_files(error)
    with os.fdopen(int(fd), "w") as pipe:
        pipe.write("\n".join(sorted(files)))


def _error_files(error: BaseException) -> set[str]:
    names = [frame.filename for frame in traceback.extract_tb(error.__traceback__)]
    if isinstance(error, SyntaxError) and error.filename:
        names.append(error.filename)
    return {os.path.abspath(name) for name in names if name.endswith(".py") and os.path.isfile(name)}


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


def target_file(argv: Sequence[str], search: Sequence[str] | None = None) -> str | None:
    """The source file of the target's module (``module`` of ``module:attr`` in ``argv``), found without importing it.

    Looked for under the working directory first (as the command line imports it), then
    ``sys.path``. ``None`` when there is none. Thread-safe; blocks on the file system only.
    """
    spec = next((a for a in argv if not a.startswith("-") and ":" in a), None)
    if spec is None:
        return None
    parts = spec.partition(":")[0].split(".")
    for base in [os.getcwd(), *(sys.path if search is None else search)]:
        for candidate in (Path(base, *parts).with_suffix(".py"), Path(base, *parts, "__init__.py")):
            if candidate.is_file():
                return str(candidate.resolve())
    return None


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
    stopping = SignalFlag()  # raised in a signal handler, which must take no lock

    def on_signal(signum: int, frame: object) -> None:
        stopping.raise_flag()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    extra = {str(p.resolve()) for root in watch for p in ([root] if root.is_file() else root.rglob("*.py"))}
    own = target_file(argv)
    if own is not None:
        extra.add(own)
    # A child that fails at import (a SyntaxError) reports no files: the ones the last child
    # imported stay watched, with the target's own file, so that the fix restarts it.
    watched: list[str] = []
    while True:
        child, files = _start(argv)
        watched = files or watched
        stamps = _snapshot({*watched, *extra})
        logger.info("reloader: watching %d files for changes", len(stamps))
        changed = None
        exited = False
        while not stopping.wait(POLL_INTERVAL):
            if not exited and child.poll() is not None:
                # An error at start (an import error, a port in use): restart once something changes.
                exited = True
                logger.error("reloader: the server exited with %s; waiting for a change", child.returncode)
            now = _snapshot(stamps)
            changed = next((path for path, stamp in now.items() if stamp != stamps[path]), None)
            if changed is not None:
                break
        if stopping.is_raised():
            _stop(child, 10.0)
            return child.returncode or 0
        logger.info("reloader: %s changed, restarting", changed)
        _stop(child, 10.0)
