"""bias= on the elementwise ops (issue 20, item 3): f(x + b) in one pass, and (dx, dbias)."""

import math

import numpy as np
import pytest

import fastact
from fastact import _bias, _config

from .conftest import ulp_distance

OPS = sorted(fastact.ACTIVATIONS)


def _unbroadcast64(dx, shape):
    """dx summed in float64 over the axes a bias of ``shape`` is broadcast along."""
    lead = dx.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + d for d, n in enumerate(shape) if n == 1 and dx.shape[lead + d] != 1)
    return np.sum(np.asarray(dx, np.float64), axis=axes).reshape(shape)


def _exact_sums(dx, shape):
    """The correctly rounded float64 sums (math.fsum) of dx over the bias's broadcast axes."""
    aligned = (1,) * (dx.ndim - len(shape)) + tuple(shape)
    summed = [d for d in range(dx.ndim) if aligned[d] == 1 and dx.shape[d] != 1]
    moved = np.moveaxis(np.asarray(dx, np.float64), summed, list(range(len(summed))))
    columns = moved.reshape(math.prod(moved.shape[:len(summed)]), -1)
    return np.array([math.fsum(columns[:, j]) for j in range(columns.shape[1])]).reshape(shape)


@pytest.mark.parametrize("name", OPS)
def test_every_op_with_bias_is_the_op_of_x_plus_bias_bit_for_bit(name, dtype):
    """f(x + b) is op(x + b) with x + b rounded in x's dtype; the backward's dx is
    backward(g, x=x + b), and dbias is dx summed over the rows."""
    op = fastact.ACTIVATIONS[name]
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((37, 19)) * 4).astype(dtype)
    x[0, :6] = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30]
    b = (rng.standard_normal(19) * 2).astype(dtype)
    b[7] = -0.0
    g = rng.standard_normal(x.shape).astype(dtype)
    v = x + b
    y = op(x, bias=b)
    assert y.dtype == dtype and y.shape == x.shape
    np.testing.assert_array_equal(y, op(v))
    dx, db = op.backward(g, x=x, bias=b)
    assert dx.dtype == dtype and db.dtype == dtype and db.shape == b.shape
    np.testing.assert_array_equal(dx, op.backward(g, x=v))
    expected = _exact_sums(dx, b.shape).astype(dtype)
    assert ulp_distance(db, expected).max() <= (1 if dtype == np.float32 else 2)


@pytest.mark.parametrize("name", ["sigmoid", "gelu", "softplus", "elu"])
def test_grad_value_and_grad_and_backward_from_y(name, dtype, backend):
    op = fastact.ACTIVATIONS[name]
    rng = np.random.default_rng(4)
    x = rng.standard_normal((9, 5, 3)).astype(dtype)
    b = rng.standard_normal((5, 1)).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    v = x + b
    np.testing.assert_array_equal(op.grad(x, bias=b), op.grad(v))
    y, d = op.value_and_grad(x, bias=b)
    np.testing.assert_array_equal(y, op(v))
    np.testing.assert_array_equal(d, op.grad(v))
    # a bias as a list takes the general path (the kernels) where an array of x's dtype
    # of a serial size takes the ufuncs
    np.testing.assert_array_equal(op(x, bias=b.tolist()), y)
    np.testing.assert_array_equal(op.grad(x, bias=b.tolist()), d)
    np.testing.assert_array_equal(op.value_and_grad(x, bias=b.tolist())[1], d)
    if op.supports_y():
        dx, db = op.backward(g, y=y, bias=b)
        np.testing.assert_array_equal(dx, op.backward(g, y=y))
        np.testing.assert_allclose(db, _unbroadcast64(dx, b.shape), rtol=1e-6 if dtype == np.float32 else 1e-14)


