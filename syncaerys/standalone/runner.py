"""``run()``: serve targets from the main thread until SIGINT or SIGTERM, then stop gracefully.

What a process that is a syncaerys server does around :class:`~syncaerys.Server`:
one server per address (:func:`servers_for`), logging set up if nothing else
did, the process-wide settings (switch interval, CPU pinning) and the signal
handling of the graceful stop.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import types
from collections.abc import Iterable
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal

from ..host import Host
from ..server import Server
from ..server import ServerOptions
from ..server import check_server_arguments
from ..signal_flag import SignalFlag
from .importer import importing_program
from .process import AUTO
from .process import DEFAULT_SWITCH_INTERVAL
from .process import DEFAULT_THREAD_STACK_SIZE
from .process import check_switch_interval
from .process import check_thread_stack_size
from .process import follow_clients
from .process import pin_to_cpus
from .process import set_switch_interval
from .process import set_thread_stack_size
from .process import use_batch_scheduling

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["run", "servers_for"]

logger = logging.getLogger("syncaerys.run")


def servers_for(
    *targets: Any, host: str = "127.0.0.1", port: int = 1337, **options: Unpack[ServerOptions]
) -> list[Server]:
    """One :class:`~syncaerys.Server` per address: a Host brings its own; anything else uses ``host``/``port``.

    Thread-safe; never blocks (the sockets are bound and listening; nothing is served yet).
    """
    servers = []
    for target in targets:
        if isinstance(target, Host):
            host_options = options.copy()
            if target.ssl_context is not None:
                host_options["ssl_context"] = target.ssl_context
            for address, host_port in target.addresses:
                servers.append(Server(target, address, host_port, **host_options))
        else:
            servers.append(Server(target, host, port, **options))
    return servers


class _Stop(BaseException):
    """Raised in the main thread when a second signal arrives during the stop.

    A BaseException, like KeyboardInterrupt: ``except Exception`` around user
    code (``on_stop``) must not catch it and carry on with the graceful stop.
    """


def _imported_by_a_server() -> bool:
    """Whether ``run()``'s caller is a module that ``flask run``, gunicorn... is importing (then it says so)."""
    importer = importing_program(sys._getframe(2))
    if importer is None:
        return False
    program, module = importer
    logger.warning(
        "syncaerys.run() was called while %s imports the module %s: not serving from there, %s serves "
        'the application. Put the call under `if __name__ == "__main__":` so that it runs only when '
        "the file is run as a script",
        program,
        module,
        program,
    )
    return True


def _check_arguments(
    targets: tuple[Any, ...],
    host: Any,
    port: Any,
    switch_interval: Any,
    batch_scheduling: Any,
    thread_stack_size: Any,
    options: Mapping[str, Any],
) -> None:
    """``run()``'s arguments, checked before anything changes in the process (switch interval, CPU pinning)."""
    if not targets:
        raise TypeError("run() needs at least one Host, Router, gateway or WSGI application")
    check_server_arguments(host, port, options, "run()")
    check_switch_interval(switch_interval)
    if not isinstance(batch_scheduling, bool):
        raise TypeError(f"batch_scheduling must be True or False, not {batch_scheduling!r}")
    check_thread_stack_size(thread_stack_size)


