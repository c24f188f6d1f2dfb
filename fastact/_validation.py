"""Argument checks shared by every op: clear errors that name the argument."""

from __future__ import annotations

import contextlib
import operator
from typing import Any, NamedTuple

import numpy as np

_FLOAT64 = np.dtype(np.float64)
_FLOAT32 = np.dtype(np.float32)
_FLOAT16 = np.dtype(np.float16)
# long double (80-bit extended on x86-64 Linux, float64 itself on Windows and Apple's ARM)
# is computed in its own precision by the NumPy fallbacks, as SciPy's ufuncs do
LONGDOUBLE = np.dtype(np.longdouble)
_FLOATS = (_FLOAT16, _FLOAT32, _FLOAT64, LONGDOUBLE)


def _is_bfloat16(dtype: np.dtype) -> bool:
    # ml_dtypes' bfloat16 (optional): stored in 16 bits, computed in float32 like float16
    return dtype.name == "bfloat16"


def as_real_array(value: object, name: str) -> np.ndarray:
    """``value`` as an ndarray of a real dtype (float16/32/64, long double, integer or bool)."""
    if isinstance(value, np.ndarray):
        arr = value
        if type(arr) is not np.ndarray:
            if isinstance(arr, np.ma.MaskedArray):  # the ops take masks into account (_containers); this one cannot
                raise TypeError(f"{name} must not be a masked array here: pass its data, with masked entries "
                                "removed or filled")
            arr = arr.view(np.ndarray)  # a subclass (np.matrix, np.memmap) as a plain ndarray
    else:
        if value is None:
            raise TypeError(f"{name} must be an array of real numbers, got None")
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{name} could not be converted to an array of real numbers: {exc}") from None
    check_real_dtype(arr.dtype, name)
    if not arr.dtype.isnative:  # big-endian data (FITS, some HDF5 and .npy files): computed in native order
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def check_real_dtype(dtype: np.dtype, name: str) -> None:
    """A TypeError naming ``name`` unless ``dtype`` is one fastact computes with (in either byte order)."""
    native = dtype.newbyteorder("=")
    if not (native in _FLOATS or native.kind in "iub" or (native.kind == "V" and _is_bfloat16(native))):
        raise TypeError(
            f"{name} must have a real dtype (float16, float32, float64, longdouble, integer or bool), got {dtype}"
        )


def result_dtype(*arrays: np.ndarray) -> np.dtype:
    """float16/32/64 and bfloat16 stay as they are (in native byte order); integers and bools give float64."""
    dtypes = [a.dtype.newbyteorder("=") for a in arrays]
    if all(d.kind == "f" for d in dtypes):
        return dtypes[0] if len(dtypes) == 1 else np.result_type(*dtypes)
    bfloat16 = [d.kind == "V" and _is_bfloat16(d) for d in dtypes]
    if all(bfloat16):
        return dtypes[0]
    return np.result_type(*(_FLOAT32 if b else d if d.kind == "f" else _FLOAT64 for d, b in zip(dtypes, bfloat16)))


def compute_dtype(result: np.dtype) -> np.dtype:
    """The dtype kernels run in: float16 and bfloat16 are computed in float32 (long double
    in itself, by the NumPy fallbacks: ``_backend.runs_numba``)."""
    if result.kind == "f":
        return _FLOAT32 if result == _FLOAT16 else result
    return _FLOAT32  # bfloat16


def accumulator(dtype: np.dtype) -> np.dtype:
    """What sums of ``dtype`` values are formed in: float64, or long double for long double."""
    if dtype is _FLOAT64 or dtype is _FLOAT32:  # the common answer, without np.result_type's 0.5 us
        return _FLOAT64
    return np.result_type(_FLOAT64, dtype)


def quiet_casts(res_dt: np.dtype, comp_dt: np.dtype) -> contextlib.AbstractContextManager[Any]:
    """Around the casts of results computed in ``comp_dt`` to ``res_dt`` (float32 to
    float16 or bfloat16): a value beyond its range becomes inf without NumPy's
    overflow warning, as a float16 kernel would give.  No errstate where nothing is cast."""
    return np.errstate(all="ignore") if res_dt != comp_dt else contextlib.nullcontext()