LAYOUTS = [
    ((64, 33), (33,)),  # a bias per feature: by column
    ((4, 6, 300), (6, 1)),  # a bias per channel, planes of 300
    ((4, 6, 20), (6, 1)),  # short planes: each bias repeated into a row
    ((3, 4, 5, 6), (4, 1, 1)),  # NCHW's channel axis
    ((5, 4, 7), (5, 1, 7)),  # varying along axes apart: broadcast over the block between them
    ((2, 3, 4), (1, 3, 4)),  # leading 1s
    ((50, 40), ()),  # a scalar
    ((50, 40), (1, 1)),
    ((6, 7), (6, 7)),  # x's own shape
    ((30000,), (30000,)),
    ((1, 70000), (1,)),  # one plane, split into column blocks
    ((3, 1, 5), (1, 5)),
    ((), ()),
    ((0, 5), (5,)),  # empty
    ((5, 0), (1, 0)),
]


@pytest.mark.parametrize("shape,bias_shape", LAYOUTS)
def test_every_layout_of_the_bias(shape, bias_shape, backend):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape)
    b = rng.standard_normal(bias_shape)
    g = rng.standard_normal(shape)
    y = fastact.silu(x, bias=b)
    np.testing.assert_array_equal(y, fastact.silu(x + b))
    np.testing.assert_array_equal(fastact.silu(x, bias=b.tolist()), y)  # the general path: the kernels
    np.testing.assert_array_equal(fastact.silu.value_and_grad(x, bias=b.tolist())[1], fastact.silu.grad(x + b))
    dx, db = fastact.silu.backward(g, x=x, bias=b)
    np.testing.assert_array_equal(dx, fastact.silu.backward(g, x=x + b))
    assert db.shape == b.shape and db.dtype == np.float64
    if dx.size:
        np.testing.assert_allclose(db, _exact_sums(dx, bias_shape), rtol=1e-14, atol=1e-13)
    else:
        np.testing.assert_array_equal(db, np.zeros(bias_shape))
    if backend == "numba":
        np.testing.assert_array_equal(fastact.silu(np.asfortranarray(x), bias=b), y)  # any layout of x


@pytest.mark.parametrize("shape,bias_shape", [((8192, 96), (96,)), ((16, 8, 4096), (8, 1)), ((1, 1 << 20), ())])
def test_the_parallel_kernel_gives_the_serial_kernels_bits(shape, bias_shape, dtype):
    """Tasks and partial sums depend on the shape alone: the same bits on any thread count."""
    from fastact import _kernels

    rng = np.random.default_rng(6)
    x, g = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    b = rng.standard_normal(bias_shape).astype(dtype)
    lay = _bias.layout(shape, b.shape, True)
    results = []
    for parallel in (False, True):
        dx, partial = np.empty(shape, dtype), lay.partial()
        _kernels.bias_kernel("tanh", "backward_x", parallel)(
            g.reshape(-1), x.reshape(-1), dx.reshape(-1), lay.bias_values(b), partial, (), lay.rows, lay.length,
            lay.channels, lay.rb, lay.cb, lay.by_column)
        results.append((dx, lay.bias_gradient(partial)))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
    dx, db = fastact.tanh.backward(g, x=x, bias=b)
    np.testing.assert_array_equal(dx, results[0][0])
    np.testing.assert_array_equal(db, results[0][1].astype(dtype))
    # summed in float64 with the errors carried: float32 sums are correctly rounded (within 1 ULP),
    # float64 ones within 4 eps of the sum of |dx| (the error a sum's condition multiplies)
    exact = _exact_sums(dx, bias_shape)
    if dtype == np.float32:
        assert ulp_distance(db, exact.astype(dtype)).max() <= 1
    else:
        assert (np.abs(db - exact) <= 4 * np.finfo(dtype).eps * _exact_sums(np.abs(dx), bias_shape)).all()