def run(
    *targets: Any,
    host: str = "127.0.0.1",
    port: int = 1337,
    cpu: int | Iterable[int] | str | None = AUTO,
    switch_interval: float | Literal["auto"] | None = DEFAULT_SWITCH_INTERVAL,
    batch_scheduling: bool = True,
    thread_stack_size: int | None = DEFAULT_THREAD_STACK_SIZE,
    **options: Unpack[ServerOptions],
) -> None:
    """Serve until SIGINT or SIGTERM, then stop gracefully.

    A target is a :class:`~syncaerys.Host` (which brings its own addresses and
    TLS), a :class:`~syncaerys.Router`, a gateway from
    :func:`~syncaerys.websocket` or any WSGI application (served on
    ``host:port``). Other options are :class:`~syncaerys.Server`'s. A second signal
    during the graceful stop stops at once. Configures logging if nothing
    else did.

    ``run`` owns its process, so it also applies four process-wide settings
    (a gateway mounted in another server never does):

    * ``switch_interval``: ``sys.setswitchinterval``. Every client thread
      waiting for the GIL wakes at each interval, so with thousands of them
      Python's 5 ms costs the CPU the GIL holder needs. ``"auto"`` (the
      default) sets 0.05 s and, checked each second, 50 µs per client above
      1,000 clients, up to 0.5 s at 10,000 (with 10,000 clients leaving at
      once, their threads were gone in 4.8 s instead of 22 s at 0.05 s); the
      ceiling is the longest a handler computing without a pause keeps the
      others waiting. A number fixes it; ``None`` leaves Python's setting alone.
    * ``cpu``: pin the process to one CPU (``"auto"``, the default), to the
      given CPU number or set of them, or not at all (``None``). GIL hand-offs
      between threads on different cores are the main cost of many small
      messages: pinned to one CPU, 100 clients get about twice the echo round
      trips per second. ``"auto"`` claims a CPU that no other syncaerys process
      of this user on this host holds (a lock file per CPU), so the processes
      of a cluster on one host spread over the CPUs; it pins nothing when
      every CPU is taken. Pass ``None`` for loads with much work outside the
      GIL (TLS, compression, C extensions) that other cores could take.
    * ``batch_scheduling``: on Linux, schedule the process's threads as
      ``SCHED_BATCH`` (see :func:`syncaerys.standalone.process.use_batch_scheduling`):
      a client thread woken by its socket or by the end of a blocking call
      no longer preempts the thread holding the GIL only to find the GIL
      taken. With 1,000 clients whose handlers block, that is 2.1 context
      switches per message instead of 3.5. ``False`` keeps the default
      policy; elsewhere than Linux it does nothing (logged).
    * ``thread_stack_size``: ``threading.stack_size`` for the threads started
      from then on (every client's), 1 MiB by default instead of the usual
      8 MiB: an idle client touches 12 KiB of its stack either way, but
      10,000 clients reserve 10 GiB of address space instead of 80, and a
      stack under 2 MiB is never backed by a transparent huge page. A
      handler recursing through C to Python's default recursion limit needs
      about 440 KiB; one that raises ``sys.setrecursionlimit`` or recurses
      deeper in C code needs more: pass a bigger size, or ``None`` for the
      platform's default (a stack overflow kills the process, it raises no
      exception).

    Call it from the main thread, once per process; it blocks until a signal came and the graceful stop is
    over. (From another thread no signal handler is installed and it serves until the process exits.)

    Called while ``flask run``, gunicorn, Django or ``python -m syncaerys`` imports the module (an
    unguarded ``syncaerys.run(app)`` at the end of the file), it logs a warning and returns at once:
    that program serves the application. Put the call under ``if __name__ == "__main__":``.
    """
    if _imported_by_a_server():
        return
    _check_arguments(targets, host, port, switch_interval, batch_scheduling, thread_stack_size, options)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    set_switch_interval(switch_interval)
    pin_to_cpus(cpu)
    use_batch_scheduling(batch_scheduling)
    set_thread_stack_size(thread_stack_size)
    servers = servers_for(*targets, host=host, port=port, **options)
    stop_requested = SignalFlag()  # raised in a signal handler, which must take no lock
    in_main = threading.current_thread() is threading.main_thread()

    def first_signal(signum: int, frame: types.FrameType | None) -> None:
        stop_requested.raise_flag()

    def second_signal(signum: int, frame: types.FrameType | None) -> None:
        raise _Stop()

    if in_main:
        # Installed explicitly: a process started in the background of a
        # non-interactive shell inherits SIGINT ignored.
        signal.signal(signal.SIGINT, first_signal)
        signal.signal(signal.SIGTERM, first_signal)
    started: list[Server] = []
    try:
        for server in servers:
            server.serve_in_thread()
            started.append(server)
        interval = sys.getswitchinterval()
        while not stop_requested.wait(1.0):
            if switch_interval == "auto":
                interval = follow_clients(interval, sum(server.connection_count() for server in started))
    finally:
        if in_main:
            signal.signal(signal.SIGINT, second_signal)
            signal.signal(signal.SIGTERM, second_signal)
        try:
            for server in reversed(started):
                server.stop()
        except _Stop:
            logger.warning("signalled again: stopping at once")
        finally:
            stop_requested.close()
