"""One definition per gated unit: glu, swiglu, geglu, reglu.

A gated unit splits its input in two halves ``a, b`` along an axis (as
``torch.nn.functional.glu`` does) and multiplies one half by an activation of
the other: with ``u`` the half that goes through the activation ``f`` and ``v``
the other,

    y = v f(u),   dL/du = (g v) f'(u),   dL/dv = g f(u).

The activation is an elementwise op of ``_activations``, so its formulas, its
parameters (geglu's ``approximate``), its NumPy fallback and its mpmath
reference are the ones the elementwise op uses; a definition here only says
which op, which half and how PyTorch writes it.  The kernels (``_kernels.
gated_kernel``) and the NumPy fallback below are built from that.  The products
are formed in PyTorch's order (``(g * v) * f'(u)``), so a NaN or an infinity
propagates as in PyTorch's autograd, but in float64, each result rounded once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _activations
from ._validation import accumulator


@dataclass(frozen=True)
class GatedDefinition:
    name: str
    activation: str  # the public elementwise op applied to one half
    activated: int  # which half goes through it: 0 (the first, a) or 1 (the second, b)
    doc: str
    formula: str  # for the README's table, in the halves a and b
    # PyTorch's expression in torch, F (torch.nn.functional), x and dim: what the tests
    # compare with and bench times (forward, with autograd for the backward)
    torch: str
    # JAX's, in jax, jnp (jax.numpy) and x, over the last axis, for bench
    jax: str

    def activated_first(self, first: Any, second: Any) -> Any:
        """The pair (halves a, b, their gradients) with the activated half first: (u, v).
        The swap is its own inverse, so (u, v) gives back (a, b) too.  (The kernel, in
        Numba, makes the same choice from ``activated``.)"""
        return (second, first) if self.activated else (first, second)


GATED_OPS: dict[str, GatedDefinition] = {d.name: d for d in (
    GatedDefinition("glu", "sigmoid", 1, "Gated linear unit: a * sigmoid(b), as torch.nn.functional.glu.",
                    "a sigmoid(b)", "F.glu(x, dim)", "jax.nn.glu(x)"),
    GatedDefinition("swiglu", "silu", 0, "SwiGLU, the LLaMA MLP gate: silu(a) * b.",
                    "silu(a) b", "F.silu(x.chunk(2, dim)[0]) * x.chunk(2, dim)[1]",
                    "jax.nn.silu(jnp.split(x, 2, -1)[0]) * jnp.split(x, 2, -1)[1]"),
    GatedDefinition("geglu", "gelu", 0, "GEGLU: gelu(a) * b, either gelu form (approximate='none' or 'tanh').",
                    "gelu(a) b", "F.gelu(x.chunk(2, dim)[0], approximate=approximate) * x.chunk(2, dim)[1]",
                    "jax.nn.gelu(jnp.split(x, 2, -1)[0], approximate=False) * jnp.split(x, 2, -1)[1]"),
    GatedDefinition("reglu", "relu", 0, "ReGLU: relu(a) * b.",
                    "relu(a) b", "F.relu(x.chunk(2, dim)[0]) * x.chunk(2, dim)[1]",
                    "jax.nn.relu(jnp.split(x, 2, -1)[0]) * jnp.split(x, 2, -1)[1]"),
)}

# what each kind of call computes, from the activated half u, the other half v and grad_out g:
# (needs g, writes y, writes the input gradient)
GATED_KINDS: dict[str, tuple[bool, bool, bool]] = {
    "forward": (False, True, False),  # y = v f(u)
    "value_and_grad": (False, True, True),  # y and the partials (v f'(u), f(u))
    "grad": (False, False, True),  # the partials alone: the input gradient for grad_out = 1
    "backward": (True, False, True),  # ((g v) f'(u), g f(u))
}


def numpy_gated(act: _activations.Activation, g: np.ndarray | None, u: np.ndarray, v: np.ndarray,
                y: np.ndarray | None, du: np.ndarray | None, dv: np.ndarray | None, p: tuple[Any, ...]) -> None:
    """The NumPy fallback: y and/or the gradients (du, dv), from grad_out g where
    given (else the partials).  The arrays are (rows, n) views, u and v (and du and
    dv) strided halves of one array; the products round in the kernels' order."""
    wide = accumulator(u.dtype)  # float64, long double for long double
    fu = np.empty(u.shape, u.dtype)
    act.numpy_f(u, fu, p)
    fu, v = fu.astype(wide, copy=False), v.astype(wide, copy=False)
    if y is not None:
        np.multiply(v, fu, out=y)
    if du is None or dv is None:
        return
    d = np.empty(u.shape, u.dtype)
    act.numpy_df(u, d, p)
    gv = v if g is None else g.astype(wide, copy=False) * v
    np.multiply(gv, d, out=du)
    if g is None:
        dv[...] = fu
    else:
        np.multiply(g.astype(wide, copy=False), fu, out=dv)


def reference(act: _activations.Activation, mp: Any, u: Any, v: Any, p: tuple[Any, ...]) -> tuple[Any, ...]:
    """(y, dy/du, dy/dv) at one point, exactly (mpmath)."""
    fu = act.reference(mp, u, p)
    return v * fu, v * act.reference_df(mp, u, p), fu
