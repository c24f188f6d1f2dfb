"""Arrays that are not ndarrays: the ufuncs, dask arrays (lazy, any chunking) and xarray."""

import platform

import numpy as np
import pytest

import fastact

from .conftest import assert_ulp_close

da = pytest.importorskip("dask.array")
xr = pytest.importorskip("xarray")

ELEMENTWISE = list(fastact.ACTIVATIONS.values())
CHUNKINGS = [(600, 50), (100, 20), (37, 13), (600, 1)]
# Softmax rows along the last axis and along other axes are summed in different
# orders (_kernels: "the same rows, vectorised across rows"); both are within
# the accuracy sweep's 8 ULP of the exact value, so within this of each other.
ROWS_ULP_APART = 8


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).normal(0, 4, (600, 50))


def _args(op):
    return tuple(0.5 + 0.25 * i for i in range(len(op.get_ufunc().types[0]) - 3))


def _by_kernel(op, kind, *arrays):
    """``kind`` of ``op`` (default parameters) from its serial kernel: the loop template
    the parallel kernels run, a second opinion on the ufuncs (which the ops call for
    small arrays)."""
    from fastact import _kernels

    shape = np.broadcast_shapes(*(np.shape(a) for a in arrays))
    arrays = [np.ascontiguousarray(a).reshape(-1) for a in np.broadcast_arrays(*arrays)]
    outs = [np.empty_like(arrays[-1]) for _ in range(2 if kind == "value_and_grad" else 1)]
    _kernels.elementwise_kernel(op._act.name, kind, False)(*arrays, *outs, tuple(op._default_params))
    return tuple(o.reshape(shape) for o in outs) if len(outs) == 2 else outs[0].reshape(shape)


@pytest.mark.parametrize("op", ELEMENTWISE, ids=lambda o: o.name)
def test_every_op_is_a_real_ufunc(op, x):
    ufunc = op.ufunc
    assert isinstance(ufunc, np.ufunc) and ufunc.__name__ == op.name and ufunc is op.ufunc
    assert ufunc.nin == 1 + len(op.params) - ("approximate" in op.params) and ufunc.nout == 1
    assert ufunc.types == [f"f{'d' * len(op._act.params)}->f", f"d{'d' * len(op._act.params)}->d"]
    params = [v for k, v in op.params.items() if k != "approximate"]
    for dtype in (np.float32, np.float64):
        xs = x[:4].astype(dtype)
        result = ufunc(xs, *params)
        assert result.dtype == dtype
        expected = _by_kernel(op, "forward", xs)
        np.testing.assert_array_equal(result, expected)
        np.testing.assert_array_equal(op(xs), expected)
        # strided, reversed and Fortran-ordered views take the loop's strided branch
        for view in (xs[:, ::3], xs[::-1, ::-2], np.asfortranarray(xs)):
            np.testing.assert_array_equal(ufunc(view, *params), _by_kernel(op, "forward", view))


@pytest.mark.parametrize("kind", ["grad", "value_and_grad", "backward_x", "backward_y"])
@pytest.mark.parametrize("op", [fastact.sigmoid, fastact.leaky_relu, fastact.hardtanh], ids=lambda o: o.name)
def test_derivative_ufuncs(op, kind, x):
    params = list(op.params.values())
    g = np.cos(x)
    if kind in ("grad", "value_and_grad"):
        expected = _by_kernel(op, kind, x)
        np.testing.assert_array_equal(op.get_ufunc(kind)(x, *params), expected)
        np.testing.assert_array_equal(getattr(op, kind)(x[:5]), _by_kernel(op, kind, x[:5]))
    elif kind == "backward_x":
        np.testing.assert_array_equal(op.get_ufunc(kind)(g, x, *params), _by_kernel(op, kind, g, x))
        np.testing.assert_array_equal(op.backward(g[:5], x=x[:5]), _by_kernel(op, kind, g[:5], x[:5]))
    elif op is fastact.sigmoid:
        y = op(x)
        np.testing.assert_array_equal(op.get_ufunc(kind)(g, y), _by_kernel(op, kind, g, y))
    else:  # hardtanh has no f' from y; leaky_relu's holds only for positive slopes
        with pytest.raises(ValueError, match="no derivative from y"):
            op.get_ufunc(kind)


