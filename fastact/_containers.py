"""Arrays in containers: ndarray subclasses, masked arrays, pandas objects, xarray Datasets.

The call paths in ``_api`` compute on plain ndarrays (and hand dask arrays and
xarray DataArrays their own ufuncs).  A call whose arguments include one of the
containers below takes the arrays out, computes on them with the same code,
and puts the results into containers of the caller's kind, as NumPy's ufuncs
do.  So both backends, ``NUMBA_DISABLE_JIT`` and every check behave alike for
all of them.

- An ndarray subclass (``np.matrix``, ``np.memmap``, one's own) is computed as
  a plain ndarray; the result goes through the input's ``__array_wrap__``.
- A masked array is computed on its data; the result is a masked array with the
  union of the inputs' masks.  Row ops leave masked entries out of their row:
  each is filled with the value that takes no part (``-inf`` for a logit, 0 for
  a gradient or a probability) and stays masked.
- A pandas Series or DataFrame gives one with the same index (and columns).  A
  DataFrame is computed as one array of its columns' common dtype.
- An xarray Dataset gives a Dataset: each data variable goes through the op as
  a DataArray would, through ``xarray.apply_ufunc``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

# compute(values, out) -> one result or a tuple of results
Compute = Callable[[list[Any], Any], Any]


def _module(value: object) -> str:
    return type(value).__module__.split(".")[0]


def _kind(value: object) -> str | None:
    if isinstance(value, np.ndarray):
        if type(value) is np.ndarray:
            return None
        return "masked" if isinstance(value, np.ma.MaskedArray) else "subclass"
    module = _module(value)
    if module == "pandas" and type(value).__name__ in ("Series", "DataFrame"):
        return "pandas"
    if module == "xarray" and type(value).__name__ == "Dataset":
        return "dataset"
    return None


def is_container(value: object) -> bool:
    """Whether ``value`` is one of the containers above (apply takes the arrays out of it)."""
    return _kind(value) is not None


def apply(compute: Compute, values: Sequence[Any], names: Sequence[str], out: object, n_out: int = 1,
          fills: Sequence[float] | None = None) -> Any:
    """``compute(values, out)`` on the arrays that the containers among ``values`` hold,
    with the results (``n_out`` of them, a tuple if more than one) in containers
    like them; ``NotImplemented`` where there is none.  ``fills`` are the row ops'
    values for masked entries, one per input."""
    kinds = [_kind(v) for v in values]
    if not any(kinds):
        return NotImplemented
    if "dataset" in kinds:
        return _datasets(compute, values, names, out, n_out)
    if "pandas" in kinds:
        return _pandas(compute, values, names, kinds, out)
    if "masked" in kinds:
        return _masked(compute, values, names, kinds, out, fills)
    return _subclasses(compute, values, kinds, out)


def _each(result: Any, fn: Callable[[Any], Any]) -> Any:
    return tuple(fn(r) for r in result) if isinstance(result, tuple) else fn(result)


def _plain_out(out: object) -> Any:
    """``out`` with its ndarray subclasses seen as plain ndarrays (the kernels take only those)."""
    if isinstance(out, tuple):
        return tuple(_plain_out(o) for o in out)
    if isinstance(out, np.ndarray) and type(out) is not np.ndarray and not isinstance(out, np.ma.MaskedArray):
        return out.view(np.ndarray)
    return out


def _subclasses(compute: Compute, values: Sequence[Any], kinds: list[Any], out: object) -> Any:
    result = compute([v.view(np.ndarray) if k else v for v, k in zip(values, kinds)], _plain_out(out))
    if out is not None:
        return out
    # NumPy's rule: the input with the highest __array_priority__ wraps the result
    template = max((v for v, k in zip(values, kinds) if k), key=lambda v: getattr(v, "__array_priority__", 0.0))
    return _each(result, lambda r: _wrap(template, r))


def _wrap(template: np.ndarray, result: Any) -> Any:
    if not isinstance(result, np.ndarray):
        return result  # a NumPy scalar from a 0-d input stays one
    try:
        return template.__array_wrap__(result, None, False)
    except TypeError:  # a subclass with the older two-argument __array_wrap__
        return template.__array_wrap__(result, None)


def _masked(compute: Compute, values: Sequence[Any], names: Sequence[str], kinds: list[Any], out: object,
            fills: Sequence[float] | None) -> Any:
    masks = [np.ma.getmaskarray(v) for v, k in zip(values, kinds) if k == "masked"]
    data = []
    for i, (value, kind) in enumerate(zip(values, kinds)):
        if kind == "masked":
            raw = np.ma.getdata(value)
            if fills is not None:
                raw = np.where(np.ma.getmaskarray(value), fills[i], raw)
            data.append(raw)
        else:
            data.append(value.view(np.ndarray) if kind else value)
    outs = () if out is None else out if isinstance(out, tuple) else (out,)
    if not all(isinstance(o, np.ma.MaskedArray) for o in outs):
        masked_name = next(n for n, k in zip(names, kinds) if k == "masked")
        raise TypeError(f"out must be a numpy.ma.MaskedArray (or None) when {masked_name} is a masked array, "
                        f"got {type(outs[0]).__name__}")
    plain = tuple(np.ma.getdata(o) for o in outs)
    # the call checks the shapes (its errors name the arguments) before the masks are combined
    result = compute(data, None if out is None else plain if isinstance(out, tuple) else plain[0])
    mask = np.zeros(np.shape(result[0] if isinstance(result, tuple) else result), bool)
    for m in masks:
        mask |= m
    if out is None:
        return _each(result, lambda r: _masked_result(r, mask))
    for o in outs:
        o.mask = mask
    return out


def _masked_result(result: Any, mask: np.ndarray) -> Any:
    if not isinstance(result, np.ndarray):  # a 0-d input gives a scalar, or np.ma.masked
        return np.ma.masked if mask.any() else result
    return np.ma.MaskedArray(result, mask=mask.copy())  # each result its own mask, as NumPy gives


def _pandas(compute: Compute, values: Sequence[Any], names: Sequence[str], kinds: list[Any], out: object) -> Any:
    held = [(v, n) for v, n, k in zip(values, names, kinds) if k == "pandas"]
    template, template_name = held[0]
    if out is not None:
        raise TypeError(f"out must be None when {template_name} is a pandas {type(template).__name__}: "
                        "the result is a new one")
    for other, other_name in held[1:]:
        if type(other) is not type(template) or not _same_axes(other, template):
            raise ValueError(f"{other_name} and {template_name} must be pandas objects of one kind with the same "
                             "index (and columns): fastact does not align them")
    result = compute([v.to_numpy() if k == "pandas" else v for v, k in zip(values, kinds)], None)
    return _each(result, lambda r: _like_pandas(template, r))


def _same_axes(a: Any, b: Any) -> bool:
    return all(x.equals(y) for x, y in zip(a.axes, b.axes))


def _like_pandas(template: Any, result: Any) -> Any:
    if not isinstance(result, np.ndarray) or result.shape != template.shape:
        return result  # broadcast against a larger array: no index fits it
    if template.ndim == 1:
        return type(template)(result, index=template.index, name=template.name, copy=False)
    return type(template)(result, index=template.index, columns=template.columns, copy=False)


def _datasets(compute: Compute, values: Sequence[Any], names: Sequence[str], out: object, n_out: int) -> Any:
    import xarray

    if out is not None:
        name = next(n for v, n in zip(values, names) if _kind(v) == "dataset")
        raise TypeError(f"out must be None when {name} is an xarray.Dataset: the result is a new one")
    return xarray.apply_ufunc(lambda *arrays: compute(list(arrays), None), *values, keep_attrs=True,
                              dask="allowed", output_core_dims=[[]] * n_out)
