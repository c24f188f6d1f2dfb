"""Semantics at the edges: NaN/inf, dtypes, shapes and strides, out=, aliasing."""

import hashlib

import numpy as np
import pytest

import fastact
from fastact._activations import torch_function


def assert_same(actual, desired, backend, err_msg=""):
    """Bit-identical on the numba backend, whatever the layout (every layout is copied to
    one the kernels take).  NumPy's own loops round differently per layout (SIMD or not,
    summation order), so the numpy backend agrees to a few rounding errors."""
    if backend == "numba":
        np.testing.assert_array_equal(actual, desired, err_msg=err_msg)
    else:
        eps = np.finfo(np.asarray(desired).dtype).eps
        scale = np.nanmax(np.abs(desired)) if np.size(desired) else 0.0
        np.testing.assert_allclose(actual, desired, rtol=8 * eps, atol=8 * eps * scale, err_msg=err_msg)


ELEMENTWISE = list(fastact.ACTIVATIONS.values())
ROW_OPS = [fastact.softmax, fastact.log_softmax]


def _all_entry_points(op):
    """Every elementwise entry point as a function of x alone (g = 1)."""
    points = {
        "f": lambda x: op(x),
        "grad": lambda x: op.grad(x),
        "value": lambda x: op.value_and_grad(x)[0],
        "value_grad": lambda x: op.value_and_grad(x)[1],
        "backward_x": lambda x: op.backward(np.ones_like(x), x=x),
    }
    if op.supports_y():
        points["backward_y"] = lambda x: op.backward(np.ones_like(x), y=op(x))
    return points


@pytest.mark.parametrize("op", ELEMENTWISE, ids=lambda o: o.name)
def test_nan_in_gives_nan_out(backend, dtype, op):
    x = np.array([np.nan, 1.0, np.nan], dtype)
    for name, fn in _all_entry_points(op).items():
        out = fn(x)
        assert np.isnan(out[0]) and np.isnan(out[2]) and not np.isnan(out[1]), name
    g = np.array([np.nan, 1.0], dtype)
    assert np.isnan(op.backward(g, x=np.array([0.5, 0.5], dtype))[0])


def test_sigmoid_limits(backend, dtype):
    x = np.array([-np.inf, np.inf, -1000.0, 1000.0, 0.0, -0.0], dtype)
    np.testing.assert_array_equal(fastact.sigmoid(x), [0, 1, 0, 1, 0.5, 0.5])
    np.testing.assert_array_equal(fastact.sigmoid.grad(x), [0, 0, 0, 0, 0.25, 0.25])
    assert fastact.sigmoid(np.array(-np.inf, dtype)) == 0.0  # exactly 0, not a clamped tiny value


def test_sigmoid_of_large_negative_float_no_warning(backend):
    # pytest runs with -W error (pyproject filterwarnings), so any overflow warning fails here
    assert fastact.sigmoid(-1000.0) == 0.0
    assert fastact.sigmoid.grad(-1000.0) == 0.0
    assert fastact.sigmoid(np.float32(-1000.0)) == 0.0


