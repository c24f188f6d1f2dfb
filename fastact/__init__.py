"""fastact: activation functions and their derivatives, compiled with Numba.

Elementwise ops (``sigmoid``, ``relu``) are callable objects with ``grad``,
``value_and_grad`` and a fused ``backward``; ``softmax`` and ``log_softmax``
normalise over an axis and have ``backward``.  Every op has a NumPy fallback
with the same semantics (``set_backend("numpy")``).

Importing fastact compiles nothing: each kernel compiles on first use and is
cached on disk.  The ops are built from their definitions (``_activations``,
``_rowops``): adding a definition adds the op here, in ``__all__`` and in
``ACTIVATIONS``.
"""

from __future__ import annotations

from ._api import ChannelOp, ElementwiseOp, GatedOp, ReductionOp, RowOp, public_ops
from ._backend import get_backend, set_backend, use_backend
from ._losses import binary_cross_entropy_with_logits, softmax_cross_entropy
from ._threads import get_num_threads, set_num_threads, threading_layer

__version__ = "0.1.0"

_OPS = public_ops()
globals().update(_OPS)

#: Every elementwise activation by name (aliases such as ``swish``, another name of ``silu``, not listed twice).
ACTIVATIONS: dict[str, ElementwiseOp] = {
    name: op for name, op in _OPS.items() if isinstance(op, ElementwiseOp) and name == op.name
}

__all__ = sorted([
    *_OPS,
    "ACTIVATIONS",
    "ChannelOp",
    "ElementwiseOp",
    "GatedOp",
    "ReductionOp",
    "RowOp",
    "binary_cross_entropy_with_logits",
    "get_backend",
    "get_num_threads",
    "set_backend",
    "set_num_threads",
    "softmax_cross_entropy",
    "threading_layer",
    "use_backend",
])
