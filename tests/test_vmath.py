"""The hand-written math of ``_vmath`` against mpmath, in ULPs, over each function's
whole domain: random bit patterns (every exponent equally likely), the subnormals,
the switch points between its formulas and their neighbours, and the special
values.  The plain-Python bodies in ``_scalar`` (what the formulas run under
NUMBA_DISABLE_JIT) are checked against the same reference, so neither can drift."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numba import njit
from collections.abc import Callable
from dataclasses import dataclass

from fastact import _scalar

mpmath = pytest.importorskip("mpmath")
mpmath.mp.prec = 160

DTYPES = (np.float32, np.float64)
EXP_SCALE = 2.0**_scalar.EXP_SCALED_BITS


def _ncdf(x):
    return mpmath.ncdf(x) if abs(x) < 1e4 else mpmath.mpf(x > 0)


def _npdf(x):
    return mpmath.npdf(x) if abs(x) < 1e4 else mpmath.mpf(0)


@dataclass(frozen=True)
class Function:
    exact: Callable  # the value on an mpf argument
    domain: tuple[float, float]  # inputs from lo to hi (per dtype where a pair of pairs)
    switches: tuple[float, ...]  # where the implementation changes formula, range or scaling
    bound: tuple[float, float]  # ULPs (float32, float64), measured with some room
    floor: float = 0.0  # errors in ULPs of max(|exact|, floor): a function that crosses zero


A = 0.7  # the first argument of the two-argument functions
# 2**EXP_SCALED_BITS exp(x) holds its promise down to where exp(x) rounds to 0
_LOG_SMALLEST = {np.float32: -103.972, np.float64: -745.133}
_EXP_SWITCHES = (-745.13, -708.4, -103.97, -87.34, 0.0)
FUNCTIONS = {
    "exp": Function(mpmath.exp, (-math.inf, math.inf), _EXP_SWITCHES + (88.72, 709.78), (1, 1)),
    "exp_nonpositive": Function(mpmath.exp, (-math.inf, 0.0), _EXP_SWITCHES, (1, 1)),
    "exp_nonpositive_scaled": Function(lambda x: EXP_SCALE * mpmath.exp(x), (None, 0.0), _EXP_SWITCHES, (1, 1)),
    "exp_times": Function(lambda x: A * mpmath.exp(x), (-math.inf, 0.0), _EXP_SWITCHES, (1.5, 1.5)),
    "expm1": Function(mpmath.expm1, (-math.inf, math.inf), (-0.5, 0.5, -1e-5, 1e-5, 88.72, 709.78), (1, 1)),
    "tanh": Function(mpmath.tanh, (-math.inf, math.inf), (0.5, 0.55, 0.625, 1.0, 9.0, 19.1), (2, 2)),
    "log": Function(mpmath.log, (0.0, math.inf), (1.0, 0.75, 1.5, 2.0), (1, 1)),
    "log1p": Function(mpmath.log1p, (-1.0, math.inf), (-0.5, -0.25, 0.5, 1.0, 1e-8), (1.5, 1)),
    "normal_cdf_times": Function(lambda x: A * _ncdf(x), (-math.inf, math.inf), (-38.5, -15.0, -5.0, -0.6, 0.0, 8.3),
                                 (2, 3)),
    # gelu' = Phi(x) + x phi(x) crosses zero at x = -0.75: the accuracy sweep's mixed bound
    "normal_cdf_plus_x_pdf": Function(lambda x: _ncdf(x) + x * _npdf(x), (-math.inf, math.inf),
                                      (-38.5, -15.0, -5.0, -0.7518, -0.6, 0.0, 8.3), (2, 2), floor=0.25),
}
BINARY = {"exp_times", "normal_cdf_times"}


def _sample(dtype, lo: float, hi: float, switches, n: int = 600) -> np.ndarray:
    rng = np.random.default_rng(0)
    info = np.finfo(dtype)
    uint = np.uint32 if dtype == np.float32 else np.uint64
    bits = rng.integers(0, np.iinfo(uint).max, size=n, dtype=uint, endpoint=True).view(dtype)
    near = []
    for s in switches:
        v = np.array(s, dtype)
        for _ in range(3):
            near += [v]
            v = np.nextafter(v, np.array(np.inf, dtype))
        v = np.array(s, dtype)
        for _ in range(3):
            v = np.nextafter(v, np.array(-np.inf, dtype))
            near += [v]
        near += list(np.linspace(s - 0.01 * max(1, abs(s)), s + 0.01 * max(1, abs(s)), 20).astype(dtype))
    tiny = [info.smallest_subnormal, info.tiny, info.tiny / 3, info.smallest_subnormal * 7]
    extremes = [0.0, -0.0, 1.0, -1.0, 0.5, info.max, -info.max, *tiny, *[-t for t in tiny]]
    with np.errstate(over="ignore"):
        x = np.concatenate([bits, np.array(near + extremes, dtype), np.linspace(max(lo, -50), min(hi, 50), 200,
                                                                                dtype=dtype)]).astype(dtype)
    x = x[np.isfinite(x) & (x >= lo) & (x <= hi)]
    return np.unique(x)


def _ulp_errors(result: np.ndarray, exact: list, floor: float = 0.0) -> np.ndarray:
    dtype = result.dtype
    info = np.finfo(dtype)
    errors = np.empty(result.size)
    for i, (c, v) in enumerate(zip(result.tolist(), exact)):
        with np.errstate(over="ignore"):
            rounded = float(dtype.type(float(v)))  # inf beyond the dtype's range
        if not math.isfinite(rounded) or not math.isfinite(c):
            errors[i] = 0.0 if c == rounded else math.inf
            continue
        spacing = max(float(np.spacing(dtype.type(max(abs(rounded), floor)))), float(info.smallest_subnormal))
        errors[i] = float(abs(mpmath.mpf(c) - v)) / spacing
    return errors


_COMPILED: dict = {}


def _compiled(name: str):
    """The _vmath implementation of ``name``, in a loop compiled with Numba."""
    if name not in _COMPILED:
        fn = getattr(_scalar, name)
        if name in BINARY:
            @njit(error_model="numpy")
            def run(x, out):
                for i in range(x.shape[0]):
                    out[i] = fn(_like(x[i], A), x[i])
        else:
            @njit(error_model="numpy")
            def run(x, out):
                for i in range(x.shape[0]):
                    out[i] = fn(x[i])
        _COMPILED[name] = run
    return _COMPILED[name]


_like = _scalar.like


def _python(name: str, x: np.ndarray) -> np.ndarray:
    fn = getattr(_scalar, name)
    with np.errstate(all="ignore"):
        return np.array([fn(x.dtype.type(A), v) if name in BINARY else fn(v) for v in x], x.dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_against_mpmath_in_ulps(name, dtype):
    fn = FUNCTIONS[name]
    lo, hi = fn.domain
    x = _sample(dtype, _LOG_SMALLEST[dtype] if lo is None else lo, hi, fn.switches)
    exact = [fn.exact(mpmath.mpf(float(v))) for v in x]
    compiled = np.empty_like(x)
    _compiled(name)(x, compiled)
    bound = fn.bound[dtype == np.float64]
    for label, result in (("_vmath", compiled), ("_scalar", _python(name, x))):
        errors = _ulp_errors(result, exact, fn.floor)
        worst = int(np.argmax(errors))
        assert errors.max() <= bound, f"{label}.{name}({x[worst]!r}) = {result[worst]!r}: {errors.max():.2f} ULP"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_special_values_match_the_plain_python_bodies(name, dtype):
    # NaN gives NaN; the infinities and signed zeros (inputs and results) are the same in both
    lo, hi = FUNCTIONS[name].domain
    lo = -math.inf if lo is None else lo
    x = np.array([v for v in (-math.inf, math.inf, math.nan, 0.0, -0.0) if math.isnan(v) or lo <= v <= hi], dtype)
    compiled = np.empty_like(x)
    with np.errstate(all="ignore"):
        _compiled(name)(x, compiled)
    oracle = _python(name, x)
    np.testing.assert_array_equal(np.isnan(compiled), np.isnan(oracle))
    exact_values = np.isinf(oracle) | (oracle == 0)
    np.testing.assert_array_equal(compiled[exact_values], oracle[exact_values])
    np.testing.assert_array_equal(np.signbit(compiled[exact_values]), np.signbit(oracle[exact_values]))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_fma_and_maximum_are_exact(dtype):
    rng = np.random.default_rng(1)
    a, b, c = (rng.standard_normal(300).astype(dtype) * s for s in (1.0, 3.0, 2.0))

    @njit
    def run(a, b, c, out_fma, out_max):
        for i in range(a.shape[0]):
            out_fma[i] = _scalar.fma(a[i], b[i], c[i])
            out_max[i] = _scalar.maximum(a[i], b[i])

    out_fma, out_max = np.empty_like(a), np.empty_like(a)
    run(a, b, c, out_fma, out_max)
    # the exact a*b + c rounded once (float32: a float64 product is exact, the sum rounds twice at worst)
    exact = [float(mpmath.mpf(float(p)) * float(q) + float(r)) for p, q, r in zip(a, b, c)]
    np.testing.assert_array_equal(out_fma, np.array(exact).astype(dtype))
    np.testing.assert_array_equal(out_fma, [_scalar.fma(p, q, r) for p, q, r in zip(a, b, c)])
    np.testing.assert_array_equal(out_max, np.maximum(a, b))
    nan = dtype(np.nan)
    x = np.array([nan, 1.0, nan], dtype)
    y = np.array([1.0, nan, nan], dtype)
    run(x, y, x, out_fma[:3], out_max[:3])
    assert np.isnan(out_max[:3]).all() and all(math.isnan(_scalar.maximum(p, q)) for p, q in zip(x, y))


def test_generated_series_keep_float32_constants():
    """The unrolled series write each coefficient as its own type, as NumPy 1.x's repr does
    not (it writes np.float32(0.5) as 0.5, which Numba types as float64)."""
    from fastact import _vmath

    c = np.float32(0.05589358709462721)
    text = _vmath._literal(c)
    assert text.startswith("np.float32(")
    value = eval(text, {"np": np})  # the literal just written
    assert type(value) is np.float32 and value == c
    assert _vmath._literal(0.25) == "0.25"


def test_chebyshev_series_split_keeps_the_sum():
    """erfc's series: Clenshaw's recurrence over its first terms, the rest as monomials
    (converted exactly, then rounded) by Estrin's scheme.  The conversion gives T_k's own
    monomials, and the compiled series stays within 1.5 eps of the Chebyshev sum taken
    in mpmath (NumPy's chebval, Clenshaw's recurrence throughout, was 1.18 eps off)."""
    from fastact import _vmath
    from fastact._scalar import ERFC_CHEBYSHEV

    for k in range(10):
        unit = (0.0,) * k + (1.0,)
        assert _vmath._chebyshev_to_monomial(unit) == tuple(np.polynomial.chebyshev.cheb2poly(unit))
    series = njit(lambda u: _vmath._erfc_series(u))
    u = np.linspace(-1.0, 1.0, 801)
    exact = [mpmath.fsum(mpmath.mpf(c) * mpmath.chebyt(k, mpmath.mpf(float(v))) for k, c in enumerate(ERFC_CHEBYSHEV))
             for v in u]
    errors = [float(abs(mpmath.mpf(series(float(v))) - e)) / 2.0**-52 for v, e in zip(u, exact)]
    assert max(errors) <= 1.5, f"{max(errors):.2f} eps at u = {u[int(np.argmax(errors))]!r}"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_order_keys_order_values_and_every_nan_above_inf(dtype):
    """The row maxima take the maximum of order_key's integers: keys in the order of
    the values (-0.0 just below 0.0), every NaN (of either sign) above +inf, and
    from_order_key giving each value back; compiled and in Python alike."""
    info = np.finfo(dtype)
    special = np.array([np.inf, -np.inf, 0.0, -0.0, info.smallest_subnormal, -info.smallest_subnormal, info.tiny,
                        info.max, -info.max, 1.0, -1.0], dtype)
    values = np.concatenate([special, np.random.default_rng(2).standard_normal(500).astype(dtype) * 1e3])
    nans = np.array([np.nan, -np.nan], dtype)
    itype = np.int32 if dtype == np.float32 else np.int64

    @njit
    def run(x, keys, back):
        for i in range(x.shape[0]):
            keys[i] = _scalar.order_key(x[i])
            back[i] = _scalar.from_order_key(keys[i])

    x = np.concatenate([values, nans])
    keys, back = np.empty(x.size, itype), np.empty_like(x)
    run(x, keys, back)
    np.testing.assert_array_equal(keys, [_scalar.order_key(v) for v in x])
    np.testing.assert_array_equal(back[:-2], values)
    np.testing.assert_array_equal(np.signbit(back[:-2]), np.signbit(values))
    assert np.isnan(back[-2:]).all() and all(math.isnan(_scalar.from_order_key(k)) for k in keys[-2:])
    assert keys[-1] == keys[-2] > keys[0]  # both NaNs above +inf
    by_key = values[np.argsort(keys[:-2], kind="stable")]
    assert (np.diff(by_key) >= 0).all()
    assert _scalar.order_key(dtype(-0.0)) < _scalar.order_key(dtype(0.0))


_QUOTIENT_CASES = [(0.7, 0.0), (0.7, 5.3), (3.0, -40.0), (1e-3, 2.5), (123.4, 1e20), (2.0**-60, 1.0), (2.0**60, -3e25),
                   (0.013, 2.0**99)]


@njit(error_model="numpy")
def _exp_of_quotient_loop(a, b, t, out):
    r = _like(t, 1.0) / t
    for i in range(a.shape[0]):
        out[i] = _scalar.exp_of_quotient(a[i], b, t, r)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(("t", "b"), _QUOTIENT_CASES)
def test_exp_of_quotient_against_mpmath_in_ulps(dtype, t, b):
    # exp((a - b) / t) for a <= b with neither a - b nor the quotient rounded: softmax's
    # temperature=, over quotients from 0 down past exp's clamp (the rows' a near their
    # maximum b, and far below it), every t and |b| that quotient_fuses lets through
    t, b = dtype(t), dtype(b)
    z = -np.concatenate([np.geomspace(1e-6, 120.0, 300), np.linspace(0.0, 110.0, 300), np.linspace(100, 800, 60)])
    with np.errstate(over="ignore"):
        a = np.unique(np.minimum((b + z * t).astype(dtype), b))
    exact = [mpmath.exp((mpmath.mpf(float(v)) - mpmath.mpf(float(b))) / mpmath.mpf(float(t))) for v in a]
    compiled = np.empty_like(a)
    _exp_of_quotient_loop(a, b, t, compiled)
    python = np.array([_scalar.exp_of_quotient(v, b, t, None) for v in a], dtype)
    for label, result in (("_vmath", compiled), ("_scalar", python)):
        errors = _ulp_errors(result, exact)
        worst = int(np.argmax(errors))
        assert errors.max() <= 1.5, f"{label}: a = {a[worst]!r}: {result[worst]!r}, {errors.max():.2f} ULP"
    specials = np.array([-np.inf, np.nan, b], dtype)
    out = np.empty_like(specials)
    _exp_of_quotient_loop(specials, b, t, out)
    np.testing.assert_array_equal(out, [0.0, np.nan, 1.0])
    _exp_of_quotient_loop(np.array([1.0], dtype), dtype(np.nan), t, out[:1])
    assert np.isnan(out[0])
