"""Calls in place: an output that is one of the inputs (op(x, out=x), op.backward(g, x,
out=g)).  Their results are the out-of-place results, bit for bit, serial and
parallel; and the loops that run them read the input through the output, so that
LLVM has no overlap to check (where it finds one it runs its scalar loop, which
took sigmoid and gelu 7-28x their time)."""

import re

import numpy as np
import pytest

import fastact
from fastact import _activations, _backend, _kernels

# (op, parameters): a plain "map" loop, one with a parameter, and "times" loops
# and silu, whose loops run in two stages (the first stage's values wait in the output)
OPS = [("sigmoid", {}), ("leaky_relu", {"negative_slope": 0.2}), ("elu", {}), ("gelu", {}), ("silu", {})]
SIZES = [1000, 300_000]  # a serial call (the ufunc) and a parallel one (the kernels)


def _x(n, dtype):
    return np.linspace(-6, 6, n).astype(dtype)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name,params", OPS, ids=[name for name, _ in OPS])
def test_forward_grad_and_value_and_grad_in_place(backend, dtype, name, params, n):
    op = getattr(fastact, name)
    x = _x(n, dtype)
    for entry in (op, op.grad):
        expected = entry(x, **params)
        y = x.copy()
        assert entry(y, out=y, **params) is y
        np.testing.assert_array_equal(y, expected)
    value, grad = op.value_and_grad(x, **params)
    for first in (True, False):
        y, other = x.copy(), np.empty_like(x)
        out = (y, other) if first else (other, y)
        op.value_and_grad(y, out=out, **params)
        np.testing.assert_array_equal(out[0], value)
        np.testing.assert_array_equal(out[1], grad)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name,params", OPS, ids=[name for name, _ in OPS])
def test_backward_in_place_over_either_input(backend, dtype, name, params, n):
    op = getattr(fastact, name)
    x = _x(n, dtype)
    g = np.cos(x)
    froms = [("x", x)] + ([("y", op(x, **params))] if _activations.ELEMENTWISE[name].df_from_y else [])
    for arg, v in froms:
        expected = op.backward(g, **{arg: v}, **params)
        g_in = g.copy()
        assert op.backward(g_in, **{arg: v}, out=g_in, **params) is g_in
        np.testing.assert_array_equal(g_in, expected)
        v_in = v.copy()
        op.backward(g, **{arg: v_in}, out=v_in, **params)
        np.testing.assert_array_equal(v_in, expected)


def test_a_view_of_x_as_out_counts_as_in_place(backend):
    x = _x(300_000, np.float32).reshape(600, 500)
    expected = fastact.tanh(x)
    y = x.copy()
    fastact.tanh(y, out=y.reshape(600, 500)[:])  # another ndarray, the same memory
    np.testing.assert_array_equal(y, expected)


def _ir(kernel):
    """The LLVM IR of a compiled kernel, with its parallel loops' (Numba compiles a
    parfor's body into a library of its own)."""
    library = kernel.overloads[kernel.signatures[-1]].library
    return "".join(lib.get_llvm_str() for lib in [library, *getattr(library, "_linking_libraries", ())])


@pytest.mark.skipif(_backend.numba is None or _backend.numba.config.DISABLE_JIT, reason="compiled code")
@pytest.mark.parametrize("name,kind,same", [("sigmoid", "forward", (0, 0)), ("sigmoid", "backward_x", (0, 0)),
                                            ("sigmoid", "backward_x", (0, 1))])  # map, over one and two inputs
def test_in_place_kernels_have_no_overlap_check(name, kind, same):
    spec = _activations.KINDS[kind]
    arrays = [np.ones(256, np.float32) for _ in range(len(spec.inputs) + spec.outputs)]
    # fresh dispatchers: the IR is read once compiled
    plain = _kernels.elementwise_kernel.__wrapped__(name, kind, True, cache=False)
    in_place = _kernels.map_in_place_kernel.__wrapped__(name, kind, True, same, cache=False)
    plain(*arrays, ())
    arrays[len(spec.inputs) + same[0]] = arrays[same[1]]
    in_place(*arrays, ())
    # LLVM's run-time overlap test ("diff.check"): the loop over distinct arrays has
    # one (it runs the scalar loop in place), the loop over one array none
    assert re.search(r"diff\.check", _ir(plain))
    assert not re.search(r"diff\.check", _ir(in_place))


