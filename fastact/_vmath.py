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

import contextlib
import decimal
import functools
import itertools
import math
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

import numpy as np
import llvmlite.binding as _llvm  # type: ignore[import-untyped]
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.compiler_lock import global_compiler_lock
from numba.core import ir_utils as _numba_ir_utils
from numba.extending import intrinsic as _intrinsic
from numba.extending import overload as _numba_overload
from numba.extending import register_jitable

from ._config import INTERLEAVE, LOOP_MATH, STRICT_MATH, VECTOR_WIDTH
from ._scalar import (ERFC_CHEBYSHEV, EXP_SCALED_BITS, EXP_TIMES_CLAMP, EXP_TIMES_SCALED_BITS, PHI_TAIL32, PHI_TAIL32_A,
                      PHI_TAIL32_W_MAX, STREAM_ALIGN, borrowed, exp, exp_nonpositive, exp_nonpositive_and_times,
                      exp_nonpositive_scaled, exp_nonpositive_times_scaled, exp_of_quotient, exp_times, exp_times_clamp,
                      exp_times_scale, expm1, fma, from_order_key, full_width, like, log, log1p, maximum,
                      normal_cdf_plus_x_pdf, normal_cdf_times, order_key, single_precision, stream_fence, stream_store,
                      tanh)

__all__ = ["exp", "exp_nonpositive", "exp_nonpositive_and_times", "exp_nonpositive_scaled",
           "exp_nonpositive_times_scaled", "exp_of_quotient", "exp_times", "exp_times_clamp", "exp_times_scale", "expm1", "fma",
           "from_order_key", "like", "log", "log1p", "maximum", "normal_cdf_plus_x_pdf", "normal_cdf_times", "order_key",
           "scalar_function", "tanh"]

# Any for a type checker: Numba's stubs check these against a TypedDict of their own.
_JIT_OPTIONS: Any = {"fastmath": set(STRICT_MATH), "error_model": "numpy"}
# Helpers are separate Numba functions that LLVM always inlines (see
# scalar_function): each is typed once per signature, and keeps its own flags.
_INLINE_OPTIONS: Any = dict(_JIT_OPTIONS, forceinline=True)
# Numba refuses an @overload implementation whose parameters differ from its typing
# function's, annotations included, unless strict=False: the typing functions here are
# annotated for a type checker, and their implementations (lambdas, generated code,
# functions made by factories) are compared as they come.
overload = functools.partial(_numba_overload, strict=False)
# Numba's stubs type a call of an @intrinsic as a call of its typing function
# (typingctx first); jitted code calls it with the values alone.
intrinsic: Callable[[Callable[..., Any]], Any] = _intrinsic


def _llvm_float(ty: types.Float) -> ir.Type:
    return ir.FloatType() if ty.bitwidth == 32 else ir.DoubleType()


def _same_float_types(*tys: Any) -> bool:
    return isinstance(tys[0], types.Float) and all(t == tys[0] for t in tys)


def _llvm_call(name: str, n_args: int) -> Callable[..., Any]:
    """The codegen of a call to LLVM's float intrinsic ``llvm.NAME.f32/f64``."""

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        lty = _llvm_float(sig.return_type)
        fn = cgutils.get_or_insert_function(  # type: ignore[no-untyped-call]
            builder.module, ir.FunctionType(lty, [lty] * n_args), f"llvm.{name}.{lty.intrinsic_name}"
        )
        return builder.call(fn, args)

    return codegen


@intrinsic
def _fma(typingctx: Any, a: Any, b: Any, c: Any) -> Any:
    """``a*b + c`` with one rounding (``llvm.fma``)."""
    return (a(a, b, c), _llvm_call("fma", 3)) if _same_float_types(a, b, c) else None


@intrinsic
def _maximum(typingctx: Any, a: Any, b: Any) -> Any:
    """NaN-propagating maximum (``llvm.maximum``); vectorises as a reduction."""
    return (a(a, b), _llvm_call("maximum", 2)) if _same_float_types(a, b) else None


@intrinsic
def _order_key(typingctx: Any, x: Any) -> Any:
    """``_scalar.order_key``: the bits of x, its magnitude bits flipped where the sign is
    set, and the largest key for every NaN."""
    if not isinstance(x, types.Float):
        return None
    width = x.bitwidth
    low = 2 ** (width - 1) - 1
    inf_bits = int(np.array(np.inf, f"f{width // 8}").view(f"i{width // 8}"))

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        ity = ir.IntType(width)
        bits = builder.bitcast(args[0], ity)
        flip = builder.and_(builder.ashr(bits, ity(width - 1)), ity(low))
        nan = builder.icmp_signed(">", builder.and_(bits, ity(low)), ity(inf_bits))
        return builder.select(nan, ity(low), builder.xor(bits, flip))

    return (types.int32 if width == 32 else types.int64)(x), codegen


@intrinsic
def _from_order_key(typingctx: Any, k: Any) -> Any:
    """``_scalar.from_order_key``: the key's magnitude bits flipped back where it is negative."""
    if k not in (types.int32, types.int64):
        return None
    width = 32 if k == types.int32 else 64

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        ity = ir.IntType(width)
        flip = builder.and_(builder.ashr(args[0], ity(width - 1)), ity(2 ** (width - 1) - 1))
        return builder.bitcast(builder.xor(args[0], flip), _llvm_float(sig.return_type))

    return (types.float32 if width == 32 else types.float64)(k), codegen


@contextlib.contextmanager
def interleaved() -> Iterator[None]:
    """Numba compiles what it compiles in this block with ``_config.INTERLEAVE``
    vectors per loop iteration.  LLVM takes the count only as a process-wide option
    (-force-vector-interleave), so it is set while Numba's compiler lock is held and
    put back to LLVM's default (0: its cost model decides) before the lock is released:
    Numba functions compiled outside the block, the user's own, keep LLVM's choice (a
    library helper that Numba first compiles inside it, and keeps, keeps its count)."""
    if not INTERLEAVE:
        yield
        return
    with global_compiler_lock:
        _llvm.set_option("fastact", f"-force-vector-interleave={INTERLEAVE}")
        try:
            yield
        finally:
            _llvm.set_option("fastact", "-force-vector-interleave=0")


@intrinsic
def _mark_full_width(typingctx: Any) -> Any:
    """Marks the LLVM function being built with "prefer-vector-width" =
    ``_config.VECTOR_WIDTH``, so that its loops vectorise at that width where the
    CPU has it.  Emits no instruction."""

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        if VECTOR_WIDTH != "native":
            # llvmlite's attribute set admits only its known names; LLVM reads this
            # string attribute as clang's -mprefer-vector-width writes it
            set.add(builder.function.attributes, f'"prefer-vector-width"="{VECTOR_WIDTH}"')
        return context.get_dummy_value()

    return types.none(), codegen


