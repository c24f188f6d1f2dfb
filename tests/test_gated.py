"""Gated units (glu, swiglu, geglu, reglu): values against mpmath, the unfused composition
and PyTorch's autograd; both forms (one array split along any axis, two arrays); the
parallel kernel's tasks across rows; bad input."""

import numpy as np
import pytest

import fastact
from fastact import _api, _gatedops
from fastact._gatedops import GATED_OPS


VARIANTS = [(name, {}) for name in GATED_OPS] + [("geglu", {"approximate": "tanh"})]
IDS = [name + ("_tanh" if kw else "") for name, kw in VARIANTS]
SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 3.0, -3.0, 40.0, -40.0, 1e30, -1e30, np.inf, -np.inf, np.nan]


def _halves(name, u, v):
    """(a, b) with u the activated half."""
    return GATED_OPS[name].activated_first(u, v)


def _activation(name, kw):
    return getattr(fastact, GATED_OPS[name].activation), kw


def _unfused(name, kw, u, v, g=None):
    """y, du, dv from the elementwise op: its f and f' (the same formulas), products in
    float64 rounded once, as the gated kernel forms them."""
    act, kw = _activation(name, kw)
    wide = np.float64
    fu, dfu = act(u, **kw).astype(wide), act.grad(u, **kw).astype(wide)
    v64 = v.astype(wide)
    with np.errstate(all="ignore"):  # inf times 0
        gv = v64 if g is None else g.astype(wide) * v64
        dv = fu if g is None else g.astype(wide) * fu
        return tuple(r.astype(u.dtype) for r in (v64 * fu, gv * dfu, dv))


def _grid(dtype):
    """Every pair of special values, and a spread of ordinary ones."""
    rng = np.random.default_rng(3)
    s = np.array(SPECIAL, dtype)
    u, v = np.meshgrid(s, s)
    more_u = (rng.standard_normal(2000) * 8).astype(dtype)
    more_v = (rng.standard_normal(2000) * 3).astype(dtype)
    return np.concatenate([u.ravel(), more_u]), np.concatenate([v.ravel(), more_v])


@pytest.mark.parametrize("name,kw", VARIANTS, ids=IDS)
def test_equals_the_elementwise_op_times_the_other_half(backend, dtype, name, kw):
    """The fused kernels give, bit for bit, what the elementwise op and a float64 product give,
    special values included (NaN in gives NaN, inf times 0 gives NaN as in PyTorch)."""
    u, v = _grid(dtype)
    g = np.random.default_rng(4).uniform(-2, 2, u.shape).astype(dtype)
    a, b = _halves(name, u, v)
    op = getattr(fastact, name)
    y_ref, du_ref, dv_ref = _unfused(name, kw, u, v)
    _, gdu_ref, gdv_ref = _unfused(name, kw, u, v, g)
    np.testing.assert_array_equal(op(a, b, **kw), y_ref)
    y, (da, db) = op.value_and_grad(a, b, **kw)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal((da, db), _halves(name, du_ref, dv_ref))
    np.testing.assert_array_equal(op.grad(a, b, **kw), _halves(name, du_ref, dv_ref))
    np.testing.assert_array_equal(op.backward(g, a, b, **kw), _halves(name, gdu_ref, gdv_ref))


