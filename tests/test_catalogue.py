"""The catalogue beyond sigmoid/relu: PyTorch's switch points, parameters, formulas."""

import math

import numpy as np
import pytest

import fastact
from fastact import _activations, _gatedops, _rowops
from fastact._api import public_ops
from fastact._rowops import ROW_OPS
from fastact._backend import scalar_function
from fastact._scalar import like

SELU_ALPHA, SELU_SCALE = _activations.SELU_ALPHA, _activations.SELU_SCALE


@pytest.mark.parametrize("op,x,expected", [
    (fastact.hardswish, [-3.0, 3.0, -3.5, 3.5, 0.0], [0.0, 1.0, 0.0, 1.0, 0.5]),
    (fastact.hardsigmoid, [-3.0, 3.0, 0.0], [0.0, 0.0, 1 / 6]),
    (fastact.hardtanh, [-1.0, 1.0, 0.0, 2.0], [0.0, 0.0, 1.0, 0.0]),
    (fastact.relu6, [0.0, 6.0, 3.0, 7.0], [0.0, 0.0, 1.0, 0.0]),
    (fastact.leaky_relu, [0.0, -1.0, 1.0], [0.01, 0.01, 1.0]),
    (fastact.elu, [0.0, 1.0], [1.0, 1.0]),
    (fastact.celu, [0.0, 1.0], [1.0, 1.0]),
    (fastact.selu, [0.0, 1.0], [SELU_SCALE * SELU_ALPHA, SELU_SCALE]),
    (fastact.relu, [0.0, 1.0], [0.0, 1.0]),
    (fastact.rrelu, [0.0, -1.0, 1.0], [(1 / 8 + 1 / 3) / 2, (1 / 8 + 1 / 3) / 2, 1.0]),
    (fastact.hardshrink, [0.5, -0.5, 0.0, 0.75, -0.75], [0.0, 0.0, 0.0, 1.0, 1.0]),
    (fastact.softshrink, [0.5, -0.5, 0.0, 0.75, -0.75], [0.0, 0.0, 0.0, 1.0, 1.0]),
    (fastact.threshold, [0.0, -0.0, 1e-30, -1.0], [0.0, 0.0, 1.0, 0.0]),
    (fastact.relu_squared, [0.0, -0.0, 0.5, -1.0], [0.0, 0.0, 1.0, 0.0]),
    (fastact.tanhshrink, [0.0, 1.25, -1.25], [0.0, np.tanh(1.25) ** 2, np.tanh(1.25) ** 2]),
    (fastact.quick_gelu, [0.0], [0.5]),
])
def test_derivatives_at_switch_points_match_pytorch_autograd(backend, dtype, op, x, expected):
    x = np.array(x, dtype)
    np.testing.assert_allclose(op.grad(x), np.array(expected, dtype), rtol=2 * np.finfo(dtype).eps)


def test_softplus_switches_to_linear_strictly_above_threshold(backend, dtype):
    beta, threshold = 2.0, 10.0
    x = np.array([5.0, np.nextafter(dtype(5.0), dtype(6.0)), 4.0], dtype)  # beta x = 10 exactly, just above, below
    y = fastact.softplus(x, beta=beta, threshold=threshold)
    assert y[0] == pytest.approx(math.log1p(math.exp(10.0)) / 2, rel=4 * float(np.finfo(dtype).eps))
    assert y[1] == x[1]  # linear
    d = fastact.softplus.grad(x, beta, threshold)
    assert d[1] == 1.0 and d[0] < 1.0
    assert d[0] == pytest.approx(1 / (1 + math.exp(-10.0)), rel=4 * float(np.finfo(dtype).eps))


