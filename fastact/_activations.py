"""One definition per activation.

Each entry holds everything fastact knows about one activation: the scalar
formulas (f, f', and f' from the output y where that is possible), which the
Numba kernels in ``_kernels`` are generated from; the NumPy fallback for each;
and the high-precision reference the tests and the accuracy sweep use.

Scalar formulas are plain Python over one float32 or float64 value.  They call
``exp``/``fma``/``like`` from ``_scalar`` (vectorisable versions under Numba).
Constants go through ``like(x, c)``: a bare ``1.0`` is float64 in Numba and
would promote float32 arithmetic to float64.

NumPy fallbacks take ``(x, out)`` and write ``out`` (which may be ``x``): they
read everything they need from ``x`` before the last write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._backend import scalar_function
from ._scalar import exp_nonpositive, fma, like

NumpyFn = Callable[[np.ndarray, np.ndarray], None]


@dataclass(frozen=True)
class Activation:
    """An elementwise activation and its derivative."""

    name: str
    doc: str
    f: Callable  # scalar x -> f(x)
    df: Callable  # scalar x -> f'(x)
    numpy_f: NumpyFn
    numpy_df: NumpyFn
    reference: Callable  # (mpmath, mpf x) -> f(x)
    reference_df: Callable  # (mpmath, mpf x) -> f'(x)
    df_from_y: Callable | None = None  # scalar y = f(x) -> f'(x)
    numpy_df_from_y: NumpyFn | None = None
    # scalar (g, x) -> g * f'(x), where a dedicated formula rounds better
    backward_x: Callable | None = None


# --- sigmoid -----------------------------------------------------------------
# With e = exp(-|x|): sigmoid(x) = 1/(1+e) for x >= 0 and e/(1+e) for x < 0,
# and sigmoid'(x) = e/(1+e)**2 = sigmoid(|x|) * sigmoid(-|x|).  No input
# overflows.  Each quotient num/(1+e) is refined by one Newton step on the
# exact residual num - q*(1+e) = (num - q) - q*e (the subtraction is exact,
# the product is fused), so neither the rounding of 1+e nor of 1/(1+e)
# survives: what remains is exp's error and one final rounding.  That gives
# <= 2 ULP forward and <= 4 ULP for the derivative, also in the far negative
# tail where y*(1-y) loses every digit.


@scalar_function
def _quotient(num, e, r):
    """num / (1 + e), given r ~ 1/(1 + e) and num - q within a factor 2 of num."""
    q = num * r
    residual = fma(-q, e, num - q)
    return fma(residual, r, q)


@scalar_function
def _sigmoid_halves(x):
    """(sigmoid(|x|), sigmoid(-|x|))."""
    one = like(x, 1.0)
    e = exp_nonpositive(-abs(x))
    r = one / (one + e)
    return _quotient(one, e, r), _quotient(e, e, r)


@scalar_function
def sigmoid_f(x):
    one = like(x, 1.0)
    e = exp_nonpositive(-abs(x))
    r = one / (one + e)
    return _quotient(e if x < 0 else one, e, r)


@scalar_function
def sigmoid_df(x):
    upper, lower = _sigmoid_halves(x)
    return upper * lower


@scalar_function
def sigmoid_df_from_y(y):
    return y * (like(y, 1.0) - y)


@scalar_function
def sigmoid_backward_x(g, x):
    upper, lower = _sigmoid_halves(x)
    return (g * upper) * lower


def _numpy_exp_neg_abs(x: np.ndarray) -> np.ndarray:
    t = np.abs(x)
    np.negative(t, out=t)
    return np.exp(t, out=t)


def _sigmoid_numpy(x, out):
    e = _numpy_exp_neg_abs(x)
    d = e + 1
    np.copyto(e, 1, where=~(x < 0))
    np.divide(e, d, out=out)


def _sigmoid_grad_numpy(x, out):
    e = _numpy_exp_neg_abs(x)
    d = e + 1
    np.multiply(d, d, out=d)
    np.divide(e, d, out=out)


def _sigmoid_grad_from_y_numpy(y, out):
    t = np.subtract(1, y)
    np.multiply(y, t, out=out)


SIGMOID = Activation(
    name="sigmoid",
    doc="Logistic sigmoid 1 / (1 + exp(-x)); f' = f (1 - f), at most 0.25 (at x = 0).",
    f=sigmoid_f,
    df=sigmoid_df,
    df_from_y=sigmoid_df_from_y,
    backward_x=sigmoid_backward_x,
    numpy_f=_sigmoid_numpy,
    numpy_df=_sigmoid_grad_numpy,
    numpy_df_from_y=_sigmoid_grad_from_y_numpy,
    reference=lambda mp, x: 1 / (1 + mp.exp(-x)),
    reference_df=lambda mp, x: mp.exp(-x) / (1 + mp.exp(-x)) ** 2,
)


# --- relu ----------------------------------------------------------------------
# relu(x) = max(x, 0), relu'(x) = 1 for x > 0, else 0 (relu'(0) = 0, as in
# PyTorch).  NaN propagates through both: the comparisons are written so that
# NaN fails them and falls through to x.


@scalar_function
def relu_f(x):
    return like(x, 0.0) if x <= 0 else x


@scalar_function
def relu_df(x):
    if x > 0:
        return like(x, 1.0)
    return like(x, 0.0) if x <= 0 else x


def _relu_numpy(x, out):
    np.maximum(x, 0, out=out)  # maximum propagates NaN and maps -0.0 to 0.0


def _relu_grad_numpy(x, out):
    nan = np.isnan(x)
    np.greater(x, 0, out=out)
    np.copyto(out, np.nan, where=nan)


RELU = Activation(
    name="relu",
    doc="Rectified linear unit max(x, 0); f' = 1 for x > 0, else 0 (relu'(0) = 0).",
    f=relu_f,
    df=relu_df,
    df_from_y=relu_df,  # y > 0 exactly where x > 0, and y is NaN where x is
    numpy_f=_relu_numpy,
    numpy_df=_relu_grad_numpy,
    numpy_df_from_y=_relu_grad_numpy,
    reference=lambda mp, x: x if x > 0 else mp.mpf(0),
    reference_df=lambda mp, x: mp.mpf(1) if x > 0 else mp.mpf(0),
)


ELEMENTWISE: dict[str, Activation] = {a.name: a for a in (SIGMOID, RELU)}
