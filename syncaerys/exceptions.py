"""The exceptions syncaerys raises.

* :class:`SyncaerysError`: the base of everything below.

  * :class:`ClientException`: an operation on a client could not be done;
    raised by :meth:`Message.result`/:meth:`Message.read` and set on failed
    send futures. A raw :class:`OSError` never reaches user code. Whose fault
    it is, by subclass:

    * :class:`UnknownClient`: no open client has that id, here or on a live
      node of the cluster (never opened, or closed and gone): the caller's.
    * :class:`ClientClosed`: the client is closing or went away while the
      operation was under way (close frame, protocol error, size limit,
      shutdown, TCP reset): the peer's, or the server's stop.
    * :class:`BackplaneError`: a cluster backplane (Redis) could not carry an
      operation to the other processes: the infrastructure's.

  * :class:`ProtocolError` (sans-I/O): the peer broke RFC 6455; carries the
    close code and reason to answer with.
  * :class:`OptionError` (also a :class:`ValueError`): a bad option given to
    :func:`syncaerys.websocket`, naming the option.
  * :class:`ConcurrencyError` (also a :class:`RuntimeError`): a
    :class:`~syncaerys.Message` read off its client's thread, or after its
    ``on_data`` call returned.
  * :class:`NotStartedError` (also a :class:`RuntimeError`): an
    :class:`~syncaerys.Endpoint` used before its gateway started.
  * :class:`HostError` (also a :class:`RuntimeError`): the WSGI server hosting a
    gateway cannot give it the client's socket; the gateway answers the
    upgrade with its ``status`` and logs why.
"""

from __future__ import annotations

__all__ = [
    "SyncaerysError",
    "ClientException",
    "UnknownClient",
    "ClientClosed",
    "BackplaneError",
    "ProtocolError",
    "OptionError",
    "ConcurrencyError",
    "NotStartedError",
    "HostError",
]


class SyncaerysError(Exception):
    """Base class of every syncaerys exception."""


class ClientException(SyncaerysError):
    """An operation on a client could not be done: see its subclasses for why.

    Handlers do not need to catch it: an exception escaping ``on_data`` after
    the client is gone is not logged as an error.
    """


class UnknownClient(ClientException):
    """No open client has this id: it never opened, or it closed and is gone (here or on a live node).

    Usually the caller's mistake: an id kept after ``on_close``, or one from
    another gateway.
    """


class ClientClosed(ClientException):
    """The client is closing or went away before the operation was done.

    The peer closed, broke the protocol or the connection, exceeded a limit,
    or the server is stopping; nothing to fix on the caller's side.
    """


class BackplaneError(ClientException):
    """A cluster backplane could not carry an operation to the other processes.

    Raised by the futures of remote sends, broadcasts and multicasts while the
    backplane is down (Redis unreachable). A subclass of
    :class:`ClientException`, so code that handles unreachable clients handles
    it too. For a broadcast, ``local_result`` holds the
    :class:`~syncaerys.BroadcastResult` of this process's clients, which were
    served.
    """

    local_result: object = None


class ProtocolError(SyncaerysError):
    """The peer violated the protocol; the connection must close with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        #: The close code to send (1002, 1003, 1007 or 1009).
        self.code = code
        #: The close reason to send.
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.code} {self.reason}"


class OptionError(SyncaerysError, ValueError):
    """An option of :func:`syncaerys.websocket` is unknown or has a bad value."""


class ConcurrencyError(SyncaerysError, RuntimeError):
    """A :class:`~syncaerys.Message` was read where it cannot be read correctly.

    A message streams from its client's socket, which only that client's
    thread reads, and only while ``on_data`` runs: once it returns, the rest
    of the message is drained and the next message begins. Read the message
    in ``on_data`` and hand the *value* to other threads.
    """


class NotStartedError(SyncaerysError, RuntimeError):
    """The gateway of an :class:`~syncaerys.Endpoint` has not started yet.

    A gateway starts with :func:`syncaerys.run` / :class:`syncaerys.Server`,
    at the first request of a Flask app that has the
    :class:`syncaerys.flask.Websockets` extension, at its own first request
    under another WSGI server, or when :meth:`Gateway.start` is called.
    """


class HostError(SyncaerysError, RuntimeError):
    """The WSGI server hosting the gateway cannot serve a websocket; ``status`` is the answer to give."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        #: The HTTP status the upgrade is answered with (501: the host cannot; 500: it is misconfigured).
        self.status = status