@intrinsic
def _single_precision(typingctx: Any, x: Any) -> Any:
    """A constant: whether array x holds float32."""
    if not isinstance(x, types.Array):
        return None
    value = x.dtype == types.float32

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        return context.get_constant(types.boolean, value)

    return types.boolean(x), codegen


@overload(single_precision, jit_options=_JIT_OPTIONS)
def _single_precision_overload(x: Any) -> Any:
    return (lambda x: _single_precision(x)) if isinstance(x, types.Array) else None


@intrinsic
def _borrowed(typingctx: Any, a: Any) -> Any:
    """The array a without its memory's reference count (a NULL meminfo): views of it
    (a row, a block) then cost no atomic increment and decrement (NRT_incref,
    NRT_decref) each.  For arrays that outlive every use of the result: a kernel's
    arguments within the kernel."""
    if not isinstance(a, types.Array):
        return None

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        src = context.make_array(sig.args[0])(context, builder, args[0])
        dst = context.make_array(sig.return_type)(context, builder)
        context.populate_array(dst, data=src.data, shape=src.shape, strides=src.strides, itemsize=src.itemsize,
                               meminfo=None)
        return dst._getvalue()

    return a(a), codegen


@overload(borrowed, jit_options=_JIT_OPTIONS)
def _borrowed_overload(a: Any) -> Any:
    return (lambda a: _borrowed(a)) if isinstance(a, types.Array) else None


def _borrowed_aliases(lhs: str, args: Any, alias_map: Any, arg_aliases: Any) -> None:
    """Numba's alias analysis: borrowed(a) is a, so writes to it are writes to a.  Without
    this a parallel loop's writes to a borrowed array that nothing reads after the loop
    (a loss kernel's losses[r] = ...) were removed as dead code."""
    _numba_ir_utils._add_alias(lhs, args[0].name, alias_map, arg_aliases)  # type: ignore[no-untyped-call]


_numba_ir_utils.alias_func_extensions[(borrowed.__name__, borrowed.__module__)] = _borrowed_aliases


@intrinsic
def _stream_store(typingctx: Any, dst: Any, start: Any, src: Any, n: Any) -> Any:
    """stream_store's loop: n // W vectors of W = STREAM_ALIGN / itemsize elements, loaded
    from src (any alignment) and stored at dst[start] on with LLVM's !nontemporal
    stores, aligned (as stream_store requires)."""
    if not (isinstance(dst, types.Array) and isinstance(src, types.Array) and dst.dtype == src.dtype
            and isinstance(dst.dtype, types.Float) and isinstance(start, types.Integer)
            and isinstance(n, types.Integer)):
        return None
    sig = types.void(dst, types.intp, src, types.intp)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        dst_v, first, src_v, count = args
        itemsize = sig.args[0].dtype.bitwidth // 8
        width = STREAM_ALIGN // itemsize
        vector = ir.VectorType(_llvm_float(sig.args[0].dtype), width).as_pointer()
        to = builder.gep(context.make_array(sig.args[0])(context, builder, dst_v).data, [first])
        frm = context.make_array(sig.args[2])(context, builder, src_v).data
        nontemporal = builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)])
        with cgutils.for_range(builder, builder.sdiv(count, count.type(width))) as loop:
            offset = builder.mul(loop.index, count.type(width))
            value = builder.load(builder.bitcast(builder.gep(frm, [offset]), vector), align=itemsize)
            store = builder.store(value, builder.bitcast(builder.gep(to, [offset]), vector), align=STREAM_ALIGN)
            store.set_metadata("nontemporal", nontemporal)
        return context.get_dummy_value()

    return sig, codegen


@overload(stream_store, jit_options=_JIT_OPTIONS)
def _stream_store_overload(dst: Any, start: Any, src: Any, n: Any) -> Any:
    return lambda dst, start, src, n: _stream_store(dst, start, src, n)


@intrinsic
def _stream_fence(typingctx: Any) -> Any:
    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return types.void(), codegen


@overload(stream_fence, jit_options=_JIT_OPTIONS)
def _stream_fence_overload() -> Any:
    return lambda: _stream_fence()


@overload(full_width, inline="always")  # inlined by Numba: the mark lands in the caller's function
def _full_width() -> Any:
    return lambda: _mark_full_width()


@intrinsic
def _scale_by_pow2(typingctx: Any, p: Any, shifted_k: Any) -> Any:
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

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        value, shifted = args
        ity = ir.IntType(width)
        k = builder.sub(builder.bitcast(shifted, ity), ity(shifter_bits))
        k1 = builder.ashr(k, ity(1))
        k2 = builder.sub(k, k1)
        lty = _llvm_float(sig.return_type)

        def pow2(kk: Any) -> Any:
            return builder.bitcast(builder.shl(builder.add(kk, ity(bias)), ity(mant)), lty)

        return builder.fmul(builder.fmul(value, pow2(k1)), pow2(k2))

    return p(p, shifted_k), codegen


@overload(like, jit_options=_JIT_OPTIONS)
def _like(x: Any, value: Any) -> Any:
    if x == types.float32:
        return lambda x, value: np.float32(value)
    if x == types.float64:
        return lambda x, value: np.float64(value)
    return None


# exp(x) = 2**k * exp(r), k = round(x / ln 2), |r| <= ln(2) / 2, and
# exp(r) = 1 + r + r**2 * q(r).  float32: q of degree 4 fitted for least
# maximum relative error (0.06 ULP from the polynomial itself); float64: q of
# degree 10, near-minimax (tools/fit_exp.py: 0.01 ULP; the Taylor polynomial of
# degree 13 it replaced gave 0.04 and cost two more FMAs).  The measured totals
# are in the README.
with decimal.localcontext(decimal.Context(prec=50)) as _ctx:
    _LN2 = _ctx.ln(decimal.Decimal(2))

_EXP_Q_FLOAT32 = (0.0013814538, 0.008368745, 0.04166839, 0.16666521, 0.49999994)
_EXP_Q_FLOAT64 = (2.0911236630261545e-09, 2.510038549551032e-08, 2.755728296954995e-07, 2.7557268459997064e-06,
                  2.4801587317144498e-05, 0.00019841269863053618, 0.0013888888888886552, 0.008333333333330062,
                  0.041666666666666664, 0.16666666666666669, 0.5)


def _literal(c: Any) -> str:
    """c as source text of its own type: NumPy 1.x writes np.float32(0.5) as 0.5, which
    Numba would read as a float64 constant (and type the series in float64)."""
    return f"np.{type(c).__name__}({float(c)!r})" if isinstance(c, np.floating) else repr(c)


