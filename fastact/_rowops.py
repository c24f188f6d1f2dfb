"""One definition per row op: softmax, softmin and log_softmax, and the reduction logsumexp.

A row op normalises along an axis.  Its definition holds everything fastact
knows about it, as ``_activations`` does for the elementwise ops:

- the formulas, in the three forms the kernels in ``_kernels`` are generated
  from: ``row`` (one contiguous row, vectorised along it), ``block`` (a flat
  block of short rows of n) and ``phases`` (maximum, sums, values: many rows at
  once along the lanes of an (outer, n, inner) array; the lanes kernels run the
  phases over all rows, the split-lanes kernels over several tasks' ranges);
- the NumPy fallback, the mpmath reference, the docs, and what a masked entry
  is filled with (for masked arrays and ``where=``: ``numpy_kept`` and the
  kernels of ``_kernels.kept_row_kernel`` run the same functions on filled rows).

Every kernel function takes its arrays as a tuple ``ins`` (``(x,)`` or
``(grad_out, y)``), so that one loop template serves every op.  The exps and
sums are built from ``_rowmath``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._backend import row_function, scalar_function
from ._rowmath import (LOG_SOFTMAX_MIN_BELOW, as_read, block_exps, block_exps_negated, block_exps_of_quotients,
                       block_exps_of_quotients_negated, block_exps_scaled, block_sums, exp_of_difference, lanes_add, lanes_max,
                       lanes_max_negated, log_of_total, no_max, quotient_by, quotient_fuses, row_dot, row_exp_sum_below,
                       row_exp_sum_below_scaled, row_kept_dot, row_kept_sum, row_max, row_max_negated, row_quotients_max,
                       row_quotients_max_negated, row_kept_max, row_kept_max_negated, row_sum, spread)
from ._scalar import exp, exp_of_quotient, full_width, like, log1p, single_precision
from ._validation import accumulator


@dataclass(frozen=True)
class RowFunction:
    """One direction (forward or backward) of a row op, as the kernels run it."""

    name: str  # the kernel's and the gufunc's name: "softmax", "softmax_backward"
    inputs: tuple[str, ...]  # the argument names: ("x",) or ("grad_out", "y")
    row: Callable[..., Any]  # (ins, out): one contiguous row
    block: Callable[..., Any]  # (ins, out, n): a flat block of short rows of n
    # lanes: (maximum or no_max, sums, values)
    phases: tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]
    numpy: Callable[..., Any]  # (*arrays, axis, out), called inside np.errstate(all="ignore")
    masked_fills: tuple[float, ...]  # what a masked entry of each input becomes: it takes no part in its row
    # a forward's value for a row with nothing unmasked, with where= (PyTorch's safe
    # softmax: probability 0, not NaN; log-probability -inf)
    empty_row: float = 0.0
    # a forward's (row, block, long row) forms that read x / t for ins = (x, (t, 1 / t)),
    # x / t rounded as in kept_quotients: a forward with temperature= and no where= runs
    # them, without the scratch copy of each row that kept_row_kernel makes (softmax
    # 4096 x 4096 float32: 1.2x the plain op's time with the copy).  The row form divides
    # as it reads x; the long-row form, for rows of QUOTIENTS_FIRST_MIN or more, takes
    # x / t into out in its first pass (_rowmath.row_quotients_max) and reads it from
    # there.  softmax's and softmin's (EXACT_QUOTIENT_OPS) take exp((x - max) / t) with
    # the quotient exact instead (_rowmath.exp_of_quotient), in every row that allows it
    # (quotient_fuses).  A backward's own forms serve it, the row divided by t as it goes
    # (_kernels.scaled_row_kernel).
    scaled: tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]] | None = None
    # a row form with where= that copies no row to scratch (_kernels.kept_row_kernel's
    # "select_rows" for a forward, "rows" for a backward): the row form's steps on the
    # inputs where kept and the fills elsewhere, each pass selecting as it reads, the
    # same bits as the row form on the filled row.  A forward's (no temperature=) takes
    # ins = (x, keep), its maximum over order keys (_rowmath.row_kept_max), and returns
    # whether anything was kept; a backward's (every backward has one) takes ins = (g,
    # y, keep, g's fill, y's fill), and its kernel divides by t after
    kept: Callable[..., Any] | None = None
    # (ins, out) -> bool: the row form's common case as a function that calls nothing,
    # for a row form whose other cases need calls (an allocation, a second pass): with
    # any call in it, even one never made, a row of 128 took a fifth more time (znver5,
    # log_softmax float32: 91 -> 71 ns a row without).  It returns False where the row
    # needs ``row`` after all (out then holds nothing of use); the "rows" kernels try it
    # first (_kernels._rows_fast_first), but for out=x (an in-place call: ``row`` then).
    fast_row: Callable[..., Any] | None = None

    @property
    def runs_scaled(self) -> bool:
        """Whether temperature= alone has kernels without a scratch copy."""
        return self.scaled is not None or len(self.inputs) == 2


@dataclass(frozen=True)
class RowDefinition:
    """A normalisation over an axis and its backward."""

    name: str
    formula: str  # for the README's table
    doc: str  # the first paragraph of the op's docstring
    forward: RowFunction
    backward: RowFunction
    reference: Callable[..., Any]  # (mpmath, list of floats) -> the exact row
    example: str  # the repr of op([2, 10, 1, 4]).round(6): the tutorial's scores
    # the same op elsewhere, for ``bench`` (as Activation.peers): "numpy" and
    # "numpy_backward" (plain NumPy with out=, no temporaries beyond buf, shaped as a
    # reduced row, and tmp), "scipy" (a scipy.special name), "jax" (an expression in jax, v and
    # axis, where jax.nn has no function of the op's name), "aten" and "aten_backward"
    # (expressions in aten, x, g, y, axis, o)
    peers: tuple[tuple[str, str], ...] = ()
    torch: str = ""  # PyTorch's op, an expression in torch, x and dim


# --- softmax ------------------------------------------------------------------------
# Three passes per row (max; exp and sum; scale): computing exp once beats the
# two-pass "online" softmax, which needs it twice.  Sums run in float64.


def _normalised_exps(negate: bool, name: str, scaled: bool = False) -> Any:
    """softmax's forward functions (row, block, lanes exp sums) over x, or over -x
    (``negate``: softmin; the maxima are then those of -x, from ``_rowmath``).  With
    ``scaled`` (row and block only) they take exp((x - max) / t) with the quotient exact
    where quotient_fuses, and read x / t rounded elsewhere, for ins = (x, (t, 1 / t)):
    see RowFunction.scaled and EXACT_QUOTIENT_OPS."""
    maximum_of_row, exps_of_block = (row_max_negated, block_exps_negated) if negate else (row_max, block_exps)
    exps_of_block_scaled = block_exps_of_quotients_negated if negate else block_exps_of_quotients
    quotients_max = row_quotients_max_negated if negate else row_quotients_max
    kept_max = row_kept_max_negated if negate else row_kept_max
    over = quotient_by if scaled else as_read

    def row_form(first: str) -> Any:
        """The row form, reading x (``first`` "x"; x / t where ``scaled``), or reading
        what its first pass wrote into out (out never overlaps x there:
        _api._takes_row_out), the exps then in place: x / t for the long-row form
        (``first`` "quotients"), or with where= (``first`` "kept", the non-scaled
        definition's) reading x where kept and the fill elsewhere, for ins = (x,
        keep).  ``first`` is a constant of the compiled function, so each holds one
        path.  Returns whether anything was kept (always, but for "kept")."""

        def row(ins: Any, out: Any) -> Any:
            full_width()
            x = ins[0]
            t, r = (ins[1][0], ins[1][1]) if scaled else (1.0, 1.0)
            live = True
            m = maximum_of_row(x) if scaled else like(x[0], 0.0)
            if scaled and quotient_fuses(m, t):  # the quotient taken in exp's reduction
                for i in range(x.shape[0]):
                    out[i] = exp_of_quotient(-x[i] if negate else x[i], m, t, r)
            elif first == "quotients":
                m = quotients_max(x, t, r, out)
                for i in range(x.shape[0]):
                    out[i] = exp_of_difference(out[i], m)
            elif first == "kept":
                keep, f = ins[1], like(x[0], -np.inf)
                m = kept_max(x, keep)
                live = m != f  # a kept entry above -inf, or a NaN
                for i in range(x.shape[0]):
                    v = -x[i] if negate else x[i]
                    out[i] = exp_of_difference(v if keep[i] else f, m)
            else:
                m = over(m if scaled else maximum_of_row(x), t, r)  # max(x / t): the quotient is monotone
                for i in range(x.shape[0]):
                    out[i] = exp_of_difference(over(-x[i] if negate else x[i], t, r), m)
            # A separate pass for the sum: fused with the stores above, LLVM would run
            # a scalar loop (another summation order) whenever out aliases x.
            total = row_sum(out)
            scale = like(x[0], 1.0 / total)  # in the input's precision: float32 keeps 16 lanes
            for i in range(x.shape[0]):
                out[i] = out[i] * scale
            return live

        return row

    row = row_form("x")

    def block(ins: Any, out: Any, n: Any) -> None:
        full_width()
        x = ins[0]
        m = exps_of_block_scaled(x, n, out, ins[1][0], ins[1][1]) if scaled else exps_of_block(x, n, out)
        sums = block_sums(out, n)
        scale = np.empty(sums.shape[0], x.dtype)
        for b in range(scale.shape[0]):
            scale[b] = like(x[0], 1.0 / sums[b])
        spread(scale, n, m)
        for i in range(x.shape[0]):
            out[i] = out[i] * m[i]

    def exp_sums(ins: Any, out: Any, o: Any, c0: Any, c1: Any, m: Any, j0: Any, j1: Any) -> Any:
        full_width()
        total, err = np.zeros(c1 - c0), np.zeros(c1 - c0)
        x = ins[0]
        for j in range(j0, j1):
            xj, outj = x[o, j, c0:c1], out[o, j, c0:c1]
            for b in range(m.shape[0]):
                outj[b] = exp_of_difference(-xj[b] if negate else xj[b], m[b])
            lanes_add(total, err, outj)
        return total, err

    functions: tuple[Callable[..., Any], ...] = (row, block, exp_sums, row_form("kept"))
    names: tuple[str, ...] = (f"row_{name}", f"block_{name}", f"{name}_exp_sums", f"kept_row_{name}")
    if scaled:
        functions = (row, block, row_form("quotients"))
        names = (f"row_{name}_scaled", f"block_{name}_scaled", f"long_row_{name}_scaled")
    for fn, fn_name in zip(functions, names):
        fn.__name__ = fn.__qualname__ = fn_name  # the module attribute it is assigned to
    return tuple(row_function(fn) for fn in functions)


# The row ops whose scaled forms take exp((x - max) / t) with the quotient exact, inside
# exp's reduction (_rowmath.exp_of_quotient), rows of finite logits under 2**100 and t
# not 1 (quotient_fuses): within the plain op's few ULPs of the exact op(x / t), where
# PyTorch's x / t, rounded first, errs by up to |x / t| ULPs; and as fast as the plain op.
# log_softmax (which returns x / t - max) still divides first.
EXACT_QUOTIENT_OPS = ("softmax", "softmin")

row_softmax, block_softmax, softmax_exp_sums, kept_row_softmax = _normalised_exps(False, "softmax")
row_softmax_scaled, block_softmax_scaled, long_row_softmax_scaled = _normalised_exps(False, "softmax", scaled=True)


@row_function
def softmax_scale(ins: Any, out: Any, o: Any, c0: Any, c1: Any, m: Any, total: Any, err: Any, j0: Any, j1: Any) -> None:
    full_width()
    scale = np.empty_like(m)
    for b in range(m.shape[0]):
        scale[b] = like(m[b], 1.0 / (total[b] + err[b]))
    for j in range(j0, j1):
        outj = out[o, j, c0:c1]
        for b in range(m.shape[0]):
            outj[b] = outj[b] * scale[b]


def numpy_softmax(x: np.ndarray, axis: int, out: np.ndarray) -> None:
    # Sums in float64 (or long double), as the kernels take them: NumPy adds along any axis but the
    # innermost one term after another, and a float32 sum over 65536 terms that way
    # cost softmax 1580 ULP.
    t = np.subtract(x, np.max(x, axis=axis, keepdims=True))
    np.exp(t, out=t)
    np.divide(t, np.sum(t, axis=axis, keepdims=True, dtype=accumulator(t.dtype)), out=out)


@scalar_function
def softmax_backward_value(g: Any, y: Any, dot: Any) -> Any:
    """One entry of softmax's backward, y (g - sum(g y)), in float64."""
    return np.float64(y) * (np.float64(g) - dot)