def test_relu_edges(backend, dtype):
    x = np.array([-np.inf, -1.0, -0.0, 0.0, 2.0, np.inf], dtype)
    np.testing.assert_array_equal(fastact.relu(x), [0, 0, 0, 0, 2, np.inf])
    np.testing.assert_array_equal(fastact.relu.grad(x), [0, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(np.signbit(fastact.relu(x)), [0, 0, 1, 0, 0, 0])  # relu(-0.0) is -0.0
    assert np.isnan(fastact.relu(np.array(np.nan, dtype)))
    assert np.isnan(fastact.relu.grad(np.array(np.nan, dtype)))


def test_subnormal_inputs(backend, dtype):
    tiny = np.finfo(dtype).smallest_subnormal
    x = np.array([tiny, -tiny], dtype)
    np.testing.assert_array_equal(fastact.sigmoid(x), [0.5, 0.5])
    np.testing.assert_array_equal(fastact.relu(x), [tiny, 0])


@pytest.mark.parametrize("op", ELEMENTWISE + ROW_OPS, ids=lambda o: o.name)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_float_dtypes_are_kept(backend, op, dt):
    x = np.linspace(-3, 3, 12, dtype=dt).reshape(3, 4)
    assert op(x).dtype == dt


@pytest.mark.parametrize("op", ELEMENTWISE + ROW_OPS, ids=lambda o: o.name)
def test_float16_computes_in_float32(backend, op):
    x = np.linspace(-3, 3, 12, dtype=np.float16).reshape(3, 4)
    y = op(x)
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y, op(x.astype(np.float32)).astype(np.float16))


@pytest.mark.parametrize("op", ELEMENTWISE + ROW_OPS, ids=lambda o: o.name)
@pytest.mark.parametrize("value", [np.arange(-3, 4), np.arange(-3, 4).astype(np.uint8), np.array([True, False])])
def test_integers_and_bools_compute_in_float64(backend, op, value):
    y = op(value)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, op(value.astype(np.float64)))


def test_python_scalars_and_lists(backend):
    assert isinstance(fastact.sigmoid(0.0), np.float64)
    assert fastact.relu(-3) == 0.0
    np.testing.assert_array_equal(fastact.relu([[-1, 2], [3, -4]]), [[0, 2], [3, 0]])
    np.testing.assert_array_equal(fastact.sigmoid.backward([1.0, 2.0], x=[0.0, 0.0]), [0.25, 0.5])


def test_zero_dimensional_arrays(backend, dtype):
    y = fastact.sigmoid(np.array(0.0, dtype))
    assert y.shape == () and y == 0.5 and y.dtype == dtype
    v, d = fastact.sigmoid.value_and_grad(np.array(0.0, dtype))
    assert (v, d) == (0.5, 0.25)
    # softmax of a 0-d array is a one-element row, as in PyTorch
    assert fastact.softmax(np.array(3.0, dtype)) == 1.0
    assert fastact.log_softmax(np.array(3.0, dtype)) == 0.0
    out = np.empty((), dtype)
    assert fastact.relu(np.array(-2.0, dtype), out=out) is out and out == 0


@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 4), (2, 0, 3)])
def test_empty_arrays(backend, dtype, shape):
    x = np.empty(shape, dtype)
    for op in ELEMENTWISE:
        assert op(x).shape == shape
        assert op.backward(x, x=x).shape == shape
        v, d = op.value_and_grad(x)
        assert v.shape == d.shape == shape
    for op in ROW_OPS:
        assert op(x).shape == shape
        assert op(x, axis=0).shape == shape
        assert op.backward(x, x).shape == shape


def _layouts(base):
    return {
        "strided": base[::2, ::3],
        "negative": base[::-1, ::-2],
        "fortran": np.asfortranarray(base),
        "transposed": base.T,
        "3d-permuted": base.reshape(6, 5, 8).transpose(2, 0, 1),
    }


@pytest.mark.parametrize("op", ELEMENTWISE, ids=lambda o: o.name)
def test_any_strides_elementwise(backend, dtype, op):
    base = np.random.default_rng(0).normal(0, 3, (30, 8)).astype(dtype)
    for name, x in _layouts(base).items():
        c = np.ascontiguousarray(x)
        assert_same(op(x), op(c), backend, name)
        assert_same(op.grad(x), op.grad(c), backend, name)
        assert_same(op.backward(x, x=x), op.backward(c, x=c), backend, name)
        out = np.empty_like(x)  # keeps the layout
        op(x, out=out)
        assert_same(out, op(c), backend, name)
        strided_out = np.empty((x.shape[0] * 2,) + x.shape[1:], dtype)[::2]
        op(x, out=strided_out)
        assert_same(strided_out, op(c), backend, name)


