"""A pinned, batch-scheduled server's child processes get their CPUs and scheduling policy back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs CPU affinity and at least two CPUs",
)

CHILDREN = """
import concurrent.futures, json, multiprocessing, os, subprocess, sys

from syncaerys.standalone.process import pin_to_cpus
from syncaerys.standalone.process import use_batch_scheduling

def cpus():
    return sorted(os.sched_getaffinity(0)), os.sched_getscheduler(0)

if __name__ == "__main__":
    original = cpus()
    pin_to_cpus({original[0][0]})
    assert use_batch_scheduling(True)
    report = {"original": original, "server": cpus()}
    for method in ("fork", "spawn", "forkserver"):
        context = multiprocessing.get_context(method)
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
            report[method] = pool.submit(cpus).result(timeout=60)
    child = subprocess.run(
        [sys.executable, "-c", "import os, syncaerys; print([sorted(os.sched_getaffinity(0)), "
         "os.sched_getscheduler(0)])"],
        capture_output=True, text=True, check=True,
    )
    report["subprocess"] = json.loads(child.stdout)
    report["server_after"] = cpus()
    print(json.dumps(report))
"""


@pytest.mark.timeout(120)
def test_process_pool_workers_and_subprocesses_are_not_pinned(tmp_path: object) -> None:
    script = os.path.join(str(tmp_path), "children.py")
    with open(script, "w") as file:
        file.write(textwrap.dedent(CHILDREN))
    done = subprocess.run([sys.executable, script], capture_output=True, text=True, timeout=100)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    original = report["original"]
    assert original[1] == os.SCHED_OTHER
    assert report["server"] == report["server_after"] == [[original[0][0]], os.SCHED_BATCH]
    for kind in ("fork", "spawn", "forkserver", "subprocess"):
        assert report[kind] == original, (kind, report)