def dot_backward(value: Callable[..., Any], name: str) -> Any:
    """The row and block functions of a backward ``value(g, y, sum(g y))`` (softmax's,
    softmin's), assigned to the module attributes row_NAME and block_NAME."""

    def row(ins: Any, out: Any) -> None:
        full_width()
        g, y = ins
        dot = row_dot(g, y)
        for i in range(g.shape[0]):
            out[i] = value(g[i], y[i], dot)

    def block(ins: Any, out: Any, n: Any) -> None:
        full_width()
        g, y = ins
        dots = np.empty(g.shape[0] // n)
        for b in range(dots.shape[0]):
            total = 0.0
            for j in range(n):
                total += np.float64(g[b * n + j]) * np.float64(y[b * n + j])
            dots[b] = total
        d = np.empty(g.shape[0])
        spread(dots, n, d)
        for i in range(g.shape[0]):
            out[i] = value(g[i], y[i], d[i])

    def kept(ins: Any, out: Any) -> None:
        full_width()
        g, y, keep, fg, fy = ins
        dot = row_kept_dot(g, y, keep, fg, fy)
        for i in range(g.shape[0]):
            a, b, k = g[i], y[i], keep[i]
            out[i] = value(a if k else fg, b if k else fy, dot)

    for fn, fn_name in ((row, f"row_{name}"), (block, f"block_{name}"), (kept, f"kept_row_{name}")):
        fn.__name__ = fn.__qualname__ = fn_name
    return row_function(row), row_function(block), row_function(kept)


row_softmax_backward, block_softmax_backward, kept_row_softmax_backward = dot_backward(softmax_backward_value,
                                                                                       "softmax_backward")


@row_function
def softmax_backward_dots(ins: Any, out: Any, o: Any, c0: Any, c1: Any, m: Any, j0: Any, j1: Any) -> Any:
    full_width()
    g, y = ins
    dot, err, e = np.zeros(c1 - c0), np.zeros(c1 - c0), np.empty(c1 - c0)
    for j in range(j0, j1):
        gj, yj = g[o, j, c0:c1], y[o, j, c0:c1]
        for b in range(dot.shape[0]):
            e[b] = np.float64(gj[b]) * np.float64(yj[b])
        lanes_add(dot, err, e)
    return dot, err


def backward_values(value: Callable[..., Any], name: str) -> Any:
    """The lanes phase that writes a backward, out = value(g, y, s), for s the
    compensated row sums (total + err) of the sums phase; ``name`` is the module
    attribute it is assigned to (the kernels' disk cache finds it there again)."""

    def values(ins: Any, out: Any, o: Any, c0: Any, c1: Any, m: Any, total: Any, err: Any, j0: Any, j1: Any) -> None:
        full_width()
        g, y = ins
        s = total + err
        for j in range(j0, j1):
            gj, yj, outj = g[o, j, c0:c1], y[o, j, c0:c1], out[o, j, c0:c1]
            for b in range(s.shape[0]):
                outj[b] = value(gj[b], yj[b], s[b])

    values.__name__ = values.__qualname__ = name
    return row_function(values)


softmax_backward_values = backward_values(softmax_backward_value, "softmax_backward_values")


def numpy_softmax_backward(g: np.ndarray, y: np.ndarray, axis: int, out: np.ndarray) -> None:
    t = np.multiply(g, y)
    dot = np.sum(t, axis=axis, keepdims=True, dtype=accumulator(t.dtype))
    np.subtract(g, dot, out=t)
    np.multiply(y, t, out=out)


def _softmax_exact(mp: Any, row: Any) -> Any:
    m = max(row)
    e = [mp.exp(mp.mpf(v) - m) for v in row]
    s = mp.fsum(e)
    return [t / s for t in e]


SOFTMAX = RowDefinition(
    name="softmax",
    formula="exp(x - max) / sum(exp(x - max)); backward y (g - sum(g y))",
    doc="exp(x - max) / sum(exp(x - max)) along ``axis``.\n\n"
        "The row maximum is subtracted first, so no finite input overflows.  A row that is\n"
        "all -inf, or holds +inf or NaN, gives NaN.  backward = y * (g - sum(g * y, axis)).",
    forward=RowFunction("softmax", ("x",), row_softmax, block_softmax, (lanes_max, softmax_exp_sums, softmax_scale),
                        numpy_softmax, masked_fills=(-math.inf,),  # a logit of -inf
                        scaled=(row_softmax_scaled, block_softmax_scaled, long_row_softmax_scaled),
                        kept=kept_row_softmax),
    backward=RowFunction("softmax_backward", ("grad_out", "y"), row_softmax_backward, block_softmax_backward,
                         (no_max, softmax_backward_dots, softmax_backward_values), numpy_softmax_backward,
                         masked_fills=(0.0, 0.0),  # no gradient, probability 0
                         kept=kept_row_softmax_backward),
    reference=_softmax_exact,
    example="array([3.34000e-04, 9.97071e-01, 1.23000e-04, 2.47100e-03])",
    torch="torch.softmax(x, dim)",
    peers=(
        ("numpy", "np.divide(np.exp(np.subtract(x, np.max(x, axis=axis, keepdims=True, out=buf), out=out), out=out), "
                  "np.sum(out, axis=axis, keepdims=True, out=buf), out=out)"),
        ("numpy_backward", "np.multiply(np.subtract(g, np.sum(np.multiply(g, y, out=tmp), axis=axis, keepdims=True, "
                           "out=buf), out=out), y, out=out)"),
        ("scipy", "softmax"),
        ("aten", "aten._softmax.out(x, axis, False, out=o)"),
        ("aten_backward", "aten._softmax_backward_data.out(g, y, axis, y.dtype, grad_input=o)"),
    ),
)


# --- softmin ------------------------------------------------------------------------
# softmax of -x (PyTorch's softmin), fused: the kernels read -x where softmax reads x
# (exp(min - x), its maximum -min(x)), so nothing is negated into a copy, and its
# backward, -y (g - sum(g y)), is softmax's with the sign folded into one formula.


row_softmin, block_softmin, softmin_exp_sums, kept_row_softmin = _normalised_exps(True, "softmin")
row_softmin_scaled, block_softmin_scaled, long_row_softmin_scaled = _normalised_exps(True, "softmin", scaled=True)


@scalar_function
def softmin_backward_value(g: Any, y: Any, dot: Any) -> Any:
    """One entry of softmin's backward, y (sum(g y) - g), in float64."""
    return np.float64(y) * (dot - np.float64(g))


row_softmin_backward, block_softmin_backward, kept_row_softmin_backward = dot_backward(softmin_backward_value,
                                                                                       "softmin_backward")
softmin_backward_values = backward_values(softmin_backward_value, "softmin_backward_values")


def numpy_softmin(x: np.ndarray, axis: int, out: np.ndarray) -> None:
    numpy_softmax(np.negative(x), axis, out)


def numpy_softmin_backward(g: np.ndarray, y: np.ndarray, axis: int, out: np.ndarray) -> None:
    t = np.multiply(g, y)
    dot = np.sum(t, axis=axis, keepdims=True, dtype=accumulator(t.dtype))
    np.subtract(dot, g, out=t, casting="unsafe")
    np.multiply(y, t, out=out)


SOFTMIN = RowDefinition(
    name="softmin",
    formula="exp(min - x) / sum(exp(min - x)), softmax(-x); backward y (sum(g y) - g)",
    doc="exp(min - x) / sum(exp(min - x)) along ``axis``: softmax(-x), as PyTorch's softmin.\n\n"
        "The row minimum is subtracted first, so no finite input overflows.  A row that holds\n"
        "-inf or NaN, or is all +inf, gives NaN.  backward = y * (sum(g * y, axis) - g).",
    forward=RowFunction("softmin", ("x",), row_softmin, block_softmin,
                        (lanes_max_negated, softmin_exp_sums, softmax_scale), numpy_softmin,
                        masked_fills=(math.inf,),  # exp(min - inf) = 0
                        scaled=(row_softmin_scaled, block_softmin_scaled, long_row_softmin_scaled),
                        kept=kept_row_softmin),
    backward=RowFunction("softmin_backward", ("grad_out", "y"), row_softmin_backward, block_softmin_backward,
                         (no_max, softmax_backward_dots, softmin_backward_values), numpy_softmin_backward,
                         masked_fills=(0.0, 0.0), kept=kept_row_softmin_backward),
    reference=lambda mp, row: _softmax_exact(mp, [-v for v in row]),
    example="array([2.59474e-01, 8.70000e-05, 7.05323e-01, 3.51160e-02])",
    torch="torch.nn.functional.softmin(x, dim)",
    peers=(
        ("numpy", "np.divide(np.exp(np.subtract(np.min(x, axis=axis, keepdims=True, out=buf), x, out=out), out=out), "
                  "np.sum(out, axis=axis, keepdims=True, out=buf), out=out)"),
        ("numpy_backward", "np.multiply(np.subtract(np.sum(np.multiply(g, y, out=tmp), axis=axis, keepdims=True, "
                           "out=buf), g, out=out), y, out=out)"),
        ("jax", "jax.nn.softmax(-v, axis=axis)"),
        # PyTorch's softmin is softmax of a negated copy, and its backward softmax's negated
        ("aten", "aten._softmax.out(aten.neg(x), axis, False, out=o)"),
        ("aten_backward", "aten.neg.out(aten._softmax_backward_data.out(g, y, axis, y.dtype, grad_input=o), out=o)"),
    ),
)


# --- log_softmax ---------------------------------------------------------------------


@scalar_function
def log_softmax_value(x: Any, m: Any, log_total: Any) -> Any:
    """(x - m) - log_total, in this order: reassociated as x - (m + log_total) it
    would round the answer away where log_total is tiny."""
    return (x - m) - log_total


@scalar_function
def log_of_compensated_total(total: Any, err: Any) -> Any:
    """log(total + err) for a compensated sum of exp(x - max) (so total >= 1):
    total - 1 is exact below 4, and err holds what the rounded total lost, so
    the tiny part of a sum 1 + tiny survives, as in log_of_total, without
    counting the terms equal to the maximum (which cost a quarter of the time
    on short rows)."""
    return log1p((total - 1.0) + err)


# float32 log_softmax takes the exps into out at full vector width and then their
# float64 sum: summed as they come, the float64 accumulators halve the exp's
# vector width.  The sum includes the maxima's 1s, so log(sum) = log1p(sum - 1)
# is as exact as log_of_total's where sum - 1 >= LOG_SOFTMAX_MIN_BELOW.  Below
# that (one entry dominates, and its answer is the tiny -log1p(below)) the row
# takes the fused pass.  Where out is x the exps go to a scratch row, so that
# out=x gives the same bits.


def _log_softmax_forms(scaled: bool, suffix: str) -> Any:
    """log_softmax's row and block functions over x, or (``scaled``) over x / t for
    ins = (x, (t, 1 / t)), as _normalised_exps's."""
    over = quotient_by if scaled else as_read

    def row_form(first: str) -> Any:
        """The row form, reading x (``first`` "x"; x / t where ``scaled``); the long-row
        form (``first`` "quotients", as _normalised_exps's: x / t into out first, whose
        float32 exps then replace it, the last pass dividing again); or with where=
        (``first`` "kept", the non-scaled definition's, for ins = (x, keep)) reading x
        where kept and -inf elsewhere, selected as each pass reads x, with no scratch
        row: a row that takes the fused pass (every float64 row) has the filled row
        written into out first, and reads it there.  Returns whether anything was kept
        (always, but for "kept")."""

        def row(ins: Any, out: Any) -> Any:
            full_width()
            x = ins[0]
            t, r = (ins[1][0], ins[1][1]) if scaled else (1.0, 1.0)
            live = True
            below = -1.0  # float64 rows take the fused pass
            if first == "quotients":
                m = row_quotients_max(x, t, r, out)
                if x.itemsize == 4:
                    for i in range(x.shape[0]):
                        out[i] = exp_of_difference(out[i], m)
                    below = row_sum(out) - 1.0
            elif first == "kept":
                keep, f = ins[1], like(x[0], -np.inf)
                m = row_kept_max(x, keep)
                live = m != f  # a kept entry above -inf, or a NaN
                if x.itemsize == 4:
                    for i in range(x.shape[0]):
                        out[i] = exp_of_difference(x[i] if keep[i] else f, m)
                    below = row_sum(out) - 1.0
            else:
                m = over(row_max(x), t, r)  # max(x / t): the quotient is monotone
                if x.itemsize == 4:
                    exps = out if out.ctypes.data != x.ctypes.data else np.empty_like(x)
                    for i in range(x.shape[0]):
                        exps[i] = exp_of_difference(over(x[i], t, r), m)
                    below = row_sum(exps) - 1.0
            # In the input's precision: y = (x - m) - log_total with x - m <= 0 and
            # log_total >= 0 never cancels, so each rounding is at most half an ULP of y.
            if below >= LOG_SOFTMAX_MIN_BELOW:
                log_total = like(m, log1p(below))
                if first == "kept":
                    for i in range(x.shape[0]):
                        out[i] = log_softmax_value(x[i] if keep[i] else f, m, log_total)
                    return live
            elif first == "kept":
                for i in range(x.shape[0]):
                    out[i] = x[i] if keep[i] else f
                below, ties = row_exp_sum_below(out, m)
                log_total = like(m, log_of_total(below, ties))
                for i in range(x.shape[0]):
                    out[i] = log_softmax_value(out[i], m, log_total)
                return live
            else:
                below, ties = row_exp_sum_below_scaled(x, m, t, r) if scaled else row_exp_sum_below(x, m)
                log_total = like(m, log_of_total(below, ties))
            for i in range(x.shape[0]):
                out[i] = log_softmax_value(over(x[i], t, r), m, log_total)
            return live

        return row

    row = row_form("x")

    def fast_row(ins: Any, out: Any) -> Any:
        """row for float32 where out is not x, without the calls of its rare cases
        (RowFunction.fast_row): False for a row that needs the fused pass, and for
        float64 (whose rows all take it: as a fast row, it took 5 % more time)."""
        full_width()
        x = ins[0]
        if not single_precision(x):
            return False
        m = row_max(x)
        for i in range(x.shape[0]):
            out[i] = exp_of_difference(x[i], m)
        below = row_sum(out) - 1.0
        log_total = like(m, log1p(below))
        for i in range(x.shape[0]):
            out[i] = log_softmax_value(x[i], m, log_total)
        return below >= LOG_SOFTMAX_MIN_BELOW

    def block(ins: Any, out: Any, n: Any) -> None:
        """As row: float32 rows whose sum of exps less 1 is under
        LOG_SOFTMAX_MIN_BELOW, and all float64 rows, sum the terms below the
        maximum apart from the count of those equal to it."""
        full_width()
        x = ins[0]
        t, r = (ins[1][0], ins[1][1]) if scaled else (1.0, 1.0)
        m = block_exps_scaled(x, n, out, t, r) if scaled else block_exps(x, n, out)
        below = block_sums(out, n) - 1.0 if x.itemsize == 4 else np.full(x.shape[0] // n, -1.0)
        for b in range(below.shape[0]):
            if below[b] < LOG_SOFTMAX_MIN_BELOW:
                rest, ties = 0.0, 0
                for j in range(n):
                    below_max = over(x[b * n + j], t, r) != m[b * n + j]  # a multiply, not a branch
                    rest += np.float64(out[b * n + j]) * below_max
                    ties += 1 - below_max
                below[b] = (ties - 1) + rest  # log(ties + rest) = log1p(this), exactly rest for one tie
        log_total = np.empty(below.shape[0], x.dtype)
        for b in range(log_total.shape[0]):
            log_total[b] = like(x[0], log1p(below[b]))
        spread(log_total, n, out)  # the exps are no longer needed
        for i in range(x.shape[0]):
            out[i] = log_softmax_value(over(x[i], t, r), m[i], out[i])

    functions: tuple[tuple[Callable[..., Any], str], ...] = ((row, f"row_log_softmax{suffix}"),
                                                             (block, f"block_log_softmax{suffix}"))
    if scaled:
        functions += ((row_form("quotients"), f"long_row_log_softmax{suffix}"),)
    else:
        functions += ((fast_row, "fast_row_log_softmax"), (row_form("kept"), "kept_row_log_softmax"))
    for fn, fn_name in functions:
        fn.__name__ = fn.__qualname__ = fn_name  # the module attribute it is assigned to
    return tuple(row_function(fn) for fn, _ in functions)


row_log_softmax, block_log_softmax, fast_row_log_softmax, kept_row_log_softmax = _log_softmax_forms(False, "")
row_log_softmax_scaled, block_log_softmax_scaled, long_row_log_softmax_scaled = _log_softmax_forms(True, "_scaled")


@row_function
def log_softmax_exp_sums(ins: Any, out: Any, o: Any, c0: Any, c1: Any, m: Any, j0: Any, j1: Any) -> Any:
    """The exps go through a buffer of the input's dtype, so that the exp loop
    keeps its vector width: converted to float64 as they were computed, float32
    ran at half of it."""
    full_width()
    x = ins[0]
    total, err, e = np.zeros(c1 - c0), np.zeros(c1 - c0), np.empty(c1 - c0, x.dtype)
    for j in range(j0, j1):
        xj = x[o, j, c0:c1]
        for b in range(m.shape[0]):
            e[b] = exp_of_difference(xj[b], m[b])
        lanes_add(total, err, e)
    return total, err


@row_function
def log_softmax_values(ins: Any, out: Any, o: Any, c0: Any, c1: Any, m: Any, total: Any, err: Any, j0: Any,
                       j1: Any) -> None:
    full_width()
    x = ins[0]
    log_total = np.empty_like(m)
    for b in range(m.shape[0]):
        log_total[b] = like(m[b], log_of_compensated_total(total[b], err[b]))
    for j in range(j0, j1):
        xj, outj = x[o, j, c0:c1], out[o, j, c0:c1]
        for b in range(m.shape[0]):
            outj[b] = log_softmax_value(xj[b], m[b], log_total[b])


def numpy_log_softmax(x: np.ndarray, axis: int, out: np.ndarray) -> None:
    t = np.subtract(x, np.max(x, axis=axis, keepdims=True))
    np.subtract(t, numpy_log_sum_exp(t, np.exp(t), axis).astype(x.dtype, copy=False), out=out)


def numpy_log_sum_exp(t: np.ndarray, e: np.ndarray, axis: int) -> np.ndarray:
    """log(sum(e)) along ``axis`` (kept) in float64 (long double for long double), for
    t = x - max(x) and e = exp(t).
    Where the row maximum is unique, log(sum) = log1p(sum of the other terms): the
    rounded sum 1 + tiny would lose the tiny part, which is the whole answer for
    the maximum's entry."""
    at_max = t == 0
    below = np.sum(np.where(at_max, 0, e), axis=axis, keepdims=True, dtype=accumulator(e.dtype))
    ties = np.count_nonzero(at_max, axis=axis, keepdims=True)
    result: np.ndarray = np.where(ties == 1, np.log1p(below), np.log(ties + below))
    return result


@scalar_function
def log_softmax_backward_value(g: Any, y: Any, total: Any) -> Any:
    """One entry of log_softmax's backward, g - exp(y) sum(g), in float64."""
    return np.float64(g) - np.float64(exp(y)) * total


@row_function
def row_log_softmax_backward(ins: Any, out: Any) -> None:
    """g - exp(y) sum(g).  The exps go through out first (unless out is g), so that
    their loop keeps the input's vector width (float32: 16 lanes, not 8).  Not
    through a separate buffer where out is g: LLVM, unable to rule out that it
    aliases out, then vectorises neither loop."""
    full_width()
    g, y = ins
    total = row_sum(g)
    if out.ctypes.data != g.ctypes.data:
        for i in range(g.shape[0]):
            out[i] = exp(y[i])
        for i in range(g.shape[0]):
            out[i] = np.float64(g[i]) - np.float64(out[i]) * total
    else:
        for i in range(g.shape[0]):
            out[i] = log_softmax_backward_value(g[i], y[i], total)


@row_function
def kept_row_log_softmax_backward(ins: Any, out: Any) -> None:
    """row_log_softmax_backward of g and y with the entries where not keep taken as
    fg and fy (out is neither: the kept kernels write fresh memory)."""
    full_width()
    g, y, keep, fg, fy = ins
    total = row_kept_sum(g, keep, fg)
    for i in range(g.shape[0]):
        b = y[i]
        out[i] = exp(b if keep[i] else fy)
    for i in range(g.shape[0]):
        a = g[i]
        out[i] = np.float64(a if keep[i] else fg) - np.float64(out[i]) * total


@row_function
def block_log_softmax_backward(ins: Any, out: Any, n: Any) -> None:
    full_width()
    g, y = ins
    s = np.empty(g.shape[0])
    spread(block_sums(g, n), n, s)
    for i in range(g.shape[0]):
        out[i] = log_softmax_backward_value(g[i], y[i], s[i])


@row_function
def log_softmax_backward_sums(ins: Any, out: Any, o: Any, c0: Any, c1: Any, m: Any, j0: Any, j1: Any) -> Any:
    full_width()
    g = ins[0]
    total, err = np.zeros(c1 - c0), np.zeros(c1 - c0)
    for j in range(j0, j1):
        lanes_add(total, err, g[o, j, c0:c1])
    return total, err


log_softmax_backward_values = backward_values(log_softmax_backward_value, "log_softmax_backward_values")


def numpy_log_softmax_backward(g: np.ndarray, y: np.ndarray, axis: int, out: np.ndarray) -> None:
    t = np.exp(y)
    np.multiply(t, np.sum(g, axis=axis, keepdims=True, dtype=accumulator(g.dtype)), out=t)
    np.subtract(g, t, out=out)


def _log_softmax_exact(mp: Any, row: Any) -> Any:
    m = max(row)
    log_s = mp.log(mp.fsum(mp.exp(mp.mpf(v) - m) for v in row))
    return [(mp.mpf(v) - m) - log_s for v in row]


LOG_SOFTMAX = RowDefinition(
    name="log_softmax",
    formula="x - max - log(sum(exp(x - max))); backward g - exp(y) sum(g)",
    doc="x - max - log(sum(exp(x - max))) along ``axis``.\n\nbackward = g - exp(y) * sum(g, axis).",
    forward=RowFunction("log_softmax", ("x",), row_log_softmax, block_log_softmax,
                        (lanes_max, log_softmax_exp_sums, log_softmax_values), numpy_log_softmax,
                        masked_fills=(-math.inf,), empty_row=-math.inf,
                        scaled=(row_log_softmax_scaled, block_log_softmax_scaled, long_row_log_softmax_scaled),
                        kept=kept_row_log_softmax, fast_row=fast_row_log_softmax),
    backward=RowFunction("log_softmax_backward", ("grad_out", "y"), row_log_softmax_backward,
                         block_log_softmax_backward, (no_max, log_softmax_backward_sums, log_softmax_backward_values),
                         numpy_log_softmax_backward,
                         masked_fills=(0.0, -math.inf),  # no gradient, log-probability -inf
                         kept=kept_row_log_softmax_backward),
    reference=_log_softmax_exact,
    torch="torch.log_softmax(x, dim)",
    example="array([-8.002933e+00, -2.933000e-03, -9.002933e+00, -6.002933e+00])",
    peers=(
        ("numpy", "np.subtract(np.subtract(x, np.max(x, axis=axis, keepdims=True, out=buf), out=out), "
                  "np.log(np.sum(np.exp(out, out=tmp), axis=axis, keepdims=True, out=buf), out=buf), out=out)"),
        ("numpy_backward", "np.subtract(g, np.multiply(np.exp(y, out=tmp), np.sum(g, axis=axis, keepdims=True, "
                           "out=buf), out=tmp), out=out)"),
        ("scipy", "log_softmax"),
        ("aten", "aten._log_softmax.out(x, axis, False, out=o)"),
        ("aten_backward", "aten._log_softmax_backward_data.out(g, y, axis, y.dtype, out=o)"),
    ),
)

def numpy_kept(fn: RowFunction, ins: list[np.ndarray], keep: np.ndarray, t: float, safe: bool,
               out: np.ndarray) -> None:
    """Row function ``fn`` along the last axis of ``ins`` with where= and temperature=, as the
    kernels of ``_kernels.kept_row_kernel`` run it: masked entries (``keep`` False, broadcast
    against the rows) filled with ``fn.masked_fills``, a forward's input divided by ``t`` in
    its own precision, a backward's result divided by ``t``; with ``safe``, a forward's row
    with nothing but fill gives ``fn.empty_row``."""
    filled = [np.where(keep, a, a.dtype.type(fill)) for a, fill in zip(ins, fn.masked_fills)]
    if len(ins) == 1:
        x = filled[0]
        if t != 1:
            np.divide(x, x.dtype.type(t), out=x)
        fn.numpy(x, -1, out)
        if safe:
            out[~np.any(x != x.dtype.type(fn.masked_fills[0]), axis=-1)] = fn.empty_row
    else:
        fn.numpy(*filled, -1, out)
        if t != 1:
            np.divide(out, out.dtype.type(t), out=out)


ROW_OPS: dict[str, RowDefinition] = {d.name: d for d in (SOFTMAX, SOFTMIN, LOG_SOFTMAX)}

#: every direction of every row op by its kernel name ("softmax", "softmax_backward", ...)
ROW_FUNCTIONS: dict[str, RowFunction] = {
    f.name: f for d in ROW_OPS.values() for f in (d.forward, d.backward)
}


# --- logsumexp: a reduction over rows ------------------------------------------------


@dataclass(frozen=True)
class RowReduction:
    """A reduction of each row to one value, and its gradient."""

    name: str
    formula: str  # for the README's table
    doc: str
    row: Callable[..., Any]  # one contiguous row -> its value (float64 for float32 rows, rounded by the kernel)
    numpy: Callable[..., Any]  # (rows of n: a 2-D array, out: 1-D) in place, called inside np.errstate(all="ignore")
    reference: Callable[..., Any]  # (mpmath, list of floats) -> the exact value
    gradient: str  # the row op whose output, times grad_out, is the gradient (logsumexp: softmax)
    example: str  # the repr of op([2, 10, 1, 4]): the tutorial's scores
    torch: str  # PyTorch's expression in torch, x, dim, keepdim
    # along an axis that is not the last, over the lanes of (outer, n, inner) x: the phases
    # (the lanes' maxima, their compensated sums as the row ops' lanes phases take them,
    # then lane_values(m, total, err, out) writing each lane's value)
    lanes: tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]] | None = None


