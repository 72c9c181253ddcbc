"""Every logger syncaerys logs to is in the documentation's table (docs/tutorial/deploy.md)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_logger_is_in_the_table() -> None:
    used = {
        name
        for path in (ROOT / "syncaerys").rglob("*.py")
        for name in re.findall(r"""getLogger\(["']([^"']+)["']\)""", path.read_text(encoding="utf-8"))
    }
    table = set(re.findall(r"^\| `(syncaerys[.\w]*)` \|", (ROOT / "docs/tutorial/deploy.md").read_text(), re.M))
    assert used == table, f"used but not documented: {used - table}; documented but not used: {table - used}"
