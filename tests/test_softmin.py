"""softmin: softmax of -x, fused (issue 20, item 2)."""

import numpy as np
import pytest

import fastact

SHAPES = [(7,), (3, 5), (1000, 10), (64, 300), (5, 9, 6), (4, 2048)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("axis", [-1, 0])
def test_softmin_is_softmax_of_minus_x_bit_for_bit(backend, dtype, shape, axis):
    """The kernels read -x where softmax reads x (negation is exact), in every form the
    rows take (rows, blocks of short rows, lanes along axis 0)."""
    x = (np.random.default_rng(0).standard_normal(shape) * 5).astype(dtype)
    g = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    y = fastact.softmin(x, axis=axis)
    np.testing.assert_array_equal(y, fastact.softmax(-x, axis=axis))
    np.testing.assert_array_equal(fastact.softmin.backward(g, y, axis=axis), -fastact.softmax.backward(g, y, axis=axis))


def test_softmin_of_the_tutorials_scores(backend):
    y = fastact.softmin([2.0, 10.0, 1.0, 4.0])
    e = np.exp(-np.array([2.0, 10.0, 1.0, 4.0]) + 1.0)
    np.testing.assert_allclose(y, e / e.sum(), rtol=1e-15)
    assert int(np.argmax(y)) == 2 and y.sum() == pytest.approx(1.0, abs=1e-15)  # the smallest score


def test_softmin_edges(backend):
    x = np.array([[1.0, np.inf, 2.0], [-np.inf, 0.0, 1.0], [np.nan, 0.0, 1.0], [1e308, -1e308, 0.0]])
    y = fastact.softmin(x)
    np.testing.assert_allclose(y[0], [1 / (1 + np.exp(-1.0)), 0.0, np.exp(-1.0) / (1 + np.exp(-1.0))], rtol=5e-16)
    assert np.isnan(y[1]).all() and np.isnan(y[2]).all()  # softmax of +inf, of NaN
    np.testing.assert_array_equal(y[3], [0.0, 1.0, 0.0])  # no overflow
    masked = fastact.softmin(np.ma.masked_array([3.0, -50.0, 1.0], mask=[False, True, False]))
    np.testing.assert_allclose(masked.filled(-1), [np.exp(-2) / (1 + np.exp(-2)), -1, 1 / (1 + np.exp(-2))])


def test_softmin_equals_pytorch_autograd(dtype):
    torch = pytest.importorskip("torch")
    x = (np.random.default_rng(2).standard_normal((16, 40)) * 3).astype(dtype)
    g = np.random.default_rng(3).standard_normal((16, 40)).astype(dtype)
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    ty = torch.nn.functional.softmin(tx, dim=1)
    ty.backward(torch.from_numpy(g))
    tol = {"rtol": 1e-5, "atol": 1e-7} if dtype == np.float32 else {"rtol": 1e-13, "atol": 1e-16}
    y = fastact.softmin(x, dim=1)
    np.testing.assert_allclose(y, ty.detach().numpy(), **tol)
    np.testing.assert_allclose(fastact.softmin.backward(g, y, axis=1), tx.grad.numpy(), **tol)
