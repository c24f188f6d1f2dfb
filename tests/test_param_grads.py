"""backward(..., param_grads=True) (issue 20, item 4): the gradients of the ops' parameters,
summed over every element (prelu: per channel) in the backward's pass."""

import math

import mpmath
import numba
import numpy as np
import pytest

import fastact
from fastact import _activations

from .conftest import ulp_distance

WITH_GRADS = sorted(name for name, act in _activations.ELEMENTWISE.items() if act.grad_params)
# parameter values away from the defaults, both signs where the op takes them
PARAMS = {
    "leaky_relu": [{"negative_slope": 0.1}, {"negative_slope": -0.3}],
    "rrelu": [{}, {"lower": 0.05, "upper": 0.4}],
    "hardtanh": [{"min_val": -0.5, "max_val": 2.0}],
    "softshrink": [{"lambd": 0.3}],
    "threshold": [{"threshold": 0.3, "value": 2.0}, {"threshold": -1.0, "value": -4.0}],
    "elu": [{"alpha": 1.3}, {"alpha": -0.5}],
    "celu": [{"alpha": 0.7}, {"alpha": -2.0}],
    "softplus": [{"beta": 2.0}, {"beta": -0.5, "threshold": 5.0}],
}
CASES = [(name, kw) for name in WITH_GRADS for kw in PARAMS[name]]
# the published bound: each element's df/dparam (in x's dtype) within 4 ULP, as the
# derivatives; measured: 0 for the piecewise-linear ops, up to 2 (numba) and 4 (NumPy, celu)
PER_ELEMENT_ULP = 4


def _p(act, kw):
    return tuple(float(kw.get(param.name, param.default)) for param in act.params)


def _kink_free(act, p, xs):
    """xs without the points where df/dparam jumps (mpmath's numerical derivative straddles them)."""
    named = dict(zip([param.name for param in act.params], p))
    kinks = [0.0] + [v for k, v in named.items() if k in ("min_val", "max_val", "threshold")]
    if "lambd" in named:
        kinks += [named["lambd"], -named["lambd"]]
    return xs[~np.isin(xs.astype(np.float64), kinks)]


def test_the_ops_with_parameter_gradients():
    """Every parameter that moves f continuously has a gradient; those that move a step do not."""
    assert {name: act.grad_params for name, act in _activations.ELEMENTWISE.items() if act.grad_params} == {
        "leaky_relu": ("negative_slope",), "rrelu": ("lower", "upper"), "hardtanh": ("min_val", "max_val"),
        "softshrink": ("lambd",), "threshold": ("value",), "elu": ("alpha",), "celu": ("alpha",),
        "softplus": ("beta",)}
    for act in _activations.ELEMENTWISE.values():
        assert set(act.grad_params) <= {param.name for param in act.params}
        assert (act.df_dparams is None) == (act.numpy_df_dparams is None) == (not act.grad_params)


@pytest.mark.parametrize("name,kw", CASES)
def test_each_element_against_mpmath(name, kw, dtype, backend):
    """One element at a time (the sum of one term, exact in float64): df/dparam against
    the derivative of the mpmath reference in the parameter, rounded to x's dtype."""
    act = _activations.ELEMENTWISE[name]
    op = fastact.ACTIVATIONS[name]
    p = _p(act, kw)
    rng = np.random.default_rng(5)
    xs = np.concatenate([rng.standard_normal(60) * 3, -np.logspace(-12, 2, 25), np.logspace(-12, 2, 10),
                         [-0.71, -1.01, -3.99, 0.29, 0.31, 2.5, -45.0, -101.0, -750.0]]).astype(dtype)
    xs = _kink_free(act, p, xs)
    one = np.ones(1, dtype)
    with mpmath.workprec(200):
        for x in xs:
            dx, grads = op.backward(one, x=np.array([x]), param_grads=True, **kw)
            assert list(grads) == list(act.grad_params)
            for pname in act.grad_params:
                ref = _activations.reference_dparam(act, mpmath.mp, mpmath.mpf(float(x)), p, pname)
                got = grads[pname]
                assert isinstance(got, np.float64)
                assert got == got.astype(dtype)  # a term of x's dtype
                with np.errstate(over="ignore"):  # beyond float32's range: inf, as the kernel's
                    ulps = ulp_distance(np.asarray(got, dtype), np.asarray(float(ref), dtype))
                assert ulps <= PER_ELEMENT_ULP, (x, pname, got, ref)


