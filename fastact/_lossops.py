"""One definition per fused loss: cross-entropy rows and binary cross-entropy terms.

Each definition holds the per-row (or per-element) formula that the kernels in
``_kernels`` loop over, and its NumPy fallback with the same semantics.  The
argument handling, reductions and docs are the public objects' in ``_losses``.

softmax cross-entropy per row: loss = (max - x[label]) + log(sum exp(x - max)),
both terms >= 0, so nothing cancels; the gradient row is
scale * (softmax(x) * sum(p) - p) for targets p (one-hot for class indices).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._activations import _sigmoid, _times
from ._backend import row_function, scalar_function
from ._config import LOOP_MATH, STRICT_MATH
from ._rowmath import (LOG_SOFTMAX_MIN_BELOW, exp_of_difference, log_of_sum, row_exp_sum_below, row_max,
                       row_sum)
from ._rowops import numpy_log_sum_exp
from ._scalar import exp_nonpositive, full_width, like, log1p
from ._validation import accumulator


@dataclass(frozen=True)
class LossDefinition:
    name: str
    kernel: Callable  # the formula the loop template runs
    template: str  # which loop of _kernels: "rows" (one row per sample) or "elements"
    fastmath: frozenset  # the loop's fast-math flags
    numpy: Callable  # the fallback, same arguments as the kernel (called inside np.errstate)


@row_function
def _row_log_sum_exp_terms(x):
    """(max, sum of exp(x - max) in float64, log of that sum: log_of_sum)."""
    full_width()
    m = row_max(x)
    below, ties = row_exp_sum_below(x, m)
    return m, ties + below, log_of_sum(below, ties)


# float32 rows with a gradient take the exps once, into grad at full vector
# width, and their float64 sum in another order (float32 losses and gradients
# came out bit-identical on 200k test logits); float64 keeps the exact sum
# below the maximum and takes the exps again for the gradient.


@row_function
def _row_exps_into(x, grad):
    """As _row_log_sum_exp_terms, the exps left in grad.  The log is that of the sum,
    as exact as row_log_softmax's log1p(sum - 1) (libm's log is accurate near 1 too),
    or where the sum less 1 is under LOG_SOFTMAX_MIN_BELOW (the label's logit
    dominates, the loss is tiny) log_of_sum's."""
    full_width()
    m = row_max(x)
    for i in range(x.shape[0]):
        grad[i] = exp_of_difference(x[i], m)
    total = row_sum(grad)
    if total - 1.0 >= LOG_SOFTMAX_MIN_BELOW:
        return m, total, math.log(total)
    below, ties = row_exp_sum_below(x, m)
    return m, total, log_of_sum(below, ties)


@row_function
def row_xent_index(x, label, want_grad, grad, scale):
    # The branch stays here: moved into a helper returning either branch's tuple, the
    # float64 losses came out up to 439 ULP off (found by tools/fingerprint.py, and
    # tested; why Numba compiled it so is not known).
    full_width()
    if want_grad and x.itemsize == 4:
        m, total, log_total = _row_exps_into(x, grad)
    else:
        m, total, log_total = _row_log_sum_exp_terms(x)
    loss = (np.float64(m) - np.float64(x[label])) + log_total
    if want_grad:
        inv = scale / total
        if x.itemsize == 4:
            for i in range(x.shape[0]):
                grad[i] = np.float64(grad[i]) * inv
        else:
            for i in range(x.shape[0]):
                grad[i] = np.float64(exp_of_difference(x[i], m)) * inv
        grad[label] = grad[label] - scale
    return loss


@row_function
def row_xent_prob(x, p, want_grad, grad, scale):
    full_width()
    if want_grad and x.itemsize == 4:
        m, total, log_total = _row_exps_into(x, grad)
    else:
        m, total, log_total = _row_log_sum_exp_terms(x)
    loss = 0.0
    mass = 0.0
    mf = np.float64(m)
    for i in range(x.shape[0]):
        pi = np.float64(p[i])
        loss += pi * ((mf - np.float64(x[i])) + log_total)
        mass += pi
    if want_grad:
        inv = scale * mass / total
        if x.itemsize == 4:
            for i in range(x.shape[0]):
                grad[i] = np.float64(grad[i]) * inv - scale * np.float64(p[i])
        else:
            for i in range(x.shape[0]):
                grad[i] = np.float64(exp_of_difference(x[i], m)) * inv - scale * np.float64(p[i])
    return loss


def _numpy_xent_parts(x):
    shifted = x - np.max(x, axis=1, keepdims=True)
    e = np.exp(shifted)
    # log1p of the rest: a dominant label's loss is tiny
    return shifted, e, np.sum(e, axis=1, keepdims=True), numpy_log_sum_exp(shifted, e, 1)


def numpy_xent_index(x, labels, want_grad, grad, scale, losses):
    shifted, e, total, log_total = _numpy_xent_parts(x)
    rows = np.arange(x.shape[0])
    losses[:] = (log_total[:, 0] - shifted[rows, labels])
    if want_grad:
        np.multiply(e, scale / total, out=grad)
        grad[rows, labels] -= scale


def numpy_xent_prob(x, p, want_grad, grad, scale, losses):
    shifted, e, total, log_total = _numpy_xent_parts(x)
    losses[:] = np.sum(p * (log_total - shifted), axis=1)
    if want_grad:
        mass = np.sum(p, axis=1, keepdims=True)
        np.copyto(grad, e * (scale * mass / total) - scale * p)


@scalar_function
def bce_with_logits_terms(x, t):
    """(loss, d loss / dx) of binary cross-entropy on a logit x and a target t:
    (max(x, 0) - x t) + log1p(exp(-|x|)) and sigmoid(x) - t (formed from
    sigmoid(-|x|) so that 1 - t - sigmoid(-x) keeps its small values)."""
    zero = like(x, 0.0)
    one = like(x, 1.0)
    e = exp_nonpositive(-abs(x))
    if abs(x) == math.inf:  # the limits, (1 - t) x or -t x (0 where the factor is 0): x - x t is inf - inf
        loss = _times(x, one - t) if x > zero else _times(-x, t)
    else:
        loss = ((x if x > zero else zero) - x * t) + log1p(e)
    lower = _sigmoid(-abs(x))  # sigmoid(-|x|)
    grad = ((one - t) - lower) if x > zero else (lower - t)
    return loss, grad


def numpy_bce(x, t, want_grad, grad, scale, losses, want_each):
    loss = (np.maximum(x, 0) - x * t) + np.log1p(np.exp(-np.abs(x)))
    infinite = np.isinf(x)
    if infinite.any():  # the limits (1 - t) x and -t x, 0 where the factor is 0, as the kernel
        factor = np.where(x > 0, 1 - t, -t)[infinite]
        loss[infinite] = np.where(factor == 0, 0, x[infinite] * factor)
    if want_each:
        losses[:] = loss
    if want_grad:
        np.multiply(1 / (1 + np.exp(-x)) - t, scale, out=grad)
    return np.sum(loss, dtype=accumulator(loss.dtype))


LOSSES: dict[str, LossDefinition] = {
    d.name: d for d in (
        LossDefinition("xent_index", row_xent_index, "rows", LOOP_MATH, numpy_xent_index),
        LossDefinition("xent_prob", row_xent_prob, "rows", LOOP_MATH, numpy_xent_prob),
        # strict: the loop body is the sigmoid and log1p formulas (the sum is not vectorised)
        LossDefinition("bce", bce_with_logits_terms, "elements", STRICT_MATH, numpy_bce),
    )
}
