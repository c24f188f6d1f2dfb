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
from typing import Any

import numpy as np

from ._activations import _numpy_tanh_grad, _sigmoid, _times, tanh_backward_x
from ._backend import row_function, scalar_function
from ._config import LOOP_MATH
from ._rowmath import (LOG_SOFTMAX_MIN_BELOW, block_exps, block_sums, compensated_add, exp_of_difference,
                       log_of_sum, row_exp_sum_below, row_max, row_sum, spread)
from ._rowmath import lanes_max
from ._rowops import log_of_compensated_total, log_softmax_exp_sums, numpy_log_sum_exp
from ._scalar import exp_nonpositive, full_width, like, log, log1p, single_precision, tanh
from ._validation import accumulator


@dataclass(frozen=True)
class LossDefinition:
    name: str
    kernel: Callable[..., Any]  # the formula the loop template runs
    # which loop of _kernels: "rows" (one row per sample), "rows_options" (the same with
    # the options' arguments w, keep, smooth, z), "lanes" (along axis 1 of (outer, n,
    # inner) arrays) or "elements"
    template: str
    fastmath: frozenset[Any]  # the loop's fast-math flags
    numpy: Callable[..., Any]  # the fallback, same arguments as the kernel (called inside np.errstate)
    # "rows" only: the forms over a task's rows (rows_xent_index) and over a block of short
    # rows (block_xent_index), which the kernel runs where its argument short is true;
    # None: the kernel runs row by row, and short is ignored
    task_forms: tuple[Callable[..., Any], Callable[..., Any]] | None = None


@row_function
def _row_log_sum_exp_terms(x: Any) -> Any:
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
def _row_exps_into(x: Any, grad: Any) -> Any:
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


@scalar_function
def label_loss(m: Any, v: Any, log_total: Any) -> Any:
    """log(sum(exp(x))) - v as (m - v) + log_total, in float64 and in this order, with
    strict flags: the row functions' own (LOOP_MATH) let LLVM reassociate it as
    (m + log_total) - v, which loses a tiny loss's digits.  It did so whenever the code
    around it changed shape (a helper returning the branches' tuple, an integer row
    maximum): float64 losses 439 ULP off (tools/fingerprint.py, and tested)."""
    return (np.float64(m) - np.float64(v)) + log_total


@scalar_function
def has_label(label: Any, n: Any) -> Any:
    """Whether label is a class index in [0, n).  A row whose label is not gives a NaN loss
    and no one-hot in its gradient, never a read outside its row: the common small batch
    leaves the labels unchecked until its total is NaN (_losses.SoftmaxCrossEntropy._run)."""
    return 0 <= label < n


@row_function
def row_xent_index(x: Any, label: Any, want_grad: Any, grad: Any, scale: Any) -> Any:
    """The loss of one row; with want_grad its gradient row into grad.  A float32 row takes
    its exps into grad, which is a scratch row when the gradient is not wanted (float64:
    empty, the exact sum below the maximum needing no row)."""
    full_width()
    if single_precision(x) and grad.shape[0] == x.shape[0]:
        m, total, log_total = _row_exps_into(x, grad)
    else:
        m, total, log_total = _row_log_sum_exp_terms(x)
    valid = has_label(label, x.shape[0])
    loss = label_loss(m, x[label], log_total) if valid else np.nan
    if want_grad:
        inv = scale / total
        if single_precision(x):
            for i in range(x.shape[0]):
                grad[i] = np.float64(grad[i]) * inv
        else:
            for i in range(x.shape[0]):
                grad[i] = np.float64(exp_of_difference(x[i], m)) * inv
        if valid:
            grad[label] = grad[label] - scale
    return loss


@row_function
def rows_xent_index(x: Any, labels: Any, r0: Any, r1: Any, want_grad: Any, grad: Any, scale: Any,
                    losses: Any) -> None:
    """row_xent_index over rows r0..r1 of x (a task of the kernel's), a float32 forward's
    exps in one scratch row that the rows share (the exact sum below the maximum, which
    a forward without one takes, cost 1.5-2x the time: 30 against 21 us on 32 x 1000)."""
    full_width()
    scratch = np.empty(x.shape[1] if single_precision(x) and not want_grad else 0, x.dtype)
    for r in range(r0, r1):
        losses[r] = row_xent_index(x[r], labels[r], want_grad, grad[r] if want_grad else scratch, scale)


