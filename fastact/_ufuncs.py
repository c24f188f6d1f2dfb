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

from . import _activations, _tuning
from ._config import LOOP_MATH, STRICT_MATH
from ._kernels import cache_token, is_short_row
from ._rowops import ROW_FUNCTIONS
from ._scalar import full_width

# Numba has no variadic kernels: each ufunc's and gufunc's kernel is written out
# for its number of arrays (and parameters) from a source template.


def _made(source: str, *closure):
    """``make(*closure)`` from ``source``, compiled as code of this module: Numba's
    on-disk cache finds the kernel's entries (keyed by its closure: the formula, the
    token) again in the next process only through the file and the module's name,
    whose globals it rebuilds (np and is_short_row are among them)."""
    namespace: dict = {"__name__": __name__, "np": np, "is_short_row": is_short_row, "full_width": full_width}
    exec(compile(source, __file__, "exec"), namespace)  # noqa: S102 - built from the templates here
    return namespace["make"](*closure)

_UFUNC_TEMPLATE = """
def make(fn, token):
    def kernel({args}):
        token
        return {call}
    return kernel
"""


def _ufunc_kernel(loop: str, fns: tuple, arrays: int, nparams: int, token: str):
    """``kernel(*arrays, *params)`` around the kind's loop body (see _kernels): fn of the
    arrays ("map"), or the first array times fn of the second ("times")."""
    names = ["x"] if arrays == 1 else ["g", "v"]
    params = [f"a{k}" for k in range(nparams)]
    packed = "(" + "".join(p + ", " for p in params) + ")"
    if loop == "times":
        call = f"g * fn(v, {packed})"
    else:
        call = f"fn({', '.join(names)}, {packed})"
    (fn,) = fns
    return _made(_UFUNC_TEMPLATE.format(args=", ".join(names + params), call=call), fn, token)


UFUNC_KINDS = tuple(k for k, kind in _activations.KINDS.items() if kind.ufunc_suffix is not None)
_UFUNC_SUFFIX = {k: _activations.KINDS[k].ufunc_suffix for k in UFUNC_KINDS}


def _ufunc_name(name: str, kind: str) -> str:
    return name + _UFUNC_SUFFIX[kind]


def _by_reference(ufunc: np.ufunc) -> np.ufunc:
    ufunc.__module__ = __name__  # pickle finds it again through __getattr__ below
    return ufunc


def __getattr__(attr: str) -> np.ufunc:
    """The ufunc called ``attr`` (``sigmoid``, ``gelu_tanh_grad``, ``softmax_backward``)."""
    if attr in ROW_FUNCTIONS:
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
    loop, fns = _activations.KINDS[kind].loop(act)
    if None in fns:
        raise ValueError(f"{name} has no {kind} formula")
    arrays = list(_activations.KINDS[kind].inputs)
    n_arrays, nparams = len(arrays), len(act.params)
    kernel = _ufunc_kernel(loop, fns, n_arrays, nparams, cache_token("ufunc", STRICT_MATH))
    kernel.__name__ = _ufunc_name(name, kind)
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


_GUFUNC_TEMPLATE = """
def make(row_fn, block_fn, short_row_max, token):
    def gufunc({args}, out):
        token
        full_width()
        rows = ({rows},)
        result = np.empty_like(rows[0])
        n = result.shape[0]
        if is_short_row(n, result.itemsize, short_row_max):
            block_fn(rows, result, n)
        else:
            row_fn(rows, result)
        out[:] = result
    return gufunc
"""


def _gufunc_kernel(fn, token: str):
    """``gufunc(*arrays, out)`` running row function ``fn`` on contiguous copies of the arrays."""
    source = _GUFUNC_TEMPLATE.format(args=", ".join(fn.inputs),
                                     rows=", ".join(f"np.ascontiguousarray({a})" for a in fn.inputs))
    return _made(source, fn.row, fn.block, _tuning.current().short_row_max[fn.name], token)


@functools.cache
def row_gufunc(name: str) -> np.ufunc:
    """The gufunc of row kernel ``name``: ``(n)->(n)`` (forward) or ``(n),(n)->(n)`` (backward)."""
    _check_jit(name)
    fn = ROW_FUNCTIONS[name]
    kernel = _gufunc_kernel(fn, cache_token("gufunc", LOOP_MATH))
    layout = ",".join(["(n)"] * len(fn.inputs)) + "->(n)"
    signatures = [f"void({', '.join([f'{t}[:]'] * (len(fn.inputs) + 1))})" for t in ("float32", "float64")]
    kernel.__name__ = name
    return _by_reference(guvectorize(signatures, layout, cache=True, fastmath=set(LOOP_MATH))(kernel).ufunc)