@pytest.mark.skipif(_backend.numba is None or _backend.numba.config.DISABLE_JIT, reason="compiled code")
@pytest.mark.parametrize("name,kind", [("elu", "value_and_grad"), ("elu", "backward_x"), ("gelu", "backward_x")])
def test_kernels_of_separate_array_arguments_need_no_twin(name, kind):
    # the pair and times loops take their arrays as arguments, not a tuple: LLVM
    # compiles them with no overlap test, and they run in place at full speed as they are
    # (formulas in two stages run in place in one: test_staged_loops_run_in_place_in_one_stage)
    spec = _activations.KINDS[kind]
    assert spec.loop(_activations.ELEMENTWISE[name])[0] in ("pair", "times")
    kernel = _kernels.elementwise_kernel.__wrapped__(name, kind, True, cache=False)
    params = tuple(p.default for p in _activations.ELEMENTWISE[name].params)
    kernel(*[np.ones(256, np.float32) for _ in range(len(spec.inputs) + spec.outputs)], params)
    assert not re.search(r"diff\.check", _ir(kernel))
    assert _kernels.in_place_kernel(name, kind, True, (0, 0)) is _kernels.elementwise_kernel(name, kind, True)


@pytest.mark.parametrize("kind", ["value_and_grad", "backward_x"])
def test_staged_loops_run_in_place_in_one_stage(kind):
    # a staged kernel keeps its first stage's values in an output, so in place it would
    # overwrite its input: in-place calls take the one-stage kernel
    assert _kernels.staged_loop(*_activations.KINDS[kind].loop(_activations.ELEMENTWISE["silu"])) is not None
    assert (_kernels.in_place_kernel("silu", kind, True, (0, 0))
            is _kernels.elementwise_kernel("silu", kind, True, staged=False))


@pytest.mark.parametrize("n", SIZES)
def test_bias_and_prelu_in_place(backend, dtype, n):
    x = _x(n, dtype).reshape(-1, 100)
    b = np.linspace(-1, 1, 100).astype(dtype)
    g = np.cos(x)
    for op in (fastact.sigmoid, fastact.gelu, fastact.relu):
        expected = op(x, bias=b)
        y = x.copy()
        assert op(y, bias=b, out=y) is y
        np.testing.assert_array_equal(y, expected)
        dx, dbias = op.backward(g, x=x, bias=b)
        for which in ("grad_out", "x"):
            g_in, x_in = g.copy(), x.copy()
            target = g_in if which == "grad_out" else x_in
            got = op.backward(g_in, x=x_in, bias=b, out=(target, np.empty_like(b)))
            np.testing.assert_array_equal(got[0], dx)
            np.testing.assert_allclose(got[1], dbias, rtol=1e-12 if dtype == np.float64 else 1e-5)
    w = np.linspace(0.05, 0.3, 100).astype(dtype)
    expected = fastact.prelu(x, w, axis=-1)
    y = x.copy()
    fastact.prelu(y, w, axis=-1, out=y)
    np.testing.assert_array_equal(y, expected)
    expected = fastact.prelu.backward(g, x, w, axis=-1)
    g_in = g.copy()
    fastact.prelu.backward(g_in, x, w, axis=-1, out=g_in)
    np.testing.assert_array_equal(g_in, expected)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name", ["leaky_relu", "elu", "softplus"])
def test_parameter_gradients_in_place(backend, n, name):
    # they read grad_out and x after the output is written: in place they were wrong
    op = getattr(fastact, name)
    x = _x(n, np.float64)
    g = np.cos(3 * x)
    dx, grads = op.backward(g, x=x, param_grads=True)
    for which in ("grad_out", "x"):
        g_in, x_in = g.copy(), x.copy()
        got_dx, got_grads = op.backward(g_in, x=x_in, param_grads=True, out=g_in if which == "grad_out" else x_in)
        np.testing.assert_array_equal(got_dx, dx)
        assert got_grads.keys() == grads.keys()
        for key in grads:
            np.testing.assert_allclose(got_grads[key], grads[key], rtol=1e-12)
    w = np.full(10, 0.2)
    xw = x.reshape(-1, 10)
    gw = g.reshape(-1, 10)
    dx, dw = fastact.prelu.backward(gw, xw, w, axis=-1, param_grads=True)
    g_in = gw.copy()
    got_dx, got_dw = fastact.prelu.backward(g_in, xw, w, axis=-1, param_grads=True, out=g_in)
    np.testing.assert_array_equal(got_dx, dx)
    assert got_dw.keys() == dw.keys()
    for key in dw:
        np.testing.assert_allclose(got_dw[key], dw[key], rtol=1e-12)