@row_function
def block_xent_index(x: Any, labels: Any, n: Any, want_grad: Any, grad: Any, scale: Any, losses: Any) -> None:
    """row_xent_index over a flat block of short rows of n (as the row ops' block forms):
    the exps run over the whole block in one vectorised loop (into grad, or a scratch
    block), each row's sum of them, or the exact sum below its maximum (float64, and
    float32 rows whose sum less 1 is under LOG_SOFTMAX_MIN_BELOW), along its row, and
    the logs of the sums in one more vectorised loop (fastact's log; log_of_sum's value
    where the sum was taken apart: libm's, one row at a time, took a fifth of 1e6 x 10
    float32's forward).  One loss per row into losses; with want_grad the gradient into
    grad.  Rows of 10 ran scalar as rows (32 x 10 float32 value_and_grad: the kernel took
    2.6 us)."""
    full_width()
    rows = labels.shape[0]
    e = grad if want_grad else np.empty_like(x)
    m = block_exps(x, n, e)
    totals = block_sums(e, n) if single_precision(x) else np.zeros(rows)
    errs = np.zeros(rows)  # the rounding errors of the sums taken apart
    for b in range(rows):
        if not single_precision(x) or totals[b] - 1.0 < LOG_SOFTMAX_MIN_BELOW:
            below, ties = 0.0, 0
            for j in range(n):
                below_max = x[b * n + j] != m[b * n + j]  # a multiply, not a branch
                below += np.float64(e[b * n + j]) * below_max
                ties += 1 - below_max
            totals[b], errs[b] = compensated_add(np.float64(ties), 0.0, below)
    log_totals = np.empty(rows)
    for b in range(rows):
        log_totals[b] = log(totals[b]) + errs[b] / totals[b]
    for b in range(rows):
        label = labels[b]
        losses[b] = label_loss(m[b * n], x[b * n + label], log_totals[b]) if has_label(label, n) else np.nan
    if want_grad:
        inv = np.empty(rows)
        for b in range(rows):
            inv[b] = scale / totals[b]
        spread_inv = np.empty(x.shape[0])
        spread(inv, n, spread_inv)
        for i in range(x.shape[0]):
            grad[i] = np.float64(e[i]) * spread_inv[i]
        for b in range(rows):
            label = labels[b]
            if has_label(label, n):
                grad[b * n + label] = grad[b * n + label] - scale


@row_function
def lanes_xent_index(x: Any, labels: Any, o: Any, c0: Any, c1: Any, want_grad: Any, grad: Any, scale: Any,
                     losses: Any) -> None:
    """Cross-entropy with class indices along axis 1 of (outer, n, inner) x (labels and
    float64 losses (outer, inner), grad x's shape), for lanes c0..c1 of outer index o,
    read where they lie: the lanes' maxima and compensated sums of exp(x - max) (the row
    ops' lanes phases), each lane's loss label_loss(max, x[label], log(sum)), and with
    want_grad scale (softmax - one-hot) (float32: the exps first, at full vector width)."""
    full_width()
    n = x.shape[1]
    m = lanes_max((x,), o, c0, c1, 0, n)
    total, err = log_softmax_exp_sums((x,), x, o, c0, c1, m, 0, n)
    lab, loss_o = labels[o, c0:c1], losses[o, c0:c1]
    inv = np.empty(c1 - c0)
    for b in range(c1 - c0):
        loss_o[b] = label_loss(m[b], x[o, lab[b], c0 + b], log_of_compensated_total(total[b], err[b]))
        inv[b] = scale / (total[b] + err[b])
    if want_grad:
        for j in range(n):
            xj, gj = x[o, j, c0:c1], grad[o, j, c0:c1]
            if single_precision(x):
                for b in range(c1 - c0):
                    gj[b] = exp_of_difference(xj[b], m[b])
                for b in range(c1 - c0):
                    gj[b] = np.float64(gj[b]) * inv[b]
            else:
                for b in range(c1 - c0):
                    gj[b] = np.float64(exp_of_difference(xj[b], m[b])) * inv[b]
        for b in range(c1 - c0):
            grad[o, lab[b], c0 + b] = grad[o, lab[b], c0 + b] - scale


@row_function
def row_xent_prob(x: Any, p: Any, want_grad: Any, grad: Any, scale: Any) -> Any:
    full_width()
    return _xent_prob_row(x, p, want_grad, grad, scale, 0.0)


