"""Numba kernels: loop templates, compiled around the definitions' formulas.

This module holds no formula.  The definitions do: ``_activations`` (the
elementwise ops), ``_rowops`` (softmax, log_softmax) and ``_lossops`` (the fused
losses).  Here a loop template (a closure factory) is wrapped around a
definition's functions and compiled lazily, with its cache token, and cached
on disk.  Nothing compiles at import.

- ``elementwise_kernel(name, kind, parallel)``: a loop over 1-D C-contiguous
  arrays around one activation's scalar formula of ``kind`` (``KINDS``).
- ``row_kernel(name, parallel, form)``: a row op over rows, blocks of short
  rows, or lanes of (outer, n, inner) arrays (``ROW_FORMS``).
- ``kept_row_kernel(name, parallel, form)``, ``kept_reduction_kernel``: the same row
  functions with ``where=`` and ``temperature=``, on a scratch copy of each row.
- ``bias_kernel(name, kind, parallel)``: the elementwise loop over f(x + bias), with the
  bias's gradient summed in the backward (``bias=``).
- ``loss_kernel(name, parallel)``: a fused loss over rows or elements.

Kernels take their arrays one by one (``kernel(x, out, params)``,
``kernel(grad_out, x, out, params)``): a template that serves one input or two
takes ``*args`` and splits them by its closure's ``n_in`` (Numba dispatches
separate arrays faster than a tuple of them), and hands the formulas the
inputs as a tuple.  The wrappers in ``_api`` hand the kernels C-contiguous
float32/float64 arrays, so each has at most two signatures.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Any, Callable, cast

import numpy as np
from numba import njit, prange
from numba.core.caching import FunctionCache
from numba.extending import register_jitable

from . import _activations, _backend, _gatedops, _lossops, _rowmath, _rowops, _tuning
from ._config import (BIAS_GROUP, BIAS_STAGED_MAX, GATED_TASK, LANE_BLOCK, LOOP_MATH, LOSS_ELEMENT_BLOCK, LOSS_PIECE,
                      LOSS_ROW_BLOCK, ROW_BLOCK, STAGE_BLOCK, STREAM_TASK_BLOCKS, STRICT_MATH, VECTOR_WIDTH,
                      INTERLEAVE)
from ._rowmath import (QUOTIENTS_FIRST_MIN, combine_maxima, combine_sums, compensated_add, fold_max, fold_sum,
                       kept_block_quotients, kept_quotients, quotient, quotient_by, row_sum, task_rows)
from ._scalar import STREAM_ALIGN, borrowed, full_width, like, single_precision, stream_fence, stream_store
from ._vmath import interleaved, overload

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
        for name in ("_activations.py", "_gatedops.py", "_rowops.py", "_rowmath.py", "_lossops.py", "_scalar.py", "_vmath.py",
                     "_kernels.py", "_config.py")
    )
).hexdigest()


class _TolerantCache(FunctionCache):
    """An on-disk cache whose unreadable entries (truncated, corrupt, written by
    another build) are recompiled instead of failing the call, and whose write
    failures (disk full, permissions changed) leave the kernel in memory."""

    def load_overload(self, sig: Any, target_context: Any) -> Any:
        try:
            return super().load_overload(sig, target_context)  # type: ignore[no-untyped-call]
        except Exception:
            return None

    def save_overload(self, sig: Any, data: Any) -> None:
        try:
            super().save_overload(sig, data)  # type: ignore[no-untyped-call]
        except OSError:
            pass
        except Exception:  # the index itself is unreadable: start it afresh
            try:
                os.remove(self._cache_file._index_path)
                super().save_overload(sig, data)  # type: ignore[no-untyped-call]
            except Exception:
                pass


def _quiet(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` without the warnings that NumPy's scalar arithmetic gives where the
    compiled kernel raises only FP flags (in branches whose results it discards)."""

    @functools.wraps(fn)
    def quiet(*args: Any) -> Any:
        with np.errstate(all="ignore"):
            return fn(*args)

    return quiet


def cache_token(build: str, fastmath: Any) -> str:
    """The token a kernel's closure carries: the formula sources, how it is built,
    its fast-math flags, vector width and interleave count (see _SOURCE_TOKEN)."""
    return (f"{_SOURCE_TOKEN}:{build}:fastmath={','.join(sorted(fastmath))}:width={VECTOR_WIDTH}"
            f":interleave={INTERLEAVE}")


def _jit(template: Any, *fns: Any, parallel: bool, fastmath: Any = STRICT_MATH, cache: bool = True,
         interleave: bool | None = None, **template_args: Any) -> Any:
    """Compile ``template(*fns, **template_args)`` lazily, with its cache token in the closure;
    ``interleave``: under _vmath.interleaved (by default, where ``fastmath`` has no reassoc)."""
    token = cache_token(f"parallel={parallel}", fastmath)
    fn = template(*fns, token=token, **template_args)
    options: Any = dict(parallel=parallel, fastmath=set(fastmath), error_model="numpy", nogil=True)
    if _backend.numba.config.DISABLE_JIT:  # njit gives fn back: the formulas run as Python on NumPy scalars
        return _quiet(fn)
    dispatcher = None
    if cache:
        try:
            dispatcher = njit(cache=True, **options)(fn)
        except RuntimeError:  # no writable cache location: compile in memory only
            pass
        else:
            if type(dispatcher._cache) is FunctionCache:
                dispatcher._cache.__class__ = _TolerantCache
    if dispatcher is None:
        dispatcher = njit(**options)(fn)
    if interleave if interleave is not None else "reassoc" not in fastmath:
        dispatcher.compile = _interleaved_compile(dispatcher.compile)
    return dispatcher


def _interleaved_compile(compile_: Callable[..., Any]) -> Callable[..., Any]:
    """A dispatcher's ``compile`` (every lazy compilation, and every load from the disk
    cache, goes through it) under _vmath.interleaved: for the kernels of elementwise
    formulas.  Those with ``reassoc`` (rows, reductions, losses) keep LLVM's count: it
    interleaves their reductions already, and forcing 4 ran short rows up to 1.4x slower
    (softmax.backward float32 on 65536 x 128).  So do the gated units': memory-bound at
    the sizes they run, they have nothing to gain, and swiglu float32 on 8192 x 22016
    took 1.1-1.5x its time in three runs of four (this machine's noise is +-30 % there)."""

    @functools.wraps(compile_)
    def compile(sig: Any) -> Any:
        with interleaved():
            return compile_(sig)

    return compile


# --- tuples of arrays ----------------------------------------------------------------
# Numba has no variadic closures, but it unpacks tuples: these give, for a tuple of
# arrays, the tuple of their elements at an index (or slices), or of their reshapes.
# They are written out per length (Numba builds no tuple from a generator).


def at(arrays: Any, i: Any) -> Any:
    """(a[i] for a in arrays), as a tuple."""
    return tuple(a[i] for a in arrays)


def reshaped(arrays: Any, shape: Any) -> Any:
    """(a.reshape(shape) for a in arrays), as a tuple."""
    return tuple(a.reshape(shape) for a in arrays)


def _unrolled(params: str, expression: str, n: int) -> Any:
    """A lambda over ``params`` giving the tuple of ``expression`` for k = 0..n-1."""
    items = "".join(expression.format(k=k) + ", " for k in range(n))
    return eval(f"lambda {params}: ({items})")  # noqa: S307 - built from the literals above


@overload(at, inline="always")
def _at(arrays: Any, i: Any) -> Any:
    return _unrolled("arrays, i", "arrays[{k}][i]", len(arrays))


@overload(reshaped, inline="always")
def _reshaped(arrays: Any, shape: Any) -> Any:
    return _unrolled("arrays, shape", "arrays[{k}].reshape(shape)", len(arrays))


def borrowed_all(arrays: Any) -> Any:
    """(borrowed(a) for a in arrays), as a tuple: see _scalar.borrowed."""
    return tuple(borrowed(a) for a in arrays)


@overload(borrowed_all, inline="always")
def _borrowed_all(arrays: Any) -> Any:
    return _unrolled("arrays", "borrowed(arrays[{k}])", len(arrays))


def sliced(arrays: Any, start: Any, stop: Any) -> Any:
    """(a[start:stop] for a in arrays), as a tuple."""
    return tuple(a[start:stop] for a in arrays)


@overload(sliced, inline="always")
def _sliced(arrays: Any, start: Any, stop: Any) -> Any:
    return _unrolled("arrays, start, stop", "arrays[{k}][start:stop]", len(arrays))


# --- elementwise loop templates ----------------------------------------------
# prange is plain range when compiled with parallel=False, so each template
# serves both the serial and the parallel kernel.


def _map(fn: Any, *, n_in: Any, token: Any) -> Callable[..., Any]:
    """kernel(*ins, out, p): out[i] = fn(*ins[i], p), for n_in inputs."""

    def kernel(*args: Any) -> None:
        token  # noqa: B018 - part of the on-disk cache key (see _SOURCE_TOKEN)
        full_width()
        ins, out, p = args[:n_in], args[-2], args[-1]  # constant indices: Numba types them statically
        for i in prange(out.shape[0]):
            full_width()
            out[i] = fn(*at(ins, i), p)

    return kernel


def _map_pair(fn1: Any, fn2: Any, *, n_in: Any, token: Any) -> Callable[..., Any]:
    """kernel(x, out1, out2, p): (fn1(x[i], p), fn2(x[i], p)), value and derivative in one
    pass.  (Written with a tuple of outputs, ``out1, out2 = outs``, parfors lost the
    writes to them and the parallel kernel returned uninitialised memory.)"""

    def kernel(x: Any, out1: Any, out2: Any, p: Any) -> None:
        token  # noqa: B018
        full_width()
        for i in prange(x.shape[0]):
            full_width()
            v = x[i]
            out1[i] = fn1(v, p)
            out2[i] = fn2(v, p)

    return kernel


def _map_times(fn: Any, *, n_in: Any, token: Any) -> Callable[..., Any]:
    """kernel(g, v, out, p): out[i] = g[i] * fn(v[i], p), the backward product through f'."""

    def kernel(g: Any, v: Any, out: Any, p: Any) -> None:
        token  # noqa: B018
        full_width()
        for i in prange(out.shape[0]):
            full_width()
            out[i] = g[i] * fn(v[i], p)

    return kernel


# In place (op(x, out=x)): LLVM's vectorised loop checks at run time that its arrays
# do not overlap, and where they do it runs its scalar loop: sigmoid in place on 4e6
# float32 elements took 8 ms instead of 0.5.  _map's kernel takes its arrays as a
# tuple, and gets that check; so a call whose output is one of the inputs runs a
# twin (compiled on the first such call) that reads that input through the output,
# one array to LLVM, with no overlap to check.  _map_pair's and _map_times's kernels,
# whose arrays are arguments of their own, have no such check (test_in_place).


def _read_through(same: Any, n_in: int) -> tuple[bool, bool, int]:
    """For a kernel in place, ``same`` = (output, input) (None: not in place): whether
    grad_out (the first of two inputs) and whether x (or y: the last input) is read
    through the output, and which output that is."""
    if same is None:
        return False, False, 0
    return n_in == 2 and same[1] == 0, same[1] == n_in - 1, same[0]


def _map_in_place(fn: Any, *, n_in: Any, same: Any, token: Any) -> Callable[..., Any]:
    """kernel(*ins, out, p) of _map with out being input same[1] (same: (output, input))."""
    through_g, _, _ = _read_through(same, n_in)

    def kernel(*args: Any) -> None:
        token  # noqa: B018
        full_width()
        ins, out, p = args[:n_in], args[-2], args[-1]
        for i in prange(out.shape[0]):
            full_width()
            if n_in == 1:
                out[i] = fn(out[i], p)
            elif through_g:
                out[i] = fn(out[i], ins[1][i], p)
            else:
                out[i] = fn(ins[0][i], out[i], p)

    return kernel


