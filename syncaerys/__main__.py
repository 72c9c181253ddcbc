"""``python -m syncaerys module:attr [--host --port --certfile --keyfile --log-level]``."""

from .cli import main

main()
