"""The public op objects: argument handling around the kernels and fallbacks.

How a call flows: ``op(x)`` binds the op's parameters (``ElementwiseOp._bind``),
then ``_elementwise`` hands float32/float64 ndarrays of a serial size to the
op's ufunc (``_ufuncs``), and larger C-contiguous ones straight to the parallel
kernel; ``_rows`` takes plain arrays of a row op straight to its kernel.
Anything else goes the general way (``_run_elementwise``, ``_run_rows``):
containers and duck arrays are unwrapped or handed their ufunc, the dtypes and
``out=`` are checked, the data is brought to the layouts the kernels are
compiled for (1-D C-contiguous, or (outer, n, inner) for rows), and the ufunc
or the Numba kernel (serial or parallel, by ``_threads.go_parallel``) or the
definition's NumPy fallback runs.  What each
entry point computes comes from ``_activations.KINDS``; inputs are never
written to unless they are also passed as ``out``.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from collections.abc import Sequence
from typing import Any, Literal, TypeGuard

import numpy as np

from . import _activations, _backend, _config, _containers, _gatedops, _rowops, _threads, _tuning
from ._scalar import STREAM_ALIGN
from ._validation import (
    ROW_AXIS,
    as_real_array,
    broadcast_shape,
    check_broadcasts_to,
    check_out,
    check_real_dtype,
    compute_dtype,
    normalize_axes,
    normalize_axis,
    prepare_call,
    quiet_casts,
    result_dtype,
)

ArrayLike = Any


def _same_memory(a: np.ndarray, b: np.ndarray) -> bool:
    return (
        a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
        and a.strides == b.strides
        and a.shape == b.shape
    )


def _writable_view(out: np.ndarray | None, view: np.ndarray | None, dtype: np.dtype,
                   inputs: Sequence[np.ndarray], allow_identical: bool) -> bool:
    """Whether the kernel may write straight into ``view`` (a view of ``out``)."""
    if out is None or view is None or view.dtype != dtype:
        return False
    for arr in inputs:
        if np.may_share_memory(view, arr) and not (allow_identical and _same_memory(view, arr)):
            return False
    return True


# Kernels are looked up through these memoised functions rather than with an
# import statement per call: small calls cannot afford the import machinery
# (a sizeable part of a whole call on 16 elements).


@functools.cache
def _kernels_module() -> Any:
    from . import _kernels  # imported on first use: importing fastact compiles nothing

    return _kernels


@functools.cache
def _bias_module() -> Any:
    from . import _bias  # the bias= call path (it imports this module's helpers)

    return _bias


@functools.cache
def _serial_kernel(name: str, kind: str) -> Any:
    return _kernels_module().elementwise_kernel(name, kind, False)


def _flat(arr: np.ndarray, order: Literal["C", "F"]) -> np.ndarray | None:
    """A 1-D view of ``arr`` in memory order, or None if there is none."""
    contiguous = arr.flags.c_contiguous if order == "C" else arr.flags.f_contiguous
    return arr.reshape(-1, order=order) if contiguous else None


_FAST_DTYPES = _backend.KERNEL_DTYPES


def _plain_arrays(values: tuple[Any, ...]) -> bool:
    """Whether ``values`` (one or two) are C-contiguous float32/float64 ndarrays of
    one dtype and one shape, with at least one dimension, on the numba backend: the
    common call, whose arrays the kernels take as they are."""
    x = values[-1]
    if type(x) is not np.ndarray or x.dtype not in _FAST_DTYPES or not x.ndim or not x.flags.c_contiguous:
        return False
    if len(values) == 2:
        other = values[0]
        if (type(other) is not np.ndarray or other.dtype != x.dtype or other.shape != x.shape
                or not other.flags.c_contiguous):
            return False
    return _backend.get_backend() == "numba"


# Serial calls on ndarrays run through the op's ufunc (_ufuncs): NumPy dispatches
# a ufunc faster than Numba dispatches a kernel, for any layout.  Per (op, kind):
# the sizes below which a float32 / float64 call is serial under every threading
# layer (the tuned threshold, _goes_parallel), and the ufunc.  Without a compiler
# (NUMBA_DISABLE_JIT) there is no ufunc, and the sizes are 0.
_ROUTES: dict[tuple[str, str], list[Any]] = {}  # [float32 size, float64 size, the ufunc or None]
_SHORTCUT_TABLES: list[dict[str, Any]] = []  # each ElementwiseOp's _shortcuts (the C calls read them)


def _forget_routes() -> None:
    """Where the tuning changes (a first-use measurement): the routes and shortcuts are
    built again from it, by the next calls."""
    _ROUTES.clear()
    for table in _SHORTCUT_TABLES:
        for kind in table:
            table[kind] = None


_tuning.ON_CHANGE.append(_forget_routes)
# the default parameters of each op, as the op passes them (known to fit float32)
_DEFAULT_PARAMS: dict[str, tuple[Any, ...]] = {}


def _route(act: _activations.Activation, kind: str) -> list[Any]:
    """The route of ``kind`` of ``act``; its ufunc is compiled by the first call that takes it."""
    route = [0, 0, None]
    if _backend.numba is not None and not _backend.numba.config.DISABLE_JIT:
        tuning = _tuning.current()
        route[:2] = [math.ceil(tuning.serial_below_ns / tuning.serial_cost(act.name, size, kind)) for size in (4, 8)]
    _ROUTES[(act.name, kind)] = route
    return route


def _ufunc(act: _activations.Activation, kind: str) -> np.ufunc:
    route = _ROUTES.get((act.name, kind)) or _route(act, kind)
    if route[2] is None:
        from . import _ufuncs

        route[2] = _ufuncs.elementwise_ufunc(act.name, kind)
    ufunc: np.ufunc = route[2]
    return ufunc


_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)


# The shortest path, for the commonest small call: the op's own parameters, an
# ndarray of float32/float64 below its serial size (of any size where this thread
# runs on one thread: _threads.one_thread), no out or an ndarray out of that dtype
# and shape.  An ElementwiseOp keeps per entry point a "shortcut",
# (ufunc, float32 size, float64 size, default parameters, the threading layer
# the sizes are for), once a call of that entry point has compiled the ufunc;
# None before.  The sizes are those below which a call is serial under the
# running threading layer, or under every layer before one has started (a call
# of the general path then gives the shortcut the running layer's sizes).
# Python's call of the op and the ufunc's own dispatch are most of what is left
# (CHANGELOG: small calls).
_Shortcut = tuple[np.ufunc, int, int, tuple[Any, ...], str | None]
_override_get = _backend._override.get  # the backend chosen in this thread or task, if any
_one_thread = _threads.one_thread  # every size is serial where this thread runs on one

# An elementwise op's own call, op(x) and op(x, out=o), tests for the forward
# shortcut in C (_fastcall.c: a seventh of a small call's time) and hands every
# other call to ElementwiseOp._call, which has the same test written in Python;
# so do op.grad, op.value_and_grad and op.backward (_fastcall.Entry, in front of
# the methods of those names), and the row ops' call and backward (_small_rows's
# test).  Built at install where a C compiler is found; without it the ops' calls
# are _call and the methods are called as they are.
try:
    from ._fastcall import Dispatch as _CallBase
    from ._fastcall import Entry as _Entry
    from ._fastcall import configure as _configure_fastcall
    from ._fastcall import small_rows as _small_row_call
except ImportError:  # pragma: no cover - installed without a C compiler
    FASTCALL = False

    class _CallBase:  # type: ignore[no-redef]
        """Where _fastcall is not built (the ops' __call__ is then their _call)."""

        _small_name: str
        _small_loss: str
else:
    FASTCALL = True
CallBase = _CallBase  # the base of _losses.SoftmaxCrossEntropy too


def _shortcut(act: _activations.Activation, kind: str) -> _Shortcut | None:
    route = _ROUTES.get((act.name, kind))
    if route is None or route[2] is None:
        return None
    sizes, layer = route[:2], _threads._layer_started()
    if layer is not None:  # serial below go_parallel's threshold under this layer
        tuning = _tuning.current()
        ns = _threads.parallel_min_ns() * _threads.threshold_factor()
        sizes = [max(math.ceil(ns / tuning.serial_cost(act.name, size, kind)), limit)
                 for size, limit in zip((4, 8), route[:2])]
    return (route[2], sizes[0], sizes[1], _DEFAULT_PARAMS[act.name], layer)


def _small(cut: _Shortcut, x: np.ndarray, out: object, grad_out: np.ndarray | None = None) -> Any:
    """``cut``'s ufunc on the ndarray ``x`` (after ``grad_out``, where given), or None where
    the call is not a shortcut's: the caller then takes the general path.  The
    same test as ElementwiseOp._call's, which has it written out (and _fastcall.c's, in C)."""
    dt = x.dtype
    limit = cut[1] if dt is _F32 else cut[2] if dt is _F64 else 0
    if (not limit or (x.size >= limit and not _one_thread())
            or (_override_get() or _backend._default_backend) != "numba"):
        return None
    if grad_out is not None and (type(grad_out) is not np.ndarray or grad_out.dtype is not dt
                                 or grad_out.shape != x.shape):
        return None
    values = (x,) if grad_out is None else (grad_out, x)
    if out is None:
        return cut[0](*values, *cut[3])
    if type(out) is np.ndarray and out.dtype is dt and out.shape == x.shape:
        try:  # a read-only out: the general path says so in fastact's words
            return cut[0](*values, *cut[3], out)
        except ValueError:
            return None
    return None


def _goes_parallel(act: _activations.Activation, n: int, itemsize: int, kind: str = "forward") -> bool:
    """Whether a call of ``n`` elements of ``kind`` runs the parallel kernel: where the
    serial run would take longer than this machine's parallel_min_ns (_tuning: the
    threads' start-up then pays), with the kind's own cost (_tuning's backward_ratio).
    Where the defaults would send it parallel with costs measured on another CPU, they
    are first scaled to this one (_tuning.with_speed_measured, once per machine)."""
    tuning = _tuning.current()
    work = n * tuning.serial_cost(act.name, itemsize, kind)
    if work < tuning.serial_below_ns:  # serial under every layer: the threads are not even asked
        return False
    parallel = _threads.go_parallel(work, _threads.parallel_min_ns())
    if parallel and tuning.speed_source == _tuning.DEFAULTS.speed_source and not _backend.numba.config.DISABLE_JIT:
        # the defaults' costs, from another CPU: scaled to this one before the first parallel call
        tuning = _tuning.with_speed_measured()
        work = n * tuning.serial_cost(act.name, itemsize, kind)
        parallel = work >= tuning.serial_below_ns and _threads.go_parallel(work, _threads.parallel_min_ns())
    return parallel


def _same_arrays(ins: Sequence[np.ndarray], outs: Sequence[np.ndarray]) -> tuple[int, int] | None:
    """(output, input) where an output is an input (as _compute takes them: identical
    or not overlapping), for the kernels in place; None where none is."""
    for o, out in enumerate(outs):
        for k, a in enumerate(ins):
            # the bounds first (0.17 us): reading an address through .ctypes costs 0.8 us
            if np.may_share_memory(a, out) and a.ctypes.data == out.ctypes.data:
                return o, k
    return None


@functools.cache
def _stream_min_bytes() -> float:
    return _config.stream_min_bytes()


def _streams(act: _activations.Activation, kind: str, outs: Sequence[np.ndarray]) -> bool:
    """Whether ``kind`` of ``act`` writes ``outs`` (1-D, overlapping no input) with
    streaming stores (_kernels._streamed): outputs of _config.stream_min_bytes() or more,
    each aligned to its itemsize and at one address modulo STREAM_ALIGN, for a kernel
    with a streamed form (_kernels.streams) that is bound by memory: its forward's serial
    cost on this CPU (_tuning) at most _config.STREAM_MAX_NS_PER_BYTE, for a dtype for
    which streaming pays on this CPU (_tuning's streamed_over_plain, measured by the first such
    call where neither `tune` nor another process has)."""
    first = outs[0]
    itemsize = first.itemsize
    if first.nbytes < _stream_min_bytes():
        return False
    if any(o.ctypes.data % itemsize or (o.ctypes.data - first.ctypes.data) % STREAM_ALIGN for o in outs):
        return False
    if not (_kernels_module().streams(act.name, kind)
            and _tuning.current().serial_cost(act.name, itemsize) <= _config.STREAM_MAX_NS_PER_BYTE * itemsize):
        return False
    return _tuning.with_streaming_measured().streams(itemsize)  # measured here on the first such call


def _compute(act: _activations.Activation, kind: str, ins: Sequence[np.ndarray], outs: Sequence[np.ndarray],
             params: tuple[Any, ...], fresh: bool = False) -> None:
    """``kind`` of ``act`` from the 1-D C-contiguous arrays ``ins`` into ``outs`` (one
    dtype, none overlapping an input unless identical to it; ``fresh``: allocated
    for this call): the parallel kernel, or serially the op's ufunc (the serial
    kernel where there is no ufunc: NUMBA_DISABLE_JIT)."""
    n = outs[0].size
    if not n:
        return
    if _goes_parallel(act, n, outs[0].itemsize, kind):
        same = None if fresh else _same_arrays(ins, outs)
        kernels = _kernels_module()
        if same is not None:
            kernel = kernels.in_place_kernel(act.name, kind, True, same)
        else:
            kernel = kernels.elementwise_kernel(act.name, kind, True, streamed=_streams(act, kind, outs))
        _threads.run(kernel, True, n,
                     _tuning.current().serial_cost(act.name, outs[0].itemsize, kind), *ins, *outs, params,
                     fresh=fresh)
        return
    if _backend.numba.config.DISABLE_JIT:
        _serial_kernel(act.name, kind)(*ins, *outs, params)
    else:
        _ufunc(act, kind)(*ins, *params, *outs)


def _elementwise(act: _activations.Activation, kind: str, values: tuple[Any, ...], names: tuple[Any, ...], out: object,
                 params: tuple[Any, ...]) -> Any:
    """``kind`` of ``act`` on ``values`` (named ``names`` in errors).

    Written for small arrays, where every step counts: the general path,
    ``_run_elementwise``, costs several times as much a call.  ndarrays of one
    float32/float64 dtype and one shape, with no out or an out of that dtype and
    shape, run serial sizes through the op's ufunc (any layout; NumPy sees to
    overlaps) and larger sizes straight into the kernel where they are
    C-contiguous and no out overlaps them."""
    x = values[-1]
    if type(x) is np.ndarray:
        dt = x.dtype
        route = _ROUTES.get((act.name, kind)) or _route(act, kind)
        if ((dt is _F32 or dt is _F64) and x.size < route[dt is _F64] and _backend.get_backend() == "numba"
                and (len(values) == 1 or (type(values[0]) is np.ndarray and values[0].dtype is dt
                                          and values[0].shape == x.shape))):
            ufunc = route[2] or _ufunc(act, kind)
            if params and dt is _F32 and params is not _DEFAULT_PARAMS.get(act.name):
                _check_params_fit(act, params, dt)
            if out is None:
                return ufunc(*values, *params)
            try:  # a read-only out raises ValueError: the general path says so in fastact's words
                if type(out) is np.ndarray:
                    if out.dtype is dt and out.shape == x.shape and kind != "value_and_grad":
                        return ufunc(*values, *params, out)
                elif type(out) is tuple and len(out) == 2 and kind == "value_and_grad":
                    o1, o2 = out
                    if (type(o1) is np.ndarray and type(o2) is np.ndarray and o1.dtype is dt and o2.dtype is dt
                            and o1.shape == x.shape and o2.shape == x.shape and not np.may_share_memory(o1, o2)):
                        ufunc(*values, *params, o1, o2)
                        return out
            except ValueError:
                pass
    if _plain_arrays(values):
        x = values[-1]
        if out is None:
            result = np.empty(x.shape, x.dtype)
        elif (kind != "value_and_grad" and type(out) is np.ndarray and out.dtype == x.dtype and out.shape == x.shape
              and out.flags.c_contiguous and out.flags.writeable
              and (out is x or not np.may_share_memory(out, x))
              and (len(values) == 1 or out is values[0] or not np.may_share_memory(out, values[0]))):
            result = out
        else:
            result = None
        if result is not None:
            if params:
                _check_params_fit(act, params, x.dtype)
            results = (result, np.empty(x.shape, x.dtype)) if kind == "value_and_grad" else (result,)
            _compute(act, kind, [v.reshape(-1) for v in values], [r.reshape(-1) for r in results], params,
                     fresh=out is None)
            return results if kind == "value_and_grad" else result
    n_out = 2 if kind == "value_and_grad" else 1
    return _run_elementwise(act, kind, list(zip(values, names)), out, n_out, params)


def _is_duck_array(value: object) -> bool:
    """An array that is not an ndarray but applies ufuncs itself (dask, xarray)."""
    if isinstance(value, (np.ndarray, np.generic)):
        return False
    return getattr(type(value), "__array_ufunc__", None) is not None


def _duck_inputs(inputs: list[tuple[object, str]], out: object) -> tuple[list[Any], np.dtype, np.dtype]:
    """The inputs cast to the compute dtype, the result dtype and the compute dtype.
    Duck arrays keep their type (dask stays lazy); the rest become ndarrays."""
    if _backend.numba is None:
        raise TypeError(f"{inputs[0][1]}: fastact applies its ufuncs to {_duck_name(inputs)} only with numba")
    if out is not None:
        raise TypeError(f"out must be None when an input is a {_duck_name(inputs)}: "
                        "the result is a new array of that type")
    values: list[Any] = []
    for value, name in inputs:
        if _is_duck_array(value):
            dtype = getattr(value, "dtype", None)
            if dtype is None:
                raise TypeError(f"{name} must have a dtype, got {type(value).__name__}")
            check_real_dtype(np.dtype(dtype), name)
            values.append(value)
        else:
            values.append(as_real_array(value, name))
    res_dt = result_dtype(*values)  # reads only .dtype, which duck arrays have
    comp_dt = compute_dtype(res_dt)
    values = [v if np.dtype(v.dtype) == comp_dt else v.astype(comp_dt) for v in values]
    return values, res_dt, comp_dt


def _duck_name(inputs: list[tuple[object, str]]) -> str:
    value = next(v for v, _ in inputs if _is_duck_array(v))
    return f"{_module_of(value)}.{type(value).__name__}"


def _run_duck(act: _activations.Activation, kind: str, inputs: list[tuple[object, str]], out: object,
              params: tuple[Any, ...]) -> Any:
    """Hand duck arrays to their own ``__array_ufunc__`` with fastact's ufunc: a dask array
    gives a lazy dask array, an xarray DataArray keeps its coordinates."""
    values, res_dt, comp_dt = _duck_inputs(inputs, out)
    _check_params_fit(act, params, comp_dt)
    kinds = ("forward", "grad") if kind == "value_and_grad" else (kind,)
    results = []
    for k in kinds:
        result = _apply_quietly(_duck_ufunc(act, k, [name for _, name in inputs]), *values, params=params,
                                dtype=comp_dt)
        results.append(result if comp_dt == res_dt else _cast_quietly(result, res_dt))
    return tuple(results) if kind == "value_and_grad" else results[0]


def _cast_quietly(result: Any, dtype: np.dtype) -> Any:
    """``result.astype(dtype)`` without NumPy's overflow warning (a float32 value
    beyond float16's range becomes inf, as a float16 kernel would give); a lazy
    array casts later, in its tasks."""
    module = _module_of(result)
    if module == "dask":
        return result.map_blocks(_cast_quietly, dtype, dtype=dtype)
    if module == "xarray":
        import xarray

        return xarray.apply_ufunc(_cast_quietly, result, dtype, dask="allowed", keep_attrs=True)
    with np.errstate(all="ignore"):
        return result.astype(dtype)


def _duck_ufunc(act: _activations.Activation, kind: str, names: list[str]) -> Any:
    """The ufunc that duck arrays apply; under NUMBA_DISABLE_JIT, which compiles no
    ufunc, a function that takes each block through the op's own call."""
    from . import _ufuncs

    if not _backend.numba.config.DISABLE_JIT:
        return _ufuncs.elementwise_ufunc(act.name, kind)
    n = len(names)
    return lambda *args: _elementwise(act, kind, args[:n], tuple(names), None, args[n:])


class _RowsByCall:
    """A row gufunc's stand-in under NUMBA_DISABLE_JIT: the row op's own call."""

    def __init__(self, name: str, names: list[str]) -> None:
        self._name, self._names = name, tuple(names)
        self.signature = ",".join(["(n)"] * len(names)) + "->(n)"

    def __call__(self, *arrays: Any, axes: list[Any] | None = None) -> Any:
        return _rows(self._name, arrays, self._names, axes[0][0] if axes else -1, None)


def _quietly(ufunc: np.ufunc, *args: Any, params: tuple[Any, ...] = (), **kwargs: Any) -> Any:
    """``ufunc(*args, *params, **kwargs)`` without NumPy's floating-point warnings.  NumPy
    checks the FP flags after each ufunc loop, and the kernels' formulas raise
    them in branches whose results they discard (tanh(inf), inf - inf in a row
    with +inf), so a bare call could warn where fastact's own calls never do."""
    with np.errstate(all="ignore"):
        return ufunc(*args, *params, **kwargs)


def _module_of(value: object) -> str:
    return type(value).__module__.split(".")[0]


def _apply_quietly(ufunc: np.ufunc, *values: Any, params: tuple[Any, ...] = (), dtype: np.dtype,
                   axis: int | None = None) -> Any:
    """``ufunc(*values, *params)`` on duck arrays, without FP warnings; for a gufunc,
    along ``axis``.  A lazy array runs the ufunc later, in tasks on other threads
    that an errstate around this call does not reach, so each task calls
    ``_quietly``: dask through ``elemwise`` or ``apply_gufunc``, xarray through
    ``apply_ufunc`` on the arrays it holds (NumPy or dask, back here).  Other
    arrays apply the ufunc themselves, inside the errstate."""
    modules = {_module_of(v) for v in values}
    if "xarray" in modules:  # xarray applies no gufunc itself: the core dimension goes last
        import xarray

        first = next(v for v in values if _module_of(v) == "xarray")
        if axis is None:
            return xarray.apply_ufunc(functools.partial(_apply_quietly, ufunc, params=params, dtype=dtype), *values,
                                      dask="allowed", keep_attrs=True)
        dim = first.dims[axis]
        # an ndarray beside it has no dimension names: it takes the object's, if of its shape
        values = tuple(first.copy(data=v) if isinstance(v, np.ndarray) and v.shape == first.shape else v
                       for v in values)
        result = xarray.apply_ufunc(functools.partial(_apply_quietly, ufunc, dtype=dtype, axis=-1), *values,
                                    input_core_dims=[[dim]] * len(values), output_core_dims=[[dim]],
                                    dask="allowed", keep_attrs=True)
        return result.transpose(*first.dims)
    if "dask" in modules:
        import dask.array

        quiet = functools.partial(_quietly, ufunc, params=params)
        if axis is None:  # what dask's own ufunc wrapper runs
            return dask.array.core.elemwise(quiet, *values, dtype=dtype)  # type: ignore[no-untyped-call]
        # apply_gufunc wants one chunking of the loop dimensions: an ndarray beside a
        # dask array of its shape takes that array's chunks
        chunked = next(v for v in values if _module_of(v) == "dask")
        values = tuple(dask.array.from_array(v, chunks=chunked.chunks)  # type: ignore[no-untyped-call]
                       if isinstance(v, np.ndarray) and v.shape == chunked.shape else v for v in values)
        return dask.array.apply_gufunc(quiet, ufunc.signature, *values,  # type: ignore[no-untyped-call]
                                       axes=[(axis,)] * (len(values) + 1),
                                       output_dtypes=dtype)
    return _quietly(ufunc, *values, params=params,
                    **({} if axis is None else {"axes": [(axis,)] * (len(values) + 1)}))


def _run_elementwise(act: _activations.Activation, kind: str, inputs: list[tuple[object, str]],
                     out: object, n_out: int, params: tuple[Any, ...] = ()) -> Any:
    names = [name for _, name in inputs]
    result = _containers.apply(lambda values, o: _run_elementwise(act, kind, list(zip(values, names)), o, n_out,
                                                                  params),
                               [value for value, _ in inputs], names, out, n_out)
    if result is not NotImplemented:
        return result
    if any(_is_duck_array(value) for value, _ in inputs):
        return _run_duck(act, kind, inputs, out, params)
    arrays, shape, res_dt, comp_dt, user_outs = prepare_call(inputs, out, n_out)
    _check_params_fit(act, params, comp_dt)
    if res_dt != comp_dt or any(a.dtype != comp_dt for a in arrays):
        return _run_in_chunks(act, kind, arrays, shape, user_outs, res_dt, comp_dt, params)

    ins = [np.broadcast_to(a, shape) if a.shape != shape else a for a in arrays]
    size = math.prod(shape)

    if _backend.runs_numba(comp_dt):
        order: Literal["C", "F"] = ("F" if all(a.flags.f_contiguous for a in ins)
                                    and not all(a.flags.c_contiguous for a in ins) else "C")
        flat_ins: list[Any] = [_flat(a, order) for a in ins]
        flat_ins = [f if f is not None else np.ascontiguousarray(a).reshape(-1) for f, a in zip(flat_ins, ins)]
        bufs: list[Any] = []
        for user in user_outs:
            view = None if user is None else _flat(user, order)
            bufs.append(view if _writable_view(user, view, comp_dt, flat_ins, allow_identical=True)
                        else np.empty(size, comp_dt))
        _compute(act, kind, flat_ins, bufs, params, fresh=any(b.base is None for b in bufs))
        shaped: list[Any] = [b.reshape(shape, order=order) for b in bufs]
    else:
        # 0-d arrays as 1-element arrays: NumPy returns scalars from 0-d ufunc calls
        work_shape = shape or (1,)
        shaped = [user if _writable_view(user, user, comp_dt, ins, allow_identical=False)
                  else np.empty(shape, comp_dt) for user in user_outs]
        with np.errstate(all="ignore"):
            _activations.KINDS[kind].numpy(act, [a.reshape(work_shape) for a in ins],
                                           [o.reshape(work_shape) for o in shaped], params)

    results = []
    for user, buf in zip(user_outs, shaped):
        if user is not None:
            if buf is not user and not np.shares_memory(buf, user):
                np.copyto(user, buf, casting="same_kind")
            results.append(user)
        else:  # a result of another dtype than comp_dt went through _run_in_chunks
            results.append(buf[()] if buf.ndim == 0 else buf)
    return results[0] if n_out == 1 else tuple(results)


def _run_in_chunks(act: _activations.Activation, kind: str, arrays: list[np.ndarray], shape: tuple[int, ...],
                   user_outs: list[np.ndarray | None], res_dt: np.dtype, comp_dt: np.dtype,
                   params: tuple[Any, ...]) -> Any:
    """The elementwise call for inputs or results of another dtype than the one
    computed in (float16 and bfloat16 in float32, integers in float64): NumPy's
    buffered iterator converts a chunk of _config.CAST_CHUNK elements at a time
    on the way in and out, so that nothing proportional to the input is
    allocated beyond the result (a whole float32 copy of float16 data is twice
    its size, and so is its float32 result).  Its casts are quiet: a float32
    result beyond float16's range becomes inf, as a float16 kernel would give."""
    outs = [np.empty(shape, res_dt) if user is None else user for user in user_outs]
    numba = _backend.runs_numba(comp_dt)
    n_in = len(arrays)
    with np.errstate(all="ignore"):
        iterator = np.nditer(  # type: ignore[call-overload]
            [*arrays, *outs], flags=["external_loop", "buffered", "zerosize_ok", "copy_if_overlap"],
            op_flags=[["readonly", "overlap_assume_elementwise"]] * n_in
            + [["writeonly", "no_broadcast", "overlap_assume_elementwise"]] * len(outs),
            op_dtypes=[comp_dt] * (n_in + len(outs)), casting="unsafe", buffersize=_config.CAST_CHUNK)
        with iterator:
            for chunks in iterator:
                ins = [np.ascontiguousarray(c) for c in chunks[:n_in]]
                dests = [c if c.flags.c_contiguous else np.empty(c.shape, comp_dt) for c in chunks[n_in:]]
                if numba:
                    _compute(act, kind, ins, dests, params)
                else:
                    _activations.KINDS[kind].numpy(act, ins, dests, params)
                for chunk, dest in zip(chunks[n_in:], dests):
                    if dest is not chunk:
                        chunk[...] = dest
    results = [out if user is not None else (out[()] if out.ndim == 0 else out) for user, out in zip(user_outs, outs)]
    return results[0] if len(results) == 1 else tuple(results)


_FLOAT32_MAX = float(np.finfo(np.float32).max)
_FLOAT32_HALF_SMALLEST = float(np.finfo(np.float32).smallest_subnormal) / 2


def _check_params_fit(act: _activations.Activation, p: tuple[Any, ...], comp_dt: np.dtype) -> None:
    """float32 kernels take the parameters in float32 (float16 and bfloat16 are
    computed in float32): a ValueError for one that would become inf or 0 there,
    which would give NaN (celu's alpha) or inf silently.  PyTorch refuses them too."""
    if not p or comp_dt.itemsize != 4:
        return
    for param, value in zip(act.params, p):
        if abs(value) > _FLOAT32_MAX or 0 < abs(value) < _FLOAT32_HALF_SMALLEST:
            raise ValueError(f"{param.name}={value!r} is outside the range of float32, the dtype {act.name} "
                             f"computes this input in; pass float64 input for such a {param.name}")


def _check_param(op_name: str, param: _activations.Param, value: object) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{param.name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{param.name} must be finite, got {value!r}")
    message = param.check(value) if param.check else None
    if message:
        raise ValueError(message)
    return value


def _wants_param_grads(param_grads: object) -> bool:
    """backward's ``param_grads`` flag, checked: a bool."""
    if param_grads is not True and param_grads is not False:
        raise TypeError(f"param_grads must be True or False, got {param_grads!r}")
    return param_grads


class _CallSignature:
    """An op's ``__signature__``: its call's, for inspect.signature and help (a call in C,
    _fastcall, has none of its own); None on the class, which inspect then reads as usual."""

    def __get__(self, op: object, owner: type | None = None) -> inspect.Signature | None:
        if op is None:
            return None
        call = getattr(op, "_call", None) or type(op).__call__.__get__(op)
        return inspect.signature(call)


class _PublicOp:
    """What every public op object shares: its name as a function's, and pickling by
    reference, as functions are pickled (fastact.<name> is this very object)."""

    __name__: str

    def _name_as(self, name: str) -> None:
        self.__name__ = self.__qualname__ = name
        self.__module__ = "fastact"  # where pickle finds it again

    def __reduce__(self) -> str:
        return self.__name__

    __signature__ = _CallSignature()


class ElementwiseOp(_CallBase, _PublicOp):
    """An elementwise activation: ``op(x, ...)``, ``op.grad(x, ...)``, ``op.value_and_grad(x, ...)``,
    ``op.backward(grad_out, x=x, ...)`` or ``op.backward(grad_out, y=y, ...)``; ``...`` are the
    op's parameters (as in ``torch.nn.functional``), then ``out=``."""

    def __init__(self, act: _activations.Activation, variants: dict[str, _activations.Activation] | None = None,
                 variant_param: str | None = None) -> None:
        # variants: one definition per value of a string parameter (gelu's approximate)
        self._act = act
        self._variants = variants or {}
        self._variant_param = variant_param
        self._variant_default = next((k for k, v in self._variants.items() if v is act), None)
        self._names = tuple(p.name for p in act.params) + ((variant_param,) if variant_param else ())
        self._name_as(act.name)
        self._default_params = tuple(p.default for p in act.params)
        _DEFAULT_PARAMS[act.name] = self._default_params
        self._shortcuts: dict[str, _Shortcut | None] = dict.fromkeys(_activations.KINDS)
        _SHORTCUT_TABLES.append(self._shortcuts)
        self.__doc__ = self._document()
        if FASTCALL:  # the methods' small calls in C
            for method in ("grad", "value_and_grad", "backward"):
                self.__dict__[method] = _Entry(getattr(self, method), method)

    def _document(self) -> str:
        """The docstring: the definition's text, the signature, every entry point and
        an example that tests/test_catalogue.py runs as a doctest."""
        name, act = self.name, self._act
        params = "".join(f", {p.name}={p.default!r}" for p in act.params)
        y_line = (f"    {name}.backward(grad_out, y=y{params})  the same from the forward output y\n"
                  if act.df_from_y is not None else "")
        if act.grad_params:
            y_line += (f"    {name}.backward(grad_out, x=x, param_grads=True{params})  (dx, grads): grads the "
                       f"gradients of {', '.join(act.grad_params)}, summed in the same pass\n")
        return (
            f"{act.doc}\n\nSignature: {self.signature}\n\n"
            f"Entry points (float32 stays float32, float64 float64; out= takes a preallocated result):\n"
            f"    {name}(x{params})  f(x)\n"
            f"    {name}.grad(x{params})  f'(x)\n"
            f"    {name}.value_and_grad(x{params})  (f(x), f'(x)) in one pass\n"
            f"    {name}.backward(grad_out, x=x{params})  grad_out * f'(x) in one pass\n{y_line}"
            f"    {name}(x, bias=b), {name}.backward(grad_out, x=x, bias=b)  f(x + b); (grad_out * f'(x + b), "
            f"dbias) with dbias summed over b's broadcast axes, each in one pass\n"
            f"    {name}.ufunc, {name}.get_ufunc(kind)  the NumPy ufuncs (dask, xarray)\n\n"
            f"Example:\n"
            f"    >>> import numpy as np, fastact\n"
            f"    >>> x = np.linspace(-3.0, 3.0, 7, dtype=np.float32)\n"
            f"    >>> y, dy = fastact.{name}.value_and_grad(x{params})\n"
            f"    >>> g = fastact.{name}.backward(np.ones_like(x), x=x{params})\n"
            f"    >>> bool(np.array_equal(fastact.{name}(x{params}), y) and np.allclose(g, dy)), y.dtype\n"
            f"    (True, dtype('float32'))\n"
        )

    @property
    def name(self) -> str:
        return self._act.name

    @property
    def signature(self) -> str:
        params = [f"{p.name}={p.default!r}" for p in self._act.params]
        if self._variant_param:
            params.append(f"{self._variant_param}={self._variant_default!r}")
        return f"{self.name}(x, {''.join(p + ', ' for p in params)}bias=None, out=None)"

    @property
    def params(self) -> dict[str, object]:
        """The parameters and their defaults."""
        defaults: dict[str, object] = {p.name: p.default for p in self._act.params}
        if self._variant_param:
            defaults[self._variant_param] = self._variant_default
        return defaults

    def supports_y(self, **params: object) -> bool:
        """Whether ``backward`` accepts the forward output ``y`` (for these parameters)."""
        act, p = self._bind((), params)
        return act.df_from_y is not None and (act.y_check is None or act.y_check(p) is None)

    def __repr__(self) -> str:
        return f"<fastact op {self.signature}>"

    @property
    def ufunc(self) -> np.ufunc:
        """f as a NumPy ufunc, ``ufunc(x, *params)`` with every parameter given (float32
        and float64 loops compiled by Numba; small calls of the op run it too).  ``op(x)`` uses it for dask arrays,
        xarray objects and other arrays that apply ufuncs through ``__array_ufunc__``."""
        ufunc = self.__dict__.get("_ufunc")
        if ufunc is None:
            ufunc = self.__dict__["_ufunc"] = self.get_ufunc("forward")
        return ufunc

    def get_ufunc(self, kind: str = "forward", **variant: str) -> np.ufunc:
        """The ufunc of ``kind``: "forward" ``(x, *params)``, "grad" ``(x, *params)``,
        "value_and_grad" ``(x, *params)`` (two outputs), "backward_x" ``(grad_out, x, *params)``
        or "backward_y" ``(grad_out, y, *params)``.  ``variant`` picks a definition by its
        string parameter (gelu's ``approximate``).  The ufuncs raise no floating-point
        warning for any finite or infinite input, as the ops."""
        if _backend.numba is None:
            raise RuntimeError(f"{self.name}.get_ufunc needs numba, which cannot be imported")
        if set(variant) - {self._variant_param}:
            raise TypeError(f"{self.name}.get_ufunc() got an unexpected keyword argument {next(iter(variant))!r}")
        act, _ = self._bind((), variant)
        if kind == "backward_y" and (act.df_from_y is None or act.y_check is not None):
            # with y_check, f' from y holds only for some parameters, which a ufunc cannot check
            raise ValueError(f"{self.name} has no derivative from y for every parameter: use kind='backward_x'")
        from . import _ufuncs

        return _ufuncs.elementwise_ufunc(act.name, kind)

    def _bind(self, args: tuple[Any, ...], kwargs: dict[Any, Any],
              function: str = "") -> tuple[_activations.Activation, tuple[Any, ...]]:
        """The definition and the checked parameters; errors name ``function`` (the op's name)."""
        function = function or self.name
        if not args and not kwargs:
            return self._act, self._default_params
        if len(args) > len(self._names):
            raise TypeError(f"{function}() takes {len(self._names)} parameter(s) after x "
                            f"({', '.join(self._names) or 'none'}), got {len(args)}")
        values = dict(zip(self._names, args))
        for key, value in kwargs.items():
            if key not in self._names:
                raise TypeError(f"{function}() got an unexpected keyword argument {key!r}")
            if key in values:
                raise TypeError(f"{function}() got multiple values for argument {key!r}")
            values[key] = value
        act = self._act
        if self._variant_param and self._variant_param in values:
            choice = values.pop(self._variant_param)
            if not isinstance(choice, str) or choice not in self._variants:
                raise ValueError(f"{self._variant_param} must be one of {tuple(self._variants)!r}, got {choice!r}")
            act = self._variants[choice]
        p = tuple(_check_param(self.name, param, values.get(param.name, param.default)) for param in act.params)
        message = act.params_check(p) if act.params_check else None
        if message:
            raise ValueError(message)
        return act, p

    def _call(self, x: ArrayLike, *args: Any, bias: ArrayLike | None = None, out: np.ndarray | None = None,
              **kwargs: Any) -> Any:
        """f(x), elementwise; with ``bias``, f(x + bias) in one pass (bias broadcasts to x's
        shape).  float32/float64 keep their dtype, float16 is computed in float32,
        integers and bools in float64.  ``out`` must have the result's shape and
        dtype; it may be ``x`` itself."""
        cut = self._shortcuts["forward"]
        if cut is not None and type(x) is np.ndarray and bias is None and not args and not kwargs:
            # _small written out: a call to it costs a tenth of a small call (and the
            # same test in C, _fastcall.c, comes first where it is built)
            dt = x.dtype
            limit = cut[1] if dt is _F32 else cut[2] if dt is _F64 else 0
            if (limit and (x.size < limit or _one_thread())
                    and (_override_get() or _backend._default_backend) == "numba"):
                if out is None:
                    return cut[0](x, *cut[3]) if cut[3] else cut[0](x)
                if type(out) is np.ndarray and out.dtype is dt and out.shape == x.shape:
                    try:
                        return cut[0](x, *cut[3], out) if cut[3] else cut[0](x, out)
                    except ValueError:
                        pass
        if bias is not None:
            act, p = self._bind(args, kwargs) if args or kwargs else (self._act, self._default_params)
            return _bias_module().run(act, "forward", [(x, "x")], bias, out, p)
        if args or kwargs:
            act, p = self._bind(args, kwargs)
            return _elementwise(act, "forward", (x,), ("x",), out, p)
        return self._armed("forward", cut, _elementwise(self._act, "forward", (x,), ("x",), out, self._default_params))

    if not FASTCALL:  # pragma: no cover - installed without a C compiler
        __call__ = _call

    def grad(self, x: ArrayLike, *args: Any, bias: ArrayLike | None = None, out: np.ndarray | None = None,
             **kwargs: Any) -> Any:
        """f'(x), elementwise; with ``bias``, f'(x + bias)."""
        cut = self._shortcuts["grad"]
        if cut is not None and type(x) is np.ndarray and bias is None and not args and not kwargs:
            result = _small(cut, x, out)
            if result is not None:
                return result
        act, p = self._bind(args, kwargs, f"{self.name}.grad") if args or kwargs else (self._act, self._default_params)
        if bias is not None:
            return _bias_module().run(act, "grad", [(x, "x")], bias, out, p)
        return self._armed("grad", cut, _elementwise(act, "grad", (x,), ("x",), out, p))

    def value_and_grad(self, x: ArrayLike, *args: Any, bias: ArrayLike | None = None,
                       out: tuple[np.ndarray, np.ndarray] | None = None, **kwargs: Any) -> Any:
        """``(f(x), f'(x))`` in one pass over ``x`` (of x + bias, with ``bias``); ``out`` is
        None or a pair of arrays."""
        cut = self._shortcuts["value_and_grad"]
        if cut is not None and type(x) is np.ndarray and out is None and bias is None and not args and not kwargs:
            result = _small(cut, x, None)
            if result is not None:
                return result
        act, p = (self._bind(args, kwargs, f"{self.name}.value_and_grad") if args or kwargs
                  else (self._act, self._default_params))
        if bias is not None:
            return _bias_module().run(act, "value_and_grad", [(x, "x")], bias, out, p)
        return self._armed("value_and_grad", cut, _elementwise(act, "value_and_grad", (x,), ("x",), out, p))

    def backward(self, grad_out: ArrayLike, x: ArrayLike | None = None, *, y: ArrayLike | None = None,
                 bias: ArrayLike | None = None, param_grads: bool = False, out: Any = None, **kwargs: Any) -> Any:
        """``grad_out * f'(x)`` in one pass, from ``x`` or from the forward output ``y``
        (exactly one of them).  ``grad_out`` broadcasts against it like a ufunc.
        The op's parameters are keyword arguments here.  With ``bias`` (the one the
        forward added, ``y = f(x + bias)``): ``(grad_out * f'(x + bias), dbias)``, dbias
        the first summed over the axes the bias is broadcast along, in the same pass
        (with y, the bias gives only dbias's shape); ``out`` is None or such a pair.
        With ``param_grads=True`` (from x): also the gradients of the op's parameters, a
        dict by name (float64 sums over every element; empty for an op without
        parameters), last in the tuple: ``(dx, grads)``, or ``(dx, dbias, grads)``."""
        if type(grad_out) is np.ndarray and bias is None and param_grads is False and not kwargs:
            cut = self._shortcuts["backward_x" if y is None else "backward_y"]
            other = x if y is None else y if x is None else None  # x or y, not both
            if cut is not None and type(other) is np.ndarray:
                result = _small(cut, other, out, grad_out)
                if result is not None:
                    return result
        if (x is None) == (y is None):
            raise TypeError(f"{self.name}.backward needs exactly one of x or y")
        act, p = self._bind((), kwargs, f"{self.name}.backward") if kwargs else (self._act, self._default_params)
        if _wants_param_grads(param_grads):
            if y is not None:
                raise TypeError(f"{self.name}.backward(param_grads=True) needs x (the parameters' gradients "
                                "are functions of x), not y")
            return _bias_module().run(act, "backward_x", [(grad_out, "grad_out"), (x, "x")], bias, out, p,
                                      param_grads=True)
        if y is not None:
            if act.df_from_y is None:
                raise TypeError(f"{self.name}.backward cannot use y; pass x")
            message = act.y_check(p) if act.y_check else None
            if message:
                raise ValueError(message)
            if bias is not None:
                return _bias_module().run(act, "backward_y", [(grad_out, "grad_out"), (y, "y")], bias, out, p)
            result = _elementwise(act, "backward_y", (grad_out, y), ("grad_out", "y"), out, p)
            return self._armed("backward_y", self._shortcuts["backward_y"], result) if not kwargs else result
        if bias is not None:
            return _bias_module().run(act, "backward_x", [(grad_out, "grad_out"), (x, "x")], bias, out, p)
        result = _elementwise(act, "backward_x", (grad_out, x), ("grad_out", "x"), out, p)
        return self._armed("backward_x", self._shortcuts["backward_x"], result) if not kwargs else result

    def _armed(self, kind: str, cut: _Shortcut | None, result: Any) -> Any:
        """``result``, after giving ``kind`` its shortcut if a call of it has compiled the
        ufunc (the op's own definition: gelu's default form, not another's), or its
        running layer's sizes once a layer has started."""
        if cut is None or (cut[4] is None and _threads._layer_started() is not None):
            self._shortcuts[kind] = _shortcut(self._act, kind) or cut
        return result


def _run_rows_duck(name: str, inputs: list[tuple[Any, str]], axis: object, out: object) -> Any:
    """Rows of duck arrays through the row gufunc.  The axis must be one chunk for a
    gufunc, so a chunked axis (dask) is rechunked into one chunk first."""
    from . import _ufuncs

    values, res_dt, comp_dt = _duck_inputs(inputs, out)
    ndim = max(np.ndim(v) for v in values)
    if ndim == 0:
        raise ValueError(f"{inputs[0][1]} must have at least one dimension, got a 0-d {_duck_name(inputs)}")
    ax = normalize_axis(axis, ndim, ROW_AXIS)
    first = values[0]
    if _module_of(first) == "xarray":
        dim = first.dims[ax]
        values = [v.chunk({dim: -1}) if getattr(v, "chunks", None) else v for v in values]
    elif len(values) > 1:  # apply_gufunc wants every input of one shape and one chunking
        import dask.array

        shape = broadcast_shape(values[0], values[1], inputs[0][1], inputs[1][1])
        values = [dask.array.broadcast_to(dask.array.asarray(v), shape)  # type: ignore[no-untyped-call]
                  .rechunk({ax: -1}) for v in values]
        values = [v.rechunk(values[0].chunks) for v in values]
    else:
        values = [v.rechunk({ax: -1}) if hasattr(v, "rechunk") and np.ndim(v) == ndim else v for v in values]
    gufunc: Any  # np.ufunc's call, or the same from the row kernels called as Python
    if _backend.numba.config.DISABLE_JIT:
        gufunc = _RowsByCall(name, [n for _, n in inputs])
    else:
        gufunc = _ufuncs.row_gufunc(name)
    result = _apply_quietly(gufunc, *values, dtype=comp_dt, axis=ax)
    return result if comp_dt == res_dt else _cast_quietly(result, res_dt)


def _run_rows(name: str, inputs: list[tuple[object, str]], axis: object, out: object) -> Any:
    names = [argname for _, argname in inputs]
    result = _containers.apply(lambda values, o: _run_rows(name, list(zip(values, names)), axis, o),
                               [value for value, _ in inputs], names, out,
                               fills=_rowops.ROW_FUNCTIONS[name].masked_fills)
    if result is not NotImplemented:
        return result
    if axis is None or isinstance(axis, tuple):
        return _rows_over_axes(name, inputs, axis, out)
    if any(_is_duck_array(value) for value, _ in inputs):
        return _run_rows_duck(name, inputs, axis, out)
    arrays, shape, res_dt, comp_dt, (user,) = prepare_call(inputs, out)
    ax = normalize_axis(axis, len(shape), ROW_AXIS)

    work_shape = shape or (1,)  # a 0-d array is one row of length 1
    ins = [np.broadcast_to(a, shape) if a.shape != shape else a for a in arrays]
    size = math.prod(work_shape)
    if size == 0:
        return user if user is not None else np.empty(shape, res_dt)

    if _backend.runs_numba(comp_dt):
        # The kernels see the arrays as (outer, n, inner), the softmax along n.
        dims = _row_dims(work_shape, ax)
        ins_c = [np.ascontiguousarray(a, dtype=comp_dt).reshape(dims) for a in ins]
        view: Any = user.reshape(dims) if user is not None and user.flags.c_contiguous else None
        # Not in place even where that would be safe: LLVM vectorises no loop whose
        # output may overlap its input, and a copy costs a fraction of that.
        dest: Any = (view if _writable_view(user, view, comp_dt, ins_c, allow_identical=False)
                     else np.empty(dims, comp_dt))
        _rows_numba(name, ins_c, dest)
        if user is not None:
            if dest is not view:
                with quiet_casts(res_dt, comp_dt):
                    np.copyto(user, dest.reshape(shape), casting="same_kind")
            return user
        res = dest.reshape(shape)
    else:
        moved = [np.moveaxis(a.reshape(work_shape), ax, -1).astype(comp_dt, copy=False) for a in ins]
        user_moved: Any = None if user is None else np.moveaxis(user.reshape(work_shape), ax, -1)
        result_moved: Any = (user_moved if _writable_view(user, user_moved, comp_dt, moved, allow_identical=False)
                        else np.empty(moved[0].shape, comp_dt))
        with np.errstate(all="ignore"):
            _rowops.ROW_FUNCTIONS[name].numpy(*moved, -1, result_moved)
        if user is not None:
            if not np.shares_memory(result_moved, user):
                with quiet_casts(res_dt, comp_dt):
                    np.copyto(user_moved, result_moved, casting="same_kind")
            return user
        res = np.moveaxis(result_moved, -1, ax).reshape(shape)
    res = res if comp_dt == res_dt else _cast_quietly(res, res_dt)
    return res[()] if res.ndim == 0 else res


def _rows_over_axes(name: str, inputs: list[tuple[Any, str]], axis: object, out: object) -> Any:
    """Row op ``name`` over several axes at once (``axis=None``: all of them, or a
    tuple, as SciPy's softmax takes): those axes are moved to the end and merged
    into one, the op runs along it, and the result is put back.  ndarrays and dask
    arrays (lazily); an xarray object takes one axis at a time."""
    values: list[Any] = [value if _is_duck_array(value) else as_real_array(value, argname)
                         for value, argname in inputs]
    if any(_module_of(v) == "xarray" for v in values):
        raise TypeError(f"axis must be an int for an xarray object, got {axis!r}: its rows are along one dimension")
    if len(values) == 1:
        shape = tuple(values[0].shape)
    else:
        shape = broadcast_shape(values[0], values[1], inputs[0][1], inputs[1][1])
    axes = normalize_axes(axis, len(shape))
    user = None if out is None else check_out(out, shape, result_dtype(*values), "out")  # before any work
    rest = [a for a in range(len(shape)) if a not in axes]
    order = rest + list(axes)
    merged = tuple(shape[a] for a in rest) + (math.prod(shape[a] for a in axes),)
    rows = []
    for value in values:
        if _is_duck_array(value):
            import dask.array

            value = dask.array.broadcast_to(value, shape)  # type: ignore[no-untyped-call]
        else:
            value = np.broadcast_to(value, shape)
        rows.append(value.transpose(order).reshape(merged))
    result = _run_rows(name, list(zip(rows, [argname for _, argname in inputs])), -1, None)
    result = np.asarray(result) if isinstance(result, np.generic) else result
    result = result.reshape(tuple(shape[a] for a in order)).transpose(tuple(np.argsort(order).tolist()))
    if user is None:
        return result[()] if getattr(result, "ndim", 1) == 0 else result
    np.copyto(user, result)  # result already has out's dtype
    return user


def _writable_c(flags: Any) -> bool:
    writable: bool = flags.c_contiguous and flags.writeable
    return writable


def _lanes_dims(arr: np.ndarray, ax: int, copied: bool = False) -> tuple[int, int, int] | None:
    """The (outer, n, inner) view of ``arr`` along axis ``ax`` where a reduction along it
    reads ``arr`` as it lies, its lanes side by side: a C-contiguous array (or one
    ``copied`` into one first), not empty, with at least LANES_REDUCTION_MIN lanes after
    the axis; else None (the axis is then moved last, a copy)."""
    dims = _row_dims(arr.shape, ax)
    if dims[2] < _config.LANES_REDUCTION_MIN or not arr.size or not (copied or arr.flags.c_contiguous):
        return None
    return dims


def _row_dims(shape: tuple[int, ...], ax: int) -> tuple[int, int, int]:
    """The (outer, n, inner) view of ``shape`` with the rows along axis ``ax``."""
    return math.prod(shape[:ax]), shape[ax], math.prod(shape[ax + 1:])


def _rows_numba(name: str, ins: list[np.ndarray], dest: np.ndarray, temperature: Any = None) -> None:
    """Row op ``name`` along axis 1 of C-contiguous (outer, n, inner) arrays into ``dest``.

    The last axis (inner == 1) runs the row formulation, vectorised along each
    row, or for short rows the block formulation, vectorised over blocks of
    rows; the gufuncs give the same bits.  Any other axis runs the lanes
    formulation in place, vectorised along the inner axis: no transposed copies
    (slower than the softmax itself); with few lanes, grouped lanes; with
    fewer outer indices and lane blocks than threads, split lanes.  Its sums
    run in another order than the last axis's: results differ by a few ULP.
    ``temperature`` (along the last axis only) runs _kernels.scaled_row_kernel.
    """
    outer, n, inner = dest.shape
    parallel = _threads.rows_go_parallel(dest.size, tasks=outer * inner)
    serial_ns = _threads.ROW_SERIAL_NS[dest.itemsize == 8]
    fresh = dest.base is None  # allocated by the caller for this call (a user's out arrives as a view)
    if inner == 1:
        form = _row_form(name, n, dest.itemsize)
        args: list[Any] = [a.reshape(outer, n) for a in ins]
        kernel = _row_kernel(name, parallel, form)
        if temperature is not None:
            kernel = _scaled_row_kernel(name, parallel, _kernels_module().scaled_form(name, form, n))
            args.append(float(temperature))
        _threads.run(kernel, parallel, dest.size, serial_ns, *args, dest.reshape(outer, n), fresh=fresh)
        return
    group = 1
    if inner < _config.GROUPED_LANES_MAX:
        group = next((g for g in _config.LANE_GROUPS if n % g == 0), 1)
    tasks = outer * (1 if group > 1 else -(-inner // _config.LANE_BLOCK))
    threads = _threads.get_num_threads()
    if parallel and tasks < threads and n // group >= _config.SPLIT_LANES_MIN_ROWS * threads:
        _threads.run(_row_kernel(name, parallel, "split_lanes"), parallel, dest.size, serial_ns, *ins, dest, group,
                     threads, fresh=fresh)
    else:
        _threads.run(_row_kernel(name, parallel, "lanes"), parallel, dest.size, serial_ns, *ins, dest, group,
                     fresh=fresh)


@functools.cache
def _row_kernel(name: str, parallel: bool, form: str) -> Any:
    return _kernels_module().row_kernel(name, parallel, form=form)


def _row_form(name: str, n: int, itemsize: int) -> str:
    """The form of row_kernel for rows of n along the last axis: short rows in blocks."""
    return "blocks" if _kernels_module().uses_blocks(name, n, itemsize) else "rows"


def _takes_row_out(out: object, values: tuple[Any, ...]) -> TypeGuard[np.ndarray]:
    """Whether a row kernel may write straight into ``out``: an ndarray of the last
    input's dtype and shape, C-contiguous and writeable, overlapping no input."""
    x = values[-1]
    return (type(out) is np.ndarray and out.dtype is x.dtype and out.shape == x.shape and _writable_c(out.flags)
            and not np.may_share_memory(out, x) and (len(values) == 1 or not np.may_share_memory(out, values[0])))


# Small calls of a row op along the last axis of C-contiguous ndarrays: per name,
# then per row length n (float32) or -n (float64), the address of the serial kernel
# _rows_numba would run as a C function (_kernels.small_row_function; 0 without the
# C module), the size below which every threading layer runs it serially, and the
# Numba object that owns the function; nothing of _rows_numba's bookkeeping, which
# costs more than the softmax of a batch of 32 x 10.  (Two lookups, so that C
# builds no (name, n) key.)
_SMALL_ROWS: dict[str, dict[int, tuple[int, int, Any]]] = {}
# The same for a loss's common small batch (_losses.SoftmaxCrossEntropy._run): per
# name and row length the address of the serial kernel as a C function
# (_kernels.small_loss_function), the size below which it runs serially, whether
# the rows run in blocks, and the Numba object that owns the function.  Both tables
# are filled by the first call in Python and emptied when this machine's tuning
# changes (_tuning.tune).
_SMALL_LOSSES: dict[str, dict[int, tuple[int, int, bool, Any]]] = {}
_tuning.ON_CHANGE.extend((_SMALL_ROWS.clear, _SMALL_LOSSES.clear))
if FASTCALL:
    _configure_fastcall(_backend._override, vars(_backend), _SMALL_ROWS, _SMALL_LOSSES)


def _small_rows(name: str, values: tuple[Any, ...], axis: object, out: object) -> Any:
    """Row op ``name`` on small ndarrays along their last axis (of any size where this
    thread runs on one thread), or None where the call is not such: the caller then
    takes _rows.  Below the serial size the kernel runs as a C function (the entry C's
    calls take, _kernels.small_row_function), above it Numba's dispatch, which lets go
    of the GIL."""
    x = values[-1]
    dt = x.dtype
    if ((dt is not _F32 and dt is not _F64) or not x.ndim or not x.size or (axis != -1 and axis != x.ndim - 1)
            or not x.flags.c_contiguous or not x.flags.aligned
            or (_override_get() or _backend._default_backend) != "numba"):
        return None
    n = x.shape[-1]
    key = n if dt is _F32 else -n
    by_length = _SMALL_ROWS.setdefault(name, {})
    entry = by_length.get(key)
    form = None
    if entry is None:
        if _backend.numba.config.DISABLE_JIT:
            return None
        form = _row_form(name, n, dt.itemsize)
        owner = _kernels_module().small_row_function(name, form, dt.name) if FASTCALL else None
        entry = by_length[key] = (0 if owner is None else owner.address, _tuning.current().rows_serial_below, owner)
    small = x.size < entry[1]
    if not small and not _one_thread():
        return None
    if len(values) == 2:
        other = values[0]
        if (type(other) is not np.ndarray or other.dtype is not dt or other.shape != x.shape
                or not other.flags.c_contiguous or not other.flags.aligned):
            return None
    if out is None:
        dest = np.empty(x.shape, dt)
    elif _takes_row_out(out, values) and out.flags.aligned:
        dest = out
    else:
        return None
    if small and entry[2] is not None:
        _small_row_call(entry[0], values[0], values[1] if len(values) == 2 else None, dest)
    else:
        kernel = _row_kernel(name, False, form or _row_form(name, n, dt.itemsize))
        kernel(*(v.reshape(-1, n) for v in values), dest.reshape(-1, n))
    return dest


def _rows(name: str, values: tuple[Any, ...], names: tuple[Any, ...], axis: object, out: object,
          temperature: object = None) -> Any:
    """Row op ``name`` on ``values`` along ``axis``.  Plain arrays (``_plain_arrays``)
    with no out, or an out that overlaps none of them, go straight to the kernels;
    as ``_elementwise``, for small arrays.  ``temperature=`` (no where=) takes this path
    along the last axis, with _kernels.scaled_row_kernel, and _rows_with's otherwise."""
    if type(axis) is int and _plain_arrays(values):
        x = values[-1]
        shape = x.shape
        ax = axis + len(shape) if axis < 0 else axis
        t = None if temperature is None else _temperature(temperature, x.dtype)
        if 0 <= ax < len(shape) and x.size and (t is None or ax == len(shape) - 1):
            dims = _row_dims(shape, ax)
            if out is None:
                dest = np.empty(dims, x.dtype)
            elif _takes_row_out(out, values):
                dest = out.reshape(dims)
            else:
                dest = None
            if dest is not None:
                _rows_numba(name, [v.reshape(dims) for v in values], dest, t)
                return out if out is not None else dest.reshape(shape)
    if temperature is not None:
        return _rows_with(name, list(zip(values, names)), axis, out, None, temperature)
    return _run_rows(name, list(zip(values, names)), axis, out)


# --- where= and temperature= of the row ops and reductions ----------------------------


def _temperature(temperature: object, dtype: np.dtype) -> Any:
    """temperature= checked, in ``dtype`` (x / temperature rounds as PyTorch's does); None is 1."""
    if temperature is None:
        return dtype.type(1)
    if isinstance(temperature, (bool, np.bool_)) or not isinstance(temperature, numbers.Real):
        raise TypeError(f"temperature must be a real number, got {type(temperature).__name__}")
    with np.errstate(all="ignore"):
        t = dtype.type(temperature)
    if not (temperature > 0 and np.isfinite(t) and t > 0):  # type: ignore[operator]  # a Real compares with 0
        raise ValueError(f"temperature must be positive and finite in {dtype}, got {temperature!r}")
    return t


def _keep_mask(where: object, shape: tuple[int, ...]) -> np.ndarray | None:
    """where= checked: a bool array that broadcasts to ``shape`` (x's); None keeps every entry."""
    if where is None:
        return None
    keep = np.asarray(where)
    if keep.dtype != np.bool_:
        raise TypeError(f"where must be a bool array (True where an entry takes part in its row), "
                        f"got dtype {keep.dtype}")
    check_broadcasts_to(keep, shape, "where", "x's shape")
    return keep


def _mask_rows(keep: np.ndarray | None, work: tuple[int, ...], order: list[int], n_axes: int, n: int) -> np.ndarray:
    """The mask as the kernels take it: (period, n) C-contiguous, row r of the (rows, n)
    data taking row r % period.  A mask broadcast along leading axes ((n, n) against
    (batch, heads, n, n)) is copied out only over the axes along which it varies."""
    if keep is None:
        return np.ones((1, n), np.bool_)
    padded = keep.reshape((1,) * (len(work) - keep.ndim) + keep.shape)
    if order != sorted(order):
        return np.ascontiguousarray(np.broadcast_to(padded, work).transpose(order)).reshape(-1, n)
    # the axes are the last ones: the mask is copied from its first axis of more than one entry
    first_row_axis = len(work) - n_axes
    start = min(next((d for d, size in enumerate(padded.shape) if size != 1), len(work)), first_row_axis)
    tail = work[start:]
    return np.ascontiguousarray(np.broadcast_to(padded.reshape(padded.shape[start:]), tail)).reshape(-1, n)


def _rows_with(name: str, inputs: list[tuple[object, str]], axis: object, out: object, where: object,
               temperature: object) -> Any:
    """Row function ``name`` with ``where=`` and ``temperature=``.  Along one axis that is
    not the last, the plain op on the filled inputs in x's layout (``_lanes_with``);
    otherwise the row axes are moved last and merged (a copy, unless they are last
    already), the kernels run on the (rows, n) arrays (``_kernels.kept_row_kernel``), and
    the result is moved back."""
    fn = _rowops.ROW_FUNCTIONS[name]
    names = [argname for _, argname in inputs]
    for value, argname in [*inputs, (where, "where")]:
        if _is_duck_array(value):
            raise TypeError(f"{argname}: where= and temperature= take NumPy arrays, got a "
                            f"{_module_of(value)}.{type(value).__name__}; compute it first, or use the op without them")
    result = _containers.apply(
        lambda values, o: _rows_with(name, list(zip(values, names)), axis, o, where, temperature),
        [value for value, _ in inputs], names, out, fills=fn.masked_fills)
    if result is not NotImplemented:
        return result
    arrays, shape, res_dt, comp_dt, (user,) = prepare_call(inputs, out)
    t = _temperature(temperature, comp_dt)
    keep = _keep_mask(where, shape)
    work = shape or (1,)  # a 0-d array is one row of length 1
    axes = normalize_axes(axis, len(work))
    order = [d for d in range(len(work)) if d not in axes] + list(axes)
    n = math.prod(work[d] for d in axes)
    size = math.prod(work)
    if size == 0:
        return user if user is not None else np.empty(shape, res_dt)
    if len(axes) == 1 and axes[0] != len(work) - 1:
        return _lanes_with(fn, arrays, shape, axes[0], keep, t, user, res_dt, comp_dt)
    rows = (size // n, n)
    ins = [np.ascontiguousarray(np.broadcast_to(a, shape).reshape(work).transpose(order), dtype=comp_dt).reshape(rows)
           for a in arrays]
    keep_rows = _mask_rows(keep, work, order, len(axes), n)
    view = (user.reshape(rows) if user is not None and order == sorted(order) and user.flags.c_contiguous
            else None)
    dest: Any = view if _writable_view(user, view, comp_dt, ins, allow_identical=False) else np.empty(rows, comp_dt)
    safe = keep is not None
    if _backend.runs_numba(comp_dt):
        form = _row_form(name, n, comp_dt.itemsize)
        parallel = _threads.rows_go_parallel(size, tasks=rows[0])
        if keep is None and fn.runs_scaled:  # temperature= alone: no scratch copy of the rows
            kernel = _scaled_row_kernel(name, parallel, _kernels_module().scaled_form(name, form, n))
            args = (*ins, float(t))
        else:
            kernel = _kept_row_kernel(name, parallel, _kernels_module().kept_form(name, form, t))
            args = (*ins, keep_rows, *((float(t), safe) if len(ins) == 1 else (float(t),)))
        _threads.run(kernel, parallel, size, _threads.ROW_SERIAL_NS[comp_dt.itemsize == 8], *args, dest,
                     fresh=dest is not view)
    else:
        period = keep_rows.shape[0]
        with np.errstate(all="ignore"):
            _rowops.numpy_kept(fn, [a.reshape(-1, period, n) for a in ins], keep_rows, t, safe,
                               dest.reshape(-1, period, n))
    if dest is view:
        return user
    res = dest.reshape(tuple(work[d] for d in order)).transpose(np.argsort(order).tolist()).reshape(shape)
    if user is not None:
        with quiet_casts(res_dt, comp_dt):
            np.copyto(user, res, casting="same_kind")
        return user
    res = res if comp_dt == res_dt else _cast_quietly(res, res_dt)
    return res[()] if res.ndim == 0 else res


def _lanes_with(fn: _rowops.RowFunction, arrays: list[np.ndarray], shape: tuple[int, ...], ax: int,
                keep: np.ndarray | None, t: Any, user: np.ndarray | None, res_dt: np.dtype, comp_dt: np.dtype) -> Any:
    """_rows_with along one axis ``ax`` that is not the last: the plain op along it (its
    lanes kernels) on the filled inputs in x's own layout, as ``_rowops.numpy_kept``
    defines them: masked entries filled, a forward's x divided by t, a backward's result
    divided by t, a forward's lane of nothing but fill set to ``fn.empty_row``.  Filling
    costs a pass over x; moving the axis last and back, as the rows need, cost 8-33x
    the plain op on 4096 x 4096."""
    ins = [np.broadcast_to(a, shape) for a in arrays]
    if keep is not None or (len(ins) == 1 and t != 1):
        divisor = t if len(ins) == 1 else comp_dt.type(1)  # a backward divides its result instead
        ins = [_filled(a, keep, comp_dt.type(fill), divisor, comp_dt) for a, fill in zip(ins, fn.masked_fills)]
    dest = user if user is not None and user.dtype == comp_dt else np.empty(shape, comp_dt)
    _run_rows(fn.name, [(a, "x") for a in ins], ax, dest)
    if len(ins) == 2 and t != 1:
        np.divide(dest, t, out=dest)
    elif len(ins) == 1 and keep is not None:  # safe softmax: a lane of nothing but fill gives empty_row
        fill = fn.masked_fills[0]
        edge = np.max(ins[0], axis=ax, keepdims=True) if fill < 0 else np.min(ins[0], axis=ax, keepdims=True)
        empty = edge == fill  # (a NaN keeps its lane)
        if empty.any():
            np.copyto(dest, comp_dt.type(fn.empty_row), where=empty)
    if user is not None:
        if dest is not user:
            with quiet_casts(res_dt, comp_dt):
                np.copyto(user, dest, casting="same_kind")
        return user
    return dest if comp_dt == res_dt else _cast_quietly(dest, res_dt)


def _filled(a: np.ndarray, keep: np.ndarray | None, fill: Any, t: Any, comp_dt: np.dtype) -> np.ndarray:
    """A new array of ``a / t`` where ``keep``, ``fill`` elsewhere (t and fill in
    ``comp_dt``, the quotient rounded in it; t = 1 exact), in x's layout."""
    if keep is None or not _backend.runs_numba(comp_dt):
        with np.errstate(all="ignore"):
            res: np.ndarray = np.divide(a, t, dtype=comp_dt)
            if keep is not None:
                np.copyto(res, fill, where=~keep)
        return res
    x = np.ascontiguousarray(a, dtype=comp_dt).reshape(-1)
    kept = np.ascontiguousarray(np.broadcast_to(keep, a.shape)).reshape(-1)
    out = np.empty(x.shape[0], comp_dt)
    _kernels_module().fill_kept_kernel(_threads.rows_go_parallel(x.shape[0], tasks=x.shape[0]))(x, kept, fill, t, out)
    return out.reshape(a.shape)


@functools.cache
def _kept_row_kernel(name: str, parallel: bool, form: str) -> Any:
    return _kernels_module().kept_row_kernel(name, parallel, form)


@functools.cache
def _scaled_row_kernel(name: str, parallel: bool, form: str) -> Any:
    return _kernels_module().scaled_row_kernel(name, parallel, form)


_ROW_ENTRY_POINTS = """

``axis`` is an int, a tuple of ints (the rows span those axes) or None (all of them), as
in SciPy; ``dim=`` is another name of it, as in PyTorch.

``where=`` (a bool array that broadcasts to x's shape) leaves the entries where it is False
out of their row: they give {empty}, and so does a row with nothing left (PyTorch's safe
softmax: not NaN).

``temperature=`` t gives {name}(x / t), fused{quotient}.
``backward`` takes the forward's ``where=`` and ``temperature=``.

Entry points:
    {name}(x, axis=-1, out=None, *, where=None, temperature=None)
    {name}.backward(grad_out, y, axis=-1, out=None, *, where=None, temperature=None)
        the gradient with respect to x, from y
    {name}.gufunc, {name}.backward_gufunc  the NumPy gufuncs (dask, xarray)

Example (the tutorial's four scores):
    >>> import numpy as np, fastact
    >>> y = fastact.{name}(np.array([2.0, 10.0, 1.0, 4.0]))
    >>> y.round(6)
    {example}
    >>> fastact.{name}.backward(np.ones(4), y).shape
    (4,)
"""


def _quotient_note(name: str) -> str:
    """How a row op's ``temperature=`` takes x / t (_rowops.EXACT_QUOTIENT_OPS)."""
    if name in _rowops.EXACT_QUOTIENT_OPS:
        return (":\nthe quotient taken exactly, inside exp, as fast as the plain op and within its few\n"
                "ULPs of the exact value, where PyTorch's x / t, rounded first, errs by up to |x / t|\n"
                "ULPs (x / t is rounded first along one axis that is not the last, and with where=)")
    return ", x / t rounded in x's dtype as PyTorch's"


class RowOp(_CallBase, _PublicOp):
    """A normalisation over one axis: ``op(x, axis=-1)`` and ``op.backward(grad_out, y, axis=-1)``."""

    def __init__(self, definition: _rowops.RowDefinition) -> None:
        self._name = self._small_name = definition.name
        self._name_as(definition.name)
        self.__doc__ = (f"{definition.name}(x, axis=-1, out=None): {definition.doc}"
                        + _ROW_ENTRY_POINTS.format(name=definition.name, example=definition.example,
                                                   empty=f"{definition.forward.empty_row:g}",
                                                   quotient=_quotient_note(definition.name)))
        self._backward_name = definition.backward.name
        self._scaled = definition.forward.runs_scaled  # kernels for temperature= alone (RowFunction.scaled)
        if FASTCALL:  # the backward's small calls in C
            self.__dict__["backward"] = _Entry(self.backward, "row_backward", self._backward_name)

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"<fastact op {self._name}>"

    @property
    def gufunc(self) -> np.ufunc:
        """The op as a NumPy gufunc with signature ``(n)->(n)`` over the last axis
        (``axes=`` picks another).  ``op(x)`` uses it for dask arrays and xarray objects."""
        from . import _ufuncs

        return _ufuncs.row_gufunc(self._name)

    @property
    def backward_gufunc(self) -> np.ufunc:
        """``backward`` as a gufunc ``(n),(n)->(n)``: ``(grad_out, y) -> grad_x``."""
        from . import _ufuncs

        return _ufuncs.row_gufunc(self._backward_name)

    def _call(self, x: ArrayLike, axis: int | tuple[int, ...] | None = -1, out: np.ndarray | None = None, *,
              where: ArrayLike | None = None, temperature: float | None = None, **kwargs: Any) -> Any:
        if kwargs:
            axis = self._axis_alias(self._name, axis, kwargs)
        if where is None and temperature is None and type(x) is np.ndarray and type(axis) is int:
            result = _small_rows(self._name, (x,), axis, out)  # (first in C, where _fastcall is built)
            if result is not None:
                return result
        if where is not None or (temperature is not None and not self._scaled):
            return _rows_with(self._name, [(x, "x")], axis, out, where, temperature)
        return _rows(self._name, (x,), ("x",), axis, out, temperature)

    if not FASTCALL:  # pragma: no cover - installed without a C compiler
        __call__ = _call

    def backward(self, grad_out: ArrayLike, y: ArrayLike, axis: int | tuple[int, ...] | None = -1,
                 out: np.ndarray | None = None, *, where: ArrayLike | None = None, temperature: float | None = None,
                 **kwargs: Any) -> Any:
        """The gradient with respect to x, from ``grad_out`` and the forward output ``y``
        (with the forward's ``where=`` and ``temperature=``)."""
        if kwargs:
            axis = self._axis_alias(f"{self._name}.backward", axis, kwargs)
        if where is None and temperature is None and type(y) is np.ndarray and type(axis) is int:
            result = _small_rows(self._backward_name, (grad_out, y), axis, out)
            if result is not None:
                return result
        if where is not None:
            return _rows_with(self._backward_name, [(grad_out, "grad_out"), (y, "y")], axis, out, where, temperature)
        return _rows(self._backward_name, (grad_out, y), ("grad_out", "y"), axis, out, temperature)

    @staticmethod
    def _axis_alias(function: str, axis: object, kwargs: dict[Any, Any]) -> Any:
        """PyTorch's ``dim=`` as another name of ``axis=``; any other keyword is refused
        in the public function's name."""
        unknown = set(kwargs) - {"dim"}
        if unknown:
            raise TypeError(f"{function}() got an unexpected keyword argument {sorted(unknown)[0]!r}")
        if axis != -1:
            raise TypeError(f"{function}() got both axis={axis!r} and dim={kwargs['dim']!r}: dim is another name "
                            "of axis, give one")
        return kwargs["dim"]


class ReductionOp(_PublicOp):
    """A reduction over axes (``_rowops.ROW_REDUCTIONS``): ``op(x, axis=-1, keepdims=False)``
    and ``op.backward(grad_out, x, axis=-1, keepdims=False)``."""

    def __init__(self, definition: _rowops.RowReduction) -> None:
        self._definition = definition
        self._gradient = RowOp(_rowops.ROW_OPS[definition.gradient])
        self._name_as(definition.name)
        name = definition.name
        self.__doc__ = (
            f"{name}(x, axis=-1, keepdims=False, out=None): {definition.doc}\n\n"
            f"``axis`` is an int, a tuple of ints or None (all), as in SciPy; ``dim=`` and ``keepdim=`` are\n"
            f"PyTorch's names.  float32 stays float32 (summed in float64), float64 float64.\n"
            f"``where=`` (a bool array broadcast to x's shape) leaves the entries where it is False out\n"
            f"(a row with nothing left gives -inf); ``temperature=`` t gives {name}(x / t), x / t rounded\n"
            f"in x's dtype as PyTorch's.  ``backward`` takes both too.\n\n"
            f"Entry points:\n"
            f"    {name}(x, axis=-1, keepdims=False, out=None, *, where=None, temperature=None)\n"
            f"    {name}.backward(grad_out, x, axis=-1, keepdims=False, out=None, *, where=None, temperature=None)\n"
            f"        grad_out * {definition.gradient}(x)\n\n"
            f"Example (the tutorial's four scores):\n"
            f"    >>> import numpy as np, fastact\n"
            f"    >>> fastact.{name}(np.array([2.0, 10.0, 1.0, 4.0])).round(6)\n"
            f"    {definition.example}\n")

    @property
    def name(self) -> str:
        return self._definition.name

    def __repr__(self) -> str:
        return f"<fastact op {self.name}(x, axis=-1, keepdims=False, out=None)>"

    @staticmethod
    def _aliases(function: str, axis: object, keepdims: object, kwargs: dict[Any, Any]) -> tuple[Any, Any]:
        """PyTorch's ``dim=`` and ``keepdim=``; anything else is refused in the function's name."""
        unknown = set(kwargs) - {"dim", "keepdim"}
        if unknown:
            raise TypeError(f"{function}() got an unexpected keyword argument {sorted(unknown)[0]!r}")
        if "dim" in kwargs:
            axis = RowOp._axis_alias(function, axis, {"dim": kwargs["dim"]})
        if "keepdim" in kwargs:
            if keepdims is not False:
                raise TypeError(f"{function}() got both keepdims and keepdim: keepdim is another name of keepdims")
            keepdims = kwargs["keepdim"]
        return axis, keepdims

    def _rows(self, x: object, axis: object, keepdims: object,
              name: str) -> tuple[np.ndarray, tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]:
        """x (checked) as C-contiguous (rows, n) with the reduced axes last, the result's
        shape, its shape with keepdims, and the axes."""
        if not isinstance(keepdims, (bool, np.bool_)):
            raise TypeError(f"keepdims must be a bool, got {type(keepdims).__name__}")
        arr = as_real_array(x, name)
        axes = normalize_axes(axis, arr.ndim)
        kept = tuple(d for d in range(arr.ndim) if d not in axes)
        shape = tuple(arr.shape[d] for d in kept)
        kept_shape = tuple(1 if d in axes else arr.shape[d] for d in range(arr.ndim))
        n = math.prod(arr.shape[d] for d in axes)
        if n == 0:
            raise ValueError(f"{self.name} of an empty row (axis {axis} of a shape {arr.shape} array) is -inf in PyTorch "
                             f"and an error in NumPy's max: fastact refuses it")
        return arr, shape, kept_shape, (kept, axes, n)

    @staticmethod
    def _keep(where: object, shape: tuple[int, ...]) -> np.ndarray | None:
        if _is_duck_array(where):
            raise TypeError(f"where must be a NumPy array, got a {_module_of(where)}.{type(where).__name__}")
        return _keep_mask(where, shape)

    def _over_rows(self, arr: np.ndarray, kept: tuple[int, ...], axes: tuple[int, ...], n: int, comp_dt: np.dtype,
                   where: object, temperature: object) -> np.ndarray:
        """The reduction of each row of ``arr`` with ``axes`` moved last (a copy), as comp_dt."""
        options = where is not None or temperature is not None
        rows2 = np.ascontiguousarray(np.transpose(arr, kept + axes), dtype=comp_dt).reshape(-1, n)
        result = np.empty(rows2.shape[0], comp_dt)
        if options:
            t = _temperature(temperature, comp_dt)
            work = arr.shape or (1,)
            keep_rows = _mask_rows(self._keep(where, arr.shape), work, list(kept + axes), len(axes), n)
        if result.size:
            parallel = _threads.rows_go_parallel(rows2.size, tasks=rows2.shape[0])
            serial_ns = _threads.ROW_SERIAL_NS[comp_dt.itemsize == 8]
            if options and _backend.runs_numba(comp_dt):
                _threads.run(_kernels_module().kept_reduction_kernel(self.name, parallel), parallel, rows2.size,
                             serial_ns, rows2, keep_rows, float(t), result, fresh=True)
            elif options:
                period = keep_rows.shape[0]
                with np.errstate(all="ignore"):
                    filled = np.where(keep_rows, rows2.reshape(-1, period, n), comp_dt.type(-np.inf))
                    self._definition.numpy(np.divide(filled, t).reshape(-1, n), result)
            elif _backend.runs_numba(comp_dt):
                _threads.run(_kernels_module().reduction_kernel(self.name, parallel), parallel, rows2.size,
                             serial_ns, rows2, result, fresh=True)
            else:
                with np.errstate(all="ignore"):
                    self._definition.numpy(rows2, result)
        return result

    def __call__(self, x: ArrayLike, axis: int | tuple[int, ...] | None = -1, keepdims: bool = False,
                 out: np.ndarray | None = None, *, where: ArrayLike | None = None, temperature: float | None = None,
                 **kwargs: Any) -> Any:
        if kwargs:
            axis, keepdims = self._aliases(self.name, axis, keepdims, kwargs)
        arr, shape, kept_shape, (kept, axes, n) = self._rows(x, axis, keepdims, "x")
        res_dt = result_dtype(arr)
        comp_dt = compute_dtype(res_dt)
        options = where is not None or temperature is not None
        dims = None
        if len(axes) == 1 and self._definition.lanes is not None and _backend.runs_numba(comp_dt):
            if options and _lanes_dims(arr, axes[0], copied=True) is not None:
                # where= and temperature= along an axis that is not the last: x / t with the masked
                # entries -inf, in x's layout (a pass; moving the axis last cost 10-19x the op)
                arr = _filled(arr, self._keep(where, arr.shape), comp_dt.type(-math.inf),
                              _temperature(temperature, comp_dt), comp_dt)
                options = False
            dims = None if options else _lanes_dims(arr, axes[0])
        if dims is not None:
            # along an axis that is not the last, read as it lies (_kernels._reduce_lanes)
            inner = dims[2]
            lanes = np.ascontiguousarray(arr, dtype=comp_dt).reshape(dims)
            result = np.empty((lanes.shape[0], inner), comp_dt)
            parallel = _threads.rows_go_parallel(lanes.size, tasks=lanes.shape[0] * -(-inner // _config.LANE_BLOCK))
            _threads.run(_kernels_module().reduction_lanes_kernel(self.name, parallel), parallel, lanes.size,
                         _threads.ROW_SERIAL_NS[comp_dt.itemsize == 8], lanes, result, fresh=True)
        else:
            result = self._over_rows(arr, kept, axes, n, comp_dt, where, temperature)
        with quiet_casts(res_dt, comp_dt):
            value = result.reshape(kept_shape if keepdims else shape).astype(res_dt, copy=False)
        if out is not None:
            return _deliver(value, out, "out")
        return value[()] if value.ndim == 0 else value

    def backward(self, grad_out: ArrayLike, x: ArrayLike, axis: int | tuple[int, ...] | None = -1,
                 keepdims: bool = False, out: np.ndarray | None = None, *, where: ArrayLike | None = None,
                 temperature: float | None = None, **kwargs: Any) -> Any:
        """The gradient with respect to x: ``grad_out`` (of the result's shape, or with keepdims
        its) times the gradient op's output (logsumexp: softmax(x)), two passes; with
        ``temperature=`` t, grad_out times softmax(x / t) / t."""
        function = f"{self.name}.backward"
        if kwargs:
            axis, keepdims = self._aliases(function, axis, keepdims, kwargs)
        arr, shape, kept_shape, _ = self._rows(x, axis, keepdims, "x")
        g = as_real_array(grad_out, "grad_out")
        if g.shape not in (shape, kept_shape):
            raise ValueError(f"grad_out must have the shape of {self.name}(x) {kept_shape if keepdims else shape}, "
                             f"got {g.shape}")
        res_dt = result_dtype(arr, g)
        if out is not None:
            check_out(out, arr.shape, res_dt, "out")
        p = self._gradient(arr.astype(res_dt, copy=False), axis=axis, where=where, temperature=temperature)
        result = np.multiply(p, g.reshape(kept_shape), out=out if out is not None else p)
        if temperature is not None:
            np.divide(result, _temperature(temperature, compute_dtype(res_dt)).astype(res_dt), out=result)
        return result


def public_ops() -> dict[str, Any]:
    """Every public op by its public name, built from the definitions: the elementwise
    ops (one per variant group, with their aliases) and the row ops."""
    ops: dict[str, Any] = {}
    variants: dict[str, dict[str, _activations.Activation]] = {}
    for act in _activations.ELEMENTWISE.values():
        if act.variant:
            variants.setdefault(act.variant[0], {})[act.variant[2]] = act
    for act in _activations.ELEMENTWISE.values():
        if act.variant is None:
            op = ElementwiseOp(act)
        elif act.variant[0] not in ops:
            group = variants[act.variant[0]]
            op = ElementwiseOp(next(iter(group.values())), group, act.variant[1])
        else:
            continue
        ops[op.name] = op
        for alias in act.aliases:
            ops[alias] = op
    for definition in _rowops.ROW_OPS.values():
        ops[definition.name] = RowOp(definition)
    for gated in _gatedops.GATED_OPS.values():
        ops[gated.name] = GatedOp(gated, ops[gated.activation])
    for reduction in _rowops.ROW_REDUCTIONS.values():
        ops[reduction.name] = ReductionOp(reduction)
    for channel in _activations.CHANNEL_OPS.values():
        if channel.activation in ops:
            ops[channel.name] = ChannelOp(channel, ops[channel.activation])
    return ops


# --- per-channel parameters ----------------------------------------------------------


class ChannelOp(_PublicOp):
    """An elementwise activation whose parameter is an array along a channel axis
    (``_activations.CHANNEL_OPS``): ``op(x, weight, axis=1)``, ``op.grad``,
    ``op.value_and_grad`` and ``op.backward(grad_out, x, weight)``.  The kernels run the
    activation's formulas over each channel's runs with that channel's parameter
    (``_kernels.channel_kernel``); the NumPy fallback broadcasts it along the channel
    axis.  Values are the activation's with that parameter, bit for bit."""

    def __init__(self, definition: _activations.ChannelDefinition, activation: ElementwiseOp) -> None:
        self._definition = definition
        self._activation = activation
        self._name_as(definition.name)
        name, param = definition.name, definition.param
        self.__doc__ = (
            f"{definition.doc}\n\nSignature: {name}(x, {param}, axis=1, out=None)\n\n"
            f"Entry points (float32 stays float32, float64 float64):\n"
            f"    {name}(x, {param}, axis=1)  f(x)\n"
            f"    {name}.grad(x, {param}, axis=1)  f'(x)\n"
            f"    {name}.value_and_grad(x, {param}, axis=1)  (f(x), f'(x)) in one pass\n"
            f"    {name}.backward(grad_out, x, {param}, axis=1)  grad_out * f'(x) in one pass\n"
            f"    {name}.backward(grad_out, x, {param}, param_grads=True)  (dx, {{{param!r}: d{param}}}), "
            f"d{param} summed per channel in the same pass\n\n"
            f"Example:\n"
            f"    >>> import numpy as np, fastact\n"
            f"    >>> x = np.array([[-2.0, -2.0], [3.0, -1.0]], dtype=np.float32)\n"
            f"    >>> fastact.{name}(x, np.array([0.25, 0.5]))\n"
            f"    array([[-0.5, -1. ],\n"
            f"           [ 3. , -0.5]], dtype=float32)\n"
        )

    @property
    def name(self) -> str:
        return self._definition.name

    def __repr__(self) -> str:
        return f"<fastact op {self.name}(x, {self._definition.param}, axis=1, out=None)>"

    def __call__(self, x: ArrayLike, weight: ArrayLike, axis: int = 1, out: np.ndarray | None = None) -> Any:
        return self._run("forward", (x,), ("x",), weight, axis, out)

    def grad(self, x: ArrayLike, weight: ArrayLike, axis: int = 1, out: np.ndarray | None = None) -> Any:
        return self._run("grad", (x,), ("x",), weight, axis, out)

    def value_and_grad(self, x: ArrayLike, weight: ArrayLike, axis: int = 1,
                       out: tuple[np.ndarray, np.ndarray] | None = None) -> Any:
        return self._run("value_and_grad", (x,), ("x",), weight, axis, out)

    def backward(self, grad_out: ArrayLike, x: ArrayLike, weight: ArrayLike, axis: int = 1,
                 out: np.ndarray | None = None, *, param_grads: bool = False) -> Any:
        """grad_out * f'(x) in one pass; ``grad_out`` broadcasts against ``x``.  With
        ``param_grads=True``: ``(dx, {weight: dweight})``, dweight the gradient of the
        weight (of its shape), summed per channel in the same pass."""
        if _wants_param_grads(param_grads):
            return self._run("backward_x", (grad_out, x), ("grad_out", "x"), weight, axis, out, param_grads=True)
        return self._run("backward_x", (grad_out, x), ("grad_out", "x"), weight, axis, out)

    def _weights(self, weight: object, shape: tuple[int, ...], axis: object,
                 comp_dt: np.dtype) -> tuple[np.ndarray, int, int]:
        """(w, ax, inner): the parameter as a 1-D float64 (or long double) array, one per
        channel or one for all, the channel axis, and the elements after it (``inner``)."""
        param = self._definition.param
        w = as_real_array(weight, param)
        if w.ndim > 1:
            raise ValueError(f"{param} must be a scalar or 1-D, got {w.ndim} dimensions")
        channels, ax = 1, 0
        if len(shape) >= 2:
            if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
                raise TypeError(f"axis must be an int, got {type(axis).__name__}")
            ax = normalize_axis(axis, len(shape))
            channels = shape[ax]
        if w.size not in (1, channels):
            raise ValueError(f"{param} must have 1 element or one per channel ({channels} along axis {axis}), "
                             f"got {w.size}")
        w = w.astype(np.result_type(w.dtype, np.float64), copy=False).reshape(-1)
        if not np.isfinite(w).all():
            raise ValueError(f"{param} must be finite")
        if comp_dt.itemsize == 4 and w.size and np.any((np.abs(w) > _FLOAT32_MAX)
                                                      | ((w != 0) & (np.abs(w) < _FLOAT32_HALF_SMALLEST))):
            raise ValueError(f"{param} holds a value outside the range of float32, the dtype {self.name} computes "
                             "this input in; pass float64 input for such values")
        return w, ax, math.prod(shape[ax + 1:])

    def _run(self, kind: str, values: tuple[Any, ...], names: tuple[Any, ...], weight: Any, axis: object, out: object,
             param_grads: bool = False) -> Any:
        pair = kind == "value_and_grad"
        if param_grads:
            _bias_module().refuse_duck_arrays([*zip(values, names), (weight, self._definition.param)], "param_grads=",
                                              "compute the array first")
        arrays, shape, res_dt, comp_dt, user_outs = prepare_call(list(zip(values, names)), out, 2 if pair else 1)
        w, ax, inner = self._weights(weight, shape, axis, comp_dt)
        if param_grads:
            given = as_real_array(weight, self._definition.param)
            dw_dt = given.dtype if given.dtype.kind == "f" else res_dt
            w_shape = (w.size,) + (1,) * (len(shape) - ax - 1) if w.size > 1 else ()
        results = [np.empty(shape, res_dt) if user is None else user for user in user_outs]
        act = self._activation._act
        ins = [np.ascontiguousarray(a if a.shape == shape else np.broadcast_to(a, shape), dtype=comp_dt)
               for a in arrays]
        # straight into a result of the computed dtype, C-contiguous and apart from the
        # inputs or one of them (in place), but with the weight's gradient, which reads
        # the inputs after the output is written
        bufs = [r if (r.dtype == comp_dt and r.flags.c_contiguous and r.flags.writeable
                      and all(not np.may_share_memory(r, a) or (_same_memory(r, a) and not param_grads)
                              for a in ins)) else np.empty(shape, comp_dt)
                for r in results]
        with quiet_casts(res_dt, comp_dt):
            if param_grads:
                dw = _bias_module().weighted_backward(act, ins, bufs[0], w, w_shape)
            elif _backend.runs_numba(comp_dt):
                flat_ins, flat_outs = [a.reshape(-1) for a in ins], [b.reshape(-1) for b in bufs]
                if w.size == 1:  # the activation's own call, parallel where it pays
                    _compute(act, kind, flat_ins, flat_outs, (float(w[0]),))
                elif flat_outs[0].size:
                    n = flat_outs[0].size
                    parallel = _goes_parallel(act, n, comp_dt.itemsize, kind)
                    kernel = _kernels_module().channel_kernel(act.name, kind, parallel,
                                                              same=_same_arrays(flat_ins, flat_outs))
                    _threads.run(kernel, parallel, n,
                                 _tuning.current().serial_cost(act.name, comp_dt.itemsize, kind), *flat_ins, *flat_outs,
                                 w.astype(np.float64), w.size, inner)
            else:
                broadcast = w.astype(comp_dt).reshape((w.size,) + (1,) * (len(shape) - ax - 1) if w.size > 1 else ())
                work = shape or (1,)  # 0-d as one element, as the elementwise fallbacks take it
                with np.errstate(all="ignore"):
                    _activations.KINDS[kind].numpy(act, [a.reshape(work) for a in ins], [b.reshape(work) for b in bufs],
                                                   (broadcast,))
            for result, buf in zip(results, bufs):
                if buf is not result:
                    np.copyto(result, buf, casting="unsafe")
        values = tuple(r[()] if r.ndim == 0 else r for r in results)
        if param_grads:
            with np.errstate(all="ignore"):
                dweight = dw.astype(dw_dt).reshape(np.shape(weight))
            return (out if out is not None else values[0]), {self._definition.param: dweight[()] if dweight.ndim == 0
                                                             else dweight}
        if out is not None:
            return out
        return values if pair else values[0]


# --- gated units -----------------------------------------------------------------------


def _unbroadcast(full: np.ndarray, shape: tuple[int, ...], dtype: Any = None) -> np.ndarray:
    """``full`` summed (in ``dtype``, if given) over the axes along which an array of ``shape``
    was broadcast to it (the gradient of a broadcast input, as PyTorch's autograd gives it)."""
    if full.shape == shape:
        return full
    lead = full.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and full.shape[lead + i] != 1)
    summed: np.ndarray = np.sum(full, axis=axes, keepdims=True, dtype=dtype).reshape(shape)
    return summed


def _deliver(results: Any, out: Any, name: str) -> Any:
    """``results`` (an array or nested pairs of them), written into ``out`` of the same
    structure where given (checked: shape, dtype, writeable), else as they are."""
    if out is None:
        return results
    if isinstance(results, tuple):
        if not isinstance(out, tuple) or len(out) != len(results):
            raise TypeError(f"{name} must be None or a tuple of {len(results)} (as the result)")
        return tuple(_deliver(r, o, f"{name}[{i}]") for i, (r, o) in enumerate(zip(results, out)))
    check_out(out, results.shape, results.dtype, name)
    if not _same_memory(out, results):  # not written by the kernel itself
        np.copyto(out, results)
    return out


_GATED_ENTRY_POINTS = """

Signature: {name}(x, axis=-1{params}, out=None), or {name}(a, b{params}, out=None) with the
halves as two arrays (broadcast against each other).

x is split in two halves a, b along ``axis`` (``dim=`` is another name of it), whose length
must be even, as torch.nn.functional.glu does.  float32 stays float32, float64 float64.

Entry points (the gradients have x's shape; for the two-array form, pairs (da, db)
with a's and b's shapes, summed over the axes they were broadcast along):
    {name}(x)  y
    {name}.grad(x)  dy/dx elementwise: the gradient of sum(y)
    {name}.value_and_grad(x)  (y, dy/dx) in one pass
    {name}.backward(grad_out, x)  the gradient of both halves in one pass

Example:
    >>> import numpy as np, fastact
    >>> x = np.linspace(-3.0, 3.0, 8, dtype=np.float32).reshape(2, 4)
    >>> y, dx = fastact.{name}.value_and_grad(x)
    >>> y.shape, dx.shape, y.dtype
    ((2, 2), (2, 4), dtype('float32'))
    >>> bool(np.allclose(fastact.{name}.backward(np.ones_like(y), x), dx))
    True
"""


class GatedOp(_PublicOp):
    """A gated unit (``_gatedops``): ``op(x, axis=-1)``, ``op.grad``, ``op.value_and_grad``,
    ``op.backward(grad_out, x)``; or the same with the halves as two arrays ``(a, b)``.

    The kernel takes x as rows of two halves, C-contiguous, in float32 or float64 (one
    signature per dtype and kind, whatever the axis): other layouts and dtypes (float16 and
    integers are computed in float32 and float64) are copied first, and two arrays that
    broadcast are brought to their common shape."""

    def __init__(self, definition: _gatedops.GatedDefinition, activation: ElementwiseOp) -> None:
        self._definition = definition
        self._activation = activation
        self._name_as(definition.name)
        extra = "".join(f", {k}={v!r}" for k, v in activation.params.items())
        self.__doc__ = f"{definition.doc}" + _GATED_ENTRY_POINTS.format(name=definition.name, params=extra)

    @property
    def name(self) -> str:
        return self._definition.name

    @property
    def params(self) -> dict[str, object]:
        """The parameters (those of the activation) and their defaults."""
        return self._activation.params

    @property
    def signature(self) -> str:
        extra = "".join(f"{k}={v!r}, " for k, v in self.params.items())
        return f"{self.name}(x, axis=-1, {extra}out=None)"

    def __repr__(self) -> str:
        return f"<fastact op {self.signature}>"

    def __call__(self, x: ArrayLike, b: ArrayLike | None = None, /, *, axis: int = -1, out: Any = None,
                 **params: Any) -> Any:
        return self._run("forward", None, x, b, axis, out, params, self.name)

    def grad(self, x: ArrayLike, b: ArrayLike | None = None, /, *, axis: int = -1, out: Any = None,
             **params: Any) -> Any:
        """The elementwise partial derivatives dy/dx (for the two-array form, (dy/da, dy/db))."""
        return self._run("grad", None, x, b, axis, out, params, f"{self.name}.grad")

    def value_and_grad(self, x: ArrayLike, b: ArrayLike | None = None, /, *, axis: int = -1, out: Any = None,
                       **params: Any) -> Any:
        """``(y, dy/dx)`` in one pass."""
        return self._run("value_and_grad", None, x, b, axis, out, params, f"{self.name}.value_and_grad")

    def backward(self, grad_out: ArrayLike, x: ArrayLike, b: ArrayLike | None = None, /, *, axis: int = -1,
                 out: Any = None, **params: Any) -> Any:
        """The gradient of the whole input (both halves) from ``grad_out`` (of y's shape), in one pass."""
        return self._run("backward", grad_out, x, b, axis, out, params, f"{self.name}.backward")

    def _run(self, kind: str, grad_out: object, x: object, b: object, axis: object, out: object, params: dict[Any, Any],
             function: str) -> Any:
        if "dim" in params:
            axis = RowOp._axis_alias(function, axis, {"dim": params.pop("dim")})
        act, p = self._activation._bind((), params, function)
        if b is None:
            xa = as_real_array(x, "x")
            if xa.ndim == 0:
                raise ValueError(f"{function}: x must have at least one dimension to split in two halves")
            ax = normalize_axis(axis, xa.ndim)
            length = xa.shape[ax]
            if length % 2:
                raise ValueError(f"{function} splits axis {ax} of x in two halves: its length must be even, "
                                 f"got {length}")
            arrays = [xa]
            shape = xa.shape[:ax] + (length // 2,) + xa.shape[ax + 1:]
        else:
            if axis != -1:
                raise TypeError(f"{function}: axis= is for one array split in two; a and b are the halves already")
            arrays = [as_real_array(x, "a"), as_real_array(b, "b")]
            shape = broadcast_shape(arrays[0], arrays[1], "a", "b")
        g: Any = None
        if grad_out is not None:
            g = as_real_array(grad_out, "grad_out")
            if g.shape != shape:
                try:
                    ok = np.broadcast_shapes(g.shape, shape) == shape
                except ValueError:
                    ok = False
                if not ok:
                    raise ValueError(f"grad_out must have y's shape {shape} (or broadcast to it), got {g.shape}")
        res_dt = result_dtype(*arrays, *([g] if g is not None else []))
        comp_dt = compute_dtype(res_dt)
        _check_params_fit(act, p, comp_dt)
        size = math.prod(shape)
        if b is None:
            rows = math.prod(xa.shape[:ax])
            n = size // rows if rows else 0
            flat = np.ascontiguousarray(xa, dtype=comp_dt).reshape(-1)
            a_in, b_in, stride = flat, flat[n:], 2 * n
        else:
            rows, n, stride = 1, size, size
            a_in, b_in = (np.ascontiguousarray(np.broadcast_to(v, shape), dtype=comp_dt).reshape(-1) for v in arrays)
        needs_g, writes_y, writes_d = _gatedops.GATED_KINDS[kind]
        empty = np.empty(0, comp_dt)
        g_in = np.ascontiguousarray(np.broadcast_to(g, shape), dtype=comp_dt).reshape(-1) if needs_g else empty
        inputs = [v for v in (a_in, b_in, g_in) if v.size]
        # the out= arrays the kernel may write into: y's, and the split form's gradient (out is
        # y, the gradient, or the pair of both, as the result; the rest is checked by _deliver)
        y_out = d_out = None
        if out is not None and res_dt == comp_dt:
            pair = out if type(out) is tuple and len(out) == 2 else (None, None)
            y_out, d_out = (pair if writes_d else (out, None)) if writes_y else (None, out)
        y = self._direct(y_out, shape, comp_dt, inputs) if writes_y else empty
        if y is None:
            y = np.empty(size, comp_dt)
        if writes_d:
            d = self._direct(d_out, xa.shape, comp_dt, inputs + [y]) if b is None else None
            if d is None:
                d = np.empty(2 * size, comp_dt)
            da, db = (d, d[n:]) if b is None else (d[:size], d[size:])
        else:
            d = da = db = empty
        if size:
            if _backend.runs_numba(comp_dt):
                parallel = _goes_parallel(act, size, comp_dt.itemsize)
                kernel = _kernels_module().gated_kernel(self.name, act.name, kind, parallel)
                _threads.run(kernel, parallel, size, _tuning.current().serial_cost(act.name, comp_dt.itemsize),
                             g_in, a_in, b_in, y, da, db, rows, n, stride, p, fresh=True)
            else:
                self._numpy(act, p, rows, n, g_in if needs_g else None, a_in, b_in, y if writes_y else None,
                            (da, db) if writes_d else None, split=b is None)
        with quiet_casts(res_dt, comp_dt):
            value = y.reshape(shape).astype(res_dt, copy=False) if writes_y else None
            if writes_d:
                if b is None:
                    grads: Any = d.reshape(xa.shape).astype(res_dt, copy=False)
                else:
                    grads = tuple(_unbroadcast(part.reshape(shape), arr.shape).astype(res_dt, copy=False)
                                  for part, arr in zip((d[:size], d[size:]), arrays))
        result = (value, grads) if writes_y and writes_d else value if writes_y else grads
        return _deliver(result, out, "out")

    def _numpy(self, act: _activations.Activation, p: tuple[Any, ...], rows: int, n: int, g: np.ndarray | None,
               a: np.ndarray, b: np.ndarray, y: np.ndarray | None, d: tuple[np.ndarray, np.ndarray] | None,
               split: bool) -> None:
        """The NumPy fallback over the kernel's flat arrays (as ``_gatedops.numpy_gated`` takes them)."""
        def rows_of(flat: np.ndarray) -> np.ndarray:  # a half of the split form: rows of n, 2n apart
            return np.lib.stride_tricks.as_strided(flat, (rows, n), (2 * n * flat.itemsize, flat.itemsize))

        shaped = rows_of if split else (lambda flat: flat[:n].reshape(1, n))
        first, second = shaped(a), shaped(b)
        u, v = self._definition.activated_first(first, second)
        du = dv = None
        if d is not None:
            d0, d1 = shaped(d[0]), shaped(d[1])
            du, dv = self._definition.activated_first(d0, d1)
        with np.errstate(all="ignore"):
            _gatedops.numpy_gated(act, None if g is None else g.reshape(rows, n) if split else g.reshape(1, n), u, v,
                                  None if y is None else y.reshape(rows, n) if split else y.reshape(1, n), du, dv, p)

    @staticmethod
    def _direct(out: object, shape: tuple[int, ...], dtype: np.dtype, inputs: list[np.ndarray]) -> np.ndarray | None:
        """A flat view of ``out`` for the kernel to write into, where it is a writeable
        C-contiguous array of this shape and dtype that overlaps no input; else None."""
        if (type(out) is np.ndarray and out.shape == shape and out.dtype == dtype and _writable_c(out.flags)
                and not any(np.may_share_memory(out, v) for v in inputs)):
            return out.reshape(-1)
        return None
