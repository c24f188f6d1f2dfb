"""Fused losses: softmax cross-entropy and binary cross-entropy with logits.

``loss(logits, labels)`` gives the loss; ``loss.value_and_grad(logits, labels)``
gives ``(loss, d loss / d logits)`` in one pass over the logits.  Reductions
follow PyTorch: "mean" (over rows for softmax cross-entropy, over elements for
the binary one), "sum", or "none" (one loss per row or element; the gradient
is then that of their sum).
"""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np

from . import _backend, _config, _lossops, _threads, _tuning
from ._activations import Param
from ._api import _SMALL_LOSSES, FASTCALL, CallBase, _CallSignature, _check_param, _kernels_module, _lanes_dims
from ._validation import (accumulator, as_real_array, compute_dtype, normalize_axis, prepare_call, quiet_casts,
                          result_dtype)

if FASTCALL:
    from ._fastcall import small_loss as _small_loss

REDUCTIONS = ("mean", "sum", "none")
_F32, _F64, _I64, _U64 = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64), np.dtype(np.uint64)
_ADD, _MAX = np.add.reduce, np.maximum.reduce  # without ndarray.sum's and .max's Python wrappers


def _no_other_keywords(function: str, kwargs: dict[Any, Any]) -> None:
    """A TypeError in the public function's name (Python's own names the class's method)."""
    if kwargs:
        hint = ": the classes are along axis=" if "dim" in kwargs else ""
        raise TypeError(f"{function}() got an unexpected keyword argument {next(iter(kwargs))!r}{hint}")


def _check_reduction(reduction: object) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS!r}, got {reduction!r}")
    return str(reduction)


def _reduce(losses: np.ndarray, reduction: str, count: float, dtype: np.dtype) -> Any:
    if reduction == "none":
        return _scalar_if_0d(losses.astype(dtype, copy=False))
    # np.sum's own reduction, without its Python wrapper (a small batch feels it)
    return _reduced_total(_ADD(losses, axis=None, dtype=accumulator(losses.dtype)), reduction, count, dtype)


def _reduced_total(total: float, reduction: str, count: float, dtype: np.dtype) -> Any:
    """The "sum" or "mean" of losses adding up to ``total`` over ``count`` (rows, or their
    total weight), as a scalar of ``dtype``."""
    if reduction == "sum":
        return dtype.type(total)
    if 1.0 <= count < math.inf:  # the division cannot overflow or give inf / inf: no errstate needed
        return dtype.type(total / count)  # in the total's precision (long double stays)
    with np.errstate(all="ignore"):  # the mean of no rows (or of no weight) is NaN, as in PyTorch
        return dtype.type(np.true_divide(total, count))  # in the total's precision (long double stays)


def _labels_kind(logits: np.ndarray, labels: object, ax: int, ignore_index: int) -> tuple[str, np.ndarray]:
    """("index", int64 array of the logits' shape without axis; ``ignore_index`` allowed) or
    ("prob", float array of the logits' shape)."""
    arr = labels if isinstance(labels, np.ndarray) else None
    if arr is None:
        if labels is None:
            raise TypeError("labels must be class indices or class probabilities, got None")
        try:
            arr = np.asarray(labels)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"labels could not be converted to an array: {exc}") from None
    row_shape = logits.shape[:ax] + logits.shape[ax + 1:]
    if arr.dtype.kind in "iu":
        if arr.shape != row_shape:
            raise ValueError(f"labels as class indices must have shape {row_shape} (logits without axis {ax}), "
                             f"got {arr.shape}")
        n = logits.shape[ax]
        if arr.size and (arr.min() < 0 or arr.max() >= n):
            outside = ((arr < 0) | (arr >= n)) & (arr != ignore_index)
            if outside.any():
                raise IndexError(f"labels must be class indices in [0, {n}) or ignore_index ({ignore_index}), "
                                 f"got {arr[outside].flat[0]}")
        return "index", arr.astype(np.int64, copy=False)
    arr = as_real_array(arr, "labels")
    if arr.shape != logits.shape:
        raise ValueError(f"labels as class probabilities must have the logits' shape {logits.shape}, got {arr.shape}")
    return "prob", arr