def test_value_and_grad_ufunc_has_two_outputs(x):
    ufunc = fastact.elu.get_ufunc("value_and_grad")
    assert (ufunc.nin, ufunc.nout, ufunc.__name__) == (2, 2, "elu_value_and_grad")
    y, dy = np.empty_like(x), np.empty_like(x)
    assert ufunc(x, 0.7, y, dy) == (y, dy)
    np.testing.assert_array_equal(y, fastact.elu(x, alpha=0.7))
    np.testing.assert_array_equal(dy, fastact.elu.grad(x, alpha=0.7))
    # a parameter per element (broadcast like any ufunc input) takes the strided loop
    alphas = np.linspace(0.5, 2.0, x.shape[1])
    y, _ = ufunc(x, alphas)
    np.testing.assert_array_equal(y[:, 7], fastact.elu(x[:, 7], alpha=alphas[7]))


_SPECIALS = [np.inf, -np.inf, np.nan, -np.nan, 0.0, -0.0, 5e-324, 1e-40, 1.0, -1.0, 20.0, -20.0, 88.8, -88.8,
             710.0, -710.0, 1e30, -1e30, 3e38, -3e38, 1e300, -1e300, 1.7e308, -1.7e308]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", ELEMENTWISE, ids=lambda o: o.name)
def test_ufuncs_raise_no_floating_point_flags(op, dtype):
    # NumPy checks the FP status flags after every ufunc call; the formulas raise
    # them (a NaN compared, a branch computed and discarded), and each loop puts
    # them back as it found them: no warning, no error under errstate(all="raise")
    with np.errstate(over="ignore"):
        x = np.array(_SPECIALS).astype(dtype)
    g = np.array(_SPECIALS[::-1]).astype(dtype) if dtype == np.float64 else np.ones_like(x)
    with np.errstate(all="raise"):
        for kind in ("forward", "grad", "value_and_grad", "backward_x", "backward_y"):
            try:
                ufunc = op.get_ufunc(kind)
            except ValueError:  # no f' from y
                continue
            arrays = (g, x) if kind.startswith("backward") else (x,)
            params = [v for k, v in op.params.items() if k != "approximate"]
            ufunc(*arrays, *params)
            ufunc(*(a[::-1] for a in arrays), *params)  # the strided loop
            # and the ops, which call the ufuncs for small arrays
            if kind == "forward":
                op(x)
            elif kind == "backward_x":
                op.backward(g, x=x)
    # flags raised outside the loop still count: here NumPy's own cast of the input
    params = [v for k, v in op.params.items() if k != "approximate"]
    with np.errstate(over="raise"), pytest.raises(FloatingPointError, match="overflow"):
        op.ufunc(np.array([1e300]), *params, signature=("f",) + ("d",) * len(params) + ("f",))


def test_get_ufunc_picks_the_variant():
    tanh_form = fastact.gelu.get_ufunc(approximate="tanh")
    assert tanh_form.__name__ == "gelu_tanh" and tanh_form is not fastact.gelu.ufunc
    x = np.linspace(-3, 3, 7)
    np.testing.assert_array_equal(tanh_form(x), fastact.gelu(x, approximate="tanh"))
    with pytest.raises(ValueError, match="approximate must be one of"):
        fastact.gelu.get_ufunc(approximate="erf")
    with pytest.raises(TypeError, match="unexpected keyword argument 'alpha'"):
        fastact.sigmoid.get_ufunc(alpha=1.0)
    with pytest.raises(ValueError, match="kind must be one of"):
        fastact.sigmoid.get_ufunc("gradient")


def test_row_gufuncs(x):
    assert fastact.softmax.gufunc.signature == "(n)->(n)"
    assert fastact.log_softmax.backward_gufunc.signature == "(n),(n)->(n)"
    np.testing.assert_array_equal(fastact.softmax.gufunc(x), fastact.softmax(x))
    # Along axis 0 the kernels sum each row as one lane, the gufunc along the row.
    assert_ulp_close(fastact.softmax.gufunc(x, axes=[(0,), (0,)]), fastact.softmax(x, axis=0), ROWS_ULP_APART)
    for dtype in (np.float32, np.float64):  # short rows: the block formulation, as along the last axis
        short = np.ascontiguousarray(x[:5].T, dtype)
        for op in (fastact.softmax, fastact.log_softmax):
            np.testing.assert_array_equal(op.gufunc(short), op(short))
            np.testing.assert_array_equal(op.gufunc(short.T, axes=[(0,), (0,)]).T, op(short))
    np.testing.assert_allclose(fastact.softmax.gufunc([2.0, 10.0, 1.0, 4.0]),
                               [0.000334, 0.997071, 0.000123, 0.002471], atol=5e-7)