def _map_staged(first: Any, then: Any, *, n_in: Any, token: Any, times: Any = False) -> Callable[..., Any]:
    """kernel(*ins, out, p) of _map for fn(*v, p) = then(*v, first(*v, p), p) (see
    _activations.two_stages): each block of STAGE_BLOCK elements in two loops, the first
    stage's values held in out.  ``times``: _map_times's kernel(g, v, out, p) for a
    derivative in two stages, out = g then(v, first(v, p), p).  An out that is an input
    (which _api sends to in_place_kernel's kernel) takes one loop, in one stage."""
    if times:
        @register_jitable(inline="always")
        def first_at(vs: Any, i: Any, p: Any) -> Any:
            return first(vs[-1][i], p)

        @register_jitable(inline="always")
        def then_at(vs: Any, i: Any, t: Any, p: Any) -> Any:
            return vs[0][i] * then(vs[-1][i], t, p)
    else:
        @register_jitable(inline="always")
        def first_at(vs: Any, i: Any, p: Any) -> Any:
            return first(*at(vs, i), p)

        @register_jitable(inline="always")
        def then_at(vs: Any, i: Any, t: Any, p: Any) -> Any:
            return then(*at(vs, i), t, p)

    def kernel(*args: Any) -> None:
        token  # noqa: B018
        full_width()
        ins = borrowed_all(args[:n_in])
        out = borrowed(args[-2])
        p = args[-1]
        n = out.shape[0]
        aliased = out.ctypes.data == ins[0].ctypes.data or out.ctypes.data == ins[-1].ctypes.data
        blocks = 0 if aliased else n // STAGE_BLOCK
        for b in prange(blocks):
            full_width()
            # the block as views: indexed from 0, which LLVM sees is never negative (an
            # index start + i took Numba's wraparound of negative indices, and a scalar loop)
            start = b * STAGE_BLOCK
            vs = sliced(ins, start, start + STAGE_BLOCK)
            o = out[start:start + STAGE_BLOCK]
            for i in range(STAGE_BLOCK):
                o[i] = first_at(vs, i, p)
            for i in range(STAGE_BLOCK):
                o[i] = then_at(vs, i, o[i], p)
        for i in range(blocks * STAGE_BLOCK, n):
            out[i] = then_at(ins, i, first_at(ins, i, p), p)

    return kernel


def _map_pair_staged(first: Any, then1: Any, then2: Any, *, n_in: Any, token: Any) -> Callable[..., Any]:
    """kernel(x, out1, out2, p) of _map_pair for two formulas in two stages with one first
    stage (_map_staged): its values wait in out1."""

    def kernel(x: Any, out1: Any, out2: Any, p: Any) -> None:
        token  # noqa: B018
        full_width()
        x = borrowed(x)
        out1 = borrowed(out1)
        out2 = borrowed(out2)
        n = x.shape[0]
        blocks = 0 if out1.ctypes.data == x.ctypes.data or out2.ctypes.data == x.ctypes.data else n // STAGE_BLOCK
        for b in prange(blocks):
            full_width()
            start = b * STAGE_BLOCK
            xs = x[start:start + STAGE_BLOCK]
            o1 = out1[start:start + STAGE_BLOCK]
            o2 = out2[start:start + STAGE_BLOCK]
            for i in range(STAGE_BLOCK):
                o1[i] = first(xs[i], p)
            for i in range(STAGE_BLOCK):
                v, t = xs[i], o1[i]
                o1[i] = then1(v, t, p)
                o2[i] = then2(v, t, p)
        for i in range(blocks * STAGE_BLOCK, n):
            v = x[i]
            t = first(v, p)
            out1[i] = then1(v, t, p)
            out2[i] = then2(v, t, p)

    return kernel


# Outputs larger than the last-level cache are written with streaming stores where the
# kernel is bound by memory (_api._streams): each block of STAGE_BLOCK elements is
# computed into a scratch row per output, in L1, whose vectors then go to memory past
# the caches (stream_store), without the read of each line that a plain store makes
# first.  relu over 1e7 elements, 2 threads, znver4: 0.74-0.77x the time in float64,
# 0.80-0.94x in float32.