@pytest.mark.parametrize("name,kwargs,f,df", [
    ("leaky_relu", {"negative_slope": 0.2}, lambda x: np.where(x > 0, x, 0.2 * x), lambda x: np.where(x > 0, 1, 0.2)),
    ("elu", {"alpha": 0.5}, lambda x: np.where(x > 0, x, 0.5 * np.expm1(x)), lambda x: np.where(x > 0, 1, 0.5 * np.exp(x))),
    ("celu", {"alpha": 2.0}, lambda x: np.where(x > 0, x, 2 * np.expm1(x / 2)), lambda x: np.where(x > 0, 1, np.exp(x / 2))),
    ("hardtanh", {"min_val": -2.0, "max_val": 0.5}, lambda x: np.clip(x, -2, 0.5),
     lambda x: ((x > -2) & (x < 0.5)).astype(float)),
    ("softplus", {"beta": 0.5, "threshold": 3.0}, lambda x: np.where(0.5 * x > 3, x, np.log1p(np.exp(0.5 * x)) / 0.5),
     lambda x: np.where(0.5 * x > 3, 1, 1 / (1 + np.exp(-0.5 * x)))),
    ("rrelu", {"lower": 0.1, "upper": 0.3}, lambda x: np.where(x > 0, x, 0.2 * x), lambda x: np.where(x > 0, 1, 0.2)),
    ("hardshrink", {"lambd": 1.25}, lambda x: np.where(np.abs(x) > 1.25, x, 0),
     lambda x: (np.abs(x) > 1.25).astype(float)),
    ("softshrink", {"lambd": 1.25}, lambda x: np.where(x > 1.25, x - 1.25, np.where(x < -1.25, x + 1.25, 0)),
     lambda x: (np.abs(x) > 1.25).astype(float)),
    ("threshold", {"threshold": 1.25, "value": -3.0}, lambda x: np.where(x > 1.25, x, -3.0),
     lambda x: (x > 1.25).astype(float)),
    ("quick_gelu", {}, lambda x: x / (1 + np.exp(-1.702 * x)),
     lambda x: 1 / (1 + np.exp(-1.702 * x)) + 1.702 * x * np.exp(-1.702 * x) / (1 + np.exp(-1.702 * x)) ** 2),
    ("relu_squared", {}, lambda x: np.maximum(x, 0) ** 2, lambda x: 2 * np.maximum(x, 0)),
    ("gelu", {"approximate": "tanh"}, lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
     None),
])
def test_parameters_against_pytorch_formulas(backend, name, kwargs, f, df):
    op = fastact.ACTIVATIONS[name]
    x = np.linspace(-7, 7, 1401)
    np.testing.assert_allclose(op(x, **kwargs), f(x), rtol=1e-12, atol=1e-14)
    if df is not None:
        np.testing.assert_allclose(op.grad(x, **kwargs), df(x), rtol=1e-12, atol=1e-14)
    # positional parameters, as torch.nn.functional takes them
    np.testing.assert_array_equal(op(x, *kwargs.values()), op(x, **kwargs))


@pytest.mark.parametrize("name", sorted(fastact.ACTIVATIONS))
def test_gradient_against_finite_differences(backend, name):
    op = fastact.ACTIVATIONS[name]
    x = np.linspace(-5, 5, 97) + 0.013  # away from the switch points
    h = 1e-6
    numeric = (op(x + h) - op(x - h)) / (2 * h)
    np.testing.assert_allclose(op.grad(x), numeric, rtol=1e-6, atol=1e-7)


def test_gelu_exact_far_tail_is_relative_exact():
    import mpmath

    mpmath.mp.prec = 120
    for dtype, xs in ((np.float32, [-8.0, -12.0, -13.5]), (np.float64, [-20.0, -30.0, -37.0])):
        x = np.array(xs, dtype)
        exact = np.array([float(mpmath.mpf(v) * mpmath.ncdf(v)) for v in xs]).astype(dtype)
        y = fastact.gelu(x)
        np.testing.assert_allclose(y, exact, rtol=8 * np.finfo(dtype).eps)
        assert np.all(y < 0)


def test_swish_is_silu():
    assert fastact.swish is fastact.silu
    assert "swish" not in fastact.ACTIVATIONS and "silu" in fastact.ACTIVATIONS


