"""A process that is not a server: runs Publisher calls and prints their outcomes as JSON.

``python publish.py REDIS_URL CHANNEL '[{"op": "broadcast", "args": ["hi"], "kwargs": {"room": "r"}}, ...]'``
prints one JSON list with ``{"result": ...}`` or ``{"error": "BackplaneError: ..."}`` per call.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from syncaerys import BackplaneError
from syncaerys import Publisher


def main() -> None:
    url, channel, calls = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    outcomes: list[dict[str, Any]] = []
    with Publisher(url, channel=channel, timeout=1.0) as publisher:
        for call in calls:
            method = getattr(publisher, call["op"])
            try:
                outcomes.append({"result": method(*call.get("args", ()), **call.get("kwargs", {}))})
            except (BackplaneError, ValueError, TypeError) as error:
                outcomes.append({"error": f"{type(error).__name__}: {error}"})
    print(json.dumps(outcomes), flush=True)


if __name__ == "__main__":
    main()
