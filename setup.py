"""Build of the optional C extension; the metadata is in pyproject.toml.

The extension is optional: when it cannot be compiled (no compiler, no Python
headers) the install still succeeds and syncaerys uses its pure-Python code,
and a wheel built so is a pure-Python wheel (``py3-none-any``), not one
tagged for this interpreter and platform. Set SYNCAERYS_NO_EXTENSIONS=1 to
skip the build altogether.

With SYNCAERYS_COMPILE=1 the modules of the per-message path
(COMPILED_SOURCES, the files of syncaerys.compiled.MODULES) are compiled with
mypyc as well. mypyc type-checks them against syncaerys's dependencies, so the
build needs mypy and those: under pip's build isolation they are asked for
here (``setup_requires``, which setuptools' PEP 517 backend returns as the
build's own requirements), so ``SYNCAERYS_COMPILE=1 pip install .`` is the one
command; with ``--no-build-isolation`` they must already be installed.
Opt-in while CI runs the compiled build on one interpreter only (nox's compiled sessions).
"""

from __future__ import annotations

import os
import sys

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

#: What mypyc needs beside itself: the dependencies it type-checks the compiled modules against
#: (pyproject.toml's; tests/test_compiled.py checks the two agree).
COMPILE_REQUIRES = ["mypy>=2.4", "simple-websocket>=1.0", "werkzeug>=3.0"]

#: setuptools' commands that build the extensions (the others, such as egg_info, which pip's
#: build isolation runs first to learn the build requirements, do not need mypyc).
BUILDING = {"build", "build_ext", "bdist_wheel", "editable_wheel", "develop", "install"}

ext_modules = []
setup_requires: list[str] = []
if not os.environ.get("SYNCAERYS_NO_EXTENSIONS"):
    ext_modules.append(Extension("syncaerys._speedups", ["syncaerys/_speedups.c"], optional=True))
    if os.environ.get("SYNCAERYS_COMPILE"):
        setup_requires = COMPILE_REQUIRES
        try:
            from mypyc.build import mypycify
        except ImportError as error:
            if BUILDING.intersection(sys.argv[1:]):
                raise SystemExit(
                    "SYNCAERYS_COMPILE=1 needs mypyc (part of mypy) where syncaerys is built: pip installs it "
                    "under build isolation (the default); with --no-build-isolation, first "
                    "pip install " + " ".join(repr(r) for r in COMPILE_REQUIRES)
                ) from error
        else:
            # Not optional: a compiled module that fails to build must fail the install, not fall back unseen.
            # The optional dependencies (redis) may be missing: their modules are not compiled.
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


setup(ext_modules=ext_modules, setup_requires=setup_requires, cmdclass={"bdist_wheel": bdist_wheel_pure_without_extension})
