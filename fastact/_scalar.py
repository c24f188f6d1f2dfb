"""Scalar math used by the activation formulas, in plain Python.

These are the names the formulas in ``_activations`` call.  Under Numba they
resolve to the vectorisable implementations registered in ``_vmath``; in plain
Python they are these reference versions, which keeps the formulas importable
and readable without a compiler.  Under ``NUMBA_DISABLE_JIT=1`` the kernels run
the formulas with these on NumPy scalars, so they are exact where the formulas
rely on it (``fma``) and accurate in the tails (the normal CDF): the results
agree with the compiled kernels (tests/test_inputs.py).
"""

from __future__ import annotations

import decimal
import math
from fractions import Fraction
from typing import Any

import numpy as np


def exp(x: Any) -> Any:
    """exp for float32/float64: NaN -> NaN, -inf -> 0, inf -> inf, no overflow error."""
    try:
        return type(x)(math.exp(x))
    except OverflowError:
        return type(x)(math.inf)


def exp_nonpositive(x: Any) -> Any:
    """exp for x <= 0 (or NaN); a cheaper 2**k scaling than ``exp`` under Numba."""
    return exp(x)


# exp_nonpositive_scaled(x) = 2**EXP_SCALED_BITS exp(x): normal (unrounded by
# the scaling) wherever exp(x) rounds to a nonzero float of either dtype.
EXP_SCALED_BITS = 56


def _scaled_exp(x: Any, v: float, bits: int) -> Any:
    """2**bits * exp(v) in x's dtype, computed in decimal: math.exp would round exp(v) into
    float64's subnormals first."""
    with decimal.localcontext() as context:
        context.prec = 40
        return type(x)(float(decimal.Decimal(v).exp() * 2**bits))


def exp_nonpositive_scaled(x: Any) -> Any:
    """2**EXP_SCALED_BITS * exp(x) for x <= 0 (or NaN): exp(x) before any rounding into the subnormals."""
    return _scaled_exp(x, float(x), EXP_SCALED_BITS)


# exp_nonpositive_times_scaled(x) = 2**B exp(x), B = EXP_TIMES_SCALED_BITS[bytes of x]:
# normal (unrounded by the scaling) down to EXP_TIMES_CLAMP, exp_times' clamp, where a
# factor up to 2**20 can still lift a product out of underflow.
EXP_TIMES_SCALED_BITS = {4: 64, 8: 512}
EXP_TIMES_CLAMP = {4: -125.0, 8: -760.0}


def exp_nonpositive_times_scaled(x: Any) -> Any:
    """2**B * exp(max(x, c)) for x <= 0 (or NaN), B = EXP_TIMES_SCALED_BITS and c =
    EXP_TIMES_CLAMP for x's dtype: exp(x) before any rounding into the subnormals.  With
    ``exp_times_scale(x)`` = 2**B, a product a exp(x) is (a s) / 2**B, rounded once into
    the subnormals (as ``exp_times``; the caller gives 0 below ``exp_times_clamp(x)``),
    and s / 2**B is ``exp_nonpositive(x)`` (0 below the clamp)."""
    size = np.dtype(type(x)).itemsize
    v = float(x) if math.isnan(x) else max(float(x), EXP_TIMES_CLAMP[size])
    return _scaled_exp(x, v, EXP_TIMES_SCALED_BITS[size])


def exp_times_scale(x: Any) -> Any:
    """2**B of exp_nonpositive_times_scaled, in x's dtype."""
    return type(x)(2.0 ** EXP_TIMES_SCALED_BITS[np.dtype(type(x)).itemsize])


def exp_times_clamp(x: Any) -> Any:
    """The clamp c of exp_nonpositive_times_scaled, in x's dtype."""
    return type(x)(EXP_TIMES_CLAMP[np.dtype(type(x)).itemsize])


def exp_of_quotient(a: Any, b: Any, t: Any, r: Any) -> Any:
    """exp((a - b) / t) for a <= b (or NaN), t > 0 and r = 1 / t rounded (Numba's uses
    it), with neither a - b nor the quotient rounded first: softmax(x, temperature=t)
    in one pass as cheap as softmax(x)'s.  Numba's takes the quotient into exp's range
    reduction, and needs |b| < 2**100 and 2**-64 <= t <= 2**64 (quotient_fuses)."""
    if math.isnan(a) or math.isnan(b):
        return type(a)(math.nan)
    if a == -math.inf:
        return type(a)(0.0)
    with decimal.localcontext() as context:
        context.prec = 60
        q = (decimal.Decimal(float(a)) - decimal.Decimal(float(b))) / decimal.Decimal(float(t))
        return type(a)(0.0) if q < -1000 else type(a)(float(q.exp()))


