"""Regression tests named after bugs of the peer libraries (simple-websocket, flask-sock, websockets).

One module per bug: its docstring names the bug or the probe (what was run against
which library), what went wrong there and what syncaerys guarantees instead.
"""