@register_jitable(inline="always")
def _stream_span(out: Any, n: Any) -> Any:
    """(head, lines): out[head:head + lines] is the part of out[:n] in whole
    STREAM_ALIGN-byte lines, those that stream_store may write; head elements before it."""
    per_line = STREAM_ALIGN // out.itemsize
    misaligned = np.intp(out.ctypes.data) % STREAM_ALIGN
    head = min(n, ((STREAM_ALIGN - misaligned) % STREAM_ALIGN) // out.itemsize)
    return head, (n - head) // per_line * per_line


def _streamed(fn1: Any, fn2: Any, *, loop: Any, token: Any) -> Callable[..., Any]:
    """kernel(x, *outs, p) of _map (one input) or _map_pair with streaming stores: the
    blocks that start at the first output's STREAM_ALIGN-byte boundaries go through a
    scratch row per output and stream_store; the elements before the first boundary and
    after the last whole block are written in place.  The caller sees that the outputs
    (two for a pair) share their address modulo STREAM_ALIGN and do not overlap x; the
    formulas, and so the bits, are the map templates' own."""
    pair = loop == "pair"

    @register_jitable(inline="always")
    def block(x: Any, o1: Any, o2: Any, m: Any, p: Any) -> None:
        """The m elements of x into o1 (and o2 for a pair)."""
        for i in range(m):
            v = x[i]
            o1[i] = fn1(v, p)
            if pair:
                o2[i] = fn2(v, p)

    def kernel(*args: Any) -> None:
        token  # noqa: B018
        full_width()
        x = borrowed(args[0])
        out1 = borrowed(args[1])
        out2 = borrowed(args[-2])  # (out1 again but for a pair)
        p = args[-1]
        n = out1.shape[0]
        head, lines = _stream_span(out1, n)
        blocks = lines // STAGE_BLOCK  # (the few lines after them are written in place)
        tasks = (blocks + STREAM_TASK_BLOCKS - 1) // STREAM_TASK_BLOCKS
        for task in prange(tasks):
            full_width()
            scratch = np.empty((2 if pair else 1, STAGE_BLOCK), out1.dtype)
            o1 = scratch[0]
            o2 = scratch[-1]
            for k in range(task * STREAM_TASK_BLOCKS, min(blocks, task * STREAM_TASK_BLOCKS + STREAM_TASK_BLOCKS)):
                start = head + k * STAGE_BLOCK
                block(x[start:start + STAGE_BLOCK], o1, o2, STAGE_BLOCK, p)
                stream_store(out1, start, o1, STAGE_BLOCK)
                if pair:
                    stream_store(out2, start, o2, STAGE_BLOCK)
            stream_fence()
        block(x[:head], out1[:head], out2[:head], head, p)
        rest = head + blocks * STAGE_BLOCK
        block(x[rest:], out1[rest:], out2[rest:], n - rest, p)

    return kernel


ELEMENTWISE_KINDS = tuple(_activations.KINDS)
_MAP_TEMPLATES = {"map": _map, "pair": _map_pair, "times": _map_times}
_STAGED_TEMPLATES = {"map": _map_staged, "times": functools.partial(_map_staged, times=True), "pair": _map_pair_staged}


def staged_loop(loop: str, fns: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """(first, then for each of fns) where ``loop`` over ``fns`` runs in two stages
    (_activations.two_stages): every formula is staged, all with the same first stage."""
    stages = [_activations.STAGES[fn] for fn in fns if fn in _activations.STAGES]
    if loop not in _STAGED_TEMPLATES or len(stages) != len(fns) or len({first for first, _ in stages}) != 1:
        return None
    return (stages[0][0], *(then for _, then in stages))


def _has_streamed_form(kind: str, loop: str) -> bool:
    """Whether loop ``loop`` of ``kind`` has a streamed form (_streamed): one input, map or pair."""
    return loop in ("map", "pair") and len(_activations.KINDS[kind].inputs) == 1


@functools.cache
def streams(name: str, kind: str) -> bool:
    """Whether elementwise_kernel(name, kind, ...) has a streamed form that _api uses:
    one input, a map or pair loop, formulas in one stage (two-stage kernels, whose first
    stage's values wait in the output, ran 1.04-1.11x slower streamed: sigmoid, silu)."""
    loop, fns = _activations.KINDS[kind].loop(_activations.ELEMENTWISE[name])
    return None not in fns and _has_streamed_form(kind, loop) and staged_loop(loop, fns) is None


@functools.cache
def elementwise_kernel(name: str, kind: str, parallel: bool, cache: bool = True, staged: bool = True,
                       streamed: bool = False) -> Any:
    """The kernel of ``kind`` for activation ``name``: ``kernel(*inputs, *outputs, params)``,
    1-D arrays and a tuple of floats (empty for ops without parameters).

    ``cache=False`` gives an uncached twin, whose machine code can be inspected;
    ``staged=False`` runs formulas in two stages in one (for the tests); ``streamed``:
    with streaming stores (_streamed: one input, outputs that do not overlap it, one stage).
    """
    loop, fns = _activations.KINDS[kind].loop(_activations.ELEMENTWISE[name])
    if None in fns:
        raise ValueError(f"{name} has no {kind} formula")
    if streamed:
        if not _has_streamed_form(kind, loop):
            raise ValueError(f"{kind} has no streaming kernel (one input, map or pair loops)")
        return _jit(_streamed, fns[0], fns[-1], parallel=parallel, cache=cache, loop=loop)
    stages = staged_loop(loop, fns) if staged else None
    if stages is not None:
        return _jit(_STAGED_TEMPLATES[loop], *stages, parallel=parallel, cache=cache,
                    n_in=len(_activations.KINDS[kind].inputs))
    return _jit(_MAP_TEMPLATES[loop], *fns, parallel=parallel, cache=cache,
                n_in=len(_activations.KINDS[kind].inputs))


def in_place_kernel(name: str, kind: str, parallel: bool, same: tuple[int, int]) -> Any:
    """elementwise_kernel's kernel for calls whose output same[0] is their input same[1]
    (see _map_in_place): the twin of a map loop, the kernel in one stage for the others
    (a staged kernel keeps its first stage's values in an output)."""
    loop, fns = _activations.KINDS[kind].loop(_activations.ELEMENTWISE[name])
    if loop != "map":
        if staged_loop(loop, fns) is None:
            return elementwise_kernel(name, kind, parallel)
        return elementwise_kernel(name, kind, parallel, staged=False)
    return map_in_place_kernel(name, kind, parallel, same)


@functools.cache
def map_in_place_kernel(name: str, kind: str, parallel: bool, same: tuple[int, int], cache: bool = True) -> Any:
    _, fns = _activations.KINDS[kind].loop(_activations.ELEMENTWISE[name])
    return _jit(_map_in_place, *fns, parallel=parallel, cache=cache, n_in=len(_activations.KINDS[kind].inputs),
                same=same)


# --- a parameter per channel ------------------------------------------------------
# prelu: the arrays are flat runs of planes of ``inner`` elements, plane q of channel
# q % channels (x seen as (outer, channels, inner)); each plane runs the elementwise
# loop of its kind with the parameter tuple (w[q % channels],), a loop invariant.


def _channel_planes(*fns: Any, loop: Any, n_in: Any, n_out: Any, same: Any, token: Any) -> Callable[..., Any]:
    """kernel(*ins, *outs, w, channels, inner), the loop ``loop`` ("map", "pair" or
    "times" of _MAP_TEMPLATES) over each plane with its channel's parameter; where
    inner is 1 (x of (outer, channels)), over rows of channels instead, so that the
    vectorised loop runs along the channels rather than along planes of one element.
    ``same`` (output, input), in place: that input is read through that output (see
    _map_in_place)."""
    fn = fns[0]
    fn2 = fns[-1]
    end = n_in + n_out  # a constant of the closure: Numba slices a tuple by constants only
    through_g, through_x, so = _read_through(same, n_in)

    @register_jitable(inline="always")
    def element(ins: Any, outs: Any, i: Any, p: Any) -> None:
        if loop == "pair":
            if through_x:
                v = outs[so][i]
            else:
                v = ins[0][i]
            outs[0][i] = fn(v, p)
            outs[-1][i] = fn2(v, p)
        elif loop == "times":
            if through_g:
                outs[0][i] = outs[0][i] * fn(ins[-1][i], p)
            elif through_x:
                outs[0][i] = ins[0][i] * fn(outs[0][i], p)
            else:
                outs[0][i] = ins[0][i] * fn(ins[-1][i], p)
        elif n_in == 1:
            if through_x:
                outs[0][i] = fn(outs[0][i], p)
            else:
                outs[0][i] = fn(ins[0][i], p)
        elif through_g:
            outs[0][i] = fn(outs[0][i], ins[-1][i], p)
        elif through_x:
            outs[0][i] = fn(ins[0][i], outs[0][i], p)
        else:
            outs[0][i] = fn(ins[0][i], ins[-1][i], p)

    def kernel(*args: Any) -> None:
        token  # noqa: B018
        full_width()
        ins, outs = args[:n_in], args[n_in:end]
        w, channels, inner = args[-3], args[-2], args[-1]
        size = outs[0].shape[0]
        if inner == 1:
            for r in prange(size // channels):
                full_width()
                s = r * channels
                ins_r, outs_r = sliced(ins, s, s + channels), sliced(outs, s, s + channels)
                for c in range(channels):
                    element(ins_r, outs_r, c, (w[c],))
        else:
            for q in prange(size // inner):
                full_width()
                p = (w[q % channels],)
                s = q * inner
                ins_q, outs_q = sliced(ins, s, s + inner), sliced(outs, s, s + inner)
                for i in range(inner):
                    element(ins_q, outs_q, i, p)

    return kernel


@functools.cache
def channel_kernel(name: str, kind: str, parallel: bool, cache: bool = True,
                   same: tuple[int, int] | None = None) -> Any:
    """The kernel of ``kind`` for activation ``name`` with its parameter per channel:
    ``kernel(*inputs, *outputs, w, channels, inner)``, 1-D arrays and float64 weights;
    ``same`` (output, input): in place."""
    loop, fns = _activations.KINDS[kind].loop(_activations.ELEMENTWISE[name])
    spec = _activations.KINDS[kind]
    return _jit(_channel_planes, *fns, parallel=parallel, cache=cache, loop=loop, n_in=len(spec.inputs),
                n_out=spec.outputs, same=same)


# --- a bias added first ----------------------------------------------------------------
# op(x, bias=b): f(x + b), x + b rounded in x's dtype (as PyTorch's x + b), and in the
# backward d bias, the gradient summed over the axes b is broadcast along, in the
# same pass.  The arrays are a run of rows of ``length`` (the last one may be
# short); the bias of element (r, j) is b[j] "by column" (a bias along the last
# axes: b holds each bias repeated, and short rows of x tiled into one), else
# b[r % channels] (one bias per row: a plane of a channel axis).  Tasks are blocks
# of rb rows by cb columns, chosen from the shape alone (_bias.layout), so that the
# sums' bits do not depend on the thread count.  The gradient is summed in float64:
# by column, BIAS_GROUP rows at a time into a scratch row, whose sums are added to
# partial[0] with their rounding errors carried in partial[1] (two-sum); one row
# at a time (row_sum) otherwise.  bias_totals_kernel sums those per channel.


@register_jitable(inline="never")
def _channel_total(sums: Any, errs: Any, c: Any, n_rb: Any, rows: Any, channels: Any, repeat: Any, by_column: Any,
                   plain: Any) -> Any:
    """The sum of channel c's partial sums: compensated, or ``plain`` (where the
    compensation met inf - inf).  By column, channel c's columns are c * repeat + i
    (i < repeat) in each of the row's tiles of channels * repeat."""
    total, err = 0.0, 0.0
    if by_column:
        span = channels * repeat
        for k in range(n_rb):
            for j0 in range(c * repeat, sums.shape[1], span):
                for j in range(j0, j0 + repeat):
                    if plain:
                        total += sums[k, j]
                    else:
                        total, err = compensated_add(total, err + errs[k, j], sums[k, j])
    else:
        for r in range(c, rows, channels):
            for k in range(sums.shape[1]):
                if plain:
                    total += sums[r, k]
                else:
                    total, err = compensated_add(total, err, sums[r, k])
    return total + err


@register_jitable(inline="never")
def _row_total(row: Any) -> Any:
    """row_sum, or where inf - inf met its compensation, the plain sum (inf, or NaN)."""
    total = row_sum(row)
    if not np.isfinite(total):
        total = 0.0
        for i in range(row.shape[0]):
            total += np.float64(row[i])
    return total


@register_jitable(inline="always")
def _added(v: Any, t: Any) -> Any:
    return v + t


@register_jitable(inline="always")
def _first_row(a: Any) -> Any:
    return (a[0],)


@register_jitable(inline="always")
def _two_rows(a: Any) -> Any:
    return (a[0], a[1])


@register_jitable(inline="always")
def _as_is(v: Any, t: Any) -> Any:
    return v


@register_jitable(inline="always")
def _given_params(t: Any, p: Any) -> Any:
    return p


@register_jitable(inline="always")
def _channel_param(t: Any, p: Any) -> Any:
    return (t,)


@register_jitable(inline="always")
def _no_dparams(x: Any, p: Any) -> Any:
    return (0.0,)


@register_jitable  # (not inlined: Numba's inliner takes no *args)
def _no_second_stage(*args: Any) -> Any:
    """The second stage of a template's formula that has none (never called; typed with
    any formula's arguments: (*values, the first stage's value, p))."""
    return args[-2]


if BIAS_GROUP != 4:  # _group_sum's rows are written out
    raise ImportError("_group_sum sums groups of 4 rows: BIAS_GROUP must be 4")


@register_jitable(inline="always")
def _group_sum(d: Any, s: Any, length: Any, m: Any, sum_r: Any, err_r: Any, first: Any) -> None:
    """The sums over the BIAS_GROUP rows of d at s, s + length, ... (m each) added to
    sum_r (set where ``first``) with their rounding errors in err_r, in one pass over the
    columns: the bits of acc's row-by-row sums (from 0.0, in row order, float64), without
    acc's loads and stores for each row (sigmoid's backward with a bias, float32, one
    thread, znver5: 4096 x 4096 10.3 -> 8.8 ms, 65536 x 128 5.6 -> 4.0 ms)."""
    d0 = d[s:s + m]
    d1 = d[s + length:s + length + m]
    d2 = d[s + 2 * length:s + 2 * length + m]
    d3 = d[s + 3 * length:s + 3 * length + m]
    if first:
        for i in range(m):
            sum_r[i] = (((0.0 + np.float64(d0[i])) + np.float64(d1[i])) + np.float64(d2[i])) + np.float64(d3[i])
            err_r[i] = 0.0
    else:
        for i in range(m):
            a = (((0.0 + np.float64(d0[i])) + np.float64(d1[i])) + np.float64(d2[i])) + np.float64(d3[i])
            total, e = compensated_add(sum_r[i], err_r[i], a)
            sum_r[i] = total
            err_r[i] = e


def _biased(fn: Any, fn2: Any, dparams: Any, first: Any, then: Any, then2: Any, *, loop: Any, n_in: Any, n_out: Any,
            adds: Any, reduces: Any, n_params: Any, weighted: Any, same: Any, staged: Any, apart: Any,
            streamed: Any, token: Any) -> Callable[..., Any]:
    """kernel(*ins, *outs, b, partial, p, rows, length, channels, rb, cb, by_column), the
    loop ``loop`` ("map", "pair" or "times" of _MAP_TEMPLATES) over f(v + bias) for the last
    input v (``adds``; not for f' from y), or over f(v) with the parameters (b's value,)
    (``weighted``: prelu's weight per channel, b holding the weights).  Sums (each into
    partial[2 k] and partial[2 k + 1]): the first output (``reduces``: dbias), then the
    ``n_params`` parameter gradients grad_out * dparams(v, params) (the first input being
    grad_out).  ``same`` (output, input), in place: that input is read through that output
    (see _map_in_place), never with parameter gradients (they read the inputs again).
    ``staged``: the formulas (fn, and fn2 for a pair) are then(v, first(v)) (see
    _map_staged), run in two loops over each piece of STAGE_BLOCK elements of a row, the
    first stage's values waiting in the first output (never in place).  ``apart``: for
    float32, the parameters' terms go into a row of the input's dtype first, their float64
    products in a loop of their own (_add_products; Activation.dparams_apart).
    ``streamed`` (one input, no sums, not in place): each row's piece is written as
    _streamed writes, its blocks of STAGE_BLOCK from the outputs' STREAM_ALIGN-byte
    boundaries through a scratch row per output and stream_store."""
    end = n_in + n_out
    value_of = _added if adds else _as_is
    through_g, through_x, so = _read_through(same, n_in)
    params_of = _channel_param if weighted else _given_params
    first_sum = 1 if reduces else 0  # the sum of the first parameter gradient
    n_sums = first_sum + n_params

    @register_jitable(inline="always")
    def element(ins: Any, outs: Any, i: Any, t: Any, p: Any) -> None:
        if through_x:
            v = value_of(outs[so][i], t)
        else:
            v = value_of(ins[-1][i], t)
        q = params_of(t, p)
        if loop == "pair":
            outs[0][i] = fn(v, q)
            outs[-1][i] = fn2(v, q)
        elif loop == "times":
            if through_g:
                outs[0][i] = outs[0][i] * fn(v, q)
            else:
                outs[0][i] = ins[0][i] * fn(v, q)
        elif n_in == 2:
            if through_g:
                outs[0][i] = fn(outs[0][i], v, q)
            else:
                outs[0][i] = fn(ins[0][i], v, q)
        else:
            outs[0][i] = fn(v, q)

    @register_jitable(inline="always")
    def first_stage(ins: Any, outs: Any, i: Any, t: Any, p: Any) -> None:
        v = value_of(ins[-1][i], t)
        if loop == "map" and n_in == 2:
            outs[0][i] = first(ins[0][i], v, params_of(t, p))
        else:
            outs[0][i] = first(v, params_of(t, p))

    @register_jitable(inline="always")
    def second_stage(ins: Any, outs: Any, i: Any, t: Any, p: Any) -> None:
        v = value_of(ins[-1][i], t)
        q = params_of(t, p)
        s = outs[0][i]
        if loop == "pair":
            outs[0][i] = then(v, s, q)
            outs[-1][i] = then2(v, s, q)
        elif loop == "times":
            outs[0][i] = ins[0][i] * then(v, s, q)
        elif n_in == 2:
            outs[0][i] = then(ins[0][i], v, s, q)
        else:
            outs[0][i] = then(v, s, q)

    def segment_of(step: int) -> Any:
        """segment(ins, outs, bs, n, p): ``element`` over the n elements of a piece of a
        row, element i's bias bs[i * step] (step 1: one per element; 0: bs[0] for all),
        in two stages where ``staged`` and the piece of biases is short (BIAS_STAGED_MAX)."""

        @register_jitable(inline="always")
        def segment(ins: Any, outs: Any, bs: Any, n: Any, p: Any) -> None:
            # (an expression, not branches: they left Numba's SSA pass a variable out of scope)
            done = (n - n % STAGE_BLOCK) * (staged & ((step == 0) | (n < BIAS_STAGED_MAX)))
            for s0 in range(0, done, STAGE_BLOCK):
                # views indexed from 0 (see _map_staged), each on a line of its own
                ins_b = sliced(ins, s0, s0 + STAGE_BLOCK)
                outs_b = sliced(outs, s0, s0 + STAGE_BLOCK)
                bs_b = bs[s0 * step:s0 * step + STAGE_BLOCK]
                for i in range(STAGE_BLOCK):
                    first_stage(ins_b, outs_b, i, bs_b[i * step], p)
                for i in range(STAGE_BLOCK):
                    second_stage(ins_b, outs_b, i, bs_b[i * step], p)
            ins_t = sliced(ins, done, n)
            outs_t = sliced(outs, done, n)
            bs_t = bs[done * step:]
            for i in range(n - done):
                element(ins_t, outs_t, i, bs_t[i * step], p)

        return segment

    by_element, by_plane = segment_of(1), segment_of(0)

    def streamed_of(segment: Any, step: int) -> Any:
        """piece(ins, outs, bs, n, p, scratch): ``segment`` over the n elements, those in
        the outputs' whole STREAM_ALIGN-byte lines (_stream_span) in blocks of up to
        STAGE_BLOCK (the last one shorter) into the scratch rows (one per output) and from
        there past the caches; the head before the first line and the tail after the last
        in place."""

        @register_jitable(inline="always")
        def piece(ins: Any, outs: Any, bs: Any, n: Any, p: Any, scratch: Any) -> None:
            out = outs[0]
            head, lines = _stream_span(out, n)
            segment(sliced(ins, 0, head), sliced(outs, 0, head), bs, head, p)
            rest = head + lines
            for k in range((lines + STAGE_BLOCK - 1) // STAGE_BLOCK):
                s0 = head + k * STAGE_BLOCK
                m = min(STAGE_BLOCK, rest - s0)
                segment(sliced(ins, s0, s0 + m), scratch_rows(scratch), bs[s0 * step:], m, p)
                stream_store(out, s0, scratch[0], m)
                if n_out == 2:
                    stream_store(outs[-1], s0, scratch[-1], m)
            segment(sliced(ins, rest, n), sliced(outs, rest, n), bs[rest * step:], n - rest, p)

        return piece

    scratch_rows = _first_row if n_out == 1 else _two_rows
    by_element_streamed, by_plane_streamed = streamed_of(by_element, 1), streamed_of(by_plane, 0)

    def kernel(*args: Any) -> None:
        token  # noqa: B018
        full_width()
        ins, outs = args[:n_in], args[n_in:end]
        b, partial, p = args[-9], args[-8], args[-7]  # constant indices: Numba types them statically
        rows, length, channels, rb, cb, by_column = args[-6], args[-5], args[-4], args[-3], args[-2], args[-1]
        size = outs[0].shape[0]
        n_rb, n_cb = (rows + rb - 1) // rb, (length + cb - 1) // cb
        for task in prange(n_rb * n_cb):
            full_width()
            block, col = task // n_cb, task % n_cb
            c0 = col * cb
            m = min(cb, length - c0)
            stop = min(rows, block * rb + rb)
            if streamed:
                scratch = np.empty((n_out, STAGE_BLOCK), outs[0].dtype)
                for r in range(block * rb, stop):
                    s = r * length + c0
                    n = min(m, size - s)  # the last row may be short
                    if n > 0 and by_column:
                        by_element_streamed(sliced(ins, s, s + n), sliced(outs, s, s + n), b[c0:c0 + m], n, p, scratch)
                    elif n > 0:
                        c = r % channels
                        by_plane_streamed(sliced(ins, s, s + n), sliced(outs, s, s + n), b[c:c + 1], n, p, scratch)
                stream_fence()
            elif by_column and not n_sums:
                b_r = b[c0:c0 + m]
                for r in range(block * rb, stop):
                    s = r * length + c0
                    n = min(m, size - s)  # the last row may be short
                    if n > 0:
                        by_element(sliced(ins, s, s + n), sliced(outs, s, s + n), b_r, n, p)
            elif by_column:
                b_r = b[c0:c0 + m]
                acc = np.zeros((n_sums, m))
                terms_r = np.empty((n_params if apart else 0, m), ins[-1].dtype)
                for group in range(block * rb, stop, BIAS_GROUP):
                    # a group of whole rows sums its first output (dbias) column by column
                    # after its rows, in one pass (_group_sum), not row by row into acc
                    whole = reduces and group + BIAS_GROUP <= stop and size - (group + BIAS_GROUP - 1) * length - c0 >= m
                    for r in range(group, min(group + BIAS_GROUP, stop)):
                        s = r * length + c0
                        n = min(m, size - s)
                        if n > 0:
                            ins_r, outs_r = sliced(ins, s, s + n), sliced(outs, s, s + n)
                            by_element(ins_r, outs_r, b_r, n, p)
                            if reduces and not whole:
                                d, a = outs_r[0], acc[0]
                                for i in range(n):
                                    a[i] += np.float64(d[i])
                            if n_params:
                                g, v = ins_r[0], ins_r[-1]
                                if apart and single_precision(v):
                                    for i in range(n):
                                        terms = dparams(value_of(v[i], b_r[i]), params_of(b_r[i], p))
                                        for k in range(n_params):
                                            terms_r[k, i] = terms[k]
                                    for k in range(n_params):
                                        _add_products(g, terms_r[k], acc[first_sum + k], n)
                                else:
                                    for i in range(n):
                                        terms = dparams(value_of(v[i], b_r[i]), params_of(b_r[i], p))
                                        gi = np.float64(g[i])
                                        for k in range(n_params):
                                            acc[first_sum + k, i] += gi * terms[k]
                    # the group's sums into the block's (set by the first), with their rounding errors
                    if whole:
                        _group_sum(outs[0], group * length + c0, length, m, partial[0, block, c0:c0 + m],
                                   partial[1, block, c0:c0 + m], group == block * rb)
                    for k in range(1 if whole else 0, n_sums):
                        sum_r, err_r, a = partial[2 * k, block, c0:c0 + m], partial[2 * k + 1, block, c0:c0 + m], acc[k]
                        if group == block * rb:
                            for i in range(m):
                                sum_r[i] = a[i]
                                err_r[i] = 0.0
                                a[i] = 0.0
                        else:
                            for i in range(m):
                                total, e = compensated_add(sum_r[i], err_r[i], a[i])
                                sum_r[i] = total
                                err_r[i] = e
                                a[i] = 0.0
            else:
                terms_r = np.empty((n_params if apart else 0, m), ins[-1].dtype)
                products_r = np.empty((n_params, m))
                for r in range(block * rb, stop):
                    s = r * length + c0
                    ins_r, outs_r = sliced(ins, s, s + m), sliced(outs, s, s + m)
                    c = r % channels
                    t = b[c]
                    by_plane(ins_r, outs_r, b[c:c + 1], m, p)
                    if n_params:
                        g, v, q = ins_r[0], ins_r[-1], params_of(t, p)
                        if apart and single_precision(v):
                            for i in range(m):
                                terms = dparams(value_of(v[i], t), q)
                                for k in range(n_params):
                                    terms_r[k, i] = terms[k]
                            for k in range(n_params):
                                _times_in_place(g, terms_r[k], products_r[k], m)
                        else:
                            for i in range(m):
                                terms = dparams(value_of(v[i], t), q)
                                gi = np.float64(g[i])
                                for k in range(n_params):
                                    products_r[k, i] = gi * terms[k]
                    if reduces:
                        partial[0, r, col] = _row_total(outs_r[0])
                    for k in range(n_params):
                        partial[2 * (first_sum + k), r, col] = _row_total(products_r[k])

    return kernel


@register_jitable
def _add_products(g: Any, terms: Any, acc: Any, n: Any) -> None:
    """acc[i] += g[i] terms[i] for i < n, in float64 (exact products of float32 factors).
    The parameters' gradients take their terms into a row of x's dtype first and form
    the products in a loop of their own: in one loop with the float64 sums, float32
    formulas ran 8 to a vector (elu 1e6 float32: 0.61 -> 0.48 ms)."""
    full_width()
    for i in range(n):
        acc[i] += np.float64(g[i]) * np.float64(terms[i])


@register_jitable
def _times_in_place(g: Any, terms: Any, out: Any, n: Any) -> None:
    """out[i] = g[i] terms[i] for i < n, in float64 (as _add_products)."""
    full_width()
    for i in range(n):
        out[i] = np.float64(g[i]) * np.float64(terms[i])


@functools.cache
def bias_streams(name: str, kind: str, param_grads: bool = False, weighted: bool = False, biased: bool = True,
                 same: tuple[int, int] | None = None) -> bool:
    """Whether bias_kernel with these arguments has a streamed form (``streamed=True``):
    a kind with one input and a streamed form (_has_streamed_form: forward, grad and
    value_and_grad), a bias added, no sums (no backward, no parameters' gradients), not
    in place."""
    spec = _activations.KINDS[kind]
    loop, _ = spec.loop(_activations.ELEMENTWISE[name])
    return (_has_streamed_form(kind, loop) and same is None and biased and not param_grads and not weighted
            and not kind.startswith("backward"))


@functools.cache
def bias_kernel(name: str, kind: str, parallel: bool, cache: bool = True, param_grads: bool = False,
                weighted: bool = False, biased: bool = True, same: tuple[int, int] | None = None,
                staged: bool = True, streamed: bool = False) -> Any:
    """The kernel of ``kind`` for activation ``name`` with a bias added to its input:
    ``kernel(*inputs, *outputs, b, partial, params, rows, length, channels, rb, cb, by_column)``
    (``_biased``), 1-D arrays, b of the inputs' dtype, partial (2 n, ., .) float64 for n
    sums; ``param_grads``: also the parameters' gradients (kind backward_x); ``weighted``:
    b is prelu's weight per channel (float64), not added; not ``biased``: b is 0 and not
    added (the parameters' gradients alone); ``same`` (output, input): in place;
    ``staged=False`` as for elementwise_kernel; ``streamed``: with streaming stores (a
    kind with a streamed form, _has_streamed_form: bias_streams; no sums, not in place)."""
    act = _activations.ELEMENTWISE[name]
    if same is not None and param_grads:
        raise ValueError("the parameters' gradients read the inputs after the outputs are written: not in place")
    loop, fns = _activations.KINDS[kind].loop(act)
    if None in fns:
        raise ValueError(f"{name} has no {kind} formula")
    spec = _activations.KINDS[kind]
    if streamed and not bias_streams(name, kind, param_grads=param_grads, weighted=weighted, biased=biased, same=same):
        raise ValueError(f"{kind} with a bias has no streaming kernel (one input, no sums, not in place)")
    n_params = len(act.grad_params) if param_grads else 0
    stages = staged_loop(loop, fns) if staged and same is None and not weighted else None
    first, then, then2 = (stages[0], stages[1], stages[-1]) if stages else (fns[0], _no_second_stage, _no_second_stage)
    return _jit(_biased, fns[0], fns[-1], act.df_dparams if n_params else _no_dparams, first, then, then2,
                parallel=parallel, cache=cache, staged=stages is not None, loop=loop, n_in=len(spec.inputs),
                n_out=spec.outputs,
                adds=biased and kind != "backward_y" and not weighted,
                reduces=biased and kind.startswith("backward") and not weighted,
                n_params=n_params, weighted=weighted, same=same, apart=bool(n_params) and act.dparams_apart,
                streamed=streamed)


def _bias_totals(*, token: Any) -> Callable[..., Any]:
    """kernel(partial, dbias, rb, rows, channels, repeat, by_column): dbias[c], the sum of
    channel c's partial sums (those of a bias_kernel), compensated.  By column, the row
    blocks' and tiles' sums are first added column by column (vectorised), then each
    channel's repeat columns."""

    def kernel(partial: Any, dbias: Any, rb: Any, rows: Any, channels: Any, repeat: Any, by_column: Any) -> None:
        token  # noqa: B018
        full_width()
        sums, errs = partial[0], partial[1]
        n_rb = (rows + rb - 1) // rb
        if by_column:
            span = channels * repeat
            total, err = np.zeros(span), np.zeros(span)
            for k in range(n_rb):
                for t in range(sums.shape[1] // span):
                    s_k, e_k = sums[k, t * span:(t + 1) * span], errs[k, t * span:(t + 1) * span]
                    for j in range(span):
                        total[j], err[j] = compensated_add(total[j], err[j] + e_k[j], s_k[j])
            if repeat == 1:  # the loop below with one column a channel, which LLVM vectorises
                for c in range(channels):
                    channel_sum, channel_err = compensated_add(0.0, 0.0 + err[c], total[c])
                    dbias[c] = channel_sum + channel_err
            else:
                for c in range(channels):
                    channel_sum, channel_err = 0.0, 0.0
                    for j in range(c * repeat, c * repeat + repeat):
                        channel_sum, channel_err = compensated_add(channel_sum, channel_err + err[j], total[j])
                    dbias[c] = channel_sum + channel_err
        else:
            for c in range(channels):
                dbias[c] = _channel_total(sums, errs, c, n_rb, rows, channels, repeat, by_column, False)
        for c in range(channels):
            if not np.isfinite(dbias[c]):  # inf - inf in a compensation: the plain sum (inf, or NaN)
                dbias[c] = _channel_total(sums, errs, c, n_rb, rows, channels, repeat, by_column, True)

    return kernel


@functools.cache
def bias_totals_kernel(cache: bool = True) -> Any:
    """The kernel that sums a bias_kernel's partial sums per channel (``_bias_totals``): serial,
    a small pass over the partial sums."""
    return _jit(_bias_totals, parallel=False, cache=cache)


# --- gated units -------------------------------------------------------------------
# The input is a flat run of rows of 2n elements, each row's halves being a = row[:n]
# and b = row[n:] (any axis: see _api's GatedOp), or two arrays of n (one "row").
# Output k = r n + j (y, grad_out) pairs with input r stride + j (the halves, and the
# input gradient's halves).  The parallel kernel hands out tasks of GATED_TASK
# outputs, so that one long row and many short ones both spread over the threads.


def _gated(f: Any, df: Any, first: Any, then_f: Any, then_df: Any, *, staged: Any, activated: Any, needs_g: Any,
           writes_y: Any, writes_d: Any, token: Any) -> Callable[..., Any]:
    """kernel(g, a, b, y, da, db, rows, n, stride, p) for a gated unit whose
    activation has the formulas f and f' (df); arrays a kind does not use are empty.

    f(u) and f'(u) are computed in the input's dtype (float64 formulas for float32
    ran at half the speed), the products in float64, so that each result is rounded
    once: g v is exact there for float32.  A result is then within its activation's
    bound plus the product's rounding (ACCURACY.md).  ``staged``: f (and f', where the
    kind takes it) are in two stages with the first stage ``first`` (see _map_staged),
    whose values wait in the output of f' (or of f)."""

    def kernel(g: Any, a: Any, b: Any, y: Any, da: Any, db: Any, rows: Any, n: Any, stride: Any, p: Any) -> None:
        token  # noqa: B018
        full_width()
        u_in, v_in = (b, a) if activated else (a, b)
        du_out, dv_out = (db, da) if activated else (da, db)
        total = rows * n
        for t in prange((total + GATED_TASK - 1) // GATED_TASK):
            full_width()
            k = t * GATED_TASK
            end = min(k + GATED_TASK, total)
            r = k // n
            j = k - r * n
            while k < end:
                m = min(n - j, end - k)
                s = r * stride + j
                # slices, not offsets: Numba's getitem wraps negative indices, and
                # with an offset it cannot know the index is not negative (half the speed)
                for i0 in range(0, m, STAGE_BLOCK if staged else m):
                    c = min(m - i0, STAGE_BLOCK) if staged else m
                    a0, b0 = s + i0, k + i0  # (slices, each on a line of its own: see _scalar.borrowed)
                    us = u_in[a0:a0 + c]
                    vs = v_in[a0:a0 + c]
                    gs = g[b0:b0 + c]
                    ys = y[b0:b0 + c]
                    dus = du_out[a0:a0 + c]
                    dvs = dv_out[a0:a0 + c]
                    ts = dus if writes_d else ys
                    if staged:
                        for i in range(c):
                            ts[i] = first(us[i], p)
                    for i in range(c):
                        u, v = us[i], np.float64(vs[i])
                        t = ts[i]
                        fu = np.float64(then_f(u, t, p) if staged else f(u, p))
                        if writes_y:
                            ys[i] = v * fu
                        if writes_d:
                            gv = np.float64(gs[i]) * v if needs_g else v
                            dus[i] = gv * np.float64(then_df(u, t, p) if staged else df(u, p))
                            dvs[i] = np.float64(gs[i]) * fu if needs_g else fu
                k += m
                r += 1
                j = 0

    return kernel


@functools.cache
def gated_kernel(name: str, activation: str, kind: str, parallel: bool, cache: bool = True, staged: bool = True) -> Any:
    """The kernel of ``kind`` (``_gatedops.GATED_KINDS``) of gated unit ``name`` whose
    activation is the definition ``activation`` (gelu or gelu_tanh for geglu);
    ``staged=False`` as for elementwise_kernel."""
    act = _activations.ELEMENTWISE[activation]
    needs_g, writes_y, writes_d = _gatedops.GATED_KINDS[kind]
    stages = staged_loop("pair", (act.f, act.df)) if staged else None
    first, then_f, then_df = stages or (act.f, _no_second_stage, _no_second_stage)
    return _jit(_gated, act.f, act.df, first, then_f, then_df, parallel=parallel, cache=cache, interleave=False,
                staged=stages is not None,
                activated=_gatedops.GATED_OPS[name].activated, needs_g=needs_g, writes_y=writes_y, writes_d=writes_d)


# --- row ops ---------------------------------------------------------------------
# The row functions, blocks and lanes phases come from the definitions in
# _rowops; each template below runs one form of them over a whole array.  _api
# never hands a kernel an out that overlaps an input: LLVM vectorises no loop
# whose output may overlap its input.


def _rows(fn: Any, *, n_in: Any, token: Any) -> Callable[..., Any]:
    """kernel(*ins, out): (rows, n) C-contiguous arrays, one row per softmax, vectorised along the row."""

    def kernel(*args: Any) -> None:
        token  # noqa: B018
        full_width()
        # borrowed arrays (_scalar.borrowed): a row's view of a reference-counted array took
        # an atomic increment and decrement of its count, 10-25 ns a row
        ins = borrowed_all(args[:n_in])
        out = borrowed(args[-1])
        for r in prange(out.shape[0]):
            full_width()
            fn(at(ins, r), out[r])

    return kernel


def _rows_fast_first(fn: Any, fast: Any, *, n_in: Any, token: Any) -> Callable[..., Any]:
    """_rows for a row function with a fast_row (RowFunction.fast_row): each row tries it
    first, and takes fn where it declines; an in-place call (out is the first input)
    takes fn throughout.  The call of fn stays here, out of the row function: see
    fast_row."""

    def kernel(*args: Any) -> None:
        token  # noqa: B018
        full_width()
        ins = borrowed_all(args[:n_in])
        out = borrowed(args[-1])
        in_place = out.ctypes.data == ins[0].ctypes.data
        for r in prange(out.shape[0]):
            full_width()
            if in_place or not fast(at(ins, r), out[r]):
                fn(at(ins, r), out[r])

    return kernel


# Short rows of a C-contiguous (rows, n) array (1e6 rows of 10) run in blocks of
# ROW_BLOCK rows, each block seen as one flat run of elements.  A loop along a
# row of 10 is too short to vectorise, and transposing blocks for the lanes
# formulation cost more than the softmax itself.  Only the reductions (max,
# sums) run row by row; the exps and every other elementwise step run over the
# whole block as one vectorised loop.  The gufuncs run the same functions on
# one row at a time, and give the same bits.


def _blocks(fn: Any, *, n_in: Any, token: Any) -> Callable[..., Any]:
    def kernel(*args: Any) -> None:
        token  # noqa: B018
        full_width()
        ins, out = args[:n_in], args[-1]
        rows, n = out.shape
        flat, of = reshaped(ins, -1), out.reshape(-1)
        for t in prange((rows + ROW_BLOCK - 1) // ROW_BLOCK):
            full_width()
            a, z = t * ROW_BLOCK * n, min((t + 1) * ROW_BLOCK, rows) * n
            fn(at(flat, slice(a, z)), of[a:z], n)

    return kernel


# The same rows vectorised across rows: a softmax over short rows or along an
# axis that is not the last runs each phase for many rows at once, the data
# viewed as (outer, n, inner) with the softmax along the middle axis; a task
# takes lanes c0..c1 of the inner axis of one outer index.


# Grouped lanes: along an axis with few elements after it (axis 0 of (1e6, 10)
# has 10 lanes), the lanes loops are too short to vectorise.  With n divisible
# by a group size G, the array is viewed as (outer, n / G, G * inner): every
# G consecutive rows become one row of G * inner lanes, and lane b + k * inner
# holds part of lane b's softmax, folded together between the phases.  Group 1
# is the plain lanes form, in tasks of up to LANE_BLOCK lanes.


def _lanes(first: Any, second: Any, third: Any, *, n_in: Any, token: Any) -> Callable[..., Any]:
    def kernel(*args: Any) -> None:  # (*ins, out, group)
        token  # noqa: B018
        full_width()
        ins, out, group = args[:n_in], args[-2], args[-1]
        outer, n, inner = out.shape
        rows, width = n // group, group * inner
        grouped, og = reshaped(ins, (outer, rows, width)), out.reshape((outer, rows, width))
        block = LANE_BLOCK if group == 1 else width
        blocks = (width + block - 1) // block
        for t in prange(outer * blocks):
            full_width()
            o, c0 = t // blocks, (t % blocks) * block
            c1 = min(c0 + block, width)
            period = c1 - c0 if group == 1 else inner
            m = first(grouped, o, c0, c1, 0, rows)
            fold_max(m, period)
            total, err = second(grouped, og, o, c0, c1, m, 0, rows)
            fold_sum(total, err, period)
            third(grouped, og, o, c0, c1, m, total, err, 0, rows)

    return kernel


# Split lanes: where the outer indices and lane blocks are fewer than the
# threads (axis 0 of (1e6, 10) or of (65536, 128)), the rows of each outer index
# (grouped as above) are split into one range per task, and each phase runs on
# all ranges at once; between phases the tasks' maxima and compensated sums
# are combined (and folded for grouped lanes).


def _split_lanes(first: Any, second: Any, third: Any, *, n_in: Any, token: Any) -> Callable[..., Any]:
    max_lanes = first is not _rowmath.no_max  # the backward ops take no maximum

    def kernel(*args: Any) -> None:  # (*ins, out, group, tasks)
        token  # noqa: B018
        full_width()
        ins, out, group, tasks = args[:n_in], args[-3], args[-2], args[-1]
        outer, n, inner = out.shape
        rows, width = n // group, group * inner
        grouped, og = reshaped(ins, (outer, rows, width)), out.reshape((outer, rows, width))
        chunk = (rows + tasks - 1) // tasks
        tasks = (rows + chunk - 1) // chunk
        for o in range(outer):
            maxima = np.empty((tasks, width if max_lanes else 0), out.dtype)
            for t in prange(tasks):
                full_width()
                j0, j1 = task_rows(t, chunk, rows)
                maxima[t] = first(grouped, o, 0, width, j0, j1)
            m = combine_maxima(maxima)
            fold_max(m, inner)
            totals, errs = np.empty((tasks, width)), np.empty((tasks, width))
            for t in prange(tasks):
                full_width()
                j0, j1 = task_rows(t, chunk, rows)
                total_t, err_t = second(grouped, og, o, 0, width, m, j0, j1)
                totals[t], errs[t] = total_t, err_t
            total, err = combine_sums(totals, errs)
            fold_sum(total, err, inner)
            for t in prange(tasks):
                full_width()
                j0, j1 = task_rows(t, chunk, rows)
                third(grouped, og, o, 0, width, m, total, err, j0, j1)

    return kernel


ROW_FORMS = {  # form -> (template, the definition's field it runs); the arrays it takes
    "rows": (_rows, "row"),  # (rows, n) C-contiguous, one row per softmax
    "blocks": (_blocks, "block"),  # the same arrays, short rows, in blocks of rows
    "lanes": (_lanes, "phases"),  # (outer, n, inner) C-contiguous, along axis 1; takes the group size
    "split_lanes": (_split_lanes, "phases"),  # the same over several tasks; takes group, tasks
}


# where= and temperature=: the row function of the op runs on a scratch copy of
# each row (or block of short rows) with its masked entries filled with the value
# that takes no part in the row, and a forward's input divided by the
# temperature (kept_quotients).  Row r takes row r % keep's rows of the mask, so a
# mask broadcast along the leading axes ((n, n) against (batch, heads, n, n)) is
# never copied out to x's size.  The kernels take (rows, n) C-contiguous arrays:
# _api moves the row axes last.  With temperature= alone, scaled_row_kernel's
# templates run instead, without the copy: a forward's scaled forms, which divide x
# as they read it, and a backward's own forms, each row then divided.


@register_jitable
def scratch_chunk(rows: int) -> int:
    """How many of ``rows`` rows each task takes in a kernel that copies each row to a
    scratch row: a task allocates its scratch row once.  An allocation per row cost
    softmax(x, where=m) a sixth of its time on (65536, 128) float64, and a tenth on
    (4096, 4096) float32 (znver5: 1.44x the plain softmax's time, 1.29-1.35x with 16 rows a
    task).  At least 64 tasks where there are rows for them, for the threads to share."""
    return max(1, min(16, rows // 64))


def _kept_rows(fn: Any, *, fill: Any, empty: Any, token: Any) -> Callable[..., Any]:
    """kernel(x, keep, t, safe, out): fn over each row of x / t, masked where keep is
    False; with ``safe``, a row with nothing but fill gives ``empty`` (PyTorch's safe
    softmax: a row with no unmasked entry gives probability 0, not NaN)."""

    def kernel(x: Any, keep: Any, t: Any, safe: Any, out: Any) -> None:
        token  # noqa: B018
        x = borrowed(x)  # (see _rows)
        keep = borrowed(keep)
        out = borrowed(out)
        full_width()
        rows, n = out.shape
        period, td = keep.shape[0], like(x[0, 0], t)
        chunk = scratch_chunk(rows)
        tasks = (rows + chunk - 1) // chunk
        for task in prange(tasks):
            full_width()
            xs = np.empty(n, x.dtype)
            r0, r1 = task_rows(task, chunk, rows)
            for r in range(r0, r1):
                if not kept_quotients(x[r], keep[r % period], td, fill, xs) and safe:
                    out[r, :] = empty
                else:
                    fn((xs,), out[r])

    return kernel


def _kept_blocks(fn: Any, *, fill: Any, empty: Any, token: Any) -> Callable[..., Any]:
    """As _kept_rows for short rows, the row function's block form over ROW_BLOCK rows."""

    def kernel(x: Any, keep: Any, t: Any, safe: Any, out: Any) -> None:
        token  # noqa: B018
        full_width()
        rows, n = out.shape
        td = like(x[0, 0], t)
        of, xf = out.reshape(-1), x.reshape(-1)
        for b in prange((rows + ROW_BLOCK - 1) // ROW_BLOCK):
            full_width()
            r0, r1 = b * ROW_BLOCK, min((b + 1) * ROW_BLOCK, rows)
            xs = np.empty((r1 - r0) * n, x.dtype)
            live = np.empty(r1 - r0, np.bool_)
            kept_block_quotients(xf[r0 * n:r1 * n], keep, r0, td, fill, xs, live)
            fn((xs,), of[r0 * n:r1 * n], n)
            for r in range(r0, r1):
                if safe and not live[r - r0]:
                    out[r, :] = empty

    return kernel


def _kept_blocks_backward(fn: Any, *, fills: Any, token: Any) -> Callable[..., Any]:
    g_fill, y_fill = fills

    def kernel(g: Any, y: Any, keep: Any, t: Any, out: Any) -> None:
        token  # noqa: B018
        full_width()
        rows, n = out.shape
        td, one = like(g[0, 0], t), like(g[0, 0], 1.0)
        rd = quotient(one, td)
        of, gf, yf = out.reshape(-1), g.reshape(-1), y.reshape(-1)
        for b in prange((rows + ROW_BLOCK - 1) // ROW_BLOCK):
            full_width()
            r0, r1 = b * ROW_BLOCK, min((b + 1) * ROW_BLOCK, rows)
            gs, ys = np.empty((r1 - r0) * n, g.dtype), np.empty((r1 - r0) * n, y.dtype)
            live = np.empty(r1 - r0, np.bool_)
            kept_block_quotients(gf[r0 * n:r1 * n], keep, r0, one, g_fill, gs, live)
            kept_block_quotients(yf[r0 * n:r1 * n], keep, r0, one, y_fill, ys, live)
            o = of[r0 * n:r1 * n]
            fn((gs, ys), o, n)
            if td != 1:
                for i in range(o.shape[0]):
                    o[i] = quotient_by(o[i], td, rd)

    return kernel


def _kept_select_rows(fn: Any, *, empty: Any, token: Any) -> Callable[..., Any]:
    """As _kept_rows with t == 1, with a forward's kept form (RowFunction.kept), which
    selects the kept x as it reads x: no scratch rows."""

    def kernel(x: Any, keep: Any, t: Any, safe: Any, out: Any) -> None:
        token  # noqa: B018
        x = borrowed(x)  # (see _rows)
        keep = borrowed(keep)
        out = borrowed(out)
        full_width()
        period = keep.shape[0]
        for r in prange(out.shape[0]):
            full_width()
            if not fn((x[r], keep[r % period]), out[r]) and safe:
                out[r, :] = empty

    return kernel


def _kept_select_rows_backward(fn: Any, *, fills: Any, token: Any) -> Callable[..., Any]:
    """kernel(g, y, keep, t, out): the backward over each row with its masked entries of
    g and y taken as their fills (they then get gradient 0), divided by t (the gradient
    of x / t): the backward's kept form (RowFunction.kept), which selects the kept g and
    y as it reads them, no scratch rows (those cost softmax's 1.81x the plain backward's
    time on 4096 x 4096 float32, znver4; 1.18-1.39x without)."""

    def kernel(g: Any, y: Any, keep: Any, t: Any, out: Any) -> None:
        token  # noqa: B018
        g = borrowed(g)  # (see _rows)
        y = borrowed(y)
        keep = borrowed(keep)
        out = borrowed(out)
        full_width()
        period, td = keep.shape[0], like(g[0, 0], t)
        rd = quotient(like(g[0, 0], 1.0), td)
        fg, fy = like(g[0, 0], fills[0]), like(y[0, 0], fills[1])
        for r in prange(out.shape[0]):
            full_width()
            o = out[r]
            fn((g[r], y[r], keep[r % period], fg, fy), o)
            if td != 1:
                for i in range(o.shape[0]):
                    o[i] = quotient_by(o[i], td, rd)

    return kernel


_KEPT_FORMS = {  # (form, backward) -> (template, the definition's field it runs)
    ("rows", False): (_kept_rows, "row"),
    ("select_rows", False): (_kept_select_rows, "kept"),
    ("blocks", False): (_kept_blocks, "block"),
    ("rows", True): (_kept_select_rows_backward, "kept"),  # (a backward's rows always select)
    ("blocks", True): (_kept_blocks_backward, "block"),
}


@functools.cache
def kept_row_kernel(name: str, parallel: bool, form: str, cache: bool = True) -> Any:
    """The kernel of row function ``name`` with where= and temperature= in ``form``
    ("rows", "blocks" or a forward's "select_rows": kept_form): ``kernel(x, keep, t, safe,
    out)`` for a forward, ``kernel(grad_out, y, keep, t, out)`` for a backward."""
    fn = _rowops.ROW_FUNCTIONS[name]
    backward = len(fn.inputs) == 2
    template, field = _KEPT_FORMS[form, backward]
    extra: dict[str, Any] = dict(fills=fn.masked_fills) if backward else dict(empty=fn.empty_row)
    if template is _kept_rows or template is _kept_blocks:
        extra["fill"] = fn.masked_fills[0]
    return _jit(template, getattr(fn, field), parallel=parallel, fastmath=LOOP_MATH, cache=cache, **extra)


def kept_form(name: str, form: str, t: float) -> str:
    """The form of kept_row_kernel for rows where the plain op runs ``form``: a
    forward's rows with t == 1 take its kept form where it has one (RowFunction.kept),
    which selects the kept x as each pass reads it (a backward's "rows" always do).
    Measured on znver4 only, the masked op's time over the plain op's (float32; the
    scratch copy's in parentheses).  One thread: softmax rows of 32 1.11x (1.81x), 128
    1.17x (1.56x), 512 1.18x (1.28x), 4096 1.13x (1.28x); log_softmax 4096 1.17x
    (1.40x); float64 rows of 32 to 1024 1.01-1.17x (1.10-1.58x).  Backwards, two
    threads: softmax 4096 x 4096 1.18-1.39x (1.81x), log_softmax 1.04-1.21x (1.68x);
    65536 x 128 1.20-1.29x (1.40x) and 1.25-1.27x (1.61x)."""
    fn = _rowops.ROW_FUNCTIONS[name]
    if form == "rows" and t == 1 and len(fn.inputs) == 1 and fn.kept is not None:
        return "select_rows"
    return form


def _scaled_rows(fn: Any, *, token: Any) -> Callable[..., Any]:
    """kernel(x, t, out): a forward's ``scaled`` row form over each row of x / t."""

    def kernel(x: Any, t: Any, out: Any) -> None:
        token  # noqa: B018
        x = borrowed(x)  # (see _rows)
        out = borrowed(out)
        full_width()
        divisor = np.empty(2, x.dtype)  # (t, 1 / t) in x's dtype, as kept_quotients takes them
        divisor[0] = like(x[0, 0], t)
        divisor[1] = quotient(like(x[0, 0], 1.0), divisor[0])
        for r in prange(out.shape[0]):
            full_width()
            fn((x[r], divisor), out[r])

    return kernel


def _scaled_blocks(fn: Any, *, token: Any) -> Callable[..., Any]:
    """As _scaled_rows for short rows, the ``scaled`` block form over ROW_BLOCK rows."""

    def kernel(x: Any, t: Any, out: Any) -> None:
        token  # noqa: B018
        full_width()
        rows, n = out.shape
        divisor = np.empty(2, x.dtype)
        divisor[0] = like(x[0, 0], t)
        divisor[1] = quotient(like(x[0, 0], 1.0), divisor[0])
        of, xf = out.reshape(-1), x.reshape(-1)
        for b in prange((rows + ROW_BLOCK - 1) // ROW_BLOCK):
            full_width()
            a, z = b * ROW_BLOCK * n, min((b + 1) * ROW_BLOCK, rows) * n
            fn((xf[a:z], divisor), of[a:z], n)

    return kernel


def _scaled_rows_backward(fn: Any, *, token: Any) -> Callable[..., Any]:
    """kernel(g, y, t, out): a backward over each row, divided by t in the row's pass
    (the gradient of x / t): _kept_select_rows_backward without the mask."""

    def kernel(g: Any, y: Any, t: Any, out: Any) -> None:
        token  # noqa: B018
        g = borrowed(g)  # (see _rows)
        y = borrowed(y)
        out = borrowed(out)
        full_width()
        td = like(g[0, 0], t)
        rd = quotient(like(g[0, 0], 1.0), td)
        for r in prange(out.shape[0]):
            full_width()
            o = out[r]
            fn((g[r], y[r]), o)
            for i in range(o.shape[0]):
                o[i] = quotient_by(o[i], td, rd)

    return kernel


def _scaled_blocks_backward(fn: Any, *, token: Any) -> Callable[..., Any]:
    def kernel(g: Any, y: Any, t: Any, out: Any) -> None:
        token  # noqa: B018
        full_width()
        rows, n = out.shape
        td = like(g[0, 0], t)
        rd = quotient(like(g[0, 0], 1.0), td)
        of, gf, yf = out.reshape(-1), g.reshape(-1), y.reshape(-1)
        for b in prange((rows + ROW_BLOCK - 1) // ROW_BLOCK):
            full_width()
            a, z = b * ROW_BLOCK * n, min((b + 1) * ROW_BLOCK, rows) * n
            o = of[a:z]
            fn((gf[a:z], yf[a:z]), o, n)
            for i in range(o.shape[0]):
                o[i] = quotient_by(o[i], td, rd)

    return kernel


@functools.cache
def scaled_row_kernel(name: str, parallel: bool, form: str, cache: bool = True) -> Any:
    """The kernel of row function ``name`` with temperature= alone, in ``form`` ("rows",
    "blocks" or a forward's "long_rows": scaled_form): a forward's ``kernel(x, t, out)``
    runs its scaled forms (RowFunction.scaled), a backward's ``kernel(grad_out, y, t,
    out)`` its own forms, divided as it goes."""
    fn = _rowops.ROW_FUNCTIONS[name]
    if len(fn.inputs) == 2:
        template, form_fn = (_scaled_rows_backward, fn.row) if form == "rows" else (_scaled_blocks_backward, fn.block)
    else:
        assert fn.scaled is not None, name
        template = _scaled_blocks if form == "blocks" else _scaled_rows
        form_fn = fn.scaled[("rows", "blocks", "long_rows").index(form)]
    return _jit(template, form_fn, parallel=parallel, fastmath=LOOP_MATH, cache=cache)


def scaled_form(name: str, form: str, n: int) -> str:
    """The form of scaled_row_kernel for rows of n where the plain op runs ``form``: a
    forward's rows of QUOTIENTS_FIRST_MIN or more take its long-row form."""
    if form == "rows" and n >= QUOTIENTS_FIRST_MIN and _rowops.ROW_FUNCTIONS[name].scaled is not None:
        return "long_rows"
    return form


def _kept_reduce_rows(fn: Any, *, token: Any) -> Callable[..., Any]:
    """kernel(x, keep, t, out): out[r] = fn(row r of x / t, masked entries -inf)."""

    def kernel(x: Any, keep: Any, t: Any, out: Any) -> None:
        token  # noqa: B018
        x = borrowed(x)  # (see _rows)
        keep = borrowed(keep)
        full_width()
        rows, n = x.shape
        period, td = keep.shape[0], like(x[0, 0], t)
        chunk = scratch_chunk(rows)
        tasks = (rows + chunk - 1) // chunk
        for task in prange(tasks):
            full_width()
            xs = np.empty(n, x.dtype)
            r0, r1 = task_rows(task, chunk, rows)
            for r in range(r0, r1):
                kept_quotients(x[r], keep[r % period], td, -np.inf, xs)
                out[r] = fn(xs)

    return kernel


@functools.cache
def kept_reduction_kernel(name: str, parallel: bool, cache: bool = True) -> Any:
    """The kernel of row reduction ``name`` with where= and temperature=."""
    return _jit(_kept_reduce_rows, _rowops.ROW_REDUCTIONS[name].row, parallel=parallel, fastmath=LOOP_MATH,
                cache=cache)


@register_jitable
def is_short_row(n: int, itemsize: int, short_row_max: tuple[int, int]) -> bool:
    """Whether rows of n elements run in blocks (short_row_max: (float32, float64))."""
    return n <= (short_row_max[0] if itemsize == 4 else short_row_max[1])


def uses_blocks(name: str, n: int, itemsize: int) -> bool:
    """Whether rows of n along the last axis run in blocks for row function ``name``
    (this machine's short_row_max, _tuning)."""
    return is_short_row(n, itemsize, _tuning.current().short_row_max[name])


@functools.cache
def row_kernel(name: str, parallel: bool, cache: bool = True, form: str = "rows") -> Any:
    """The kernel of row function ``name`` (``_rowops.ROW_FUNCTIONS``) in ``form``
    (see ROW_FORMS): ``kernel(*inputs, out, ...)``."""
    template, fns = _row_template(name, form)
    return _jit(template, *fns, parallel=parallel, fastmath=LOOP_MATH, cache=cache,
                n_in=len(_rowops.ROW_FUNCTIONS[name].inputs))


def _row_template(name: str, form: str) -> tuple[Any, tuple[Any, ...]]:
    """(template, the functions it takes) of row function ``name``'s kernel in ``form``."""
    template, field = ROW_FORMS[form]
    fn = _rowops.ROW_FUNCTIONS[name]
    if form == "rows" and fn.fast_row is not None:
        return _rows_fast_first, (fn.row, fn.fast_row)
    return template, getattr(fn, field) if field == "phases" else (getattr(fn, field),)


def _reduce_rows(fn: Any, *, token: Any) -> Callable[..., Any]:
    """kernel(x, out): out[r] = fn(x[r]) over (rows, n) C-contiguous x, one value per row."""

    def kernel(x: Any, out: Any) -> None:
        token  # noqa: B018
        x = borrowed(x)  # (see _rows)
        full_width()
        for r in prange(x.shape[0]):
            full_width()
            out[r] = fn(x[r])

    return kernel


@functools.cache
def reduction_kernel(name: str, parallel: bool, cache: bool = True) -> Any:
    """The kernel of row reduction ``name`` (``_rowops.ROW_REDUCTIONS``)."""
    return _jit(_reduce_rows, _rowops.ROW_REDUCTIONS[name].row, parallel=parallel, fastmath=LOOP_MATH, cache=cache)


def _reduce_lanes(first: Any, second: Any, finish: Any, *, token: Any) -> Callable[..., Any]:
    """kernel(x, out): out[o, c] = the reduction of x[o, :, c] over (outer, n, inner)
    C-contiguous x, out (outer, inner): the lanes phases of a row reduction (its
    ``lanes``), a task per LANE_BLOCK lanes of one outer index.  Along an axis that is
    not the last, x is read as it lies: moved to the last axis, the copy alone took
    1.1 ms of logsumexp's 1.5 ms over axis 0 of (8192, 128) float32 (PyTorch 0.8 ms)."""

    def kernel(x: Any, out: Any) -> None:
        token  # noqa: B018
        x = borrowed(x)  # (see _rows)
        out = borrowed(out)
        full_width()
        outer, n, inner = x.shape
        blocks = (inner + LANE_BLOCK - 1) // LANE_BLOCK
        for t in prange(outer * blocks):
            full_width()
            o, c0 = t // blocks, (t % blocks) * LANE_BLOCK
            c1 = min(c0 + LANE_BLOCK, inner)
            m = first((x,), o, c0, c1, 0, n)
            total, err = second((x,), x, o, c0, c1, m, 0, n)  # (the phases' output argument: unused here)
            finish(m, total, err, out[o, c0:c1])

    return kernel


@functools.cache
def reduction_lanes_kernel(name: str, parallel: bool, cache: bool = True) -> Any:
    """The kernel of row reduction ``name`` along the lanes of (outer, n, inner) arrays."""
    lanes = _rowops.ROW_REDUCTIONS[name].lanes
    if lanes is None:
        raise ValueError(f"{name} has no lanes form")
    return _jit(_reduce_lanes, *lanes, parallel=parallel, fastmath=LOOP_MATH, cache=cache)


def _copy(*, token: Any) -> Callable[..., Any]:
    def kernel(x: Any, out: Any) -> None:
        token  # noqa: B018
        full_width()
        for i in prange(x.shape[0]):
            full_width()
            out[i] = x[i]

    return kernel


@register_jitable(inline="always")
def _as_given(v: Any, p: Any) -> Any:
    return v


@functools.cache
def copy_kernel(parallel: bool, streamed: bool = False) -> Any:
    """A plain copy loop ``kernel(x, out)``: with np.copyto, the memory roofline that ops are
    measured against; ``streamed``: ``kernel(x, out, ())`` writing with streaming stores
    (_streamed, as the memory-bound ops write outputs beyond the last-level cache)."""
    if streamed:
        return _jit(_streamed, _as_given, _as_given, parallel=parallel, loop="map")
    return _jit(_copy, parallel=parallel)


def _fill_kept(*, token: Any) -> Callable[..., Any]:
    def kernel(x: Any, keep: Any, fill: Any, t: Any, out: Any) -> None:
        token  # noqa: B018
        full_width()
        for i in prange(x.shape[0]):
            full_width()
            out[i] = x[i] / t if keep[i] else fill

    return kernel


@functools.cache
def fill_kept_kernel(parallel: bool, cache: bool = True) -> Any:
    """``out = x / t`` where ``keep``, else ``fill``, over 1-D arrays (t and fill in x's
    dtype: the quotient rounds in it, as PyTorch's ``x / t``; t = 1 is exact): the row
    ops' where= along an axis that is not the last (``_api._filled``).
    NumPy's ``np.where`` with a bool mask took 32 ms on 4096 x 4096 float32, 5x a copy."""
    return _jit(_fill_kept, parallel=parallel, cache=cache)


# --- fused losses ----------------------------------------------------------------


def _loss_rows(fn: Any, block: Any = None, *, token: Any) -> Callable[..., Any]:
    """kernel(x, labels, want_grad, grad, scale, losses, short).  With ``fn`` a row
    function alone: fn row by row (short ignored).  With the task forms of a definition
    (LossDefinition.task_forms: ``fn`` over a task's rows, _lossops.rows_xent_index, and
    ``block`` over a block of short rows, block_xent_index): the rows in tasks of up to
    LOSS_ROW_BLOCK rows, or with short true blocks of ROW_BLOCK rows, each a flat run of
    elements (as _blocks).  What a task allocates (a scratch row or block) is allocated
    in those functions, once a task: the kernel takes no reference counts."""

    def kernel(x: Any, labels: Any, want_grad: Any, grad: Any, scale: Any, losses: Any, short: Any) -> None:
        token  # noqa: B018
        x = borrowed(x)  # (see _rows)
        labels = borrowed(labels)
        grad = borrowed(grad)
        losses = borrowed(losses)
        full_width()
        for r in prange(x.shape[0]):
            full_width()
            losses[r] = fn(x[r], labels[r], want_grad, grad[r], scale)

    if block is None:
        return kernel
    rows_of_task, block_of_rows = fn, block

    def kernel_in_tasks(x: Any, labels: Any, want_grad: Any, grad: Any, scale: Any, losses: Any, short: Any) -> Any:
        token  # noqa: B018
        x, labels, grad, losses = borrowed_all((x, labels, grad, losses))
        full_width()
        rows, n = x.shape
        if short:
            xf, gf = borrowed(x.reshape(-1)), borrowed(grad.reshape(-1))
            for t in prange((rows + ROW_BLOCK - 1) // ROW_BLOCK):
                full_width()
                r0, r1 = t * ROW_BLOCK, min((t + 1) * ROW_BLOCK, rows)
                block_of_rows(xf[r0 * n:r1 * n], labels[r0:r1], n, want_grad, gf[r0 * n:r1 * n] if want_grad else gf,
                              scale, losses[r0:r1])
        else:
            chunk = max(1, min(LOSS_ROW_BLOCK, rows // 16))  # a few rows of many classes still split
            for t in prange((rows + chunk - 1) // chunk):
                full_width()
                rows_of_task(x, labels, t * chunk, min(rows, t * chunk + chunk), want_grad, grad, scale, losses)
        # the losses' total, one vectorised pass in row order (the same on any thread count):
        # a small batch's sum or mean without a NumPy reduction's 0.8 us
        total = 0.0
        for r in range(rows):
            total += losses[r]
        return total

    return kernel_in_tasks


@register_jitable
def _copy_runs(values: Any, start: Any, out: Any) -> None:
    """out[j] = values[(start + j) % len(values)], a run of values at a time."""
    j = 0
    while j < out.shape[0]:
        q = (start + j) % values.shape[0]
        run = min(values.shape[0] - q, out.shape[0] - j)
        out[j:j + run] = values[q:q + run]
        j += run


@register_jitable
def _fill_runs(values: Any, inner: Any, start: Any, out: Any) -> None:
    """out[j] = values[((start + j) // inner) % len(values)], a run of one value at a time."""
    j = 0
    while j < out.shape[0]:
        i = start + j
        run = min(inner - i % inner, out.shape[0] - j)
        out[j:j + run] = values[(i // inner) % values.shape[0]]
        j += run


@register_jitable
def _expand_run(values: Any, inner: Any, start: Any, out: Any) -> None:
    """out[j] = values[((start + j) // inner) % len(values)]: the weights of elements
    start, start + 1, ... (_loss_elements), copied or filled run by run, one integer
    division per run (one per element kept the loss loop scalar)."""
    if values.shape[0] == 1:
        out[:] = values[0]
    elif inner == 1:
        _copy_runs(values, start, out)
    else:
        _fill_runs(values, inner, start, out)


def _loss_elements(fn: Any, *, token: Any, weighted: Any = False) -> Callable[..., Any]:
    """kernel(x, t, want_grad, grad, scale, losses, want_each, *extra): the loss and gradient
    of each element, their float64 total returned.  ``weighted``: extra is (w, w_inner, pw,
    pw_inner), a weight and a pos_weight per element, each read from a run of values:
    element i takes values[(i // inner) % len(values)] (the values along a block of the
    logits' axes; _losses._along_block).

    The elements go in tasks of LOSS_ELEMENT_BLOCK, and each task in pieces of LOSS_PIECE,
    each a loop from 0 over its own views (a loop from the task's start left Numba's
    negative-index test in every index, and LLVM gathered and scattered): a piece's weights
    are first expanded into rows of their own (_expand_run), its losses go into a row, and
    their float64 sum is a loop of its own, split over vector lanes (LOOP_MATH; in the loss
    loop it took that loop to 8 float32 lanes).  The rows are a piece long, so a task
    allocates a few KiB (the fused ops allocate their outputs and little else).  The
    tasks' totals are added in order, the same on any thread count.  One loop with a strict
    float64 running total was scalar: binary_cross_entropy_with_logits on 1e6 float32 took
    17.8 ms (znver5, one thread; PyTorch 1.3 ms), with weights 20 ms."""
    if weighted:
        @register_jitable(inline="always")
        def buffers(dtype: Any) -> Any:
            return np.empty(LOSS_PIECE, dtype), np.empty(LOSS_PIECE, dtype)

        @register_jitable(inline="always")
        def piece_extra(extra: Any, bufs: Any, start: Any, size: Any) -> Any:
            w, w_inner, pw, pw_inner = extra
            wb, pwb = bufs[0][:size], bufs[1][:size]
            _expand_run(w, w_inner, start, wb)
            _expand_run(pw, pw_inner, start, pwb)
            return wb, pwb

        @register_jitable(inline="always")
        def terms(x: Any, t: Any, j: Any, extra: Any) -> Any:
            return fn(x[j], t[j], extra[0][j], extra[1][j])
    else:
        @register_jitable(inline="always")
        def buffers(dtype: Any) -> Any:
            return ()

        @register_jitable(inline="always")
        def piece_extra(extra: Any, bufs: Any, start: Any, size: Any) -> Any:
            return extra

        @register_jitable(inline="always")
        def terms(x: Any, t: Any, j: Any, extra: Any) -> Any:
            return fn(x[j], t[j])

    def kernel(x: Any, t: Any, want_grad: Any, grad: Any, scale: Any, losses: Any, want_each: Any, *extra: Any) -> Any:
        token  # noqa: B018
        x = borrowed(x)
        t = borrowed(t)
        grad = borrowed(grad)
        losses = borrowed(losses)
        full_width()
        n = x.shape[0]
        totals = np.empty((n + LOSS_ELEMENT_BLOCK - 1) // LOSS_ELEMENT_BLOCK, np.float64)
        for b in prange(totals.shape[0]):
            full_width()
            stop = min(n, (b + 1) * LOSS_ELEMENT_BLOCK)
            kept, bufs = np.empty(LOSS_PIECE, x.dtype), buffers(x.dtype)
            task_total = 0.0
            for start in range(b * LOSS_ELEMENT_BLOCK, stop, LOSS_PIECE):
                end = min(stop, start + LOSS_PIECE)
                xp, tp, gp, kp = x[start:end], t[start:end], grad[start:end], kept[:end - start]  # gp: empty where not wanted
                ep = piece_extra(extra, bufs, start, end - start)
                for j in range(kp.shape[0]):
                    loss, d = terms(xp, tp, j, ep)
                    if want_grad:
                        gp[j] = d * scale
                    kp[j] = loss
                for j in range(kp.shape[0]):
                    task_total += np.float64(kp[j])
                if want_each:
                    losses[start:end] = kp
            totals[b] = task_total
        total = 0.0
        for b in range(totals.shape[0]):
            total += totals[b]
        return total

    return kernel


def _loss_rows_options(fn: Any, *, token: Any) -> Callable[..., Any]:
    """As _loss_rows, with the options' arguments, over blocks of LOSS_ROW_BLOCK rows that
    share a scratch row (the capped logits, where there is a cap)."""

    def kernel(x: Any, labels: Any, want_grad: Any, grad: Any, scale: Any, losses: Any, w: Any, keep: Any, smooth: Any,
               z: Any, cap: Any) -> None:
        token  # noqa: B018
        x = borrowed(x)  # (see _rows)
        labels = borrowed(labels)
        grad = borrowed(grad)
        losses = borrowed(losses)
        full_width()
        rows, n = x.shape
        for block in prange((rows + LOSS_ROW_BLOCK - 1) // LOSS_ROW_BLOCK):
            full_width()
            scratch = np.empty(n if cap != 0.0 else 0, x.dtype)
            for r in range(block * LOSS_ROW_BLOCK, min(rows, block * LOSS_ROW_BLOCK + LOSS_ROW_BLOCK)):
                losses[r] = fn(x[r], labels[r], want_grad, grad[r], scale, w, keep, smooth, z, cap, scratch)

    return kernel


def _loss_lanes(fn: Any, *, token: Any) -> Callable[..., Any]:
    """kernel(x, labels, want_grad, grad, scale, losses) over (outer, n, inner) x, along its
    axis 1: fn over LANE_BLOCK lanes of one outer index per task (as _lanes)."""

    def kernel(x: Any, labels: Any, want_grad: Any, grad: Any, scale: Any, losses: Any) -> None:
        token  # noqa: B018
        x = borrowed(x)  # (see _rows)
        labels = borrowed(labels)
        grad = borrowed(grad)
        losses = borrowed(losses)
        full_width()
        outer, inner = x.shape[0], x.shape[2]
        blocks = (inner + LANE_BLOCK - 1) // LANE_BLOCK
        for t in prange(outer * blocks):
            full_width()
            o, c0 = t // blocks, (t % blocks) * LANE_BLOCK
            fn(x, labels, o, c0, min(c0 + LANE_BLOCK, inner), want_grad, grad, scale, losses)

    return kernel


_LOSS_TEMPLATES = {"rows": _loss_rows, "rows_options": _loss_rows_options, "lanes": _loss_lanes,
                   "elements": _loss_elements,
                   "elements_weighted": functools.partial(_loss_elements, weighted=True)}


@functools.cache
def small_loss_function(name: str, dtype: str) -> Any:
    """Loss ``name``'s serial kernel (a definition with task forms) as a C function on raw
    buffers, for _fastcall's small batches (loss_shortcut), which Numba's dispatch took
    0.8 of the 1.7 us of (32 x 10 float32): ``double f(x, labels, rows, n, flags, grad,
    scale, losses)``, x and grad of ``dtype`` (rows, n) (grad (rows, 0) unless flags bit
    0, want_grad; bit 1: short), labels int64, losses float64; it returns the losses'
    total.  The Numba object is returned (see _c_function)."""
    from numba.core import types
    from numba.np.numpy_support import carray

    nb_types: Any = types  # (numba's own functions are untyped)
    loss = _lossops.LOSSES[name]
    if loss.template != "rows" or loss.task_forms is None:
        raise ValueError(f"{name} has no task forms")
    body: Any = register_jitable(_loss_rows(*loss.task_forms, token=cache_token("c", loss.fastmath)))
    ft = nb_types.float32 if dtype == "float32" else nb_types.float64

    def small(x: Any, labels: Any, rows: Any, n: Any, flags: Any, grad: Any, scale: Any, losses: Any) -> Any:
        want_grad = (flags & 1) != 0
        return body(carray(x, (rows, n)), carray(labels, (rows,)), want_grad,
                    carray(grad, (rows, n if want_grad else 0)), scale, carray(losses, (rows,)), (flags & 2) != 0)

    pointer = nb_types.CPointer
    sig = nb_types.float64(pointer(ft), pointer(nb_types.int64), nb_types.intp, nb_types.intp, nb_types.intp,
                           pointer(ft), nb_types.float64, pointer(nb_types.float64))
    return _c_function(small, sig, loss.fastmath)


def _c_function(pyfunc: Any, sig: Any, fastmath: Any) -> Any:
    """``pyfunc`` compiled as a Numba ``CFunc`` of signature ``sig``, cached on disk as the
    kernels are (compiled in memory where no cache location is writable).  The Numba
    object is returned: its ``address`` lives as long as it does."""
    from numba.core import ccallback, sigutils

    made: Any = ccallback.CFunc(pyfunc, cast(Any, sigutils).normalize_signature(sig), locals={},
                                options={"fastmath": set(fastmath), "error_model": "numpy"})
    try:
        made.enable_caching()
    except RuntimeError:  # no writable cache location: compiled in memory only
        pass
    else:
        made._cache.__class__ = _TolerantCache
    made.compile()
    return made


@functools.cache
def small_row_function(name: str, form: str, dtype: str) -> Any:
    """Row function ``name``'s serial kernel in ``form`` ("rows" or "blocks", as
    row_kernel's) as a C function on raw buffers, for _fastcall's small calls of the
    row ops (row_shortcut), which Numba's dispatch took 0.9 of the 1.3 us of (softmax,
    32 x 10 float32): ``int f(in0, in1, out, rows, n)``, each a C-contiguous (rows, n)
    array of ``dtype`` (in1 unused for a forward; a backward's in0 is grad_out, in1
    y); it returns 0.  The Numba object is returned (see _c_function)."""
    from numba.core import types
    from numba.np.numpy_support import carray

    nb_types: Any = types  # (numba's own functions are untyped)
    template, fns = _row_template(name, form)
    n_in = len(_rowops.ROW_FUNCTIONS[name].inputs)
    body: Any = register_jitable(template(*fns, n_in=n_in, token=cache_token("c", LOOP_MATH)))

    if n_in == 1:
        def small(in0: Any, in1: Any, out: Any, rows: Any, n: Any) -> Any:
            body(carray(in0, (rows, n)), carray(out, (rows, n)))
            return 0
    else:
        def small(in0: Any, in1: Any, out: Any, rows: Any, n: Any) -> Any:
            body(carray(in0, (rows, n)), carray(in1, (rows, n)), carray(out, (rows, n)))
            return 0

    small.__name__ = small.__qualname__ = f"small_{name}_{form}_{dtype}"
    ft = nb_types.CPointer(nb_types.float32 if dtype == "float32" else nb_types.float64)
    return _c_function(small, nb_types.intc(ft, ft, ft, nb_types.intp, nb_types.intp), LOOP_MATH)


@functools.cache
def loss_kernel(name: str, parallel: bool, cache: bool = True) -> Any:
    """The kernel of fused loss ``name`` (``_lossops.LOSSES``); it takes the arguments
    of the definition's NumPy fallback.  ``cache=False`` gives an uncached twin, whose
    code can be inspected."""
    loss = _lossops.LOSSES[name]
    fns = (loss.kernel,) if loss.task_forms is None else loss.task_forms
    return _jit(_LOSS_TEMPLATES[loss.template], *fns, parallel=parallel, fastmath=loss.fastmath, cache=cache)