@row_function
def _xent_prob_row(x: Any, p: Any, want_grad: Any, grad: Any, scale: Any, z: Any) -> Any:
    """A row of class probabilities p, and with z nonzero the z-loss z lse^2."""
    full_width()
    # float32 with the gradient wanted: the exps into grad; without it grad is empty (no
    # scratch row here, unlike rows_xent_index) and the exact sum below the maximum is taken
    if single_precision(x) and grad.shape[0] == x.shape[0]:
        m, total, log_total = _row_exps_into(x, grad)
    else:
        m, total, log_total = _row_log_sum_exp_terms(x)
    loss = 0.0
    mass = 0.0
    mf = np.float64(m)
    for i in range(x.shape[0]):
        pi = np.float64(p[i])
        loss += pi * label_loss(mf, x[i], log_total)
        mass += pi
    if z != 0.0:
        lse = mf + log_total
        loss += z * lse * lse
        mass += 2.0 * z * lse  # the gradient's softmax factor
    if want_grad:
        inv = scale * mass / total
        if x.itemsize == 4:
            for i in range(x.shape[0]):
                grad[i] = np.float64(grad[i]) * inv - scale * np.float64(p[i])
        else:
            for i in range(x.shape[0]):
                grad[i] = np.float64(exp_of_difference(x[i], m)) * inv - scale * np.float64(p[i])
    return loss


# With PyTorch's options (class weights w, label smoothing eps over C classes, ignored
# rows) and a z-loss z lse^2 (PaLM), a row's loss is
#   keep w[y] (lse - x[y]) + smooth sum_c w[c] (lse - x[c]) + z lse^2,
# keep = 1 - eps, smooth = eps / C, lse = log sum exp x, each lse - x[c] formed as
# (max - x[c]) + log(sum exp(x - max)) (>= 0, nothing cancels), and its gradient
#   softmax(x) A - smooth w - keep w[y] onehot(y),  A = keep w[y] + smooth sum w + 2 z lse,
# times the reduction's scale.  A row whose label is negative (ignore_index, mapped to
# -1 by the caller) gives 0 and a zero gradient row.  Class probabilities q come with w
# and the smoothing applied by the caller (q' = ((1 - eps) q + eps / C) w, PyTorch's
# rule); their rows add the z-loss to row_xent_prob's.  With a soft cap (Gemma 2) the
# row's logits are first capped into ``scratch`` (cap tanh(x / cap), in x's dtype) and
# the gradient is chained through tanh' (_activations.tanh_backward_x, exact in the tails).


@row_function
def _capped(x: Any, cap: Any, scratch: Any) -> Any:
    """x, or with a cap (nonzero) scratch filled with cap tanh(x / cap)."""
    full_width()
    if cap == 0.0:
        return x
    c = like(x[0], cap)
    for i in range(x.shape[0]):
        scratch[i] = c * tanh(x[i] / c)
    return scratch


@row_function
def _chain_cap(x: Any, cap: Any, grad: Any) -> None:
    """grad times d(cap tanh(x / cap))/dx = tanh'(x / cap), in place (with a cap)."""
    full_width()
    if cap != 0.0:
        c = like(x[0], cap)
        for i in range(x.shape[0]):
            grad[i] = tanh_backward_x(grad[i], x[i] / c, ())


@row_function
def row_xent_index_options(logits: Any, label: Any, want_grad: Any, grad: Any, scale: Any, w: Any, keep: Any,
                           smooth: Any, z: Any, cap: Any, scratch: Any) -> Any:
    full_width()
    n = logits.shape[0]
    if label < 0:
        if want_grad:
            for i in range(n):
                grad[i] = 0.0
        return 0.0
    x = _capped(logits, cap, scratch)
    if want_grad and x.itemsize == 4:
        m, total, log_total = _row_exps_into(x, grad)
        e_label = np.float64(grad[label])
    else:
        m, total, log_total = _row_log_sum_exp_terms(x)
        e_label = np.float64(exp_of_difference(x[label], m))
    mf = np.float64(m)
    wy = w[label]
    loss = keep * wy * label_loss(mf, x[label], log_total)
    a = keep * wy
    if smooth != 0.0:
        below, weights = 0.0, 0.0
        for i in range(n):
            below += w[i] * (mf - np.float64(x[i]))
            weights += w[i]
        loss += smooth * (below + weights * log_total)
        a += smooth * weights
    if z != 0.0:
        lse = mf + log_total
        loss += z * lse * lse
        a += 2.0 * z * lse
    if want_grad:
        inv = scale * a / total
        off = scale * smooth
        if x.itemsize == 4:
            for i in range(n):
                grad[i] = np.float64(grad[i]) * inv - off * w[i]
        else:
            for i in range(n):
                grad[i] = np.float64(exp_of_difference(x[i], m)) * inv - off * w[i]
        grad[label] = e_label * inv - off * w[label] - scale * keep * wy  # rounded once
        _chain_cap(logits, cap, grad)
    return loss


