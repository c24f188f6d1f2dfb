"""Values against references: the tutorial's figures, SciPy and mpmath (in ULPs)."""

import numpy as np
import pytest
import scipy.special

import fastact
from fastact import accuracy

from .conftest import FLOAT_DTYPES, assert_ulp_close

TUTORIAL_SCORES = [2, 10, 1, 4]
TUTORIAL_SOFTMAX = [0.000334, 0.997071, 0.000123, 0.002471]


def test_tutorial_softmax_table(backend):
    y = fastact.softmax(TUTORIAL_SCORES)
    np.testing.assert_array_equal(np.round(y, 6), TUTORIAL_SOFTMAX)
    assert y.sum() == pytest.approx(1.0, abs=1e-15)
    assert int(np.argmax(y)) == 1  # "cat"


def test_tutorial_softmax_float32(backend):
    y = fastact.softmax(np.array(TUTORIAL_SCORES, np.float32))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, TUTORIAL_SOFTMAX, atol=5e-7)


def test_tutorial_sigmoid_threshold_and_peak_derivative(backend):
    assert fastact.sigmoid(0.0) == 0.5
    x = np.linspace(-8, 8, 1601)
    d = fastact.sigmoid.grad(x)
    assert d.max() == 0.25
    assert x[np.argmax(d)] == 0.0
    assert np.all(d <= 0.25)
    y = fastact.sigmoid(x)
    np.testing.assert_array_equal(y >= 0.5, x >= 0)  # the binary-classification threshold


def test_tutorial_relu(backend):
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    np.testing.assert_array_equal(fastact.relu(x), [0, 0, 0, 0.5, 2.0])
    np.testing.assert_array_equal(fastact.relu.grad(x), [0, 0, 0, 1, 1])


@pytest.mark.parametrize("dt", FLOAT_DTYPES)
def test_sigmoid_against_scipy(backend, dt):
    x = np.random.default_rng(1).normal(0, 20, 20000).astype(dt)
    assert_ulp_close(fastact.sigmoid(x), scipy.special.expit(x.astype(np.float64)).astype(dt), 3)


@pytest.mark.parametrize("dt", FLOAT_DTYPES)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_and_log_softmax_against_scipy(backend, dt, axis):
    x = np.random.default_rng(2).normal(0, 5, (37, 53)).astype(dt)
    ref = x.astype(np.float64)
    tol = 1e-5 if dt == np.float32 else 1e-12
    y = fastact.softmax(x, axis=axis)
    assert y.dtype == dt
    np.testing.assert_allclose(y, scipy.special.softmax(ref, axis=axis), rtol=tol, atol=0)
    np.testing.assert_allclose(fastact.log_softmax(x, axis=axis), scipy.special.log_softmax(ref, axis=axis),
                               rtol=tol, atol=0)


@pytest.mark.parametrize("dt", FLOAT_DTYPES)
def test_softmax_backward_against_formula(backend, dt):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(8, 40)).astype(dt)
    g = rng.normal(size=(8, 40)).astype(dt)
    y = fastact.softmax(x).astype(np.float64)
    ref = y * (g - np.sum(g * y, axis=-1, keepdims=True))
    np.testing.assert_allclose(fastact.softmax.backward(g, y.astype(dt)), ref, rtol=1e-4 if dt == np.float32 else 1e-11,
                               atol=1e-6 if dt == np.float32 else 1e-14)
    ly = fastact.log_softmax(x)
    lref = g - np.exp(ly.astype(np.float64)) * np.sum(g, axis=-1, keepdims=True)
    np.testing.assert_allclose(fastact.log_softmax.backward(g, ly), lref, rtol=1e-4 if dt == np.float32 else 1e-11,
                               atol=1e-5 if dt == np.float32 else 1e-13)


def test_softmax_backward_is_the_jacobian_product():
    # against finite differences of sum(g * softmax(x))
    rng = np.random.default_rng(4)
    x = rng.normal(size=6)
    g = rng.normal(size=6)
    h = 1e-6
    numeric = np.array([(np.dot(g, fastact.softmax(x + h * e)) - np.dot(g, fastact.softmax(x - h * e))) / (2 * h)
                        for e in np.eye(6)])
    np.testing.assert_allclose(fastact.softmax.backward(g, fastact.softmax(x)), numeric, rtol=1e-6, atol=1e-9)
    numeric_log = np.array([(np.dot(g, fastact.log_softmax(x + h * e)) - np.dot(g, fastact.log_softmax(x - h * e)))
                            / (2 * h) for e in np.eye(6)])
    np.testing.assert_allclose(fastact.log_softmax.backward(g, fastact.log_softmax(x)), numeric_log, rtol=1e-6,
                               atol=1e-9)


