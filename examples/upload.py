"""Streaming a large upload: ``message.read()`` chunk by chunk, never the whole message.

Run ``python examples/upload.py`` (``--port N`` to change the port) and send
binary messages to ws://127.0.0.1:1337/. ``on_data`` is called at the first
frame of each message; it reads the message frame by frame as it arrives,
counting the bytes and hashing them, so memory stays at one frame however
large the upload. When the message ends it replies with one JSON text
message::

    {"bytes": 5242880, "chunks": 80, "sha256": "..."}

A frame may be at most 1 MiB, a message at most 1 GiB: send big uploads in
fragments (browsers and most clients do; with websockets:
``ws.send(iterator_of_chunks)``). Text messages get ``{"error": ...}``.
Ctrl-C (or SIGTERM) stops it.
"""

from __future__ import annotations

import argparse
import hashlib
import json

import syncaerys
from syncaerys import Endpoint
from syncaerys import Message
from syncaerys import Websocket
from syncaerys import websocket

MiB = 1 << 20


class Upload(Websocket):
    def on_start(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def on_data(self, client_id: int, message: Message) -> None:
        if not message.is_binary:
            # Left unread, the rest of the message is drained when we return.
            self.endpoint.send(json.dumps({"error": "send the upload as a binary message"}), client_id)
            return
        size = 0
        chunks = 0
        digest = hashlib.sha256()
        while True:
            chunk = message.read()  # the next frame's payload, as soon as it arrives
            if chunk is None:  # the end of the message
                break
            assert isinstance(chunk, bytes)
            size += len(chunk)
            chunks += 1
            digest.update(chunk)
        reply = {"bytes": size, "chunks": chunks, "sha256": digest.hexdigest()}
        self.endpoint.send(json.dumps(reply), client_id)


def make_gateway() -> syncaerys.Gateway:
    """The upload websocket, with limits sized for large uploads."""
    return websocket(
        Upload(),
        max_frame_size=1 * MiB,  # memory per read() is at most one frame
        max_message_size=1024 * MiB,
        max_bytes_per_minute=1024 * MiB,  # a burst of 1 GiB, refilled at ~17 MiB/s
        max_frames_per_second=2000,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Streaming a large binary upload")
    parser.add_argument("--port", type=int, default=1337)
    args = parser.parse_args()
    syncaerys.run(make_gateway(), host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
