"""Collects the fenced ``python`` code blocks of Markdown files, with the directive before each.

A block may be preceded (on the line right above its fence) by an HTML
comment that tells the test how to exercise it; GitHub does not show it::

    <!-- test: serve path="/?user=ann" expect="hello ann" -->

* no directive: the block runs as a script, must exit 0, and every
  ``test_*`` function it defines is called (a block that shows a test);
* ``serve``: the block starts a server with ``syncaerys.run()``; it is run
  with the servers on free ports, a websocket client connects to ``path``
  and must receive ``expect`` first (after sending ``send`` if given), or
  get the HTTP ``status``; then SIGTERM must stop it with exit code 0;
* ``flask=run``: a ``serve`` block defining a Flask ``app`` is also served by a
  real ``flask run`` process (tests/docs/test_code_blocks.py) and exercised the same way;
* ``client``: a client of the ``serve`` block above it in the same file: that block is
  served and this one runs as a script with the server's port in place of ``1337``;
* ``needs="redis"``: skipped unless a Redis answers on 127.0.0.1:6379;
* ``excerpt of="path"``: the block is a verbatim piece of that file of the
  repository, which runs in the suite (the Django example project's files,
  which need a project around them, are shown this way).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

__all__ = ["Block", "collect"]

_FENCE = re.compile(r"^```(\w+)\s*$")
_DIRECTIVE = re.compile(r"^<!--\s*test:\s*(.*?)\s*-->\s*$")


@dataclass
class Block:
    path: Path
    line: int
    language: str
    code: str
    mode: str = "script"
    options: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.path.name}:{self.line}"


def _parse_directive(text: str) -> tuple[str, dict[str, str]]:
    words = shlex.split(text)
    mode = words[0] if words and "=" not in words[0] else "script"
    options = dict(word.split("=", 1) for word in words if "=" in word)
    return mode, options


def collect(path: Path, language: str = "python") -> list[Block]:
    """Every fenced block in ``language`` of ``path``, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        start = index
        index += 1
        body: list[str] = []
        while index < len(lines) and lines[index].rstrip() != "```":
            body.append(lines[index])
            index += 1
        index += 1
        if opening.group(1) != language:
            continue
        block = Block(path, start + 1, opening.group(1), "\n".join(body) + "\n")
        directive = _DIRECTIVE.match(lines[start - 1]) if start > 0 else None
        if directive is not None:
            block.mode, block.options = _parse_directive(directive.group(1))
        blocks.append(block)
    return blocks