def _unrolled_series(coefs: Any, horner_terms: int | None = None) -> Any:
    """sum c_k u**k (``coefs`` lowest degree first; they keep their type: float32 ones
    keep a float32 evaluation), written out term by term (Numba turns a loop over a
    tuple into indexed loads that block vectorisation): its lowest ``horner_terms``
    terms (all by default) by Horner's rule, the rest by Estrin's scheme (pairs, then
    pairs of pairs with u**2, u**4, ...).  Estrin's shorter
    dependency chain ran float64 exp 7 % faster than Horner's rule alone (znver5),
    where a chain of a dozen FMAs left the vector units waiting; its extra roundings
    land in the high terms, scaled down by u**k before they reach the low ones."""
    low = min(len(coefs) - 1, len(coefs) if horner_terms is None else horner_terms)
    high = [_literal(c) for c in coefs[low:]]  # by Estrin's scheme, lowest first
    lines = ["def series(u):"]
    if len(high) == 1:
        lines.append(f"    s = {high[0]}")
    else:
        terms = [f"_fma({high[i + 1]}, u, {high[i]})" if i + 1 < len(high) else high[i] for i in range(0, len(high), 2)]
        lines.append("    u2 = u * u")
        power, level = 2, 0
        while len(terms) > 1:
            names = []
            for i in range(0, len(terms), 2):
                name = f"t{level}_{i // 2}"
                lines.append(f"    {name} = _fma({terms[i + 1]}, u{power}, {terms[i]})" if i + 1 < len(terms)
                             else f"    {name} = {terms[i]}")
                names.append(name)
            terms, level = names, level + 1
            if len(terms) > 1:
                lines.append(f"    u{2 * power} = u{power} * u{power}")
                power *= 2
        lines.append(f"    s = {terms[0]}")
    lines += [f"    s = _fma(s, u, {_literal(c)})" for c in coefs[low - 1::-1]] if low else []
    lines.append("    return s")
    namespace = {"_fma": _fma, "np": np}
    exec("\n".join(lines), namespace)  # noqa: S102 - generated from the constant coefficients
    return register_jitable(**_INLINE_OPTIONS)(namespace["series"])


def _exp_constants(dtype: Any, lo: Any, hi: Any, q_coefs: Any) -> Any:
    ftype = np.dtype(dtype).type
    mant = np.finfo(dtype).nmant
    ln2_hi = ftype(float(_LN2))
    ln2_lo = ftype(float(_LN2 - decimal.Decimal(float(ln2_hi))))
    coefs = tuple(ftype(c) for c in q_coefs)
    return (ftype(lo), ftype(hi), ftype(float(1 / _LN2)), ftype(1.5 * 2.0**mant), ln2_hi, ln2_lo, coefs)


# Clamps: below lo the result is 0 (exp(lo) is under half the smallest
# subnormal), above hi it is inf.  Clamping by comparison lets NaN through.
# float32's lo is low enough that 8 exp(lo) rounds to 0 too (for the factors
# exp_nonpositive_scaled feeds); float64's cannot go lower with B = 56 (2**(k + B)
# is built from its exponent bits), so there 8 exp(x) for x just under lo gives 0
# where it would be one or two subnormal spacings.
_E32 = _exp_constants(np.float32, -110.0, 89.0, _EXP_Q_FLOAT32)
_E64 = _exp_constants(np.float64, -746.0, 710.0, _EXP_Q_FLOAT64)


def _exp_q_series(coefs: Any) -> Any:
    """q(r) of exp(r) = 1 + r + r**2 q(r): float64's by Estrin's scheme down to its
    last term (1/2, exact), float32's short one by Horner's rule."""
    return _unrolled_series(coefs[::-1], 1 if isinstance(coefs[0], np.float64) else None)


@register_jitable(**_INLINE_OPTIONS)
def _cody_waite(x: Any, log2e: Any, shifter: Any, ln2_hi: Any, ln2_lo: Any) -> Any:
    """Range reduction for exp: ``(r, k, shifted_k)`` with k = round(x / ln 2)
    (``shifted_k`` = k + shifter, its bits hold k) and r = x - k ln 2, taken off in
    two FMA steps (ln 2 = ln2_hi + ln2_lo, k ln2_hi exact)."""
    shifted_k = _fma(x, log2e, shifter)
    k = shifted_k - shifter
    r = _fma(-k, ln2_lo, _fma(-k, ln2_hi, x))
    return r, k, shifted_k


# exp_times' lower clamps (float64, float32): below them a * exp(x) is 0 for |a| <= 2**20
_TIMES_LO = (EXP_TIMES_CLAMP[8], EXP_TIMES_CLAMP[4])


def _make_exp(constants: Any, nonpositive: bool, times: bool = False, scaled: bool = False, with_exp: bool = False,
              times_scaled: bool = False) -> Any:
    lo, hi, log2e, shifter, ln2_hi, ln2_lo, coefs = constants
    one = type(lo)(1.0)
    scale = _scale_nonpositive if nonpositive else _scale_by_pow2

    q_series = _exp_q_series(coefs)

    def reduced_unclamped(x: Any) -> Any:
        """(p, shifted_k) with exp(x) = p * 2**k, for x in the clamp's range."""
        r, k, shifted_k = _cody_waite(x, log2e, shifter, ln2_hi, ln2_lo)
        p = _fma(q_series(r), r, one)
        p = _fma(p, r, one)
        return p, shifted_k

    reduced_unclamped = register_jitable(**_INLINE_OPTIONS)(reduced_unclamped)

    zero = type(lo)(0.0)

    def reduced(x: Any) -> Any:
        """(p, shifted_k) with exp(x) = p * 2**k, for x >= lo (below, exp(0)'s: the
        callers give 0 there).  Scaling exp(lo)'s p would underflow, and a multiply that
        underflows costs a microcode assist on Intel cores: a softmax over rows with a
        fifth of their logits -inf (masked) took 4x as long."""
        xc = x
        if xc < lo:
            xc = zero
        if not nonpositive and xc > hi:
            xc = hi
        return reduced_unclamped(xc)

    reduced = register_jitable(**_INLINE_OPTIONS)(reduced)

    # a * exp(x) for |a| <= 2**20 (exp_times): the product is formed before the 2**k
    # scaling, so it rounds into the subnormals once.  The clamp is lower than exp's
    # (a can lift a result out of underflow), and below it the result is 0 (also for
    # an infinite a: the limits of x e^x and the like).
    lo_times = type(lo)(_TIMES_LO[isinstance(lo, np.float32)])
    undo_times = type(lo)(2.0**-_TIMES_OFFSETS[lo.dtype.itemsize * 8])

    def exp_times_scaled_impl(x: Any) -> Any:
        """ps = p 2**(k + B), B = _TIMES_OFFSETS, for x clamped at exp_times' clamp:
        exact and normal."""
        xc = x if not (x < lo_times) else lo_times
        p, shifted_k = reduced_unclamped(xc)
        return _scale_nonpositive_times_up(p, shifted_k)

    if times_scaled:
        return exp_times_scaled_impl

    if times:
        exp_times_scaled = register_jitable(**_INLINE_OPTIONS)(exp_times_scaled_impl)

        def exp_and_times_impl(a: Any, x: Any) -> Any:
            """(exp_nonpositive(x), exp_times(a, x)), bit for bit, from one ps (scaled
            once): ps 2**-B rounds once to exp's value (to 0 below exp's clamp, where
            exp(x) is under half the smallest subnormal) and a ps 2**-B to exp_times'.
            (Two scalings, one per offset, cost silu float32 a tenth more time.)"""
            ps = exp_times_scaled(x)
            return ps * undo_times, (zero if x < lo_times else (a * ps) * undo_times)

        if with_exp:
            return exp_and_times_impl
        exp_and_times = register_jitable(**_INLINE_OPTIONS)(exp_and_times_impl)
        return lambda a, x: exp_and_times(a, x)[1]  # LLVM drops the unused exp(x)

    if scaled:

        def exp_scaled_impl(x: Any) -> Any:
            p, shifted_k = reduced(x)
            return zero if x < lo else _scale_nonpositive_up(p, shifted_k)

        return exp_scaled_impl

    def exp_impl(x: Any) -> Any:
        p, shifted_k = reduced(x)
        return zero if x < lo else scale(p, shifted_k)

    return exp_impl


