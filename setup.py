"""Build of the optional C extension; the metadata is in pyproject.toml.

The extension is optional: when it cannot be compiled (no compiler, no Python
headers) the install still succeeds and syncaerys uses its pure-Python code,
and a wheel built so is a pure-Python wheel (``py3-none-any``), not one
tagged for this interpreter and platform. Set SYNCAERYS_NO_EXTENSIONS=1 to
skip the build altogether.

With SYNCAERYS_COMPILE=1 the modules of the per-message path
(COMPILED_SOURCES, the files of syncaerys.compiled.MODULES) are compiled with
mypyc as well, which must then be importable here, with syncaerys's own
dependencies: install syncaerys, then mypy and setuptools, then syncaerys again
with --no-build-isolation --no-deps (see the README, "Compiled hot path").
Opt-in while CI runs the compiled build on one interpreter only (nox's compiled sessions).
"""

from __future__ import annotations

import os

from setuptools import Extension
from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel

#: The files of syncaerys.compiled.MODULES (tests/test_compiled.py checks the two lists agree).
COMPILED_SOURCES = [
    "syncaerys/client/connection.py",
    "syncaerys/client/fanout.py",
    "syncaerys/client/sendqueue.py",
    "syncaerys/futures.py",
    "syncaerys/message.py",
    "syncaerys/protocol/parser.py",
    "syncaerys/protocol/session.py",
]

ext_modules = []
if not os.environ.get("SYNCAERYS_NO_EXTENSIONS"):
    ext_modules.append(Extension("syncaerys._speedups", ["syncaerys/_speedups.c"], optional=True))
    if os.environ.get("SYNCAERYS_COMPILE"):
        try:
            from mypyc.build import mypycify
        except ImportError as error:
            raise SystemExit(
                "SYNCAERYS_COMPILE=1 needs mypyc (part of mypy) in the build environment: "
                "pip install 'mypy>=2.4' setuptools, then install syncaerys with pip's --no-build-isolation"
            ) from error
        # Not optional: a compiled module that fails to build must fail the install, not fall back unseen.
        # mypyc type-checks the package as mypy does: its dependencies must be installed (install
        # syncaerys first, then again with SYNCAERYS_COMPILE=1 and --no-deps); the optional ones
        # (redis) may be missing, their modules are not compiled.
        ext_modules += mypycify(
            ["--ignore-missing-imports", *COMPILED_SOURCES], opt_level="3", group_name="syncaerys_compiled"
        )


class bdist_wheel_pure_without_extension(bdist_wheel):
    """Tag the wheel by what was built: a platform wheel only if the extension compiled."""

    def run(self) -> None:
        self.run_command("build")
        build_ext = self.get_finalized_command("build_ext")
        built = [e for e in ext_modules if os.path.exists(build_ext.get_ext_fullpath(e.name))]
        if not built:
            if ext_modules:
                print("warning: syncaerys._speedups could not be compiled: building a pure-Python wheel")
            self.root_is_pure = True
            self.distribution.ext_modules = []
        super().run()


setup(ext_modules=ext_modules, cmdclass={"bdist_wheel": bdist_wheel_pure_without_extension})
