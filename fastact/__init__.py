"""fastact: activation functions and their derivatives, compiled with Numba.

Elementwise ops (``sigmoid``, ``relu``) are callable objects with ``grad``,
``value_and_grad`` and a fused ``backward``; ``softmax`` and ``log_softmax``
normalise over an axis and have ``backward``.  Every op has a NumPy fallback
with the same semantics (``set_backend("numpy")``).

Importing fastact compiles nothing: each kernel compiles on first use and is
cached on disk.
"""

from __future__ import annotations

from ._activations import ELEMENTWISE as _ELEMENTWISE
from ._api import ElementwiseOp, RowOp
from ._losses import binary_cross_entropy_with_logits, softmax_cross_entropy
from ._backend import get_backend, set_backend, use_backend
from ._threads import get_num_threads, set_num_threads, threading_layer

__version__ = "0.1.0"

sigmoid = ElementwiseOp(_ELEMENTWISE["sigmoid"])
tanh = ElementwiseOp(_ELEMENTWISE["tanh"])
log_sigmoid = ElementwiseOp(_ELEMENTWISE["log_sigmoid"])
relu = ElementwiseOp(_ELEMENTWISE["relu"])
leaky_relu = ElementwiseOp(_ELEMENTWISE["leaky_relu"])
relu6 = ElementwiseOp(_ELEMENTWISE["relu6"])
hardtanh = ElementwiseOp(_ELEMENTWISE["hardtanh"])
elu = ElementwiseOp(_ELEMENTWISE["elu"])
selu = ElementwiseOp(_ELEMENTWISE["selu"])
celu = ElementwiseOp(_ELEMENTWISE["celu"])
gelu = ElementwiseOp(_ELEMENTWISE["gelu"], {"none": _ELEMENTWISE["gelu"], "tanh": _ELEMENTWISE["gelu_tanh"]},
                     "approximate")
silu = ElementwiseOp(_ELEMENTWISE["silu"])
swish = silu
mish = ElementwiseOp(_ELEMENTWISE["mish"])
softplus = ElementwiseOp(_ELEMENTWISE["softplus"])
softsign = ElementwiseOp(_ELEMENTWISE["softsign"])
hardsigmoid = ElementwiseOp(_ELEMENTWISE["hardsigmoid"])
hardswish = ElementwiseOp(_ELEMENTWISE["hardswish"])

_ROW_ENTRY_POINTS = """

``axis`` is an int, a tuple of ints (the rows span those axes) or None (all of them), as
in SciPy; ``dim=`` is another name of it, as in PyTorch.

Entry points:
    {name}(x, axis=-1, out=None)
    {name}.backward(grad_out, y, axis=-1, out=None)  the gradient with respect to x, from y
    {name}.gufunc, {name}.backward_gufunc  the NumPy gufuncs (dask, xarray)

Example (the tutorial's four scores):
    >>> import numpy as np, fastact
    >>> y = fastact.{name}(np.array([2.0, 10.0, 1.0, 4.0]))
    >>> y.round(6)
    {example}
    >>> fastact.{name}.backward(np.ones(4), y).shape
    (4,)
"""
softmax = RowOp(
    "softmax",
    "softmax(x, axis=-1, out=None): exp(x - max) / sum(exp(x - max)) along ``axis``.\n\n"
    "The row maximum is subtracted first, so no finite input overflows.  A row that is\n"
    "all -inf, or holds +inf or NaN, gives NaN.  backward = y * (g - sum(g * y, axis))."
    + _ROW_ENTRY_POINTS.format(name="softmax",
                               example="array([3.34000e-04, 9.97071e-01, 1.23000e-04, 2.47100e-03])"),
    "softmax.backward(grad_out, y, axis=-1, out=None) = y * (g - sum(g * y, axis)).",
)
log_softmax = RowOp(
    "log_softmax",
    "log_softmax(x, axis=-1, out=None): x - max - log(sum(exp(x - max))) along ``axis``.\n\n"
    "backward = g - exp(y) * sum(g, axis)."
    + _ROW_ENTRY_POINTS.format(name="log_softmax", example="array([-8.002933e+00, -2.933000e-03, -9.002933e+00, -6.002933e+00])"),
    "log_softmax.backward(grad_out, y, axis=-1, out=None) = g - exp(y) * sum(g, axis).",
)

#: Every elementwise activation by name (``swish`` is another name of ``silu``, not listed twice).
ACTIVATIONS: dict[str, ElementwiseOp] = {
    op.name: op
    for op in (sigmoid, tanh, log_sigmoid, relu, leaky_relu, relu6, hardtanh, elu, selu, celu, gelu, silu, mish,
               softplus, softsign, hardsigmoid, hardswish)
}

__all__ = [
    "ACTIVATIONS",
    "binary_cross_entropy_with_logits",
    "softmax_cross_entropy",
    "celu",
    "elu",
    "gelu",
    "hardsigmoid",
    "hardswish",
    "hardtanh",
    "leaky_relu",
    "log_sigmoid",
    "mish",
    "relu6",
    "selu",
    "silu",
    "softplus",
    "softsign",
    "swish",
    "tanh",
    "ElementwiseOp",
    "RowOp",
    "get_backend",
    "get_num_threads",
    "log_softmax",
    "relu",
    "set_backend",
    "set_num_threads",
    "sigmoid",
    "softmax",
    "threading_layer",
    "use_backend",
]
