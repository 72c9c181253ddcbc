"""What a typed user sees: a typed app passes mypy --strict, misspelt options do not.

mypy runs from a temporary directory, as a user's project would, so these
also check that the install (README: ``editable_mode=compat``) is visible to it.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import syncaerys
from syncaerys import CloseCode
from syncaerys.options import Options
from syncaerys.options import WebsocketOptions
from syncaerys.server import ServerOptions

ROOT = Path(__file__).resolve().parents[2]


def mypy(tmp_path: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *map(str, files)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.timeout(300)
def test_the_typed_examples_pass_mypy_strict_from_outside_the_project(tmp_path: Path) -> None:
    done = mypy(tmp_path, ROOT / "examples" / "typed_app.py", ROOT / "examples" / "flask_app.py")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.timeout(300)
def test_mypy_strict_catches_misspelt_and_mistyped_options(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(
        textwrap.dedent(
            """
            import syncaerys
            from syncaerys import Request, Response, Websocket

            class Chat(Websocket):
                def on_handshake(self, request: Request, response: Response) -> None: ...

            class Room(Websocket):
                def on_handshake(self, request: Request, response: Response, name: str) -> str:
                    return name

            gateway = syncaerys.websocket(Chat(), max_msg_size=3)
            syncaerys.websocket(Room(), heartbeat_period="10")
            syncaerys.run(gateway, prot=1)
            """
        )
    )
    done = mypy(tmp_path, app)
    lines = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert len(lines) == 3, done.stdout
    assert '"max_msg_size"' in lines[0] and '"max_message_size"' in lines[0]
    assert '"heartbeat_period"' in lines[1]
    assert '"prot"' in lines[2]


def test_the_option_typed_dicts_match_the_options() -> None:
    assert set(WebsocketOptions.__annotations__) == {f for f in Options.__dataclass_fields__}
    parameters = inspect.signature(syncaerys.Server).parameters.values()
    server_parameters = {p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert set(ServerOptions.__annotations__) == server_parameters


def test_close_code_is_an_int_enum_with_rfc_and_aerys_names() -> None:
    assert CloseCode.NORMAL_CLOSURE == 1000 and isinstance(CloseCode.GOING_AWAY, int)  # type: ignore[comparison-overlap]
    # Aerys's name, an alias (mypy sees two distinct literals)
    assert CloseCode.NORMAL_CLOSE is CloseCode.NORMAL_CLOSURE  # type: ignore[comparison-overlap]
    assert CloseCode.MESSAGE_TOO_LARGE is CloseCode.MESSAGE_TOO_BIG  # type: ignore[comparison-overlap]
    assert [CloseCode(code).name for code in (1012, 1013, 1014)] == [
        "SERVICE_RESTART",
        "TRY_AGAIN_LATER",
        "BAD_GATEWAY",
    ]
