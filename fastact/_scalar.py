"""Scalar math used by the activation formulas, in plain Python.

These are the names the formulas in ``_activations`` call.  Under Numba they
resolve to the vectorisable implementations registered in ``_vmath``; in plain
Python (no Numba installed) they are these reference versions, which keeps the
formulas importable and readable without a compiler.
"""

from __future__ import annotations

import math


def exp(x):
    """exp for float32/float64: NaN -> NaN, -inf -> 0, inf -> inf, no overflow error."""
    try:
        return type(x)(math.exp(x))
    except OverflowError:
        return type(x)(math.inf)


def exp_nonpositive(x):
    """exp for x <= 0 (or NaN); a cheaper 2**k scaling than ``exp`` under Numba."""
    return exp(x)


def fma(a, b, c):
    """``a*b + c`` with a single rounding (approximated outside Numba)."""
    return a * b + c


def maximum(a, b):
    """NaN-propagating maximum."""
    if a != a or b != b:
        return a + b
    return a if a >= b else b


def like(x, value):
    """``value`` converted to the float type of ``x`` (Numba literals are float64)."""
    return type(x)(value)


def scalar_function(fn):
    """Without Numba a scalar formula is just a Python function."""
    return fn
