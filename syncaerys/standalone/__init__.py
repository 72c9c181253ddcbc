"""Running syncaerys as its own program: :func:`syncaerys.run`, ``python -m syncaerys``, ``--reload``.

The runner (signals, one server per address), the command line, the process
settings (CPU pinning, batch scheduling, the switch interval) and the reloader.
Only this folder, ``syncaerys/__init__`` and ``__main__`` import it: the rest of
the package runs under any WSGI host without it. Internal: import
:func:`syncaerys.run` from :mod:`syncaerys`.
"""
