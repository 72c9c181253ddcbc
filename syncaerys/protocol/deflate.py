"""permessage-deflate (RFC 7692): negotiation, compression, decompression (sans-I/O)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from ..exceptions import ProtocolError

__all__ = ["DeflateParams", "negotiate", "Deflater", "Inflater", "compress_once"]

_TAIL = b"\x00\x00\xff\xff"


@dataclass(frozen=True)
class DeflateParams:
    """What was agreed with one client."""

    #: We reset our compressor after each message.
    server_no_context_takeover: bool
    #: The client resets its compressor after each message (so may we our decompressor).
    client_no_context_takeover: bool
    #: The window our compressor uses (never more than the client allowed).
    server_window_bits: int
    #: Whether ``server_max_window_bits`` goes into the response (the client asked for it).
    announce_server_window: bool

    def response_header(self) -> str:
        """The ``Sec-WebSocket-Extensions`` value of the 101."""
        parts = ["permessage-deflate"]
        if self.server_no_context_takeover:
            parts.append("server_no_context_takeover")
        if self.client_no_context_takeover:
            parts.append("client_no_context_takeover")
        if self.announce_server_window:
            parts.append(f"server_max_window_bits={self.server_window_bits}")
        return "; ".join(parts)


def _split_offers(header: str) -> list[list[str]]:
    offers = []
    for offer in header.split(","):
        parts = [part.strip() for part in offer.split(";")]
        if parts and parts[0]:
            offers.append(parts)
    return offers


def negotiate(header: str | None, window_bits: int) -> DeflateParams | None:
    """Accept the first permessage-deflate offer we can honour, or ``None``.

    ``window_bits`` is the largest window our compressor will use. Offers with
    unknown, repeated or invalid parameters are declined (RFC 7692 5.1), as is
    ``server_max_window_bits=8``, which zlib cannot honour. Pure; thread-safe; never blocks.
    """
    if not header:
        return None
    for parts in _split_offers(header):
        if parts[0].lower() != "permessage-deflate":
            continue
        params = _accept_offer(parts[1:], window_bits)
        if params is not None:
            return params
    return None


def _accept_offer(parameters: list[str], window_bits: int) -> DeflateParams | None:
    seen: set[str] = set()
    server_no_context = client_no_context = False
    server_bits: int | None = None
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        name = name.strip().lower()
        value = value.strip().strip('"')
        if name in seen:
            return None
        seen.add(name)
        if name == "server_no_context_takeover":
            if value:
                return None
            server_no_context = True
        elif name == "client_no_context_takeover":
            if value:
                return None
            client_no_context = True
        elif name == "server_max_window_bits":
            if not value.isdigit() or not 9 <= int(value) <= 15 or value != str(int(value)):
                return None
            server_bits = int(value)
        elif name == "client_max_window_bits":
            # We inflate with the largest window, which reads any smaller one.
            if value and (not value.isdigit() or not 8 <= int(value) <= 15 or value != str(int(value))):
                return None
        else:
            return None
    return DeflateParams(
        server_no_context_takeover=server_no_context,
        client_no_context_takeover=client_no_context,
        server_window_bits=min(window_bits, server_bits) if server_bits is not None else window_bits,
        announce_server_window=server_bits is not None,
    )


class Deflater:
    """Compresses outgoing messages for one client (not thread-safe: callers serialize); never blocks."""

    def __init__(self, params: DeflateParams, memory_level: int = 5, level: int = 6) -> None:
        self.params = params
        self._level = level
        self._memory_level = memory_level
        self._compressor = self._new()

    def _new(self) -> zlib._Compress:
        return zlib.compressobj(self._level, zlib.DEFLATED, -self.params.server_window_bits, self._memory_level)

    def compress(self, payload: bytes) -> bytes:
        """A whole message's compressed payload (RFC 7692 7.2.1: the sync-flush tail removed)."""
        data = self._compressor.compress(payload) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        if self.params.server_no_context_takeover:
            self._compressor = self._new()
        if data.endswith(_TAIL):
            data = data[:-4]
        return data or b"\x00"


def compress_once(payload: bytes, window_bits: int, memory_level: int = 5, level: int = 6) -> bytes:
    """A message compressed without context (what ``server_no_context_takeover`` clients get).

    The result depends only on the arguments, so a broadcast compresses once
    for every client that negotiated the same window. Pure; thread-safe; never blocks.
    """
    compressor = zlib.compressobj(level, zlib.DEFLATED, -window_bits, memory_level)
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return (data[:-4] if data.endswith(_TAIL) else data) or b"\x00"


class Inflater:
    """Decompresses incoming messages for one client, within a size limit.

    Not thread-safe (one caller at a time: the client's reader); never blocks.
    """

    def __init__(self, params: DeflateParams) -> None:
        self._reset_each_message = params.client_no_context_takeover
        self._decompressor = zlib.decompressobj(-15)
        # The deflate stream ended (a BFINAL block) in a frame of the message being received.
        self._stream_ended = False

    def inflate(self, payload: bytes, fin: bool, limit: int) -> bytes:
        """Decompress one frame's payload; more than ``limit`` bytes out raises 1009."""
        bound = limit + 1 if limit < 1 << 62 else 0
        if fin and (payload or not self._stream_ended):
            data = payload + _TAIL
        else:
            # RFC 7692 7.2.2 appends the tail to every message, but after a stream that
            # ended (BFINAL) it belongs to no stream: a fresh one cannot start with it.
            data = payload
        try:
            out = self._decompressor.decompress(data, bound) if data else b""
            while self._decompressor.eof:
                # RFC 7692 7.2.3.3: a sender may end a message with a BFINAL=1 block. The
                # stream ends there and the next data starts a new one.
                self._stream_ended = True
                rest = self._decompressor.unused_data
                if fin and rest.endswith(_TAIL):
                    rest = rest[: -len(_TAIL)]
                # A sender that keeps its window may refer back into what it sent:
                # the new stream starts with this message's end as its dictionary.
                window = out[-32768:]
                self._decompressor = zlib.decompressobj(-15, zdict=window) if window else zlib.decompressobj(-15)
                if not rest:
                    break
                self._stream_ended = False
                out += self._decompressor.decompress(
                    rest + _TAIL if fin else rest, max(1, bound - len(out)) if bound else 0
                )
        except zlib.error:
            raise ProtocolError(1007, "Invalid compressed data") from None
        if len(out) > limit or self._decompressor.unconsumed_tail:
            raise ProtocolError(1009, "Received payload exceeds maximum allowable size")
        if fin:
            self._stream_ended = False
            if self._reset_each_message:
                self._decompressor = zlib.decompressobj(-15)
        return out
