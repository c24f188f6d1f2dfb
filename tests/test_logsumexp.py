"""logsumexp: values against mpmath (a dominant maximum included), SciPy and PyTorch; axes,
keepdims and PyTorch's names; the limits; its backward; bad input."""

import numpy as np
import pytest

import fastact
from fastact import _api, _threads, accuracy
from fastact._rowops import LOGSUMEXP


def _rows(dtype):
    rng = np.random.default_rng(0)
    rows = [rng.standard_normal((20, n)) * scale for n in (1, 3, 100, 5000) for scale in (1.0, 10.0, 300.0)]
    dominant = np.array([[0.0, -40.0, -60.0], [5.0, -30.0, 4.0], [0.0, -17.0, -17.5]])  # log1p's rest
    return [r.astype(dtype) for r in rows] + [dominant.astype(dtype)]


def test_values_against_mpmath(backend, dtype):
    mp = pytest.importorskip("mpmath")
    mp.mp.prec = 160
    bound = 1.0 if dtype == np.float32 else 2.0  # float32: summed and rounded in float64
    for rows in _rows(dtype):
        got = fastact.logsumexp(rows)
        assert got.dtype == dtype and got.shape == rows.shape[:1]
        exact = (LOGSUMEXP.reference(mp, [float(v) for v in row]) for row in rows)
        assert accuracy.ulp_errors(got, exact, dtype).max() <= bound, rows.shape