@pytest.mark.parametrize("op", ROW_OPS, ids=lambda o: o.name)
def test_any_strides_rows(backend, dtype, op):
    base = np.random.default_rng(0).normal(0, 3, (30, 8)).astype(dtype)
    for name, x in _layouts(base).items():
        c = np.ascontiguousarray(x)
        for axis in range(-x.ndim, x.ndim):
            expected = op(c, axis=axis)
            assert_same(op(x, axis=axis), expected, backend, f"{name} axis {axis}")
            out = np.empty_like(x)
            assert op(x, axis=axis, out=out) is out
            assert_same(out, expected, backend, f"{name} axis {axis}")
            assert_same(op.backward(x, expected, axis=axis), op.backward(c, expected, axis=axis), backend)


@pytest.mark.parametrize("op", ELEMENTWISE, ids=lambda o: o.name)
def test_in_place(backend, dtype, op):
    x0 = np.random.default_rng(1).normal(0, 3, 1000).astype(dtype)
    for method in ("__call__", "grad"):
        x = x0.copy()
        assert getattr(op, method)(x, out=x) is x
        np.testing.assert_array_equal(x, getattr(op, method)(x0))
    x, g = x0.copy(), np.ones_like(x0)
    op.backward(g, x=x, out=x)
    np.testing.assert_array_equal(x, op.backward(np.ones_like(x0), x=x0))
    x, g = x0.copy(), x0 * 2
    op.backward(g, x=x, out=g)
    np.testing.assert_array_equal(g, op.backward(x0 * 2, x=x0))
    x = x0.copy()
    d = np.empty_like(x)
    op.value_and_grad(x, out=(x, d))
    np.testing.assert_array_equal(x, op(x0))
    np.testing.assert_array_equal(d, op.grad(x0))


@pytest.mark.parametrize("op", ROW_OPS, ids=lambda o: o.name)
def test_in_place_rows(backend, dtype, op):
    x0 = np.random.default_rng(2).normal(0, 3, (20, 30)).astype(dtype)
    for axis in (0, 1):
        x = x0.copy()
        op(x, axis=axis, out=x)
        np.testing.assert_array_equal(x, op(x0, axis=axis))
        y = op(x0, axis=axis)
        g = x0.copy()
        op.backward(g, y, axis=axis, out=g)
        np.testing.assert_array_equal(g, op.backward(x0, y, axis=axis))


def test_overlapping_out_gives_the_right_answer(backend, dtype):
    buf = np.random.default_rng(3).normal(0, 3, 1001).astype(dtype)
    expected = fastact.sigmoid(buf[:-1])
    fastact.sigmoid(buf[:-1], out=buf[1:])  # out shifted one element against x
    np.testing.assert_array_equal(buf[1:], expected)
    x = np.random.default_rng(4).normal(0, 3, 1000).astype(dtype)
    expected = fastact.sigmoid.backward(buf[:-1], x=x)
    fastact.sigmoid.backward(buf[:-1], x=x, out=buf[1:])  # out shifted against grad_out
    np.testing.assert_array_equal(buf[1:], expected)
    buf = np.random.default_rng(3).normal(0, 3, (11, 10)).astype(dtype)
    expected = fastact.softmax(buf[:-1])
    fastact.softmax(buf[:-1], out=buf[1:])
    np.testing.assert_array_equal(buf[1:], expected)


@pytest.mark.parametrize("op", ELEMENTWISE, ids=lambda o: o.name)
def test_backward_broadcasts_grad_out(backend, dtype, op):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(1, 5)).astype(dtype)
    g = rng.normal(size=(4, 1)).astype(dtype)
    expected = g * op.grad(x)
    np.testing.assert_allclose(op.backward(g, x=x), expected, rtol=4 * np.finfo(dtype).eps)
    assert op.backward(dtype(2.0), x=x).shape == x.shape
    if op.supports_y():
        np.testing.assert_allclose(op.backward(dtype(2.0), y=op(x)), 2 * op.grad(x), rtol=8 * np.finfo(dtype).eps)