class SoftmaxCrossEntropy(CallBase):
    """softmax_cross_entropy(logits, labels, axis=-1, reduction="mean", *, weight=None,
    ignore_index=-100, label_smoothing=0.0, z_loss=0.0, softcap=None).

    Per row (max - x[label]) + log(sum exp(x - max)), stable for any finite logits;
    ``labels`` are integer class indices (the logits' shape without ``axis``) or class
    probabilities (the logits' shape; soft targets are taken as given, as in PyTorch).
    PyTorch's options: ``weight`` per class, ``ignore_index`` (rows with that label give
    0; the mean is over the rest, or their labels' total weight), ``label_smoothing``;
    ``z_loss`` (z lse^2 per row, as in PaLM) and ``softcap`` (logits capped to cap tanh(x /
    cap) first, as in Gemma 2), all in the same pass.

    Entry points:
        softmax_cross_entropy(logits, labels, axis=-1, reduction="mean")  the loss
        softmax_cross_entropy.value_and_grad(logits, labels, ...)  (loss, d loss / d logits), one pass

    Example (the tutorial's scores, the true class "cat"; its gradient is the softmax
    less the one-hot label):
        >>> import numpy as np, fastact
        >>> logits = np.array([[2.0, 10.0, 1.0, 4.0]])
        >>> loss, grad = fastact.softmax_cross_entropy.value_and_grad(logits, np.array([1]))
        >>> float(loss.round(6)), grad.round(6)
        (0.002933, array([[ 0.000334, -0.002929,  0.000123,  0.002471]]))
        >>> bool(fastact.softmax_cross_entropy(logits, np.array([1])) == loss)
        True
    """

    __name__ = "softmax_cross_entropy"
    __module__ = "fastact"  # instances pickle by reference, as fastact.softmax_cross_entropy
    __signature__ = _CallSignature()  # _call's (a call in C has none of its own)

    def __init__(self) -> None:
        # The common small batch in C (_fastcall.c, loss_shortcut), where it is built: the
        # call and value_and_grad with no option but the reduction "mean" or "sum" take
        # the serial kernel _run would, from _api._SMALL_LOSSES, which _run fills
        self._small_loss = _NAME
        if FASTCALL:
            from ._fastcall import Entry

            self.__dict__["value_and_grad"] = Entry(self.value_and_grad, "loss_value_and_grad", _NAME)

    def __reduce__(self) -> str:
        return self.__name__

    def __repr__(self) -> str:
        return "<fastact loss softmax_cross_entropy>"

    def _call(self, logits: Any, labels: Any, axis: int = -1, reduction: str = "mean", *, weight: Any = None,
              ignore_index: int = -100, label_smoothing: float = 0.0, z_loss: float = 0.0,
              softcap: float | None = None, **kwargs: Any) -> Any:
        _no_other_keywords(self.__name__, kwargs)
        options = _XentOptions.of(weight, ignore_index, label_smoothing, z_loss, softcap)
        return self._run(logits, labels, axis, reduction, False, options)[0]

    if not FASTCALL:  # pragma: no cover - installed without a C compiler
        __call__ = _call

    def value_and_grad(self, logits: Any, labels: Any, axis: int = -1, reduction: str = "mean", *,
                       weight: Any = None, ignore_index: int = -100, label_smoothing: float = 0.0,
                       z_loss: float = 0.0, softcap: float | None = None, **kwargs: Any) -> tuple[Any, Any]:
        """``(loss, d loss / d logits)`` in one pass over the logits."""
        _no_other_keywords(f"{self.__name__}.value_and_grad", kwargs)
        options = _XentOptions.of(weight, ignore_index, label_smoothing, z_loss, softcap)
        return self._run(logits, labels, axis, reduction, True, options)

    def _run(self, logits: Any, labels: Any, axis: Any, reduction: Any, want_grad: Any,
             options: Any, fast: bool = True) -> tuple[Any, Any]:
        reduction = _check_reduction(reduction)
        every_row = False  # known to have no ignored row
        if (fast and options.plain and type(logits) is np.ndarray and logits.ndim == 2 and (axis == -1 or axis == 1)
                and (logits.dtype is _F32 or logits.dtype is _F64) and logits.flags.c_contiguous and logits.size
                and type(labels) is np.ndarray and labels.dtype is _I64 and labels.shape == logits.shape[:1]
                and (reduction != "none" or _MAX(labels.view(_U64)) < logits.shape[1])  # a negative label wraps
                and not 0 <= options.ignore_index < logits.shape[1]):
            # the common small batch: (rows, classes) logits, int64 class indices, which
            # ignore_index is not.  The labels are checked in [0, n) here for
            # reduction="none"; for a sum or mean they are checked where it is NaN,
            # which a label outside makes it (_lossops.has_label): the check took 1.2 us
            # of 8 on a batch of 32 x 10.
            every_row, ignored = True, False
            ax, kind, res_dt, comp_dt = 1, "index", logits.dtype, logits.dtype
            x2, lab2 = logits, labels
            rows, n = logits.shape
            moved = logits
        else:
            (x,), _, res_dt, comp_dt, _ = prepare_call([(logits, "logits")])
            if x.ndim == 0:
                raise ValueError("logits must have at least one dimension (the classes)")
            ax = normalize_axis(axis, x.ndim)
            kind, lab = _labels_kind(x, labels, ax, options.ignore_index)
            ignored = kind == "index" and options.plain and bool(np.any(lab == options.ignore_index))
            lanes = _lanes_dims(x, ax) if kind == "index" and options.plain and not ignored else None
            if lanes is not None:
                return _run_lanes(x, lab, lanes, reduction, want_grad, res_dt, comp_dt)
            if kind == "prob":  # the probabilities take part in the dtype (float64 labels: float64 loss)
                res_dt = result_dtype(x, lab)
                comp_dt = compute_dtype(res_dt)
            moved = np.moveaxis(x, ax, -1)
            n = moved.shape[-1]
            rows = moved.size // n if n else math.prod(moved.shape[:-1])
            lab_moved = np.moveaxis(lab, ax, -1) if kind == "prob" else lab
            x2 = np.ascontiguousarray(moved, dtype=comp_dt).reshape(rows, n)
            lab2 = (np.ascontiguousarray(lab_moved, dtype=comp_dt).reshape(rows, n) if kind == "prob"
                    else np.ascontiguousarray(lab_moved).reshape(rows))
        count: float = rows
        name, extra = f"xent_{kind}", cast(tuple[Any, ...], ())
        if not options.plain or ignored:
            name, lab2, count, extra = options.arguments(kind, lab2, n, comp_dt)
        if reduction != "mean":
            scale = 1.0
        else:  # a mean over no weight: inf, so that its rows' gradients are NaN (0 where ignored), as PyTorch's
            scale = 1.0 / count if count else math.inf
        grad = np.empty((rows, n) if want_grad else (rows, 0), comp_dt)
        tasks = rows
        if not extra:  # the plain kernels' last argument: whether the rows run in blocks (_tuning)
            short = name == "xent_index" and n <= _tuning.current().short_row_max[_NAME][x2.itemsize != 4]
            tasks, extra = -(-rows // _config.ROW_BLOCK) if short else rows, (short,)
        total = math.nan
        losses: np.ndarray | None = None  # (the C function keeps the losses on its stack)
        if rows and n:
            parallel = _threads.rows_go_parallel(rows * n, tasks)
            if (FASTCALL and every_row and reduction != "none" and not parallel and _backend.runs_numba(comp_dt)
                    and not _backend.numba.config.DISABLE_JIT and rows * n < _tuning.current().rows_serial_below
                    and x2.flags.aligned and lab2.flags.aligned):
                # the serial kernel as a C function, which the next such call takes in C (__init__); a
                # larger batch on one thread runs Numba's dispatch, which lets go of the GIL
                by_length = _SMALL_LOSSES.setdefault(_NAME, {})
                key = n if comp_dt is _F32 else -n
                entry = by_length.get(key)
                if entry is None:  # the C function's owner keeps its code alive as long as the entry
                    owner = _kernels_module().small_loss_function(name, str(comp_dt))
                    entry = by_length[key] = (owner.address, _tuning.current().rows_serial_below, extra[0], owner)
                total = _small_loss(entry[0], x2, lab2, entry[2], grad if want_grad else None, scale)
            else:
                losses = np.empty(rows, accumulator(comp_dt))  # long double keeps its precision
                total = _run_loss(name, parallel, x2, lab2, want_grad, grad, scale, losses, *extra)
        else:  # no classes: the softmax of an empty row; the loss is NaN as in PyTorch
            losses = np.full(rows, np.nan, accumulator(comp_dt))
        if every_row and reduction != "none":  # the kernel's total (xent_index's), without _reduce's steps
            if math.isnan(total) and _MAX(labels.view(_U64)) >= n:  # a label outside [0, n): its error, or
                return self._run(logits, labels, axis, reduction, want_grad, options, fast=False)  # ignored rows
            return _reduced_total(total, reduction, count, res_dt), grad if want_grad else None
        assert losses is not None  # (reduction="none" runs _run_loss)
        g = None if not want_grad else grad if moved is logits else np.moveaxis(grad.reshape(moved.shape), -1, ax)
        return _delivered(losses.reshape(moved.shape[:-1]), g, reduction, count, res_dt, comp_dt)


def _delivered(losses: np.ndarray, grad: np.ndarray | None, reduction: str, count: float, res_dt: np.dtype,
               comp_dt: np.dtype) -> tuple[Any, Any]:
    """(the reduced loss, the gradient or None), in the result dtype."""
    with quiet_casts(res_dt, comp_dt):
        return _reduce(losses, reduction, count, res_dt), None if grad is None else grad.astype(res_dt, copy=False)


def _run_lanes(x: np.ndarray, labels: np.ndarray, lanes: tuple[int, int, int], reduction: str, want_grad: bool,
               res_dt: np.dtype, comp_dt: np.dtype) -> tuple[Any, Any]:
    """softmax_cross_entropy's _run along an axis that is not the last, reading x where it
    lies (_lossops.lanes_xent_index): class indices, no options and no ignored row, and
    ``lanes`` from _api._lanes_dims (along axis 1 of (64, 128, 128) float32, the axis
    moved last took 1.2 ms, PyTorch 0.47 ms)."""
    outer, n, inner = lanes
    x3 = np.ascontiguousarray(x, dtype=comp_dt).reshape(outer, n, inner)
    count = outer * inner
    scale = 1.0 / count if reduction == "mean" else 1.0
    losses = np.empty((outer, inner), accumulator(comp_dt))
    grad = np.empty(x3.shape if want_grad else (0, 0, 0), comp_dt)
    tasks = outer * -(-inner // _config.LANE_BLOCK)
    _run_loss("xent_index_lanes", _threads.rows_go_parallel(x3.size, tasks), x3,
              np.ascontiguousarray(labels).reshape(outer, inner), want_grad, grad, scale, losses)
    return _delivered(losses.reshape(labels.shape), grad.reshape(x.shape) if want_grad else None, reduction, count,
                      res_dt, comp_dt)


# the options' checks (_api._check_param: a finite real number, then these)
_NAME = "softmax_cross_entropy"
_SMOOTHING = Param("label_smoothing", 0.0, lambda v: None if 0.0 <= v <= 1.0 else
                   f"label_smoothing must be in [0, 1], got {v!r}")
_Z_LOSS = Param("z_loss", 0.0, lambda v: None if v >= 0.0 else f"z_loss must be >= 0, got {v!r}")
_SOFTCAP = Param("softcap", 0.0, lambda v: None if v > 0.0 else f"softcap must be None or > 0, got {v!r}")


class _XentOptions:
    """softmax_cross_entropy's options, checked: class weights, ignore_index, label
    smoothing, the z-loss coefficient and the soft cap (0: none) (``_lossops``: what
    they compute)."""

    def __init__(self, weight: np.ndarray | None, ignore_index: int, smoothing: float, z: float, cap: float) -> None:
        self.weight, self.ignore_index, self.smoothing, self.z, self.cap = weight, ignore_index, smoothing, z, cap
        # ignored rows may still come
        self.plain = weight is None and smoothing == 0.0 and z == 0.0 and cap == 0.0

    @classmethod
    def of(cls, weight: object, ignore_index: object, label_smoothing: object, z_loss: object,
           softcap: object = None) -> _XentOptions:
        if (weight is None and type(ignore_index) is int and ignore_index == -100 and type(label_smoothing) is float
                and label_smoothing == 0.0 and type(z_loss) is float and z_loss == 0.0 and softcap is None):
            return _DEFAULT_OPTIONS  # PyTorch's defaults, as the common call passes them
        if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(ignore_index, (int, np.integer)):
            raise TypeError(f"ignore_index must be an int, got {type(ignore_index).__name__}")
        smoothing = _check_param(_NAME, _SMOOTHING, label_smoothing)
        z = _check_param(_NAME, _Z_LOSS, z_loss)
        cap = 0.0 if softcap is None else _check_param(_NAME, _SOFTCAP, softcap)
        w = None
        if weight is not None:
            w = as_real_array(weight, "weight")
            if w.ndim != 1:
                raise ValueError(f"weight must be 1-D (one per class), got shape {w.shape}")
            w = w.astype(np.result_type(w.dtype, np.float64))
        return cls(w, int(ignore_index), smoothing, z, cap)

    def arguments(self, kind: str, labels: np.ndarray, n: int, comp_dt: np.dtype) -> tuple[str, np.ndarray, float,
                                                                                           tuple[Any, ...]]:
        """(the loss kernel, its labels, the count a mean divides by, the options' arguments)."""
        if self.weight is not None and self.weight.shape != (n,):
            raise ValueError(f"weight must have one value per class ({n}), got {self.weight.size}")
        w = self.weight if self.weight is not None else np.ones(n)
        keep, smooth = 1.0 - self.smoothing, (self.smoothing / n if n else 0.0)
        if kind == "index":
            ignored = labels == self.ignore_index
            kept = labels[~ignored]
            count = float(np.sum(w[kept])) if self.weight is not None else float(kept.size)
            return "xent_index_options", np.where(ignored, -1, labels), count, (w, keep, smooth, self.z, self.cap)
        # class probabilities: PyTorch's weights and smoothing on the targets; the mean is over rows
        with np.errstate(all="ignore"):
            targets = ((keep * labels + smooth) * w).astype(comp_dt)
        if self.z or self.cap:
            return "xent_prob_options", targets, float(labels.shape[0]), (w, keep, smooth, self.z, self.cap)
        return "xent_prob", targets, float(labels.shape[0]), ()


_DEFAULT_OPTIONS = _XentOptions(None, -100, 0.0, 0.0, 0.0)


def _run_loss(name: str, parallel: bool, *args: Any) -> Any:
    """Fused loss ``name`` (``_lossops.LOSSES``) on ``args``: the kernel, serial or
    ``parallel``, or the NumPy fallback."""
    if _backend.runs_numba(args[0].dtype):
        # not timed for stalls (_threads.run): it writes arrays allocated for the call
        return _kernels_module().loss_kernel(name, parallel)(*args)
    with np.errstate(all="ignore"):
        return _lossops.LOSSES[name].numpy(*args)


class BinaryCrossEntropyWithLogits:
    """binary_cross_entropy_with_logits(logits, targets, reduction="mean", *, weight=None,
    pos_weight=None).

    max(x, 0) - x t + log(1 + exp(-abs(x))), stable for large abs(x); the gradient
    is sigmoid(x) - t.  ``targets`` has the logits' shape.  PyTorch's ``weight`` (times
    each loss) and ``pos_weight`` (c = 1 + (pos_weight - 1) t on the softplus(-x) term)
    broadcast against the logits; the mean is over the elements.

    Entry points:
        binary_cross_entropy_with_logits(logits, targets, reduction="mean")  the loss
        binary_cross_entropy_with_logits.value_and_grad(logits, targets, ...)  (loss, gradient), one pass

    Example:
        >>> import numpy as np, fastact
        >>> loss, grad = fastact.binary_cross_entropy_with_logits.value_and_grad(np.array([2.0, -1.0]),
        ...                                                                      np.array([1.0, 0.0]))
        >>> float(loss.round(6)), grad.round(6)
        (0.220095, array([-0.059601,  0.134471]))
    """

    __name__ = "binary_cross_entropy_with_logits"
    __module__ = "fastact"

    def __reduce__(self) -> str:
        return self.__name__

    def __repr__(self) -> str:
        return "<fastact loss binary_cross_entropy_with_logits>"

    def __call__(self, logits: Any, targets: Any, reduction: str = "mean", *, weight: Any = None,
                 pos_weight: Any = None, **kwargs: Any) -> Any:
        _no_other_keywords(self.__name__, kwargs)
        return self._run(logits, targets, reduction, False, weight, pos_weight)[0]

    def value_and_grad(self, logits: Any, targets: Any, reduction: str = "mean", *, weight: Any = None,
                       pos_weight: Any = None, **kwargs: Any) -> tuple[Any, Any]:
        """``(loss, d loss / d logits)`` in one pass over the logits."""
        _no_other_keywords(f"{self.__name__}.value_and_grad", kwargs)
        return self._run(logits, targets, reduction, True, weight, pos_weight)

    def _run(self, logits: Any, targets: Any, reduction: Any, want_grad: Any, weight: Any = None,
             pos_weight: Any = None) -> tuple[Any, Any]:
        reduction = _check_reduction(reduction)
        if (type(logits) is np.ndarray and type(targets) is np.ndarray and (logits.dtype is _F32 or logits.dtype is _F64)
                and targets.dtype is logits.dtype and targets.shape == logits.shape):
            # the common call: what prepare_call would give (a small batch feels its 2.4 us)
            x, t, res_dt, comp_dt = logits, targets, logits.dtype, logits.dtype
        else:
            (x, t), _, res_dt, comp_dt, _ = prepare_call([(logits, "logits"), (targets, "targets")], same_shape=True)
        weights = [None if value is None else _along_block(value, x.shape, comp_dt, name)
                   for value, name in ((weight, "weight"), (pos_weight, "pos_weight"))]
        xf = np.ascontiguousarray(x, dtype=comp_dt).reshape(-1)
        tf = np.ascontiguousarray(t, dtype=comp_dt).reshape(-1)
        count = xf.size
        scale = 1.0 / count if (reduction == "mean" and count) else 1.0
        each = reduction == "none"
        grad = np.empty(count if want_grad else 0, comp_dt)
        losses = np.empty(count if each else 0, comp_dt)
        name, extra = "bce", cast(tuple[Any, ...], ())
        if weight is not None or pos_weight is not None:
            ones = (np.ones(1, comp_dt), 1)
            name, extra = "bce_weighted", (*(weights[0] or ones), *(weights[1] or ones))
        blocks = -(-count // _config.LOSS_ELEMENT_BLOCK)  # the kernel's tasks
        total = _run_loss(name, _threads.go_parallel(count, _config.PARALLEL_MIN_ELEMENTS, blocks),
                          xf, tf, want_grad, grad, scale, losses, each, *extra) if count else 0.0
        with quiet_casts(res_dt, comp_dt):
            if each:
                value = _scalar_if_0d(losses.reshape(x.shape).astype(res_dt, copy=False))
            else:
                value = _reduced_total(total, reduction, count, res_dt)
            if not want_grad:
                return value, None
            return value, _scalar_if_0d(grad.reshape(x.shape).astype(res_dt, copy=False))


def _along_block(value: object, shape: tuple[int, ...], comp_dt: np.dtype, name: str) -> tuple[np.ndarray, int]:
    """(values, inner): ``value`` (broadcasting to ``shape``) as the run of its values along
    the block of axes it varies along, element i of the flattened shape taking
    values[(i // inner) % len(values)] (a block with broadcast axes inside is filled in)."""
    arr = as_real_array(value, name)
    try:
        if np.broadcast_shapes(arr.shape, shape) != shape:
            raise ValueError
    except ValueError:
        raise ValueError(f"{name} of shape {arr.shape} does not broadcast to the logits' shape {shape}") from None
    aligned = arr.reshape((1,) * (len(shape) - arr.ndim) + arr.shape)
    varying = [d for d in range(len(shape)) if aligned.shape[d] != 1]
    lo, hi = (varying[0], varying[-1] + 1) if varying else (0, 0)
    block = aligned[(0,) * lo + (slice(None),) * (hi - lo) + (0,) * (len(shape) - hi)]
    values = np.ascontiguousarray(np.broadcast_to(block, shape[lo:hi]), dtype=comp_dt).reshape(-1)
    return values, max(math.prod(shape[hi:]), 1)


def _scalar_if_0d(arr: np.ndarray) -> Any:
    """A NumPy scalar for a 0-d result, as the elementwise ops and NumPy's ufuncs give."""
    return arr[()] if arr.ndim == 0 else arr


softmax_cross_entropy = SoftmaxCrossEntropy()
binary_cross_entropy_with_logits = BinaryCrossEntropyWithLogits()
