"""NumPy ufuncs and gufuncs, generated from the definitions in ``_activations``.

dask and xarray apply a ufunc through ``__array_ufunc__``: block by block, or
around the coordinates.  Each elementwise kernel kind has a real ufunc
(Numba's ``@vectorize``) whose inputs are the arrays and then the op's
parameters, and softmax / log_softmax have gufuncs over one core dimension.
Each is compiled on first use and cached on disk.

The ufuncs name this module as theirs and it looks them up by name, so they
pickle by reference (dask.distributed sends them to its workers that way).
"""

from __future__ import annotations

import functools

import numpy as np
from numba import config, guvectorize, vectorize

from . import _activations
from ._config import LOOP_MATH, STRICT_MATH
from ._kernels import ROW_KERNELS, _map_1_1, _map_2_1, _map_2_mul, _template, cache_token, is_short_row

# Numba has no variadic kernels, hence one template per arity.


def _unary_0(fn, *, token):
    def kernel(x):
        token  # noqa: B018
        return fn(x, ())

    return kernel


def _unary_1(fn, *, token):
    def kernel(x, a):
        token  # noqa: B018
        return fn(x, (a,))

    return kernel


def _unary_2(fn, *, token):
    def kernel(x, a, b):
        token  # noqa: B018
        return fn(x, (a, b))

    return kernel


def _binary_0(fn, *, token):
    def kernel(g, v):
        token  # noqa: B018
        return fn(g, v, ())

    return kernel


def _binary_1(fn, *, token):
    def kernel(g, v, a):
        token  # noqa: B018
        return fn(g, v, (a,))

    return kernel


def _binary_2(fn, *, token):
    def kernel(g, v, a, b):
        token  # noqa: B018
        return fn(g, v, (a, b))

    return kernel


def _times_0(fn, *, token):
    def kernel(g, v):
        token  # noqa: B018
        return g * fn(v, ())

    return kernel


def _times_1(fn, *, token):
    def kernel(g, v, a):
        token  # noqa: B018
        return g * fn(v, (a,))

    return kernel


def _times_2(fn, *, token):
    def kernel(g, v, a, b):
        token  # noqa: B018
        return g * fn(v, (a, b))

    return kernel


# loop template -> (number of array inputs, ufunc template by number of parameters)
_UFUNC_TEMPLATES = {
    _map_1_1: (1, (_unary_0, _unary_1, _unary_2)),
    _map_2_1: (2, (_binary_0, _binary_1, _binary_2)),
    _map_2_mul: (2, (_times_0, _times_1, _times_2)),
}

UFUNC_KINDS = ("forward", "grad", "backward_x", "backward_y")
_UFUNC_SUFFIX = {"forward": "", "grad": "_grad", "backward_x": "_backward", "backward_y": "_backward_y"}


def _ufunc_name(name: str, kind: str) -> str:
    return name + _UFUNC_SUFFIX[kind]


def _by_reference(ufunc: np.ufunc) -> np.ufunc:
    ufunc.__module__ = __name__  # pickle finds it again through __getattr__ below
    return ufunc


def __getattr__(attr: str) -> np.ufunc:
    """The ufunc called ``attr`` (``sigmoid``, ``gelu_tanh_grad``, ``softmax_backward``)."""
    if attr in ROW_KERNELS:
        return row_gufunc(attr)
    for kind in sorted(UFUNC_KINDS, key=lambda k: -len(_UFUNC_SUFFIX[k])):
        suffix = _UFUNC_SUFFIX[kind]
        name = attr[: len(attr) - len(suffix)] if suffix else attr
        if attr.endswith(suffix) and name in _activations.ELEMENTWISE:
            return elementwise_ufunc(name, kind)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


def _check_jit(name: str) -> None:
    if config.DISABLE_JIT:
        raise RuntimeError(f"the {name} ufunc is compiled by Numba, and NUMBA_DISABLE_JIT is set: call the op "
                           "itself (it works without its ufunc, on NumPy, dask and xarray arrays alike)")


@functools.cache
def elementwise_ufunc(name: str, kind: str) -> np.ufunc:
    """The ufunc of ``kind`` for activation ``name``: ``ufunc(*arrays, *params)``, with
    float32 and float64 loops (parameters are float64).  Compiled on first use."""
    if kind not in UFUNC_KINDS:
        raise ValueError(f"kind must be one of {UFUNC_KINDS!r}, got {kind!r}")
    _check_jit(name)
    act = _activations.ELEMENTWISE[name]
    loop, fns = _template(act, kind)
    n_arrays, by_params = _UFUNC_TEMPLATES[loop]
    nparams = len(act.params)
    token = cache_token("ufunc", STRICT_MATH)
    kernel = by_params[nparams](*fns, token=token)
    kernel.__name__ = _ufunc_name(name, kind)
    arrays = ["x"] if n_arrays == 1 else ["grad_out", "y" if kind == "backward_y" else "x"]
    kernel.__doc__ = f"{kernel.__name__}({', '.join(arrays + [p.name for p in act.params])}): {act.doc}"
    signatures = [
        f"{t}({', '.join([t] * n_arrays + ['float64'] * nparams)})" for t in ("float32", "float64")
    ]
    return _by_reference(vectorize(signatures, cache=True, fastmath=set(STRICT_MATH))(kernel).ufunc)


# A gufunc's rows may be strided (axes=, or a transposed block).  The row function
# runs on contiguous copies, as in the row kernels: over strided rows its loops
# are not vectorised and its row sums, with fewer partial sums, lose up to 20 ULP.
# Short rows take the block formulation (a block of one row), longer rows the
# row one, as the kernels do along the last axis: the gufunc gives their bits.


def _gufunc_1_1(op, *, token):
    row_fn, block_fn, short_row_max = op.row, op.block, op.short_row_max

    def kernel(x, out):
        token  # noqa: B018
        row = np.ascontiguousarray(x)
        result = np.empty_like(row)
        n = row.shape[0]
        if is_short_row(n, row.itemsize, short_row_max):
            block_fn(row, result, n)
        else:
            row_fn(row, result)
        out[:] = result

    return kernel


def _gufunc_2_1(op, *, token):
    row_fn, block_fn, short_row_max = op.row, op.block, op.short_row_max

    def kernel(a, b, out):
        token  # noqa: B018
        row_a, row_b = np.ascontiguousarray(a), np.ascontiguousarray(b)
        result = np.empty_like(row_a)
        n = row_a.shape[0]
        if is_short_row(n, row_a.itemsize, short_row_max):
            block_fn(row_a, row_b, result, n)
        else:
            row_fn(row_a, row_b, result)
        out[:] = result

    return kernel


@functools.cache
def row_gufunc(name: str) -> np.ufunc:
    """The gufunc of row kernel ``name``: ``(n)->(n)`` (forward) or ``(n),(n)->(n)`` (backward)."""
    _check_jit(name)
    op = ROW_KERNELS[name]
    token = cache_token("gufunc", LOOP_MATH)
    if op.inputs == 1:
        kernel, layout = _gufunc_1_1(op, token=token), "(n)->(n)"
        signatures = [f"void({t}[:], {t}[:])" for t in ("float32", "float64")]
    else:
        kernel, layout = _gufunc_2_1(op, token=token), "(n),(n)->(n)"
        signatures = [f"void({t}[:], {t}[:], {t}[:])" for t in ("float32", "float64")]
    kernel.__name__ = name
    return _by_reference(guvectorize(signatures, layout, cache=True, fastmath=set(LOOP_MATH))(kernel).ufunc)