@pytest.mark.parametrize("name,kw", CASES)
def test_sums_over_large_arrays(name, kw, dtype, backend):
    """The sums over (many rows) x (columns) equal the correctly rounded sum of the
    fallback's terms g df/dparam (float64 products) to the terms' own error (4 ULP of x's
    dtype) plus a few float64 ULPs, of the sum of their sizes; dx is the plain backward's,
    bit for bit."""
    act = _activations.ELEMENTWISE[name]
    op = fastact.ACTIVATIONS[name]
    rng = np.random.default_rng(6)
    x = (rng.standard_normal((700, 150)) * 3).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    dx, grads = op.backward(g, x=x, param_grads=True, **kw)
    np.testing.assert_array_equal(dx, op.backward(g, x=x, **kw))
    terms = act.numpy_df_dparams(x, _p(act, kw))
    for pname, term in zip(act.grad_params, terms):
        products = g.astype(np.float64) * term
        expected = math.fsum(products.ravel())
        bound = (PER_ELEMENT_ULP * np.finfo(dtype).eps + 1e-14) * np.abs(products).sum()
        assert abs(grads[pname] - expected) <= bound + 1e-300, pname


@pytest.mark.parametrize("name,kw", [(n, PARAMS[n][0]) for n in ("elu", "softplus", "hardtanh")])
def test_same_bits_on_any_thread_count_and_in_the_serial_kernel(name, kw, dtype):
    """The tasks and their sums depend on the shape alone."""
    op = fastact.ACTIVATIONS[name]
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(300_001) * 3).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    _, first = op.backward(g, x=x, param_grads=True, **kw)
    saved = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        _, one_thread = op.backward(g, x=x, param_grads=True, **kw)
    finally:
        numba.set_num_threads(saved)
    assert first == one_thread
    with fastact.use_backend("numpy"):
        _, fallback = op.backward(g, x=x, param_grads=True, **kw)
    for pname in first:  # the terms differ by their few ULPs at most
        assert abs(first[pname] - fallback[pname]) <= 1e-5 * abs(fallback[pname]) + 1e-300


def _torch_expression(name, torch, x, t):
    """PyTorch's autograd of the op written with its parameters as float64 tensors ``t``."""
    F = torch.nn.functional
    zero = torch.zeros((), dtype=x.dtype)
    if name == "leaky_relu":
        return torch.where(x > 0, x, t["negative_slope"] * x)
    if name == "rrelu":
        return torch.where(x > 0, x, (t["lower"] + t["upper"]) / 2 * x)
    if name == "hardtanh":
        return torch.clamp(x, t["min_val"], t["max_val"])
    if name == "softshrink":
        return torch.where(x > t["lambd"], x - t["lambd"], torch.where(x < -t["lambd"], x + t["lambd"], zero))
    if name == "threshold":
        return torch.where(x <= t["threshold"], t["value"], x)
    if name == "elu":
        return torch.where(x > 0, x, t["alpha"] * torch.expm1(x))
    if name == "celu":
        return torch.where(x > 0, x, t["alpha"] * torch.expm1(x / t["alpha"]))
    if name == "softplus":
        return torch.where(x * t["beta"] > t["threshold"], x, F.softplus(x * t["beta"], 1.0, math.inf) / t["beta"])
    raise AssertionError(name)


@pytest.mark.parametrize("name,kw", CASES)
def test_equals_pytorch_autograd_with_tensor_parameters(name, kw):
    """PyTorch takes these parameters as Python floats (no gradient); written with
    float64 tensor parameters, its autograd gives the same gradients."""
    torch = pytest.importorskip("torch")
    act = _activations.ELEMENTWISE[name]
    rng = np.random.default_rng(8)
    x = _kink_free(act, _p(act, kw), (rng.standard_normal(5000) * 3))
    g = rng.standard_normal(x.shape)
    _, grads = fastact.ACTIVATIONS[name].backward(g, x=x, param_grads=True, **kw)
    t = {param.name: torch.tensor(float(kw.get(param.name, param.default)), dtype=torch.float64, requires_grad=True)
         for param in act.params}
    y = _torch_expression(name, torch, torch.from_numpy(x), t)
    y.backward(torch.from_numpy(g))
    for pname in act.grad_params:
        expected = t[pname].grad.item()
        assert grads[pname] == pytest.approx(expected, rel=1e-12, abs=1e-12), pname
    for pname in set(t) - set(act.grad_params):  # a step's position: no gradient (PyTorch's is 0 or None)
        assert t[pname].grad is None or t[pname].grad.item() == 0


