"""NumPy fallbacks for the row ops (softmax, log_softmax and their backward).

The elementwise fallbacks live beside their formulas in ``_activations``.
Each function writes ``out`` (same shape as the inputs, compute dtype) and is
called inside ``np.errstate(all="ignore")``: inf - inf in a row is a NaN in
the result, never a warning.  Sums are taken in float64, as the kernels take
them: NumPy adds along any axis but the innermost one term after another, and
a float32 sum over 65536 terms that way cost softmax 1580 ULP.
"""

from __future__ import annotations

import numpy as np


def softmax(x: np.ndarray, axis: int, out: np.ndarray) -> None:
    t = np.subtract(x, np.max(x, axis=axis, keepdims=True))
    np.exp(t, out=t)
    np.divide(t, np.sum(t, axis=axis, keepdims=True, dtype=np.float64), out=out)


def log_softmax(x: np.ndarray, axis: int, out: np.ndarray) -> None:
    # Where the row maximum is unique, log(sum) = log1p(sum of the other
    # terms): the rounded sum 1 + tiny would lose the tiny part, which is the
    # whole answer for the maximum's entry.
    t = np.subtract(x, np.max(x, axis=axis, keepdims=True))
    np.subtract(t, log_sum_exp(t, np.exp(t), axis).astype(x.dtype, copy=False), out=out)


def log_sum_exp(t: np.ndarray, e: np.ndarray, axis: int) -> np.ndarray:
    """log(sum(e)) along ``axis`` (kept) in float64, for t = x - max(x) and e = exp(t)."""
    at_max = t == 0
    below = np.sum(np.where(at_max, 0, e), axis=axis, keepdims=True, dtype=np.float64)
    ties = np.count_nonzero(at_max, axis=axis, keepdims=True)
    return np.where(ties == 1, np.log1p(below), np.log(ties + below))


def softmax_backward(g: np.ndarray, y: np.ndarray, axis: int, out: np.ndarray) -> None:
    t = np.multiply(g, y)
    dot = np.sum(t, axis=axis, keepdims=True, dtype=np.float64)
    np.subtract(g, dot, out=t)
    np.multiply(y, t, out=out)


def log_softmax_backward(g: np.ndarray, y: np.ndarray, axis: int, out: np.ndarray) -> None:
    t = np.exp(y)
    np.multiply(t, np.sum(g, axis=axis, keepdims=True, dtype=np.float64), out=t)
    np.subtract(g, t, out=out)


ROW_FALLBACKS = {
    "softmax": softmax,
    "log_softmax": log_softmax,
    "softmax_backward": softmax_backward,
    "log_softmax_backward": log_softmax_backward,
}