def expm1(x: Any) -> Any:
    """exp(x) - 1, accurate near 0."""
    try:
        return type(x)(math.expm1(x))
    except OverflowError:
        return type(x)(math.inf)


def tanh(x: Any) -> Any:
    """Hyperbolic tangent."""
    return type(x)(math.tanh(x))


def log(x: Any) -> Any:
    """Natural log: NaN for x < 0, -inf at 0."""
    if x != x or x < 0:
        return type(x)(math.nan)
    return type(x)(-math.inf) if x == 0 else type(x)(math.log(x))


def log1p(x: Any) -> Any:
    """log(1 + x), accurate near 0."""
    if x != x or x < -1:
        return type(x)(math.nan)
    return type(x)(-math.inf) if x == -1 else type(x)(math.log1p(x))


# erfc(z) = t exp(-z**2 + P(t)), t = 2 / (2 + z), z >= 0, with
# P(t) = sum c_k T_k(2t - 1): the coefficients from tools/fit_erfc.py, cut
# where |c_k| < 2**-56.
ERFC_CHEBYSHEV = (
    -0.6513268598908547, 0.6419697923564902, 0.019476473204185836, -0.009561514786808632,
    -0.0009465953444820369, 0.00036683949785276145, 4.252332480690777e-05, -2.0278578112534242e-05,
    -1.6242900046470256e-06, 1.3036558355805232e-06, 1.5626441722066142e-08, -8.523809591492654e-08,
    6.5290544390988515e-09, 5.059343495551469e-09, -9.91364156493033e-10, -2.273651222931836e-10,
    9.646791102015527e-11, 2.3940380830391146e-12, -6.886027526497553e-12, 8.944879273090725e-13,
    3.130921399342958e-13, -1.1270822361367252e-13, 3.810905255189232e-16, 7.106097613609237e-15,
    -1.5230282014571043e-15, -9.457494571291233e-17, 1.210237189224279e-16, -2.816663087747177e-17,
)


# float32's normal tail, computed in float32 arithmetic:
# Phi(-w) exp(w**2 / 2) = (1 + p(q)) / (2 (1 + w)) for w in [0, W_MAX], with
# q = (w - A) / (w + A) and p = sum m_k q**k.  From tools/fit_erfc.py: degree
# 10, error 2.4e-9 relative to 1 + p (0.04 x 2**-24); |p| < 0.16.
PHI_TAIL32_A = 4.0
PHI_TAIL32_W_MAX = 14.6
PHI_TAIL32 = (
    -0.05589358709462721, -0.19340693582377383, 0.027999263415070075, 0.057200056582647554, -0.06439549348338154,
    0.03587905905489439, -0.010004875118116036, -0.0006007555740781099, 0.0013822865053209473,
    -0.00013188102776285143, -0.0001480534247935361,
)


_SQRT_HALF = Fraction("0.70710678118654752440084436210484903928483593768847")


def _normal_cdf(x: float) -> float:
    """Phi(x) = erfc(-x / sqrt(2)) / 2 to a few ULP in the far tail too: the
    rounding dz of z = -x / sqrt(2) would be multiplied by 2 z^2 there, so it is
    put back with erfc's derivative, -2 exp(-z^2) / sqrt(pi)."""
    if not math.isfinite(x):
        return 0.5 * math.erfc(-x)
    z = -x * float(_SQRT_HALF)
    dz = float(Fraction(-x) * _SQRT_HALF - Fraction(z))
    return 0.5 * (math.erfc(z) - 2 / math.sqrt(math.pi) * math.exp(-z * z) * dz)


def _normal_pdf(x: float) -> float:
    """phi(x), with the rounding of x^2 put back (it would be multiplied by x^2 / 2)."""
    if not abs(x) < 1e10:  # phi(x) = 0 in float64 (and x * x may overflow); NaN stays NaN
        return 0.0 if x == x else x
    sq = x * x
    sq_lo = float(Fraction(x) * Fraction(x) - Fraction(sq))
    return math.exp(-0.5 * sq) * (1 - 0.5 * sq_lo) / math.sqrt(2 * math.pi)


def normal_cdf_times(a: Any, x: Any) -> Any:
    """a * Phi(x), rounded once (0 where Phi(x) is: gelu(-inf) = 0)."""
    cdf = _normal_cdf(float(x))
    return type(x)(0.0 if cdf == 0 else float(a) * cdf)