def test_special_values(backend):
    """NaN in x gives NaN; infinities give the limits; the kinks take the side of the forward."""
    inf, nan = np.inf, np.nan
    one = np.ones(1)

    def grads(name, x, **kw):
        return fastact.ACTIVATIONS[name].backward(one, x=np.array([x]), param_grads=True, **kw)[1]

    for name in WITH_GRADS:
        assert all(np.isnan(v) for v in grads(name, nan).values()), name
    assert grads("elu", -inf) == {"alpha": -1.0}
    assert grads("elu", inf) == {"alpha": 0.0}
    assert grads("celu", -inf) == {"alpha": -1.0}
    assert grads("celu", -inf, alpha=-1.0) == {"alpha": -inf}
    assert grads("softplus", -inf) == {"beta": 0.0}
    assert grads("softplus", inf) == {"beta": 0.0}
    assert grads("softplus", 0.0) == {"beta": -math.log(2)}
    assert grads("softplus", 30.0) == {"beta": 0.0}  # linear above the threshold
    assert grads("leaky_relu", -inf) == {"negative_slope": -inf}
    assert grads("leaky_relu", 0.0) == {"negative_slope": 0.0}
    # hardtanh at min_val is x itself (neither clamp moves it)
    assert grads("hardtanh", -1.0) == {"min_val": 0.0, "max_val": 0.0}
    assert grads("hardtanh", -1.5) == {"min_val": 1.0, "max_val": 0.0}
    assert grads("hardtanh", inf) == {"min_val": 0.0, "max_val": 1.0}
    assert grads("threshold", 0.0) == {"value": 1.0}  # x <= threshold takes value
    assert grads("softshrink", 0.5) == {"lambd": 0.0}
    assert grads("softshrink", -inf) == {"lambd": 1.0}


def test_results_dtypes_and_out(dtype, backend):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((40, 30)).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    out = np.empty_like(x)
    res = fastact.elu.backward(g, x=x, param_grads=True, out=out)
    assert res[0] is out and out.dtype == dtype
    np.testing.assert_array_equal(out, fastact.elu.backward(g, x=x))
    assert isinstance(res[1]["alpha"], np.float64)
    # an op without parameters: no gradients
    dx, grads = fastact.sigmoid.backward(g, x=x, param_grads=True)
    assert grads == {}
    np.testing.assert_array_equal(dx, fastact.sigmoid.backward(g, x=x))
    # empty input: zero gradients
    dx, grads = fastact.elu.backward(np.ones(0, dtype), x=np.ones(0, dtype), param_grads=True)
    assert dx.shape == (0,) and grads == {"alpha": 0.0}
    # 0-d input, and grad_out broadcast against x
    dx, grads = fastact.leaky_relu.backward(np.array(2.0, dtype), x=np.array(-3.0, dtype), param_grads=True)
    assert dx.ndim == 0 and grads == {"negative_slope": -6.0}
    dx, grads = fastact.leaky_relu.backward(np.array(2.0, dtype), x=np.full((3, 4), -1.0, dtype), param_grads=True)
    assert dx.shape == (3, 4) and grads == {"negative_slope": -24.0}
    # nothing the caller passed is changed
    x0, g0 = x.copy(), g.copy()
    fastact.softplus.backward(g, x=x, param_grads=True, beta=2.0)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(g, g0)


