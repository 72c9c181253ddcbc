"""Regression tests named after the anchor bugs (anchors.md §3 and the probes of §9).

One module per bug: its docstring names the anchor, what went wrong there and
what syncaerys guarantees instead.
"""
