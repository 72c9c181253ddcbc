"""Process-wide tuning that only the standalone server applies (see :func:`syncaerys.run`).

These settings change the whole Python process, so a gateway mounted in
someone else's server never touches them; :func:`syncaerys.run` and
``python -m syncaerys`` own their process and apply them.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import IO
from typing import Literal

__all__ = [
    "AUTO",
    "DEFAULT_SWITCH_INTERVAL",
    "DEFAULT_THREAD_STACK_SIZE",
    "INHERITED_PIN",
    "INHERITED_BATCH",
    "claim_cpu",
    "pin_to_cpus",
    "restore_inherited_affinity",
    "restore_inherited_scheduling",
    "auto_switch_interval",
    "check_switch_interval",
    "follow_clients",
    "set_switch_interval",
    "check_thread_stack_size",
    "set_thread_stack_size",
    "use_batch_scheduling",
]

#: ``cpu="auto"``: pin to one CPU that no other syncaerys process on this host has claimed.
AUTO = "auto"

# The CPU this process claimed and its lock file, held open for the process's life.
_claim: tuple[int, IO[bytes]] | None = None

logger = logging.getLogger("syncaerys.process")

#: ``switch_interval="auto"`` (the standalone server's default): the GIL switch
#: interval follows the number of clients. Every thread waiting for the GIL
#: wakes at each interval (CPython's timed wait), so N waiting threads cost
#: N / interval wake-ups a second: with 10,000 clients leaving at once and
#: 50 ms, 29 s of CPU and 22 s until their threads were gone; with 0.5 s, 11 s
#: and 4.8 s. The interval is the floor below 1,000 clients (Python's 5 ms
#: took a burst of one message on each of 5,000 connections from 0.33 s to
#: 0.61 s), then 50 µs per client, up to the ceiling: the longest a handler
#: computing without a pause can keep every other client waiting.
DEFAULT_SWITCH_INTERVAL: Literal["auto"] = "auto"
AUTO_SWITCH_FLOOR = 0.05
AUTO_SWITCH_PER_CLIENT = 50e-6
AUTO_SWITCH_CEILING = 0.5


def auto_switch_interval(clients: int) -> float:
    """The switch interval ``"auto"`` chooses for this many clients, in seconds (to the millisecond). Never blocks."""
    seconds = min(AUTO_SWITCH_CEILING, max(AUTO_SWITCH_FLOOR, clients * AUTO_SWITCH_PER_CLIENT))
    return round(seconds, 3)


def check_switch_interval(seconds: object) -> None:
    """Raise :class:`ValueError` unless ``seconds`` is ``"auto"``, ``None`` or a number of seconds above 0."""
    if seconds is None or seconds == "auto":
        return
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise ValueError(f"switch_interval must be 'auto', None or a number of seconds greater than 0, not {seconds!r}")


def set_switch_interval(seconds: float | Literal["auto"] | None) -> None:
    """``sys.setswitchinterval(seconds)``; ``"auto"`` sets the floor of :func:`auto_switch_interval`
    (:func:`follow_clients` then moves it); ``None`` leaves Python's setting alone.

    Thread-safe (a process-wide setting); never blocks.
    """
    check_switch_interval(seconds)
    if seconds is None:
        return
    sys.setswitchinterval(AUTO_SWITCH_FLOOR if seconds == "auto" else seconds)


def follow_clients(current: float, clients: int) -> float:
    """Under ``switch_interval="auto"``: set the interval for ``clients`` if it changed; returns the one in force.

    Thread-safe (a process-wide setting); never blocks.
    """
    target = auto_switch_interval(clients)
    if target != current:
        sys.setswitchinterval(target)
        logger.debug("switch interval %.3f s for %d clients", target, clients)
    return target


#: The standalone server's thread stack size, in bytes (glibc's default is the
#: stack rlimit, usually 8 MiB). A stack costs the pages its thread touched
#: (12 KiB for an idle client), whatever its size; the size bounds the
#: address space (10,000 clients: 10 GiB instead of 80 GiB, which matters
#: under ``vm.overcommit_memory=2`` or ``ulimit -v``) and, below the 2 MiB of
#: a huge page, keeps transparent huge pages (``enabled=always``) from
#: backing a stack with 2 MiB. Recursing through C (``__init__`` calling a
#: class, ``repr`` of a nested object) to Python's default recursion limit of
#: 1,000 needs about 440 KiB; 1 MiB leaves twice that.
DEFAULT_THREAD_STACK_SIZE = 1 << 20


#: The least ``threading.stack_size`` takes.
MIN_THREAD_STACK_SIZE = 32 * 1024


def check_thread_stack_size(size: object) -> None:
    """Raise :class:`TypeError` or :class:`ValueError`, naming the option, for a size that cannot be set.

    Thread-safe; never blocks.
    """
    if size is None:
        return
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"thread_stack_size must be a number of bytes (an int) or None, not {size!r}")
    if size < MIN_THREAD_STACK_SIZE:
        raise ValueError(f"thread_stack_size must be at least {MIN_THREAD_STACK_SIZE} bytes (32 KiB), not {size}")


def set_thread_stack_size(size: int | None) -> None:
    """``threading.stack_size(size)`` for the threads started from now on; ``None`` leaves it alone.

    Process-wide: call once at start-up, from one thread (not thread-safe); never blocks.
    Raises as :func:`check_thread_stack_size` does, or :class:`ValueError` for a size the platform refuses.
    """
    check_thread_stack_size(size)
    if size is None:
        return
    try:
        threading.stack_size(size)
    except ValueError as error:  # e.g. not a multiple of the page size where the platform requires one
        raise ValueError(f"thread_stack_size={size} refused by the platform: {error}") from error


#: Set in the environment of a process that switched to batch scheduling, for its exec'd children.
INHERITED_BATCH = "SYNCAERYS_INHERITED_BATCH"
_batch_hook_installed = False


def use_batch_scheduling(enabled: bool) -> bool:
    """Put every thread of the process, and the threads it starts later, in Linux's ``SCHED_BATCH`` class.

    A thread woken by the kernel (data on its socket, its ``time.sleep``
    over) then waits for the running thread's time slice to end or for it
    to block, instead of preempting it. Under the GIL a preempted thread
    usually holds the GIL, so the woken one only finds it taken and sleeps
    again: with 1,000 clients whose handlers block, batch scheduling took
    the server from 3.5 to 2.1 context switches per message and its p99
    latency from 4.7x gevent's to 1.5x (``benchmarks/README.md``). The
    policy is otherwise fair (the same CPU share as ``SCHED_OTHER``).

    Returns whether it was applied; ``False`` (logged at INFO) where the
    platform has no ``SCHED_BATCH``, or with ``enabled`` false. Child
    processes are given ``SCHED_OTHER`` back, as :func:`pin_to_cpus` does
    for the affinity: forked ones at once, exec'd Python ones that import
    syncaerys at import.

    Process-wide: call once at start-up, from one thread (not thread-safe); never blocks.
    """
    if not enabled:
        return False
    setter = getattr(os, "sched_setscheduler", None)
    batch = getattr(os, "SCHED_BATCH", None)
    if setter is None or batch is None:
        logger.info("batch_scheduling ignored: this platform has no SCHED_BATCH")
        return False
    param = os.sched_param(0)
    try:
        threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        threads = [0]  # no /proc: the calling thread, whose later threads inherit it
    try:
        for thread in threads:
            try:
                setter(thread, batch, param)
            except ProcessLookupError:  # that thread ended meanwhile
                pass
    except OSError as error:
        logger.warning("batch_scheduling not applied: %s", error)
        return False
    _restore_scheduling_in_children()
    logger.info("threads scheduled as SCHED_BATCH (batch_scheduling=False or --no-batch-scheduling turns it off)")
    return True


def _restore_scheduling_in_children() -> None:
    global _batch_hook_installed
    os.environ[INHERITED_BATCH] = "1"
    if not _batch_hook_installed:
        _batch_hook_installed = True
        os.register_at_fork(after_in_child=restore_inherited_scheduling)


def restore_inherited_scheduling() -> None:
    """Give a child of a batch-scheduled server ``SCHED_OTHER`` back (called at import and in forked children).

    Only ``SCHED_BATCH`` is undone: a child whose policy was changed since keeps it.

    Not thread-safe (process-wide state: it runs at import and in a just-forked child); never blocks.
    """
    if os.environ.pop(INHERITED_BATCH, None) is None or not hasattr(os, "SCHED_BATCH"):
        return
    try:
        if os.sched_getscheduler(0) == os.SCHED_BATCH:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except OSError:  # not allowed here: the child stays a batch thread, which is only less eager
        pass


def pin_to_cpus(cpu: int | Iterable[int] | str | None) -> set[int] | None:
    """Restrict the process to the given CPU numbers; ``None`` leaves it alone.

    ``"auto"`` picks one CPU with :func:`claim_cpu`, and pins nothing when
    every CPU is claimed or the process may use only one anyway.

    Returns the CPUs applied, or ``None`` where the platform cannot pin
    (logged). Only the GIL holder runs Python code at a time, and handing the
    GIL between threads on different cores costs far more than on one core.

    Process-wide: call once at start-up, from one thread (not thread-safe); never blocks (``"auto"`` takes its
    lock file without waiting).
    """
    if cpu is None:
        return None
    if isinstance(cpu, str):
        if cpu != AUTO:
            raise ValueError(f"cpu must be a CPU number, a set of them, 'auto' or None, not {cpu!r}")
        claimed = claim_cpu()
        if claimed is None:
            return None
        cpu = claimed
    try:
        cpus = {cpu} if isinstance(cpu, int) else set(cpu)
    except TypeError:
        raise ValueError(f"cpu must be a CPU number or a set of them, not {cpu!r}") from None
    if not cpus or any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in cpus):
        raise ValueError(f"cpu must be a CPU number or a set of them, not {cpu!r}")
    setter = getattr(os, "sched_setaffinity", None)
    if setter is None:
        logger.warning("cpu=%r ignored: this platform cannot pin a process to CPUs", cpu)
        return None
    original = os.sched_getaffinity(0)
    setter(0, cpus)
    _unpin_children(cpus, original)
    logger.info(
        "pinned to CPU %s for the GIL's sake (child processes get CPUs %s back; cpu=None or --cpu none turns "
        "pinning off)",
        _cpu_list(cpus),
        _cpu_list(original),
    )
    return cpus


def _cpu_list(cpus: Iterable[int]) -> str:
    return ",".join(map(str, sorted(cpus)))


#: Set in the environment of a pinned process, for its exec'd children: "pinned;original".
INHERITED_PIN = "SYNCAERYS_INHERITED_PIN"
_fork_hook_installed = False


def _unpin_children(pinned: set[int], original: set[int]) -> None:
    """Make child processes run on ``original`` again: the pin is for this server, not for its workers.

    A forked child (``os.fork``, multiprocessing's "fork") is restored at once
    by an at-fork hook. An exec'd child (``subprocess``, multiprocessing's
    "spawn" and "forkserver") inherits the affinity through exec, where no
    Python hook runs: it finds :data:`INHERITED_PIN` in its environment and
    is restored when it imports syncaerys (a multiprocessing child re-imports
    the main module, which does). Other programs keep the pin; see the README.
    """
    global _fork_hook_installed
    os.environ[INHERITED_PIN] = f"{_cpu_list(pinned)};{_cpu_list(original)}"
    if not _fork_hook_installed:
        _fork_hook_installed = True
        os.register_at_fork(after_in_child=restore_inherited_affinity)


def restore_inherited_affinity() -> None:
    """Undo a pin inherited from a syncaerys server process (called at import and in forked children).

    Only the exact pin is undone: a child whose affinity was changed since
    keeps it. Forgets this process's CPU claim (the parent keeps holding it).

    Not thread-safe (process-wide state: it runs at import and in a just-forked child); never blocks.
    """
    global _claim
    _claim = None
    value = os.environ.pop(INHERITED_PIN, None)
    if value is None or not hasattr(os, "sched_setaffinity"):
        return
    try:
        pinned_text, original_text = value.split(";")
        pinned = {int(c) for c in pinned_text.split(",")}
        original = {int(c) for c in original_text.split(",")}
        if os.sched_getaffinity(0) == pinned:
            os.sched_setaffinity(0, original)
    except (ValueError, OSError):  # a malformed value, or CPUs that are gone: keep what we have
        pass


def _untrusted(directory: Path) -> str | None:
    """Why ``directory`` may not hold our lock files, or ``None``: a real directory, ours, 0700."""
    try:
        info = os.lstat(directory)
    except OSError as error:
        return f"cannot be checked ({error})"
    if not stat.S_ISDIR(info.st_mode):
        return "is not a directory (a symbolic link?)"
    if info.st_uid != os.getuid():
        return f"belongs to uid {info.st_uid}, not to this user"
    if info.st_mode & 0o077:
        return f"is open to other users (mode {stat.S_IMODE(info.st_mode):o}; 700 expected)"
    return None


def claim_cpu(lock_dir: Path | None = None) -> int | None:
    """Claim a CPU of this process's affinity set that no other process holds.

    Each claim is an exclusive ``flock`` on ``cpu<N>.lock`` in a per-user
    directory of the system's temporary directory, held while the process lives (the
    kernel drops it when the process ends, however it ends). So several
    servers started on one host (a cluster of processes) get different CPUs.
    ``None`` when there is nothing to gain (one CPU allowed), when every CPU
    is claimed, or when the platform has no affinity or no ``flock``.

    Not thread-safe (the claim is process-wide: call from one thread); never blocks (``flock`` without
    waiting).
    """
    global _claim
    if _claim is not None:
        return _claim[0]
    getter = getattr(os, "sched_getaffinity", None)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return None
    if getter is None:
        return None
    allowed: list[int] = sorted(getter(0))
    if len(allowed) < 2:
        return None
    directory = lock_dir or Path(tempfile.gettempdir()) / f"syncaerys-cpus-{os.getuid()}"
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
    except OSError as error:
        logger.info("cpu='auto': cannot claim a CPU (%s); not pinning", error)
        return None
    problem = _untrusted(directory)
    if problem is not None:
        # Another user could hold every lock (no pinning for us) or swap the files for links.
        logger.warning("cpu='auto': not pinning: the lock directory %s %s", directory, problem)
        return None
    for cpu in allowed:
        try:
            # O_NOFOLLOW: a link planted in place of a lock file is not followed.
            descriptor = os.open(
                directory / f"cpu{cpu}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
            )
            handle = os.fdopen(descriptor, "r+b")  # held (open) for the process's life
        except OSError:
            continue
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _claim = (cpu, handle)
        return cpu
    logger.info("cpu='auto': every CPU is claimed by another syncaerys process; not pinning")
    return None


# An exec'd child of a pinned server (see _unpin_children) gets its CPUs back on import,
# and its scheduling policy (see use_batch_scheduling).
if INHERITED_PIN in os.environ:
    restore_inherited_affinity()
if INHERITED_BATCH in os.environ:
    restore_inherited_scheduling()