def test_lanes_against_mpmath(backend, dtype):
    """Along an axis with at least LANES_REDUCTION_MIN lanes after it, the array is read as
    it lies (the lanes kernel): the same bounds against mpmath as the rows'."""
    from fastact import _config

    mp = pytest.importorskip("mpmath")
    mp.mp.prec = 160
    bound = 1.0 if dtype == np.float32 else 2.0
    for rows in _rows(dtype):
        if rows.shape[1] > 100:  # the rows' test takes the long ones
            continue
        rows = np.tile(rows, (-(-_config.LANES_REDUCTION_MIN // rows.shape[0]), 1))
        for shape in ((rows.shape[1], rows.shape[0]), (rows.shape[1], 1, rows.shape[0])):
            got = fastact.logsumexp(np.ascontiguousarray(rows.T).reshape(shape), axis=0)
            assert got.dtype == dtype and got.shape == shape[1:]
            exact = (LOGSUMEXP.reference(mp, [float(v) for v in row]) for row in rows)
            assert accuracy.ulp_errors(got.reshape(-1), exact, dtype).max() <= bound, rows.shape


def test_lanes_limits_and_three_axes(backend):
    from fastact import _config

    lanes = _config.LANES_REDUCTION_MIN
    rows = np.array([[np.inf, 1.0], [-np.inf, -np.inf], [np.nan, 1.0], [np.inf, np.nan], [-np.inf, 2.0],
                     [1e308, 1e308], [-1e308, -1e308]] * lanes)
    got = fastact.logsumexp(np.ascontiguousarray(rows.T), axis=0)
    np.testing.assert_array_equal(got[:5], [np.inf, -np.inf, np.nan, np.nan, 2.0])
    assert got[5] == 1e308 and got[6] == -1e308
    np.testing.assert_array_equal(got, np.tile(got[:7], lanes))
    x = (np.random.default_rng(5).standard_normal((3, 50, 2, lanes)) * 20).astype(np.float32)
    for axis in (0, 1, 2):  # against the last axis (rows)
        np.testing.assert_allclose(fastact.logsumexp(x, axis=axis, keepdims=True),
                                   np.expand_dims(fastact.logsumexp(np.moveaxis(x, axis, -1)), axis), rtol=2e-7)


def test_lanes_parallel_and_serial_kernels_agree():
    from fastact import _kernels

    x = (np.random.default_rng(6).standard_normal((7, 300, 2500)) * 10).astype(np.float32)
    outs = []
    for parallel in (False, True):
        out = np.empty((7, 2500), np.float32)
        _kernels.reduction_lanes_kernel("logsumexp", parallel)(x, out)
        outs.append(out)
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(fastact.logsumexp(x, axis=1), outs[0])


def test_dominant_maximum_keeps_the_rest():
    """log(1 + e^-40) is e^-40, not 0 (where log of the rounded sum loses it)."""
    for dtype in (np.float32, np.float64):
        np.testing.assert_allclose(fastact.logsumexp(np.array([0.0, -40.0], dtype)), np.exp(-40.0), rtol=1e-6)


@pytest.mark.parametrize("axis", [-1, 0, 1, (0, 2), (2, 0), None])
def test_axes_as_scipy_and_pytorch(backend, dtype, axis):
    special = pytest.importorskip("scipy.special")
    x = (np.random.default_rng(1).standard_normal((3, 4, 5)) * 5).astype(dtype)
    eps = float(np.finfo(dtype).eps)
    got = fastact.logsumexp(x, axis=axis)
    np.testing.assert_allclose(got, special.logsumexp(x.astype(np.float64), axis=axis), rtol=4 * eps)
    kept = fastact.logsumexp(x, axis=axis, keepdims=True)
    assert kept.shape == special.logsumexp(x, axis=axis, keepdims=True).shape
    np.testing.assert_array_equal(kept.reshape(np.shape(got)), got)
    if isinstance(axis, int):
        torch = pytest.importorskip("torch")
        np.testing.assert_allclose(fastact.logsumexp(x, dim=axis, keepdim=True),
                                   torch.logsumexp(torch.from_numpy(x.astype(np.float64)), axis, True).numpy(),
                                   rtol=4 * eps)


def test_limits_and_nan(backend):
    rows = np.array([[np.inf, 1.0], [-np.inf, -np.inf], [np.nan, 1.0], [np.inf, np.nan], [-np.inf, 2.0],
                     [1e308, 1e308], [-1e308, -1e308]])
    got = fastact.logsumexp(rows)
    np.testing.assert_array_equal(got[:5], [np.inf, -np.inf, np.nan, np.nan, 2.0])
    assert got[5] == 1e308 and got[6] == -1e308  # no overflow; log 2 is below their spacing
    assert fastact.logsumexp(np.float32(3.0)) == np.float32(3.0)  # a 0-d array is one row of one


def test_backward_is_grad_out_times_softmax(backend, dtype):
    torch = pytest.importorskip("torch")
    x = (np.random.default_rng(2).standard_normal((4, 6)) * 3).astype(dtype)
    g = np.random.default_rng(3).standard_normal(6).astype(dtype)
    dx = fastact.logsumexp.backward(g, x, axis=0)
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    torch.logsumexp(tx, 0).backward(torch.from_numpy(g))
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=16 * float(np.finfo(dtype).eps))
    np.testing.assert_array_equal(dx, g * fastact.softmax(x, axis=0))
    out = np.empty_like(x)
    assert fastact.logsumexp.backward(g[None], x, axis=0, keepdims=True, out=out) is out
    np.testing.assert_array_equal(out, dx)


def test_parallel_and_serial_kernels_agree(monkeypatch):
    x = (np.random.default_rng(4).standard_normal((3000, 300)) * 10).astype(np.float32)
    monkeypatch.setattr(_threads, "rows_go_parallel", lambda *args, **kwargs: False)
    serial = fastact.logsumexp(x)
    monkeypatch.setattr(_threads, "rows_go_parallel", lambda *args, **kwargs: True)
    np.testing.assert_array_equal(fastact.logsumexp(x), serial)
    with fastact.use_backend("numpy"):
        np.testing.assert_allclose(fastact.logsumexp(x), serial, rtol=2e-7)


def test_dtypes():
    x = np.arange(6).reshape(2, 3)
    assert fastact.logsumexp(x).dtype == np.float64
    assert fastact.logsumexp(x.astype(np.float16)).dtype == np.float16
    assert fastact.logsumexp(x.astype(np.float32), out=np.empty(2, np.float32)).dtype == np.float32
    np.testing.assert_allclose(fastact.logsumexp(x), np.log(np.exp(x).sum(-1)), rtol=1e-15)


@pytest.mark.parametrize("call,error,message", [
    (lambda: fastact.logsumexp(np.ones((2, 0))), ValueError, "empty row"),
    (lambda: fastact.logsumexp(np.ones(3), axis=1), ValueError, "axis 1 is out of range"),
    (lambda: fastact.logsumexp(np.ones(3), keepdims=1), TypeError, "keepdims must be a bool"),
    (lambda: fastact.logsumexp(np.ones(3), sum=1), TypeError, "logsumexp() got an unexpected keyword argument 'sum'"),
    (lambda: fastact.logsumexp(np.ones(3), axis=0, dim=0), TypeError, "dim is another name of axis"),
    (lambda: fastact.logsumexp(np.ones((2, 3)), out=np.ones(3)), ValueError, "out must have shape (2,)"),
    (lambda: fastact.logsumexp.backward(np.ones(3), np.ones((2, 3))), ValueError,
     "grad_out must have the shape of logsumexp(x) (2,)"),
    (lambda: fastact.logsumexp(np.ones(3, complex)), TypeError, "x must have a real dtype"),
])
def test_bad_input_is_named(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)


def test_public_and_documented():
    import doctest

    op = fastact.logsumexp
    assert isinstance(op, fastact.ReductionOp) and "logsumexp" in fastact.__all__
    assert isinstance(_api.public_ops()["logsumexp"], _api.ReductionOp)
    runner = doctest.DocTestRunner()
    for test in doctest.DocTestFinder().find(op, "logsumexp", globs={}):
        runner.run(test)
    assert runner.failures == 0 and runner.tries > 0