@row_function
def row_xent_prob_options(logits: Any, p: Any, want_grad: Any, grad: Any, scale: Any, w: Any, keep: Any, smooth: Any,
                          z: Any, cap: Any, scratch: Any) -> Any:
    """A row of class probabilities (already weighted and smoothed; w, keep, smooth
    unused), with the z-loss and the soft cap."""
    full_width()
    loss = _xent_prob_row(_capped(logits, cap, scratch), p, want_grad, grad, scale, z)
    if want_grad:
        _chain_cap(logits, cap, grad)
    return loss


def _numpy_capped(x: Any, cap: Any) -> Any:
    return x if cap == 0.0 else (x.dtype.type(cap) * np.tanh(x / x.dtype.type(cap))).astype(x.dtype)


def _numpy_chain_cap(x: Any, cap: Any, grad: Any) -> None:
    if cap != 0.0:
        slope = np.empty_like(x)
        _numpy_tanh_grad(x / x.dtype.type(cap), slope)
        np.multiply(grad, slope, out=grad, casting="unsafe")


def _numpy_xent_parts(x: Any) -> Any:
    shifted = x - np.max(x, axis=1, keepdims=True)
    e = np.exp(shifted)
    # log1p of the rest: a dominant label's loss is tiny
    return shifted, e, np.sum(e, axis=1, keepdims=True), numpy_log_sum_exp(shifted, e, 1)


def numpy_xent_index(x: Any, labels: Any, want_grad: Any, grad: Any, scale: Any, losses: Any,
                     short: Any = False) -> Any:
    shifted, e, total, log_total = _numpy_xent_parts(x)
    valid = (labels >= 0) & (labels < x.shape[1])  # has_label's rows; the others give NaN
    rows, labels = np.arange(x.shape[0])[valid], labels[valid]
    losses[:] = np.nan
    losses[rows] = log_total[rows, 0] - shifted[rows, labels]
    if want_grad:
        np.multiply(e, scale / total, out=grad)
        grad[rows, labels] -= scale
    return np.sum(losses)  # the total the kernel returns too


def numpy_xent_index_lanes(x: Any, labels: Any, want_grad: Any, grad: Any, scale: Any, losses: Any) -> None:
    """numpy_xent_index along axis 1 of (outer, n, inner) x (lanes_xent_index's arguments)."""
    outer, n, inner = x.shape
    rows = np.moveaxis(x, 1, 2).reshape(-1, n)
    g = np.empty(rows.shape if want_grad else (rows.shape[0], 0), x.dtype)
    each = np.empty(rows.shape[0], losses.dtype)
    numpy_xent_index(rows, labels.reshape(-1), want_grad, g, scale, each)
    losses[:] = each.reshape(outer, inner)
    if want_grad:
        grad[:] = np.moveaxis(g.reshape(outer, inner, n), 2, 1)


def numpy_xent_prob(x: Any, p: Any, want_grad: Any, grad: Any, scale: Any, losses: Any, short: Any = False) -> None:
    shifted, e, total, log_total = _numpy_xent_parts(x)
    losses[:] = np.sum(p * (log_total - shifted), axis=1)
    if want_grad:
        mass = np.sum(p, axis=1, keepdims=True)
        np.copyto(grad, e * (scale * mass / total) - scale * p)


def numpy_xent_index_options(logits: Any, labels: Any, want_grad: Any, grad: Any, scale: Any, losses: Any, w: Any,
                             keep: Any, smooth: Any, z: Any, cap: Any) -> None:
    x = _numpy_capped(logits, cap)
    shifted, e, total, log_total = _numpy_xent_parts(x)
    ignored = labels < 0
    label = np.where(ignored, 0, labels)
    rows = np.arange(x.shape[0])
    wy = w[label]
    log_total = log_total[:, 0]
    loss = keep * wy * (log_total - shifted[rows, label])
    a = keep * wy
    if smooth:
        loss = loss + smooth * (-shifted @ w + w.sum() * log_total)
        a = a + smooth * w.sum()
    if z:
        lse = (x[:, 0] - shifted[:, 0]) + log_total
        loss = loss + z * lse * lse
        a = a + 2 * z * lse
    losses[:] = np.where(ignored, 0, loss)
    if want_grad:
        g = e * (scale * a / total[:, 0])[:, None] - scale * smooth * w
        g[rows, label] -= scale * keep * wy
        g[ignored] = 0
        np.copyto(grad, g, casting="unsafe")
        _numpy_chain_cap(logits, cap, grad)


