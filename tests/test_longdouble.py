"""long double input (80-bit extended on x86-64 Linux) runs through the NumPy fallbacks in
its own precision, as SciPy's ufuncs do, whichever backend is selected."""

import numpy as np
import pytest

import fastact
from fastact import accuracy
from fastact._gatedops import GATED_OPS

LD = np.longdouble
pytestmark = pytest.mark.skipif(np.finfo(LD).eps >= np.finfo(np.float64).eps,
                                reason="long double is float64 on this platform")
EPS = float(np.finfo(LD).eps)
# ops whose formulas hold only float64 constants or call math's float64 functions (gelu's erfc,
# selu's and the tanh form's constants, hardsigmoid's 1/6): their long double results are as
# precise as float64, not more
FLOAT64_PRECISION = {"gelu", "gelu(approximate='tanh')", "selu", "hardsigmoid", "hardswish"}


def _mp():
    mp = pytest.importorskip("mpmath")
    mp.mp.prec = 160
    return mp


def _relative_error(got, exact, mp):
    """The largest relative error, in long double epsilons, where the exact value is not 0."""
    worst = 0.0
    for c, e in zip(np.ravel(got), exact):
        if e != 0:
            worst = max(worst, float(abs(mp.mpf(str(c)) - e) / abs(e)))  # str(): all of c's digits
    return worst / EPS


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_every_elementwise_op_and_entry_point_keeps_long_double(backend):
    x = np.linspace(-6, 6, 25).astype(LD)
    with fastact.use_backend(backend):
        for label, op, kw, act in accuracy.elementwise_variants():
            y, d = op.value_and_grad(x, **kw)
            results = [op(x, **kw), op.grad(x, **kw), y, d, op.backward(np.ones(25), x=x, **kw)]
            if op.supports_y(**kw):
                results.append(op.backward(np.ones(25, LD), y=y, **kw))
            assert all(r.dtype == LD for r in results), label
            np.testing.assert_allclose(results[0].astype(np.float64), op(x.astype(np.float64), **kw), rtol=1e-13,
                                       atol=1e-300, err_msg=label)
            np.testing.assert_allclose(results[1].astype(np.float64), op.grad(x.astype(np.float64), **kw),
                                       rtol=1e-12, atol=1e-15, err_msg=label)


def test_smooth_ops_are_more_precise_than_float64():
    mp = _mp()
    x = (np.random.default_rng(0).standard_normal(60) * 5).astype(LD)
    points = [mp.mpf(str(v)) for v in x]
    for label, op, kw, act in accuracy.elementwise_variants():
        if label in FLOAT64_PRECISION or act.correctly_rounded:
            continue
        p = tuple(q.default for q in act.params)
        assert _relative_error(op(x, **kw), [act.reference(mp, v, p) for v in points], mp) <= 16, label


def test_scipy_expit_agrees():
    special = pytest.importorskip("scipy.special")
    x = np.array([-1000, -50, -1, -1e-30, 0, 1e-30, 0.5, 1, 50, 1000], LD)
    np.testing.assert_allclose(fastact.sigmoid(x), special.expit(x), rtol=4 * EPS, atol=0)
    assert fastact.sigmoid(x).dtype == special.expit(x).dtype == LD


def test_row_ops_losses_and_gated_units():
    mp = _mp()
    scores = np.array([2, 10, 1, 4], LD)
    total = sum(mp.exp(v) for v in (2, 10, 1, 4))
    exact = [mp.exp(v) / total for v in (2, 10, 1, 4)]
    y = fastact.softmax(scores)
    assert y.dtype == LD and _relative_error(y, exact, mp) <= 8
    assert _relative_error(fastact.log_softmax(scores), [mp.log(e) for e in exact], mp) <= 8
    assert fastact.softmax.backward(np.ones(4, LD), y).dtype == LD
    logits = np.ones((2, 3), LD)
    loss, grad = fastact.softmax_cross_entropy.value_and_grad(logits, np.array([0, 1]))
    assert loss.dtype == grad.dtype == LD and _relative_error([loss], [mp.log(3)], mp) <= 4
    bce = fastact.binary_cross_entropy_with_logits(np.array([1.0], LD), np.array([0.0], LD))
    assert bce.dtype == LD and _relative_error([bce], [mp.log1p(mp.e)], mp) <= 4
    x = np.array([[1.0, -2.0, 0.5, 3.0]], LD)
    for name in GATED_OPS:
        op = getattr(fastact, name)
        assert op(x).dtype == op.backward(np.ones((1, 2), LD), x).dtype == LD
    swish = fastact.swiglu(x)
    a, b = (mp.mpf(1), mp.mpf(-2)), (mp.mpf("0.5"), mp.mpf(3))
    assert _relative_error(swish, [a[i] / (1 + mp.exp(-a[i])) * b[i] for i in range(2)], mp) <= 8


def test_out_and_mixed_dtypes():
    x = np.linspace(-3, 3, 7).astype(LD)
    out = np.empty(7, LD)
    assert fastact.tanh(x, out=out) is out
    np.testing.assert_array_equal(out, np.tanh(x))
    assert fastact.silu.backward(np.ones(7), x=x).dtype == LD  # float64 grad_out, long double x
    assert fastact.relu(x.astype(np.float64), out=np.empty(7, np.float64)).dtype == np.float64