def test_the_public_names_come_from_the_definitions():
    # one public op per definition, but one for all variants of an op (gelu's approximate)
    expected = {act.variant[0] if act.variant else act.name for act in _activations.ELEMENTWISE.values()}
    assert set(fastact.ACTIVATIONS) == expected
    for name, op in fastact.ACTIVATIONS.items():
        assert op.name == name and getattr(fastact, name) is op
    aliases = {alias for act in _activations.ELEMENTWISE.values() for alias in act.aliases}
    row_ops = set(_rowops.ROW_OPS)
    assert {"swish"} <= aliases and {"softmax", "log_softmax"} <= row_ops
    assert expected | aliases | row_ops <= set(fastact.__all__)
    assert all(hasattr(fastact, name) for name in fastact.__all__)


# --- adding an op is one definition ----------------------------------------------
# A small op defined the way _activations defines its own, registered in a copy of the
# registry: the public object built from it has every entry point, on both backends,
# as a ufunc too.  Its formulas are module-level so that its kernels cache as the real ones.


@scalar_function
def _cube_f(x, p):
    return x * x * x * like(x, p[0])


@scalar_function
def _cube_df(x, p):
    return like(x, 3.0) * x * x * like(x, p[0])


def _numpy_cube(x, out, p):
    np.multiply(x * x * x, p[0], out=out)


def _numpy_cube_grad(x, out, p):
    np.multiply(3 * x * x, p[0], out=out)


CUBE = _activations.Activation(
    name="scaled_cube",
    doc="a x^3 (a test op).",
    formula="a x^3; f' = 3 a x^2",
    f=_cube_f,
    df=_cube_df,
    numpy_f=_numpy_cube,
    numpy_df=_numpy_cube_grad,
    reference=lambda mp, x, p: p[0] * x**3,
    reference_df=lambda mp, x, p: 3 * p[0] * x**2,
    params=(_activations.Param("a", 2.0),),
)


def test_an_op_is_one_definition(monkeypatch):
    monkeypatch.setattr(_activations, "ELEMENTWISE", {"scaled_cube": CUBE})
    monkeypatch.setattr(_rowops, "ROW_OPS", {})
    monkeypatch.setattr(_rowops, "ROW_REDUCTIONS", {})
    monkeypatch.setattr(_gatedops, "GATED_OPS", {})
    ops = public_ops()
    assert list(ops) == ["scaled_cube"]
    op = ops["scaled_cube"]
    x = np.array([-2.0, 0.5, 3.0], np.float32)
    g = np.array([1.0, 2.0, -1.0], np.float32)
    for backend in ("numba", "numpy"):
        with fastact.use_backend(backend):
            y, d = op.value_and_grad(x, a=0.5)
            assert y.dtype == np.float32
            np.testing.assert_array_equal(y, [-4.0, 0.0625, 13.5])
            np.testing.assert_array_equal(d, [6.0, 0.375, 13.5])
            np.testing.assert_array_equal(op(x, 0.5), y)
            np.testing.assert_array_equal(op.grad(x, a=0.5), d)
            np.testing.assert_array_equal(op.backward(g, x=x, a=0.5), g * d)
            np.testing.assert_array_equal(op(x.astype(np.float16)), (2 * x**3).astype(np.float16))
    np.testing.assert_array_equal(op.get_ufunc("grad")(x, 0.5), d)
    assert "a x^3" in op.__doc__ and op.signature == "scaled_cube(x, a=2.0, bias=None, out=None)"
    with pytest.raises(TypeError, match="y"):
        op.backward(g, y=y)


@pytest.mark.parametrize("name", sorted(fastact.ACTIVATIONS))
def test_limits_at_infinity(backend, name):
    op = fastact.ACTIVATIONS[name]
    x = np.array([-np.inf, np.inf])
    y, d = op.value_and_grad(x)
    assert not np.isnan(y).any() and not np.isnan(d).any(), (y, d)


@pytest.mark.parametrize("op", list(fastact.ACTIVATIONS.values()) + [fastact.softmax, fastact.log_softmax,
                                                                    fastact.softmax_cross_entropy,
                                                                    fastact.binary_cross_entropy_with_logits],
                         ids=lambda o: o.__name__)