def normal_cdf_plus_x_pdf(x: Any) -> Any:
    """Phi(x) + x phi(x), the derivative of x Phi(x) (gelu')."""
    pdf = _normal_pdf(float(x))
    cdf = _normal_cdf(float(x))
    return type(x)(cdf if pdf == 0 else cdf + float(x) * pdf)


def exp_times(a: Any, x: Any) -> Any:
    """a * exp(x) for x <= 0 (or NaN), rounded once even where the result is subnormal
    (0 where exp(x) is: silu(-inf) = 0)."""
    e = math.exp(x)
    return type(x)(0.0 if e == 0 else a * e)


def exp_nonpositive_and_times(a: Any, x: Any) -> Any:
    """(exp_nonpositive(x), exp_times(a, x)) for x <= 0 (or NaN): under Numba
    both from one range reduction and polynomial."""
    return exp_nonpositive(x), exp_times(a, x)


def fma(a: Any, b: Any, c: Any) -> Any:
    """``a*b + c`` with a single rounding: exact rational arithmetic (float32
    results are rounded to float64 first, which can differ from one rounding in
    rare ties)."""
    if not (math.isfinite(a) and math.isfinite(b) and math.isfinite(c)):
        return a * b + c
    exact = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
    if exact == 0:  # the sign of an exact zero is that of a*b + c
        return a * b + c
    return type(c)(float(exact))


def maximum(a: Any, b: Any) -> Any:
    """NaN-propagating maximum."""
    if a != a or b != b:
        return a + b
    return a if a >= b else b


def order_key(x: Any) -> Any:
    """An integer of x's width that orders floats as their values do (-0.0 below 0.0)
    and every NaN above +inf, so that the largest key is that of the NaN-propagating
    maximum (``from_order_key`` gives it back).  Under Numba the maximum of a row's
    keys is an integer reduction, which vectorises without the chain of selects that a
    NaN-propagating float maximum costs (softmax's row maximum took 3x as long)."""
    width = np.dtype(type(x)).itemsize * 8
    bits = int(np.array(x).view(f"i{width // 8}"))
    low = 2 ** (width - 1) - 1
    if bits & low > int(np.array(np.inf, type(x)).view(f"i{width // 8}")):
        return np.dtype(f"i{width // 8}").type(low)
    return np.dtype(f"i{width // 8}").type(bits ^ (low if bits < 0 else 0))


def from_order_key(k: Any) -> Any:
    """The float whose ``order_key`` is k (a NaN for the key of every NaN)."""
    width = np.dtype(type(k)).itemsize * 8
    low = 2 ** (width - 1) - 1
    bits = int(k) ^ (low if k < 0 else 0)
    return np.array(bits, f"i{width // 8}").view(f"f{width // 8}")[()]


def borrowed(a: Any) -> Any:
    """a itself; under Numba a view of it that its own views do not reference-count
    (no atomic operations per row): for a kernel's arguments, within the kernel.
    Assign it on a line of its own (``out = borrowed(out)``): Numba's alias analysis
    follows no tuple, and a parallel loop's writes to an array it does not know to be
    an argument, and that nothing reads after the loop, are removed as dead code."""
    return a


STREAM_ALIGN = 64  # bytes: a cache line, and the alignment of a 512-bit streaming store


def stream_store(dst: Any, start: Any, src: Any, n: Any) -> None:
    """dst[start:start + n] = src[:n]; under Numba with streaming stores, which write
    past the caches (x86's movntps): for n a multiple of STREAM_ALIGN bytes, and
    dst[start] at an address that is a multiple of STREAM_ALIGN.  A kernel that
    calls it calls stream_fence before it returns."""
    dst[start:start + n] = src[:n]


def stream_fence() -> None:
    """Under Numba a full memory fence: the streaming stores before it are seen by
    every thread (they are weakly ordered, also against the threads' join)."""


def single_precision(x: Any) -> bool:
    """Whether array x holds float32.  Under Numba a constant of the compiled function,
    so that a branch on it leaves one path: a branch on ``x.itemsize`` compiles both,
    and the other path's code alone slowed log_softmax's rows (see RowFunction.fast_row)."""
    return bool(x.dtype == np.float32)


def full_width() -> None:
    """Under Numba, marks the compiled function it is called in for the widest
    vectors (_config.VECTOR_WIDTH); in Python, nothing.  Every kernel template,
    parallel loop body and row function calls it first: each is a function of
    its own to LLVM, and a row function's loops are vectorised in its own
    compilation, before they are inlined into a kernel."""


def like(x: Any, value: Any) -> Any:
    """``value`` converted to the float type of ``x`` (Numba literals are float64)."""
    return type(x)(value)


def scalar_function(fn: Any) -> Any:
    """Without Numba a scalar formula is just a Python function."""
    return fn