@row_function
def row_logsumexp(x: Any) -> Any:
    """max + log(sum(exp(x - max))): the sum compensated and split from the maximum's own
    terms, so that log1p keeps a dominant entry's tiny rest (log_of_total).  An infinite
    or NaN maximum is the answer (+inf; -inf for a row of -inf; NaN)."""
    full_width()
    m = row_max(x)
    if m == math.inf or m == -math.inf or m != m:
        return np.float64(m)
    below, ties = row_exp_sum_below(x, m)
    return np.float64(m) + log_of_total(below, ties)


@scalar_function
def lane_logsumexp(m: Any, total: Any, err: Any) -> Any:
    """A lane's logsumexp from its maximum and the compensated sum of exp(x - max) (in
    float64): m + log1p((total - 1) + err); an infinite or NaN maximum is the answer."""
    if not math.isfinite(m):
        return np.float64(m)
    return np.float64(m) + log_of_compensated_total(total, err)


@row_function
def logsumexp_lane_values(m: Any, total: Any, err: Any, out: Any) -> None:
    full_width()
    for b in range(m.shape[0]):
        out[b] = lane_logsumexp(m[b], total[b], err[b])


def numpy_logsumexp(x: np.ndarray, out: np.ndarray) -> None:
    m = np.max(x, axis=1, keepdims=True)
    t = np.subtract(x, m)
    total = numpy_log_sum_exp(t, np.exp(t), 1)[:, 0]
    m = m[:, 0].astype(total.dtype)
    np.copyto(out, np.where(np.isfinite(m), m + total, m), casting="unsafe")


def _logsumexp_exact(mp: Any, row: Any) -> Any:
    return mp.log(mp.fsum(mp.exp(mp.mpf(v)) for v in row))


LOGSUMEXP = RowReduction(
    name="logsumexp",
    formula="max + log(sum(exp(x - max))), compensated, log1p where the maximum dominates; gradient softmax(x)",
    doc="log(sum(exp(x))) along ``axis``, without overflow: the maximum is taken out, the sum is compensated\n"
        "and a dominant maximum's rest goes through log1p (scipy.special.logsumexp loses it).",
    row=row_logsumexp,
    numpy=numpy_logsumexp,
    reference=_logsumexp_exact,
    gradient="softmax",
    example="np.float64(10.002933)",
    torch="torch.logsumexp(x, dim, keepdim)",
    lanes=(lanes_max, log_softmax_exp_sums, logsumexp_lane_values),
)

ROW_REDUCTIONS: dict[str, RowReduction] = {d.name: d for d in (LOGSUMEXP,)}