def test_docstrings_list_the_entry_points_and_their_example_runs(op):
    import doctest

    doc = op.__doc__
    for entry in ("Entry points", "Example", "value_and_grad" if "loss" in repr(op) else "backward"):
        assert entry in doc, entry
    if op in fastact.ACTIVATIONS.values():
        for entry in (f"{op.name}.grad(", f"{op.name}.value_and_grad(", f"{op.name}.backward(grad_out, x=x"):
            assert entry in doc, entry
    test = doctest.DocTestParser().get_doctest(doc, {}, op.__name__, None, 0)
    assert len(test.examples) >= 3
    result = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE).run(test)
    assert result.failed == 0


def test_peers_in_the_definitions_are_well_formed():
    # bench builds its comparisons from these; torch is not installed everywhere, so
    # the expressions are compiled here and run by bench where it is
    for act in _activations.ELEMENTWISE.values():
        peers = dict(act.peers)
        assert {k for k in peers if not k.startswith("numpy")} <= {"scipy", "jax", "numexpr", "aten",
                                                                   "aten_backward"}, act.name
        assert ("aten" in peers) == ("aten_backward" in peers), act.name
        for key in ("aten", "aten_backward", "jax"):
            if key in peers:
                compile(peers[key], act.name, "eval")
    for row in ROW_OPS.values():
        required = {"numpy", "numpy_backward", "aten", "aten_backward"}  # scipy where it has the op
        assert required <= set(dict(row.peers)) <= required | {"scipy", "jax"}, row.name
    scipy_special = pytest.importorskip("scipy.special")
    for peers in [dict(act.peers) for act in _activations.ELEMENTWISE.values()] + [dict(r.peers) for r in
                                                                                  ROW_OPS.values()]:
        if "scipy" in peers:
            assert callable(getattr(scipy_special, peers["scipy"]))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_plain_numpy_peers_compute_the_op(dtype):
    # bench's "numpy" rows time these formulations: they must compute the op, in place
    from fastact import bench

    rng = np.random.default_rng(5)
    x = (rng.standard_normal((16, 40)) * 4).astype(dtype)
    g = rng.standard_normal((16, 40)).astype(dtype)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-14)
    found = 0
    for name in (*fastact.ACTIVATIONS, *ROW_OPS):
        op = getattr(fastact, name)
        y = op(x, axis=-1) if name in ROW_OPS else op(x)
        scope = {"x": x, "g": g, "y": y, "out": np.empty_like(x), "tmp": np.empty_like(x),
                 "buf": np.empty_like(x, shape=(16, 1)), "axis": -1}
        for backward, expected in ((False, y), (True, op.backward(g, y, axis=-1) if name in ROW_OPS else None)):
            for key, fn in bench._numpy_peers(name, scope, backward=backward).items():
                scope["out"][...] = np.nan
                with np.errstate(over="ignore"):
                    fn()
                np.testing.assert_allclose(scope["out"], expected, **tol, err_msg=f"{name} {key}")
                found += 1
    assert found >= 7  # sigmoid's two, relu, tanh, both directions of both row ops


def test_shrink_values_at_and_around_lambd_as_pytorch(backend, dtype):
    """PyTorch's values (torch 2.13.0): 0 on [-lambd, lambd] (hardshrink's a +0.0,
    softshrink's with the sign of x), x or x -+ lambd outside, NaN through."""
    x = np.array([-0.75, -0.5, -0.25, -0.0, 0.0, 0.25, 0.5, 0.75, np.inf, -np.inf, np.nan], dtype)
    hard = fastact.hardshrink(x)
    soft = fastact.softshrink(x)
    np.testing.assert_array_equal(hard, [-0.75, 0, 0, 0, 0, 0, 0, 0.75, np.inf, -np.inf, np.nan])
    assert not np.signbit(hard[1:7]).any()
    np.testing.assert_array_equal(soft, [-0.25, 0, 0, 0, 0, 0, 0, 0.25, np.inf, -np.inf, np.nan])
    np.testing.assert_array_equal(np.signbit(soft[:7]), [True, True, True, True, False, False, False])
    assert np.isnan(fastact.hardshrink.grad(x)[-1]) and np.isnan(fastact.softshrink.grad(x)[-1])