@pytest.mark.parametrize("kind", ["forward", "grad", "value_and_grad", "backward_y"])
def test_parallel_calls_of_every_kind(kind, dtype):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((4096, 96)).astype(dtype)
    b = rng.standard_normal(96).astype(dtype)
    v = x + b
    if kind == "forward":
        np.testing.assert_array_equal(fastact.sigmoid(x, bias=b), fastact.sigmoid(v))
    elif kind == "grad":
        np.testing.assert_array_equal(fastact.sigmoid.grad(x, bias=b), fastact.sigmoid.grad(v))
    elif kind == "value_and_grad":
        y, d = fastact.sigmoid.value_and_grad(x, bias=b)
        np.testing.assert_array_equal(y, fastact.sigmoid(v))
        np.testing.assert_array_equal(d, fastact.sigmoid.grad(v))
    else:
        y, g = fastact.sigmoid(v), rng.standard_normal(x.shape).astype(dtype)
        dx, db = fastact.sigmoid.backward(g, y=y, bias=b)
        np.testing.assert_array_equal(dx, fastact.sigmoid.backward(g, y=y))
        np.testing.assert_allclose(db, _exact_sums(dx, b.shape), rtol=1e-6 if dtype == np.float32 else 1e-13)


def test_the_numpy_backend_agrees(dtype):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((40, 30)).astype(dtype)
    b, g = rng.standard_normal(30).astype(dtype), rng.standard_normal((40, 30)).astype(dtype)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for name in ("sigmoid", "gelu", "mish", "relu", "leaky_relu"):
        op = fastact.ACTIVATIONS[name]
        y, (dx, db) = op(x, bias=b), op.backward(g, x=x, bias=b)
        with fastact.use_backend("numpy"):
            ny, (ndx, ndb) = op(x, bias=b), op.backward(g, x=x, bias=b)
            np.testing.assert_array_equal(ny, op(x + b))
            np.testing.assert_array_equal(ndx, op.backward(g, x=x + b))
        np.testing.assert_allclose(ny, y, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(ndx, dx, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(ndb, db, rtol=rtol, atol=10 * rtol)


@pytest.mark.parametrize("name,params", [("sigmoid", {}), ("gelu", {"approximate": "tanh"}), ("elu", {"alpha": 0.7}),
                                         ("softplus", {"beta": 2.0, "threshold": 5.0}), ("relu", {})])
def test_values_and_gradients_equal_pytorch_autograd(name, params, dtype):
    """PyTorch's autograd of f(x + b): the values and dx to the ops' accuracy (PyTorch's
    own float32 formulas are the looser ones), dbias its sum."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    x = (rng.standard_normal((64, 3, 10)) * 3).astype(dtype)
    b = rng.standard_normal((3, 1)).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    tb = torch.from_numpy(b.copy()).requires_grad_(True)
    ty = getattr(torch.nn.functional, name)(tx + tb, **params)
    ty.backward(torch.from_numpy(g))
    op = fastact.ACTIVATIONS[name]
    # PyTorch's sigmoid' (y (1 - y)) and gelu's tanh form lose digits in the tails, where
    # fastact's are exact (ACCURACY.md): the comparison is of the semantics, loosely
    tol = 1e-3 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(op(x, bias=b, **params), ty.detach().numpy(), rtol=tol, atol=tol)
    dx, db = op.backward(g, x=x, bias=b, **params)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(db, tb.grad.numpy(), rtol=tol, atol=tol * np.abs(dx).sum())


def test_dtypes_out_and_inputs_untouched():
    rng = np.random.default_rng(9)
    x16 = rng.standard_normal((8, 4)).astype(np.float16)
    b = rng.standard_normal(4).astype(np.float32)
    assert fastact.sigmoid(x16, bias=b).dtype == np.float16
    np.testing.assert_array_equal(fastact.sigmoid(x16, bias=b),
                                  fastact.sigmoid(x16.astype(np.float32) + b).astype(np.float16))
    ints = np.arange(-4, 4).reshape(2, 4)
    assert fastact.relu(ints, bias=[1, 2, 3, 4]).dtype == np.float64
    # the gradient of a bias has the bias's float dtype (x's result dtype for integer biases)
    x64 = rng.standard_normal((8, 4))
    assert fastact.tanh.backward(x64, x=x64, bias=b)[1].dtype == np.float32
    assert fastact.tanh.backward(x64, x=x64, bias=[1, 2, 3, 4])[1].dtype == np.float64
    # out=: the result, or a pair for the backward; x itself may be out
    x = rng.standard_normal((8, 4))
    keep_x, keep_b = x.copy(), b.copy()
    o = np.empty_like(x)
    assert fastact.gelu(x, bias=b, out=o) is o
    np.testing.assert_array_equal(x, keep_x)
    np.testing.assert_array_equal(b, keep_b)
    np.testing.assert_array_equal(o, fastact.gelu(x + b.astype(np.float64)))
    pair = (np.empty_like(x), np.empty(4))
    assert fastact.gelu.backward(x, x=x, bias=np.float64(1) * b, out=pair) is pair
    np.testing.assert_array_equal(pair[0], fastact.gelu.backward(x, x=x + b.astype(np.float64)))
    y = x.copy()
    fastact.silu(y, bias=b, out=y)
    np.testing.assert_array_equal(y, fastact.silu(x + b.astype(np.float64)))
    # grad_out broadcasts against x, and the bias against the result
    dx, db = fastact.sigmoid.backward(np.ones(4), x=x, bias=b.astype(np.float64))
    np.testing.assert_array_equal(dx, fastact.sigmoid.grad(x + b.astype(np.float64)))


def test_containers_keep_their_kind():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [1.0, -2.0], "b": [0.5, 3.0]})
    result = fastact.relu(frame, bias=np.array([1.0, -1.0]))
    assert isinstance(result, pd.DataFrame)
    np.testing.assert_array_equal(result.to_numpy(), [[2.0, 0.0], [0.0, 2.0]])
    masked = np.ma.masked_array([1.0, -2.0, 3.0], mask=[False, True, False])
    result = fastact.relu(masked, bias=1.0)
    assert isinstance(result, np.ma.MaskedArray) and result.mask.tolist() == [False, True, False]


def test_bad_bias_gets_a_clear_error():
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"bias must broadcast to x's shape \(3, 4\), got shape \(3,\)"):
        fastact.relu(x, bias=np.zeros(3))
    with pytest.raises(ValueError, match="bias must broadcast"):
        fastact.relu(x, bias=np.zeros((2, 3, 4)))
    with pytest.raises(TypeError, match="bias must have a real dtype"):
        fastact.relu(x, bias=np.zeros(4, complex))
    with pytest.raises(ValueError, match="bias holds a value outside the range of float32"):
        fastact.relu(x, bias=np.full(4, 1e300))
    with pytest.raises(TypeError, match=r"out must be None or a tuple of two arrays"):
        fastact.relu.backward(x, x=x, bias=np.zeros(4, np.float32), out=np.empty_like(x))
    with pytest.raises(TypeError, match=r"out\[1\] must have dtype float32"):
        fastact.relu.backward(x, x=x, bias=np.zeros(4, np.float32), out=(np.empty_like(x), np.empty(4)))
    with pytest.raises(TypeError, match="unexpected keyword argument 'bias'"):
        fastact.prelu(x, np.ones(4), bias=np.zeros(4))
    dask = pytest.importorskip("dask.array")
    with pytest.raises(TypeError, match="bias= takes NumPy arrays, got a dask.Array"):
        fastact.relu(dask.from_array(x), bias=np.zeros(4))


@pytest.mark.parametrize("shape,bias_shape,form", [((10, 7), (7,), "rows"), ((1000, 7), (7,), "rows"),
                                                   ((2, 3, 512), (3, 1), "planes"),
                                                   ((2, 3, 8), (3, 1), "repeated"), ((5, 1 << 16), (5, 1), "planes")])
def test_layout(shape, bias_shape, form):
    lay = _bias.layout(shape, bias_shape, reduces=True)
    assert lay.by_column == (form != "planes")
    assert (lay.repeat > 1) == (form == "repeated")
    assert lay.rows * lay.length >= math.prod(shape) > (lay.rows - 1) * lay.length  # the last row may be short
    blocks, cols = lay.n_blocks
    assert blocks * lay.rb >= lay.rows and cols * lay.cb >= lay.length
    assert lay.partial().size <= 2 * max(_config.BIAS_PARTIAL_ELEMENTS, lay.rows * cols)


@pytest.mark.parametrize("shape", [(8, 4), (4096, 64)])  # the small-call path and the kernels
def test_overflow_is_quiet_and_read_only_inputs_work(shape, dtype):
    big = np.finfo(dtype).max
    x = np.full(shape, big, dtype)
    b = np.full(shape[-1], big, dtype)
    x.flags.writeable = b.flags.writeable = False
    np.testing.assert_array_equal(fastact.sigmoid(x, bias=b), np.ones(shape, dtype))  # x + b = inf, no warning
    dx, db = fastact.tanh.backward(np.ones(shape, dtype), x=-x, bias=-b)
    np.testing.assert_array_equal(dx, np.zeros(shape, dtype))
    np.testing.assert_array_equal(db, np.zeros(shape[-1], dtype))
    y, d = fastact.silu.value_and_grad(x, bias=b)
    assert np.isinf(y).all() and (d == 1).all()


@pytest.mark.parametrize("kind", ["forward", "grad", "value_and_grad"])
def test_the_short_path_of_large_calls(monkeypatch, kind, dtype):
    """C-contiguous x of a parallel size with a bias of its dtype skips the general path
    (prepare_call) and gives its bits; an out it cannot take goes the general way."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((512, 300)).astype(dtype)
    b = rng.standard_normal(300).astype(dtype)
    x0 = x.copy()
    op = getattr(fastact.sigmoid, "__call__" if kind == "forward" else kind)  # kernels the tests above compile
    expected = op(x + b)
    general = []
    real = _bias.prepare_call
    monkeypatch.setattr(_bias, "prepare_call", lambda *a, **k: general.append(1) or real(*a, **k))
    got = op(x, bias=b)
    assert not general
    for a, e in zip(got if kind == "value_and_grad" else [got], expected if kind == "value_and_grad" else [expected]):
        assert a.dtype == dtype and a.shape == x.shape
        np.testing.assert_array_equal(a, e)
    if kind == "value_and_grad":
        return
    inplace = x.copy()
    assert op(inplace, bias=b, out=inplace) is inplace
    np.testing.assert_array_equal(inplace, expected)
    assert not general
    strided = np.empty((512, 600), dtype)[:, ::2]
    assert op(x, bias=b, out=strided) is strided
    np.testing.assert_array_equal(strided, expected)
    assert general  # not C-contiguous: the general path
    general.clear()
    op(np.asfortranarray(x), bias=b)
    assert general
    with pytest.raises(TypeError, match="out must have dtype"):
        op(x, bias=b, out=np.empty(x.shape, np.float16))
    np.testing.assert_array_equal(x, x0)


@pytest.mark.parametrize("shape", [(3, 8), (3, 1), (2, 3, 8)])  # small calls: one ufunc over x + b, or two
def test_small_calls_check_out_in_fastacts_words(shape, dtype):
    x = np.linspace(-2, 2, math.prod(shape)).reshape(shape).astype(dtype)
    b = np.linspace(-1, 1, shape[-1]).astype(dtype)
    frozen = np.empty_like(x)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="out must be writeable"):
        fastact.sigmoid(x, bias=b, out=frozen)
    with pytest.raises(TypeError, match="out must have dtype"):
        fastact.sigmoid(x, bias=b, out=np.empty(shape, np.float16))
    o = np.empty_like(x)
    assert fastact.gelu(x, bias=b, out=o) is o
    np.testing.assert_array_equal(o, fastact.gelu(x + b))
    y, d = fastact.elu.value_and_grad(x, 0.5, bias=b)
    np.testing.assert_array_equal(y, fastact.elu(x + b, 0.5))
    np.testing.assert_array_equal(d, fastact.elu.grad(x + b, 0.5))
