"""Build of the optional C extension; the metadata is in pyproject.toml.

The extension is optional: when it cannot be compiled (no compiler, no Python
headers) the install still succeeds and syncaerys uses its pure-Python code.
Set SYNCAERYS_NO_EXTENSIONS=1 to skip the build altogether.
"""

from __future__ import annotations

import os

from setuptools import Extension
from setuptools import setup

ext_modules = []
if not os.environ.get("SYNCAERYS_NO_EXTENSIONS"):
    ext_modules.append(Extension("syncaerys._speedups", ["syncaerys/_speedups.c"], optional=True))

setup(ext_modules=ext_modules)