def test_shrink_compares_with_the_float64_lambd(backend):
    # float32(0.1) is 0.10000000149 > 0.1: outside the band for lambd = 0.1 (PyTorch, which
    # rounds lambd to float32 first, gives 0 there)
    x = np.array([0.1, -0.1], np.float32)
    np.testing.assert_array_equal(fastact.hardshrink(x, lambd=0.1), x)
    np.testing.assert_array_equal(fastact.hardshrink.grad(x, lambd=0.1), [1, 1])
    wide = x.astype(np.float64)
    expected = (wide - np.copysign(0.1, wide)).astype(np.float32)  # x -+ 0.1, rounded once
    np.testing.assert_array_equal(fastact.softshrink(x, lambd=0.1), expected)
    assert (fastact.softshrink(x, lambd=0.1) != 0).all()


def test_rrelu_is_leaky_relu_with_the_mean_slope(backend, dtype):
    x = np.linspace(-4, 4, 101).astype(dtype)
    slope = (0.125 + 1 / 3) / 2
    np.testing.assert_array_equal(fastact.rrelu(x), fastact.leaky_relu(x, slope))
    np.testing.assert_array_equal(fastact.rrelu.grad(x, 0.2, 0.4), fastact.leaky_relu.grad(x, 0.30000000000000004))


@pytest.mark.parametrize("call,message", [
    (lambda: fastact.softshrink(np.ones(3), lambd=-0.5), "lambd must be >= 0, got -0.5"),
    (lambda: fastact.rrelu(np.ones(3), lower=0.5, upper=0.1), "upper must be >= lower"),
    (lambda: fastact.rrelu.backward(np.ones(3), y=np.ones(3), lower=-0.5, upper=0.1), "lower + upper >= 0"),
])
def test_new_ops_refuse_bad_parameters(call, message):
    with pytest.raises(ValueError, match=message.replace("+", r"\+")):
        call()


def test_threshold_compares_with_the_float64_threshold(backend):
    # as the shrink ops: float32(0.1) = 0.10000000149 > 0.1 passes (PyTorch rounds the
    # threshold to float32 first and gives the value there)
    x = np.array([0.1, 0.0999], np.float32)
    np.testing.assert_array_equal(fastact.threshold(x, 0.1, 20.0), [x[0], 20.0])
    np.testing.assert_array_equal(fastact.threshold.grad(x, 0.1, 20.0), [1.0, 0.0])
    np.testing.assert_array_equal(fastact.threshold(np.array([0.1]), 0.1, 20.0), [20.0])  # not above it
    nan = fastact.threshold.value_and_grad(np.array([np.nan, -np.inf, np.inf]), 0.0, 5.0)
    np.testing.assert_array_equal(nan[0], [np.nan, 5.0, np.inf])
    np.testing.assert_array_equal(nan[1], [np.nan, 0.0, 1.0])


def test_relu_squared_backward_does_not_overflow_where_the_product_is_finite(backend, dtype):
    big = np.finfo(dtype).max / 1.5  # 2 x overflows, g 2 x does not
    x = np.array([big, 3.0, -2.0, np.inf], dtype)
    g = np.array([0.25, -1.5, 7.0, 0.5], dtype)
    expected = np.array([float(big) * 0.5, -9.0, 0.0, np.inf], dtype)
    np.testing.assert_array_equal(fastact.relu_squared.backward(g, x=x), expected)
    np.testing.assert_array_equal(fastact.relu_squared.grad(x[1:]), [6.0, 0.0, np.inf])
    assert fastact.relu_squared(x)[0] == np.inf and fastact.relu_squared(x)[1] == 9.0


