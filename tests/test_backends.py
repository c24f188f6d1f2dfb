"""The numba and numpy backends agree; backend and thread controls."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastact

from .conftest import assert_ulp_close

ELEMENTWISE = list(fastact.ACTIVATIONS.values())


def _floats(dtype):
    width = 32 if dtype == np.float32 else 64
    return st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True, width=width)


def _arrays(dtype, max_dims=3):
    return hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=max_dims, max_side=7), elements=_floats(dtype))


def _layout(data, x):
    """x as it may come: C order, transposed (F order) or strided (every other element)."""
    layout = data.draw(st.sampled_from(["C", "T", "strided"]), label="layout")
    if layout == "T":
        return x.T
    if layout == "strided" and x.ndim:
        return np.repeat(x, 2, axis=-1)[..., ::2]
    return x


def _both(fn):
    with fastact.use_backend("numba"):
        a = fn()
    with fastact.use_backend("numpy"):
        b = fn()
    return a, b


def _assert_agree(a, b, max_ulp, dtype):
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    # The NumPy fallbacks are the plain stable formulas (a few ULP); below the normal
    # range both are compared absolutely, in units of the smallest normal.
    tiny = np.finfo(dtype).tiny
    small = (np.abs(a) < tiny) | (np.abs(b) < tiny)
    assert np.all(np.abs(a[small].astype(np.float64) - b[small]) <= tiny)
    assert_ulp_close(np.where(small, 0, a).astype(dtype), np.where(small, 0, b).astype(dtype), max_ulp)


@pytest.mark.parametrize("op", ELEMENTWISE, ids=lambda o: o.name)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@given(data=st.data())
def test_elementwise_backends_agree(op, dtype, data):
    x = _layout(data, data.draw(_arrays(dtype), label="x"))
    g = data.draw(hnp.arrays(dtype, x.shape, elements=st.floats(-4, 4, width=32 if dtype == np.float32 else 64)),
                  label="g")
    eps = np.finfo(dtype).eps
    # gelu's NumPy fallback rounds x / sqrt(2) before erfc, which costs about x**2 / 2 ULP
    # in the negative tail (55 ULP at x = -6, 290 at x = -24); the numba kernel carries
    # x**2 exactly.  So for gelu the agreement is relative, scaled by x**2 / 2.
    forward_ulp = 4
    if op.name == "gelu":
        a, b = (np.asarray(v, np.float64) for v in _both(lambda: op(x)))
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        finite = np.isfinite(a) & np.isfinite(b)
        x64 = np.clip(np.nan_to_num(x.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0), -1e3, 1e3)[finite]
        bound = eps * (0.5 * x64 * x64 + 8) * np.abs(b[finite]) + 4 * np.finfo(dtype).smallest_subnormal
        assert np.all(np.abs(a[finite] - b[finite]) <= bound)
        np.testing.assert_array_equal(a[~finite], b[~finite])
    else:
        _assert_agree(*_both(lambda: op(x)), forward_ulp, dtype)
    # derivatives that cross zero (silu, mish, gelu) cancel there: a few ULPs of the
    # terms' size (~1/4), so the agreement of derivatives is mixed absolute/relative
    a, b = _both(lambda: op.grad(x))
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a, b, rtol=8 * eps, atol=2 * eps)
    a, b = _both(lambda: op.backward(g, x=x))
    np.testing.assert_allclose(a, b, rtol=8 * eps, atol=2 * eps * float(np.max(np.abs(g), initial=0)) + 4 * np.finfo(dtype).smallest_subnormal)
    if op.supports_y():
        # f' from y cancels where y saturates (1 - y**2, y (1 - y)): agreement there is
        # absolute, a few ULPs of |g|
        y = op(x)
        a, b = _both(lambda: op.backward(g, y=y))
        np.testing.assert_allclose(a, b, rtol=8 * eps, atol=8 * eps * float(np.max(np.abs(g), initial=0)) + 4 * np.finfo(dtype).smallest_subnormal)
    (va, ga), (vb, gb) = _both(lambda: op.value_and_grad(x))
    if op.name != "gelu":  # gelu's values are compared above
        _assert_agree(va, vb, forward_ulp, dtype)
    np.testing.assert_allclose(ga, gb, rtol=8 * eps, atol=2 * eps)


@pytest.mark.parametrize("op", [fastact.softmax, fastact.log_softmax], ids=lambda o: o.name)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@given(data=st.data())
def test_row_backends_agree(op, dtype, data):
    # finite inputs of moderate size; rows with inf/NaN are covered in test_semantics
    width = 32 if dtype == np.float32 else 64
    x = data.draw(hnp.arrays(dtype, hnp.array_shapes(min_dims=1, max_dims=3, max_side=9),
                             elements=st.floats(-50, 50, width=width)), label="x")
    x = _layout(data, x)
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1), label="axis")
    a, b = _both(lambda: op(x, axis=axis))
    eps = np.finfo(dtype).eps
    # the NumPy fallback rounds x - max before exp: up to |x - max| * eps relative
    np.testing.assert_allclose(a, b, rtol=256 * eps, atol=8 * np.finfo(dtype).tiny)


def test_backend_controls():
    assert fastact.get_backend() == "numba"
    with fastact.use_backend("numpy") as name:
        assert name == "numpy" and fastact.get_backend() == "numpy"
        with fastact.use_backend("numba"):
            assert fastact.get_backend() == "numba"
        assert fastact.get_backend() == "numpy"
    assert fastact.get_backend() == "numba"
    fastact.set_backend("numpy")
    try:
        assert fastact.get_backend() == "numpy"
    finally:
        fastact.set_backend("numba")
    with pytest.raises(ValueError, match="name must be one of"):
        fastact.set_backend("cuda")
    with pytest.raises(ValueError, match="name"):
        with fastact.use_backend("torch"):
            pass


def _run(code, **env):
    full_env = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=full_env, timeout=300)


def test_environment_variable_selects_backend():
    result = _run("import fastact; print(fastact.get_backend())", FASTACT_BACKEND="numpy")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "numpy"
    bad = _run("import fastact", FASTACT_BACKEND="gpu")
    assert bad.returncode != 0 and "FASTACT_BACKEND" in bad.stderr


def test_without_numba_the_numpy_backend_is_used_with_one_warning():
    code = """
        import sys, warnings
        sys.modules["numba"] = None  # makes "import numba" fail
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import fastact
            y = fastact.sigmoid([0.0, 1.0])
            s = fastact.softmax([2.0, 10.0, 1.0, 4.0])
        print(fastact.get_backend(), len(caught), "numba" in str(caught[0].message), round(float(s[1]), 6), y[0])
    """
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["numpy", "1", "True", "0.997071", "0.5"]


def test_threads():
    n = fastact.get_num_threads()
    try:
        fastact.set_num_threads(1)
        assert fastact.get_num_threads() == 1
        x = np.random.default_rng(0).normal(size=1 << 18).astype(np.float32)
        single = fastact.sigmoid(x)
        fastact.set_num_threads(n)
        np.testing.assert_array_equal(fastact.sigmoid(x), single)  # serial and parallel kernels agree
    finally:
        fastact.set_num_threads(n)
    with pytest.raises(ValueError, match="n must be between 1 and"):
        fastact.set_num_threads(0)
    with pytest.raises(TypeError, match="n must be an int"):
        fastact.set_num_threads(1.5)
    with pytest.raises(TypeError, match="n must be an int"):
        fastact.set_num_threads(np.True_)


def test_threads_take_any_integer():
    n = fastact.get_num_threads()
    try:
        fastact.set_num_threads(np.int64(1))  # raised TypeError before
        assert fastact.get_num_threads() == 1
        fastact.set_num_threads(np.uint8(n))
        assert fastact.get_num_threads() == n
    finally:
        fastact.set_num_threads(n)


def test_parallel_and_serial_kernels_agree(dtype):
    # above the parallel threshold, every entry point and the row kernels
    rng = np.random.default_rng(1)
    x = rng.normal(0, 10, (1000, 400)).astype(dtype)  # relu float32 goes parallel from 240000
    g = rng.normal(size=(1000, 400)).astype(dtype)
    n = fastact.get_num_threads()
    results = []
    for threads in (1, n):
        fastact.set_num_threads(threads)
        results.append([fastact.sigmoid(x), fastact.sigmoid.backward(g, x=x), fastact.relu.value_and_grad(x)[1],
                        fastact.softmax(x), fastact.log_softmax(x, axis=0), fastact.softmax.backward(g, x)])
    fastact.set_num_threads(n)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