@pytest.mark.parametrize("bias_shape", [(30,), (40, 1), ()])
def test_with_bias(bias_shape, dtype, backend):
    """With bias=: (dx, dbias, grads), the parameter gradients those of x + b."""
    rng = np.random.default_rng(10)
    x = rng.standard_normal((40, 30)).astype(dtype)
    b = rng.standard_normal(bias_shape).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    dx, db, grads = fastact.celu.backward(g, x=x, bias=b, param_grads=True, alpha=0.8)
    dx2, db2 = fastact.celu.backward(g, x=x, bias=b, alpha=0.8)
    np.testing.assert_array_equal(dx, dx2)
    np.testing.assert_array_equal(db, db2)
    _, plain = fastact.celu.backward(g, x=x + b, param_grads=True, alpha=0.8)
    assert grads["alpha"] == pytest.approx(plain["alpha"], rel=1e-13)
    out = (np.empty_like(x), np.empty(bias_shape, dtype))
    res = fastact.celu.backward(g, x=x, bias=b, param_grads=True, alpha=0.8, out=out)
    assert res[0] is out[0] and res[1] is out[1] and res[2] == grads


def test_refused_calls():
    x = np.linspace(-2, 2, 10)
    with pytest.raises(TypeError, match="needs x"):
        fastact.elu.backward(x, y=fastact.elu(x), param_grads=True)
    with pytest.raises(TypeError, match="param_grads must be True or False"):
        fastact.elu.backward(x, x=x, param_grads="yes")
    with pytest.raises(TypeError, match="param_grads must be True or False"):
        fastact.prelu.backward(x, x, 0.25, param_grads=1)
    with pytest.raises(ValueError, match="alpha"):
        fastact.celu.backward(x, x=x, param_grads=True, alpha=0.0)


# --- prelu: the weight's gradient per channel ----------------------------------------------


@pytest.mark.parametrize("shape,axis", [((16, 3, 20, 20), 1), ((500, 7), 1), ((50, 300), 1), ((9,), 0),
                                        ((20, 30, 8), 2), ((4, 5, 300), 1), ((6, 5, 4), -1)])
def test_prelu_weight_gradient_equals_pytorch(shape, axis, dtype, backend):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    x = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    channels = shape[axis] if len(shape) >= 2 else 1
    w = rng.uniform(-0.2, 0.5, channels)
    dx, grads = fastact.prelu.backward(g, x, w, axis=axis, param_grads=True)
    np.testing.assert_array_equal(dx, fastact.prelu.backward(g, x, w, axis=axis))
    dw = grads["weight"]
    assert dw.shape == w.shape and dw.dtype == np.float64
    tx = torch.from_numpy(x.astype(np.float64))
    tw = torch.from_numpy(w).requires_grad_(True)
    moved = tx.movedim(axis, 1) if len(shape) >= 2 else tx
    torch.nn.functional.prelu(moved, tw).backward(torch.from_numpy(g.astype(np.float64)).movedim(axis, 1)
                                                  if len(shape) >= 2 else torch.from_numpy(g.astype(np.float64)))
    np.testing.assert_allclose(dw, tw.grad.numpy(), rtol=1e-13, atol=1e-13)


def test_prelu_weight_gradient_dtypes_and_shapes(backend):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((8, 3, 5)).astype(np.float32)
    g = np.ones_like(x)
    expected = np.where(x > 0, 0, x).astype(np.float64).sum(axis=(0, 2))
    _, grads = fastact.prelu.backward(g, x, np.array([0.1, 0.2, 0.3], np.float32), param_grads=True)
    assert grads["weight"].dtype == np.float32  # the weight's dtype, as PyTorch gives it
    np.testing.assert_allclose(grads["weight"], expected, rtol=1e-6)
    _, grads = fastact.prelu.backward(g, x, 0.25, param_grads=True)  # one weight for every channel
    assert np.ndim(grads["weight"]) == 0
    assert grads["weight"] == pytest.approx(expected.sum(), rel=1e-6)
    _, grads = fastact.prelu.backward(g, x, [0.25], param_grads=True)
    assert np.shape(grads["weight"]) == (1,)
    out = np.empty_like(x)
    res = fastact.prelu.backward(g, x, [0.1, 0.2, 0.3], out=out, param_grads=True)
    assert res[0] is out
    _, grads = fastact.prelu.backward(g[:0], x[:0], [0.1, 0.2, 0.3], param_grads=True)
    np.testing.assert_array_equal(grads["weight"], [0.0, 0.0, 0.0])
