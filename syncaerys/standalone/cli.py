"""``python -m syncaerys module:attr``: serve an application from the shell."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import ssl
import sys
from collections.abc import Sequence
from typing import Any

from ..gateway import websocket
from ..host import Host
from ..websocket import Websocket
from .process import DEFAULT_SWITCH_INTERVAL
from .process import DEFAULT_THREAD_STACK_SIZE
from .reloader import report_modules
from .reloader import supervise
from .runner import run

__all__ = ["main", "load_target"]


def load_target(spec: str) -> Any:
    """Import ``module:attr`` (``attr`` may be dotted) and make it servable.

    A :class:`~syncaerys.Websocket` instance or subclass is wrapped with
    :func:`~syncaerys.websocket`, a Django project's WSGI application with
    :func:`syncaerys.django.application`; anything else (a Host, Router, gateway or
    WSGI application) is served as it is.

    Call from one thread (it imports and may change ``sys.path``); blocks while the import runs.
    """
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise SystemExit(f"expected module:attr, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    if isinstance(target, type) and issubclass(target, Websocket):
        target = target()
    if isinstance(target, Websocket):
        target = websocket(target)
    if "django" in sys.modules:
        # A Django project's wsgi.py: its websocket gateways start and stop with the server.
        from ..django import application
        from ..django import is_django_application

        if is_django_application(target):
            target = application(target)
    return target


def _connections(value: str) -> int | str | None:
    if value in ("auto", "none"):
        return None if value == "none" else value
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m syncaerys``: parse ``argv`` (by default ``sys.argv[1:]``) and serve the target.

    It serves with :func:`~syncaerys.run`. Call from the main thread; blocks until the server
    stopped (with ``--reload``, until the supervisor ends, then exits the process).
    """
    parser = argparse.ArgumentParser(prog="python -m syncaerys", description="Serve a syncaerys application.")
    parser.add_argument("target", help="module:attr of a Host, Router, gateway, Websocket handler or WSGI app")
    parser.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port to listen on (default 1337)")
    parser.add_argument("--certfile", help="TLS certificate (PEM); serves wss://")
    parser.add_argument("--keyfile", help="TLS private key (PEM)")
    parser.add_argument(
        "--max-connections",
        type=_connections,
        default="auto",
        help="connections served at once: a number, 'none', or 'auto' (the default: from the open-file limit)",
    )
    parser.add_argument(
        "--cpu",
        default="auto",
        help="pin the process to CPUs: 'auto' (default: one CPU no other syncaerys process holds), "
        "'none', or numbers such as 0 or 0,1",
    )
    parser.add_argument(
        "--switch-interval",
        type=_switch_interval,
        default=DEFAULT_SWITCH_INTERVAL,
        help="sys.setswitchinterval for the process: 'auto' (default: 0.05 s, raised with the clients "
        "above 1,000, up to 0.5 s), 'none' (Python's 0.005), or seconds",
    )
    parser.add_argument(
        "--thread-stack-size",
        default=str(DEFAULT_THREAD_STACK_SIZE // 1024),
        help="KiB of stack for each thread (default %(default)s KiB; 'none': the platform's, usually 8 MiB); "
        "a handler that recurses deep in C code needs more",
    )
    parser.add_argument(
        "--batch-scheduling",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="schedule the threads as SCHED_BATCH on Linux (default: on; --no-batch-scheduling keeps the default "
        "policy)",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument(
        "--trusted-proxies",
        default=None,
        help="comma-separated addresses or networks of reverse proxies whose forwarding header is believed",
    )
    parser.add_argument(
        "--proxy-header",
        default="X-Forwarded-For",
        choices=["X-Forwarded-For", "Forwarded"],
        help="the one forwarding header the trusted proxies write (default: X-Forwarded-For)",
    )
    parser.add_argument(
        "--reload",
        action="store_true",
        help="for development: restart the server when a source file of the application changes",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    if args.reload:
        arguments = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--reload"]
        sys.exit(supervise(arguments))
    try:
        target = load_target(args.target)
    except BaseException as error:
        report_modules(error)  # under --reload: what to watch for the fix
        raise
    report_modules()
    options: dict[str, Any] = {
        "max_connections": args.max_connections,
        "switch_interval": args.switch_interval,
        "batch_scheduling": args.batch_scheduling,
    }
    options["thread_stack_size"] = _stack_size(parser, args.thread_stack_size)
    if args.cpu == "none":
        options["cpu"] = None
    elif args.cpu != "auto":
        try:
            options["cpu"] = {int(c) for c in args.cpu.split(",")}
        except ValueError:
            parser.error(f"--cpu expects auto, none or CPU numbers such as 0 or 0,1, not {args.cpu!r}")
    if args.trusted_proxies:
        options["trusted_proxies"] = [p.strip() for p in args.trusted_proxies.split(",") if p.strip()]
        options["proxy_header"] = args.proxy_header
    if args.certfile:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.certfile, args.keyfile)
        options["ssl_context"] = context
    if isinstance(target, Host) and (args.host is not None or args.port is not None):
        address, port = target.addresses[0]
        target = Host().expose(args.host or address, args.port if args.port is not None else port).use(target)
    run(target, host=args.host or "127.0.0.1", port=args.port if args.port is not None else 1337, **options)


def _stack_size(parser: argparse.ArgumentParser, text: str) -> int | None:
    """``--thread-stack-size``: KiB, or ``none`` (the platform's default)."""
    if text == "none":
        return None
    try:
        return int(text) * 1024
    except ValueError:
        parser.error(f"--thread-stack-size expects KiB (such as 1024) or none, not {text!r}")


def _switch_interval(value: str) -> float | str | None:
    """``--switch-interval``: ``auto``, ``none`` or seconds."""
    if value in ("auto", "none"):
        return None if value == "none" else value
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto', 'none' or seconds, not {value!r}") from None
