"""``bias=`` on the elementwise ops: f(x + b) in one pass, and b's gradient in the backward's.

``op(x, bias=b)`` computes f(x + b), with x + b rounded in x's dtype as PyTorch's
``x + b`` rounds it, so the values are ``op(x + b)``'s bit for bit; ``op.backward(g,
x=x, bias=b)`` gives ``(dx, dbias)``: dx = g f'(x + b), and dbias its sum over the
axes along which b is broadcast (PyTorch's autograd of ``f(x + b)``), summed in
float64 with its rounding errors carried, in the same pass.

How b is laid out for the kernels (``layout``): the axes along which b varies span
a block of x's axes, ``outer x block x inner``.  A block that ends at the last axis
(a bias per feature, ``inner`` 1) is a row of biases, b[j] for column j of each
row (short rows are tiled into longer ones); a block followed by ``inner`` of at
least ``_config.BIAS_PLANE_MIN`` elements (a bias per channel of NCHW data) gives a
bias per plane of ``inner``; in between, each bias is repeated ``inner`` times into a
row.  A bias that varies along axes apart from each
other (shape (a, 1, c)) is broadcast over the block between them.  The kernels'
tasks (``_kernels.bias_kernel``) and the float64 partial sums of dbias depend on
the shape alone, so the same call gives the same bits on any thread count.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _activations, _backend, _containers, _threads, _tuning
from ._config import (BIAS_MAX_ROW_BLOCKS, BIAS_PARTIAL_ELEMENTS, BIAS_PLANE_MIN, BIAS_TASK, BIAS_TILE_MIN,
                      BIAS_TILE_MIN_REDUCE)
from ._api import (_F32, _F64, _ROUTES, _check_params_fit, _goes_parallel, _is_duck_array, _kernels_module, _module_of,
                   _override_get, _route, _same_arrays, _streams, _ufunc, _unbroadcast, _writable_view)
from ._validation import as_real_array, check_broadcasts_to, check_out, prepare_call, quiet_casts

_NO_PARTIAL = np.zeros((2, 1, 1))  # for the kinds that sum nothing


@dataclass(frozen=True)
class Layout:
    """How a bias of some shape meets x of ``shape``: the kernels' arguments
    (rows, length, channels, rb, cb, by_column) and the bias as the kernels read it."""

    shape: tuple[int, ...]
    bias_shape: tuple[int, ...]
    lo: int  # the block of axes the bias spans: shape[lo:hi]
    hi: int
    inner: int  # the elements after the block
    repeat: int  # each bias repeated this many times into a row (1: not repeated)
    tiles: int  # rows of x (of channels x repeat) tiled into one of the kernels' rows
    rows: int
    length: int
    channels: int
    rb: int
    cb: int
    by_column: bool

    @property
    def n_blocks(self) -> tuple[int, int]:
        """The row blocks and column blocks of the tasks."""
        return -(-self.rows // self.rb), -(-self.length // self.cb)

    def bias_values(self, bias: np.ndarray) -> np.ndarray:
        """The bias (of bias_shape, in the compute dtype) as the kernels read it: 1-D, C-contiguous."""
        nd = len(self.shape)
        if bias.size == self.channels and bias.flags.c_contiguous:  # b varies along every axis of the block
            flat = bias.reshape(-1)
        else:
            aligned = bias.reshape((1,) * (nd - bias.ndim) + bias.shape)
            block = aligned[(0,) * self.lo + (slice(None),) * (self.hi - self.lo) + (0,) * (nd - self.hi)]
            flat = np.array(np.broadcast_to(block, self.shape[self.lo:self.hi]), order="C").reshape(-1)
        if self.repeat > 1 or self.tiles > 1:
            row = np.empty((self.tiles, flat.size, self.repeat), flat.dtype)
            row[...] = flat[:, None]
            return row.reshape(-1)
        # the kernels are compiled for writeable arrays (a read-only one would be another signature)
        return flat if flat.flags.writeable else flat.copy()

    def partial(self, sums: int = 1) -> np.ndarray:
        """The float64 partial sums a backward kernel of ``sums`` sums writes (every one)."""
        blocks, cols = self.n_blocks
        return np.empty((2 * sums, blocks, self.length)) if self.by_column else np.empty((2 * sums, self.rows, cols))

    def channel_totals(self, partial: np.ndarray, k: int = 0) -> np.ndarray:
        """Sum k's total per channel of the block (float64, ``channels``), from the kernel's
        partial sums (``_kernels.bias_totals_kernel``)."""
        totals = np.empty(self.channels)
        _kernels_module().bias_totals_kernel()(partial[2 * k:2 * k + 2], totals, self.rb, self.rows, self.channels,
                                               self.repeat, self.by_column)
        return totals

    def bias_gradient(self, partial: np.ndarray, k: int = 0) -> np.ndarray:
        """dbias (float64, bias_shape) from sum k of the kernel's partial sums."""
        return _unbroadcast_block(self.channel_totals(partial, k).reshape(self.shape[self.lo:self.hi]), self)


