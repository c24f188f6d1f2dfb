"""Vectorisable scalar math for Numba kernels.

Numba has no SIMD math library since 0.62: ``math.exp`` in a loop becomes a
scalar libm call and the loop does not vectorise.  The functions here are plain
arithmetic (range reduction, a polynomial, the 2**k scaling by integer bit
operations), so LLVM vectorises loops that call them to whatever the host has
(SSE2, AVX2, AVX-512).

Every function is generic over float32 and float64 through ``@overload``; the
float32 version computes in float32 arithmetic, so float32 loops keep twice
the lanes of float64 ones.

The public names are the plain-Python functions of ``_scalar`` (so formulas
can be read and run without Numba); this module registers their Numba
implementations.  Importing it compiles nothing.
"""

from __future__ import annotations

import decimal
import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload, register_jitable

from ._config import STRICT_MATH
from ._scalar import exp, exp_nonpositive, fma, like, maximum

__all__ = ["exp", "exp_nonpositive", "fma", "like", "maximum", "scalar_function"]

_JIT_OPTIONS = {"fastmath": set(STRICT_MATH), "error_model": "numpy"}


def _llvm_float(ty: types.Float) -> ir.Type:
    return ir.FloatType() if ty.bitwidth == 32 else ir.DoubleType()


def _same_float_types(*tys) -> bool:
    return isinstance(tys[0], types.Float) and all(t == tys[0] for t in tys)


@intrinsic
def _fma(typingctx, a, b, c):
    """``a*b + c`` with one rounding (``llvm.fma``)."""
    if not _same_float_types(a, b, c):
        return None

    def codegen(context, builder, sig, args):
        lty = _llvm_float(sig.return_type)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(lty, [lty] * 3), f"llvm.fma.{lty.intrinsic_name}"
        )
        return builder.call(fn, args)

    return a(a, b, c), codegen


@intrinsic
def _maximum(typingctx, a, b):
    """NaN-propagating maximum (``llvm.maximum``); vectorises as a reduction."""
    if not _same_float_types(a, b):
        return None

    def codegen(context, builder, sig, args):
        lty = _llvm_float(sig.return_type)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(lty, [lty] * 2), f"llvm.maximum.{lty.intrinsic_name}"
        )
        return builder.call(fn, args)

    return a(a, b), codegen


@intrinsic
def _scale_by_pow2(typingctx, p, shifted_k):
    """``p * 2**k`` where ``shifted_k = k + 1.5 * 2**(mantissa bits)``.

    k is read from the low mantissa bits of ``shifted_k`` by a bitcast (no
    float-to-int conversion, which would be undefined for NaN).  The power is
    applied as two halves so that k down to the subnormal range and up to
    overflow needs no special case: the first product is exact and the second
    rounds once, to a subnormal, zero or infinity where the result is one.
    """
    if not _same_float_types(p, shifted_k):
        return None
    width = p.bitwidth
    mant = 23 if width == 32 else 52
    bias = 127 if width == 32 else 1023
    shifter_bits = int(np.array(1.5 * 2.0**mant, dtype=f"f{width // 8}").view(f"i{width // 8}"))

    def codegen(context, builder, sig, args):
        value, shifted = args
        ity = ir.IntType(width)
        k = builder.sub(builder.bitcast(shifted, ity), ity(shifter_bits))
        k1 = builder.ashr(k, ity(1))
        k2 = builder.sub(k, k1)
        lty = _llvm_float(sig.return_type)

        def pow2(kk):
            return builder.bitcast(builder.shl(builder.add(kk, ity(bias)), ity(mant)), lty)

        return builder.fmul(builder.fmul(value, pow2(k1)), pow2(k2))

    return p(p, shifted_k), codegen


@overload(like, jit_options=_JIT_OPTIONS)
def _like(x, value):
    if x == types.float32:
        return lambda x, value: np.float32(value)
    if x == types.float64:
        return lambda x, value: np.float64(value)
    return None


# exp(x) = 2**k * exp(r), k = round(x / ln 2), |r| <= ln(2) / 2, and
# exp(r) = 1 + r + r**2 * q(r).  float32: q of degree 4 fitted for least
# maximum relative error (0.06 ULP from the polynomial itself); float64: Taylor
# to degree 13 (0.02 ULP).  The measured totals are in the README.
with decimal.localcontext(decimal.Context(prec=50)) as _ctx:
    _LN2 = _ctx.ln(decimal.Decimal(2))

