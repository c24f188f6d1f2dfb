"""Numba kernels, generated from the definitions in ``_activations``.

Nothing here compiles at import.  ``elementwise_kernel(name, kind, parallel)``
builds (once, memoised) a loop over 1-D contiguous arrays around the scalar
formula of one activation; Numba compiles it on first call for the dtype it
sees (float32 or float64) and caches the machine code on disk.  The wrappers
in ``_api`` hand every kernel 1-D C-contiguous float32/float64 arrays, so each
kernel has at most two signatures.

The row kernels for softmax / log_softmax work on 2-D C-contiguous arrays,
one row per softmax.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
from pathlib import Path
from typing import Callable, NamedTuple

import numba
import numpy as np
from numba import njit, prange
from numba.core.caching import FunctionCache
from numba.extending import register_jitable

from . import _activations
from ._activations import _sigmoid, _times
from ._config import LANE_BLOCK, LOOP_MATH, ROW_BLOCK, SHORT_ROW_MAX, STRICT_MATH
from ._vmath import exp, exp_nonpositive, fma, like, log1p, maximum, scalar_function

# Numba's on-disk cache key holds the signature, the bytecode and a hash of the
# closure, but neither the jit options (parallel, fastmath) nor the sources of
# called functions, and it checks only the timestamp of the defining file.  So
# each kernel's closure carries a token made of a digest of the sources its
# formulas come from and its jit options: editing a formula invalidates the
# kernels built from it, and the serial and parallel builds of one template
# never load each other's machine code.
_SOURCE_TOKEN = hashlib.sha256(
    b"".join(
        (Path(__file__).parent / name).read_bytes()
        for name in ("_activations.py", "_vmath.py", "_kernels.py", "_config.py")
    )
).hexdigest()


class _TolerantCache(FunctionCache):
    """An on-disk cache whose unreadable entries (truncated, corrupt, written by
    another build) are recompiled instead of failing the call, and whose write
    failures (disk full, permissions changed) leave the kernel in memory."""

    def load_overload(self, sig, target_context):
        try:
            return super().load_overload(sig, target_context)
        except Exception:
            return None

    def save_overload(self, sig, data):
        try:
            super().save_overload(sig, data)
        except OSError:
            pass
        except Exception:  # the index itself is unreadable: start it afresh
            try:
                os.remove(self._cache_file._index_path)
                super().save_overload(sig, data)
            except Exception:
                pass


def _quiet(fn: Callable) -> Callable:
    """``fn`` without the warnings that NumPy's scalar arithmetic gives where the
    compiled kernel raises only FP flags (in branches whose results it discards)."""

    @functools.wraps(fn)
    def quiet(*args):
        with np.errstate(all="ignore"):
            return fn(*args)

    return quiet


def cache_token(build: str, fastmath) -> str:
    """The token a kernel's closure carries: the formula sources, how it is built
    and its fast-math flags (see _SOURCE_TOKEN)."""
    return f"{_SOURCE_TOKEN}:{build}:fastmath={','.join(sorted(fastmath))}"


def _jit(template, *fns, parallel: bool, fastmath=STRICT_MATH, cache: bool = True):
    """Compile ``template(*fns)`` lazily, with its cache token in the closure."""
    token = cache_token(f"parallel={parallel}", fastmath)
    fn = template(*fns, token=token)
    options = dict(parallel=parallel, fastmath=set(fastmath), error_model="numpy", nogil=True)
    if numba.config.DISABLE_JIT:  # njit gives fn back: the formulas run as Python on NumPy scalars
        return _quiet(fn)
    if cache:
        try:
            dispatcher = njit(cache=True, **options)(fn)
        except RuntimeError:  # no writable cache location: compile in memory only
            pass
        else:
            if type(dispatcher._cache) is FunctionCache:
                dispatcher._cache.__class__ = _TolerantCache
            return dispatcher
    return njit(**options)(fn)


# --- elementwise loop templates ----------------------------------------------
# prange is plain range when compiled with parallel=False, so each template
# serves both the serial and the parallel kernel.


def _map_1_1(fn, *, token):
    def kernel(x, out, p):
        token  # noqa: B018 - part of the on-disk cache key (see _SOURCE_TOKEN)
        for i in prange(x.shape[0]):
            out[i] = fn(x[i], p)

    return kernel


def _map_1_2(fn1, fn2, *, token):
    def kernel(x, out1, out2, p):
        token  # noqa: B018
        for i in prange(x.shape[0]):
            v = x[i]
            out1[i] = fn1(v, p)
            out2[i] = fn2(v, p)

    return kernel


def _map_2_1(fn, *, token):
    def kernel(a, b, out, p):
        token  # noqa: B018
        for i in prange(a.shape[0]):
            out[i] = fn(a[i], b[i], p)

    return kernel


def _map_2_mul(fn, *, token):
    def kernel(a, b, out, p):
        token  # noqa: B018
        for i in prange(a.shape[0]):
            out[i] = a[i] * fn(b[i], p)

    return kernel


ELEMENTWISE_KINDS = ("forward", "grad", "value_and_grad", "backward_x", "backward_y")


def _template(act: _activations.Activation, kind: str):
    """The loop template and the scalar functions it is built around."""
    if kind == "forward":
        return _map_1_1, (act.f,)
    if kind == "grad":
        return _map_1_1, (act.df,)
    if kind == "value_and_grad":
        return _map_1_2, (act.f, act.df)
    if kind == "backward_x":
        return (_map_2_1, (act.backward_x,)) if act.backward_x else (_map_2_mul, (act.df,))
    if kind == "backward_y":
        if act.df_from_y is None:
            raise ValueError(f"{act.name} has no derivative from y")
        return _map_2_mul, (act.df_from_y,)
    raise ValueError(f"unknown kernel kind {kind!r}")


@functools.cache
def elementwise_kernel(name: str, kind: str, parallel: bool, cache: bool = True):
    """The kernel of ``kind`` for activation ``name``: ``kernel(*inputs, *outputs, params)``,
    ``params`` a tuple of floats (empty for ops without parameters).

    ``cache=False`` gives an uncached twin, whose machine code can be inspected.
    """
    template, fns = _template(_activations.ELEMENTWISE[name], kind)
    return _jit(template, *fns, parallel=parallel, cache=cache)


# --- softmax rows ----------------------------------------------------------------
# Three passes per row (max; exp and sum; scale): computing exp once beats the
# two-pass "online" softmax, which needs it twice.  Sums run in float64.  The
# exponent x - max is formed exactly (two-sum), since its rounding error would
# be multiplied by up to |x - max| in exp.


@scalar_function
def exp_of_difference(a, b):
    """exp(a - b) without the rounding error of a - b (a <= b)."""
    s = a - b
    bb = s - a
    err = (a - (s - bb)) + (-b - bb)
    e = exp_nonpositive(s)
    return e if e == 0 else fma(e, err, e)


@scalar_function
def log_softmax_value(x, m, log_total):
    """(x - m) - log_total, in this order: reassociated as x - (m + log_total) it
    would round the answer away where log_total is tiny."""
    return (x - m) - log_total


def _row_function(fn):
    """A per-row helper: reductions may be split over vector lanes (LOOP_MATH)."""
    register_jitable(fastmath=set(LOOP_MATH), error_model="numpy")(fn)
    return fn


@scalar_function  # its own strict flags: reassociated, the error term is zero
def compensated_add(total, err, v):
    """(total + v, err + the rounding error of total + v)  (Knuth's two-sum)."""
    s = total + v
    vv = s - total
    return s, err + ((total - (s - vv)) + (v - vv))


ROW_SUM_BLOCK = 256


@_row_function
def row_sum(a):
    """The float64 sum of a row.  Within blocks of ROW_SUM_BLOCK the sum is split
    over vector lanes; the block sums are added with their rounding errors
    carried along.  One split sum over a whole long row loses too much: 24 ULP
    in softmax at 65536 float64 terms, against 2 ULP now."""
    total, err = 0.0, 0.0
    for blk in range((a.shape[0] + ROW_SUM_BLOCK - 1) // ROW_SUM_BLOCK):
        start = blk * ROW_SUM_BLOCK  # not range(0, n, step): LLVM vectorises neither loop then
        block = 0.0
        for i in range(min(ROW_SUM_BLOCK, a.shape[0] - start)):
            block += np.float64(a[start + i])
        total, err = compensated_add(total, err, block)
    return total + err


@_row_function
def row_dot(a, b):
    """The float64 dot product of two rows, summed as in row_sum."""
    total, err = 0.0, 0.0
    for blk in range((a.shape[0] + ROW_SUM_BLOCK - 1) // ROW_SUM_BLOCK):
        start = blk * ROW_SUM_BLOCK
        block = 0.0
        for i in range(min(ROW_SUM_BLOCK, a.shape[0] - start)):
            block += np.float64(a[start + i]) * np.float64(b[start + i])
        total, err = compensated_add(total, err, block)
    return total + err


@_row_function
def row_max(x):
    m = x[0]
    for i in range(1, x.shape[0]):
        m = maximum(m, x[i])
    return m


@_row_function
def row_softmax(x, out):
    m = row_max(x)
    for i in range(x.shape[0]):
        out[i] = exp_of_difference(x[i], m)
    # A separate pass for the sum: fused with the stores above, LLVM would run
    # a scalar loop (another summation order) whenever out aliases x.
    total = row_sum(out)
    scale = like(x[0], 1.0 / total)  # in the input's precision: float32 keeps 16 lanes
    for i in range(x.shape[0]):
        out[i] = out[i] * scale


@scalar_function
def log_of_total(below, ties):
    """log(sum of exp(x - max)) from the sum of the terms below the maximum and the
    count of terms equal to it.  With a unique maximum the sum is 1 + below, and
    log1p keeps the tiny part that the log of the rounded sum would lose (it is
    the whole answer for the maximum's own entry)."""
    return math.log1p(below) if ties == 1 else math.log(ties + below)


@scalar_function
def log_of_sum(below, ties):
    """log_of_total's value as log(t) + e / t, t = ties + below rounded and e its
    rounding error: as exact where the sum is near 1 (a dominant label's tiny
    cross-entropy), within an ULP of log_of_total's elsewhere, and at the cost of
    libm's log, half its log1p's.  The cross-entropy takes it: on 65536x128
    float32, 4.3 ms against 5.1 with log_of_total (most rows sum under 2)."""
    total, err = compensated_add(np.float64(ties), 0.0, below)
    return math.log(total) + err / total


@scalar_function
def log_of_compensated_total(total, err):
    """log(total + err) for a compensated sum of exp(x - max) (so total >= 1):
    total - 1 is exact below 4, and err holds what the rounded total lost, so
    the tiny part of a sum 1 + tiny survives, as in log_of_total, without
    counting the terms equal to the maximum (which cost a quarter of the time
    on short rows)."""
    return log1p((total - 1.0) + err)


@_row_function
def row_exp_sum_below(x, m):
    """(sum of exp(x - m) over the entries below m, count of entries equal to m),
    summed as in row_sum.  m is the row's maximum: the whole sum is ties + below."""
    below, err, ties = 0.0, 0.0, 0
    for blk in range((x.shape[0] + ROW_SUM_BLOCK - 1) // ROW_SUM_BLOCK):
        start = blk * ROW_SUM_BLOCK
        block = 0.0
        for k in range(min(ROW_SUM_BLOCK, x.shape[0] - start)):
            v = x[start + k]
            below_max = v != m  # a multiply by it, not a branch, keeps the loop vectorised
            block += np.float64(exp_of_difference(v, m)) * below_max
            ties += 1 - below_max
        below, err = compensated_add(below, err, block)
    return below + err, ties


# float32 log_softmax takes the exps into out at full vector width and then their
# float64 sum: summed as they come, the float64 accumulators halve the exp's
# vector width (4096x4096: 7.4 -> 5.6 ms).  The sum includes the maxima's
# 1s, so log(sum) = log1p(sum - 1) is as exact as log_of_total's where
# sum - 1 >= LOG_SOFTMAX_MIN_BELOW (the sum's rounding is then at most
# 2**-30 of it).  Below that (one entry dominates, and its answer is the tiny
# -log1p(below)) the row takes the fused pass.  Where out is x the exps go to
# a scratch row, so that out=x gives the same bits.
LOG_SOFTMAX_MIN_BELOW = 2.0**-20


@_row_function
def row_log_softmax(x, out):
    m = row_max(x)
    below = -1.0  # float64 rows take the fused pass
    if x.itemsize == 4:
        exps = out if out.ctypes.data != x.ctypes.data else np.empty_like(x)
        for i in range(x.shape[0]):
            exps[i] = exp_of_difference(x[i], m)
        below = row_sum(exps) - 1.0
    # In the input's precision: y = (x - m) - log_total with x - m <= 0 and
    # log_total >= 0 never cancels, so each rounding is at most half an ULP of y.
    if below >= LOG_SOFTMAX_MIN_BELOW:
        log_total = like(m, log1p(below))
    else:
        below, ties = row_exp_sum_below(x, m)
        log_total = like(m, log_of_total(below, ties))
    for i in range(x.shape[0]):
        out[i] = log_softmax_value(x[i], m, log_total)


@_row_function
def row_softmax_backward(g, y, out):
    dot = row_dot(g, y)
    for i in range(g.shape[0]):
        out[i] = np.float64(y[i]) * (np.float64(g[i]) - dot)


@_row_function
def row_log_softmax_backward(g, y, out):
    """g - exp(y) sum(g).  The exps go through out first (unless out is g), so that
    their loop keeps the input's vector width (float32: 16 lanes, not 8).  Not
    through a separate buffer where out is g: LLVM, unable to rule out that it
    aliases out, then vectorises neither loop (4096x4096: 6.3 -> 9.4 ms)."""
    total = row_sum(g)
    if out.ctypes.data != g.ctypes.data:
        for i in range(g.shape[0]):
            out[i] = exp(y[i])
        for i in range(g.shape[0]):
            out[i] = np.float64(g[i]) - np.float64(out[i]) * total
    else:
        for i in range(g.shape[0]):
            out[i] = np.float64(g[i]) - np.float64(exp(y[i])) * total


def _rows_1_1(fn, *, token):
    def kernel(x, out):
        token  # noqa: B018
        for r in prange(x.shape[0]):
            fn(x[r], out[r])

    return kernel


def _rows_2_1(fn, *, token):
    def kernel(a, b, out):
        token  # noqa: B018
        for r in prange(a.shape[0]):
            fn(a[r], b[r], out[r])

    return kernel


# --- the same rows, vectorised across rows ------------------------------------
# A softmax over short rows (1e6 rows of 10) or over an axis that is not the
# last runs each step above for many rows at once: the data is viewed as
# (outer, n, inner) with the softmax along the middle axis, and a "lanes"
# function handles lanes c0..c1 of the inner axis of one outer index, every
# loop running along the contiguous inner axis.  The scalar formulas are the
# row functions'.  The sums are not: a lane adds its terms one after another,
# carrying the rounding error of its sum along (compensated summation), where
# a row function adds vector partial sums over blocks.  Both are accurate to
# about an ULP of the sum; results of the two may differ by a few ULP.  _api
# never hands a kernel an out that overlaps an input: LLVM vectorises no loop
# whose output may overlap its input.


@_row_function
def lanes_add(total, err, v):
    """total, err += v lane by lane, compensated (v of either float dtype)."""
    for b in range(total.shape[0]):
        total[b], err[b] = compensated_add(total[b], err[b], v[b])


@_row_function
def lanes_max(x, o, c0, c1, j0, j1):
    """The maxima of lanes c0..c1 over rows j0..j1 (j0 < j1)."""
    m = x[o, j0, c0:c1].copy()
    for j in range(j0 + 1, j1):
        xj = x[o, j, c0:c1]
        for b in range(m.shape[0]):
            m[b] = maximum(m[b], xj[b])
    return m


# Ungrouped lanes (period = width) return at once: the loops, although they
# would do nothing there, slowed short rows by 14%.


@_row_function
def fold_max(m, period):
    """Lanes b, b + period, b + 2 period, ... are parts of one softmax (grouped
    lanes): give each of them the maximum of all."""
    if period == m.shape[0]:
        return
    for b in range(period):
        v = m[b]
        for k in range(b + period, m.shape[0], period):
            v = maximum(v, m[k])
        for k in range(b, m.shape[0], period):
            m[k] = v


@_row_function
def fold_sum(total, err, period):
    """As fold_max, for compensated sums: each part gets the sum of all parts."""
    if period == total.shape[0]:
        return
    for b in range(period):
        t, e = total[b], err[b]
        for k in range(b + period, total.shape[0], period):
            t, e = compensated_add(t, e, total[k])
            e += err[k]
        for k in range(b, total.shape[0], period):
            total[k], err[k] = t, e


# Each lanes function runs in phases over a range of rows j0..j1: a maximum
# (softmax, log_softmax), compensated sums, and the pass that writes the
# result.  The lanes functions run them over all rows, folding grouped lanes
# between them; the split-lanes kernels run each phase on several tasks'
# ranges and combine the tasks' parts in between.


@_row_function
def softmax_exp_sums(x, out, o, c0, c1, m, j0, j1):
    total, err = np.zeros(c1 - c0), np.zeros(c1 - c0)
    for j in range(j0, j1):
        xj, outj = x[o, j, c0:c1], out[o, j, c0:c1]
        for b in range(m.shape[0]):
            outj[b] = exp_of_difference(xj[b], m[b])
        lanes_add(total, err, outj)
    return total, err


@_row_function
def softmax_scale(x, out, o, c0, c1, m, total, err, j0, j1):
    scale = np.empty_like(m)
    for b in range(m.shape[0]):
        scale[b] = like(m[b], 1.0 / (total[b] + err[b]))
    for j in range(j0, j1):
        outj = out[o, j, c0:c1]
        for b in range(m.shape[0]):
            outj[b] = outj[b] * scale[b]


@_row_function
def lanes_softmax(x, out, o, c0, c1, period):
    m = lanes_max(x, o, c0, c1, 0, x.shape[1])
    fold_max(m, period)
    total, err = softmax_exp_sums(x, out, o, c0, c1, m, 0, x.shape[1])
    fold_sum(total, err, period)
    softmax_scale(x, out, o, c0, c1, m, total, err, 0, x.shape[1])


@_row_function
def log_softmax_exp_sums(x, out, o, c0, c1, m, j0, j1):
    """The exps go through a buffer of the input's dtype, so that the exp loop
    keeps its vector width: converted to float64 as they were computed, float32
    ran at half of it."""
    total, err, e = np.zeros(c1 - c0), np.zeros(c1 - c0), np.empty(c1 - c0, x.dtype)
    for j in range(j0, j1):
        xj = x[o, j, c0:c1]
        for b in range(m.shape[0]):
            e[b] = exp_of_difference(xj[b], m[b])
        lanes_add(total, err, e)
    return total, err


@_row_function
def log_softmax_values(x, out, o, c0, c1, m, total, err, j0, j1):
    log_total = np.empty_like(m)
    for b in range(m.shape[0]):
        log_total[b] = like(m[b], log_of_compensated_total(total[b], err[b]))
    for j in range(j0, j1):
        xj, outj = x[o, j, c0:c1], out[o, j, c0:c1]
        for b in range(m.shape[0]):
            outj[b] = log_softmax_value(xj[b], m[b], log_total[b])


@_row_function
def lanes_log_softmax(x, out, o, c0, c1, period):
    m = lanes_max(x, o, c0, c1, 0, x.shape[1])
    fold_max(m, period)
    total, err = log_softmax_exp_sums(x, out, o, c0, c1, m, 0, x.shape[1])
    fold_sum(total, err, period)
    log_softmax_values(x, out, o, c0, c1, m, total, err, 0, x.shape[1])


@_row_function
def softmax_backward_dots(g, y, out, o, c0, c1, j0, j1):
    dot, err, e = np.zeros(c1 - c0), np.zeros(c1 - c0), np.empty(c1 - c0)
    for j in range(j0, j1):
        gj, yj = g[o, j, c0:c1], y[o, j, c0:c1]
        for b in range(dot.shape[0]):
            e[b] = np.float64(gj[b]) * np.float64(yj[b])
        lanes_add(dot, err, e)
    return dot, err


@_row_function
def softmax_backward_values(g, y, out, o, c0, c1, total, err, j0, j1):
    dot = total + err
    for j in range(j0, j1):
        gj, yj, outj = g[o, j, c0:c1], y[o, j, c0:c1], out[o, j, c0:c1]
        for b in range(dot.shape[0]):
            outj[b] = np.float64(yj[b]) * (np.float64(gj[b]) - dot[b])


@_row_function
def lanes_softmax_backward(g, y, out, o, c0, c1, period):
    total, err = softmax_backward_dots(g, y, out, o, c0, c1, 0, g.shape[1])
    fold_sum(total, err, period)
    softmax_backward_values(g, y, out, o, c0, c1, total, err, 0, g.shape[1])


@_row_function
def log_softmax_backward_sums(g, y, out, o, c0, c1, j0, j1):
    total, err = np.zeros(c1 - c0), np.zeros(c1 - c0)
    for j in range(j0, j1):
        lanes_add(total, err, g[o, j, c0:c1])
    return total, err


@_row_function
def log_softmax_backward_values(g, y, out, o, c0, c1, total, err, j0, j1):
    sums = total + err
    for j in range(j0, j1):
        gj, yj, outj = g[o, j, c0:c1], y[o, j, c0:c1], out[o, j, c0:c1]
        for b in range(sums.shape[0]):
            outj[b] = np.float64(gj[b]) - np.float64(exp(yj[b])) * sums[b]


@_row_function
def lanes_log_softmax_backward(g, y, out, o, c0, c1, period):
    total, err = log_softmax_backward_sums(g, y, out, o, c0, c1, 0, g.shape[1])
    fold_sum(total, err, period)
    log_softmax_backward_values(g, y, out, o, c0, c1, total, err, 0, g.shape[1])


def _lanes_1_1(fn, *, token):
    def kernel(x, out):
        token  # noqa: B018
        outer, n, inner = x.shape
        width = LANE_BLOCK
        blocks = (inner + width - 1) // width
        for t in prange(outer * blocks):
            o, c0 = t // blocks, (t % blocks) * width
            c1 = min(c0 + width, inner)
            fn(x, out, o, c0, c1, c1 - c0)

    return kernel


def _lanes_2_1(fn, *, token):
    def kernel(a, b, out):
        token  # noqa: B018
        outer, n, inner = a.shape
        width = LANE_BLOCK
        blocks = (inner + width - 1) // width
        for t in prange(outer * blocks):
            o, c0 = t // blocks, (t % blocks) * width
            c1 = min(c0 + width, inner)
            fn(a, b, out, o, c0, c1, c1 - c0)

    return kernel


# Grouped lanes: along an axis with few elements after it (axis 0 of (1e6, 10)
# has 10 lanes), the lanes loops are too short to vectorise.  With n divisible
# by a group size G, the array is viewed as (outer, n / G, G * inner): every
# G consecutive rows become one row of G * inner lanes, and lane b + k * inner
# holds part of lane b's softmax.  The lanes functions fold those parts
# together (fold_max, fold_sum) between their passes.


def _grouped_lanes_1_1(fn, *, token):
    def kernel(x, out, group):
        token  # noqa: B018
        outer, n, inner = x.shape
        shape = (outer, n // group, group * inner)
        xg, og = x.reshape(shape), out.reshape(shape)
        for o in prange(outer):
            fn(xg, og, o, 0, group * inner, inner)

    return kernel


def _grouped_lanes_2_1(fn, *, token):
    def kernel(a, b, out, group):
        token  # noqa: B018
        outer, n, inner = a.shape
        shape = (outer, n // group, group * inner)
        ag, bg, og = a.reshape(shape), b.reshape(shape), out.reshape(shape)
        for o in prange(outer):
            fn(ag, bg, og, o, 0, group * inner, inner)

    return kernel


# Split lanes: where the outer indices and lane blocks are fewer than the
# threads (axis 0 of (1e6, 10) or of (65536, 128)), the rows of each outer index
# (grouped as above) are split into one range per task, and each phase runs on
# all ranges at once; between phases the tasks' maxima and compensated sums
# are combined (and folded for grouped lanes).


@_row_function
def combine_maxima(parts):
    m = parts[0].copy()
    for t in range(1, parts.shape[0]):
        for b in range(m.shape[0]):
            m[b] = maximum(m[b], parts[t, b])
    return m


@_row_function
def combine_sums(totals, errs):
    total, err = totals[0].copy(), errs[0].copy()
    for t in range(1, totals.shape[0]):
        lanes_add(total, err, totals[t])
        for b in range(err.shape[0]):
            err[b] += errs[t, b]
    return total, err


@_row_function
def task_rows(t, chunk, rows):
    """The rows of task t: t * chunk up to (t + 1) * chunk, the last task's cut at rows."""
    return t * chunk, min(t * chunk + chunk, rows)


def _split_lanes_1_1(first, second, third, *, token):
    def kernel(x, out, group, tasks):
        token  # noqa: B018
        outer, n, inner = x.shape
        rows, width = n // group, group * inner
        xg, og = x.reshape((outer, rows, width)), out.reshape((outer, rows, width))
        chunk = (rows + tasks - 1) // tasks
        tasks = (rows + chunk - 1) // chunk
        for o in range(outer):
            maxima = np.empty((tasks, width), x.dtype)
            for t in prange(tasks):
                j0, j1 = task_rows(t, chunk, rows)
                maxima[t] = first(xg, o, 0, width, j0, j1)
            m = combine_maxima(maxima)
            fold_max(m, inner)
            totals, errs = np.empty((tasks, width)), np.empty((tasks, width))
            for t in prange(tasks):
                j0, j1 = task_rows(t, chunk, rows)
                total_t, err_t = second(xg, og, o, 0, width, m, j0, j1)
                totals[t], errs[t] = total_t, err_t
            total, err = combine_sums(totals, errs)
            fold_sum(total, err, inner)
            for t in prange(tasks):
                j0, j1 = task_rows(t, chunk, rows)
                third(xg, og, o, 0, width, m, total, err, j0, j1)

    return kernel


def _split_lanes_2_1(second, third, *, token):
    def kernel(a, b, out, group, tasks):
        token  # noqa: B018
        outer, n, inner = a.shape
        rows, width = n // group, group * inner
        shape = (outer, rows, width)
        ag, bg, og = a.reshape(shape), b.reshape(shape), out.reshape(shape)
        chunk = (rows + tasks - 1) // tasks
        tasks = (rows + chunk - 1) // chunk
        for o in range(outer):
            totals, errs = np.empty((tasks, width)), np.empty((tasks, width))
            for t in prange(tasks):
                j0, j1 = task_rows(t, chunk, rows)
                total_t, err_t = second(ag, bg, og, o, 0, width, j0, j1)
                totals[t], errs[t] = total_t, err_t
            total, err = combine_sums(totals, errs)
            fold_sum(total, err, inner)
            for t in prange(tasks):
                j0, j1 = task_rows(t, chunk, rows)
                third(ag, bg, og, o, 0, width, total, err, j0, j1)

    return kernel


# Short rows of a C-contiguous (rows, n) array (1e6 rows of 10) run in blocks of
# ROW_BLOCK rows, each block seen as one flat run of elements.  A loop along a
# row of 10 is too short to vectorise, and transposing blocks for the lanes
# formulation cost more than the softmax itself.  Here only the reductions (max,
# sums) run row by row, in scalar code; the exps and every other elementwise step
# run over the whole block as one vectorised loop, each row's value repeated
# along its row in a buffer.  The sums are plain float64 sums along the row: n
# terms of at most 1 (or n products) lose at most n/2 ULP of float64.  The
# gufuncs run the same functions on one row at a time, and give the same bits.


@_row_function
def spread(values, n, out):
    """out[b * n + j] = values[b]: each row's value along its row of n."""
    for b in range(values.shape[0]):
        for j in range(n):
            out[b * n + j] = values[b]


@_row_function
def block_max(x, n):
    """The maxima of the rows of n in the flat block x, each along its row.  It
    writes each maximum along its row as it goes: a maxima array then spread()
    was 0.7 ms slower on (1e6, 10) float32 softmax (9.3-10.3 against 8.6-9.6)."""
    m = np.empty_like(x)
    for b in range(x.shape[0] // n):
        v = x[b * n]
        for j in range(1, n):
            v = maximum(v, x[b * n + j])
        for j in range(n):
            m[b * n + j] = v
    return m


@_row_function
def block_exps(x, n, out):
    """out = exp(x - row max); returns the row maxima along their rows."""
    m = block_max(x, n)
    for i in range(x.shape[0]):
        out[i] = exp_of_difference(x[i], m[i])
    return m


@_row_function
def block_sums(a, n):
    """The float64 sums of the rows of n in the flat block a."""
    sums = np.empty(a.shape[0] // n)
    for b in range(sums.shape[0]):
        total = 0.0
        for j in range(n):
            total += np.float64(a[b * n + j])
        sums[b] = total
    return sums


@_row_function
def block_softmax(x, out, n):
    m = block_exps(x, n, out)
    sums = block_sums(out, n)
    scale = np.empty(sums.shape[0], x.dtype)
    for b in range(scale.shape[0]):
        scale[b] = like(x[0], 1.0 / sums[b])
    spread(scale, n, m)
    for i in range(x.shape[0]):
        out[i] = out[i] * m[i]


@_row_function
def block_log_softmax(x, out, n):
    """As row_log_softmax: float32 rows whose sum of exps less 1 is under
    LOG_SOFTMAX_MIN_BELOW, and all float64 rows, sum the terms below the
    maximum apart from the count of those equal to it."""
    m = block_exps(x, n, out)
    below = block_sums(out, n) - 1.0 if x.itemsize == 4 else np.full(x.shape[0] // n, -1.0)
    for b in range(below.shape[0]):
        if below[b] < LOG_SOFTMAX_MIN_BELOW:
            rest, ties = 0.0, 0
            for j in range(n):
                below_max = x[b * n + j] != m[b * n + j]  # a multiply, not a branch
                rest += np.float64(out[b * n + j]) * below_max
                ties += 1 - below_max
            below[b] = (ties - 1) + rest  # log(ties + rest) = log1p(this), exactly rest for one tie
    log_total = np.empty(below.shape[0], x.dtype)
    for b in range(log_total.shape[0]):
        log_total[b] = like(x[0], log1p(below[b]))
    spread(log_total, n, out)  # the exps are no longer needed
    for i in range(x.shape[0]):
        out[i] = log_softmax_value(x[i], m[i], out[i])


@_row_function
def block_softmax_backward(g, y, out, n):
    dots = np.empty(g.shape[0] // n)
    for b in range(dots.shape[0]):
        total = 0.0
        for j in range(n):
            total += np.float64(g[b * n + j]) * np.float64(y[b * n + j])
        dots[b] = total
    d = np.empty(g.shape[0])
    spread(dots, n, d)
    for i in range(g.shape[0]):
        out[i] = np.float64(y[i]) * (np.float64(g[i]) - d[i])


@_row_function
def block_log_softmax_backward(g, y, out, n):
    s = np.empty(g.shape[0])
    spread(block_sums(g, n), n, s)
    for i in range(g.shape[0]):
        out[i] = np.float64(g[i]) - np.float64(exp(y[i])) * s[i]


def _blocks_1_1(fn, *, token):
    def kernel(x, out):
        token  # noqa: B018
        rows, n = x.shape
        xf, of = x.reshape(-1), out.reshape(-1)
        for t in prange((rows + ROW_BLOCK - 1) // ROW_BLOCK):
            a, z = t * ROW_BLOCK * n, min((t + 1) * ROW_BLOCK, rows) * n
            fn(xf[a:z], of[a:z], n)

    return kernel


def _blocks_2_1(fn, *, token):
    def kernel(g, y, out):
        token  # noqa: B018
        rows, n = g.shape
        gf, yf, of = g.reshape(-1), y.reshape(-1), out.reshape(-1)
        for t in prange((rows + ROW_BLOCK - 1) // ROW_BLOCK):
            a, z = t * ROW_BLOCK * n, min((t + 1) * ROW_BLOCK, rows) * n
            fn(gf[a:z], yf[a:z], of[a:z], n)

    return kernel


@register_jitable
def is_short_row(n, itemsize, short_row_max):
    """Whether rows of n elements run in blocks (short_row_max: RowOp's)."""
    return n <= (short_row_max[0] if itemsize == 4 else short_row_max[1])


class RowOp(NamedTuple):
    """One normalisation over rows, in its three formulations."""

    inputs: int  # 1: x; 2: grad_out and y
    row: Callable  # fn(*inputs, out), vectorised along one contiguous row
    block: Callable  # fn(*inputs, out, n) on a flat block of short rows of n
    lanes: Callable  # fn(*inputs, out, o, c0, c1, period) over (outer, n, inner) arrays
    short_row_max: tuple[int, int]  # (float32, float64): rows up to this long run in blocks
    phases: tuple  # the lanes function's phases, for split lanes: (max,) sums, values

    def uses_blocks(self, n: int, itemsize: int) -> bool:
        return is_short_row(n, itemsize, self.short_row_max)


ROW_KERNELS = {
    "softmax": RowOp(1, row_softmax, block_softmax, lanes_softmax, SHORT_ROW_MAX["softmax"],
                     (lanes_max, softmax_exp_sums, softmax_scale)),
    "log_softmax": RowOp(1, row_log_softmax, block_log_softmax, lanes_log_softmax, SHORT_ROW_MAX["log_softmax"],
                         (lanes_max, log_softmax_exp_sums, log_softmax_values)),
    "softmax_backward": RowOp(2, row_softmax_backward, block_softmax_backward, lanes_softmax_backward,
                              SHORT_ROW_MAX["softmax_backward"], (softmax_backward_dots, softmax_backward_values)),
    "log_softmax_backward": RowOp(2, row_log_softmax_backward, block_log_softmax_backward,
                                  lanes_log_softmax_backward, SHORT_ROW_MAX["log_softmax_backward"],
                                  (log_softmax_backward_sums, log_softmax_backward_values)),
}

ROW_FORMS = {  # form -> (template for one input, for two), the arrays they take
    "rows": (_rows_1_1, _rows_2_1),  # (rows, n) C-contiguous, one row per softmax
    "blocks": (_blocks_1_1, _blocks_2_1),  # the same arrays, short rows, in blocks of rows
    "lanes": (_lanes_1_1, _lanes_2_1),  # (outer, n, inner) C-contiguous, along axis 1
    "grouped_lanes": (_grouped_lanes_1_1, _grouped_lanes_2_1),  # the same with few lanes; takes group too
    "split_lanes": (_split_lanes_1_1, _split_lanes_2_1),  # the same over several tasks; takes group, tasks
}


@functools.cache
def row_kernel(name: str, parallel: bool, cache: bool = True, form: str = "rows"):
    """The kernel of row op ``name`` in ``form`` (see ROW_FORMS)."""
    op = ROW_KERNELS[name]
    template = ROW_FORMS[form][op.inputs - 1]
    fns = {"rows": (op.row,), "blocks": (op.block,), "split_lanes": op.phases}.get(form, (op.lanes,))
    return _jit(template, *fns, parallel=parallel, fastmath=LOOP_MATH, cache=cache)


def _copy(*, token):
    def kernel(x, out):
        token  # noqa: B018
        for i in prange(x.shape[0]):
            out[i] = x[i]

    return kernel


@functools.cache
def copy_kernel(parallel: bool):
    """A plain copy loop: with np.copyto, the memory roofline that ops are measured against."""
    return _jit(_copy, parallel=parallel)


# --- fused losses ----------------------------------------------------------------
# softmax cross-entropy per row: loss = (max - x[label]) + log(sum exp(x - max)),
# both terms >= 0, so nothing cancels; the gradient row is
# scale * (softmax(x) * sum(p) - p) for targets p (one-hot for class indices).


@_row_function
def _row_log_sum_exp_terms(x):
    """(max, sum of exp(x - max) in float64, log of that sum: log_of_sum)."""
    m = row_max(x)
    below, ties = row_exp_sum_below(x, m)
    return m, ties + below, log_of_sum(below, ties)


# float32 rows with a gradient take the exps once, into grad at full vector
# width, and their float64 sum in another order (float32 losses and gradients
# came out bit-identical on 200k test logits); float64 keeps the exact sum
# below the maximum and takes the exps again for the gradient.  float32
# value_and_grad: 4096x4096 13.5 -> 9.3 ms, 512x32768 13.8 -> 9.5, 65536x128
# 9.0 -> 7.7.


@_row_function
def _row_exps_into(x, grad):
    """As _row_log_sum_exp_terms, the exps left in grad.  The log is that of the sum,
    as exact as row_log_softmax's log1p(sum - 1) (libm's log is accurate near 1 too),
    or where the sum less 1 is under LOG_SOFTMAX_MIN_BELOW (the label's logit
    dominates, the loss is tiny) log_of_sum's."""
    m = row_max(x)
    for i in range(x.shape[0]):
        grad[i] = exp_of_difference(x[i], m)
    total = row_sum(grad)
    if total - 1.0 >= LOG_SOFTMAX_MIN_BELOW:
        return m, total, math.log(total)
    below, ties = row_exp_sum_below(x, m)
    return m, total, log_of_sum(below, ties)


@_row_function
def row_xent_index(x, label, want_grad, grad, scale):
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


@_row_function
def row_xent_prob(x, p, want_grad, grad, scale):
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


def _rows_loss(fn, *, token):
    def kernel(x, labels, want_grad, grad, scale, losses):
        token  # noqa: B018
        for r in prange(x.shape[0]):
            losses[r] = fn(x[r], labels[r], want_grad, grad[r], scale)

    return kernel


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


def _bce(*, token):
    def kernel(x, t, want_grad, grad, scale, losses, want_each):
        token  # noqa: B018
        total = 0.0
        for i in prange(x.shape[0]):
            loss, d = bce_with_logits_terms(x[i], t[i])
            if want_grad:
                grad[i] = d * scale
            if want_each:
                losses[i] = loss
            total += np.float64(loss)
        return total

    return kernel


LOSS_KERNELS = {
    "xent_index": (_rows_loss, row_xent_index),
    "xent_prob": (_rows_loss, row_xent_prob),
}


@functools.cache
def loss_kernel(name: str, parallel: bool):
    """The kernels of the fused losses (see ``_losses``)."""
    if name == "bce":  # strict: the loop body is the sigmoid and log1p formulas (the sum is not vectorised)
        return _jit(_bce, parallel=parallel, fastmath=STRICT_MATH)
    template, fn = LOSS_KERNELS[name]
    return _jit(template, fn, parallel=parallel, fastmath=LOOP_MATH)