def check_out(out: object, shape: tuple[int, ...], dtype: np.dtype, name: str) -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype}, got {out.dtype}")
    if out.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {out.shape}")
    if not out.flags.writeable:
        raise ValueError(f"{name} must be writeable")
    return out


def check_out_pair(out: object, shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray] | None:
    if out is None:
        return None
    if not isinstance(out, tuple) or len(out) != 2:
        raise TypeError("out must be None or a tuple of two arrays (value, grad)")
    first = check_out(out[0], shape, dtype, "out[0]")
    second = check_out(out[1], shape, dtype, "out[1]")
    if np.may_share_memory(first, second):
        raise ValueError("out[0] and out[1] must not overlap")
    return first, second


def broadcast_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> tuple[int, ...]:
    try:
        return np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(
            f"{name_a} with shape {a.shape} does not broadcast against {name_b} with shape {b.shape}"
        ) from None


def check_broadcasts_to(arr: np.ndarray, shape: tuple[int, ...], name: str, shape_name: str) -> None:
    """A ValueError naming ``name`` unless ``arr`` broadcasts to ``shape`` itself (without
    making it larger), as a mask or a bias must."""
    try:
        fits = arr.ndim <= len(shape) and np.broadcast_shapes(arr.shape, shape) == shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{name} must broadcast to {shape_name} {shape}, got shape {arr.shape}")


def normalize_axis(axis: object, ndim: int, what: str = "an int") -> int:
    try:
        index = operator.index(axis)  # type: ignore[arg-type]  # a TypeError is the answer
    except TypeError:
        raise TypeError(f"axis must be {what}, got {type(axis).__name__}") from None
    span = max(ndim, 1)  # a 0-d array is treated as one row of length 1, as PyTorch does
    if not -span <= index < span:
        raise ValueError(f"axis {index} is out of range for an array with {ndim} dimension(s)")
    return index % span


ROW_AXIS = "an int, a tuple of ints or None"  # what the row ops' axis may be, for errors


def normalize_axes(axis: object, ndim: int) -> tuple[int, ...]:
    """``axis`` (None: every axis; an int or a tuple of ints, as SciPy's softmax takes)
    as sorted, distinct, non-negative axes of an ``ndim``-dimensional array; () for a
    0-d array, whose one element is the whole row."""
    if axis is None:
        return tuple(range(ndim))
    axes = [normalize_axis(a, ndim, ROW_AXIS) for a in (axis if isinstance(axis, tuple) else (axis,))]
    if len(set(axes)) != len(axes):
        raise ValueError(f"axis {axis} names an axis twice")
    return tuple(sorted(axes)) if ndim else ()


class Call(NamedTuple):
    """A call's checked arrays: what every op, row op and loss starts from."""

    arrays: list[np.ndarray]  # the inputs as real ndarrays (not yet cast or broadcast)
    shape: tuple[int, ...]  # their broadcast shape
    res_dt: np.dtype  # the result's dtype
    comp_dt: np.dtype  # the dtype the kernels compute in
    outs: list[np.ndarray | None]  # the checked out= arrays (None where not given)


def prepare_call(inputs: list[tuple[object, str]], out: object = None, n_out: int = 1,
                 same_shape: bool = False) -> Call:
    """Check and convert a call's inputs (``(value, argument name)``, one or two) and
    its ``out=`` (one array, or a pair where ``n_out`` is 2): real dtypes, the result
    and compute dtypes, broadcasting (``same_shape``: the second input must have the
    first's shape instead, as a loss's targets)."""
    arrays = [as_real_array(value, name) for value, name in inputs]
    res_dt = result_dtype(*arrays)
    comp_dt = compute_dtype(res_dt)
    shape = arrays[0].shape
    if len(arrays) == 2:
        if same_shape:
            if arrays[1].shape != shape:
                raise ValueError(f"{inputs[1][1]} must have the {inputs[0][1]}' shape {shape}, "
                                 f"got {arrays[1].shape}")
        else:
            shape = broadcast_shape(arrays[0], arrays[1], inputs[0][1], inputs[1][1])
    if n_out == 1:
        outs = [None if out is None else check_out(out, shape, res_dt, "out")]
    else:
        pair = check_out_pair(out, shape, res_dt)
        outs = [None, None] if pair is None else list(pair)
    return Call(arrays, shape, res_dt, comp_dt, outs)
