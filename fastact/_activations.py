"""One definition per activation.

Each entry holds everything fastact knows about one activation: its
parameters, the scalar formulas (f, f', and f' from the output y where that
is possible), which the Numba kernels in ``_kernels`` are generated from; the
NumPy fallback for each; and the high-precision reference the tests and the
accuracy sweep use.

Scalar formulas are plain Python over one float32 or float64 value ``x`` and
the tuple ``p`` of the op's parameters (float64; empty for most ops).  They
call ``exp``/``expm1``/``log1p``/``fma``/``like`` from ``_scalar``
(vectorisable versions under Numba).  Constants go through ``like(x, c)``: a
bare ``1.0`` is float64 in Numba and would promote float32 arithmetic to
float64.  A formula whose work is one long chain (an exp, then a quotient)
can be written in two stages, ``f = two_stages("f", first, then)`` (see STAGES):
the kernels then run it block by block in two loops.

NumPy fallbacks take ``(x, out, p)`` and write ``out``; the wrapper never
passes an ``out`` that overlaps ``x``.  References take ``(mpmath, x, p)``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._backend import scalar_function
from ._scalar import (EXP_SCALED_BITS, exp, exp_nonpositive, exp_nonpositive_and_times, exp_nonpositive_scaled,
                      exp_nonpositive_times_scaled, exp_times_clamp, exp_times_scale, expm1, fma, like, log1p,
                      normal_cdf_plus_x_pdf, normal_cdf_times, tanh)

NumpyFn = Callable[[np.ndarray, np.ndarray, tuple[Any, ...]], None]


@dataclass(frozen=True)
class Param:
    """A float parameter of an activation, with its default and a check of its value."""

    name: str
    default: float
    check: Callable[[float], str | None] | None = None  # a message when the value is refused
    note: str = ""  # what the check refuses, for the docs ("not 0")


@dataclass(frozen=True)
class Activation:
    """An elementwise activation and its derivative."""

    name: str
    doc: str
    formula: str  # for the README: f and f'
    f: Callable[..., Any]  # scalar (x, p) -> f(x)
    df: Callable[..., Any]  # scalar (x, p) -> f'(x)
    numpy_f: NumpyFn
    numpy_df: NumpyFn
    reference: Callable[..., Any]  # (mpmath, mpf x, p) -> f(x)
    reference_df: Callable[..., Any]  # (mpmath, mpf x, p) -> f'(x)
    params: tuple[Param, ...] = ()
    df_from_y: Callable[..., Any] | None = None  # scalar (y = f(x), p) -> f'(x)
    numpy_df_from_y: NumpyFn | None = None
    y_check: Callable[[tuple[Any, ...]], str | None] | None = None  # when f' from y holds only for some p
    y_condition: str = ""  # the same for the docs ("alpha >= 0")
    params_check: Callable[[tuple[Any, ...]], str | None] | None = None  # a check across parameters
    # scalar (g, x, p) -> g * f'(x), where a dedicated formula rounds better
    backward_x: Callable[..., Any] | None = None
    numpy_backward_x: Callable[..., Any] | None = None  # (g, x, out, p): its NumPy fallback, where g * f' would not do
    correctly_rounded: bool = False  # exact (correctly rounded) rather than within a few ULP
    # (public op, string parameter, its value): this definition is one variant of
    # a public op (gelu's approximate="none" and "tanh"); the first is the default
    variant: tuple[str, str, str] | None = None
    aliases: tuple[str, ...] = ()  # other public names of the op (silu's swish)
    # the accuracy sweep: f' crosses zero, where it is a difference of terms near 1/4
    # that cancel, so f' and backward are held to ULPs of max(|f'|, 1/4)
    derivative_crosses_zero: bool = False
    # ((case, dtype, bound), ...): where this release misses the accuracy bound it aims at
    # (case "forward", "grad" or "backward"), with the bound it meets instead
    known_gaps: tuple[tuple[str, str, float], ...] = ()
    torch_name: str = ""  # the function in torch.nn.functional, where not the op's name
    # PyTorch's expression of the op where torch.nn.functional has no function for it
    # (in torch and x, at the default parameters)
    torch: str = ""
    # the same op in the libraries ``bench`` compares with: "scipy" (a scipy.special name),
    # "jax" (an expression in jax, where not jax.nn's function of the op's name), "numexpr"
    # (an expression in x), "aten" and "aten_backward" (torch's ATen kernels through their
    # out= overloads at the default parameters: expressions in aten, x, o, buffer, and g, y),
    # and "numpy..." (plain NumPy with out=, in place: expressions in np, x, out; where
    # none is given, bench times the op's NumPy fallback instead)
    peers: tuple[tuple[str, str], ...] = ()
    # the NumPy fallback runs per element in Python (bench does not time it)
    fallback_per_element: bool = False
    # the parameters that have a gradient (backward's param_grads=True; a parameter that
    # only moves a step, as threshold's threshold, has none); df_dparams: scalar (x, p) ->
    # the tuple of df/dp for each, in x's dtype (the compute dtype; the kernels sum
    # grad_out times each in float64); numpy_df_dparams: (x, p) -> the list of those arrays.  The reference is the derivative
    # of ``reference`` in the parameter (``reference_dparam``).
    grad_params: tuple[str, ...] = ()
    df_dparams: Callable[..., Any] | None = None
    numpy_df_dparams: Callable[..., Any] | None = None
    # float32: the kernels evaluate df_dparams into a row of x's dtype first and form the
    # float64 products in a loop of their own.  For formulas with an exp or a log, which
    # in one loop with the float64 sums ran 8 float32 lanes to a vector (1e6 float32 on
    # znver5, one thread: elu 1.02 -> 0.75 ms, softplus 2.5 -> 1.4 ms); a select
    # (leaky_relu) was faster in one loop (0.25 ms, 0.33 apart), float64 the same either way
    dparams_apart: bool = False


def reference_dparam(act: Activation, mp: Any, x: Any, p: tuple[Any, ...], name: str) -> Any:
    """d f / d (parameter ``name``) at x, from the reference by mpmath's numerical
    derivative (at its working precision; not at a kink in the parameter)."""
    k = [param.name for param in act.params].index(name)
    return mp.diff(lambda v: act.reference(mp, x, p[:k] + (v,) + p[k + 1:]), mp.mpf(p[k]))


@scalar_function
def _nan_or(x: Any, v: Any) -> Any:
    """like(x, v), or NaN where x is NaN (a parameter's derivative)."""
    return x if x != x else like(x, v)


def _numpy_nan_or(x: Any, v: Any) -> Any:
    """v (an array or a number) in x's dtype, NaN where x is NaN."""
    return np.where(np.isnan(x), x, np.asarray(v, x.dtype))


def _numpy_nonpositive_part(x: Any) -> Any:
    """x where x <= 0 (and NaN), 0 where x > 0."""
    return np.where(x > 0, x.dtype.type(0), x)


# --- formulas in two stages -----------------------------------------------------
# A formula whose operations form one long chain (an exp, then a quotient refined by
# its residual) keeps few elements in flight: the CPU's schedulers fill up with
# operations that wait on the chain, and adding an operation to it costs its
# latency rather than its throughput.  Written as two stages, f(x) = then(x,
# first(x)), it runs in the kernels over contiguous arrays as two loops over each
# block of STAGE_BLOCK elements (_config): the first stores its value in the
# output, in L1, and the second reads it back.  Each loop's chain is about half as
# long, and the results are the same bits.  (silu float32, 1e5 elements, one thread
# on an AMD EPYC znver5: 27.5 -> 18.6 us.)

STAGES: dict[Callable[..., Any], tuple[Callable[..., Any], Callable[..., Any]]] = {}


def two_stages(name: str, first: Callable[..., Any], then: Callable[..., Any]) -> Callable[..., Any]:
    """The scalar formula ``name(*values, p) = then(*values, first(*values, p), p)``, in
    STAGES: ``first`` gives one value in the formula's dtype.  Assign it to ``name`` in
    this module, where the kernels' closures find it by reference (see scalar_function)."""
    values = ", ".join(list(inspect.signature(first).parameters)[:-1])
    namespace: dict[str, Any] = {"first": first, "then": then}
    exec(f"def {name}({values}, p):\n    return then({values}, first({values}, p), p)\n", namespace)  # noqa: S102
    f: Callable[..., Any] = scalar_function(namespace[name])
    f.__module__, f.__qualname__ = __name__, name
    STAGES[f] = (first, then)
    return f


# --- shared scalar helpers ------------------------------------------------------


@scalar_function
def _quotient(num: Any, e: Any, r: Any) -> Any:
    """num / (1 + e) to about half an ULP, given r ~ 1/(1 + e), with num - q
    within a factor 2 of num (Sterbenz): one Newton step on the exact residual
    num - q*(1 + e) = (num - q) - q*e."""
    q = num * r
    return fma(fma(-q, e, num - q), r, q)  # _quotient_of_pair's, without adding a num_lo of 0


@scalar_function
def _quotient_of_pair(num: Any, num_lo: Any, e: Any, r: Any) -> Any:
    """(num + num_lo) / (1 + e) as _quotient, for a numerator carried as a
    double-word (num_lo the rounding error of num)."""
    q = num * r
    residual = fma(-q, e, num - q) + num_lo
    return fma(residual, r, q)


@scalar_function
def _times(x: Any, t: Any) -> Any:
    """x * t, with 0 where t is 0 (so x = +-inf times a vanishing factor gives the limit 0)."""
    return t if t == 0 else x * t


@scalar_function
def _times_scaled(a: Any, v: Any, s: Any) -> Any:
    """a t from s = 2**B t (B of exp_nonpositive_times_scaled; t = exp(v), or a quotient
    of it): rounded once, also into the subnormals; 0 where v is below exp's clamp (the
    limit 0 for an infinite a too)."""
    return like(a, 0.0) if v < exp_times_clamp(v) else (a * s) / exp_times_scale(v)


@scalar_function
def _times_scaled_pair(a: Any, a_lo: Any, v: Any, s: Any) -> Any:
    """_times_scaled for a factor a + a_lo carried as a double-word: a s + a_lo s rounds once."""
    return like(a, 0.0) if v < exp_times_clamp(v) else fma(a, s, a_lo * s) / exp_times_scale(v)


@scalar_function
def _scaled(c: Any, v: Any) -> Any:
    """c * v for a float64 constant c, the product of the exact c: for float64 v rounded
    once, for float32 v formed in float64 (relative error 2**-53) and rounded to float32,
    also into the subnormals.  That second rounding differs from a single one only when
    the float64 product lands on a float32 tie, about once in 2**29 random inputs (the
    split c = hi + lo with fma(hi, v, lo * v), used before, errs at 2**-48 and cost a
    third more time for leaky_relu in cache)."""
    return like(v, c * np.float64(v))


@scalar_function
def _exact_div6(s: Any, s_lo: Any) -> Any:
    """(s + s_lo) / 6, correctly rounded but for ties: q = s * (1/6), within an ULP
    of s / 6 (no division), then one step on the exact residual s - 6 q."""
    six = like(s, 6.0)
    sixth = like(s, 1.0 / 6.0)
    q = s * sixth
    return fma(fma(-six, q, s) + s_lo, sixth, q)


@scalar_function
def _two_sum(a: Any, b: Any) -> Any:
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@scalar_function
def _fast_two_sum(a: Any, b: Any) -> Any:
    """_two_sum for |a| >= |b| (or a = 0), in three operations instead of six (Dekker)."""
    s = a + b
    return s, (a - s) + b


# Below TAIL, sigmoid(x) = e^x and 1 - sigmoid(x) = 1 to the last bit in both
# dtypes (e^-40 < 2**-57), and products like x sigmoid(x) are formed as
# ``exp_times(x, x)``: x e^x rounded once, not x times an already-rounded
# subnormal (which would carry |x| half-ULPs of error).  A formula that also
# needs exp(-|x|) takes both from ``exp_nonpositive_and_times``.
TAIL = -40.0


def _positive(name: str) -> Callable[[float], str | None]:
    return lambda v: None if v > 0 else f"{name} must be > 0, got {v!r}"


def _nonzero(name: str) -> Callable[[float], str | None]:
    return lambda v: None if v != 0 else f"{name} must not be 0"


def _where_x_le_0(x: Any, out: Any, inside: Any, outside: Any) -> None:
    """out = inside(x) where x <= 0 (or NaN), else outside(x)."""
    np.copyto(out, np.where(x > 0, outside, inside))


def _nonpositive_part(x: Any) -> Any:
    """min(x, 0) that keeps -0.0 and NaN (np.minimum(-0.0, 0) is 0.0)."""
    return np.where(x > 0, 0, x)


# --- sigmoid -----------------------------------------------------------------
# With e = exp(-|x|): sigmoid(x) = 1/(1+e) for x >= 0 and e/(1+e) for x < 0,
# and sigmoid'(x) = e/(1+e)**2 = sigmoid(|x|) * sigmoid(-|x|).  No input
# overflows.  Each quotient is refined by ``_quotient``, so neither the
# rounding of 1+e nor of 1/(1+e) survives: what remains is exp's error and one
# final rounding.  That gives <= 2 ULP forward and <= 4 ULP for the
# derivative, also in the far negative tail where y*(1-y) loses every digit.


@scalar_function
def _sigmoid_halves(x: Any) -> Any:
    """(sigmoid(|x|), sigmoid(-|x|))."""
    return _sigmoid_halves_of(exp_nonpositive(-abs(x)))


@scalar_function
def _sigmoid_halves_of(e: Any) -> Any:
    """(1 / (1 + e), e / (1 + e)): sigmoid(|x|) and sigmoid(-|x|) from e = exp(-|x|)."""
    one = like(e, 1.0)
    r = one / (one + e)
    return _quotient(one, e, r), _quotient(e, e, r)


@scalar_function
def _sigmoid(x: Any) -> Any:
    return _sigmoid_of(x, exp_nonpositive(-abs(x)))


@scalar_function
def _sigmoid_of(x: Any, e: Any) -> Any:
    """sigmoid(x) given e = exp(-|x|)."""
    one = like(x, 1.0)
    r = one / (one + e)
    return _quotient(e if x < 0 else one, e, r)


@scalar_function
def _sigmoid_pair_of(x: Any, e: Any) -> Any:
    """(sigmoid(x), sigmoid(-x)) given e = exp(-|x|)."""
    upper, lower = _sigmoid_halves_of(e)
    return (lower, upper) if x < 0 else (upper, lower)


@scalar_function
def _exp_neg_abs(x: Any, p: Any) -> Any:
    """exp(-|x|): the first stage of the formulas built on it."""
    return exp_nonpositive(-abs(x))


@scalar_function
def _sigmoid_then(x: Any, e: Any, p: Any) -> Any:
    return _sigmoid_of(x, e)


sigmoid_f = two_stages("sigmoid_f", _exp_neg_abs, _sigmoid_then)


@scalar_function
def _sigmoid_df_then(x: Any, e: Any, p: Any) -> Any:
    upper, lower = _sigmoid_halves_of(e)
    return upper * lower


sigmoid_df = two_stages("sigmoid_df", _exp_neg_abs, _sigmoid_df_then)


@scalar_function
def sigmoid_df_from_y(y: Any, p: Any) -> Any:
    return y * (like(y, 1.0) - y)


@scalar_function
def _exp_neg_abs_of_x(g: Any, x: Any, p: Any) -> Any:
    """exp(-|x|) for a backward formula of (g, x)."""
    return exp_nonpositive(-abs(x))


@scalar_function
def _sigmoid_backward_then(g: Any, x: Any, e: Any, p: Any) -> Any:
    upper, lower = _sigmoid_halves_of(e)
    return (g * upper) * lower


sigmoid_backward_x = two_stages("sigmoid_backward_x", _exp_neg_abs_of_x, _sigmoid_backward_then)


def _numpy_exp_neg_abs(x: np.ndarray) -> np.ndarray:
    t = np.abs(x)
    np.negative(t, out=t)
    e: np.ndarray = np.exp(t, out=t)
    return e


def _numpy_sigmoid(x: Any, out: Any, p: Any = ()) -> None:
    e = _numpy_exp_neg_abs(x)
    d = e + 1
    np.copyto(e, 1, where=~(x < 0))
    np.divide(e, d, out=out)


def _numpy_sigmoid_grad(x: Any, out: Any, p: Any = ()) -> None:
    e = _numpy_exp_neg_abs(x)
    d = e + 1
    np.multiply(d, d, out=d)
    np.divide(e, d, out=out)


def _numpy_sigmoid_grad_from_y(y: Any, out: Any, p: Any = ()) -> None:
    t = np.subtract(1, y)
    np.multiply(y, t, out=out)


def _mp_sigmoid(mp: Any, x: Any) -> Any:
    return 1 / (1 + mp.exp(-x))


SIGMOID = Activation(
    name="sigmoid",
    peers=(
        ("scipy", "expit"),
        ("numexpr", "1 / (1 + exp(-x))"),
        ("aten", "aten.sigmoid.out(x, out=o)"),
        ("aten_backward", "aten.sigmoid_backward.grad_input(g, y, grad_input=o)"),
        ("numpy (exp)", "np.reciprocal(np.add(np.exp(np.negative(x, out=out), out=out), 1, out=out), out=out)"),
        ("numpy (tanh)", "np.add(np.multiply(np.tanh(np.multiply(x, 0.5, out=out), out=out), 0.5, out=out), "
                         "0.5, out=out)"),
    ),
    doc="Logistic sigmoid 1 / (1 + exp(-x)); f' = f (1 - f), at most 0.25 (at x = 0).",
    formula="1 / (1 + e^-x); f' = f (1 - f), at most 0.25 (at 0)",
    f=sigmoid_f,
    df=sigmoid_df,
    df_from_y=sigmoid_df_from_y,
    backward_x=sigmoid_backward_x,
    numpy_f=_numpy_sigmoid,
    numpy_df=_numpy_sigmoid_grad,
    numpy_df_from_y=_numpy_sigmoid_grad_from_y,
    reference=lambda mp, x, p: _mp_sigmoid(mp, x),
    reference_df=lambda mp, x, p: _mp_sigmoid(mp, x) * _mp_sigmoid(mp, -x),
)


# --- tanh ----------------------------------------------------------------------
# tanh itself is in _vmath; tanh'(x) = 1 - tanh**2 = 4 sigmoid'(2x).  Below
# -2|x| = TAIL, tanh'(x) = 4 e^(-2|x|) to the last bit, and g tanh' is formed
# from s = 2**B e^(-2|x|) (exp_nonpositive_scaled, normal wherever the result
# is not 0) times 4 g 2**-B, so that a subnormal result rounds once: 4 g times
# an e^(-2|x|) already rounded into the subnormals would multiply that rounding
# by up to 8 (4.4 ULP for float64 at x = 371).  4 g 2**-B loses bits only below
# the result's last place.


@scalar_function
def tanh_f(x: Any, p: Any) -> Any:
    return tanh(x)


@scalar_function
def tanh_df(x: Any, p: Any) -> Any:
    return tanh_backward_x(like(x, 1.0), x, p)


@scalar_function
def tanh_backward_x(g: Any, x: Any, p: Any) -> Any:
    v = like(x, -2.0) * abs(x)
    scaled = exp_nonpositive_scaled(v)
    if v < TAIL:
        return (g * like(x, 4.0 * 2.0**-EXP_SCALED_BITS)) * scaled
    upper, lower = _sigmoid_halves_of(scaled * like(x, 2.0**-EXP_SCALED_BITS))
    return g * (like(x, 4.0) * (upper * lower))


@scalar_function
def tanh_df_from_y(y: Any, p: Any) -> Any:
    return fma(-y, y, like(y, 1.0))


def _numpy_tanh(x: Any, out: Any, p: Any = ()) -> None:
    np.tanh(x, out=out)


def _numpy_tanh_grad(x: Any, out: Any, p: Any = ()) -> None:
    _numpy_sigmoid_grad(2 * x, out)
    np.multiply(out, 4, out=out)


def _numpy_tanh_grad_from_y(y: Any, out: Any, p: Any = ()) -> None:
    t = np.multiply(y, y)
    np.subtract(1, t, out=out)


TANH = Activation(
    name="tanh",
    peers=(
        ("jax", "jax.numpy.tanh"),
        ("numexpr", "tanh(x)"),
        ("aten", "aten.tanh.out(x, out=o)"),
        ("aten_backward", "aten.tanh_backward.grad_input(g, y, grad_input=o)"),
        ("numpy", "np.tanh(x, out=out)"),
    ),
    doc="Hyperbolic tangent; f' = 1 - f**2.",
    formula="tanh(x); f' = 1 - f^2",
    f=tanh_f,
    df=tanh_df,
    df_from_y=tanh_df_from_y,
    backward_x=tanh_backward_x,
    numpy_f=_numpy_tanh,
    numpy_df=_numpy_tanh_grad,
    numpy_df_from_y=_numpy_tanh_grad_from_y,
    reference=lambda mp, x, p: mp.tanh(x),
    reference_df=lambda mp, x, p: 1 / mp.cosh(x) ** 2,
)


# --- tanhshrink ----------------------------------------------------------------
# x - tanh(x) cancels for small |x| (x^3 / 3 remains).  Lambert's continued fraction
# tanh x = x / (1 + u / (3 + u / (5 + ...))), u = x^2, gives
#     x - tanh x = x^3 / (3 + u M(u)),  M(u) = 1 + 1 / (5 + u / (7 + u / (9 + ...))),
# a quotient of positive terms that cancels nowhere.  1 / (5 + u / (7 + ...)) is the
# convergent Q(u) / P(u) of the fraction cut at TANHSHRINK_DEPTH terms (positive
# coefficients; cut 2**-64 below the value for |x| < TANHSHRINK_SWITCH).  x^3 and the
# denominator are carried as double-words and the quotient is corrected once, so the
# result rounds about once.  From TANHSHRINK_SWITCH on, x - tanh(x) loses less than a
# factor 2 to cancellation and is taken as it stands.
TANHSHRINK_SWITCH = 1.25
TANHSHRINK_DEPTH = 11  # the last partial denominator is 2 * 11 + 1


def _tanhshrink_convergent(depth: int) -> tuple[list[int], list[int]]:
    """(Q, P): integer coefficients (constant first) of 1 / (5 + u / (7 + ... u / (2 depth + 1))) = Q(u) / P(u)."""
    a, b = [2 * depth + 1], [1]  # the fraction from the bottom: a / b
    for k in range(depth - 1, 1, -1):  # t -> (2k + 1) + u / t
        shifted = [0, *b] + [0] * (len(a) - len(b) - 1)
        a, b = [(2 * k + 1) * c + d for c, d in zip([*a, 0], shifted)], a
        a = a[:-1] if a[-1] == 0 else a
    return b, a


# the kernels' coefficients (float64, scaled to P(0) = 1); the NumPy fallback divides the
# integers in the input's dtype (long double keeps its precision)
TANHSHRINK_INTEGERS = _tanhshrink_convergent(TANHSHRINK_DEPTH)
TANHSHRINK_Q, TANHSHRINK_P = (tuple(c / TANHSHRINK_INTEGERS[1][0] for c in poly) for poly in TANHSHRINK_INTEGERS)


@scalar_function
def _polynomial(coefs: Any, u: Any) -> Any:
    """sum coefs[k] u**k by Horner's rule with fused multiply-adds."""
    r = like(u, coefs[len(coefs) - 1])
    for k in range(len(coefs) - 2, -1, -1):
        r = fma(r, u, like(u, coefs[k]))
    return r


@scalar_function
def tanhshrink_f(x: Any, p: Any) -> Any:
    if abs(x) >= like(x, TANHSHRINK_SWITCH):
        return x - tanh(x)
    u = x * x
    u_lo = fma(x, x, -u)
    c = u * x
    c_lo = fma(u, x, -c) + u_lo * x  # x^3 = c + c_lo
    m = like(x, 1.0) + _polynomial(TANHSHRINK_Q, u) / _polynomial(TANHSHRINK_P, u)
    v = u * m
    v_lo = fma(u, m, -v) + u_lo * m
    three = like(x, 3.0)
    d = three + v  # v < 3 here: the error of this sum is exact below
    d_lo = ((three - d) + v) + v_lo
    r = like(x, 1.0) / d
    q = c * r
    # +0.0 where x is +-0, as PyTorch's x - tanh(x)
    return q + (((fma(-q, d, c) + c_lo) - q * d_lo) * r + like(x, 0.0))


@scalar_function
def tanhshrink_df(x: Any, p: Any) -> Any:
    t = tanh(x)
    return t * t


@scalar_function
def tanhshrink_backward_x(g: Any, x: Any, p: Any) -> Any:
    t = tanh(x)
    return (g * t) * t


# NumPy has no fused multiply-add: the double-words come from Dekker's exact product.
def _numpy_split(a: Any) -> Any:
    """(hi, lo), a = hi + lo exactly, each with half of a's significand (Veltkamp)."""
    t = a * a.dtype.type(2.0 ** ((np.finfo(a.dtype).nmant + 2) // 2) + 1)  # 4097 for float32
    hi = t - (t - a)
    return hi, a - hi


def _numpy_two_product(a: Any, b: Any) -> Any:
    """(p, e): p = a * b rounded, and e its exact error (|a|, |b| well below the overflow;
    arrays or NumPy scalars of one dtype)."""
    p = a * b
    ah, al = _numpy_split(a)
    bh, bl = _numpy_split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _numpy_polynomial(integers: Any, scale: Any, u: Any) -> Any:
    """sum (integers[k] / scale) u**k, the coefficients rounded once in u's dtype."""
    dt = u.dtype.type
    r = np.full_like(u, dt(integers[-1]) / dt(scale))
    for c in integers[-2::-1]:
        r = r * u + dt(c) / dt(scale)
    return r


def _numpy_tanhshrink(x: Any, out: Any, p: Any = ()) -> None:
    small = np.abs(x) < TANHSHRINK_SWITCH
    xs = np.where(small, x, 0).astype(x.dtype)
    u, u_lo = _numpy_two_product(xs, xs)
    c, c_lo = _numpy_two_product(u, xs)
    c_lo += u_lo * xs
    q, p = TANHSHRINK_INTEGERS
    m = 1 + _numpy_polynomial(q, p[0], u) / _numpy_polynomial(p, p[0], u)
    v, v_lo = _numpy_two_product(u, m)
    v_lo += u_lo * m
    d = 3 + v
    d_lo = ((3 - d) + v) + v_lo
    q = c / d
    qd, qd_lo = _numpy_two_product(q, d)
    q += ((((c - qd) - qd_lo) + c_lo) - q * d_lo) / d + 0
    np.copyto(out, np.where(small, q, x - np.tanh(x)))


def _numpy_tanhshrink_grad(x: Any, out: Any, p: Any = ()) -> None:
    np.tanh(x, out=out)
    np.multiply(out, out, out=out)


def _mp_tanhshrink(mp: Any, x: Any) -> Any:
    if x == 0:
        return mp.mpf(0)
    with mp.extraprec(int(-2 * mp.log(abs(x), 2)) + 32 if abs(x) < 1 else 32):  # x^3 / 3 is what remains
        return +(x - mp.tanh(x))


TANHSHRINK = Activation(
    name="tanhshrink",
    peers=(
        ("jax", "lambda v: v - jax.numpy.tanh(v)"),
        ("numexpr", "x - tanh(x)"),
        ("numpy", "np.subtract(x, np.tanh(x, out=out), out=out)"),
    ),
    doc="x - tanh(x), accurate also where the two cancel; f' = tanh(x)**2.",
    formula="x - tanh(x), without the cancellation near 0 (tanh's continued fraction); f' = tanh^2",
    f=tanhshrink_f,
    df=tanhshrink_df,
    backward_x=tanhshrink_backward_x,
    numpy_f=_numpy_tanhshrink,
    numpy_df=_numpy_tanhshrink_grad,
    reference=lambda mp, x, p: _mp_tanhshrink(mp, x),
    reference_df=lambda mp, x, p: mp.tanh(x) ** 2,
)


# --- log_sigmoid ---------------------------------------------------------------
# log sigmoid(x) = min(x, 0) - log1p(exp(-|x|)); its derivative is sigmoid(-x).


@scalar_function
def _log_sigmoid_then(x: Any, e: Any, p: Any) -> Any:
    t = log1p(e)
    return x - t if x < 0 else -t


log_sigmoid_f = two_stages("log_sigmoid_f", _exp_neg_abs, _log_sigmoid_then)


@scalar_function
def _log_sigmoid_df_then(x: Any, e: Any, p: Any) -> Any:
    return _sigmoid_of(-x, e)


log_sigmoid_df = two_stages("log_sigmoid_df", _exp_neg_abs, _log_sigmoid_df_then)


def _numpy_log_sigmoid(x: Any, out: Any, p: Any = ()) -> None:
    t = np.log1p(_numpy_exp_neg_abs(x))
    np.subtract(np.minimum(x, 0), t, out=out)


def _numpy_log_sigmoid_grad(x: Any, out: Any, p: Any = ()) -> None:
    _numpy_sigmoid(-x, out)


LOG_SIGMOID = Activation(
    name="log_sigmoid",
    peers=(
        ("scipy", "log_expit"),
        ("aten", "aten.log_sigmoid_forward.output(x, output=o, buffer=buffer)[0]"),
        ("aten_backward", "aten.log_sigmoid_backward.grad_input(g, x, buffer, grad_input=o)"),
    ),
    torch_name="logsigmoid",
    doc="log(sigmoid(x)) = -softplus(-x); f' = sigmoid(-x).",
    formula="log(1 / (1 + e^-x)); f' = sigmoid(-x)",
    f=log_sigmoid_f,
    df=log_sigmoid_df,
    numpy_f=_numpy_log_sigmoid,
    numpy_df=_numpy_log_sigmoid_grad,
    reference=lambda mp, x, p: -mp.log1p(mp.exp(-x)),
    reference_df=lambda mp, x, p: _mp_sigmoid(mp, -x),
)


# --- relu and its piecewise-linear relatives -------------------------------------
# Comparisons are written so that NaN fails them and falls through to x (or to
# a NaN-producing arithmetic branch): NaN in gives NaN out.


@scalar_function
def relu_f(x: Any, p: Any) -> Any:
    return like(x, 0.0) if x < 0 else x  # relu(-0.0) = -0.0, as in PyTorch


@scalar_function
def relu_df(x: Any, p: Any) -> Any:
    if x > 0:
        return like(x, 1.0)
    return like(x, 0.0) if x <= 0 else x


def _numpy_relu(x: Any, out: Any, p: Any = ()) -> None:
    np.copyto(out, np.where(x < 0, 0, x))  # NaN and -0.0 stay as they are


def _numpy_step(x: Any, out: Any, lo: Any = 0.0, hi: Any = None, inside: Any = 1.0, outside: Any = 0.0) -> None:
    """out = inside on the open interval (lo, hi) (hi None: no upper end), outside elsewhere, NaN at NaN."""
    np.copyto(out, np.where((x > lo) if hi is None else (x > lo) & (x < hi), inside, outside))
    np.copyto(out, x, where=np.isnan(x))


def _numpy_relu_grad(x: Any, out: Any, p: Any = ()) -> None:
    _numpy_step(x, out)


RELU = Activation(
    name="relu",
    peers=(
        ("numexpr", "where(x > 0, x, 0)"),
        ("aten", "aten.clamp_min.out(x, 0, out=o)"),
        ("aten_backward", "aten.threshold_backward.grad_input(g, x, 0, grad_input=o)"),
        ("numpy", "np.maximum(x, 0, out=out)"),
    ),
    doc="Rectified linear unit max(x, 0); f' = 1 for x > 0, else 0 (relu'(0) = 0).",
    formula="max(x, 0); f' = 1 for x > 0, else 0",
    f=relu_f,
    df=relu_df,
    df_from_y=relu_df,  # y > 0 exactly where x > 0, and y is NaN where x is
    numpy_f=_numpy_relu,
    numpy_df=_numpy_relu_grad,
    numpy_df_from_y=_numpy_relu_grad,
    reference=lambda mp, x, p: x if x > 0 else mp.mpf(0),
    reference_df=lambda mp, x, p: mp.mpf(1) if x > 0 else mp.mpf(0),
    correctly_rounded=True,
)


@scalar_function
def leaky_relu_f(x: Any, p: Any) -> Any:
    return x if x > 0 else _scaled(p[0], x)


@scalar_function
def leaky_relu_df(x: Any, p: Any) -> Any:
    if x > 0:
        return like(x, 1.0)
    return like(x, p[0]) if x <= 0 else x


@scalar_function
def leaky_relu_backward_x(g: Any, x: Any, p: Any) -> Any:
    if x > 0:
        return g
    return _scaled(p[0], g) if x <= 0 else x


@scalar_function
def leaky_relu_dparams(x: Any, p: Any) -> Any:
    """d/d negative_slope: x where x <= 0."""
    return (like(x, 0.0) if x > 0 else x,)


def _numpy_leaky_relu(x: Any, out: Any, p: Any) -> None:
    np.copyto(out, np.where(x > 0, x, x * p[0]))


def _numpy_leaky_relu_grad(x: Any, out: Any, p: Any) -> None:
    _numpy_step(x, out, inside=1.0, outside=p[0])


LEAKY_RELU = Activation(
    name="leaky_relu",
    peers=(
        ("aten", "aten.leaky_relu.out(x, 0.01, out=o)"),
        ("aten_backward", "aten.leaky_relu_backward.grad_input(g, x, 0.01, False, grad_input=o)"),
    ),
    doc="x for x > 0, else negative_slope * x; f'(0) = negative_slope.",
    formula="x if x > 0 else negative_slope x; f' = 1 or negative_slope (at 0: negative_slope)",
    params=(Param("negative_slope", 0.01),),
    f=leaky_relu_f,
    df=leaky_relu_df,
    backward_x=leaky_relu_backward_x,
    df_from_y=leaky_relu_df,  # for slope >= 0, y > 0 exactly where x > 0
    numpy_df_from_y=_numpy_leaky_relu_grad,
    y_check=lambda p: None if p[0] >= 0 else f"backward from y needs negative_slope >= 0, got {p[0]!r}",
    y_condition="negative_slope >= 0",
    numpy_f=_numpy_leaky_relu,
    numpy_df=_numpy_leaky_relu_grad,
    reference=lambda mp, x, p: x if x > 0 else mp.mpf(p[0]) * x,
    reference_df=lambda mp, x, p: mp.mpf(1) if x > 0 else mp.mpf(p[0]),
    correctly_rounded=True,
    grad_params=("negative_slope",),
    df_dparams=leaky_relu_dparams,
    numpy_df_dparams=lambda x, p: [_numpy_nonpositive_part(x)],
)


@scalar_function
def _clamp(x: Any, lo: Any, hi: Any) -> Any:
    if x < lo:  # x == lo keeps x: relu6(-0.0) = -0.0
        return lo
    return hi if x > hi else x


@scalar_function
def _open_interval_step(x: Any, lo: Any, hi: Any) -> Any:
    """1 on the open interval (lo, hi), 0 outside, NaN at NaN."""
    if x > lo and x < hi:
        return like(x, 1.0)
    return x if x != x else like(x, 0.0)


@scalar_function
def relu6_f(x: Any, p: Any) -> Any:
    return _clamp(x, like(x, 0.0), like(x, 6.0))


@scalar_function
def relu6_df(x: Any, p: Any) -> Any:
    return _open_interval_step(x, like(x, 0.0), like(x, 6.0))


RELU6 = Activation(
    name="relu6",
    peers=(
        ("aten", "aten.hardtanh.out(x, 0.0, 6.0, out=o)"),
        ("aten_backward", "aten.hardtanh_backward.grad_input(g, x, 0.0, 6.0, grad_input=o)"),
    ),
    doc="min(max(x, 0), 6); f' = 1 on the open interval (0, 6), else 0.",
    formula="min(max(x, 0), 6); f' = 1 on (0, 6), else 0",
    f=relu6_f,
    df=relu6_df,
    numpy_f=lambda x, out, p: np.copyto(out, np.where(np.isnan(x), x, np.clip(x, 0, 6))),
    numpy_df=lambda x, out, p: _numpy_step(x, out, 0.0, 6.0),
    reference=lambda mp, x, p: min(max(x, mp.mpf(0)), mp.mpf(6)),
    reference_df=lambda mp, x, p: mp.mpf(1) if 0 < x < 6 else mp.mpf(0),
    correctly_rounded=True,
)


@scalar_function
def hardtanh_f(x: Any, p: Any) -> Any:
    return _clamp(x, like(x, p[0]), like(x, p[1]))


@scalar_function
def hardtanh_df(x: Any, p: Any) -> Any:
    return _open_interval_step(x, like(x, p[0]), like(x, p[1]))


@scalar_function
def hardtanh_dparams(x: Any, p: Any) -> Any:
    """d/d min_val: 1 where x < min_val; d/d max_val: 1 where x > max_val."""
    if x < like(x, p[0]):
        return like(x, 1.0), like(x, 0.0)
    if x > like(x, p[1]):
        return like(x, 0.0), like(x, 1.0)
    return _nan_or(x, 0.0), _nan_or(x, 0.0)


def _numpy_hardtanh_dparams(x: Any, p: Any) -> Any:
    return [_numpy_nan_or(x, x < x.dtype.type(p[0])), _numpy_nan_or(x, x > x.dtype.type(p[1]))]


HARDTANH = Activation(
    name="hardtanh",
    peers=(
        ("jax", "jax.nn.hard_tanh"),
        ("aten", "aten.hardtanh.out(x, -1.0, 1.0, out=o)"),
        ("aten_backward", "aten.hardtanh_backward.grad_input(g, x, -1.0, 1.0, grad_input=o)"),
    ),
    doc="min(max(x, min_val), max_val); f' = 1 on the open interval (min_val, max_val), else 0.",
    formula="min(max(x, min_val), max_val); f' = 1 on (min_val, max_val), else 0",
    params=(Param("min_val", -1.0), Param("max_val", 1.0)),
    params_check=lambda p: None if p[1] >= p[0] else f"max_val must be >= min_val, got min_val={p[0]!r}, max_val={p[1]!r}",
    f=hardtanh_f,
    df=hardtanh_df,
    numpy_f=lambda x, out, p: np.copyto(out, np.where(np.isnan(x), x, np.clip(x, p[0], p[1]))),
    numpy_df=lambda x, out, p: _numpy_step(x, out, p[0], p[1]),
    reference=lambda mp, x, p: min(max(x, mp.mpf(p[0])), mp.mpf(p[1])),
    reference_df=lambda mp, x, p: mp.mpf(1) if p[0] < x < p[1] else mp.mpf(0),
    correctly_rounded=True,
    grad_params=("min_val", "max_val"),
    df_dparams=hardtanh_dparams,
    numpy_df_dparams=_numpy_hardtanh_dparams,
)


# rrelu in eval mode is leaky_relu with the slope (lower + upper) / 2, as in PyTorch.


@scalar_function
def _rrelu_slope(p: Any) -> Any:
    return 0.5 * (p[0] + p[1])


@scalar_function
def rrelu_f(x: Any, p: Any) -> Any:
    return x if x > 0 else _scaled(_rrelu_slope(p), x)


@scalar_function
def rrelu_df(x: Any, p: Any) -> Any:
    if x > 0:
        return like(x, 1.0)
    return like(x, _rrelu_slope(p)) if x <= 0 else x


@scalar_function
def rrelu_backward_x(g: Any, x: Any, p: Any) -> Any:
    if x > 0:
        return g
    return _scaled(_rrelu_slope(p), g) if x <= 0 else x


@scalar_function
def rrelu_dparams(x: Any, p: Any) -> Any:
    """d/d lower = d/d upper: x / 2 where x <= 0."""
    h = like(x, 0.0) if x > 0 else x * like(x, 0.5)
    return h, h


RRELU = Activation(
    name="rrelu",
    peers=(  # PyTorch's eval-mode rrelu is its leaky_relu with the mean slope
        ("jax", "lambda v: jax.nn.leaky_relu(v, 0.22916666666666666)"),
        ("aten", "aten.leaky_relu.out(x, 0.22916666666666666, out=o)"),
        ("aten_backward", "aten.leaky_relu_backward.grad_input(g, x, 0.22916666666666666, False, grad_input=o)"),
    ),
    doc="Randomized leaky ReLU in eval mode: x for x > 0, else (lower + upper) / 2 * x.",
    formula="x if x > 0 else s x, s = (lower + upper) / 2 (eval mode); f' = 1 or s (at 0: s)",
    params=(Param("lower", 0.125), Param("upper", 1.0 / 3.0)),
    params_check=lambda p: None if p[1] >= p[0] else f"upper must be >= lower, got lower={p[0]!r}, upper={p[1]!r}",
    f=rrelu_f,
    df=rrelu_df,
    backward_x=rrelu_backward_x,
    df_from_y=rrelu_df,  # for a slope >= 0, y > 0 exactly where x > 0
    numpy_df_from_y=lambda x, out, p: _numpy_step(x, out, inside=1.0, outside=_rrelu_slope(p)),
    y_check=lambda p: (None if _rrelu_slope(p) >= 0
                       else f"backward from y needs lower + upper >= 0, got lower={p[0]!r}, upper={p[1]!r}"),
    y_condition="lower + upper >= 0",
    numpy_f=lambda x, out, p: _numpy_leaky_relu(x, out, (_rrelu_slope(p),)),
    numpy_df=lambda x, out, p: _numpy_step(x, out, inside=1.0, outside=_rrelu_slope(p)),
    # the slope is (lower + upper) / 2 in float64 (as PyTorch forms it), the product rounded once
    reference=lambda mp, x, p: x if x > 0 else mp.mpf(_rrelu_slope(p)) * x,
    reference_df=lambda mp, x, p: mp.mpf(1) if x > 0 else mp.mpf(_rrelu_slope(p)),
    correctly_rounded=True,
    # s x is formed in float64 and rounded to float32 (leaky_relu's too, see _scaled): 2**-53
    # off, so a product that close to a tie can round the other way (0.5000000007 ULP seen
    # with the split form used before, 2**-48 off); a correctly rounded product with a tie
    # check took 3.3x the time in cache
    known_gaps=(("forward", "float32", 0.51), ("backward", "float32", 0.51)),
    grad_params=("lower", "upper"),
    df_dparams=rrelu_dparams,
    numpy_df_dparams=lambda x, p: [_numpy_nonpositive_part(x) * x.dtype.type(0.5)] * 2,
)


# hardshrink and softshrink compare x with the float64 lambd itself, and softshrink's
# x -+ lambd is rounded once from float64 (exact there for lambd's of float32 size).


@scalar_function
def _inside(x: Any, lam: Any) -> Any:
    """Whether -lam <= x <= lam for the float64 lam: |x| <= lam, compared in x's dtype
    (``_at_or_below``); False for NaN."""
    return _at_or_below(abs(x), lam)


@scalar_function
def hardshrink_f(x: Any, p: Any) -> Any:
    if _inside(x, p[0]):
        return like(x, 0.0)  # +0.0 also for -0.0, as PyTorch
    return x


@scalar_function
def _shrink_df(x: Any, p: Any) -> Any:
    if _inside(x, p[0]):
        return like(x, 0.0)
    return x if x != x else like(x, 1.0)


def _numpy_inside(x: Any, lam: Any) -> Any:
    xd = x.astype(np.float64)
    return (xd >= -lam) & (xd <= lam)


def _numpy_shrink_grad(x: Any, out: Any, p: Any) -> None:
    np.copyto(out, np.where(_numpy_inside(x, p[0]), 0, np.where(np.isnan(x), x, 1)))


def _mp_shrink_df(mp: Any, x: Any, p: Any) -> Any:
    return mp.mpf(1) if abs(x) > p[0] else mp.mpf(0)


HARDSHRINK = Activation(
    name="hardshrink",
    peers=(
        ("jax", "lambda v: jax.numpy.where(jax.numpy.abs(v) > 0.5, v, 0.0)"),
        ("numexpr", "where(abs(x) > 0.5, x, 0)"),
        ("aten", "aten.hardshrink.out(x, 0.5, out=o)"),
        ("aten_backward", "aten.hardshrink_backward.grad_input(g, x, 0.5, grad_input=o)"),
    ),
    doc="x where |x| > lambd, else 0; f' = 1 where |x| > lambd, else 0.",
    formula="x if abs(x) > lambd else 0; f' = 1 or 0 (0 at abs(x) = lambd)",
    params=(Param("lambd", 0.5),),
    f=hardshrink_f,
    df=_shrink_df,
    numpy_f=lambda x, out, p: np.copyto(out, np.where(_numpy_inside(x, p[0]), 0, x)),
    numpy_df=_numpy_shrink_grad,
    reference=lambda mp, x, p: x if abs(x) > p[0] else mp.mpf(0),
    reference_df=_mp_shrink_df,
    correctly_rounded=True,
)


@scalar_function
def softshrink_f(x: Any, p: Any) -> Any:
    if _inside(x, p[0]):
        return x * like(x, 0.0)  # 0 with the sign of x (as PyTorch)
    # x - lambd or x + lambd: one subtraction of lambd with x's sign (NaN stays NaN)
    return like(x, np.float64(x) - math.copysign(p[0], x))


@scalar_function
def softshrink_dparams(x: Any, p: Any) -> Any:
    """d/d lambd: -1 where x > lambd, 1 where x < -lambd, else 0."""
    xd = np.float64(x)  # compared as the forward compares
    if xd > p[0]:
        return (like(x, -1.0),)
    if xd < -p[0]:
        return (like(x, 1.0),)
    return (_nan_or(x, 0.0),)


def _numpy_softshrink(x: Any, out: Any, p: Any) -> None:
    xd = x.astype(np.float64)
    np.copyto(out, np.where(xd > p[0], xd - p[0], np.where(xd < -p[0], xd + p[0], xd * 0)), casting="unsafe")


SOFTSHRINK = Activation(
    name="softshrink",
    peers=(
        ("jax", "lambda v: jax.numpy.where(v > 0.5, v - 0.5, jax.numpy.where(v < -0.5, v + 0.5, 0.0))"),
        ("aten", "aten.softshrink.out(x, 0.5, out=o)"),
        ("aten_backward", "aten.softshrink_backward.grad_input(g, x, 0.5, grad_input=o)"),
    ),
    doc="x - lambd where x > lambd, x + lambd where x < -lambd, else 0; f' = 1 outside [-lambd, lambd], else 0.",
    formula="x - lambd if x > lambd, x + lambd if x < -lambd, else 0; f' = 1 or 0 (0 at abs(x) = lambd)",
    params=(Param("lambd", 0.5, check=lambda v: None if v >= 0 else f"lambd must be >= 0, got {v!r}",
                  note=">= 0"),),
    f=softshrink_f,
    df=_shrink_df,
    numpy_f=_numpy_softshrink,
    numpy_df=_numpy_shrink_grad,
    reference=lambda mp, x, p: x - p[0] if x > p[0] else (x + p[0] if x < -p[0] else mp.mpf(0)),
    reference_df=_mp_shrink_df,
    correctly_rounded=True,
    grad_params=("lambd",),
    df_dparams=softshrink_dparams,
    numpy_df_dparams=lambda x, p: [_numpy_nan_or(x, np.where(x.astype(np.float64) > p[0], -1,
                                                            (x.astype(np.float64) < -p[0]).astype(int)))],
)


# threshold compares x with the float64 threshold itself, as hardshrink and softshrink
# do (PyTorch rounds it to x's dtype first).  PyTorch requires both parameters;
# fastact defaults them to 0 (threshold(x) is relu(x) but for -0.0, which gives the
# value 0.0, as in PyTorch).


@scalar_function
def _at_or_below(x: Any, t: Any) -> Any:
    """Whether x <= t for the float64 t, compared in x's dtype: with t_x the float of x's
    dtype nearest t, no float lies strictly between t_x and t, so x <= t is x < t_x where
    t_x rounded up, else x <= t_x (widening every x to float64 cost threshold float32 a
    third of its speed in cache)."""
    t_x = like(x, t)
    if np.float64(t_x) > t:
        return x < t_x
    return x <= t_x


@scalar_function
def threshold_f(x: Any, p: Any) -> Any:
    return like(x, p[1]) if _at_or_below(x, p[0]) else x


@scalar_function
def threshold_df(x: Any, p: Any) -> Any:
    if _at_or_below(x, p[0]):
        return like(x, 0.0)
    return x if x != x else like(x, 1.0)


@scalar_function
def threshold_dparams(x: Any, p: Any) -> Any:
    """d/d value: 1 where x <= threshold (threshold itself only moves a step: no gradient)."""
    return (like(x, 1.0) if _at_or_below(x, p[0]) else _nan_or(x, 0.0),)


THRESHOLD = Activation(
    name="threshold",
    torch="torch.nn.functional.threshold(x, 0.0, 0.0)",
    peers=(
        ("jax", "lambda v: jax.numpy.where(v <= 0.0, 0.0, v)"),
        ("numexpr", "where(x <= 0, 0, x)"),
        ("aten", "aten.threshold.out(x, 0.0, 0.0, out=o)"),
        ("aten_backward", "aten.threshold_backward.grad_input(g, x, 0.0, grad_input=o)"),
    ),
    doc="x where x > threshold, else value (PyTorch requires both; here they default to 0); "
        "f' = 1 where x > threshold, else 0.",
    formula="x if x > threshold else value; f' = 1 or 0 (0 at x = threshold)",
    params=(Param("threshold", 0.0), Param("value", 0.0)),
    f=threshold_f,
    df=threshold_df,
    numpy_f=lambda x, out, p: np.copyto(out, np.where(x.astype(np.float64) <= p[0], x.dtype.type(p[1]), x)),
    numpy_df=lambda x, out, p: _numpy_step(x.astype(np.float64), out, lo=p[0]),
    reference=lambda mp, x, p: x if x > p[0] else mp.mpf(p[1]),
    reference_df=lambda mp, x, p: mp.mpf(1) if x > p[0] else mp.mpf(0),
    correctly_rounded=True,
    grad_params=("value",),
    df_dparams=threshold_dparams,
    numpy_df_dparams=lambda x, p: [_numpy_nan_or(x, x.astype(np.float64) <= p[0])],
)


# relu(x)^2 rounds once; its derivative 2 relu(x) is exact, and g 2x rounds once,
# also where 2x alone would overflow.


@scalar_function
def relu_squared_f(x: Any, p: Any) -> Any:
    if x > 0:
        return x * x
    return x if x != x else like(x, 0.0)  # +0.0 also for -0.0, as PyTorch's relu(x) ** 2


@scalar_function
def relu_squared_df(x: Any, p: Any) -> Any:
    if x > 0:
        return x + x
    return x if x != x else like(x, 0.0)


@scalar_function
def relu_squared_backward_x(g: Any, x: Any, p: Any) -> Any:
    d = relu_squared_df(x, p)
    if abs(d) == math.inf and abs(x) < math.inf:
        return (g * x) * like(x, 2.0)
    return g * d


def _numpy_relu_squared_backward(g: Any, x: Any, out: Any, p: Any) -> None:
    d = np.where(x > 0, x + x, np.where(np.isnan(x), x, 0))
    np.copyto(out, np.where(np.isinf(d) & np.isfinite(x), (g * x) * 2, g * d))


RELU_SQUARED = Activation(
    name="relu_squared",
    peers=(
        ("jax", "lambda v: jax.numpy.square(jax.nn.relu(v))"),
        ("numexpr", "where(x > 0, x * x, 0)"),
        ("numpy", "np.square(np.maximum(x, 0, out=out), out=out)"),
    ),
    torch="torch.square(torch.relu(x))",
    doc="relu(x)**2 (squared ReLU, as in Primer); f' = 2 relu(x).",
    formula="max(x, 0)^2; f' = 2 max(x, 0)",
    f=relu_squared_f,
    df=relu_squared_df,
    backward_x=relu_squared_backward_x,
    numpy_f=lambda x, out, p: np.copyto(out, np.where(x > 0, x * x, np.where(np.isnan(x), x, 0))),
    numpy_df=lambda x, out, p: np.copyto(out, np.where(x > 0, x + x, np.where(np.isnan(x), x, 0))),
    numpy_backward_x=_numpy_relu_squared_backward,
    reference=lambda mp, x, p: x * x if x > 0 else mp.mpf(0),
    reference_df=lambda mp, x, p: 2 * x if x > 0 else mp.mpf(0),
    correctly_rounded=True,
)


# hardsigmoid = relu6(x + 3) / 6 and hardswish = x relu6(x + 3) / 6, each
# rounded once: x + 3 and x (x + 3) are carried exactly (two-sum, two-product)
# into the division by 6.


@scalar_function
def hardsigmoid_f(x: Any, p: Any) -> Any:
    if x <= -3:
        return like(x, 0.0)
    if x >= 3:
        return like(x, 1.0)
    s, s_lo = _fast_two_sum(like(x, 3.0), x)  # |x| < 3
    return _exact_div6(s, s_lo)


@scalar_function
def hardsigmoid_df(x: Any, p: Any) -> Any:
    return _open_interval_step(x, like(x, -3.0), like(x, 3.0)) * like(x, 1.0 / 6.0)


@scalar_function
def hardsigmoid_backward_x(g: Any, x: Any, p: Any) -> Any:
    if x > -3 and x < 3:
        return _exact_div6(g, like(g, 0.0))
    return g * _open_interval_step(x, like(x, -3.0), like(x, 3.0))


@scalar_function
def hardswish_f(x: Any, p: Any) -> Any:
    if x <= -3:
        return like(x, 0.0)
    if x >= 3 or x == 0:  # hardswish(-0.0) = -0.0; the exact sum below would give +0.0
        return x
    s, s_lo = _fast_two_sum(like(x, 3.0), x)  # x + 3 exactly (|x| < 3), then x (x + 3) as a double-word
    xs = x * s
    return _exact_div6(xs, fma(x, s_lo, fma(x, s, -xs)))


@scalar_function
def hardswish_df(x: Any, p: Any) -> Any:
    if x >= 3:
        return like(x, 1.0)
    if x <= -3:
        return like(x, 0.0)
    s, s_lo = _two_sum(like(x, 2.0) * x, like(x, 3.0))  # (2x + 3) / 6 = x/3 + 1/2
    return _exact_div6(s, s_lo)


@scalar_function
def hardswish_backward_x(g: Any, x: Any, p: Any) -> Any:
    if x > -3 and x < 3:  # g (2x + 3) / 6, the product carried exactly into the division
        s, s_lo = _two_sum(like(x, 2.0) * x, like(x, 3.0))
        gs = g * s
        return _exact_div6(gs, fma(g, s, -gs) + g * s_lo)
    return g * hardswish_df(x, p)


def _numpy_hardsigmoid(x: Any, out: Any, p: Any = ()) -> None:
    np.copyto(out, np.where(np.isnan(x), x, np.clip(x + 3, 0, 6) / 6))


def _numpy_hardswish(x: Any, out: Any, p: Any = ()) -> None:
    np.copyto(out, np.where(x <= -3, 0.0, np.where(x >= 3, x, x * (x + 3) / 6)))


def _numpy_hardswish_grad(x: Any, out: Any, p: Any = ()) -> None:
    np.copyto(out, np.where(x >= 3, 1.0, np.where(x <= -3, 0.0, (2 * x + 3) / 6)))
    np.copyto(out, x, where=np.isnan(x))


HARDSIGMOID = Activation(
    name="hardsigmoid",
    peers=(
        ("jax", "jax.nn.hard_sigmoid"),
        ("aten", "aten.hardsigmoid.out(x, out=o)"),
        ("aten_backward", "aten.hardsigmoid_backward.grad_input(g, x, grad_input=o)"),
    ),
    doc="relu6(x + 3) / 6; f' = 1/6 on the open interval (-3, 3), else 0.",
    formula="relu6(x + 3) / 6; f' = 1/6 on (-3, 3), else 0",
    f=hardsigmoid_f,
    df=hardsigmoid_df,
    backward_x=hardsigmoid_backward_x,
    numpy_f=_numpy_hardsigmoid,
    numpy_df=lambda x, out, p: _numpy_step(x, out, -3.0, 3.0, inside=1.0 / 6.0),
    reference=lambda mp, x, p: min(max(x + 3, mp.mpf(0)), mp.mpf(6)) / 6,
    reference_df=lambda mp, x, p: mp.mpf(1) / 6 if -3 < x < 3 else mp.mpf(0),
    correctly_rounded=True,
)

HARDSWISH = Activation(
    name="hardswish",
    peers=(
        ("jax", "jax.nn.hard_swish"),
        ("aten", "aten.hardswish.out(x, out=o)"),
        ("aten_backward", "aten.hardswish_backward.out(g, x, out=o)"),
    ),
    doc="x relu6(x + 3) / 6; f' = x/3 + 1/2 on (-3, 3), 0 at and below -3, 1 at and above 3.",
    formula="x relu6(x + 3) / 6; f' = x/3 + 1/2 on (-3, 3), 0 at and below -3, 1 at and above 3",
    f=hardswish_f,
    df=hardswish_df,
    backward_x=hardswish_backward_x,
    numpy_f=_numpy_hardswish,
    numpy_df=_numpy_hardswish_grad,
    reference=lambda mp, x, p: x * min(max(x + 3, mp.mpf(0)), mp.mpf(6)) / 6,
    reference_df=lambda mp, x, p: mp.mpf(1) if x >= 3 else (mp.mpf(0) if x <= -3 else x / 3 + mp.mpf(1) / 2),
    correctly_rounded=True,
)


# --- the exponential linear units -----------------------------------------------
# x for x > 0, else alpha * expm1(x) (x <= 0 takes the exponential branch, so
# f'(0) = alpha, as in PyTorch).  From the output: f' = y + alpha for y <= 0.

SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


@scalar_function
def elu_f(x: Any, p: Any) -> Any:
    return x if x > 0 else _scaled(p[0], expm1(x))


@scalar_function
def elu_df(x: Any, p: Any) -> Any:
    return like(x, 1.0) if x > 0 else _scaled(p[0], exp(x))


@scalar_function
def elu_df_from_y(y: Any, p: Any) -> Any:
    return like(y, 1.0) if y > 0 else y + like(y, p[0])


@scalar_function
def elu_dparams(x: Any, p: Any) -> Any:
    """d/d alpha: expm1(x) where x <= 0."""
    return (like(x, 0.0) if x > 0 else expm1(x),)


def _numpy_elu(x: Any, out: Any, p: Any) -> None:
    _where_x_le_0(x, out, p[0] * np.expm1(_nonpositive_part(x)), x)


def _numpy_elu_grad(x: Any, out: Any, p: Any) -> None:
    _where_x_le_0(x, out, p[0] * np.exp(_nonpositive_part(x)), 1.0)


def _numpy_elu_grad_from_y(y: Any, out: Any, p: Any) -> None:
    np.copyto(out, np.where(y > 0, 1.0, y + p[0]))


ELU = Activation(
    name="elu",
    peers=(
        ("aten", "aten.elu.out(x, 1.0, 1, 1, out=o)"),
        ("aten_backward", "aten.elu_backward.grad_input(g, 1.0, 1, 1, False, x, grad_input=o)"),
    ),
    doc="x for x > 0, else alpha (exp(x) - 1); f'(0) = alpha.",
    formula="x if x > 0 else alpha (e^x - 1); f' = 1 or alpha e^x (f'(0) = alpha)",
    params=(Param("alpha", 1.0),),
    f=elu_f,
    df=elu_df,
    df_from_y=elu_df_from_y,
    numpy_df_from_y=_numpy_elu_grad_from_y,
    y_check=lambda p: None if p[0] >= 0 else f"backward from y needs alpha >= 0, got {p[0]!r}",
    y_condition="alpha >= 0",
    numpy_f=_numpy_elu,
    numpy_df=_numpy_elu_grad,
    reference=lambda mp, x, p: x if x > 0 else mp.mpf(p[0]) * mp.expm1(x),
    reference_df=lambda mp, x, p: mp.mpf(1) if x > 0 else mp.mpf(p[0]) * mp.exp(x),
    grad_params=("alpha",),
    df_dparams=elu_dparams,
    dparams_apart=True,
    numpy_df_dparams=lambda x, p: [np.expm1(_numpy_nonpositive_part(x))],
)


@scalar_function
def selu_f(x: Any, p: Any) -> Any:
    if x > 0:
        return _scaled(SELU_SCALE, x)
    return _scaled(SELU_SCALE * SELU_ALPHA, expm1(x))


@scalar_function
def selu_df(x: Any, p: Any) -> Any:
    return like(x, SELU_SCALE) if x > 0 else _scaled(SELU_SCALE * SELU_ALPHA, exp(x))


@scalar_function
def selu_df_from_y(y: Any, p: Any) -> Any:
    return like(y, SELU_SCALE) if y > 0 else y + like(y, SELU_SCALE * SELU_ALPHA)


SELU = Activation(
    name="selu",
    peers=(
        ("aten", "aten.elu.out(x, SELU_ALPHA, SELU_SCALE, 1, out=o)"),
        ("aten_backward", "aten.elu_backward.grad_input(g, SELU_ALPHA, SELU_SCALE, 1, False, x, grad_input=o)"),
    ),
    doc=f"scale * elu(x, alpha) with alpha = {SELU_ALPHA}, scale = {SELU_SCALE}.",
    formula="scale (x if x > 0 else alpha (e^x - 1)), alpha = 1.6732632423543772, scale = 1.0507009873554805; "
            "f'(0) = scale alpha",
    f=selu_f,
    df=selu_df,
    df_from_y=selu_df_from_y,
    numpy_df_from_y=lambda y, out, p: np.copyto(out, np.where(y > 0, SELU_SCALE, y + SELU_SCALE * SELU_ALPHA)),
    numpy_f=lambda x, out, p: _where_x_le_0(x, out, SELU_SCALE * SELU_ALPHA * np.expm1(_nonpositive_part(x)),
                                            SELU_SCALE * x),
    numpy_df=lambda x, out, p: _where_x_le_0(x, out, SELU_SCALE * SELU_ALPHA * np.exp(_nonpositive_part(x)),
                                             SELU_SCALE),
    reference=lambda mp, x, p: mp.mpf(SELU_SCALE) * (x if x > 0 else mp.mpf(SELU_ALPHA) * mp.expm1(x)),
    reference_df=lambda mp, x, p: mp.mpf(SELU_SCALE) * (1 if x > 0 else mp.mpf(SELU_ALPHA) * mp.exp(x)),
)


@scalar_function
def _celu_first(x: Any, p: Any) -> Any:
    return x / like(x, p[0])


@scalar_function
def _celu_then(x: Any, u: Any, p: Any) -> Any:
    return x if x > 0 else _scaled(p[0], expm1(u))


celu_f = two_stages("celu_f", _celu_first, _celu_then)


@scalar_function
def _celu_df_then(x: Any, u: Any, p: Any) -> Any:
    return like(x, 1.0) if x > 0 else exp(u)


celu_df = two_stages("celu_df", _celu_first, _celu_df_then)


# d/d alpha of alpha expm1(u), u = x / alpha: expm1(u) - u e^u = e^u (1 - u) - 1, which
# cancels to -u^2 / 2 near 0: its series -sum (n - 1) u^n / n! for |u| < 1 (22 terms:
# float64's precision there; float32 could stop at 12, which measured no faster), else
# the closed form (which cancels at most 4-fold there).
_CELU_SERIES = tuple((k + 1) / math.factorial(k + 2) for k in range(22))


def _horner(name: str, coefs: tuple[float, ...]) -> Callable[..., Any]:
    """A function of u giving sum coefs[k] u**k (each coefficient in u's precision, like)
    by Horner's rule, written out as one expression: a loop over a tuple of coefficients
    left the loop around it scalar (Numba reads the tuple from memory by index).  celu's
    d/d alpha with param_grads: 10.4 ms on 1e6 float32, 0.18 ms for its backward."""
    expression = f"like(u, {coefs[-1]!r})"
    for c in coefs[-2::-1]:
        expression = f"({expression}) * u + like(u, {c!r})"
    namespace: dict[str, Any] = {"like": like, "__name__": __name__}
    exec(f"def {name}(u):\n    return {expression}\n", namespace)  # noqa: S102 - from the constants above
    fn: Callable[..., Any] = namespace[name]  # a module attribute of this name: kernels pickle it by reference
    return fn


_celu_series = scalar_function(_horner("_celu_series", _CELU_SERIES))


@scalar_function
def _celu_dalpha(u: Any) -> Any:
    one = like(u, 1.0)
    if abs(u) < one:
        return -(u * u) * _celu_series(u)
    e = exp(u)
    return -one if e == 0 else e * (one - u) - one


@scalar_function
def celu_dparams(x: Any, p: Any) -> Any:
    """d/d alpha: e^u (1 - u) - 1, u = x / alpha, where x <= 0."""
    return (like(x, 0.0) if x > 0 else _celu_dalpha(x / like(x, p[0])),)


def _numpy_celu_dparams(x: Any, p: Any) -> Any:
    u = _numpy_nonpositive_part(x) / x.dtype.type(p[0])
    series = np.zeros_like(u)
    for c in _CELU_SERIES[::-1]:
        series = series * u + x.dtype.type(c)
    e = np.exp(u)
    closed = np.where(e == 0, -1, e * (1 - u) - 1)
    return [np.where(np.abs(u) < 1, -(u * u) * series, closed).astype(x.dtype)]


@scalar_function
def celu_df_from_y(y: Any, p: Any) -> Any:
    return like(y, 1.0) if y > 0 else y / like(y, p[0]) + like(y, 1.0)


CELU = Activation(
    name="celu",
    peers=(
        ("aten", "aten.elu.out(x, 1.0, 1, 1.0, out=o)"),
        ("aten_backward", "aten.elu_backward.grad_input(g, 1.0, 1, 1.0, False, x, grad_input=o)"),
    ),
    doc="x for x > 0, else alpha (exp(x / alpha) - 1); f'(0) = 1.",
    formula="x if x > 0 else alpha (e^(x/alpha) - 1); f' = 1 or e^(x/alpha)",
    params=(Param("alpha", 1.0, _nonzero("alpha"), "not 0"),),
    f=celu_f,
    df=celu_df,
    df_from_y=celu_df_from_y,
    numpy_df_from_y=lambda y, out, p: np.copyto(out, np.where(y > 0, 1.0, y / p[0] + 1)),
    numpy_f=lambda x, out, p: _where_x_le_0(x, out, p[0] * np.expm1(_nonpositive_part(x) / p[0]), x),
    numpy_df=lambda x, out, p: _where_x_le_0(x, out, np.exp(_nonpositive_part(x) / p[0]), 1.0),
    reference=lambda mp, x, p: x if x > 0 else mp.mpf(p[0]) * mp.expm1(x / mp.mpf(p[0])),
    reference_df=lambda mp, x, p: mp.mpf(1) if x > 0 else mp.exp(x / mp.mpf(p[0])),
    grad_params=("alpha",),
    df_dparams=celu_dparams,
    dparams_apart=True,
    numpy_df_dparams=_numpy_celu_dparams,
)


# --- softplus --------------------------------------------------------------------
# log(1 + exp(beta x)) / beta, linear where beta x > threshold (strictly);
# f' = sigmoid(beta x), 1 where linear.  Stable form: max(z, 0) + log1p(exp(-|z|)).


@scalar_function
def _softplus_first(x: Any, p: Any) -> Any:
    return exp_nonpositive(-abs(x * like(x, p[0])))


@scalar_function
def _softplus_then(x: Any, e: Any, p: Any) -> Any:
    z = x * like(x, p[0])
    if z > like(x, p[1]):
        return x
    t = log1p(e)
    return (z + t if z > 0 else t) / like(x, p[0])


softplus_f = two_stages("softplus_f", _softplus_first, _softplus_then)


@scalar_function
def _softplus_df_then(x: Any, e: Any, p: Any) -> Any:
    z = x * like(x, p[0])
    return like(x, 1.0) if z > like(x, p[1]) else _sigmoid_of(z, e)


softplus_df = two_stages("softplus_df", _softplus_first, _softplus_df_then)


@scalar_function
def softplus_dparams(x: Any, p: Any) -> Any:
    """d/d beta: (z sigmoid(z) - log(1 + e^z)) / beta^2, z = beta x, where not linear; with
    a = |z| and e = e^-a that is -(a e / (1 + e) + log1p(e)) / beta^2, two terms of one sign
    (threshold only moves a step: no gradient)."""
    beta = like(x, p[0])
    z = x * beta
    if z > like(x, p[1]):  # linear, as the forward tests it
        return (like(x, 0.0),)
    one = like(x, 1.0)
    a = abs(z)
    if a > like(x, 40.0):  # e below 2^-57: (a + 1) e, from 2^B e (normal), scaled back last
        s = exp_nonpositive_scaled(-a)
        if s == 0:  # 0 rather than inf * 0 at z = -inf
            return (like(x, 0.0),)
        return (-((a + one) * s) / beta / beta * like(x, 2.0**-EXP_SCALED_BITS),)
    e = exp_nonpositive(-a)
    return (-(a * (e / (one + e)) + log1p(e)) / beta / beta,)  # two divisions: beta^2 may overflow


def _numpy_softplus_dparams(x: Any, p: Any) -> Any:
    wide = x.astype(np.longdouble)  # the tail stays normal there (where long double is wider)
    z = wide * x.dtype.type(p[0])
    a = np.abs(z)
    e = np.exp(-a)
    tail = np.where(e != 0, a * (e / (1 + e)), 0)
    linear = x * x.dtype.type(p[0]) > x.dtype.type(p[1])  # as the forward tests it
    return [np.where(linear, 0, -(tail + np.log1p(e)) / p[0] / p[0]).astype(x.dtype)]


def _numpy_softplus(x: Any, out: Any, p: Any) -> None:
    z = x * p[0]
    soft = (np.maximum(z, 0) + np.log1p(_numpy_exp_neg_abs(z))) / p[0]
    np.copyto(out, np.where(z > p[1], x, soft))


def _numpy_softplus_grad(x: Any, out: Any, p: Any) -> None:
    z = x * p[0]
    _numpy_sigmoid(z, out)
    np.copyto(out, 1, where=z > p[1])


SOFTPLUS = Activation(
    name="softplus",
    peers=(
        ("aten", "aten.softplus.out(x, 1.0, 20.0, out=o)"),
        ("aten_backward", "aten.softplus_backward.grad_input(g, x, 1.0, 20.0, grad_input=o)"),
    ),
    doc="log(1 + exp(beta x)) / beta, and x where beta x > threshold; f' = sigmoid(beta x) (1 where linear).",
    formula="log(1 + e^(beta x)) / beta, and x where beta x > threshold (strictly); f' = sigmoid(beta x), "
            "1 where linear",
    params=(Param("beta", 1.0, _nonzero("beta"), "not 0"), Param("threshold", 20.0)),
    f=softplus_f,
    df=softplus_df,
    numpy_f=_numpy_softplus,
    numpy_df=_numpy_softplus_grad,
    reference=lambda mp, x, p: x if x * p[0] > p[1] else mp.log1p(mp.exp(x * mp.mpf(p[0]))) / mp.mpf(p[0]),
    reference_df=lambda mp, x, p: mp.mpf(1) if x * p[0] > p[1] else _mp_sigmoid(mp, x * mp.mpf(p[0])),
    grad_params=("beta",),
    df_dparams=softplus_dparams,
    dparams_apart=True,
    numpy_df_dparams=_numpy_softplus_dparams,
)


# --- silu, mish, softsign ---------------------------------------------------------


# silu and silu' take s = 2**B exp(-|x|) (exp_nonpositive_times_scaled): e = s / 2**B
# is exp(-|x|), and x sigmoid(x) = (x q) / 2**B with q = 2**B sigmoid(x), the quotient
# of s (x < 0) or 2**B by 1 + e.  Where sigmoid(x) is subnormal q is not, so the
# product rounds once into the subnormals (in the tail, 1 + e = 1 and q = s: x e^x);
# silu''s tail (x + 1) e^x is (x + 1) s / 2**B.  One exp for both.


@scalar_function
def _silu_first(x: Any, p: Any) -> Any:
    return exp_nonpositive_times_scaled(-abs(x))


@scalar_function
def _silu_then(x: Any, s: Any, p: Any) -> Any:
    scale = exp_times_scale(x)
    one = like(x, 1.0)
    e = s / scale
    q = _quotient(s if x < 0 else scale, e, one / (one + e))
    if x > -TAIL:  # x sigmoid(x) is x to the last bit, and x q could overflow
        return x
    return _times_scaled(x, -abs(x), q)  # 0 below exp's clamp (x = -inf too)


silu_f = two_stages("silu_f", _silu_first, _silu_then)


@scalar_function
def _silu_df_then(x: Any, s: Any, p: Any) -> Any:
    # sigmoid(x) (1 + x sigmoid(-x)); in the tail (x + 1) e^x
    one = like(x, 1.0)
    if x < TAIL:
        return _times_scaled(x + one, x, s)
    upper, lower = _sigmoid_pair_of(x, s / exp_times_scale(x))
    return _times(fma(x, lower, one) if lower != 0 else one, upper)


silu_df = two_stages("silu_df", _silu_first, _silu_df_then)


def _numpy_silu(x: Any, out: Any, p: Any = ()) -> None:
    _numpy_sigmoid(x, out)
    np.multiply(out, x, out=out)
    np.copyto(out, 0, where=np.isneginf(x))


def _numpy_silu_grad(x: Any, out: Any, p: Any = ()) -> None:
    s, s_neg = np.empty_like(x), np.empty_like(x)
    _numpy_sigmoid(x, s)
    _numpy_sigmoid(-x, s_neg)
    np.multiply(s, np.where(s_neg == 0, 1.0, 1 + x * s_neg), out=out)
    np.copyto(out, 0, where=np.isneginf(x))


SILU = Activation(
    name="silu",
    peers=(
        ("numexpr", "x / (1 + exp(-x))"),
        ("aten", "aten.silu.out(x, out=o)"),
        ("aten_backward", "aten.silu_backward.grad_input(g, x, grad_input=o)"),
    ),
    derivative_crosses_zero=True,
    aliases=("swish",),
    doc="x sigmoid(x) (also called swish); f' = sigmoid(x) (1 + x (1 - sigmoid(x))).",
    formula="x sigmoid(x); f' = sigmoid(x) (1 + x sigmoid(-x))",
    f=silu_f,
    df=silu_df,
    numpy_f=_numpy_silu,
    numpy_df=_numpy_silu_grad,
    reference=lambda mp, x, p: x * _mp_sigmoid(mp, x),
    reference_df=lambda mp, x, p: _mp_sigmoid(mp, x) * (1 + x * _mp_sigmoid(mp, -x)),
)


# quick_gelu(x) = x sigmoid(c x), c = 1.702 (CLIP's GELU approximation).  With
# z = c x carried as a double-word z + z_lo, it is silu's formula in z, and
# f' = sigmoid(z) (1 + z sigmoid(-z)).  exp(-|z|) is corrected by the factor
# exp(-sign(z) z_lo) = 1 - sign(z) z_lo (in the tail, inside the one rounding of
# the product), so a rounded z does not cost |z| half-ULPs there.
QUICK_GELU_C = 1.702


@scalar_function
def _quick_gelu_argument(x: Any) -> Any:
    """(z, z_lo) with z + z_lo = QUICK_GELU_C x to about the square of the precision."""
    hi = like(x, QUICK_GELU_C)
    z = hi * x
    return z, fma(hi, x, -z) + like(x, QUICK_GELU_C - float(hi)) * x


@scalar_function
def _corrected(e: Any, z: Any, z_lo: Any) -> Any:
    """exp(-|z + z_lo|) from e = exp(-|z|) (0 stays 0: z_lo may be NaN where z overflowed)."""
    return e if e == 0 else fma(e, z_lo if z < 0 else -z_lo, e)


@scalar_function
def _quick_gelu_first(x: Any, p: Any) -> Any:
    """2**B exp(-|z|) (exp_nonpositive_times_scaled), z = 1.702 x rounded."""
    return exp_nonpositive_times_scaled(-abs(like(x, QUICK_GELU_C) * x))


@scalar_function
def _quick_gelu_then(x: Any, s: Any, p: Any) -> Any:
    z, z_lo = _quick_gelu_argument(x)
    if z < TAIL:  # x e^(z + z_lo) = (x + x z_lo) e^z, rounded once
        return _times_scaled_pair(x, x * z_lo, z, s)
    e = s / exp_times_scale(x)
    if z > -TAIL:  # x / (1 + e) is x to the last bit (inf too)
        return x
    if x == 0:  # x / 2 with x's sign
        return x * like(x, 0.5)
    # x e / (1 + e) (z < 0) or x / (1 + e), e = exp(-|z + z_lo|) = e + e_lo: the numerator as
    # a double-word and one correction of the quotient, so that the product rounds once
    e_lo = e * (z_lo if z < 0 else -z_lo)
    num, num_lo = x, like(x, 0.0)
    if z < 0:
        num = x * e
        num_lo = fma(x, e, -num) + x * e_lo
    one = like(x, 1.0)
    r = one / (one + e)
    q = num * r
    return fma(fma(-q, e, num - q) + (num_lo - q * e_lo), r, q)


quick_gelu_f = two_stages("quick_gelu_f", _quick_gelu_first, _quick_gelu_then)


@scalar_function
def _quick_gelu_df_then(x: Any, scaled: Any, p: Any) -> Any:
    z, z_lo = _quick_gelu_argument(x)
    one = like(x, 1.0)
    if z < TAIL:
        a = z + one
        # (z + z_lo + 1) e^(z + z_lo) = (a + a_lo) e^z to first order in z_lo (a + 1 = z + 2)
        a_lo = (z - (a - one)) + z_lo * (a + one)
        return _times_scaled_pair(a, a_lo, z, scaled)
    s, s_neg = _sigmoid_pair_of(z, _corrected(scaled / exp_times_scale(x), z, z_lo))
    return _times(fma(z, s_neg, one) + z_lo * s_neg if s_neg != 0 else one, s)


quick_gelu_df = two_stages("quick_gelu_df", _quick_gelu_first, _quick_gelu_df_then)


def _numpy_quick_gelu_terms(x: Any) -> Any:
    """(z, z_lo, e): the kernel's double-word z and the corrected exp(-|z|), from x
    clipped where z's value no longer matters (e is 0), away from the split's overflow."""
    dt = x.dtype.type
    hi = dt(QUICK_GELU_C)
    xc = np.clip(x, dt(-1e30), dt(1e30))
    z, z_lo = _numpy_two_product(hi, xc)
    z_lo += dt(QUICK_GELU_C - float(hi)) * xc
    e = np.exp(-np.abs(z))
    e += e * np.where(z < 0, z_lo, -z_lo)
    return z, z_lo, e


def _numpy_quick_gelu(x: Any, out: Any, p: Any = ()) -> None:
    z, _, e = _numpy_quick_gelu_terms(x)
    s = np.where(z < 0, e, 1) / (1 + e)
    np.copyto(out, np.where(s == 0, 0, x * s))  # 0 also for x = -inf


def _numpy_quick_gelu_grad(x: Any, out: Any, p: Any = ()) -> None:
    z, z_lo, e = _numpy_quick_gelu_terms(x)
    s, s_neg = np.where(z < 0, e, 1) / (1 + e), np.where(z < 0, 1, e) / (1 + e)
    np.multiply(s, 1 + (z * s_neg + z_lo * s_neg), out=out)


QUICK_GELU = Activation(
    name="quick_gelu",
    peers=(
        ("jax", "lambda v: v * jax.nn.sigmoid(1.702 * v)"),
        ("numexpr", "x / (1 + exp(-1.702 * x))"),
    ),
    torch="x * torch.sigmoid(1.702 * x)",
    derivative_crosses_zero=True,
    doc="x sigmoid(1.702 x), the sigmoid approximation of GELU (CLIP); "
        "f' = sigmoid(1.702 x) (1 + 1.702 x sigmoid(-1.702 x)).",
    formula="x sigmoid(1.702 x); f' = sigmoid(z) (1 + z sigmoid(-z)), z = 1.702 x",
    f=quick_gelu_f,
    df=quick_gelu_df,
    numpy_f=_numpy_quick_gelu,
    numpy_df=_numpy_quick_gelu_grad,
    reference=lambda mp, x, p: x * _mp_sigmoid(mp, mp.mpf(QUICK_GELU_C) * x),
    reference_df=lambda mp, x, p: (_mp_sigmoid(mp, mp.mpf(QUICK_GELU_C) * x)
                                   * (1 + mp.mpf(QUICK_GELU_C) * x * _mp_sigmoid(mp, -mp.mpf(QUICK_GELU_C) * x))),
)


@scalar_function
def _mish_terms(x: Any, u: Any) -> Any:
    """(tanh(softplus(x)), 1 - tanh(softplus(x))**2) from u = exp(-|x|), no overflow.

    With n = e^x (e^x + 2), tanh(softplus(x)) = n / (n + 2) and
    1 - tanh**2 = 4 (n + 1) / (n + 2)**2; written in u for either sign of x.
    The denominator is carried as a double-word and the quotient refined on
    its exact residual, so only the numerator's rounding remains.
    """
    one, two = like(x, 1.0), like(x, 2.0)
    if x >= 0:
        num = fma(two, u, one)  # 1 + 2u
        tu = two * u
        den = fma(tu, u, num)  # 1 + 2u + 2u^2
        den_lo = fma(tu, u, num - den)  # num - den is exact (Sterbenz)
        w = u * (one + u)  # u (1 + u): sech^2 = 4 w^2 / den^2
    else:
        num = fma(u, u, two * u)  # u^2 + 2u
        den, den_lo = _two_sum(two, num)
        w = one + u
    r = one / den
    q = num * r
    t = fma(fma(-q, den, num) - q * den_lo, r, q)
    r = fma(r, fma(-r, den, one) - r * den_lo, r)  # 1 / (den + den_lo), refined
    wr = w * r
    return t, like(x, 4.0) * wr * wr


# u = exp(-|x|) and the tail's products with e^x come from one exp (as silu's).
@scalar_function
def _mish64(x: Any) -> Any:
    u, tail = exp_nonpositive_and_times(x, -abs(x))
    if x < TAIL:  # tanh(softplus(x)) = e^x (1 - e^x / 2 ...) = e^x
        return tail
    t, sech2 = _mish_terms(x, u)
    return _times(x, t)


@scalar_function
def _mish_df64(x: Any) -> Any:
    u, tail = exp_nonpositive_and_times(x + 1.0, -abs(x))
    if x < TAIL:  # t + x sech^2 sigmoid(x) = e^x (1 + x)
        return tail
    t, sech2 = _mish_terms(x, u)
    return t + _times(x, sech2 * _sigmoid_of(x, u))


# mish is computed in float64 for either dtype: its terms are three rounded
# quotients and float32 arithmetic ends above 2 ULP.
@scalar_function
def mish_f(x: Any, p: Any) -> Any:
    return like(x, _mish64(np.float64(x)))


@scalar_function
def mish_df(x: Any, p: Any) -> Any:
    return like(x, _mish_df64(np.float64(x)))


def _numpy_mish(x: Any, out: Any, p: Any = ()) -> None:
    u = _numpy_exp_neg_abs(x)
    t = np.where(x >= 0, (1 + 2 * u) / (1 + 2 * u + 2 * u * u), u * (u + 2) / (u * (u + 2) + 2))
    np.copyto(out, np.where(t == 0, 0.0, x * t))


def _numpy_mish_grad(x: Any, out: Any, p: Any = ()) -> None:
    u = _numpy_exp_neg_abs(x)
    pos = x >= 0
    den = np.where(pos, 1 + 2 * u + 2 * u * u, u * (u + 2) + 2)
    t = np.where(pos, 1 + 2 * u, u * (u + 2)) / den
    w = np.where(pos, u * (1 + u), 1 + u) / den
    s = np.empty_like(x)
    _numpy_sigmoid(x, s)
    term = 4 * w * w * s
    np.copyto(out, t + np.where(term == 0, 0.0, x * term))


def _mp_mish_t(mp: Any, x: Any) -> Any:
    return mp.tanh(mp.log1p(mp.exp(x)))


MISH = Activation(
    name="mish",
    peers=(
        ("aten", "aten.mish.out(x, out=o)"),
        ("aten_backward", "aten.mish_backward(g, x)"),
    ),
    derivative_crosses_zero=True,
    # float64: three rounded quotients (float32 mish is computed in float64 and meets its
    # bounds); double-word evaluation would close it
    known_gaps=(("forward", "float64", 3.0), ("grad", "float64", 5.0), ("backward", "float64", 6.0)),
    doc="x tanh(softplus(x)).",
    formula="x tanh(log(1 + e^x)); f' = t + x (1 - t^2) sigmoid(x), t = tanh(softplus(x))",
    f=mish_f,
    df=mish_df,
    numpy_f=_numpy_mish,
    numpy_df=_numpy_mish_grad,
    reference=lambda mp, x, p: x * _mp_mish_t(mp, x),
    reference_df=lambda mp, x, p: _mp_mish_t(mp, x) + x * (1 - _mp_mish_t(mp, x) ** 2) * _mp_sigmoid(mp, x),
)


@scalar_function
def _softsign_reciprocal(x: Any) -> Any:
    """1 / (1 + |x|) to about half an ULP: 1 + |x| is carried as a two-sum."""
    one = like(x, 1.0)
    d, d_lo = _two_sum(one, abs(x))
    r = one / d
    refined = fma(r, fma(-r, d, one) - r * d_lo, r)
    return r if abs(x) == math.inf else refined  # at +-inf: 1 / inf = 0 (the two-sum error is NaN)


@scalar_function
def softsign_f(x: Any, p: Any) -> Any:
    one = like(x, 1.0)
    d, d_lo = _two_sum(one, abs(x))
    r = one / d
    q = x * r
    residual = fma(-q, d, x) - q * d_lo  # x - q (d + d_lo)
    f = fma(residual, r, q)
    return math.copysign(one if abs(x) == math.inf else f, x)  # the sign of x: softsign(-0.0) = -0.0


@scalar_function
def softsign_df(x: Any, p: Any) -> Any:
    r = _softsign_reciprocal(x)
    return r * r


SOFTSIGN = Activation(
    name="softsign",
    peers=(
        ("jax", "jax.nn.soft_sign"),
        ("numexpr", "x / (1 + abs(x))"),
    ),
    doc="x / (1 + |x|); f' = 1 / (1 + |x|)**2.",
    formula="x / (1 + abs(x)); f' = 1 / (1 + abs(x))^2",
    f=softsign_f,
    df=softsign_df,
    numpy_f=lambda x, out, p: np.copyto(out, np.where(np.isinf(x), np.sign(x), x / (1 + np.abs(x)))),
    numpy_df=lambda x, out, p: np.square(np.divide(1, 1 + np.abs(x)), out=out),
    reference=lambda mp, x, p: x / (1 + abs(x)),
    reference_df=lambda mp, x, p: 1 / (1 + abs(x)) ** 2,
)


# --- gelu ------------------------------------------------------------------------
# Exact: x Phi(x) with the normal CDF Phi computed from erfc, so the far
# negative tail keeps its relative accuracy; f' = Phi(x) + x phi(x).
# "tanh": 0.5 x (1 + tanh(v/2)) = x sigmoid(v), v = x (a + b x^2),
# a = 2 sqrt(2/pi), b = 0.044715 a; f' = sigmoid(v) + x sigmoid'(v) (a + 3 b x^2).

GELU_A = 2.0 * math.sqrt(2.0 / math.pi)
GELU_B = 0.044715 * GELU_A


@scalar_function
def gelu_f(x: Any, p: Any) -> Any:
    return normal_cdf_times(x, x)


@scalar_function
def gelu_df(x: Any, p: Any) -> Any:
    return normal_cdf_plus_x_pdf(x)


@scalar_function
def _gelu_tanh_v(x: Any) -> Any:
    """v = x (a + b x^2) as a double-word (v, v_lo): the rounding of v would be
    multiplied by |v| in exp(v), up to 100 ULP in the tail."""
    a = like(x, GELU_A)
    a_lo = like(x, GELU_A - float(a))
    b = like(x, GELU_B)
    b_lo = like(x, GELU_B - float(b))
    x2 = x * x
    x2_lo = fma(x, x, -x2)
    bx2 = b * x2
    bx2_lo = fma(b, x2, -bx2) + (b * x2_lo + b_lo * x2)
    w, w_lo = _two_sum(a, bx2)
    w_lo = w_lo + (bx2_lo + a_lo)
    v = x * w
    v_lo = fma(x, w, -v) + x * w_lo
    inf = like(x, math.inf)
    if not (abs(v) < inf and abs(v_lo) < inf):  # overflow (or NaN): v alone carries the answer
        v_lo = like(x, 0.0)
    return v, v_lo


@scalar_function
def gelu_tanh_f(x: Any, p: Any) -> Any:
    v, v_lo = _gelu_tanh_v(x)
    e, tail = exp_nonpositive_and_times(x * (like(x, 1.0) + v_lo), -abs(v))
    if v < TAIL:  # x sigmoid(v + v_lo) = x e^v (1 + v_lo)
        return tail
    # x sigmoid(v) = x / (1 + e) or x e / (1 + e), e = exp(-|v|), as one
    # quotient refined on its exact numerator: x times a rounded sigmoid
    # would round twice (2.05 ULP)
    one = like(x, 1.0)
    if e == 0:  # sigmoid(v) rounds to 1 (also x = inf)
        return x
    r = one / (one + e)
    if v < 0:  # x e / (1 + e), with sigmoid(-v) = 1 / (1 + e)
        num = x * e
        num_lo = fma(x, e, -num)
        s_neg = r
    else:  # x / (1 + e), with sigmoid(-v) = e / (1 + e)
        num, num_lo, s_neg = x, like(x, 0.0), e * r
    q = _quotient_of_pair(num, num_lo, e, r)
    # x sigmoid(v + v_lo) to first order, with the sign of x (the sums give +0.0 for -0.0)
    return math.copysign(fma(q * s_neg, v_lo, q), x)


@scalar_function
def gelu_tanh_df(x: Any, p: Any) -> Any:
    v, v_lo = _gelu_tanh_v(x)
    upper, lower = _sigmoid_halves(v)
    s = lower if v < 0 else upper
    slope = fma(like(x, 3.0 * GELU_B), x * x, like(x, GELU_A))
    ds = upper * lower
    return fma(ds, v_lo, s) + (ds if ds == 0 else x * (ds * slope))


def _numpy_normal_cdf(x: Any) -> Any:
    from math import (
        erfc as _erfc,  # NumPy has no erfc; a vectorised scalar one is fine for a fallback
    )

    return np.vectorize(lambda v: 0.5 * _erfc(-v / math.sqrt(2.0)), otypes=[x.dtype])(x) if x.size else x.copy()


def _numpy_gelu(x: Any, out: Any, p: Any = ()) -> None:
    phi = _numpy_normal_cdf(x)
    np.copyto(out, np.where(phi == 0, 0.0, x * phi))


def _numpy_gelu_grad(x: Any, out: Any, p: Any = ()) -> None:
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    np.copyto(out, _numpy_normal_cdf(x) + np.where(pdf == 0, 0.0, x * pdf))


def _numpy_gelu_tanh(x: Any, out: Any, p: Any = ()) -> None:
    v = x * (GELU_A + GELU_B * x * x)
    _numpy_sigmoid(v, out)
    np.copyto(out, np.where(out == 0, 0.0, x * out))


def _numpy_gelu_tanh_grad(x: Any, out: Any, p: Any = ()) -> None:
    v = x * (GELU_A + GELU_B * x * x)
    s = np.empty_like(x)
    _numpy_sigmoid(v, s)
    ds = np.empty_like(x)
    _numpy_sigmoid_grad(v, ds)
    term = np.where(ds == 0, 0.0, ds * (GELU_A + 3 * GELU_B * x * x))
    np.copyto(out, s + np.where(term == 0, 0.0, x * term))


def _mp_ncdf(mp: Any, x: Any) -> Any:
    return mp.mpf(0) if x < -1e4 else (mp.mpf(1) if x > 1e4 else mp.ncdf(x))


def _mp_npdf(mp: Any, x: Any) -> Any:
    return mp.mpf(0) if abs(x) > 1e4 else mp.npdf(x)


def _mp_gelu_tanh_v(mp: Any, x: Any) -> Any:
    return x * (mp.mpf(GELU_A) + mp.mpf(GELU_B) * x * x)


GELU = Activation(
    name="gelu",
    peers=(
        ("jax", "lambda v: jax.nn.gelu(v, approximate=False)"),
        ("aten", "aten.gelu.out(x, out=o)"),
        ("aten_backward", "aten.gelu_backward.grad_input(g, x, grad_input=o)"),
    ),
    derivative_crosses_zero=True,
    # float64: Phi(x) = t exp(-z^2 + P(t)) / 2 multiplies three rounded float64 quantities
    # in the negative half; double-word evaluation would close it
    known_gaps=(("forward", "float64", 6.0),),
    variant=("gelu", "approximate", "none"),
    doc="x Phi(x), Phi the standard normal CDF (approximate='none').",
    formula="x Phi(x) = x (1 + erf(x / sqrt 2)) / 2; f' = Phi(x) + x phi(x)",
    f=gelu_f,
    df=gelu_df,
    numpy_f=_numpy_gelu,
    numpy_df=_numpy_gelu_grad,
    reference=lambda mp, x, p: x * _mp_ncdf(mp, x),
    reference_df=lambda mp, x, p: _mp_ncdf(mp, x) + x * _mp_npdf(mp, x),
    fallback_per_element=True,  # math.erfc per element: NumPy has no erfc
)

GELU_TANH = Activation(
    name="gelu_tanh",
    derivative_crosses_zero=True,
    torch_name="gelu",
    variant=("gelu", "approximate", "tanh"),
    doc="0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (approximate='tanh').",
    formula="x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2",
    f=gelu_tanh_f,
    df=gelu_tanh_df,
    numpy_f=_numpy_gelu_tanh,
    numpy_df=_numpy_gelu_tanh_grad,
    reference=lambda mp, x, p: x * _mp_sigmoid(mp, _mp_gelu_tanh_v(mp, x)),
    reference_df=lambda mp, x, p: (_mp_sigmoid(mp, _mp_gelu_tanh_v(mp, x))
                                   + x * _mp_sigmoid(mp, _mp_gelu_tanh_v(mp, x))
                                   * _mp_sigmoid(mp, -_mp_gelu_tanh_v(mp, x))
                                   * (mp.mpf(GELU_A) + 3 * mp.mpf(GELU_B) * x * x)),
)


ELEMENTWISE: dict[str, Activation] = {
    a.name: a
    for a in (SIGMOID, TANH, TANHSHRINK, LOG_SIGMOID, RELU, LEAKY_RELU, RRELU, RELU6, HARDTANH, HARDSHRINK, SOFTSHRINK,
              THRESHOLD, RELU_SQUARED, ELU, SELU, CELU, GELU, GELU_TANH, SILU, QUICK_GELU, MISH, SOFTPLUS, SOFTSIGN,
              HARDSIGMOID, HARDSWISH)
}




@dataclass(frozen=True)
class ChannelDefinition:
    """An elementwise op whose parameter is given per channel (an array along one axis),
    made of an activation in ELEMENTWISE: prelu is leaky_relu with a slope per channel.
    Its kernels, NumPy fallback and reference are the activation's."""

    name: str
    activation: str  # the op in ELEMENTWISE
    param: str  # the parameter's public name (the activation's first parameter, per channel)
    doc: str
    torch: str  # PyTorch's op: an expression in F, x and the parameter


CHANNEL_OPS: dict[str, ChannelDefinition] = {d.name: d for d in (
    ChannelDefinition("prelu", "leaky_relu", "weight",
                      "x for x > 0, else weight[c] x, with c the channel of x along axis (PyTorch's prelu: axis 1, "
                      "one channel below 2 dimensions; weight of 1 or of the channel count); f'(0) = weight.",
                      "F.prelu(x, weight)"),
)}

def torch_function(act: Activation, torch: Any) -> Any:
    """PyTorch's function of the op, ``(tensor, **params) -> tensor``: the one in
    torch.nn.functional (or torch), or the definition's expression."""
    if act.torch:
        return eval(f"lambda x, **params: {act.torch}", {"torch": torch})  # noqa: S307
    functional = torch.nn.functional
    name = act.torch_name or act.name
    return getattr(functional, name) if hasattr(functional, name) else getattr(torch, name)

# --- kinds: what each entry point computes from a definition -----------------------


def _backward_x_loop(a: Activation) -> tuple[str, tuple[Callable[..., Any], ...]]:
    return ("map", (a.backward_x,)) if a.backward_x is not None else ("times", (a.df,))


def _backward_y_loop(a: Activation) -> tuple[str, tuple[Callable[..., Any], ...]]:
    assert a.df_from_y is not None, a.name  # the kind exists only where f' can be had from y
    return ("times", (a.df_from_y,))


def _numpy_times(derivative: str) -> Callable[..., Any]:
    """The NumPy backward: grad_out times the derivative ``derivative`` (a field) of v."""

    def run(act: Activation, ins: list[Any], outs: list[Any], p: tuple[Any, ...]) -> None:
        g, v = ins
        t = np.empty(v.shape, v.dtype)
        getattr(act, derivative)(v, t, p)
        np.multiply(g, t, out=outs[0])

    return run


def _numpy_backward_x(act: Activation, ins: list[Any], outs: list[Any], p: tuple[Any, ...]) -> None:
    if act.numpy_backward_x is not None:
        act.numpy_backward_x(*ins, outs[0], p)
    else:
        _numpy_times("numpy_df")(act, ins, outs, p)


def _numpy_pair(act: Activation, ins: list[Any], outs: list[Any], p: tuple[Any, ...]) -> None:
    act.numpy_f(ins[0], outs[0], p)
    act.numpy_df(ins[0], outs[1], p)


@dataclass(frozen=True)
class Kind:
    """One entry point of the elementwise ops: its arrays, and how the Numba loop and
    the NumPy fallback are composed from a definition's fields."""

    name: str
    inputs: tuple[str, ...]  # the arrays it takes, by their argument names
    outputs: int
    # (loop template in _kernels: "map", "pair" or "times", the scalar functions it runs)
    loop: Callable[[Activation], tuple[str, tuple[Callable[..., Any], ...]]]
    numpy: Callable[[Activation, list[Any], list[Any], tuple[Any, ...]], None]  # (act, inputs, outputs, params)
    ufunc_suffix: str  # the ufunc's name is the op's plus this
    call: str  # for the README: how it is called, and what it gives
    result: str


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("forward", ("x",), 1, lambda a: ("map", (a.f,)), lambda a, i, o, p: a.numpy_f(i[0], o[0], p), "",
         "op(x, *params, out=None)", "f(x)"),
    Kind("grad", ("x",), 1, lambda a: ("map", (a.df,)), lambda a, i, o, p: a.numpy_df(i[0], o[0], p), "_grad",
         "op.grad(x, *params, out=None)", "f'(x)"),
    Kind("value_and_grad", ("x",), 2, lambda a: ("pair", (a.f, a.df)), _numpy_pair, "_value_and_grad",
         "op.value_and_grad(x, *params, out=None)", "`(f(x), f'(x))` in one pass; `out` is None or a pair"),
    Kind("backward_x", ("grad_out", "x"), 1,
         _backward_x_loop, _numpy_backward_x,
         "_backward", "op.backward(grad_out, x=x, **params, out=None)", "`grad_out * f'(x)` in one pass"),
    Kind("backward_y", ("grad_out", "y"), 1, _backward_y_loop, _numpy_times("numpy_df_from_y"),
         "_backward_y", "op.backward(grad_out, y=y, **params, out=None)",
         "the same from the forward output y = f(x), where f' can be had from y"),
)}