def _unbroadcast_block(block_sums: np.ndarray, lay: Layout) -> np.ndarray:
    """Sums over the block's axes along which the bias is broadcast, in the bias's shape."""
    nd = len(lay.shape)
    aligned = (1,) * (nd - len(lay.bias_shape)) + lay.bias_shape
    axes = tuple(d - lay.lo for d in range(lay.lo, lay.hi) if aligned[d] == 1)
    return (block_sums.sum(axis=axes) if axes else block_sums).reshape(lay.bias_shape)


@functools.lru_cache(maxsize=256)
def layout(shape: tuple[int, ...], bias_shape: tuple[int, ...], reduces: bool) -> Layout:
    """The layout of a bias of ``bias_shape`` (which broadcasts to ``shape``) for the kernels;
    ``reduces``: for a backward, which sums dbias."""
    nd = len(shape)
    aligned = (1,) * (nd - len(bias_shape)) + tuple(bias_shape)
    varying = [d for d in range(nd) if aligned[d] != 1]
    lo, hi = (varying[0], varying[-1] + 1) if varying else (0, 0)
    outer, channels, inner = math.prod(shape[:lo]), math.prod(shape[lo:hi]), math.prod(shape[hi:])
    tiles = 1
    if inner < BIAS_PLANE_MIN:  # by column: each bias repeated inner times, short rows tiled
        repeat = inner
        row = max(channels * inner, 1)
        tiles = max(1, min(outer, -(-(BIAS_TILE_MIN_REDUCE if reduces else BIAS_TILE_MIN) // row)))
        rows, length, by_column = -(-outer // tiles), row * tiles, True
    else:
        repeat = 1
        rows, length, by_column = outer * channels, inner, False
    cb = min(length, BIAS_TASK)
    rb = max(1, BIAS_TASK // cb)
    if reduces and by_column:  # one partial row per row block: few blocks, bounded memory
        blocks = max(1, min(BIAS_MAX_ROW_BLOCKS, BIAS_PARTIAL_ELEMENTS // length, rows))
        rb = max(rb, -(-rows // blocks))
    return Layout(tuple(shape), tuple(bias_shape), lo, hi, inner, repeat, tiles, rows, length, max(channels, 1), rb, cb,
                  by_column)


def _bias_array(bias: object, shape: tuple[int, ...], comp_dt: np.dtype, shape_name: str) -> tuple[np.ndarray, Any]:
    """(bias checked and in comp_dt, the dtype of its gradient): real, broadcasting to
    ``shape``, finite values staying finite in comp_dt."""
    b = as_real_array(bias, "bias")
    check_broadcasts_to(b, shape, "bias", shape_name)
    with np.errstate(all="ignore"):
        cast = b.astype(comp_dt, copy=False)
    if cast.dtype.itemsize < b.dtype.itemsize and b.dtype.kind == "f" and np.any(np.isinf(cast) & np.isfinite(b)):
        raise ValueError(f"bias holds a value outside the range of {comp_dt}, the dtype x is computed in")
    return cast, None if b.dtype.kind != "f" else b.dtype


def run(act: _activations.Activation, kind: str, inputs: list[tuple[object, str]], bias: object, out: Any,
        p: tuple[Any, ...], param_grads: bool = False) -> Any:
    """``kind`` of ``act`` on ``inputs`` with ``bias`` added to the last (x; for
    ``backward_y``, y, which is not added to): f(x + b), f'(x + b), both, or for a
    backward ``(grad_out f'(x + b), dbias)``.  With ``param_grads`` (backward_x; bias
    may then be None): the parameters' gradients too, a dict by name, last in the tuple."""
    if kind in ("forward", "grad", "value_and_grad"):
        result = _small_call(act, kind, inputs[0][0], bias, out, p)
        if result is not None:
            return result
    sums_bias = kind.startswith("backward") and bias is not None
    if bias is not None:
        refuse_duck_arrays([*inputs, (bias, "bias")], "bias=", "add the bias first (op(x + b)), or compute the array")
    else:
        refuse_duck_arrays(inputs, "param_grads=", "compute the array first")
    reduces = sums_bias or param_grads
    n_out = 2 if kind == "value_and_grad" else 1
    if not reduces:  # the result has x's shape: containers (pandas, masked arrays) come back as given
        names = [argname for _, argname in inputs]
        result = _containers.apply(lambda values, o: run(act, kind, list(zip(values, names)), bias, o, p),
                                   [value for value, _ in inputs], names, out, n_out)
        if result is not NotImplemented:
            return result
        user_out = out
    elif sums_bias:
        if out is not None and (not isinstance(out, tuple) or len(out) != 2):
            raise TypeError("out must be None or a tuple of two arrays (grad_out f'(x + bias), dbias)")
        user_out = None if out is None else out[0]
    else:
        user_out = out
    arrays, shape, res_dt, comp_dt, user_outs = prepare_call(inputs, user_out, n_out)
    if bias is not None:
        b, bias_dt = _bias_array(bias, shape, comp_dt, "x's shape" if len(inputs) == 1 else "the shape of the result")
    else:
        b, bias_dt = np.zeros((), comp_dt), None
    dbias_dt = np.dtype(bias_dt) if bias_dt is not None else res_dt
    if sums_bias and out is not None:
        check_out(out[1], b.shape, dbias_dt, "out[1]")
    _check_params_fit(act, p, comp_dt)
    size = math.prod(shape)
    ins = [np.ascontiguousarray(a if a.shape == shape else np.broadcast_to(a, shape), dtype=comp_dt) for a in arrays]
    # In place (an output identical to an input) but with the parameters' gradients,
    # which read the inputs after the outputs are written (in place they were wrong)
    bufs = [user if user is not None and user.flags.c_contiguous
            and _writable_view(user, user, comp_dt, ins, allow_identical=not param_grads) else np.empty(shape, comp_dt)
            for user in user_outs]
    n_params = len(act.grad_params) if param_grads else 0
    sums: list[Any] = []  # dbias, then each parameter's gradient, float64
    if not size:
        sums = [np.zeros(b.shape)] * sums_bias + [np.float64(0.0)] * n_params
    elif _backend.runs_numba(comp_dt):
        lay = layout(shape, b.shape, reduces)
        partial = lay.partial(sums_bias + n_params) if reduces else _NO_PARTIAL
        _launch(act, kind, lay, ins, bufs, b, partial, p, all(o is not u for o, u in zip(bufs, user_outs)),
                param_grads=param_grads, biased=bias is not None)
        if sums_bias:
            sums.append(lay.bias_gradient(partial))
        with np.errstate(all="ignore"):
            sums += [np.sum(lay.channel_totals(partial, k)) for k in range(sums_bias, sums_bias + n_params)]
    else:
        work = shape or (1,)  # 0-d as one element, as the elementwise fallbacks take it
        with np.errstate(all="ignore"):
            v = ins[-1] if kind == "backward_y" or bias is None else np.add(ins[-1], b, dtype=comp_dt)
            _activations.KINDS[kind].numpy(act, [a.reshape(work) for a in [*ins[:-1], v]],
                                           [o.reshape(work) for o in bufs], p)
            # summed in float64 (long double for long double)
            wide = np.result_type(comp_dt, np.float64)
            if sums_bias:
                sums.append(_unbroadcast(bufs[0], b.shape, wide))
            if n_params:
                g = ins[0].astype(wide)
                assert act.numpy_df_dparams is not None  # a parameter with a gradient has them
                sums += [np.sum(g * term.astype(wide)) for term in act.numpy_df_dparams(v, p)]
    results = []
    for user, buf in zip(user_outs, bufs):
        if user is None:
            with quiet_casts(res_dt, comp_dt):
                res = buf if res_dt == comp_dt else buf.astype(res_dt)
            results.append(res[()] if res.ndim == 0 else res)
        else:
            if buf is not user:
                with quiet_casts(res_dt, comp_dt):
                    np.copyto(user, buf, casting="unsafe")
            results.append(user)
    if not reduces:
        return results[0] if n_out == 1 else tuple(results)
    grads = dict(zip(act.grad_params, sums[sums_bias:]))
    if not sums_bias:
        return results[0], grads
    dbias = sums[0]
    if dbias.dtype == dbias_dt:
        grad_b = dbias
    else:
        with np.errstate(all="ignore"):
            grad_b = dbias.astype(dbias_dt)
    if out is not None:
        np.copyto(out[1], grad_b)
        return (*out, grads) if param_grads else out
    pair = (results[0], grad_b[()] if grad_b.ndim == 0 else grad_b)
    return (*pair, grads) if param_grads else pair


def _launch(act: _activations.Activation, kind: str, lay: Layout, ins: list[np.ndarray], outs: list[np.ndarray],
            b: np.ndarray, partial: np.ndarray, p: tuple[Any, ...], fresh: bool, **variant: bool) -> None:
    """The bias kernel of ``kind`` (``variant``: bias_kernel's param_grads, weighted, biased)
    over ``lay``, on the threads where the size pays; ``fresh``: no output is the caller's
    (else an output may be an input: the kernel in place, bias_kernel's ``same``)."""
    size = outs[0].size
    itemsize = outs[0].dtype.itemsize
    parallel = _goes_parallel(act, size, itemsize, kind)
    flat_ins, flat_outs = [a.reshape(-1) for a in ins], [o.reshape(-1) for o in outs]
    same = None if fresh else _same_arrays(flat_ins, flat_outs)
    # streaming stores as the op without a bias has them (relu float32 on 4096 x 4096, znver5:
    # 1.22-1.42x the plain op's time without)
    kernels = _kernels_module()
    streamed = parallel and kernels.bias_streams(act.name, kind, **variant, same=same) and _streams(act, kind, flat_outs)
    kernel = kernels.bias_kernel(act.name, kind, parallel, **variant, same=same, streamed=streamed)
    _threads.run(kernel, parallel, size, _tuning.current().serial_cost(act.name, itemsize, kind),
                 *flat_ins, *flat_outs, lay.bias_values(b), partial,
                 p, lay.rows, lay.length, lay.channels, lay.rb, lay.cb, lay.by_column, fresh=fresh)


def refuse_duck_arrays(values: list[tuple[object, str]], what: str, hint: str) -> None:
    """A TypeError for a duck array (dask, xarray) among ``values`` (containers pass):
    ``what`` (bias=, param_grads=) takes NumPy arrays."""
    for value, argname in values:
        if _is_duck_array(value) and not _containers.is_container(value):
            raise TypeError(f"{argname}: {what} takes NumPy arrays, got a {_module_of(value)}.{type(value).__name__}; "
                            f"{hint}")


def _small_call(act: _activations.Activation, kind: str, x: object, bias: object, out: object,
                p: tuple[Any, ...]) -> Any:
    """A forward kind on a float32/float64 ndarray with a bias of its dtype, by a short path,
    or None where the call is not of that kind (the general path then checks it).  Of a
    serial size (every layer's): the op's ufunc over x + b (_ufuncs.biased_ufunc: 0.7 us
    on 64 float32 elements) where b runs along the last axis, else x + b, then the op's
    ufunc in place (the kernel's bits: x + b rounds alike).  Larger, with x C-contiguous:
    the bias kernel straight away, without the general path's checks for what cannot
    arise here (casts, containers, broadcast inputs), which cost 15-20 us a call."""
    if type(x) is not np.ndarray or type(bias) is not np.ndarray:
        return None
    dt = x.dtype
    if (dt is not _F32 and dt is not _F64) or bias.dtype is not dt or bias.ndim > x.ndim or not x.ndim:
        return None
    route = _ROUTES.get((act.name, kind)) or _route(act, kind)
    if (_override_get() or _backend._default_backend) != "numba" or not x.size:
        return None
    if bias.shape != x.shape[x.ndim - bias.ndim:]:
        try:
            if np.broadcast_shapes(bias.shape, x.shape) != x.shape:
                return None
        except ValueError:
            return None
    if out is not None and (kind == "value_and_grad" or type(out) is not np.ndarray or out.dtype is not dt
                            or out.shape != x.shape):
        return None
    if p and dt is _F32:
        _check_params_fit(act, p, dt)
    if x.size < route[dt is _F64]:
        if bias.ndim and bias.shape[-1] == x.shape[-1] > 1:
            # along the last axis: one ufunc over x + b (overflowing to inf quietly, as in
            # the kernels), whose inner loop runs along rows of x and b; NumPy sees to overlaps
            biased = _biased_ufunc(act.name, kind)
            try:
                return biased(x, bias, *p) if out is None else biased(x, bias, *p, out)
            except ValueError:  # a read-only out: the general path says so in fastact's words
                return None
        if out is not None and (not out.flags.writeable or np.may_share_memory(out, bias)):
            return None
        with np.errstate(all="ignore"):  # x + b may overflow to inf, quietly as in the kernels
            v = np.add(x, bias, out=out)
        ufunc = route[2] or _ufunc(act, kind)
        return ufunc(v, *p) if kind == "value_and_grad" else ufunc(v, *p, v)
    if not (x.flags.c_contiguous and x.flags.writeable):  # the kernels' one signature
        return None
    if out is not None and not (out.flags.writeable and out.flags.c_contiguous and not np.may_share_memory(out, bias)
                                and (out is x or not np.may_share_memory(out, x))):
        return None
    outs = [np.empty(x.shape, dt) for _ in range(2)] if kind == "value_and_grad" else [
        np.empty(x.shape, dt) if out is None else out]
    _launch(act, kind, layout(x.shape, bias.shape, False), [x], outs, bias, _NO_PARTIAL, p, fresh=out is None,
            biased=True)
    return tuple(outs) if kind == "value_and_grad" else outs[0]


@functools.cache
def _biased_ufunc(name: str, kind: str) -> np.ufunc:
    from . import _ufuncs  # imported on first use, as _api's _ufunc does

    return _ufuncs.biased_ufunc(name, kind)


def weighted_backward(act: _activations.Activation, ins: list[np.ndarray], dest: np.ndarray, w: np.ndarray,
                      w_shape: tuple[int, ...]) -> np.ndarray:
    """prelu's backward with its weight's gradient: dest = grad_out f'(x) with the weight
    of each element's channel (ins: grad_out and x, C-contiguous, of the compute dtype;
    ``w`` float64, one per channel of ``w_shape`` (it broadcasts to x's shape), or one),
    and d weight (float64, ``w_shape``): grad_out df/dweight summed per channel, in the
    same pass."""
    shape = dest.shape
    if not dest.size:
        return np.zeros(w_shape)
    if _backend.runs_numba(dest.dtype):
        lay = layout(shape, w_shape, True)
        partial = lay.partial(1)
        _launch(act, "backward_x", lay, ins, [dest], w.reshape(w_shape), partial, (), True, param_grads=True,
                weighted=True)
        return lay.bias_gradient(partial)
    work = shape or (1,)
    with np.errstate(all="ignore"):
        broadcast = w.astype(dest.dtype).reshape(w_shape)
        g, x = [a.reshape(work) for a in ins]
        _activations.KINDS["backward_x"].numpy(act, [g, x], [dest.reshape(work)], (broadcast,))
        wide = np.result_type(dest.dtype, np.float64)
        assert act.numpy_df_dparams is not None  # a parameter with a gradient has them
        term = act.numpy_df_dparams(x, (broadcast,))[0]
        return _unbroadcast(g.astype(wide) * term.astype(wide), w_shape, wide)