def _make_scale_nonpositive(offsets: dict[int, int], unscale: bool) -> Any:
    """An intrinsic ``(p, shifted_k) -> p * 2**(k + B)`` for k <= 0, B = ``offsets[bit width]``:
    exact and normal for every k its exp's clamp allows.  With ``unscale`` it then
    multiplies by ``2**-B``, giving ``p * 2**k`` (see ``_scale_by_pow2``) more
    cheaply: that one multiply rounds once, into the subnormals where the result
    is one."""

    @intrinsic
    def scale(typingctx: Any, p: Any, shifted_k: Any) -> Any:
        if not _same_float_types(p, shifted_k):
            return None
        width = p.bitwidth
        mant, bias = (23, 127) if width == 32 else (52, 1023)
        offset = offsets[width]
        np_float = np.float32 if width == 32 else np.float64
        shifter_bits = int(np.array(1.5 * 2.0**mant, dtype=np_float).view(f"i{width // 8}"))
        undo = float(2.0**-offset)

        def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            value, shifted = args
            ity = ir.IntType(width)
            lty = _llvm_float(sig.return_type)
            exponent = builder.add(builder.bitcast(shifted, ity), ity(bias + offset - shifter_bits))
            pow2 = builder.bitcast(builder.shl(exponent, ity(mant)), lty)
            scaled = builder.fmul(value, pow2)
            return builder.fmul(scaled, lty(undo)) if unscale else scaled

        return p(p, shifted_k), codegen

    return scale


# exp_nonpositive and exp_nonpositive_scaled share B = EXP_SCALED_BITS, so a kernel
# calling both on one x computes p * 2**(k + B) once.  exp_times clamps lower
# (its factor can lift a result out of underflow), which needs a larger B.
_SHARED_OFFSETS = {32: EXP_SCALED_BITS, 64: EXP_SCALED_BITS}
_scale_nonpositive = _make_scale_nonpositive(_SHARED_OFFSETS, unscale=True)
_scale_nonpositive_up = _make_scale_nonpositive(_SHARED_OFFSETS, unscale=False)
_TIMES_OFFSETS = {8 * size: bits for size, bits in EXP_TIMES_SCALED_BITS.items()}
_scale_nonpositive_times = _make_scale_nonpositive(_TIMES_OFFSETS, unscale=True)
_scale_nonpositive_times_up = _make_scale_nonpositive(_TIMES_OFFSETS, unscale=False)


_EXP = {
    (types.float32, False): _make_exp(_E32, False),
    (types.float64, False): _make_exp(_E64, False),
    (types.float32, True): _make_exp(_E32, True),
    (types.float64, True): _make_exp(_E64, True),
}


@overload(exp, jit_options=_INLINE_OPTIONS)
def _exp(x: Any) -> Any:
    return _EXP.get((x, False))


@overload(exp_nonpositive, jit_options=_INLINE_OPTIONS)
def _exp_nonpositive(x: Any) -> Any:
    return _EXP.get((x, True))


def _make_exp_of_quotient(constants: Any) -> Any:
    """exp((a - b) / t) for a <= b: exp's reduction, k = round(z / ln 2), taken off a - b
    (exact as a two-sum) before the quotient: (a - b - k t ln 2) / t is under ln 2 / 2
    in magnitude, so the multiply by r = 1 / t rounds in the last bits of the reduced
    argument only, where rounding z = (a - b) / t first would err by |z| ulps.  t ln 2
    is carried as c_hi + c_lo; the clamp compares a - b with lo t.  Per element it is
    the plain exp_of_difference's work plus one multiply, less its final correction."""
    lo, _, log2e, shifter, ln2_hi, ln2_lo, coefs = constants
    one, zero = type(lo)(1.0), type(lo)(0.0)
    q_series = _exp_q_series(coefs)

    def exp_of_quotient_impl(a: Any, b: Any, t: Any, r: Any) -> Any:
        s = a - b
        bb = s - a
        err = (a - (s - bb)) + (-b - bb)  # a - b = s + err exactly
        lo_t, c_hi = lo * t, t * ln2_hi
        c_lo = _fma(t, ln2_hi, -c_hi) + t * ln2_lo
        sc = zero if s < lo_t else s
        shifted_k = _fma(sc, log2e * r, shifter)
        k = shifted_k - shifter
        u = (_fma(-k, c_lo, _fma(-k, c_hi, sc)) + err) * r
        p = _fma(q_series(u), u, one)
        p = _fma(p, u, one)
        return zero if s < lo_t else _scale_nonpositive(p, shifted_k)

    return exp_of_quotient_impl


_EXP_OF_QUOTIENT = {types.float32: _make_exp_of_quotient(_E32), types.float64: _make_exp_of_quotient(_E64)}


@overload(exp_of_quotient, jit_options=_INLINE_OPTIONS)
def _exp_of_quotient(a: Any, b: Any, t: Any, r: Any) -> Any:
    return _EXP_OF_QUOTIENT.get(a) if a == b == t == r else None


_EXP_TIMES = {types.float32: _make_exp(_E32, True, times=True), types.float64: _make_exp(_E64, True, times=True)}
_EXP_SCALED = {types.float32: _make_exp(_E32, True, scaled=True), types.float64: _make_exp(_E64, True, scaled=True)}


_EXP_TIMES_SCALED = {types.float32: _make_exp(_E32, True, times_scaled=True),
                     types.float64: _make_exp(_E64, True, times_scaled=True)}


@overload(exp_nonpositive_times_scaled, jit_options=_INLINE_OPTIONS)
def _exp_nonpositive_times_scaled(x: Any) -> Any:
    return _EXP_TIMES_SCALED.get(x)


