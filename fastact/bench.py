"""``python -m fastact bench``: fastact against NumPy, SciPy, PyTorch, JAX and numexpr.

For each op, dtype and size it times fastact (with a preallocated ``out``),
the fastest plain-NumPy formulation with ``out=``, and the peers that are
importable (SciPy; PyTorch's ATen kernels through their ``out=`` overloads, on
``torch.from_numpy`` views, with its thread count matched; JAX jitted, with
``block_until_ready``; numexpr with its thread count matched), next to the
copy roofline: the fastest of ``np.copyto`` and a parallel Numba copy loop (plain or streaming stores) over
the same arrays (for the gated units the passes over the memory they move, for
logsumexp a read pass, ``np.max`` along the rows).  Compilation is excluded (every implementation runs once
before timing), and the implementations alternate within each repeat, each
repeat starting one later, so drift and the previous call's after-effects on a
noisy machine hit all alike.
A sample times as many calls as last about 0.2 ms (one call of a large
array), after about 2 ms of untimed calls that let the previous library's
spinning threads settle.  Reported times are medians of the samples, per call.

softmax_cross_entropy and its value_and_grad (the mean over the rows of each
shape) run against its NumPy backend, PyTorch's cross_entropy (autograd for the
gradient) and JAX's (jitted, jax.value_and_grad for the gradient).

The elementwise cases also run on one thread at small sizes (16, 1000 and 1e4
elements by default), where the call's own cost shows: fastact's op against
its bare ufunc, NumPy, SciPy and PyTorch; so do the loss cases, on a batch of
32 rows of 10 classes.  ``--busy`` instead times single
calls beside a CPU-bound process (median and 99th percentile against one
thread): the busy-machine guard of ``_threads``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

import fastact

from . import _activations, _cli
from ._gatedops import GATED_OPS
from ._rowops import ROW_OPS, ROW_REDUCTIONS

# the calls a case times, by implementation
_Timed = dict[str, Callable[..., Any]]

ALL_CASES = tuple(c for name in (*fastact.ACTIVATIONS, *ROW_OPS, *GATED_OPS) for c in (name, f"{name}.backward")) \
    + tuple(ROW_REDUCTIONS) \
    + tuple(f"{name}.{option}" for name in ROW_OPS for option in ("where", "temperature")) \
    + tuple(f"{name}.{kind}" for name in ("relu", "sigmoid", "gelu", "silu") for kind in ("bias", "bias_backward")) \
    + tuple(f"{name}.param_grads" for name in ("leaky_relu", "elu")) \
    + ("softmax_cross_entropy", "softmax_cross_entropy.value_and_grad")
# An elementwise op's ".bias" and ".bias_backward" cases run on the row shapes, with a bias
# along the last axis (op(x, bias=b); op.backward(g, x=x, bias=b), which also sums dbias);
# ".param_grads" cases (op.backward(g, x=x, param_grads=True)) on the row shapes too.
# softmax_cross_entropy (the mean over the rows of the shape, random class indices, the
# classes along the last axis whatever --axis says) and its ".value_and_grad" likewise.
LOSSES = ("softmax_cross_entropy",)
# the small batch the loss cases and the row ops' plain and backward cases run on one
# thread (issue 18: 32 rows of 10 classes)
SMALL_BATCH = (32, 10)
# logsumexp's backward is softmax's times grad_out; a row op's ".where" and ".temperature" cases
# time it with a random mask keeping ROW_OPTION_KEEP of the entries, or at ROW_OPTION_TEMPERATURE
ROW_OPTION_KEEP = 0.8
ROW_OPTION_TEMPERATURE = 0.7
DTYPES = ("float32", "float64")
# peer -> how to install it, for the line that names the peers a run skipped
PEERS = {"scipy": "pip install scipy", "torch": "pip install torch==2.13.0 (the CPU build)",
         "jax": "pip install jax", "numexpr": "pip install numexpr"}
DEFAULT_ROW_SHAPES = "4096x4096,65536x128,512x32768,1000000x10"
DEFAULT_GATED_SHAPES = "8192x22016"  # a LLaMA-7B MLP's gate and up projections for 8192 tokens


@dataclass
class Result:
    """The median times of every implementation on one case."""

    case: str
    dtype: str
    n: int
    shape: tuple[int, ...]
    threads: int
    times_ms: dict[str, float] = field(default_factory=dict)  # implementation -> median ms
    axis: int = -1  # of the softmax ops

    @classmethod
    def from_dict(cls, d: dict[Any, Any]) -> Result:
        return cls(d["case"], d["dtype"], d["n"], tuple(d["shape"]), d["threads"], d["times_ms"], d.get("axis", -1))

    @property
    def label(self) -> str:
        return self.case if self.axis == -1 else f"{self.case} (axis {self.axis})"

    def speedup(self, peer: str) -> float:
        return self.times_ms[peer] / self.times_ms["fastact"]

    @property
    def roofline_fraction(self) -> float:
        """Roofline time over fastact's: the two-input roofline for backward cases."""
        return self.times_ms.get("2-input roofline", self.times_ms["copy roofline"]) / self.times_ms["fastact"]


# Before each sample the implementation runs, untimed, for about this long:
# thread pools spin after a call (PyTorch's OpenMP, XLA's, Numba's tbb) and
# slow whichever library runs next.  Timed straight after torch's turn,
# sigmoid on 1e5 float32 took fastact 55 us against 30 us with torch's threads
# told to sleep (OMP_WAIT_POLICY=PASSIVE).
SETTLE_SECONDS = 2e-3

# Each sample times enough calls to last about this long: a single call of a few
# microseconds is mostly timer and cold cache (sigmoid on 1e4 float32 elements:
# 15 us timed alone, 5.8 us in a loop, as timeit reports).
MIN_SAMPLE_SECONDS = 2e-4


