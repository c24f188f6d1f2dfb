"""The one compiled module, fastact._fastcall (the small calls of elementwise ops,
in C); everything else is in pyproject.toml.  It is optional: where it cannot be
built (no C compiler), fastact installs without it and the ops' calls run in Python."""

import numpy as np
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("fastact._fastcall", ["fastact/_fastcall.c"], include_dirs=[np.get_include()], optional=True),
    ],
)