def _dtype_constant(fn: Any, by_size: dict[int, float]) -> None:
    """Registers ``fn(x)`` under Numba: ``by_size[bytes of x]`` in x's dtype, a constant."""
    constants = {types.float32: np.float32(by_size[4]), types.float64: np.float64(by_size[8])}

    @overload(fn, jit_options=_INLINE_OPTIONS)
    def _constant(x: Any) -> Any:
        c = constants.get(x)
        return None if c is None else (lambda x: c)


_dtype_constant(exp_times_scale, {size: 2.0**bits for size, bits in EXP_TIMES_SCALED_BITS.items()})
_dtype_constant(exp_times_clamp, EXP_TIMES_CLAMP)


@overload(exp_nonpositive_scaled, jit_options=_INLINE_OPTIONS)
def _exp_nonpositive_scaled(x: Any) -> Any:
    return _EXP_SCALED.get(x)


@overload(exp_times, jit_options=_INLINE_OPTIONS)
def _exp_times(a: Any, x: Any) -> Any:
    if a == x:
        return _EXP_TIMES.get(x)
    return None


_EXP_AND_TIMES = {types.float32: _make_exp(_E32, True, times=True, with_exp=True),
                  types.float64: _make_exp(_E64, True, times=True, with_exp=True)}


@overload(exp_nonpositive_and_times, jit_options=_INLINE_OPTIONS)
def _exp_nonpositive_and_times(a: Any, x: Any) -> Any:
    if a == x:
        return _EXP_AND_TIMES.get(x)
    return None


# --- expm1 -----------------------------------------------------------------
# expm1(x) = 2**k * expm1(r) + (2**k - 1) with the reduction of exp.  For
# |k| <= mantissa bits + 2, 2**k - 1 is exact, expm1(r) is carried as a
# double-word and the sum is formed with a two-sum, so only the last rounding
# remains; above, expm1 is exp (the -1 is below half an ULP); below
# -(mantissa bits + 3) * ln 2 the result rounds to -1, so x is clamped there.


@intrinsic
def _pow2(typingctx: Any, shifted_k: Any) -> Any:
    """2**k as a float, k read from ``shifted_k`` as in ``_scale_by_pow2`` (|k| within the normal range)."""
    if not isinstance(shifted_k, types.Float):
        return None
    width = shifted_k.bitwidth
    mant, bias = (23, 127) if width == 32 else (52, 1023)
    np_float = np.float32 if width == 32 else np.float64
    shifter_bits = int(np.array(1.5 * 2.0**mant, dtype=np_float).view(f"i{width // 8}"))

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        ity = ir.IntType(width)
        exponent = builder.add(builder.bitcast(args[0], ity), ity(bias - shifter_bits))
        return builder.bitcast(builder.shl(exponent, ity(mant)), _llvm_float(sig.return_type))

    return shifted_k(shifted_k), codegen


def _make_expm1(constants: Any, mant: Any) -> Callable[..., Any]:
    lo_exp, hi, log2e, shifter, ln2_hi, ln2_lo, coefs = constants
    ftype = type(hi)
    one = ftype(1.0)
    lo = ftype(-(mant + 3) * math.log(2.0))
    k_limit = ftype(mant + 2)
    q_series = _exp_q_series(coefs)

    def expm1_impl(x: Any) -> Any:
        xc = x
        if xc < lo:
            xc = lo
        if xc > hi:
            xc = hi
        r, k, shifted_k = _cody_waite(xc, log2e, shifter, ln2_hi, ln2_lo)
        q = q_series(r)
        r2 = r * r
        p = _fma(r2, q, r)  # expm1(r), and its rounding error (r - p is exact):
        p_lo = _fma(r2, q, r - p)
        small_k = k <= k_limit
        two_k = _pow2(shifted_k if small_k else shifter)
        # 2**k * (p + p_lo) + (2**k - 1): a two-sum of the exact terms, then the small ones
        scaled = two_k * p
        minus_one = two_k - one
        total = scaled + minus_one
        back = total - scaled
        err = (scaled - (total - back)) + (minus_one - back)
        mid = total + _fma(two_k, p_lo, err)
        big = _scale_by_pow2(p + one, shifted_k)
        return math.copysign(mid if small_k else big, x)  # expm1(-0.0) = -0.0 (the sums give +0.0)

    return expm1_impl


_EXPM1 = {
    types.float32: _make_expm1(_E32, 23),
    types.float64: _make_expm1(_E64, 52),
}


@overload(expm1, jit_options=_JIT_OPTIONS)
def _expm1(x: Any) -> Any:
    return _EXPM1.get(x)


# --- tanh ------------------------------------------------------------------------
# |x| <= 0.9: x + x**3 P(x**2), P from tools/fit_tanh.py (its error is under
# 0.1 ULP of tanh).  Above: 1 - 2 sigmoid(-2|x|), with sigmoid(-2|x|) <= 1/4
# refined as in sigmoid, so its error is scaled down in the result.

_TANH_P32 = (-0.3333333274440396, 0.13333261841465857, -0.05395388951973762, 0.02175940978601938,
             -0.008450872527807168, 0.002759119258875984, -0.0005203526888253506)
_TANH_P64 = (-0.3333333333333333, 0.13333333333333125, -0.05396825396806158, 0.021869488529109107,
             -0.008863235394320356, 0.003592126459550889, -0.00145582235941365, 0.0005899641637897441,
             -0.00023889197007555244, 9.626974354985488e-05, -3.798830638077052e-05, 1.402208799041075e-05,
             -4.404576798562937e-06, 9.984237936271778e-07, -1.1687858974397004e-07)


def _make_tanh(ftype: Any, coefs: Any) -> Callable[..., Any]:
    coefs = tuple(ftype(c) for c in coefs)
    one, two, small = ftype(1.0), ftype(2.0), ftype(0.9)
    # Estrin's scheme for float64's 15 terms (tanh 1e5 float64, znver5: 98 -> 81 us); float32's
    # 7 by Horner's rule, which was as fast
    series = _unrolled_series(coefs, 2 if ftype is np.float64 else None)

    def tanh_impl(x: Any) -> Any:
        a = abs(x)
        s = x * x
        p = series(s)
        near_zero = _fma(x * s, p, x)
        # far from 0: tanh(a) = 1 - 2 e / (1 + e), e = exp(-2a) <= 1/3, the quotient
        # refined on its exact residual e - q (1 + e) = (e - q) - q e
        e = exp_nonpositive(-two * a)
        r = one / (one + e)
        q = e * r
        lower = _fma(_fma(-q, e, e - q), r, q)
        far = _fma(-two, lower, one)
        return math.copysign(near_zero if a <= small else far, x)  # tanh(-0.0) = -0.0 (the fma gives +0.0)

    return tanh_impl


