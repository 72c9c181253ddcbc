"""``python -m syncaerys module:attr [--host --port --certfile --keyfile --log-level]``."""

from .standalone.cli import main

main()