def numpy_xent_prob_options(logits: Any, p: Any, want_grad: Any, grad: Any, scale: Any, losses: Any, w: Any, keep: Any,
                            smooth: Any, z: Any, cap: Any) -> None:
    x = _numpy_capped(logits, cap)
    shifted, e, total, log_total = _numpy_xent_parts(x)
    lse = (x[:, :1] - shifted[:, :1]) + log_total
    losses[:] = np.sum(p * (log_total - shifted), axis=1) + z * lse[:, 0] ** 2
    if want_grad:
        mass = np.sum(p, axis=1, keepdims=True)
        np.copyto(grad, e * (scale * (mass + 2 * z * lse) / total) - scale * p, casting="unsafe")
        _numpy_chain_cap(logits, cap, grad)


@scalar_function
def bce_with_logits_terms(x: Any, t: Any) -> Any:
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


@scalar_function
def bce_weighted_terms(x: Any, t: Any, w: Any, pw: Any) -> Any:
    """bce_with_logits_terms with PyTorch's weight w and pos_weight pw:
    w ((1 - t) x + c softplus(-x)), c = 1 + (pw - 1) t, formed as w ((1 - t) x + c
    log1p(e^-|x|)) for x > 0 and w (-x pw t + c log1p(e^-|x|)) otherwise (terms of one
    sign: (1 - t) x + c (-x) would cancel), and its gradient w ((1 - t) - c sigmoid(-x))
    = w (c sigmoid(x) - pw t) (each from sigmoid(-|x|))."""
    zero = like(x, 0.0)
    one = like(x, 1.0)
    c = (one - t) + pw * t  # 1 + (pw - 1) t, as two terms of one sign for t in [0, 1]
    e = exp_nonpositive(-abs(x))
    if abs(x) == math.inf:  # the limits (1 - t) x and -x t pw (0 where the factor is 0)
        loss = _times(x, one - t) if x > zero else _times(-x, t * pw)
    else:
        loss = ((one - t) * x if x > zero else -x * (pw * t)) + c * log1p(e)
    lower = _sigmoid(-abs(x))  # sigmoid(-|x|)
    grad = ((one - t) - c * lower) if x > zero else (c * lower - pw * t)
    return loss * w, grad * w  # as PyTorch's product (an infinite loss with w = 0: NaN)


def numpy_bce_weighted(x: Any, t: Any, want_grad: Any, grad: Any, scale: Any, losses: Any, want_each: Any, w: Any,
                       w_inner: Any, pw: Any, pw_inner: Any) -> Any:
    index = np.arange(x.shape[0])
    w, pw = w[(index // w_inner) % w.shape[0]], pw[(index // pw_inner) % pw.shape[0]]
    c = (1 - t) + pw * t
    loss = np.where(x > 0, (1 - t) * x, -x * (pw * t)) + c * np.log1p(np.exp(-np.abs(x)))
    infinite = np.isinf(x)
    if infinite.any():  # the limits, as the kernel
        factor = np.broadcast_to(np.where(x > 0, 1 - t, -t * pw), x.shape)[infinite]
        loss[infinite] = np.where(factor == 0, 0, x[infinite] * factor)
    loss = loss * w
    if want_each:
        losses[:] = loss
    if want_grad:
        np.copyto(grad, ((1 - t) - c / (1 + np.exp(x))) * w * scale, casting="unsafe")
    return np.sum(loss, dtype=accumulator(loss.dtype))


def numpy_bce(x: Any, t: Any, want_grad: Any, grad: Any, scale: Any, losses: Any, want_each: Any) -> Any:
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
        LossDefinition("xent_index", row_xent_index, "rows", LOOP_MATH, numpy_xent_index,
                       (rows_xent_index, block_xent_index)),
        # the same along an axis that is not the last, read where it lies
        LossDefinition("xent_index_lanes", lanes_xent_index, "lanes", LOOP_MATH, numpy_xent_index_lanes),
        LossDefinition("xent_prob", row_xent_prob, "rows", LOOP_MATH, numpy_xent_prob),
        LossDefinition("xent_index_options", row_xent_index_options, "rows_options", LOOP_MATH,
                       numpy_xent_index_options),
        LossDefinition("xent_prob_options", row_xent_prob_options, "rows_options", LOOP_MATH,
                       numpy_xent_prob_options),
        # the formulas keep their own strict flags (scalar_function); the loop's let LLVM
        # split each block's sum over vector lanes
        LossDefinition("bce", bce_with_logits_terms, "elements", LOOP_MATH, numpy_bce),
        LossDefinition("bce_weighted", bce_weighted_terms, "elements_weighted", LOOP_MATH, numpy_bce_weighted),
    )
}