_TANH = {types.float32: _make_tanh(np.float32, _TANH_P32), types.float64: _make_tanh(np.float64, _TANH_P64)}


@overload(tanh, jit_options=_JIT_OPTIONS)
def _tanh(x: Any) -> Any:
    return _TANH.get(x)


# --- log, log1p ---------------------------------------------------------------
# log(x) = k ln 2 + log(m), m in [sqrt(2)/2, sqrt(2)), with log(m) = log(1+f)
# from s = f / (2 + f) and a polynomial in s**2 (the fdlibm / musl scheme,
# their coefficients).  Subnormal x is scaled into the normal range first.


@intrinsic
def _split_log(typingctx: Any, x: Any) -> Any:
    """(m, k) with x = m * 2**k, m in [sqrt(2)/2, sqrt(2)) (k as a float); x > 0 finite."""
    if not isinstance(x, types.Float):
        return None
    width = x.bitwidth
    if width == 32:
        mant, bias, top_bits, sqrt_half_bits, one_bits = 23, 127, 0x7FFFFF, 0x3F3504F3, 0x3F800000
    else:
        mant, bias, top_bits, sqrt_half_bits, one_bits = (
            52, 1023, 0x000FFFFFFFFFFFFF, 0x3FE6A09E667F3BCD, 0x3FF0000000000000)
    scale_up = mant + 2
    tiny = float(np.finfo(np.float32 if width == 32 else np.float64).tiny)
    tuple_type = types.UniTuple(x, 2)  # type: ignore[no-untyped-call]

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        (value,) = args
        lty = _llvm_float(x)
        ity = ir.IntType(width)
        subnormal = builder.fcmp_ordered("<", value, lty(tiny))
        scaled = builder.select(subnormal, builder.fmul(value, lty(2.0**scale_up)), value)
        bits = builder.add(builder.bitcast(scaled, ity), ity(one_bits - sqrt_half_bits))
        k = builder.sub(builder.ashr(bits, ity(mant)), ity(bias))
        k = builder.select(subnormal, builder.sub(k, ity(scale_up)), k)
        m_bits = builder.add(builder.and_(bits, ity(top_bits)), ity(sqrt_half_bits))
        m = builder.bitcast(m_bits, lty)
        kf = builder.sitofp(k, lty)
        return context.make_tuple(builder, tuple_type, [m, kf])

    return tuple_type(x), codegen


_LOG32 = tuple(np.float32(v) for v in (
    0.69313812256, 9.0580006145e-06,  # ln2 hi, lo
    0.66666662693, 0.40000972152, 0.28498786688, 0.24279078841))
_LOG64 = (6.93147180369123816490e-01, 1.90821492927058770002e-10,
          6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01,
          2.222219843214978396e-01, 1.818357216161805012e-01, 1.531383769920937332e-01,
          1.479819860511658591e-01)


def _make_log(constants: Any) -> Callable[..., Any]:
    ln2_hi, ln2_lo = constants[0], constants[1]
    lg = constants[2:]
    ftype = type(ln2_hi)
    one, two, half = ftype(1.0), ftype(2.0), ftype(0.5)
    nan, inf = ftype(np.nan), ftype(np.inf)
    even, odd = lg[1::2], lg[0::2]  # coefficients of w-polynomials (w = z*z)

    def log_impl(x: Any) -> Any:
        m, k = _split_log(x)
        f = m - one
        s = f / (two + f)
        z = s * s
        w = z * z
        t1 = even[-1]
        for c in even[-2::-1]:
            t1 = _fma(t1, w, c)
        t1 = t1 * w
        t2 = odd[-1]
        for c in odd[-2::-1]:
            t2 = _fma(t2, w, c)
        t2 = t2 * z
        hfsq = half * f * f
        r = s * (hfsq + (t1 + t2)) + k * ln2_lo - hfsq + f + k * ln2_hi
        if x == inf:
            r = inf
        if x == 0:
            r = -inf
        if not (x >= 0):  # negative or NaN
            r = nan
        return r

    return log_impl


_LOG = {types.float32: _make_log(_LOG32), types.float64: _make_log(_LOG64)}


@overload(log, jit_options=_JIT_OPTIONS)
def _log(x: Any) -> Any:
    return _LOG.get(x)


def _make_log1p(ftype: Any) -> Callable[..., Any]:
    one = ftype(1.0)
    inf = ftype(np.inf)

    def log1p_impl(x: Any) -> Any:
        # log(1 + x) = log(u) + c / u with u = fl(1 + x) and c = 1 + x - u exactly
        u = one + x
        c = ((one - u) + x) if abs(x) <= one else ((x - u) + one)
        r = log(u) + c / u
        if x == inf:
            r = inf
        if u == 0:
            r = -inf
        if x == 0:  # log1p(-0.0) is -0.0 (log(u) + c / u gives +0.0)
            r = x
        return r

    return log1p_impl


_LOG1P = {types.float32: _make_log1p(np.float32), types.float64: _make_log1p(np.float64)}


@overload(log1p, jit_options=_JIT_OPTIONS)
def _log1p(x: Any) -> Any:
    return _LOG1P.get(x)


# --- the normal distribution ----------------------------------------------------
# Phi(x) = erfc(-x / sqrt 2) / 2 with erfc(z) = t exp(-z**2 + P(t)), t = 2/(2+z)
# (P's Chebyshev series in ``_scalar``).  Computed in float64 (float32 input is
# converted): z**2 = x**2 / 2 is carried exactly as a double-word into exp, t
# is refined by a Newton step, so the far tail keeps its relative accuracy.

def _chebyshev_to_monomial(coefs: Any) -> tuple[float, ...]:
    """The monomial coefficients (lowest degree first) of sum c_k T_k(u), computed
    exactly (as fractions) and then rounded once each."""
    t = [[Fraction(1)], [Fraction(0), Fraction(1)]]  # T_k's monomial coefficients
    while len(t) < len(coefs):
        doubled = [Fraction(0)] + [2 * v for v in t[-1]]  # T_k = 2 u T_(k-1) - T_(k-2)
        t.append([a - b for a, b in itertools.zip_longest(doubled, t[-2], fillvalue=Fraction(0))])
    total = [Fraction(0)] * len(coefs)
    for c, tk in zip(coefs, t):
        for j, v in enumerate(tk):
            total[j] += Fraction(c) * v
    return tuple(float(v) for v in total)