# --- ULP bounds against mpmath on the numba backend (the full sweep is python -m fastact.accuracy) ---
_BOUNDED_CASES = [c for c in accuracy.elementwise_cases() + accuracy.row_cases() if c.bound is not None]


@pytest.mark.parametrize("case", _BOUNDED_CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("dt", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_ulp_bound_against_mpmath(case, dt):
    worst = accuracy.measure(case, dt, "numba", points=1500, seed=7)
    bound = (case.known_gap or {}).get(np.dtype(dt).name, case.bound)
    assert worst <= bound, f"{case.name} {np.dtype(dt).name}: {worst:.2f} ULP > {bound}"


# The worst points the full sweep (20000 points, seed 0) found over their bound:
# tanh' = 4 e^(-2|x|) rounded to a subnormal before the factor 4 g quadrupled
# that rounding; x sigmoid(v) for gelu(approximate='tanh') rounded twice.
_SWEEP_WORST_POINTS = [
    ("tanh.backward(g, x=x)", np.float64, [371.21212121212125, -372.56225622562255], [-1.985663951925046, 1.92]),
    ("tanh.backward(g, x=x)", np.float32, [-51.936195373535156, 44.85148620605469], [1.8775092, -1.8544474]),
    ("tanh.grad", np.float64, [371.21212121212125, -740.0], [1.0, 1.0]),
    ("gelu(approximate='tanh')", np.float32, [-1.3403584957122803, -3.201320171356201], [1.0, 1.0]),
    ("gelu(approximate='tanh')", np.float64, [-6.675667566756715, -17.776777677767768], [1.0, 1.0]),
]


@pytest.mark.parametrize("name, dt, x, g", _SWEEP_WORST_POINTS,
                         ids=[f"{c[0]}-{np.dtype(c[1]).name}" for c in _SWEEP_WORST_POINTS])
def test_ulp_bound_at_the_full_sweeps_worst_points(name, dt, x, g):
    case = {c.name: c for c in accuracy.elementwise_cases()}[name]
    errors = accuracy.elementwise_errors(case, np.array(x, dt), np.array(g, dt))
    assert errors.max() <= case.bound, f"{name} {np.dtype(dt).name}: {errors} ULP > {case.bound}"


@pytest.mark.parametrize("case", accuracy.row_cases(), ids=lambda c: c.name)
def test_softmax_of_a_long_float64_row(case):
    # 65536 terms at scale 4: one sum split over vector lanes, as the row kernels
    # had, lost 15 ULP on this row; blocked and compensated sums keep under 3.
    row = np.random.default_rng(0).normal(0, 4, (1, 65536))
    worst = accuracy.max_row_error(case, row)
    assert worst <= case.bound, f"{case.name}: {worst:.2f} ULP > {case.bound}"


@pytest.mark.parametrize("dt", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("n", [3, 10, 20])
def test_short_rows_in_many_blocks(dt, n):
    # 7003 rows of n: parallel, many blocks of _config.ROW_BLOCK rows and a short
    # last one.  Each row gets the bits the gufunc gives it alone; sampled rows
    # (block edges, a row dominated by one entry) are within the bound of mpmath's,
    # and rows with infinities and NaN give what the NumPy backend gives.
    rng = np.random.default_rng(n)
    x = (rng.standard_normal((7003, n)) * 6).astype(dt)
    x[1000, 0] = 60.0
    special = [3001, 5002, 6003]
    x[3001, :] = -np.inf
    x[5002, 1] = np.nan
    x[6003, 0] = np.inf
    g = rng.standard_normal(x.shape).astype(dt)
    sample = [0, 255, 256, 257, 1000, 6999, 7002] + list(range(100, 7003, 500))
    cases = {case.name: case for case in accuracy.row_cases()}
    for op in (fastact.softmax, fastact.softmin, fastact.log_softmax):
        case = cases[op.name]
        y = op(x)
        np.testing.assert_array_equal(y, op.gufunc(x), err_msg=op.name)
        worst = accuracy.max_row_error(case, x[sample])
        assert worst <= case.bound, f"{op.name}: {worst:.2f} ULP > {case.bound}"
        odd = [r for r in special if not np.isfinite(y[r]).all()]  # softmin's +inf row is an ordinary one
        assert len(odd) >= 2, op.name
        with fastact.use_backend("numpy"):
            np.testing.assert_array_equal(y[odd], op(x[odd]), err_msg=op.name)
        back = op.backward(g, y)
        np.testing.assert_array_equal(back, op.backward_gufunc(g, y), err_msg=op.name)
        with fastact.use_backend("numpy"):
            back_expected = op.backward(g, y)
        finite = np.isfinite(y).all(axis=1)
        atol = 8 * np.finfo(dt).eps * np.abs(g[finite]).sum(axis=1, keepdims=True)
        assert np.all(np.abs(back[finite].astype(np.float64) - back_expected[finite]) <= atol), op.name


@pytest.mark.parametrize("dt", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("n", [2, 5, 6, 7, 12, 13, 100, 1000])
@pytest.mark.parametrize("op", [fastact.softmax, fastact.log_softmax], ids=lambda o: o.name)
@pytest.mark.parametrize("inner", [40, 10, 3])
def test_softmax_rows_agree_on_every_axis(op, dt, n, inner):
    # Along the last axis and in the gufuncs, short rows (per op and dtype:
    # this machine's short_row_max, _tuning) run the block formulation, longer rows the row one,
    # bit for bit the same in both.  Other axes run the lanes formulation (grouped
    # lanes with few lanes, inner 10 and 3, where a group size divides n): the
    # sums differ in order, so results differ by a few ULP.
    rng = np.random.default_rng(n)
    x = (rng.standard_normal((3, n, inner)) * 6).astype(dt)
    g = rng.standard_normal(x.shape).astype(dt)
    x_last, g_last = (np.ascontiguousarray(np.moveaxis(a, 1, -1)) for a in (x, g))
    y_last = op(x_last)
    y = np.moveaxis(y_last, -1, 1)
    results = {  # name: (along axis 1, along the last axis, from the gufunc on the last axis)
        op.name: (op(x, axis=1), op(x_last), op.gufunc(x_last)),
        f"{op.name}_backward": (op.backward(g, y, axis=1), op.backward(g_last, y_last),
                                op.backward_gufunc(g_last, y_last)),
    }
    np.testing.assert_array_equal(op(np.moveaxis(x_last, -1, 1), axis=1), results[op.name][0])  # a strided x
    for name, (along_1, along_last, from_gufunc) in results.items():
        np.testing.assert_array_equal(from_gufunc, along_last, err_msg=name)
        along_last = np.moveaxis(along_last, -1, 1)
        if name == op.name:
            assert_ulp_close(along_1, along_last, 8)
        else:  # g - sum(...) cancels: the sums' last bits show up in absolute terms
            atol = 8 * np.finfo(dt).eps * np.abs(g).sum(axis=1, keepdims=True)
            assert np.all(np.abs(along_1.astype(np.float64) - along_last) <= atol), name


@pytest.mark.parametrize("dt", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape, group", [((8192, 10), 16), ((8190, 10), 2), ((4096, 20), 1)],
                         ids=["grouped", "grouped-by-2", "plain-lanes"])
@pytest.mark.parametrize("op", [fastact.softmax, fastact.log_softmax], ids=lambda o: o.name)
def test_rows_split_over_tasks_agree_with_the_last_axis(op, dt, shape, group):
    # Axis 0 of (n, few) runs split lanes: each task takes a range of rows and the
    # tasks' maxima and sums are combined between passes.  Through the API (split
    # over the threads, if more than one) and the kernel with 3 uneven ranges.
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(shape) * 6).astype(dt)
    g = rng.standard_normal(shape).astype(dt)
    y_last = op(np.ascontiguousarray(x.T))
    assert_ulp_close(op(x, axis=0), y_last.T, 8)
    x3, g3, y3 = (a.reshape(1, *shape) for a in (x, g, np.ascontiguousarray(y_last.T)))
    out = np.empty_like(x3)
    fastact._kernels.row_kernel(op.name, True, form="split_lanes")(x3, out, group, 3)
    assert_ulp_close(out[0], y_last.T, 8)
    backward_last = op.backward(np.ascontiguousarray(g.T), y_last).T
    tolerance = 64 * np.finfo(dt).eps * np.abs(backward_last).max()
    np.testing.assert_allclose(op.backward(g, y3[0], axis=0), backward_last, rtol=0, atol=tolerance)
    fastact._kernels.row_kernel(f"{op.name}_backward", True, form="split_lanes")(g3, y3, out, group, 3)
    np.testing.assert_allclose(out[0], backward_last, rtol=0, atol=tolerance)


@pytest.mark.parametrize("dt", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_log_softmax_of_a_dominant_entry_keeps_the_tiny_answer(backend, dt):
    # log_softmax of the maximum is -log1p(tiny): the log of the rounded sum would give 0
    x = np.array([0.0, -30.0], dt)
    expected = -np.log1p(np.exp(-30.0))
    assert_ulp_close(fastact.log_softmax(x)[0], np.array(expected, dt), 4)


@pytest.mark.parametrize("dt", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_sigmoid_derivative_far_tail_is_relative_exact(dt):
    # sigmoid'(x) = e^x / (1 + e^x)^2 ~ e^x for very negative x, down to the subnormals;
    # y * (1 - y) would give 0 or lose every digit there.
    x = np.array([-20.0, -50.0, -80.0, -90.0, -100.0] if dt == np.float32 else [-40.0, -300.0, -700.0, -740.0], dt)
    import mpmath

    mpmath.mp.prec = 120
    exact = np.array([float(mpmath.exp(v) / (1 + mpmath.exp(v)) ** 2) for v in x.tolist()]).astype(dt)
    assert_ulp_close(fastact.sigmoid.grad(x), exact, 4)
    assert np.all(fastact.sigmoid.grad(x) > 0)


@pytest.mark.parametrize("dt", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_tanh_derivative_far_tail_is_relative_exact_and_positive(dt):
    # tanh'(x) = 4 e^(-2|x|) into the subnormals, then +0 (it gave -0.0 beyond them)
    big = {np.float32: [30.0, 44.0, -51.9, 52.6, 60.0, 1e30, np.inf],
           np.float64: [200.0, 354.5, -371.2, 372.9, 400.0, 1e300, np.inf]}[dt]
    x = np.array(big, dt)
    import mpmath

    mpmath.mp.prec = 120
    exact = np.array([float(4 * mpmath.exp(-2 * abs(mpmath.mpf(v)))) for v in x.tolist()]).astype(dt)
    assert_ulp_close(fastact.tanh.grad(x), exact, 2)
    assert not np.signbit(fastact.tanh.grad(x)).any()
    assert not np.signbit(fastact.tanh.backward(np.ones_like(x), x=x)).any()


@pytest.mark.parametrize("dt", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_silu_and_mish_far_tails_are_relative_exact(dt):
    # Below TAIL, x sigmoid(x) and x tanh(softplus(x)) are x e^x, and their derivatives
    # (x + 1) e^x, into the subnormals, formed from the same exp as exp(-|x|) above it
    # (exp_nonpositive_and_times): x times an already rounded subnormal e^x would be off
    # by up to |x| half-ULPs.
    x = np.array([-39.0, -41.0, -88.0, -95.0, -100.0, -103.0] if dt == np.float32
                 else [-39.0, -41.0, -700.0, -720.0, -745.0, -750.0], dt)
    import mpmath

    mpmath.mp.prec = 120
    xs = [mpmath.mpf(v) for v in x.tolist()]
    sig = [1 / (1 + mpmath.exp(-v)) for v in xs]
    tsp = [mpmath.tanh(mpmath.log1p(mpmath.exp(v))) for v in xs]
    expected = {
        fastact.silu: [v * s for v, s in zip(xs, sig)],
        fastact.silu.grad: [s * (1 + v * (1 - s)) for v, s in zip(xs, sig)],
        fastact.mish: [v * t for v, t in zip(xs, tsp)],
        fastact.mish.grad: [t + v * (1 - t * t) * s for v, t, s in zip(xs, tsp, sig)],
    }
    for op, exact in expected.items():
        exact = np.array([float(e) for e in exact]).astype(dt)
        assert np.all(exact != 0)
        assert_ulp_close(op(x), exact, 2)


@pytest.mark.parametrize("n, t", [(100, t) for t in (30.0, 18.5, 18.4, 10.0, 1.0)]
                         + [(10, t) for t in (30.0, 16.1, 16.0, 10.0, 1.0)])
def test_float32_log_softmax_rows_on_both_sides_of_the_unfused_path(backend, n, t):
    # float32 rows take log1p(sum of all exps - 1) where that difference is at least
    # LOG_SOFTMAX_MIN_BELOW ((n - 1) e^-t is just above it at t = 18.4 for rows of
    # 100, 16.0 for short rows of 10, which run in blocks) and the sum of the terms
    # below the maximum where it is not (t = 18.5, 16.1, 30): either way the maximum's
    # tiny answer -log1p(below) and the rest stay within 2 ULP; out=x gives the same bits.
    import mpmath

    mpmath.mp.prec = 120
    half = n // 2
    x = np.array([[0.0] + [-t] * (n - 1), [5.0] * half + [5.0 - t] * (n - half)], np.float32)
    expected = []
    for row in x.tolist():
        m = max(row)
        log_total = mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(v) - m) for v in row))
        expected.append([float(mpmath.mpf(v) - m - log_total) for v in row])
    y = fastact.log_softmax(x)
    assert_ulp_close(y, np.array(expected, np.float32), 2)
    inplace = x.copy()
    fastact.log_softmax(inplace, out=inplace)
    np.testing.assert_array_equal(inplace, y)