@pytest.mark.parametrize("chunks", CHUNKINGS, ids=str)
def test_dask_elementwise_is_lazy_and_matches_numpy(x, chunks):
    dx = da.from_array(x, chunks=chunks)
    g = np.sin(x)
    dg = da.from_array(g, chunks=chunks)
    y = fastact.sigmoid(dx)
    assert isinstance(y, da.Array) and y.chunks == dx.chunks
    np.testing.assert_array_equal(y.compute(), fastact.sigmoid(x))
    value, grad = fastact.elu.value_and_grad(dx, 0.7)
    assert isinstance(value, da.Array) and isinstance(grad, da.Array)
    np.testing.assert_array_equal(value.compute(), fastact.elu(x, 0.7))
    np.testing.assert_array_equal(grad.compute(), fastact.elu.grad(x, alpha=0.7))
    np.testing.assert_array_equal(fastact.silu.backward(dg, x=dx).compute(), fastact.silu.backward(g, x=x))
    s = fastact.sigmoid(x)
    np.testing.assert_array_equal(fastact.sigmoid.backward(dg, y=da.from_array(s, chunks=chunks)).compute(),
                                  fastact.sigmoid.backward(g, y=s))
    # an ndarray beside a dask array
    np.testing.assert_array_equal(fastact.tanh.backward(g, x=dx).compute(), fastact.tanh.backward(g, x=x))


