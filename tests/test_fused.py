"""Fused entry points equal the unfused ones, and allocate nothing but their outputs."""

import tracemalloc

import numpy as np
import pytest

import fastact

from .conftest import assert_ulp_close

ELEMENTWISE = list(fastact.ACTIVATIONS.values())


def _sample(dtype, n=2000, seed=0):  # below every op's parallel threshold: serial kernels only
    rng = np.random.default_rng(seed)
    span = 100 if dtype == np.float32 else 700
    x = np.concatenate([rng.normal(0, 5, n // 2), rng.uniform(-span, span, n // 2)]).astype(dtype)
    return x, rng.uniform(-2, 2, n).astype(dtype)


@pytest.mark.parametrize("op", ELEMENTWISE, ids=lambda o: o.name)
def test_value_and_grad_equals_op_and_grad(backend, dtype, op):
    x, _ = _sample(dtype)
    value, grad = op.value_and_grad(x)
    np.testing.assert_array_equal(value, op(x))
    np.testing.assert_array_equal(grad, op.grad(x))


@pytest.mark.parametrize("op", [fastact.sigmoid, fastact.relu, fastact.gelu], ids=lambda o: o.name)
def test_parallel_kernels_give_the_serial_results(dtype, op):
    # 3e5 elements run the parallel kernels wherever there are threads; each kind is
    # the serial kernel's bits (a parallel kernel once lost the writes to one of its
    # two outputs and returned uninitialised memory)
    from fastact import _kernels

    x, g = _sample(dtype, n=300_000)
    value, grad = op.value_and_grad(x)
    np.testing.assert_array_equal(value, op(x))
    np.testing.assert_array_equal(grad, op.grad(x))
    params = tuple(p.default for p in op._act.params)
    for kind, ins, result in (("forward", (x,), value), ("value_and_grad", (x,), (value, grad)),
                              ("backward_x", (g, x), op.backward(g, x=x))):
        expected = result if isinstance(result, tuple) else (result,)
        outs = tuple(np.empty_like(x) for _ in expected)
        _kernels.elementwise_kernel(op.name, kind, False)(*ins, *outs, params)
        for out, want in zip(outs, expected):
            np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("op", ELEMENTWISE, ids=lambda o: o.name)
def test_backward_from_x_equals_grad_out_times_grad(backend, dtype, op):
    x, g = _sample(dtype)
    fused = op.backward(g, x=x)
    # g * f'(x) with f'(x) rounded first: one rounding apart from the fused result
    assert_ulp_close(fused, g * op.grad(x), 3)


@pytest.mark.parametrize("op", [op for op in ELEMENTWISE if op.supports_y()], ids=lambda o: o.name)
def test_backward_from_y_agrees_with_backward_from_x(backend, dtype, op):
    x, g = _sample(dtype)
    from_x = op.backward(g, x=x).astype(np.float64)
    from_y = op.backward(g, y=op(x)).astype(np.float64)
    eps = np.finfo(dtype).eps
    # f' from y agrees relatively wherever y still carries the information.  Where y
    # saturates (y -> 1 for sigmoid and tanh, y -> -alpha for the ELUs) f' = 1 - y**2,
    # y (1 - y), y + alpha cancel, and y holds only an absolute error of about eps:
    # there the bound is absolute, in units of |g| (f' is at most 2 for every op).
    assert np.all(np.abs(from_y - from_x) <= 8 * eps * np.abs(from_x) + 4 * eps * np.abs(g) * 2)


def test_relu_backward_passes_grad_where_positive(backend, dtype):
    x = np.array([-2.0, -0.0, 0.0, 1e-30, 3.0], dtype)
    g = np.array([5.0, 5.0, 5.0, 5.0, 5.0], dtype)
    np.testing.assert_array_equal(fastact.relu.backward(g, x=x), [0, 0, 0, 5, 5])
    np.testing.assert_array_equal(fastact.relu.backward(g, y=fastact.relu(x)), [0, 0, 0, 5, 5])


def test_sigmoid_backward_far_tail(dtype):
    # exact value g * e^x / (1 + e^x)^2, far into the tail where y * (1 - y) is useless
    import mpmath

    mpmath.mp.prec = 120
    x = np.array([-30.0, -60.0, -85.0] if dtype == np.float32 else [-60.0, -500.0, -700.0], dtype)
    g = np.array([1.5, -0.75, 1.25], dtype)
    exact = np.array([float(gi * mpmath.exp(xi) / (1 + mpmath.exp(xi)) ** 2) for gi, xi in zip(g.tolist(), x.tolist())])
    assert_ulp_close(fastact.sigmoid.backward(g, x=x), exact.astype(dtype), 4)


@pytest.mark.parametrize("op", [fastact.softmax, fastact.log_softmax], ids=lambda o: o.name)
def test_row_backward_matches_unfused_numpy(backend, dtype, op):
    rng = np.random.default_rng(3)
    x = rng.normal(0, 3, (50, 70)).astype(dtype)
    g = rng.normal(size=(50, 70)).astype(dtype)
    y = op(x)
    y64, g64 = y.astype(np.float64), g.astype(np.float64)
    if op is fastact.softmax:
        expected = y64 * (g64 - np.sum(g64 * y64, axis=-1, keepdims=True))
    else:
        expected = g64 - np.exp(y64) * np.sum(g64, axis=-1, keepdims=True)
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(op.backward(g, y), expected, rtol=64 * eps, atol=64 * eps * np.abs(expected).max())


def _peak_allocation(fn):
    """Bytes NumPy allocated at the peak of ``fn()`` (NumPy reports its buffers to tracemalloc)."""
    fn()  # compile and warm up outside the measurement
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = fn()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    del result
    return peak


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_fused_ops_allocate_only_their_outputs(dtype, steady_threads):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 500)).astype(dtype)
    g = rng.normal(size=x.shape).astype(dtype)
    y = fastact.softmax(x)
    labels = rng.integers(0, 500, 1000)
    nbytes = x.nbytes
    slack = 64 * 1024  # small Python objects, views and the per-row losses
    out_buf = np.empty_like(x)
    with fastact.use_backend("numba"):
        cases = {
            "sigmoid.backward(x=)": (lambda: fastact.sigmoid.backward(g, x=x), 1),
            "sigmoid.backward(y=)": (lambda: fastact.sigmoid.backward(g, y=x), 1),
            "gelu.backward": (lambda: fastact.gelu.backward(g, x=x), 1),
            "silu.value_and_grad": (lambda: fastact.silu.value_and_grad(x), 2),
            "softmax": (lambda: fastact.softmax(x), 1),
            "softmax.backward": (lambda: fastact.softmax.backward(g, y), 1),
            "log_softmax.backward": (lambda: fastact.log_softmax.backward(g, y), 1),
            "softmax_cross_entropy.value_and_grad": (
                lambda: fastact.softmax_cross_entropy.value_and_grad(x, labels), 1),
            "binary_cross_entropy_with_logits.value_and_grad": (
                lambda: fastact.binary_cross_entropy_with_logits.value_and_grad(x, g), 1),
            "sigmoid(out=)": (lambda: fastact.sigmoid(x, out=out_buf), 0),
        }
        for name, (fn, outputs) in cases.items():
            peak = _peak_allocation(fn)
            assert peak <= outputs * nbytes + slack, f"{name}: {peak} bytes for {outputs} output(s) of {nbytes}"
