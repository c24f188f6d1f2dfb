"""Which backend runs the ops: Numba kernels or NumPy fallbacks.

The backend is chosen, in order of precedence, by ``use_backend`` (a context
manager, local to the thread or task), ``set_backend``, the environment variable
``FASTACT_BACKEND`` read at import, and otherwise "numba".  Without an
importable Numba, the NumPy backend is used and one warning says why.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import _scalar

KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))  # the dtypes the Numba kernels are compiled for

BACKENDS = ("numba", "numpy")

# the numba module, or None where it cannot be imported (Any: the settings in
# numba.config are set at run time, so its stubs do not list them)
numba: Any
try:
    import numba as _numba

    from . import _vmath
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    numba = None
    NUMBA_IMPORT_ERROR: ImportError | None = exc
    scalar_function = row_function = _scalar.scalar_function
else:
    numba = _numba
    NUMBA_IMPORT_ERROR = None
    scalar_function = _vmath.scalar_function
    row_function = _vmath.row_function


def _check_name(name: object, argname: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"{argname} must be one of {BACKENDS!r}, got {name!r}")
    if name == "numba" and numba is None:
        raise ValueError(f"{argname}='numba' is unavailable: numba cannot be imported ({NUMBA_IMPORT_ERROR})")
    return str(name)


def _initial_backend() -> str:
    requested = os.environ.get("FASTACT_BACKEND", "").strip().lower()
    if numba is None:
        warnings.warn(
            f"fastact: numba cannot be imported ({NUMBA_IMPORT_ERROR}); using the NumPy backend",
            RuntimeWarning,
            stacklevel=3,
        )
        return "numpy"
    if requested:
        return _check_name(requested, "FASTACT_BACKEND")
    return "numba"


_default_backend = _initial_backend()
_override: contextvars.ContextVar[str | None] = contextvars.ContextVar("fastact_backend", default=None)


def get_backend() -> str:
    """The backend that ops called here and now will use: "numba" or "numpy"."""
    return _override.get() or _default_backend


def runs_numba(dtype: Any) -> bool:
    """Whether a call computed in ``dtype`` runs the Numba kernels: on the numba backend, for
    float32 and float64 (long double runs the NumPy fallbacks, in its own precision)."""
    return get_backend() == "numba" and dtype in KERNEL_DTYPES


def set_backend(name: str) -> None:
    """Set the process-wide backend: "numba" or "numpy"."""
    global _default_backend
    _default_backend = _check_name(name, "name")


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[str]:
    """Use backend ``name`` inside a ``with`` block (this thread or task only)."""
    token = _override.set(_check_name(name, "name"))
    try:
        yield name
    finally:
        _override.reset(token)

