"""Run a test module against both frame-parsing paths: the C extension's and pure Python.

``parse_path`` is a module-scoped fixture parametrized over ``"c"`` and
``"python"``. For ``"python"`` it points the frame parser at
:func:`~syncaerys.protocol.framing.parse_frame_python` and the pure-Python
masking functions for the duration of the module's tests (servers run
in-process, so live tests use it too); ``"c"`` is skipped when the extension
is not built (or ``SYNCAERYS_NO_EXTENSIONS`` is set, as in nox's ``core``
sessions, where both ids run pure Python).

Use it with ``pytestmark = pytest.mark.usefixtures("parse_path")`` and
``from tests.parse_paths import parse_path``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from syncaerys.protocol import framing
from syncaerys.protocol import mask
from syncaerys.protocol import parser


@pytest.fixture(scope="module", params=["c", "python"])
def parse_path(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "c" and not framing.SPEEDUPS:
        pytest.skip("the C extension syncaerys._speedups is not built (or SYNCAERYS_NO_EXTENSIONS is set)")
    with pytest.MonkeyPatch.context() as patch:
        if request.param == "python":
            patch.setattr(parser, "parse_frame", framing.parse_frame_python)
            patch.setattr(parser, "apply_mask", mask.apply_mask_python)
            patch.setattr(parser, "unmask_in_place", mask.unmask_in_place_python)
            patch.setattr(framing, "apply_mask", mask.apply_mask_python)
        yield request.param
