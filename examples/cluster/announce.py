"""Talk to the clients of a running cluster from a process that serves nobody.

With the servers of ``rooms_chat.py`` running::

    python examples/cluster/announce.py "maintenance at noon"            # everyone
    python examples/cluster/announce.py --room lobby "lunch is served"    # one room
    python examples/cluster/announce.py --who                             # list the clients

The same three lines work from a cron job, a Celery task or a Flask view in
another service: :class:`syncaerys.Publisher` only needs the Redis URL and the
channel name.
"""

from __future__ import annotations

import argparse
import os

from syncaerys import Publisher

DEFAULT_REDIS = os.environ.get("SYNCAERYS_REDIS", "redis://127.0.0.1:6379/0")


def main() -> None:
    parser = argparse.ArgumentParser(description="Broadcast to a syncaerys cluster through Redis")
    parser.add_argument("text", nargs="?", default="")
    parser.add_argument("--room", default=None)
    parser.add_argument("--who", action="store_true", help="list the cluster's clients instead")
    parser.add_argument("--redis", default=DEFAULT_REDIS)
    args = parser.parse_args()
    with Publisher(args.redis, channel="rooms-chat") as publisher:
        if args.who:
            print(publisher.get_clients())
            return
        nodes = publisher.broadcast(f"* announcement: {args.text}", room=args.room)
        print(f"published to {nodes} server process(es)")


if __name__ == "__main__":
    main()