def _chebyshev_series(coefs: Any, clenshaw_terms: int) -> Any:
    """sum c_k T_k(u) for |u| <= 1: its first ``clenshaw_terms`` terms by Clenshaw's
    recurrence, written out term by term, and the rest R, converted to monomials, by
    Estrin's scheme (``_unrolled_series``), the two chains side by side.  R must be
    small: its rounded monomial coefficients and their evaluation cost about eps times
    the sum of |c_k| (1 + sqrt 2)**k over its terms (0.09 eps for erfc's series from
    k = 4).  R joins the recurrence's last step as c_0 + u b_1 - (b_2 - R): b_2 is
    small, so the rounding it adds is too (added to the sum at the end, it cost 0.1 ULP
    more on average in gelu's far tail).  Clenshaw's recurrence alone, 27 steps for
    erfc's series, was one chain of dependent FMAs: gelu float64 took 3.4 ms on 1e6
    elements (znver5, one thread), 1.95 ms this way, and its largest errors in a dense
    sample of the tail went down (CHANGELOG)."""
    low, high = coefs[:clenshaw_terms], coefs[clenshaw_terms:]
    lines = ["def series(u):", "    b1 = 0.0", "    b2 = 0.0"]
    lines += [f"    b1, b2 = _fma(2.0 * u, b1, {c!r} - b2), b1" for c in low[:0:-1]]
    lines.append(f"    return _fma(u, b1, {low[0]!r} - (b2 - rest(u)))")
    rest = _chebyshev_to_monomial((0.0,) * len(low) + tuple(high))
    namespace = {"_fma": _fma, "rest": _unrolled_series(tuple(np.float64(c) for c in rest), 0)}
    exec("\n".join(lines), namespace)  # noqa: S102 - generated from the constant coefficients above
    return register_jitable(**_INLINE_OPTIONS)(namespace["series"])


_erfc_series = _chebyshev_series(ERFC_CHEBYSHEV, 4)
_INV_SQRT2_HI = 0.7071067811865476
_INV_SQRT2_LO = -4.833646656726457e-17
_INV_SQRT_2PI_HI = 0.3989422804014327
_INV_SQRT_2PI_LO = -2.49232720227773e-17


@register_jitable(**_INLINE_OPTIONS)
def _phi_upper_tail(w: Any) -> Any:
    """(c, e) with Phi(-w) = erfc(w / sqrt 2) / 2 = c * exp(e), e <= 0, for w >= 0 (float64).

    Kept as a factor and an exponent so that a caller can multiply before the
    result underflows into the subnormals (``exp_times``)."""
    z = w * _INV_SQRT2_HI
    z_lo = _fma(w, _INV_SQRT2_HI, -z) + w * _INV_SQRT2_LO
    d = 2.0 + z
    d_lo = ((2.0 - d) + z) + z_lo
    r = 1.0 / d
    t = 2.0 * _fma(r, _fma(-r, d, 1.0) - r * d_lo, r)  # 2 / (d + d_lo)
    p = _erfc_series(2.0 * t - 1.0)
    w2 = w * w
    w2_lo = _fma(w, w, -w2)
    a = -0.5 * w2  # -z**2 + P(t) as a double-word: a two-sum (0.5 * w2 is exact)
    hi = a + p
    back = hi - a
    lo = ((a - (hi - back)) + (p - back)) - 0.5 * w2_lo
    return 0.5 * t * (1.0 + lo), hi


@register_jitable(**_INLINE_OPTIONS)
def _normal_cdf_times64(a: Any, x: Any) -> Any:
    """a * Phi(x), rounded once also where it is subnormal (float64)."""
    w = abs(x)
    if w > 40.0:  # Phi(-40) underflows to 0; clamping by comparison lets NaN through
        w = 40.0
    c, e = _phi_upper_tail(w)
    exp_e, times = exp_nonpositive_and_times(a * c, e)  # one exp for both signs (SIMD lanes take both)
    if x > 0:
        return a * (1.0 - c * exp_e)
    return times


@register_jitable(**_INLINE_OPTIONS)
def _normal_cdf64(x: Any) -> Any:
    return _normal_cdf_times64(1.0, x)


@register_jitable(**_INLINE_OPTIONS)
def _normal_pdf_times64(a: Any, x: Any) -> Any:
    """a * phi(x), rounded once also where it is subnormal (float64)."""
    x = abs(x)
    if x > 40.0:  # phi(40) underflows to 0
        x = 40.0
    x2 = x * x
    x2_lo = _fma(x, x, -x2)
    c = _fma(a, _INV_SQRT_2PI_HI, a * _INV_SQRT_2PI_LO) * (1.0 - 0.5 * x2_lo)
    return exp_times(c, -0.5 * x2)


# float32 in float32 arithmetic (16 lanes where float64 has 8), with the
# roundings that would add up carried as double-words:
#   Phi(-w) = G(w) exp(-w**2 / 2),  G(w) = (1 + p(q)) / (2 (1 + w)),
# q = (w - A) / (w + A) and p small (PHI_TAIL32), so p's own roundings hardly
# reach 1 + p.  q, the quotient by 1 + w and the numerator are refined by their
# exact residuals (FMA); exp's reduced argument carries the rounding of w**2
# and of the reduction, and exp(r) = 1 + s is applied as c + c s, so the
# product rounds once.  Beyond W_MAX, G is held at G(W_MAX): there the results
# round to 0 (or to x, or 1).  About half the time of the float64 evaluation
# it replaced (gelu and gelu' float32), within the same bounds (README).

_F32 = np.float32
_TAIL32_A = _F32(PHI_TAIL32_A)
_TAIL32_W_MAX = _F32(PHI_TAIL32_W_MAX)
# by Estrin's scheme: Horner's rule, a chain of 10 FMAs, took gelu float32 10 % longer
# (znver5), with the same largest error in a dense sample (p is small: its roundings
# hardly reach 1 + p)
_phi_tail32_series = _unrolled_series(tuple(_F32(c) for c in PHI_TAIL32), 0)
_E32_LOG2E, _E32_SHIFTER, _E32_LN2_HI, _E32_LN2_LO = _E32[2:6]
_exp32_q = _unrolled_series(_E32[6][::-1])  # exp(r) = 1 + r + r**2 q(r), as exp's
_E32_TIMES_LO = _F32(_TIMES_LO[True])  # exp_times' clamp
_INV_SQRT_2PI_HI32 = _F32(_INV_SQRT_2PI_HI)
_INV_SQRT_2PI_LO32 = _F32(_INV_SQRT_2PI_HI - float(_INV_SQRT_2PI_HI32))
_ONE32, _HALF32, _ZERO32 = _F32(1.0), _F32(0.5), _F32(0.0)


@register_jitable(**_INLINE_OPTIONS)
def _phi_ratio32(w: Any) -> Any:
    """(p, d, d_lo, r) with Phi(-w) exp(w**2 / 2) = (1 + p) / (2 (d + d_lo)), r = 1 / d, for float32 w >= 0."""
    w = w if not (w > _TAIL32_W_MAX) else _TAIL32_W_MAX  # NaN passes
    r = _ONE32 / (w + _TAIL32_A)
    q = (w - _TAIL32_A) * r
    residual = _fma(q, -w, _fma(q + _ONE32, -_TAIL32_A, w))  # (w - A) - q (w + A), exactly
    p = _phi_tail32_series(_fma(r, residual, q))
    d = _ONE32 + w
    big = w if w > _ONE32 else _ONE32
    d_lo = (_ONE32 if w > _ONE32 else w) - (d - big)  # 1 + w = d + d_lo (fast two-sum)
    return p, d, d_lo, _ONE32 / d


