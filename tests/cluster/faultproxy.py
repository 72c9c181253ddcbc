"""A TCP proxy whose faults a test controls: ``python faultproxy.py TARGET_HOST TARGET_PORT``.

It listens on a free port of 127.0.0.1, prints ``PORT <n>``, and forwards
every connection to the target. Commands on stdin, one per line, each
answered with ``ok``:

* ``latency SECONDS``: delay every chunk by that much, both ways;
* ``stall``: stop forwarding (connections stay open, bytes wait);
* ``resume``: forward again, what waited first;
* ``quit``.
"""

from __future__ import annotations

import socket
import sys
import threading
import time


class Faults:
    def __init__(self) -> None:
        self.latency = 0.0
        self.flowing = threading.Event()
        self.flowing.set()


def pipe(source: socket.socket, target: socket.socket, faults: Faults) -> None:
    try:
        while data := source.recv(65536):
            faults.flowing.wait()
            if faults.latency:
                time.sleep(faults.latency)  # the fault being injected, not synchronisation
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(listener: socket.socket, target: tuple[str, int], faults: Faults) -> None:
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        try:
            upstream = socket.create_connection(target, timeout=5)
        except OSError:
            client.close()
            continue
        upstream.settimeout(None)
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=pipe, args=(a, b, faults), daemon=True).start()


def main() -> None:
    target = (sys.argv[1], int(sys.argv[2]))
    faults = Faults()
    listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=serve, args=(listener, target, faults), daemon=True).start()
    print(f"PORT {listener.getsockname()[1]}", flush=True)
    for line in sys.stdin:
        command, *rest = line.split()
        if command == "latency":
            faults.latency = float(rest[0])
        elif command == "stall":
            faults.flowing.clear()
        elif command == "resume":
            faults.flowing.set()
        elif command == "quit":
            break
        print("ok", flush=True)
    listener.close()


if __name__ == "__main__":
    main()
