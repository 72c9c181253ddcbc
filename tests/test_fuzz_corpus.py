"""Replay each fuzz harness over its committed seed corpus (no fuzzing; skipped without atheris)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")

FUZZ = Path(__file__).resolve().parents[1] / "fuzz"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("harness", ["frames", "handshake", "inflater", "wire", "backplane"])
def test_the_seed_corpus_passes(harness: str) -> None:
    corpus = FUZZ / "corpus" / harness
    assert any(corpus.iterdir()), f"{corpus} is empty"
    done = subprocess.run(
        [sys.executable, str(FUZZ / f"{harness}.py"), str(corpus), "-runs=0"],
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
