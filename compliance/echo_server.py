"""Echo server for the Autobahn|Testsuite fuzzingclient (see run.sh).

Echoes every message, text or binary, back to its sender. The limits that
protect a production server (message and frame size, inbound rate, send
queue, heartbeat) are switched off: the suite sends messages of up to 16 MiB
and bursts of thousands of frames.

    python compliance/echo_server.py [--port 9001]
"""

from __future__ import annotations

import argparse

import syncaerys


class Echo(syncaerys.Websocket):
    def on_start(self, endpoint: syncaerys.Endpoint) -> None:
        self.endpoint = endpoint

    def on_data(self, client_id: int, message: syncaerys.Message) -> None:
        self.endpoint.send(message.result(), client_id)


OPTIONS = {
    "max_message_size": None,
    "max_frame_size": None,
    "max_bytes_per_minute": None,
    "max_frames_per_second": None,
    "max_send_queue": None,
    "heartbeat_period": None,
    # permessage-deflate for cases 12.* and 13.*; every message compressed.
    "compression": True,
    "compression_threshold": 0,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9001)
    args = parser.parse_args()
    syncaerys.run(syncaerys.websocket(Echo(), **OPTIONS), host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
