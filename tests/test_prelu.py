"""prelu: leaky_relu with a slope per channel (issue 20, item 2)."""

import doctest
import pickle

import numpy as np
import pytest

import fastact


@pytest.mark.parametrize("shape,axis", [((6, 3), 1), ((2, 3, 4, 5), 1), ((4, 3), 0), ((2, 5, 3), -1), ((7,), 1),
                                        ((), 1), ((16, 8, 8192), 1), ((8192, 64), 1)])  # the last two: parallel
def test_prelu_is_leaky_relu_per_channel(backend, dtype, shape, axis):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    channels = shape[axis] if len(shape) >= 2 else 1
    w = np.linspace(-0.5, 0.75, channels)
    y, dy = fastact.prelu.value_and_grad(x, w, axis=axis)
    assert y.dtype == dtype and np.shape(y) == shape
    for c in range(channels):
        index = (slice(None),) * (axis % len(shape)) + (c,) if len(shape) >= 2 else ...
        np.testing.assert_array_equal(y[index], fastact.leaky_relu(x[index], w[c]))
        np.testing.assert_array_equal(dy[index], fastact.leaky_relu.grad(x[index], w[c]))
        np.testing.assert_array_equal(fastact.prelu.backward(g, x, w, axis=axis)[index],
                                      fastact.leaky_relu.backward(g[index], x=x[index], negative_slope=w[c]))
    np.testing.assert_array_equal(fastact.prelu(x, w, axis=axis), y)
    np.testing.assert_array_equal(fastact.prelu.grad(x, w, axis=axis), dy)


def test_prelu_equals_pytorch_autograd(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3, 6)).astype(dtype)
    x[0, :, 0] = [0.0, -0.0, np.nan]
    g = rng.standard_normal(x.shape).astype(dtype)
    for w in (np.array([0.25, -0.1, 1.5], dtype), np.array([0.2], dtype)):
        tx = torch.from_numpy(x.copy()).requires_grad_(True)
        ty = torch.nn.functional.prelu(tx, torch.from_numpy(w))
        ty.backward(torch.from_numpy(g))
        y = fastact.prelu(x, w)
        np.testing.assert_array_equal(y, ty.detach().numpy())
        np.testing.assert_array_equal(np.signbit(y), np.signbit(ty.detach().numpy()))
        finite = ~np.isnan(x)  # PyTorch passes grad_out at NaN, fastact gives NaN
        np.testing.assert_array_equal(fastact.prelu.backward(g, x, w)[finite], tx.grad.numpy()[finite])
        assert np.isnan(fastact.prelu.backward(g, x, w)[~finite]).all()


def test_prelu_dtypes_out_and_broadcasting(backend):
    x = np.array([[-2.0, 4.0], [-1.0, -8.0]])
    w = [0.5, 0.25]
    np.testing.assert_array_equal(fastact.prelu(x.astype(np.float16), w), np.array([[-1, 4], [-0.5, -2]], np.float16))
    assert fastact.prelu(x.astype(np.float16), w).dtype == np.float16
    np.testing.assert_array_equal(fastact.prelu(np.array([[-2, 4]]), w), [[-1.0, 4.0]])  # integers: float64
    out = np.empty_like(x)
    assert fastact.prelu(x, w, out=out) is out
    np.testing.assert_array_equal(out, [[-1.0, 4.0], [-0.5, -2.0]])
    pair = (np.empty_like(x), np.empty_like(x))
    assert fastact.prelu.value_and_grad(x, w, out=pair) is pair
    np.testing.assert_array_equal(pair[1], [[0.5, 1.0], [0.5, 0.25]])
    np.testing.assert_array_equal(fastact.prelu.backward(2.0, x, w), [[1.0, 2.0], [1.0, 0.5]])  # grad_out broadcasts
    assert fastact.prelu(-4.0, 0.25) == -1.0
    x_copy = x.copy()
    fastact.prelu(x, w)
    np.testing.assert_array_equal(x, x_copy)


@pytest.mark.parametrize("call,error,message", [
    (lambda: fastact.prelu(np.ones((2, 3)), np.ones(2)), ValueError, r"1 element or one per channel \(3 along axis 1\)"),
    (lambda: fastact.prelu(np.ones((2, 3)), np.ones((3, 1))), ValueError, "weight must be a scalar or 1-D"),
    (lambda: fastact.prelu(np.ones(3), np.ones(3)), ValueError, r"one per channel \(1 along axis 1\)"),
    (lambda: fastact.prelu(np.ones((2, 3)), [np.nan, 1, 1]), ValueError, "weight must be finite"),
    (lambda: fastact.prelu(np.ones((2, 3), np.float32), [1e300]), ValueError, "outside the range of float32"),
    (lambda: fastact.prelu(np.ones((2, 3)), ["a"]), TypeError, "weight must have a real dtype"),
    (lambda: fastact.prelu(np.ones((2, 3)), 0.25, axis=2), ValueError, "axis"),
    (lambda: fastact.prelu(np.ones((2, 3)), 0.25, axis=1.0), TypeError, "axis must be an int"),
    (lambda: fastact.prelu(np.ones((2, 3)), 0.25, out=np.empty(3)), ValueError, "out must have shape"),
    (lambda: fastact.prelu.backward(np.ones(4), np.ones((2, 3)), 0.25), ValueError, "does not broadcast"),
])
def test_prelu_refuses_bad_input_by_name(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_prelu_docstring_example_and_pickle():
    test = doctest.DocTestParser().get_doctest(fastact.prelu.__doc__, {}, "prelu", None, 0)
    assert doctest.DocTestRunner().run(test).failed == 0
    assert pickle.loads(pickle.dumps(fastact.prelu)) is fastact.prelu
    assert "prelu" in fastact.__all__ and isinstance(fastact.prelu, fastact.ChannelOp)