def test_softmax_special_rows(backend, dtype):
    inf = np.inf
    x = np.array([[-inf, -inf, -inf], [1.0, inf, 0.0], [0.0, -inf, 0.0], [np.nan, 1.0, 2.0]], dtype)
    y = fastact.softmax(x)
    assert np.isnan(y[0]).all()  # all -inf: 0/0
    assert np.isnan(y[1]).all()  # inf - inf in the row
    np.testing.assert_array_equal(y[2], [0.5, 0.0, 0.5])
    assert np.isnan(y[3]).all()
    ly = fastact.log_softmax(x)
    assert np.isnan(ly[0]).all() and np.isnan(ly[1]).all() and np.isnan(ly[3]).all()
    np.testing.assert_allclose(ly[2], [-np.log(2), -inf, -np.log(2)], rtol=1e-6)


@pytest.mark.parametrize("n", [8, 16, 24, 31, 32, 128, 129])
def test_row_maximum_and_nan_found_anywhere_in_the_row(backend, dtype, n):
    """The row maximum (and a NaN) at the first entry, in the vectorised body and in
    the last entries a vector loop leaves to its remainder: rows of multiples of 8
    and not, short rows (blocks) and long ones."""
    positions = sorted({0, 1, n // 2, n - 8, n - 2, n - 1})
    x = np.random.default_rng(n).normal(0, 1, (2 * len(positions), n)).astype(dtype)
    for r, p in enumerate(positions):
        x[r, p] = 20.0
        x[len(positions) + r, p] = np.nan
    shifted = x.astype(np.float64) - x.astype(np.float64).max(axis=1, keepdims=True)
    exps = np.exp(shifted)
    exact = exps / exps.sum(axis=1, keepdims=True)
    log_exact = shifted - np.log1p(exps.sum(axis=1, keepdims=True) - 1.0)  # one entry is the maximum: 1
    top = slice(0, len(positions))
    rtol = 1e-5 if dtype == np.float32 else 1e-13
    y, ly = fastact.softmax(x), fastact.log_softmax(x)
    np.testing.assert_allclose(y[top], exact[top], rtol=rtol, atol=1e-30)
    # (atol: the NumPy fallback rounds log(sum) of a sum near 1, the maximum's own tiny entry)
    np.testing.assert_allclose(ly[top], log_exact[top], rtol=rtol, atol=4 * np.finfo(dtype).eps)
    assert (np.argmax(y[top], axis=1) == positions).all()
    assert np.isnan(y[len(positions):]).all() and np.isnan(ly[len(positions):]).all()
    assert (np.argmax(fastact.softmin(-x[top]), axis=1) == positions).all()
    lse = fastact.logsumexp(x, axis=1)
    np.testing.assert_allclose(lse[top], np.log(np.exp(x[top].astype(np.float64)).sum(axis=1)), rtol=rtol)
    assert np.isnan(lse[len(positions):]).all()


def test_softmax_special_rows_along_axis_0(backend, dtype):
    # the rows above as 64-element columns (padded with -inf, which leaves them as
    # they are): along axis 0 with 4 lanes the kernels run grouped lanes
    inf = np.inf
    rows = np.full((4, 64), -inf, dtype)
    rows[:, :3] = [[-inf, -inf, -inf], [1.0, inf, 0.0], [0.0, -inf, 0.0], [np.nan, 1.0, 2.0]]
    for op in (fastact.softmax, fastact.log_softmax):
        along_0 = op(np.ascontiguousarray(rows.T), axis=0)
        np.testing.assert_array_equal(along_0, op(rows).T, err_msg=op.name)
    np.testing.assert_array_equal(fastact.softmax(np.ascontiguousarray(rows.T), axis=0)[:3, 2], [0.5, 0.0, 0.5])


def test_softmax_of_large_values_does_not_overflow(backend, dtype):
    big = np.finfo(dtype).max
    x = np.array([big, big / 2, -big], dtype)
    np.testing.assert_array_equal(fastact.softmax(x), [1.0, 0.0, 0.0])
    assert fastact.log_softmax(x)[0] == 0.0


def test_softmax_sums_to_one_along_the_axis(backend, dtype):
    x = np.random.default_rng(5).normal(0, 10, (7, 300, 3)).astype(dtype)
    for axis in (0, 1, 2):
        np.testing.assert_allclose(fastact.softmax(x, axis=axis).sum(axis=axis), 1.0,
                                   rtol=1e-5 if dtype == np.float32 else 1e-13)


def _digest(arrays):
    return [hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest() for a in arrays]


def test_inputs_are_never_modified(backend, dtype):
    rng = np.random.default_rng(6)
    x = rng.normal(0, 3, (9, 13)).astype(dtype)
    g = rng.normal(size=(9, 13)).astype(dtype)
    xs = [x, x[::2], x.T, np.asfortranarray(x)]
    before = _digest(xs + [g])
    for op in ELEMENTWISE:
        for a in xs:
            op(a), op.grad(a), op.value_and_grad(a), op.backward(g[: a.shape[0]] if a.shape[1] == 13 else g.T, x=a)
            if op.supports_y():
                op.backward(np.ones_like(a), y=a)
    for op in ROW_OPS:
        for a in xs:
            op(a), op(a, axis=0), op.backward(np.ones_like(a), a)
    assert _digest(xs + [g]) == before
    fastact.sigmoid(x.astype(np.float16))
    fastact.sigmoid([1, 2, 3])
    assert _digest(xs + [g]) == before


def test_out_is_returned_and_filled(backend, dtype):
    x = np.linspace(-2, 2, 9, dtype=dtype)
    out = np.empty_like(x)
    assert fastact.sigmoid(x, out=out) is out
    np.testing.assert_array_equal(out, fastact.sigmoid(x))
    pair = (np.empty_like(x), np.empty_like(x))
    res = fastact.sigmoid.value_and_grad(x, out=pair)
    assert res[0] is pair[0] and res[1] is pair[1]
    half = np.empty(9, np.float16)
    fastact.relu(x.astype(np.float16), out=half)
    np.testing.assert_array_equal(half, fastact.relu(x).astype(np.float16))


@pytest.mark.parametrize("op", ELEMENTWISE + ROW_OPS, ids=lambda o: o.name)
def test_bfloat16_computes_in_float32(backend, op):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = np.linspace(-3, 3, 12).astype(ml_dtypes.bfloat16).reshape(3, 4)
    y = op(x)
    assert y.dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(y.astype(np.float32),
                                  op(x.astype(np.float32)).astype(ml_dtypes.bfloat16).astype(np.float32))


def _variants(op):
    return [{}] + ([{"approximate": "tanh"}] if op.name == "gelu" else [])


# PyTorch's value at -0.0 is +0.0: a constant on an interval (hardshrink's 0, threshold's
# value), x - tanh(x) = -0.0 - -0.0, relu(-0.0) ** 2
PLUS_ZERO = {"hardshrink", "threshold", "tanhshrink", "relu_squared"}


@pytest.mark.parametrize("op", ELEMENTWISE, ids=lambda o: o.name)
def test_signed_zero(backend, dtype, op):
    """Where f(0) = 0, f(-0.0) is -0.0 and f(0.0) is 0.0, as in PyTorch and NumPy
    (tanh, relu, elu, selu, celu, relu6 and softsign gave +0.0 for -0.0 before); the ops
    whose PyTorch definition gives 0.0 for both give 0.0 for both."""
    for kw in _variants(op):
        x = np.array([-0.0, 0.0], dtype)
        for y in (op(x, **kw), op.value_and_grad(x, **kw)[0], op(x[:1].reshape(()), **kw)):
            y = np.atleast_1d(y)
            if op.name in PLUS_ZERO:
                assert not np.signbit(y).any()
            elif y[0] == 0:
                np.testing.assert_array_equal(np.signbit(y), [True, False][:y.size], err_msg=f"{op.name} {kw}")
            else:
                assert np.signbit(y[0]) == np.signbit(y[-1])


@pytest.mark.parametrize("op", ELEMENTWISE, ids=lambda o: o.name)
def test_signed_zero_as_pytorch(op, dtype):
    torch = pytest.importorskip("torch")
    x = np.array([-0.0, 0.0], dtype)
    for kw in _variants(op):
        expected = torch_function(op._act, torch)(torch.from_numpy(x), **kw).numpy()
        np.testing.assert_array_equal(np.signbit(op(x, **kw)), np.signbit(expected), err_msg=f"{op.name} {kw}")


def test_float16_out_allocates_no_whole_array_copies(backend, steady_threads):
    """float16 (and bfloat16, and integer) inputs are converted to the compute dtype a
    chunk at a time: with out= nothing proportional to the input is allocated (a float32
    copy of the input and a float32 result, 4x the input, were allocated before)."""
    import tracemalloc

    def peak(call, n):
        x = np.linspace(-8, 8, n).astype(np.float16)
        out = np.empty_like(x)
        call(x, out)
        tracemalloc.start()
        try:
            call(x, out)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    for call in (lambda x, out: fastact.gelu(x, out=out), lambda x, out: fastact.sigmoid.backward(x, x=x, out=out),
                 lambda x, out: fastact.elu.grad(x, out=out)):
        small, large = peak(call, 1 << 20), peak(call, 1 << 22)
        assert large < 1.25 * small + (1 << 16), (small, large)  # chunk-sized, whatever the input's size
        if fastact.get_backend() == "numba":
            assert large < (1 << 22) * 2 / 4, large  # a quarter of the float16 input


@pytest.mark.parametrize("op", ELEMENTWISE, ids=lambda o: o.name)
def test_converted_in_chunks_across_layouts(backend, op):
    """The chunked conversion (more than one chunk) gives what a whole float32 copy gave,
    for strided, transposed and broadcast inputs, and in place."""
    rng = np.random.default_rng(7)
    x = (rng.normal(0, 4, (700, 300))).astype(np.float16)
    g = rng.normal(size=300).astype(np.float16)
    for v in (x, x.T, x[::2, ::3]):
        np.testing.assert_array_equal(op(v), op(v.astype(np.float32)).astype(np.float16))
        expected = op.backward(np.broadcast_to(g, x.shape).astype(np.float32)[: v.shape[0], : v.shape[1]]
                               if v.shape[1] <= 300 else g, x=v.astype(np.float32)).astype(np.float16) \
            if v.shape[1] == 300 else None
        if expected is not None:
            np.testing.assert_array_equal(op.backward(g, x=v), expected)
        value, grad = op.value_and_grad(v)
        np.testing.assert_array_equal(grad, op.grad(v.astype(np.float32)).astype(np.float16))
    ints = np.arange(-100000, 100000, 3)
    np.testing.assert_array_equal(op(ints), op(ints.astype(np.float64)))
    y = x.copy()
    assert op(y, out=y) is y
    np.testing.assert_array_equal(y, op(x))


def test_internal_casts_are_quiet():
    """Results beyond float16's range become inf without a warning or, under
    errstate(all="raise"), an error from fastact's own casts."""
    x = np.array([-6.4e4, 0.0, 6.4e4], np.float16)
    with np.errstate(all="raise"):
        for backend in ("numba", "numpy"):
            with fastact.use_backend(backend):
                assert fastact.selu(x)[2] == np.inf  # 1.0507 * 6.4e4 > 65504
                assert fastact.selu.value_and_grad(x)[0][2] == np.inf
                assert fastact.log_softmax(x)[0] == -np.inf  # -1.2e5
                out = np.empty(3, np.float16)
                fastact.log_softmax(x, out=out)
                assert out[0] == -np.inf
                rows = np.tile(x, (4, 1))
                assert fastact.softmax_cross_entropy(rows, np.zeros(4, int), reduction="sum") == np.inf
                loss, grad = fastact.softmax_cross_entropy.value_and_grad(rows, np.zeros(4, int), reduction="none")
                assert np.all(loss == np.inf)
                targets = np.array([1.0, 0.5, 0.0], np.float16)  # two losses of 6.4e4
                assert fastact.binary_cross_entropy_with_logits(x, targets, reduction="sum") == np.inf


@pytest.mark.parametrize("op", ROW_OPS, ids=lambda o: o.name)
@pytest.mark.parametrize("axis", [None, (0, 1), (0, 2), (2, 0), (1, 2), (0, 1, 2), (-1,), ()])
def test_rows_over_several_axes(backend, dtype, op, axis):
    """axis=None (every element) and tuples of axes, as SciPy's softmax takes them."""
    special = pytest.importorskip("scipy.special")
    rng = np.random.default_rng(5)
    x = rng.normal(0, 3, (3, 4, 5)).astype(dtype)
    g = rng.normal(size=(4, 5)).astype(dtype)  # broadcast against y
    theirs = special.softmax if op is fastact.softmax else special.log_softmax
    y = op(x, axis=axis)
    assert y.dtype == dtype and y.shape == x.shape
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(y, theirs(x.astype(np.float64), axis=axis), rtol=64 * eps, atol=8 * eps)
    reduce_axes = tuple(range(3)) if axis is None else axis
    gb = np.broadcast_to(g, x.shape).astype(np.float64)
    y64 = y.astype(np.float64)
    if op is fastact.softmax:
        expected = y64 * (gb - np.sum(gb * y64, axis=reduce_axes, keepdims=True))
    else:
        expected = gb - np.exp(y64) * np.sum(gb, axis=reduce_axes, keepdims=True)
    np.testing.assert_allclose(op.backward(g, y, axis=axis), expected, rtol=64 * eps, atol=64 * eps)
    out = np.empty_like(x)
    assert op(x, axis=axis, out=out) is out
    np.testing.assert_array_equal(out, y)
    if axis is None:
        assert op(np.float32(2.0), axis=None) == (1.0 if op is fastact.softmax else 0.0)


def test_rows_over_several_axes_of_dask():
    da = pytest.importorskip("dask.array")
    x = np.random.default_rng(6).normal(size=(6, 4, 5))
    dx = da.from_array(x, chunks=(2, 3, 5))
    for op in ROW_OPS:
        for axis in (None, (0, 2)):
            result = op(dx, axis=axis)
            assert isinstance(result, da.Array)
            np.testing.assert_allclose(result.compute(), op(x, axis=axis), rtol=1e-14, atol=1e-300)
            np.testing.assert_allclose(op.backward(dx, result, axis=axis).compute(),
                                       op.backward(x, op(x, axis=axis), axis=axis), rtol=1e-13, atol=1e-15)


def test_dim_is_another_name_of_axis(backend):
    x = np.random.default_rng(8).normal(size=(3, 4))
    for op in ROW_OPS:
        np.testing.assert_array_equal(op(x, dim=0), op(x, axis=0))
        np.testing.assert_array_equal(op.backward(x, x, dim=0), op.backward(x, x, axis=0))
        with pytest.raises(TypeError, match=rf"^{op.name}\(\) got both axis=0 and dim=1"):
            op(x, axis=0, dim=1)
        with pytest.raises(TypeError, match=rf"^{op.name}\(\) got an unexpected keyword argument 'keepdims'"):
            op(x, keepdims=True)
        with pytest.raises(TypeError, match=rf"^{op.name}\.backward\(\) got an unexpected keyword argument 'x'"):
            op.backward(x, x, x=x)