_EXP_Q_FLOAT32 = (0.0013814538, 0.008368745, 0.04166839, 0.16666521, 0.49999994)
_EXP_Q_FLOAT64 = tuple(1.0 / math.factorial(k) for k in range(13, 1, -1))


def _exp_constants(dtype, lo, hi, q_coefs):
    ftype = np.dtype(dtype).type
    mant = np.finfo(dtype).nmant
    ln2_hi = ftype(float(_LN2))
    ln2_lo = ftype(float(_LN2 - decimal.Decimal(float(ln2_hi))))
    coefs = tuple(ftype(c) for c in q_coefs)
    return (ftype(lo), ftype(hi), ftype(float(1 / _LN2)), ftype(1.5 * 2.0**mant), ln2_hi, ln2_lo, coefs)


# Clamps: below lo the result is 0 (exp(lo) is under half the smallest
# subnormal), above hi it is inf.  Clamping by comparison lets NaN through.
_E32 = _exp_constants(np.float32, -104.0, 89.0, _EXP_Q_FLOAT32)
_E64 = _exp_constants(np.float64, -746.0, 710.0, _EXP_Q_FLOAT64)


def _make_exp(constants, nonpositive: bool):
    lo, hi, log2e, shifter, ln2_hi, ln2_lo, coefs = constants
    one = type(lo)(1.0)
    scale = _scale_nonpositive if nonpositive else _scale_by_pow2

    def exp_impl(x):
        xc = x
        if xc < lo:
            xc = lo
        if not nonpositive and xc > hi:
            xc = hi
        shifted_k = _fma(xc, log2e, shifter)
        k = shifted_k - shifter
        r = _fma(-k, ln2_hi, xc)
        r = _fma(-k, ln2_lo, r)
        p = coefs[0]
        for c in coefs[1:]:
            p = _fma(p, r, c)
        p = _fma(p, r, one)
        p = _fma(p, r, one)
        return scale(p, shifted_k)

    return exp_impl


@intrinsic
def _scale_nonpositive(typingctx, p, shifted_k):
    """``p * 2**k`` for k <= 0 (see ``_scale_by_pow2``), cheaper: ``p * 2**(k + B)``
    is exact and normal for every k the clamp allows, and one multiply by
    ``2**-B`` then rounds once, into the subnormals where the result is one."""
    if not _same_float_types(p, shifted_k):
        return None
    width = p.bitwidth
    mant, bias, offset = (23, 127, 64) if width == 32 else (52, 1023, 512)
    np_float = np.float32 if width == 32 else np.float64
    shifter_bits = int(np.array(1.5 * 2.0**mant, dtype=np_float).view(f"i{width // 8}"))
    undo = float(2.0**-offset)

    def codegen(context, builder, sig, args):
        value, shifted = args
        ity = ir.IntType(width)
        lty = _llvm_float(sig.return_type)
        exponent = builder.add(builder.bitcast(shifted, ity), ity(bias + offset - shifter_bits))
        pow2 = builder.bitcast(builder.shl(exponent, ity(mant)), lty)
        return builder.fmul(builder.fmul(value, pow2), lty(undo))

    return p(p, shifted_k), codegen


_EXP = {
    (types.float32, False): _make_exp(_E32, False),
    (types.float64, False): _make_exp(_E64, False),
    (types.float32, True): _make_exp(_E32, True),
    (types.float64, True): _make_exp(_E64, True),
}


@overload(exp, jit_options=_JIT_OPTIONS)
def _exp(x):
    return _EXP.get((x, False))


@overload(exp_nonpositive, jit_options=_JIT_OPTIONS)
def _exp_nonpositive(x):
    return _EXP.get((x, True))


@overload(fma, jit_options=_JIT_OPTIONS)
def _fma_overload(a, b, c):
    if _same_float_types(a, b, c):
        return lambda a, b, c: _fma(a, b, c)
    return None


@overload(maximum, jit_options=_JIT_OPTIONS)
def _maximum_overload(a, b):
    if _same_float_types(a, b):
        return lambda a, b: _maximum(a, b)
    return None


def scalar_function(fn):
    """Make a scalar formula callable from Numba kernels (compiled only when used).

    The formula stays a plain module-level Python function, so the kernels
    that close over it have a closure that pickles by reference and their
    on-disk cache entries are found again by the next process.
    """
    register_jitable(**_JIT_OPTIONS)(fn)
    return fn
