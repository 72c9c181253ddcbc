"""Run every fuzz harness (or those named) for a bounded time each; exit 1 on the first crash.

    python fuzz/run.py                 # 60 s per harness
    python fuzz/run.py --seconds 20 frames inflater

Each harness starts from its seed corpus (``fuzz/corpus/<name>``, read only)
and writes what it discovers to a scratch directory; a crash leaves its input
in ``fuzz/crashes/`` and is printed. The last line per harness gives the
executions, for the record.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
HARNESSES = ["frames", "handshake", "inflater", "wire", "backplane"]


def run(name: str, seconds: int) -> int:
    crashes = HERE / "crashes"
    crashes.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as scratch:
        command = [
            sys.executable,
            str(HERE / f"{name}.py"),
            scratch,
            str(HERE / "corpus" / name),
            f"-max_total_time={seconds}",
            "-print_final_stats=1",
            f"-artifact_prefix={crashes}/{name}-",
            "-rss_limit_mb=2048",
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
    output = done.stdout + done.stderr
    executions = re.search(r"stat::number_of_executed_units:\s*(\d+)", output)
    count = executions.group(1) if executions else "?"
    if done.returncode != 0:
        print(output[-4000:])
        print(f"fuzz: {name}: CRASH after {count} executions (input in {crashes})")
        return 1
    print(f"fuzz: {name}: {count} executions in {seconds} s, no crash")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("harnesses", nargs="*", help=f"some of {', '.join(HARNESSES)} (default: all)")
    args = parser.parse_args()
    unknown = sorted(set(args.harnesses) - set(HARNESSES))
    if unknown:
        parser.error(f"unknown harness {', '.join(unknown)}; the harnesses are {', '.join(HARNESSES)}")
    failed = sum(run(name, args.seconds) for name in args.harnesses or HARNESSES)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