def median_times(impls: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds per call (in ms) of each implementation.  Implementations take
    turns sample by sample, so that drift hits them all alike, and each round starts one
    later than the last, so that each follows every other as often (on a shared znver4
    the order alone moved masked softmax over plain between 0.96x and 1.24x)."""
    calls, settle = {}, {}
    for name, fn in impls.items():  # warm-up: compilation, page faults, thread start
        fn()
        start = time.perf_counter()
        fn()
        once = time.perf_counter() - start
        calls[name] = max(1, min(1000, math.ceil(MIN_SAMPLE_SECONDS / max(once, 1e-9))))
        settle[name] = max(1, min(10000, math.ceil(SETTLE_SECONDS / max(once, 1e-9))))
    samples: dict[str, list[float]] = {name: [] for name in impls}
    turns = list(impls.items())
    for r in range(repeats):
        for name, fn in turns[r % len(turns):] + turns[:r % len(turns)]:
            number = calls[name]
            for _ in range(settle[name]):
                fn()
            start = time.perf_counter()
            for _ in range(number):
                fn()
            samples[name].append((time.perf_counter() - start) / number)
    return {name: statistics.median(s) * 1e3 for name, s in samples.items()}


def _optional(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError:
        return None


def _definition(name: str) -> _activations.Activation:
    """The definition behind elementwise op ``name`` (Any: the stub's ops hide it)."""
    op: Any = fastact.ACTIVATIONS[name]
    act: _activations.Activation = op._act
    return act


def _peers(name: str) -> dict[str, str]:
    """The op's peers in other libraries and in plain NumPy, from its definition
    (``Activation.peers``, ``RowDefinition.peers``)."""
    if name in ROW_OPS:
        return dict(ROW_OPS[name].peers)
    return dict(_definition(name).peers)


def _numpy_peers(name: str, scope: dict[Any, Any], backward: bool = False) -> _Timed:
    """The plain-NumPy formulations in the definition, as calls over ``scope``
    (keys "numpy", "numpy (...)"; "numpy_backward" for a row op's backward)."""
    wanted = ("numpy_backward",) if backward else ()
    found = {}
    for key, expr in _peers(name).items():
        if (key in wanted) if backward else (key == "numpy" or key.startswith("numpy (")):
            found[key.replace("_backward", "")] = eval(f"lambda: {expr}", {"np": np, **scope})  # noqa: S307
    return found


def _torch_functional(torch: Any, name: str) -> Any:
    return _activations.torch_function(_definition(name), torch)


def _torch_out_ops(aten: Any, name: str, buffer: Any) -> Any:
    """torch's ATen kernels for activation ``name`` through their ``out=`` overloads,
    with fastact's default parameters: ``(forward(x, out), backward(g, x, y, out))``,
    where ``y`` is forward's output; ``(None, None)`` where ATen has no such kernel
    (softsign).  mish_backward has no ``out=`` overload and allocates."""
    peers = _peers(name)
    if "aten" not in peers:
        return None, None
    scope = {"aten": aten, "buffer": buffer, "SELU_ALPHA": _activations.SELU_ALPHA,
             "SELU_SCALE": _activations.SELU_SCALE}
    forward = eval(f"lambda x, o: {peers['aten']}", scope)  # noqa: S307 - expressions from the definitions
    backward = eval(f"lambda g, x, y, o: {peers['aten_backward']}", scope)  # noqa: S307
    return forward, backward


def _torch_public(torch: Any, name: str, tx: Any, tout: Any) -> Any:
    """``torch.<name>(x, out=o)`` where torch has it (sigmoid, tanh): the same ATen kernel
    as the ``out=`` overload, through a binding that costs about 2 us less a call."""
    fn: Any = getattr(torch, name, None)
    try:
        fn(tx[:1], out=tout[:1])
    except (TypeError, RuntimeError):
        return None
    return lambda: fn(tx, out=tout)


def _elementwise_forward(op: Any, x: Any, out: Any, tx: Any, tout: Any, torch: Any, special: Any) -> _Timed:
    impls: dict[str, Callable[..., Any]] = {"fastact": lambda: op(x, out=out)}
    ufunc, params = op.ufunc, op._default_params  # the parameters as the ufunc takes them
    impls["fastact ufunc"] = lambda: ufunc(x, *params, out)
    impls.update(_numpy_peers(op.name, {"x": x, "out": out}))
    if not impls.keys() - {"fastact"} and not op._act.fallback_per_element:
        impls["numpy (fastact fallback)"] = lambda: _with_numpy_backend(lambda: op(x, out=out))
    if special and "scipy" in _peers(op.name):
        scipy_fn = getattr(special, _peers(op.name)["scipy"])
        impls["scipy"] = lambda: scipy_fn(x, out=out)
    if torch:
        forward, _ = _torch_out_ops(torch.ops.aten, op.name, torch.empty(0, dtype=tx.dtype))
        public = _torch_public(torch, op.name, tx, tout)
        if public:
            impls["torch"] = public
        elif forward:
            impls["torch"] = lambda: forward(tx, tout)
        else:
            torch_fn = _torch_functional(torch, op.name)
            impls["torch"] = lambda: torch_fn(tx)  # composite in torch, without out=
    return impls


def _elementwise_backward(op: Any, x: Any, g: Any, out: Any, tmp: Any, tx: Any, tg: Any, torch: Any) -> _Timed:
    impls: dict[str, Callable[..., Any]] = {"fastact": lambda: op.backward(g, x=x, out=out)}
    ufunc, params = op.get_ufunc("backward_x"), op._default_params
    impls["fastact ufunc"] = lambda: ufunc(g, x, *params, out)
    if op.supports_y():
        impls["fastact 2-pass"] = lambda: (op(x, out=tmp), op.backward(g, y=tmp, out=out))
    else:
        impls["fastact 2-pass"] = lambda: (op.grad(x, out=tmp), np.multiply(g, tmp, out=out))
    if not op._act.fallback_per_element:
        impls["numpy (fastact fallback)"] = lambda: _with_numpy_backend(lambda: op.backward(g, x=x, out=out))
    if torch:
        ttmp, tout = torch.from_numpy(tmp), torch.from_numpy(out)
        forward, backward = _torch_out_ops(torch.ops.aten, op.name, torch.empty(0, dtype=tx.dtype))
        if forward:  # the forward kernel, then the matching ATen backward kernel
            impls["torch"] = lambda: backward(tg, tx, forward(tx, ttmp), tout)
        else:  # the composite forward and its backward through autograd
            fn = _torch_functional(torch, op.name)

            def torch_backward() -> Any:
                leaf = tx.detach().requires_grad_(True)
                return torch.autograd.grad(fn(leaf), leaf, tg)

            impls["torch"] = torch_backward
    return impls




def _jax_function(op_name: str, axis: int = -1) -> Any:
    jax = _optional("jax")
    if jax is None:
        return None, None
    jax.config.update("jax_enable_x64", True)  # float64 stays float64
    if op_name in ROW_OPS and "jax" in _peers(op_name):  # an expression in v and axis
        fn = eval(f"lambda v: {_peers(op_name)['jax']}", {"jax": jax, "axis": axis})  # noqa: S307
    elif op_name in ROW_OPS:
        fn = lambda v: getattr(jax.nn, op_name)(v, axis=axis)  # noqa: E731
    elif "jax" in _peers(op_name):
        fn = eval(_peers(op_name)["jax"], {"jax": jax})  # noqa: S307 - an expression from the definition
    else:
        fn = getattr(jax.nn, op_name)
    return jax, fn


def _jax_timed(jax: Any, fn: Callable[..., Any] | None, kind: str, x: np.ndarray, g: np.ndarray) -> _Timed:
    """{"jax": fn jitted on x} (forward), or its backward through jax.vjp with cotangent g;
    {} without JAX."""
    if jax is None:
        return {}
    jx, jg = jax.device_put(x), jax.device_put(g)
    if not kind:
        jitted = jax.jit(fn)
        return {"jax": lambda: jitted(jx).block_until_ready()}
    backward = jax.jit(lambda v, w: jax.vjp(fn, v)[1](w)[0])
    return {"jax": lambda: backward(jx, jg).block_until_ready()}


def _peer_implementations(op_name: str, kind: str, x: np.ndarray, g: np.ndarray, out: np.ndarray,
                          threads: int, axis: int = -1) -> _Timed:
    """JAX (jitted forward, or forward plus backward through jax.vjp) and numexpr."""
    jax, fn = _jax_function(op_name, axis)
    impls = _jax_timed(jax, fn, kind, x, g)
    numexpr = _optional("numexpr")
    if numexpr is not None and not kind and "numexpr" in _peers(op_name):
        numexpr.set_num_threads(threads)
        expr = _peers(op_name)["numexpr"]
        impls["numexpr"] = lambda: numexpr.evaluate(expr, local_dict={"x": x}, out=out, casting="same_kind")
    return impls


def _with_numpy_backend(fn: Any) -> Any:
    with fastact.use_backend("numpy"):
        return fn()


def _row_option(op: Any, kind: Any, x: Any, out: Any, tmp: Any, row_buf: Any, axis: Any, torch: Any) -> _Timed:
    """A row op with ``where=`` (kind "where") or ``temperature=``: fastact, fastact without
    the option ("fastact (plain)"), plain NumPy and PyTorch on the logits masked (filled
    with the op's masked fill: NumPy's copyto, PyTorch's masked_fill) or divided first."""
    fill = ROW_OPS[op.name].forward.masked_fills[0]
    if kind == "where":
        keep = np.random.default_rng(1).random(x.shape) < ROW_OPTION_KEEP
        drop = ~keep
        options: dict[Any, Any] = {"where": keep}

        def numpy_first() -> Any:
            np.copyto(tmp, x)
            np.copyto(tmp, x.dtype.type(fill), where=drop)
    else:
        options = {"temperature": ROW_OPTION_TEMPERATURE}

        def numpy_first() -> Any:
            return np.divide(x, x.dtype.type(ROW_OPTION_TEMPERATURE), out=tmp)
    impls: dict[str, Callable[..., Any]] = {"fastact": lambda: op(x, axis=axis, out=out, **options),
                                            "fastact (plain)": lambda: op(x, axis=axis, out=out)}
    peers = _peers(op.name)
    scope = {"x": tmp, "out": out, "buf": row_buf, "tmp": np.empty_like(x), "axis": axis}  # x: the masked logits
    for key, fn in _numpy_peers(op.name, scope).items():
        impls[key] = lambda fn=fn: (numpy_first(), fn())
    if torch and "aten" in peers:
        tx, tout, ttmp = (torch.from_numpy(a) for a in (x, out, tmp))
        torch_fn = eval(f"lambda x, o: {peers['aten']}", {"aten": torch.ops.aten, "axis": axis})  # noqa: S307
        if kind == "where":
            tdrop = torch.from_numpy(drop)
            impls["torch"] = lambda: torch_fn(tx.masked_fill(tdrop, fill), tout)
        else:
            impls["torch"] = lambda: torch_fn(torch.div(tx, ROW_OPTION_TEMPERATURE, out=ttmp), tout)
    return impls


def _bias_case(op: Any, kind: Any, x: Any, g: Any, out: Any, tmp: Any, torch: Any) -> _Timed:
    """``op(x, bias=b)`` (kind "bias") or ``op.backward(g, x=x, bias=b)`` ("bias_backward"),
    b along the last axis: fastact, fastact without the bias ("fastact (plain)"), NumPy's
    add then fastact's op (and np.sum for dbias: "numpy add + fastact"), and PyTorch's add,
    ATen forward (and backward, and sum) through out= where ATen has them."""
    b = np.random.default_rng(1).standard_normal(x.shape[-1]).astype(x.dtype)
    db = np.empty_like(b)
    if kind == "bias":
        impls: dict[str, Callable[..., Any]] = {
            "fastact": lambda: op(x, bias=b, out=out),
            "fastact (plain)": lambda: op(x, out=out),
            "numpy add + fastact": lambda: op(np.add(x, b, out=tmp), out=out)}
    else:
        impls = {
            "fastact": lambda: op.backward(g, x=x, bias=b, out=(out, db)),
            "fastact (plain)": lambda: op.backward(g, x=x, out=out),
            "numpy add + fastact": lambda: (op.backward(g, x=np.add(x, b, out=tmp), out=out),
                                            np.sum(out, axis=tuple(range(x.ndim - 1)), out=db))}
    if torch:
        tx, tg, tb, tout, ttmp, tdb = (torch.from_numpy(a) for a in (x, g, b, out, tmp, db))
        forward, backward = _torch_out_ops(torch.ops.aten, op.name, torch.empty(0, dtype=tx.dtype))
        if kind == "bias":
            impls["torch"] = lambda: forward(torch.add(tx, tb, out=ttmp), tout)
        else:
            ty = torch.empty_like(tx)

            def torch_backward() -> Any:
                v = torch.add(tx, tb, out=ttmp)
                backward(tg, v, forward(v, ty), tout)
                return torch.sum(tout, dim=tuple(range(x.ndim - 1)), out=tdb)

            impls["torch"] = torch_backward
    return impls


def _param_grads_case(op: Any, x: Any, g: Any, out: Any, tmp: Any, torch: Any) -> _Timed:
    """``op.backward(g, x=x, param_grads=True)`` for leaky_relu or elu: fastact, its plain
    backward ("fastact (plain)"), the plain backward then the parameter's gradient in NumPy
    ("fastact + numpy"), and PyTorch (leaky_relu: its prelu backward kernel with one
    weight, then a sum; elu: autograd of the op written with a tensor alpha)."""
    impls: dict[str, Callable[..., Any]] = {
        "fastact": lambda: op.backward(g, x=x, param_grads=True, out=out),
        "fastact (plain)": lambda: op.backward(g, x=x, out=out)}
    if op.name == "leaky_relu":
        def numpy_grad() -> Any:
            np.minimum(x, 0, out=tmp)
            return op.backward(g, x=x, out=out), np.vdot(g, tmp)
    else:
        def numpy_grad() -> Any:
            np.minimum(x, 0, out=tmp)
            np.expm1(tmp, out=tmp)
            return op.backward(g, x=x, out=out), np.vdot(g, tmp)
    impls["fastact + numpy"] = numpy_grad
    if torch:
        tx, tg = torch.from_numpy(x), torch.from_numpy(g)
        if op.name == "leaky_relu":
            weight = torch.full((1,), 0.01, dtype=tx.dtype)
            impls["torch"] = lambda: torch.ops.aten._prelu_kernel_backward(tg, tx, weight)[1].sum()
        else:
            def torch_elu() -> Any:
                alpha = torch.ones((), dtype=tx.dtype, requires_grad=True)
                leaf = tx.detach().requires_grad_(True)
                y = torch.where(leaf > 0, leaf, alpha * torch.expm1(leaf))
                return torch.autograd.grad(y, (leaf, alpha), tg)
            impls["torch"] = torch_elu
    return impls


def _row_op(op: Any, kind: Any, x: Any, g: Any, out: Any, tmp: Any, row_buf: Any, axis: Any, torch: Any,
            special: Any) -> _Timed:
    """softmax or log_softmax (kind "") or its backward (kind "backward"), from y = op(x);
    with ``where=`` or ``temperature=`` (kinds "where", "temperature": _row_option)."""
    if kind in ("where", "temperature"):
        return _row_option(op, kind, x, out, tmp, row_buf, axis, torch)
    peers = _peers(op.name)
    y = op(x, axis=axis)
    scope = {"x": x, "g": g, "y": y, "out": out, "tmp": tmp, "buf": row_buf, "axis": axis}
    if not kind:
        impls: dict[str, Callable[..., Any]] = {"fastact": lambda: op(x, axis=axis, out=out)}
        if special and "scipy" in peers:
            scipy_fn = getattr(special, peers["scipy"])
            impls["scipy"] = lambda: scipy_fn(x, axis=axis)
    else:
        impls = {"fastact": lambda: op.backward(g, y, axis=axis, out=out)}
    impls.update(_numpy_peers(op.name, scope, backward=bool(kind)))
    if torch:
        tx, tg, ty, tout = (torch.from_numpy(a) for a in (x, g, y, out))
        key = "aten_backward" if kind else "aten"
        torch_fn = eval(f"lambda x, g, y, o: {peers[key]}", {"aten": torch.ops.aten, "axis": axis})  # noqa: S307
        impls["torch"] = lambda: torch_fn(tx, tg, ty, tout)
    return impls


def _implementations(case: str, x: np.ndarray, g: np.ndarray, out: np.ndarray, threads: int,
                     axis: int = -1) -> _Timed:
    op_name, _, kind = case.partition(".")
    op = getattr(fastact, op_name)
    impls: dict[str, Callable[..., Any]] = {}
    torch = _optional("torch")
    special = _optional("scipy.special") and sys.modules.get("scipy.special")
    tx, tg, tout = (torch.from_numpy(a) for a in (x, g, out)) if torch else (None, None, None)
    if torch:
        torch.set_num_threads(threads)
    row_buf = np.empty_like(x, shape=tuple(1 if d == axis % x.ndim else n for d, n in enumerate(x.shape)))
    tmp = np.empty_like(x)

    if kind in ("bias", "bias_backward"):
        impls = _bias_case(op, kind, x, g, out, tmp, torch)
    elif kind == "param_grads":
        impls = _param_grads_case(op, x, g, out, tmp, torch)
    elif op_name in fastact.ACTIVATIONS and not kind:
        impls = _elementwise_forward(op, x, out, tx, tout, torch, special)
    elif op_name in fastact.ACTIVATIONS:
        impls = _elementwise_backward(op, x, g, out, tmp, tx, tg, torch)
    else:
        impls = _row_op(op, kind, x, g, out, tmp, row_buf, axis, torch, special)

    if not (op_name in ROW_OPS and kind) and kind not in ("bias", "bias_backward", "param_grads"):  # no JAX peer
        impls.update(_peer_implementations(op_name, kind, x, g, out, threads, axis))

    from . import _kernels

    flat_x, flat_out = x.reshape(-1), out.reshape(-1)
    parallel_copy, stream_copy = _kernels.copy_kernel(True), _kernels.copy_kernel(True, streamed=True)
    impls["np.copyto"] = lambda: np.copyto(out, x)
    impls["numba copy"] = lambda: parallel_copy(flat_x, flat_out)
    impls["numba stream copy"] = lambda: stream_copy(flat_x, flat_out, ())
    if kind in ("backward", "bias_backward", "param_grads"):  # two inputs, one output: a fused backward's roofline
        impls["np.add (2 inputs)"] = lambda: np.add(g, x, out=out)
    return impls


def _gated_case(case: str, x: np.ndarray, g: np.ndarray, out: np.ndarray, threads: int) -> _Timed:
    """A gated unit over the last axis of x (rows of 2n), or its backward: fastact, fastact's
    elementwise op then a multiply (the unfused way), PyTorch's expression (with autograd for
    the backward, forward included, as the fused backward recomputes it) and JAX's; the
    rooflines of the memory each moves."""
    op_name, _, kind = case.partition(".")
    op, definition = getattr(fastact, op_name), GATED_OPS[op_name]
    n = x.shape[-1] // 2
    a, b = x[..., :n], x[..., n:]
    u, v = definition.activated_first(a, b)
    activation = getattr(fastact, definition.activation)
    tmp = np.empty_like(g)
    unfused_name = "numpy (unfused: fastact op, np.multiply)"
    if not kind:
        impls: dict[str, Callable[..., Any]] = {"fastact": lambda: op(x, out=out),
                                      unfused_name: lambda: np.multiply(activation(u, out=tmp), v, out=out)}
    else:
        du, dv = definition.activated_first(out[..., :n], out[..., n:])

        def unfused() -> None:
            activation.backward(g, x=u, out=tmp)  # g f'(u), then times v; g f(u)
            np.multiply(tmp, v, out=du)
            np.multiply(activation(u, out=tmp), g, out=dv)

        impls = {"fastact": lambda: op.backward(g, x, out=out), unfused_name: unfused}
    torch = _optional("torch")
    if torch:
        torch.set_num_threads(threads)
        tx, tg = torch.from_numpy(x), torch.from_numpy(g)
        fn = eval(f"lambda x: {definition.torch}", {"torch": torch, "F": torch.nn.functional,  # noqa: S307
                                                     "dim": -1, "approximate": "none"})
        if not kind:
            impls["torch"] = lambda: fn(tx)
        else:
            def torch_backward() -> Any:
                leaf = tx.detach().requires_grad_(True)
                return torch.autograd.grad(fn(leaf), leaf, tg)

            impls["torch"] = torch_backward
    jax, _ = _jax_function("softmax")  # the module, float64 enabled
    if jax is not None:
        jfn = eval(f"lambda x: {definition.jax}", {"jax": jax, "jnp": jax.numpy})  # noqa: S307
        impls.update(_jax_timed(jax, jfn, kind, x, g))
    if not kind:  # reads both halves, writes one
        impls["np.copyto"] = lambda: np.copyto(out, a)
        impls["np.add (2 inputs)"] = lambda: np.add(a, b, out=out)
    else:  # reads x and g, writes x's shape: a copy of x is the nearest plain pass
        impls["np.copyto"] = lambda: np.copyto(out, x)
    return impls


def _reduction_case(name: str, x: np.ndarray, out: np.ndarray, threads: int) -> _Timed:
    """A row reduction (logsumexp) over the last axis: fastact, plain NumPy (the maximum taken
    out), SciPy, PyTorch (out=) and JAX; a read pass (np.max along the rows) as its roofline."""
    op = getattr(fastact, name)
    buf, tmp = np.empty((x.shape[0], 1), x.dtype), np.empty_like(x)
    impls: dict[str, Callable[..., Any]] = {"fastact": lambda: op(x, out=out)}

    def plain_numpy() -> None:
        m = np.max(x, axis=-1, keepdims=True, out=buf)
        np.exp(np.subtract(x, m, out=tmp), out=tmp)
        np.add(np.log(np.sum(tmp, axis=-1, keepdims=True)), m, out=buf)
        np.copyto(out, buf[:, 0])

    impls["numpy"] = plain_numpy
    special = _optional("scipy.special") and sys.modules.get("scipy.special")
    if special:
        impls["scipy"] = lambda: special.logsumexp(x, axis=-1)
    torch = _optional("torch")
    if torch:
        torch.set_num_threads(threads)
        tx, tout = torch.from_numpy(x), torch.from_numpy(out)
        impls["torch"] = lambda: torch.logsumexp(tx, -1, out=tout)
    jax, _ = _jax_function("softmax")  # the module, float64 enabled
    if jax is not None:
        impls.update(_jax_timed(jax, lambda v: jax.nn.logsumexp(v, axis=-1), "", x, x))
    impls["np.copyto"] = lambda: np.max(x, axis=-1, out=out)
    return impls


def _loss_case(case: str, x: np.ndarray, threads: int) -> _Timed:
    """softmax_cross_entropy (mean over the rows, random class indices along the last axis),
    or its value_and_grad: fastact, its NumPy backend, PyTorch's cross_entropy (without
    autograd, or its forward and autograd backward) and JAX's (jitted, with jax.value_and_grad);
    a copy of the logits as the roofline (value_and_grad reads them and writes their shape;
    the forward only reads them, so it can beat the copy)."""
    op = fastact.softmax_cross_entropy
    labels = np.random.default_rng(1).integers(0, x.shape[-1], x.shape[0])
    grad = case.endswith(".value_and_grad")
    call = op.value_and_grad if grad else op
    impls: dict[str, Callable[..., Any]] = {"fastact": lambda: call(x, labels),
                                           "numpy (fastact's backend)": lambda: _with_numpy_backend(
                                               lambda: call(x, labels))}
    torch = _optional("torch")
    if torch:
        torch.set_num_threads(threads)
        tx, tl = torch.from_numpy(x), torch.from_numpy(labels)
        if grad:
            def torch_value_and_grad() -> Any:
                leaf = tx.detach().requires_grad_(True)
                loss = torch.nn.functional.cross_entropy(leaf, tl)
                return loss, torch.autograd.grad(loss, leaf)[0]

            impls["torch"] = torch_value_and_grad
        else:
            def torch_forward() -> Any:
                with torch.no_grad():
                    return torch.nn.functional.cross_entropy(tx, tl)

            impls["torch"] = torch_forward
    jax, _ = _jax_function("softmax")  # the module, float64 enabled
    if jax is not None:
        jx, jl = jax.device_put(x), jax.device_put(labels)

        def jax_loss(v: Any, lab: Any) -> Any:
            return -jax.numpy.take_along_axis(jax.nn.log_softmax(v, axis=-1), lab[:, None], axis=-1).mean()

        jitted = jax.jit(jax.value_and_grad(jax_loss) if grad else jax_loss)
        impls["jax"] = lambda: jax.block_until_ready(jitted(jx, jl))
    from . import _kernels

    out, copy, stream_copy = np.empty_like(x), _kernels.copy_kernel(True), _kernels.copy_kernel(True, streamed=True)
    impls["np.copyto"] = lambda: np.copyto(out, x)
    impls["numba copy"] = lambda: copy(x.reshape(-1), out.reshape(-1))
    impls["numba stream copy"] = lambda: stream_copy(x.reshape(-1), out.reshape(-1), ())
    return impls


def _measured(impls: dict[str, Callable[..., Any]], repeats: int) -> dict[str, float]:
    """The median times, the rooflines under their names: the faster copy, the 2-input pass."""
    with fastact.use_backend("numba"), np.errstate(over="ignore"):
        times = median_times(impls, repeats)
    times["copy roofline"] = min(times.pop("np.copyto"), times.pop("numba copy", math.inf),
                                 times.pop("numba stream copy", math.inf))
    if "np.add (2 inputs)" in times:
        times["2-input roofline"] = times.pop("np.add (2 inputs)")
    return times


def run_case(case: str, dtype: str, shape: tuple[int, ...], threads: int, repeats: int, seed: int = 0,
             axis: int = -1) -> Result:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    fastact.set_num_threads(threads)
    name = case.partition(".")[0]
    if name in ROW_REDUCTIONS:
        times = _measured(_reduction_case(case, x, np.empty(shape[0], dtype), threads), repeats)
    elif name in LOSSES:
        times = _measured(_loss_case(case, x, threads), repeats)
    elif name in GATED_OPS:
        g = rng.standard_normal(shape[:-1] + (shape[-1] // 2,)).astype(dtype)
        times = _measured(_gated_case(case, x, g, np.empty_like(x if case.endswith(".backward") else g), threads),
                          repeats)
    else:
        g = rng.standard_normal(shape).astype(dtype)
        times = _measured(_implementations(case, x, g, np.empty_like(x), threads, axis), repeats)
    return Result(case, dtype, int(np.prod(shape)), shape, threads, times, axis if name in ROW_OPS else -1)


# --- a busy machine ------------------------------------------------------------------
# ``--busy`` runs a CPU-bound process beside the benchmark and times single calls:
# a parallel call can stall for a scheduler time slice when one of its threads is
# descheduled (_threads: "A busy machine").  Each case is timed on the threads asked
# for and on one thread, in alternating blocks of calls, both beside the busy process.

BUSY_CASES = tuple((name, (n,)) for name in ("sigmoid", "tanh", "gelu") for n in (10_000, 100_000, 1_000_000)) \
    + (("softmax", (4096, 16)),)
BUSY_BLOCK = 50  # calls per block


@dataclass
class BusyResult:
    """Per-call times (us) of one case beside a CPU-bound process."""

    case: str
    dtype: str
    shape: tuple[int, ...]
    threads: int
    calls: int
    median_us: float
    p99_us: float
    one_thread_median_us: float
    one_thread_p99_us: float


def _percentile(times: list[float], q: int) -> float:
    return statistics.quantiles(times, n=100, method="inclusive")[q - 1] if len(times) > 1 else times[0]


def run_busy(cases: Any, dtype: str, calls: int, threads: int, seed: int = 0) -> list[BusyResult]:
    """Times each case ``calls`` times on ``threads`` threads and on one, with a
    CPU-bound process running beside."""
    import subprocess

    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    results = []
    try:
        time.sleep(0.2)
        for name, shape in cases:
            x = (np.random.default_rng(seed).standard_normal(shape) * 4).astype(dtype)
            out = np.empty_like(x)
            op = getattr(fastact, name)
            times: dict[int, list[float]] = {threads: [], 1: []}
            for n in times:  # compile, and a first parallel call
                fastact.set_num_threads(n)
                op(x, out=out)
            while len(times[1]) < calls:
                for n, samples in times.items():
                    fastact.set_num_threads(n)
                    for _ in range(min(BUSY_BLOCK, calls - len(samples))):
                        start = time.perf_counter()
                        op(x, out=out)
                        samples.append((time.perf_counter() - start) * 1e6)
            results.append(BusyResult(name, dtype, shape, threads, calls, statistics.median(times[threads]),
                                      _percentile(times[threads], 99), statistics.median(times[1]),
                                      _percentile(times[1], 99)))
    finally:
        hog.kill()
        hog.wait()
        fastact.set_num_threads(threads)
    return results


def format_busy(results: list[BusyResult]) -> str:
    lines = ["| case | dtype | shape | threads | median us | p99 us | 1 thread: median us | p99 us "
             "| median / 1 thread | p99 / 1 thread |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        shape = "x".join(str(d) for d in r.shape)
        lines.append(f"| {r.case} | {r.dtype} | {shape} | {r.threads} | {r.median_us:.1f} | {r.p99_us:.1f} | "
                     f"{r.one_thread_median_us:.1f} | {r.one_thread_p99_us:.1f} | "
                     f"{r.median_us / r.one_thread_median_us:.2f}x | {r.p99_us / r.one_thread_p99_us:.2f}x |")
    return "\n".join(lines)


def format_results(results: list[Result]) -> str:
    lines = [f"{'case':<26}{'dtype':<9}{'N':>10}  {'implementation':<16}{'median ms':>11}{'Melem/s':>10}"
             f"{'fastact speedup':>17}{'% of roofline':>15}"]
    for r in results:
        for impl, ms in r.times_ms.items():
            speed = f"{r.speedup(impl):.2f}x" if impl not in ("fastact", "copy roofline", "2-input roofline") else ""
            roof = f"{100 * r.times_ms.get('2-input roofline', r.times_ms['copy roofline']) / ms:.0f}%"
            lines.append(f"{r.label:<26}{r.dtype:<9}{r.n:>10}  {impl:<16}{ms:>11.3f}{r.n / ms / 1e3:>10.0f}"
                         f"{speed:>17}{roof:>15}")
    return "\n".join(lines)


def format_markdown(results: list[Result]) -> str:
    """One row per case: fastact against the best of each peer, and the roofline."""
    lines = ["| case | dtype | shape | fastact ms | NumPy best ms | PyTorch ms | JAX ms | roofline ms "
             "| vs NumPy | vs PyTorch | vs JAX | of roofline |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        numpy_ms = min((ms for impl, ms in r.times_ms.items() if impl.startswith("numpy")), default=float("nan"))
        torch_ms = r.times_ms.get("torch", float("nan"))
        jax_ms = r.times_ms.get("jax", float("nan"))
        shape = "x".join(str(d) for d in r.shape)
        roof = r.times_ms.get("2-input roofline", r.times_ms["copy roofline"])
        lines.append(f"| {r.label} | {r.dtype} | {shape} | {r.times_ms['fastact']:.2f} | {numpy_ms:.2f} | "
                     f"{torch_ms:.2f} | {jax_ms:.2f} | {roof:.2f} | {numpy_ms / r.times_ms['fastact']:.2f}x | "
                     f"{torch_ms / r.times_ms['fastact']:.2f}x | {jax_ms / r.times_ms['fastact']:.2f}x | "
                     f"{100 * roof / r.times_ms['fastact']:.0f}% |")
    return "\n".join(lines)


SMALL_CALL_MAX = 10_000


def format_small_calls(results: list[Result]) -> str:
    """One row per small call (N <= SMALL_CALL_MAX): fastact, its ufunc and the peers, in microseconds."""
    lines = ["| case | dtype | N or shape | fastact us | fastact ufunc us | NumPy best us | SciPy us | PyTorch us "
             "| vs SciPy | vs PyTorch |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if r.n > SMALL_CALL_MAX:
            continue
        size = "x".join(map(str, r.shape)) if len(r.shape) > 1 else str(r.n)
        us = {k: v * 1e3 for k, v in r.times_ms.items()}
        numpy_us = min((t for impl, t in us.items() if impl.startswith("numpy")), default=float("nan"))
        scipy_us, torch_us = us.get("scipy", float("nan")), us.get("torch", float("nan"))
        ufunc_us = us.get("fastact ufunc", float("nan"))
        lines.append(f"| {r.label} | {r.dtype} | {size} | {us['fastact']:.2f} | {ufunc_us:.2f} | {numpy_us:.2f} "
                     f"| {scipy_us:.2f} | {torch_us:.2f} | {scipy_us / us['fastact']:.2f}x "
                     f"| {torch_us / us['fastact']:.2f}x |")
    return "\n".join(lines)


def _vector_width() -> str:
    """The widest vectors fastact's kernels use on this CPU, and the settings asked for
    (and the elementwise loops' interleave count)."""
    from ._config import INTERLEAVE

    return f"{_widest()}, interleave {INTERLEAVE or 'auto'} (FASTACT_INTERLEAVE)"


def _widest() -> str:
    import llvmlite.binding as llvm  # type: ignore[import-untyped]
    import numba

    from ._config import VECTOR_WIDTH

    config: Any = numba.config  # its settings are set at run time: numba's stubs lack them

    if config.CPU_NAME:  # a named target: its features are LLVM's, not the host's
        return f"FASTACT_VECTOR_WIDTH={VECTOR_WIDTH}, target {config.CPU_NAME}"
    features = llvm.get_host_cpu_features()
    isa = "AVX-512" if features.get("avx512f") else "AVX2" if features.get("avx2") else "SSE/other"
    widest = {"AVX-512": 512, "AVX2": 256}.get(isa, 128)
    if VECTOR_WIDTH == "native":
        return f"LLVM's choice ({isa}; FASTACT_VECTOR_WIDTH=native)"
    return f"{min(widest, int(VECTOR_WIDTH))} bits ({isa}; FASTACT_VECTOR_WIDTH={VECTOR_WIDTH})"


def environment() -> dict[str, str]:
    import numba

    from . import _tuning

    tuning = _tuning.with_speed_measured()  # as the first parallel call would
    f32, f64 = tuning.streamed_over_plain["relu"]
    info = {"python": platform.python_version(), "machine": platform.machine(), "cpu": _tuning.cpu_model(),
            "cores": str(os.cpu_count()), "numba target": _tuning.numba_target(), "vector width": _vector_width(),
            "threading layer": str(fastact.threading_layer()), "thresholds": tuning.source,
            "serial costs": tuning.speed_source,
            "streaming stores": f"relu streamed / plain: float32 {f32}, float64 {f64} ({tuning.streaming_source})",
            "numpy": np.__version__, "numba": numba.__version__, "fastact": fastact.__version__}
    for name in ("scipy", "torch", "jax", "numexpr"):
        module = _optional(name)
        if module is not None:
            info[name] = module.__version__
    if "torch" in info:  # the ISA of the ATen kernels it picked (ATEN_CPU_CAPABILITY restricts it)
        info["torch kernels"] = sys.modules["torch"].backends.cpu.get_cpu_capability()
    return info


def _comma_list(parse: Callable[[str], object], what: str) -> Callable[[str], list[Any]]:
    """An argparse type: a comma-separated list, each item through ``parse``; a clear
    error naming the item and what was expected, not a traceback."""

    def parse_list(text: str) -> list[Any]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"expected {what}, comma-separated; got nothing")
        values = []
        for item in items:
            try:
                values.append(parse(item))
            except (ValueError, OverflowError) as exc:
                raise argparse.ArgumentTypeError(f"{item!r} is not {what}{f' ({exc})' if str(exc) else ''}") from None
        return values

    return parse_list


def _count(text: str) -> int:
    value = float(text)  # 1e7 as well as 10000000
    if not value.is_integer() or value < 1:
        raise ValueError("")
    return int(value)


def _dtype(text: str) -> str:
    if text not in DTYPES:
        raise ValueError("fastact's kernels run float32 and float64; float16 and bfloat16 are computed in float32")
    return text


def _shape(text: str) -> tuple[int, ...]:
    parts = text.lower().split("x")
    if len(parts) != 2:
        raise ValueError("")
    return tuple(_count(p) for p in parts)


def _case(text: str) -> str:
    if text not in ALL_CASES:
        raise ValueError(f"choose from {', '.join(ALL_CASES)}")
    return text


def skipped_peers() -> dict[str, str]:
    """The peers that cannot be imported here, and how to install each."""
    return {name: how for name, how in PEERS.items()
            if _optional("scipy.special" if name == "scipy" else name) is None}


def _chart(results: list[Result], path: str) -> Any:
    """The speed-up chart at ``path`` (a .png beside the report), or None without matplotlib."""
    from pathlib import Path

    from . import plot

    try:
        return plot.plot_speedups(results, Path(path))
    except RuntimeError as exc:  # no matplotlib
        print(f"no chart: {exc}", file=sys.stderr)
        return None


def _job_label(job: Any) -> str:
    case, dtype, shape, threads = job
    return f"{case} {dtype} {shape} on {threads} thread{'s' if threads > 1 else ''}"


# the environment variables that change what a run measures, shown in its report's command
REPORTED_ENVIRONMENT = ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", "FASTACT_VECTOR_WIDTH", "FASTACT_INTERLEAVE", "FASTACT_TUNING",
                        "FASTACT_STREAM_MIN_BYTES", "NUMBA_THREADING_LAYER", "ATEN_CPU_CAPABILITY", "OMP_WAIT_POLICY")
REPORT_TITLE = "# fastact benchmarks"
REPORT_INTRO = """One section per CPU, each written by `python -m fastact bench --report BENCHMARKS.md` on
that CPU: a run replaces its own CPU's section (the same CPU model, Numba target and core
count) and keeps the others.  Not edited by hand.  A speed claim holds on the CPU it was
measured on."""
_SECTION = "<!-- cpu: {key} -->"


def cpu_key(env: dict[str, str]) -> str:
    """What tells this CPU's section of a report from another's."""
    return f"{env['cpu']} / {env['numba target']} / {env['cores']} cores"


def _slug(text: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


def merge_sections(existing: str, key: str, section: str) -> str:
    """The report with ``section`` (starting with its marker) in place of key's, or
    added after the others.  Text outside the CPUs' sections is not kept."""
    prefix, suffix = _SECTION.split("{key}")
    assert section.startswith(prefix + key + suffix)
    body = existing.split("\n", 1)[1] if existing.startswith(REPORT_TITLE) else existing
    sections = {}
    for part in body.split(prefix)[1:]:
        sections[part.split(suffix, 1)[0]] = (prefix + part).rstrip("\n") + "\n"
    sections[key] = section.rstrip("\n") + "\n"
    return "\n".join([REPORT_TITLE, "", REPORT_INTRO, "", *sections.values()])


def write_report(path: str, command: str, threads: int, repeats: int, results: list[Result],
                 one_thread: list[Result]) -> None:
    """Write (or replace) this CPU's section of the markdown report at ``path``."""
    from pathlib import Path

    env = environment()
    key = cpu_key(env)
    lines = [_SECTION.format(key=key), f"## {key}", "", f"Generated by `{command}`.", "",
             f"Medians of {repeats} samples, each of as many calls as last 0.2 ms; implementations alternate "
             "within each sample round, each round starting one later.", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in env.items()]
    lines += ["", "Roofline: the faster of `np.copyto` and a parallel Numba copy of one array; for `backward`",
              "cases `np.add(g, x, out=out)` (two inputs, one output).", "",
              f"### {threads} thread{'s' if threads > 1 else ''}", "", format_markdown(results), ""]
    if one_thread:
        lines += ["### 1 thread (small calls and in-cache sizes)", "", format_markdown(one_thread), ""]
        if any(r.n <= SMALL_CALL_MAX for r in one_thread):
            lines += ["### Small calls, 1 thread (microseconds per call, with `out=`)", "",
                      format_small_calls(one_thread), ""]
    chart = _chart(results + one_thread, str(Path(path).with_name(f"{Path(path).stem}-{_slug(key)}.png")))
    if chart:
        lines += [f"![fastact's speed-up over each peer on this CPU]({chart.name})", ""]
    report = Path(path)
    existing = report.read_text() if report.exists() else ""
    report.write_text(merge_sections(existing, key, "\n".join(lines)))


def main(argv: list[str] | None = None) -> int:
    import numba

    numba_config: Any = numba.config  # its settings are set at run time: numba's stubs lack them

    parser = argparse.ArgumentParser(prog="python -m fastact bench", description="Time fastact against its peers.")
    parser.add_argument("--ops", type=_comma_list(_case, "an op"), default=list(ALL_CASES),
                        help=f"comma-separated, from {', '.join(ALL_CASES)}")
    parser.add_argument("--dtypes", type=_comma_list(_dtype, "float32 or float64"), default=list(DTYPES))
    parser.add_argument("--sizes", type=_comma_list(_count, "a positive element count"), default=[1000, 10**5, 10**7],
                        help="element counts of elementwise ops, comma-separated (default 1e3,1e5,1e7)")
    parser.add_argument("--shapes", type=_comma_list(_shape, "a ROWSxCOLS shape"),
                        default=_comma_list(_shape, "")(DEFAULT_ROW_SHAPES),
                        help=f"ROWSxCOLS shapes of the softmax ops (default {DEFAULT_ROW_SHAPES})")
    parser.add_argument("--gated-shapes", type=_comma_list(_shape, "a ROWSxCOLS shape"),
                        default=_comma_list(_shape, "")(DEFAULT_GATED_SHAPES),
                        help=f"ROWSxCOLS shapes of the gated units, split along the last axis (default "
                             f"{DEFAULT_GATED_SHAPES})")
    parser.add_argument("--axis", type=_cli.int_between(-2, 1), default=-1, help="the axis of the softmax ops (default -1)")
    parser.add_argument("--threads", type=_cli.int_between(1, numba_config.NUMBA_NUM_THREADS),
                        default=fastact.get_num_threads())
    parser.add_argument("--one-thread-sizes", type=_comma_list(_count, "a positive element count"),
                        default=[16, 1000, 10_000],
                        help="also time the elementwise cases on one thread at these element counts, comma-separated "
                             "(default 16,1000,1e4: the small-call table; in cache: 1e5,1e6)")
    parser.add_argument("--busy", action="store_true",
                        help="instead: time single calls beside a CPU-bound process (median and 99th percentile, "
                             f"against one thread) for {', '.join(sorted({c for c, _ in BUSY_CASES}))}")
    parser.add_argument("--calls", type=_cli.int_between(10), default=1000, help="calls per case of --busy")
    parser.add_argument("--repeats", type=_cli.int_between(1), default=15)
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--markdown", action="store_true", help="also print a one-row-per-case markdown table")
    parser.add_argument("--report", metavar="FILE", help="write a markdown report (environment, command, table)")
    args = parser.parse_args(argv)
    cases, sizes, dtypes = args.ops, args.sizes, args.dtypes
    row_shapes: list[tuple[int, ...]] = args.shapes
    if any(cols % 2 for _, cols in args.gated_shapes):
        parser.error("argument --gated-shapes: the gated units split the columns in two halves: COLS must be even")
    if args.busy:
        busy = [r for d in dtypes for r in run_busy(BUSY_CASES, d, args.calls, args.threads)]
        print(f"beside a CPU-bound process, {args.calls} calls per case: " + ", ".join(
            f"{k} {v}" for k, v in environment().items()))
        print(format_busy(busy))
        if args.json:
            with open(args.json, "w") as fh:
                json.dump({"environment": environment(), "busy": [asdict(r) for r in busy]}, fh, indent=1)
        return 0
    for name, how in skipped_peers().items():
        print(f"skipping {name}: not installed ({how})", file=sys.stderr)
    def shapes(case: str) -> list[tuple[int, ...]]:
        name = case.partition(".")[0]
        if (name in ROW_OPS or name in ROW_REDUCTIONS or name in LOSSES
                or case.endswith(("bias", "bias_backward", "param_grads"))):
            return row_shapes
        gated_shapes: list[tuple[int, ...]] = args.gated_shapes
        return gated_shapes if name in GATED_OPS else [(n,) for n in sizes]

    jobs = [(c, d, shape, args.threads) for c in cases for d in dtypes for shape in shapes(c)]
    main_jobs = len(jobs)
    jobs += [(c, d, (n,), 1) for c in cases if c.partition(".")[0] in fastact.ACTIVATIONS
             and not c.endswith(("bias", "bias_backward", "param_grads"))
             for d in dtypes for n in args.one_thread_sizes]
    jobs += [(c, d, SMALL_BATCH, 1) for c in cases if c.partition(".")[0] in LOSSES
             or c.removesuffix(".backward") in ROW_OPS for d in dtypes]
    done = [run_case(c, d, shape, threads, args.repeats, axis=args.axis)
            for c, d, shape, threads in _cli.track(jobs, "benchmarking", _job_label)]
    results, one_thread = done[:main_jobs], done[main_jobs:]
    print(f"threads={args.threads}, repeats={args.repeats}, " + ", ".join(f"{k} {v}" for k, v in environment().items()))
    print(format_results(results + one_thread))
    if args.markdown:
        print()
        print(format_markdown(results))
        if one_thread:
            print()
            print(format_markdown(one_thread))
            print()
            print(format_small_calls(one_thread))
    if args.report:
        settings = "".join(f"{name}={os.environ[name]} " for name in REPORTED_ENVIRONMENT if os.environ.get(name))
        command = settings + "python -m fastact bench " + " ".join(argv if argv is not None else sys.argv[2:])
        write_report(args.report, command, args.threads, args.repeats, results, one_thread)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"environment": environment(), "threads": args.threads, "repeats": args.repeats,
                       "results": [asdict(r) for r in results + one_thread]}, fh, indent=1)
    return 0