@register_jitable(**_INLINE_OPTIONS)
def _quotient32(n: Any, n_lo: Any, d: Any, d_lo: Any, r: Any) -> Any:
    """(n + n_lo) / (d + d_lo), from r = 1 / d and one correction by the residual."""
    q = n * r
    return _fma((_fma(-q, d, n) + n_lo) - q * d_lo, r, q)


@register_jitable(**_INLINE_OPTIONS)
def _times_ratio32(a: Any, p: Any, d: Any, d_lo: Any, r: Any) -> Any:
    """a (1 + p) / (2 (d + d_lo)): the numerator carried as a double-word."""
    n = _fma(a, p, a)
    return _quotient32(_HALF32 * n, _HALF32 * _fma(a, p, a - n), d, d_lo, r)


@register_jitable(**_INLINE_OPTIONS)
def _times_exp_minus_half_square32(c: Any, w: Any) -> Any:
    """c exp(-w**2 / 2) for float32 c (|c| <= 2**20) and w >= 0, rounded once (into the
    subnormals too); 0 with the sign of c where the exponent is below exp_times' clamp."""
    w2 = w * w
    x = -_HALF32 * w2
    xc = x if not (x < _E32_TIMES_LO) else _E32_TIMES_LO
    shifted_k = _fma(xc, _E32_LOG2E, _E32_SHIFTER)
    k = shifted_k - _E32_SHIFTER
    r1 = _fma(-k, _E32_LN2_HI, xc)  # exact
    corr = _fma(-k, _E32_LN2_LO, _HALF32 * _fma(w, -w, w2))  # the rest of ln 2, and w**2's rounding
    r = r1 + corr
    r_lo = (r1 - r) + corr
    s = _fma(r * r, _exp32_q(r), r) + r_lo  # exp(r + r_lo) - 1
    result = _scale_nonpositive_times(_fma(c, s, c), shifted_k)
    return result if not (x < _E32_TIMES_LO) else math.copysign(_ZERO32, c)


@register_jitable(**_INLINE_OPTIONS)
def _normal_cdf_times32(a: Any, x: Any) -> Any:
    """a * Phi(x) for float32 a and x (0 for x = -inf, a for infinite a otherwise)."""
    if abs(a) == math.inf and x > -math.inf:
        return a
    w = abs(x)
    p, d, d_lo, r = _phi_ratio32(w)
    t = _times_exp_minus_half_square32(_times_ratio32(a, p, d, d_lo, r), w)  # a Phi(-w)
    if x < _ZERO32:  # a Phi(x) keeps the sign of a where it underflows (not at x = -inf: the limit +0)
        return math.copysign(t, a) if w < math.inf else _ZERO32
    return a - t


@register_jitable(**_INLINE_OPTIONS)
def _normal_cdf_plus_x_pdf32(x: Any) -> Any:
    """Phi(x) + x phi(x) (gelu') for float32 x, from one exp: for x < 0 it is
    exp(-w**2 / 2) (G(w) - w / sqrt(2 pi)), for x > 0 one minus that."""
    w = abs(x)
    p, d, d_lo, r = _phi_ratio32(w)
    g = _times_ratio32(_ONE32, p, d, d_lo, r)
    v = _times_exp_minus_half_square32(_fma(-w, _INV_SQRT_2PI_HI32, g) - w * _INV_SQRT_2PI_LO32, w)
    if x < _ZERO32:  # the sign of the tail where it underflows (the limit +0 at x = -inf)
        return v if w < math.inf else _ZERO32
    return _ONE32 - v


@overload(normal_cdf_times, jit_options=_INLINE_OPTIONS)
def _normal_cdf_times(a: Any, x: Any) -> Any:
    if a == x == types.float64:
        return _normal_cdf_times64
    if a == x == types.float32:
        return _normal_cdf_times32
    return None


@overload(normal_cdf_plus_x_pdf, jit_options=_INLINE_OPTIONS)
def _normal_cdf_plus_x_pdf(x: Any) -> Any:
    if x == types.float64:
        return lambda x: _normal_cdf64(x) + _normal_pdf_times64(x, x)
    if x == types.float32:
        return _normal_cdf_plus_x_pdf32
    return None


@overload(fma, jit_options=_JIT_OPTIONS)
def _fma_overload(a: Any, b: Any, c: Any) -> Any:
    if _same_float_types(a, b, c):
        return lambda a, b, c: _fma(a, b, c)
    return None


@overload(order_key, jit_options=_JIT_OPTIONS)
def _order_key_overload(x: Any) -> Any:
    return (lambda x: _order_key(x)) if x in (types.float32, types.float64) else None


@overload(from_order_key, jit_options=_JIT_OPTIONS)
def _from_order_key_overload(k: Any) -> Any:
    return (lambda k: _from_order_key(k)) if k in (types.int32, types.int64) else None


@overload(maximum, jit_options=_JIT_OPTIONS)
def _maximum_overload(a: Any, b: Any) -> Any:
    if _same_float_types(a, b):
        return lambda a, b: _maximum(a, b)
    return None


def scalar_function(fn: Any) -> Any:
    """Make a scalar formula callable from Numba kernels (compiled only when used).

    The formula stays a plain module-level Python function, so the kernels
    that close over it have a closure that pickles by reference and their
    on-disk cache entries are found again by the next process.

    It is compiled once per signature as a function of its own, with its own
    strict fast-math flags, and marked ``alwaysinline`` for LLVM
    (``forceinline``), so LLVM still sees one loop body to vectorise however
    big the formula is.  Numba's own IR inlining (``inline="always"``) did the
    same but re-ran type inference on every inlined copy, nested, and took tens
    of seconds to compile float64 gelu.grad.
    """
    register_jitable(**_INLINE_OPTIONS)(fn)
    return fn


def row_function(fn: Any) -> Any:
    """Make a function over rows (or blocks, or lanes) callable from Numba kernels.
    Unlike a scalar formula, its reductions may be split over vector lanes
    (``LOOP_MATH``), and it is inlined by LLVM's own judgement.  Its loops are
    vectorised when it is compiled, as a function of its own, so it calls
    ``full_width()`` first to get the kernels' vector width."""
    if "full_width" not in fn.__code__.co_names:
        raise TypeError(f"row function {fn.__qualname__} must call full_width() first (see _scalar.full_width)")
    register_jitable(fastmath=set(LOOP_MATH), error_model="numpy")(fn)
    return fn