SPECIAL = np.array([[np.inf, -np.inf, np.nan, 0.0, -0.0, 1e300, -1e300, 5e-324, 3.0, -88.0]] * 4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_duck_arrays_give_no_warnings(dtype):
    # NumPy checks the FP flags after a ufunc loop, which the formulas raise in
    # branches they discard (tanh(inf)); on duck arrays fastact is as quiet as on
    # ndarrays, in dask's tasks too (the suite turns warnings into errors).
    with np.errstate(over="ignore"):
        x = SPECIAL.astype(dtype)
    g = np.ones_like(x)
    dx = da.from_array(x, chunks=(2, 5))
    xx = xr.DataArray(dx, dims=("a", "b"))
    for op in ELEMENTWISE:
        expected = (op(x), op.grad(x), op.backward(g, x=x))
        for duck in (dx, xx):
            for result, want in zip((op(duck), op.grad(duck), op.backward(g, x=duck)), expected):
                np.testing.assert_array_equal(np.asarray(result), want, err_msg=op.name)
    for op in (fastact.softmax, fastact.log_softmax):
        y = op(x)
        for axis in (0, -1):
            expected = (op(x, axis=axis), op.backward(g, op(x, axis=axis), axis=axis))
            for duck in (dx, xx):
                yd = op(duck, axis=axis)
                for result, want in zip((yd, op.backward(g, yd, axis=axis)), expected):
                    np.testing.assert_array_equal(np.asarray(result), want, err_msg=op.name)
        np.testing.assert_array_equal(op.gufunc(x), y)  # the gufuncs are as quiet


def test_dask_keeps_the_dtype_rules(x):
    assert fastact.sigmoid(da.from_array(x.astype(np.float16), chunks=100)).dtype == np.float16
    assert fastact.relu(da.arange(10, chunks=3)).dtype == np.float64
    assert fastact.relu(da.from_array(np.array([True, False]))).dtype == np.float64
    half = fastact.gelu(da.from_array(x[:3].astype(np.float32), chunks=1)).compute()
    assert half.dtype == np.float32
    np.testing.assert_array_equal(half, fastact.gelu(x[:3].astype(np.float32)))


@pytest.mark.parametrize("chunks", CHUNKINGS, ids=str)
@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("op", [fastact.softmax, fastact.log_softmax], ids=lambda o: o.name)
def test_dask_rows_whatever_the_chunking(x, op, axis, chunks):
    dx = da.from_array(x, chunks=chunks)
    y = op(dx, axis=axis)
    assert isinstance(y, da.Array)
    expected = op(x, axis=axis)
    if axis == -1:
        np.testing.assert_array_equal(y.compute(), expected)
    else:  # rows of 600 along axis 0: summed as lanes in the kernels, along rows in the gufunc
        assert_ulp_close(y.compute(), expected, ROWS_ULP_APART)
    g = np.cos(x)
    back = op.backward(da.from_array(g, chunks=chunks), da.from_array(expected, chunks=chunks), axis=axis)
    np.testing.assert_allclose(back.compute(), op.backward(g, expected, axis=axis), rtol=1e-12, atol=1e-13)


def test_xarray_keeps_coordinates(x):
    arr = xr.DataArray(x, dims=("sample", "feature"),
                       coords={"sample": np.arange(600), "feature": np.arange(50) * 10}, attrs={"units": "V"})
    for data in (arr, arr.chunk({"sample": 100})):
        y = fastact.gelu(data, approximate="tanh")
        assert isinstance(y, xr.DataArray) and y.dims == arr.dims
        xr.testing.assert_identical(y.coords.to_dataset(), arr.coords.to_dataset())
        np.testing.assert_array_equal(y.values, fastact.gelu(x, approximate="tanh"))
        value, grad = fastact.softplus.value_and_grad(data, beta=2.0)
        np.testing.assert_array_equal(grad.values, fastact.softplus.grad(x, beta=2.0))
        assert grad.coords["feature"].values[3] == 30
    s = fastact.softmax(arr.chunk({"feature": 7}), axis=-1)
    assert isinstance(s, xr.DataArray) and s.dims == arr.dims
    np.testing.assert_array_equal(s.values, fastact.softmax(x))
    s0 = fastact.log_softmax(arr, axis=0)
    assert s0.dims == arr.dims
    assert_ulp_close(s0.values, fastact.log_softmax(x, axis=0), ROWS_ULP_APART)


def test_duck_array_errors(x):
    dx = da.from_array(x, chunks=100)
    with pytest.raises(TypeError, match=r"^x must have a real dtype"):
        fastact.sigmoid(dx.astype(np.complex128))
    with pytest.raises(TypeError, match=r"^out must be None when an input is a dask.Array"):
        fastact.sigmoid(dx, out=np.empty_like(x))
    with pytest.raises(ValueError, match="negative_slope"):
        fastact.leaky_relu(dx, negative_slope=float("nan"))
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        fastact.softmax(dx, axis=2)


@pytest.mark.parametrize("op", [fastact.softmax, fastact.log_softmax], ids=lambda o: o.name)
def test_dask_row_backward_broadcasts_grad_out(op):
    """An ndarray grad_out that broadcasts against a dask y (it failed inside dask with
    "axes don't match array"); one that does not gets fastact's error naming it."""
    x = np.random.default_rng(3).normal(size=(6, 5))
    y = op(x)
    dy = da.from_array(y, chunks=(2, 5))
    for g, axis in ((np.arange(5.0), -1), (np.arange(6.0).reshape(6, 1), 0), (np.ones((1, 5)), 0)):
        expected = op.backward(np.broadcast_to(g, y.shape), y, axis=axis)
        np.testing.assert_allclose(op.backward(g, dy, axis=axis).compute(), expected, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(op.backward(da.from_array(g), dy, axis=axis).compute(), expected,
                                   rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match=r"^grad_out with shape \(7, 5\) does not broadcast against y"):
        op.backward(np.ones((7, 5)), dy)


@pytest.mark.parametrize("through_libc", [False, True], ids=["native", "fegetenv"])
def test_fp_status_is_restored(monkeypatch, through_libc):
    # The loops save the FP status and put it back: MXCSR on x86-64, the C library's
    # fegetenv/fesetenv elsewhere (both compiled here, afresh).  Without the restore
    # the same loops raise, so this test can fail.
    from numba import types
    from numba.extending import intrinsic

    from fastact import _ufuncs

    if through_libc or platform.machine().lower() not in ("x86_64", "amd64"):
        monkeypatch.setattr(_ufuncs, "_X86_64", False)  # read when the intrinsics are compiled
    x = np.array([np.inf, -np.inf, np.nan, 1e300, 1.0])
    with np.errstate(all="raise"):
        for name in ("silu", "gelu"):  # formulas that raise flags in branches they discard
            ufunc = _ufuncs.build_elementwise_ufunc(name, "grad", cache=False)
            np.testing.assert_array_equal(ufunc(x), getattr(fastact, name).grad(x))

    @intrinsic
    def no_restore(typingctx, saved):
        return types.none(types.voidptr), lambda context, builder, sig, args: context.get_dummy_value()

    monkeypatch.setattr(_ufuncs, "restore_fp_status", no_restore)
    # NumPy names the first flag it finds (underflow before invalid): silu' raises both
    with np.errstate(all="raise"), pytest.raises(FloatingPointError, match="underflow|invalid"):
        _ufuncs.build_elementwise_ufunc("silu", "grad", cache=False)(x)
