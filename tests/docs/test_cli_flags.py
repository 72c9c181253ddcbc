"""The command line the README shows uses only flags that ``python -m syncaerys`` has."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_flag_of_the_readmes_command_line_exists() -> None:
    lines = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("python -m syncaerys ")]
    assert lines, "the README shows no python -m syncaerys command line"
    shown = {flag for line in lines for flag in re.findall(r"(--[a-z][a-z-]*)", line)}
    assert "--no-batch-scheduling" in shown
    done = subprocess.run(
        [sys.executable, "-m", "syncaerys", "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    missing = sorted(flag for flag in shown if flag not in done.stdout)
    assert not missing, f"the README shows flags the CLI does not have: {missing}"