@pytest.mark.parametrize("name,kw", VARIANTS, ids=IDS)
def test_values_against_mpmath(dtype, name, kw):
    """The kernels are within the activation's bound plus one ULP (the product's rounding)
    of the exact values, the mixed bound where f' crosses zero.  (The NumPy fallback is the
    elementwise fallback times the other half, tested above; its gelu is the textbook one.)"""
    mp = pytest.importorskip("mpmath")
    from fastact import accuracy

    mp.mp.prec = 160
    rng = np.random.default_rng(5)
    u = np.concatenate([(rng.standard_normal(300) * 6), rng.uniform(-30, 30, 100)]).astype(dtype)
    v = rng.uniform(-3, 3, u.shape).astype(dtype)
    g = rng.uniform(-2, 2, u.shape).astype(dtype)
    op = getattr(fastact, name)
    act = op._activation._bind((), dict(kw))[0]
    a, b = _halves(name, u, v)
    y = op(a, b, **kw)
    du, dv = _halves(name, *op.backward(g, a, b, **kw))
    exact = [_gatedops.reference(act, mp, mp.mpf(float(ui)), mp.mpf(float(vi)), ()) for ui, vi in zip(u, v)]
    gap = dict((k, gap) for case, k, gap in act.known_gaps if case == "forward").get(np.dtype(dtype).name)
    bound = (0.5 if act.correctly_rounded else (gap or 2.0) + 1.0)
    grad_bound = 0.5 if act.correctly_rounded else 5.0
    floor = 0.25 * np.abs(g.astype(float) * v.astype(float)) if act.derivative_crosses_zero else 0.0
    assert accuracy.ulp_errors(y, (e[0] for e in exact), dtype).max() <= bound
    gs = [mp.mpf(float(x)) for x in g]
    assert accuracy.ulp_errors(du, (gi * e[1] for gi, e in zip(gs, exact)), dtype, floor=floor).max() <= grad_bound
    assert accuracy.ulp_errors(dv, (gi * e[2] for gi, e in zip(gs, exact)), dtype).max() <= bound