def test_tanhshrink_keeps_the_digits_that_x_minus_tanh_loses(backend, dtype):
    """x - tanh(x) ~ x^3 / 3 near 0: the plain difference loses all digits below
    |x| ~ sqrt(eps); fastact stays within its 2 ULP on both sides of the switch (1.25)."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.prec = 400
    x = np.array([1e-30, -3e-8, 1e-3, 0.1, -0.7, 1.2499, np.nextafter(dtype(1.25), dtype(0)), 1.25, 1.3, -4.0, 30.0],
                 dtype)
    y = fastact.tanhshrink(x)
    exact = [float(mpmath.mpf(float(v)) - mpmath.tanh(mpmath.mpf(float(v)))) for v in x]
    np.testing.assert_allclose(y, np.array(exact, dtype), rtol=2 * np.finfo(dtype).eps, atol=0)
    assert y[1] < 0 < y[2]  # x^3 / 3, where x - tanh(x) gives 0 or noise
    plain = x - np.tanh(x)
    assert plain[2] != y[2]  # where the plain formula is off


def test_quick_gelu_is_silu_of_the_scaled_input(backend, dtype):
    """quick_gelu(x) = silu(1.702 x) / 1.702, its derivative silu'(1.702 x), also in
    the far negative tail, where fastact carries 1.702 x as a double-word."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.prec = 160
    x = np.array([-60.0, -30.0, -5.0, -1.0, -0.0, 0.25, 3.0, 50.0], dtype)
    c = mpmath.mpf(1.702)
    exact = [mpmath.mpf(float(v)) / (1 + mpmath.exp(-c * float(v))) for v in x]
    # the NumPy fallback rounds e^z into the subnormals before the product (float32 x = -60)
    np.testing.assert_allclose(fastact.quick_gelu(x), np.array([float(e) for e in exact], dtype),
                               rtol=3 * np.finfo(dtype).eps, atol=float(np.finfo(dtype).tiny))
    assert np.signbit(fastact.quick_gelu(x)[4])  # -0.0 * sigmoid(0), as PyTorch
    silu_grad = fastact.silu.grad((x.astype(np.float64) * 1.702))
    np.testing.assert_allclose(fastact.quick_gelu.grad(x), silu_grad.astype(dtype), rtol=64 * np.finfo(dtype).eps,
                               atol=np.finfo(dtype).eps)


@pytest.mark.parametrize("name", ["threshold", "relu_squared", "tanhshrink", "quick_gelu"])
def test_new_ops_equal_pytorch_autograd(name, dtype):
    """Values and gradients against torch 2.13.0's function or expression, where that is
    accurate (tanhshrink away from 0, where x - tanh(x) cancels)."""
    torch = pytest.importorskip("torch")
    from fastact._activations import torch_function

    op = fastact.ACTIVATIONS[name]
    x = np.concatenate([np.linspace(-20, 20, 4001), [0.0, -0.0, np.inf, -np.inf]]).astype(dtype)
    if name == "tanhshrink":
        x = x[np.abs(x) >= 1]
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    ty = torch_function(op._act, torch)(tx)
    g = np.linspace(-2, 2, x.size).astype(dtype)
    ty.backward(torch.from_numpy(g))
    finite = np.isfinite(x)  # at +-inf torch's expressions give NaN where fastact gives the limits
    eps = float(np.finfo(dtype).eps)
    # PyTorch rounds 1.702 x before the exponential: |1.702 x| / 2 ULP in the tail
    rtol = eps * (4 + np.abs(1.702 * x[finite].astype(np.float64)))
    mine, theirs = op(x)[finite].astype(np.float64), ty.detach().numpy()[finite]
    assert np.all(np.abs(mine - theirs) <= rtol * np.abs(theirs) + float(np.finfo(dtype).tiny)), name
    mine, theirs = op.backward(g, x=x)[finite].astype(np.float64), tx.grad.numpy()[finite]
    assert np.all(np.abs(mine - theirs) <= 4 * rtol * np.abs(theirs) + 8 * eps), name