@pytest.mark.parametrize("name,kw", VARIANTS, ids=IDS)
@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_matches_pytorch_autograd_along_any_axis(backend, dtype, name, kw, axis):
    """PyTorch's halves, axis and gradients of both halves.  PyTorch runs in float64: its
    float32 erf-based gelu is off by 1e-5 relative below -2 (fastact is not, as the mpmath
    test shows), and its float64 one loses digits to cancellation in the tail, so the
    tolerance is absolute there."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    x = (rng.standard_normal((4, 6, 8)) * 3).astype(dtype)
    op = getattr(fastact, name)
    y = op(x, axis=axis, **kw)
    g = rng.standard_normal(y.shape).astype(dtype)
    dx = op.backward(g, x, axis=axis, **kw)
    tx = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
    ty = eval(GATED_OPS[name].torch, {"torch": torch, "F": torch.nn.functional, "x": tx, "dim": axis,
                                      "approximate": kw.get("approximate", "none")})
    ty.backward(torch.from_numpy(g.astype(np.float64)))
    eps = float(np.finfo(dtype).eps)
    for got, want in ((y, ty.detach().numpy()), (dx, tx.grad.numpy())):
        np.testing.assert_allclose(got, want, rtol=8 * eps, atol=8 * eps * np.abs(want).max())
    np.testing.assert_array_equal(op(x, dim=axis, **kw), y)
    moved = np.moveaxis(op(np.moveaxis(x, axis, -1), **kw), -1, axis)
    np.testing.assert_array_equal(moved, y)


def test_two_arrays_broadcast_and_their_gradients_are_summed_as_pytorch_does(backend):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    a = rng.standard_normal((5, 1, 4))
    b = rng.standard_normal((3, 4))
    g = rng.standard_normal((5, 3, 4))
    da, db = fastact.swiglu.backward(g, a, b)
    assert da.shape == a.shape and db.shape == b.shape
    ta = torch.from_numpy(a).requires_grad_(True)
    tb = torch.from_numpy(b).requires_grad_(True)
    (torch.nn.functional.silu(ta) * tb).backward(torch.from_numpy(g))
    np.testing.assert_allclose(da, ta.grad.numpy(), rtol=1e-13)
    np.testing.assert_allclose(db, tb.grad.numpy(), rtol=1e-13)
    np.testing.assert_allclose(fastact.swiglu(a, b), fastact.silu(a) * b, rtol=1e-15)


def test_split_form_equals_two_array_form(backend, dtype):
    x = np.random.default_rng(8).standard_normal((3, 10)).astype(dtype)
    for name in GATED_OPS:
        op = getattr(fastact, name)
        a, b = x[:, :5], x[:, 5:]
        np.testing.assert_array_equal(op(x), op(a, b))
        np.testing.assert_array_equal(op.grad(x), np.concatenate(op.grad(a, b), axis=1))
        g = np.ones((3, 5), dtype)
        np.testing.assert_array_equal(op.backward(g, x), op.grad(x))
        y, dx = op.value_and_grad(x)
        np.testing.assert_array_equal(y, op(x))
        np.testing.assert_array_equal(dx, op.grad(x))


def test_backends_agree(dtype):
    x = (np.random.default_rng(9).standard_normal((7, 2 * 33)) * 4).astype(dtype)
    g = np.random.default_rng(10).standard_normal((7, 33)).astype(dtype)
    for name, kw in VARIANTS:
        op = getattr(fastact, name)
        with fastact.use_backend("numpy"):
            y, dx = op(x, **kw), op.backward(g, x, **kw)
        eps = float(np.finfo(dtype).eps)  # the fallbacks' gelu and silu' are the textbook formulas
        for got, want in ((op(x, **kw), y), (op.backward(g, x, **kw), dx)):
            np.testing.assert_allclose(got, want, rtol=64 * eps, atol=64 * eps * np.abs(want).max())


@pytest.mark.parametrize("shape,axis", [((3, 2 * 20000), -1), ((1, 2 * 70000), -1), ((40000, 2), -1),
                                        ((2, 6, 5000), 1), ((6, 3, 7000), 0)])
def test_parallel_tasks_split_rows_anywhere(monkeypatch, shape, axis):
    """The parallel kernel's tasks of GATED_TASK outputs start and end inside rows, span
    several short rows, or one long row: the same bits as the serial kernel."""
    x = np.random.default_rng(11).standard_normal(shape).astype(np.float32)
    g = np.random.default_rng(12).standard_normal(fastact.swiglu(x, axis=axis).shape).astype(np.float32)
    for name in GATED_OPS:
        op = getattr(fastact, name)
        monkeypatch.setattr(_api, "_goes_parallel", lambda *args: False)
        serial = op(x, axis=axis), op.backward(g, x, axis=axis), op.value_and_grad(x, axis=axis)
        monkeypatch.setattr(_api, "_goes_parallel", lambda *args: True)
        parallel = op(x, axis=axis), op.backward(g, x, axis=axis), op.value_and_grad(x, axis=axis)
        np.testing.assert_array_equal(serial[0], parallel[0])
        np.testing.assert_array_equal(serial[1], parallel[1])
        np.testing.assert_array_equal(serial[2][0], parallel[2][0])
        np.testing.assert_array_equal(serial[2][1], parallel[2][1])


def test_out_is_written_in_place_and_inputs_are_not(backend):
    x = np.random.default_rng(13).standard_normal((4, 8)).astype(np.float32)
    keep = x.copy()
    out = np.full((4, 4), np.nan, np.float32)
    assert fastact.swiglu(x, out=out) is out
    np.testing.assert_array_equal(out, fastact.swiglu(x))
    y, d = np.empty((4, 4), np.float32), np.empty((4, 8), np.float32)
    got = fastact.glu.value_and_grad(x, out=(y, d))
    assert got[0] is y and got[1] is d
    np.testing.assert_array_equal(d, fastact.glu.grad(x))
    # an out that overlaps the input: computed aside, then written
    overlap = x.copy()
    expected = fastact.geglu(overlap)
    assert fastact.geglu(overlap, out=overlap[:, :4]) is not None
    np.testing.assert_array_equal(overlap[:, :4], expected)
    strided = np.empty((4, 8), np.float32)[:, ::2]
    np.testing.assert_array_equal(fastact.reglu(x, out=strided), fastact.reglu(x))
    np.testing.assert_array_equal(x, keep)


def test_dtypes(backend):
    x = np.linspace(-2, 2, 8).reshape(2, 4)
    assert fastact.swiglu(x.astype(np.float16)).dtype == np.float16
    np.testing.assert_allclose(fastact.swiglu(x.astype(np.float16)), fastact.swiglu(x), rtol=2e-3, atol=1e-3)
    assert fastact.swiglu(np.arange(4)).dtype == np.float64
    assert fastact.swiglu.backward(np.ones(2, np.float32), np.ones(4, np.float32)).dtype == np.float32
    assert fastact.swiglu.backward(np.ones(2), np.ones(4, np.float32)).dtype == np.float64
    assert fastact.swiglu(np.ones((0, 4))).shape == (0, 2)
    assert fastact.swiglu.backward(np.ones((3, 0)), np.ones((3, 0))).shape == (3, 0)


@pytest.mark.parametrize("call,error,message", [
    (lambda: fastact.swiglu(np.ones((2, 3))), ValueError, "swiglu splits axis 1 of x in two halves: its length must be even, got 3"),
    (lambda: fastact.glu(np.float64(1.0)), ValueError, "glu: x must have at least one dimension"),
    (lambda: fastact.swiglu(np.ones(4), axis=1), ValueError, "axis 1 is out of range"),
    (lambda: fastact.swiglu(np.ones(4), axis=0.5), TypeError, "axis must be"),
    (lambda: fastact.swiglu(np.ones(4), np.ones(3)), ValueError, "a with shape (4,) does not broadcast against b"),
    (lambda: fastact.swiglu(np.ones(4), np.ones(4), axis=0), TypeError, "a and b are the halves already"),
    (lambda: fastact.reglu.backward(np.ones(3), np.ones(4)), ValueError, "grad_out must have y's shape (2,)"),
    (lambda: fastact.swiglu(np.ones((2, 4)), out=np.ones((2, 4))), ValueError, "out must have shape (2, 2)"),
    (lambda: fastact.swiglu(np.ones(4), out=np.ones(2, np.float32)), TypeError, "out must have dtype float64"),
    (lambda: fastact.swiglu.value_and_grad(np.ones(4), out=np.ones(2)), TypeError, "out must be None or a tuple"),
    (lambda: fastact.geglu(np.ones(4), approximate="fast"), ValueError, "approximate must be one of"),
    (lambda: fastact.swiglu(np.ones(4), alpha=1.0), TypeError, "swiglu() got an unexpected keyword argument 'alpha'"),
    (lambda: fastact.glu.grad(np.ones(4), approximate="tanh"), TypeError, "glu.grad() got an unexpected keyword"),
    (lambda: fastact.swiglu(["a", "b"]), TypeError, "x must have a real dtype"),
    (lambda: fastact.swiglu(np.ones(4), axis=0, dim=0), TypeError, "dim is another name of axis"),
])
def test_bad_input_is_named(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)


def test_public_and_documented():
    for name, d in GATED_OPS.items():
        op = getattr(fastact, name)
        assert isinstance(op, fastact.GatedOp) and name in fastact.__all__ and name not in fastact.ACTIVATIONS
        assert op.params == getattr(fastact, d.activation).params
        assert f".backward(grad_out, x)" in op.__doc__ and repr(op).startswith(f"<fastact op {name}(x, axis=-1")
    import doctest

    for name in GATED_OPS:
        finder = doctest.DocTestFinder()
        runner = doctest.DocTestRunner()
        for test in finder.find(getattr(fastact, name), name, globs={}):
            runner.run(test)
        assert runner.failures == 0 and runner.tries > 0


def test_a_gated_unit_is_one_definition(monkeypatch):
    """A definition naming an elementwise op and a half is the whole of a new gated unit:
    kernels, fallback, parameters (the activation's) and checks follow."""
    definition = _gatedops.GatedDefinition("elu_gate", "elu", 1, "b gated by elu(a)... test only.", "a elu(b)",
                                           "x.chunk(2, dim)[0] * F.elu(x.chunk(2, dim)[1])", "")
    monkeypatch.setitem(_gatedops.GATED_OPS, "elu_gate", definition)
    op = _api.public_ops()["elu_gate"]
    x = np.array([[0.5, -1.0, 2.0, -3.0], [1.0, 2.0, -0.5, 4.0]])
    a, b = x[:, :2], x[:, 2:]
    for backend in ("numba", "numpy"):
        with fastact.use_backend(backend):
            np.testing.assert_allclose(op(x, alpha=0.5), a * fastact.elu(b, alpha=0.5), rtol=1e-15)
            dx = op.backward(np.ones((2, 2)), x, alpha=0.5)
            np.testing.assert_allclose(dx[:, :2], fastact.elu(b, alpha=0.5), rtol=1e-15)
            np.testing.assert_allclose(dx[:, 2:], a * fastact.elu.grad(b, alpha=0.5), rtol=1e-15)
    with pytest.raises(ValueError, match="alpha"):
        op(x, alpha=float("inf"))
