"""Everyday inputs that are not plain native ndarrays, for every public entry point.

The matrix below calls each entry point (ops, grad, value_and_grad, backward from x
and from y, row ops and their backward, both losses and their value_and_grad) with
each kind of input: big-endian floats and integers, np.matrix and a user subclass,
masked arrays, pandas Series and DataFrames, xarray Datasets and empty batches.  Each
call either gives what the same call on the plain array gives, in a container of the
caller's kind, or a TypeError/ValueError naming the argument; no Numba error text
reaches the caller.  It runs on both backends, and again under NUMBA_DISABLE_JIT=1
in a subprocess (test_matrix_without_jit).
"""

import os
import pickle

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import fastact

from .conftest import run_python

ELEMENTWISE = list(fastact.ACTIVATIONS.values())
ROW_OPS = [fastact.softmax, fastact.log_softmax]
X = np.array([[-2.5, -0.0, 0.5, 3.0], [1.0, -1.0, 0.25, 7.0], [0.0, 2.0, -4.0, 0.1]])
G = np.array([[1.0, -2.0, 0.5, 3.0], [0.25, 1.0, -1.0, 2.0], [-0.5, 1.5, 2.0, -1.0]])
MASK = np.array([[0, 1, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0]], bool)
TARGETS = np.array([[0.1, 0.9, 0.5, 1.0], [0.0, 0.3, 0.7, 0.2], [1.0, 0.0, 0.6, 0.4]])
NUMBA_WORDS = ("numba", "nopython", "Failed in", "TypingError", "LoweringError")


class Tagged(np.ndarray):
    """A user's ndarray subclass: results keep it, as NumPy's ufuncs' do."""


# --- the entry points, each a function of ``wrap`` (plain 2-D float64 -> the input kind)


def _entry_points():
    points = {}
    for op in ELEMENTWISE:
        points[op.name] = lambda w, op=op: op(w(X))
        points[f"{op.name}.grad"] = lambda w, op=op: op.grad(w(X))
        points[f"{op.name}.value_and_grad"] = lambda w, op=op: op.value_and_grad(w(X))
        points[f"{op.name}.backward"] = lambda w, op=op: op.backward(w(G), x=w(X))
        if op.supports_y():
            points[f"{op.name}.backward_y"] = lambda w, op=op: op.backward(w(G), y=op(w(X)))
    for op in ROW_OPS:
        points[op.name] = lambda w, op=op: op(w(X))
        points[f"{op.name}.backward"] = lambda w, op=op: op.backward(w(G), op(w(X)))
    return points


def _loss_points():
    def labels(w):
        value = w(X)
        shape = value["v"].shape if isinstance(value, xr.Dataset) else np.shape(value)
        return np.arange(int(np.prod(shape[:-1]))).reshape(shape[:-1]) % max(shape[-1], 1)

    xent, bce = fastact.softmax_cross_entropy, fastact.binary_cross_entropy_with_logits
    return {
        "softmax_cross_entropy": lambda w: xent(w(X), labels(w)),
        "softmax_cross_entropy.value_and_grad": lambda w: xent.value_and_grad(w(X), labels(w), reduction="sum"),
        "softmax_cross_entropy(soft)": lambda w: xent(w(X), w(TARGETS), reduction="none"),
        "binary_cross_entropy_with_logits": lambda w: bce(w(X), w(TARGETS)),
        "binary_cross_entropy_with_logits.value_and_grad": lambda w: bce.value_and_grad(w(X), w(TARGETS),
                                                                                         reduction="none"),
    }


ENTRY_POINTS = _entry_points()
LOSS_POINTS = _loss_points()


# --- the input kinds: how to make one, what plain array it stands for, how its result looks


def _plain_result(result, kind):
    """The ndarray inside a result of ``kind``, after checking the container."""
    if isinstance(result, tuple):
        return tuple(_plain_result(r, kind) for r in result)
    if kind in ("matrix", "tagged"):
        assert type(result) is {"matrix": np.matrix, "tagged": Tagged}[kind], type(result)
        return np.asarray(result)
    if kind == "dataframe":
        assert isinstance(result, pd.DataFrame)
        assert list(result.index) == ["a", "b", "c"] and list(result.columns) == ["p", "q", "r", "s"]
        return result.to_numpy()
    if kind == "series":
        assert isinstance(result, pd.Series) and list(result.index) == ["p", "q", "r", "s"]
        assert result.name == "s"
        return result.to_numpy()
    if kind == "dataset":
        assert isinstance(result, xr.Dataset) and list(result.data_vars) == ["v"]
        assert result.attrs == {"units": "logit"}
        return result["v"].values
    assert type(result) is not np.ndarray or result.dtype.isnative
    return result


KINDS = {
    # kind: (make from plain 2-D float64, the plain array it stands for)
    "big_endian_f4": (lambda a: a.astype(">f4"), lambda a: a.astype("<f4")),
    "big_endian_f8": (lambda a: a.astype(">f8"), lambda a: a),
    "big_endian_i4": (lambda a: np.round(a).astype(">i4"), lambda a: np.round(a).astype("<i4")),
    "matrix": (lambda a: a.view(np.matrix), lambda a: a),  # np.matrix(a) warns PendingDeprecationWarning
    "tagged": (lambda a: a.view(Tagged), lambda a: a),
    "dataframe": (lambda a: pd.DataFrame(a, index=["a", "b", "c"], columns=["p", "q", "r", "s"]), lambda a: a),
    "series": (lambda a: pd.Series(a[0], index=["p", "q", "r", "s"], name="s"), lambda a: a[0]),
    "dataset": (lambda a: xr.Dataset({"v": (("i", "j"), a)}, attrs={"units": "logit"}), lambda a: a),
    "empty": (lambda a: a[:0], lambda a: a[:0]),
}


def _assert_same(actual, expected, name):
    if isinstance(expected, tuple):
        assert isinstance(actual, tuple) and len(actual) == len(expected), name
        for a, e in zip(actual, expected):
            _assert_same(a, e, name)
        return
    assert np.asarray(actual).dtype == np.asarray(expected).dtype, name
    np.testing.assert_array_equal(actual, expected, err_msg=name)


def _no_numba_text(exc):
    assert isinstance(exc, (TypeError, ValueError)), repr(exc)
    assert not any(word in str(exc) for word in NUMBA_WORDS), str(exc)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_matrix_ops(backend, name, kind):
    make, plain = KINDS[kind]
    call = ENTRY_POINTS[name]
    expected = call(plain)
    _assert_same(_plain_result(call(make), kind), expected, f"{name} on {kind}")


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_matrix_masked(backend, name):
    """Elementwise: computed on the data, the result keeps the union of the masks.
    Row ops: the masked entries take no part in their row and stay masked."""
    result = ENTRY_POINTS[name](lambda a: np.ma.array(a, mask=MASK))
    results = result if isinstance(result, tuple) else (result,)
    for r in results:
        assert isinstance(r, np.ma.MaskedArray)
        np.testing.assert_array_equal(np.ma.getmaskarray(r), MASK)
    if name.split(".")[0] not in ("softmax", "log_softmax"):
        expected = ENTRY_POINTS[name](lambda a: a)
        expected = expected if isinstance(expected, tuple) else (expected,)
        for r, e in zip(results, expected):
            np.testing.assert_array_equal(r[~MASK], e[~MASK], err_msg=name)
        return
    op = fastact.softmax if name.startswith("softmax") else fastact.log_softmax
    for i, keep in enumerate(~MASK):
        y = op(X[i][keep])
        expected = op.backward(G[i][keep], y) if name.endswith("backward") else y
        np.testing.assert_allclose(result[i][keep], expected, rtol=1e-15, atol=1e-15, err_msg=name)


def test_masked_out_and_fills(backend):
    x = np.ma.array(X, mask=MASK)
    out = np.ma.zeros(X.shape)
    assert fastact.tanh(x, out=out) is out
    np.testing.assert_array_equal(out.mask, MASK)
    np.testing.assert_array_equal(out.data[~MASK], np.tanh(X)[~MASK])
    with pytest.raises(TypeError, match="out must be a numpy.ma.MaskedArray"):
        fastact.tanh(x, out=np.zeros(X.shape))
    # a masked +inf takes no part in its row (unmasked, it would make the row NaN)
    row = np.ma.array([1.0, np.inf, 2.0], mask=[0, 1, 0])
    np.testing.assert_allclose(fastact.softmax(row).compressed(), fastact.softmax(np.array([1.0, 2.0])))
    assert fastact.softmax(row).sum() == pytest.approx(1.0)
    # masks broadcast: a masked grad_out row against a plain y
    g = np.ma.array(np.ones(4), mask=[0, 0, 1, 0])
    result = fastact.sigmoid.backward(g, x=X)
    np.testing.assert_array_equal(result.mask, np.broadcast_to([0, 0, 1, 0], X.shape))
    assert x.data[0, 1] == -0.0 and x.mask[0, 1]  # the caller's array is unchanged
    with pytest.raises(ValueError, match=r"^grad_out with shape \(3,\) does not broadcast against x"):
        fastact.sigmoid.backward(np.ma.array(np.ones(3), mask=[0, 1, 0]), x=X)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", LOSS_POINTS)
def test_matrix_losses(backend, name, kind):
    """The losses take the array out of any container (they give plain arrays or
    scalars); an xarray Dataset is refused with an error naming the argument."""
    make, plain = KINDS[kind]
    call = LOSS_POINTS[name]
    if kind == "big_endian_i4" and "soft" in name:
        pytest.skip("integer targets are class indices, not probabilities")
    if kind == "dataset":
        with pytest.raises((TypeError, ValueError), match="^logits") as info:
            call(make)
        _no_numba_text(info.value)
        return
    expected = call(plain)
    _assert_same(call(make), expected, f"{name} on {kind}")


@pytest.mark.parametrize("name", LOSS_POINTS)
def test_matrix_losses_refuse_masks(backend, name):
    with pytest.raises(TypeError, match="^logits must not be a masked array") as info:
        LOSS_POINTS[name](lambda a: np.ma.array(a, mask=MASK))
    _no_numba_text(info.value)


def test_empty_batches(backend):
    empty = np.zeros((0, 4))
    for reduction, expected in (("mean", np.nan), ("sum", 0.0)):
        for labels in (np.zeros(0, int), np.zeros((0, 4))):
            value = fastact.softmax_cross_entropy(empty, labels, reduction=reduction)
            np.testing.assert_equal(value, expected)
            value, grad = fastact.softmax_cross_entropy.value_and_grad(empty, labels, reduction=reduction)
            np.testing.assert_equal(value, expected)
            assert grad.shape == (0, 4)
        np.testing.assert_equal(fastact.binary_cross_entropy_with_logits(empty, empty, reduction=reduction), expected)
    assert fastact.softmax_cross_entropy(empty, np.zeros(0, int), reduction="none").shape == (0,)


# --- parameters out of the compute dtype's range

PARAM_OPS = [(op, p) for op in ELEMENTWISE for p in op.params if p != "approximate"]


@pytest.mark.parametrize("op,param", PARAM_OPS, ids=[f"{o.name}-{p}" for o, p in PARAM_OPS])
@pytest.mark.parametrize("value", [1e300, -1e300, 1e-300])
def test_parameter_outside_float32(backend, op, param, value):
    x32 = np.array([-1.0, 0.0, 2.0], np.float32)
    kwargs = {param: value}
    try:
        op(np.zeros(1), **kwargs)
    except ValueError:
        return  # the op refuses the value in any dtype (its own check)
    calls = [lambda x: op(x, **kwargs), lambda x: op.grad(x, **kwargs), lambda x: op.value_and_grad(x, **kwargs),
             lambda x: op.backward(np.ones_like(x), x=x, **kwargs)]
    if op.supports_y(**kwargs):
        calls.append(lambda x: op.backward(np.ones_like(x), y=x, **kwargs))
    for call in calls:
        for x in (x32, x32.astype(np.float16), x32.astype(">f4")):
            with pytest.raises(ValueError, match=f"^{param}=.* outside the range of float32"):
                call(x)
        call(x32.astype(np.float64))  # float64 holds it


def test_parameter_outside_float32_on_dask():
    import dask.array as da

    with pytest.raises(ValueError, match="^alpha="):
        fastact.elu(da.ones(3, dtype=np.float32, chunks=2), alpha=1e300)


def test_celu_tiny_alpha_in_float32_was_nan(backend):
    # the case that gave silent NaN: alpha rounds to 0 in float32
    with pytest.raises(ValueError, match="^alpha=1e-300"):
        fastact.celu(np.zeros(2, np.float32), alpha=1e-300)
    np.testing.assert_array_equal(fastact.celu(np.zeros(2), alpha=1e-300), [0.0, 0.0])


# --- byte order


def test_big_endian_dask_and_xarray():
    import dask.array as da

    x = np.linspace(-3, 3, 12).reshape(3, 4)
    big = da.from_array(x.astype(">f4"), chunks=2)
    for op in (fastact.sigmoid, fastact.softmax):
        result = op(big)
        assert result.dtype == np.dtype("<f4") or result.dtype == np.dtype("=f4")
        computed = result.compute()
        assert computed.dtype.isnative
        np.testing.assert_array_equal(computed, op(x.astype(np.float32)))
    result = fastact.tanh(xr.DataArray(x.astype(">f8"), dims=("i", "j")))
    assert result.dtype.isnative
    np.testing.assert_array_equal(result.values, fastact.tanh(x))


def test_big_endian_out_and_message(backend):
    x = np.array([1.0, -2.0], ">f4")
    out = np.empty(2, np.float32)
    assert fastact.sigmoid(x, out=out) is out
    np.testing.assert_array_equal(out, fastact.sigmoid(np.array([1.0, -2.0], np.float32)))
    with pytest.raises(TypeError, match=r"x must have a real dtype .* got >c16"):
        fastact.sigmoid(np.array([1j], ">c16"))


# --- pickling: every public object by reference, back to the same object


def _public_objects():
    objects = [getattr(fastact, name) for name in fastact.__all__ if not isinstance(getattr(fastact, name), dict)]
    for op in ELEMENTWISE:
        objects += [op.grad, op.value_and_grad, op.backward]
    for op in ROW_OPS:
        objects += [op.backward]
    for loss in (fastact.softmax_cross_entropy, fastact.binary_cross_entropy_with_logits):
        objects += [loss.value_and_grad]
    return objects


@pytest.mark.parametrize("obj", _public_objects(), ids=repr)
def test_pickles_by_reference(obj):
    again = pickle.loads(pickle.dumps(obj))
    if hasattr(obj, "__self__") and not isinstance(obj.__self__, type(fastact)):
        assert again.__self__ is obj.__self__ and again.__name__ == obj.__name__
    else:
        assert again is obj


def test_process_pool_runs_ops():
    import concurrent.futures
    import multiprocessing

    x = np.linspace(-3, 3, 7)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        results = list(pool.map(fastact.gelu, [x, 2 * x]))
        grad = pool.submit(fastact.gelu.grad, x).result()
    np.testing.assert_array_equal(results[0], fastact.gelu(x))
    np.testing.assert_array_equal(results[1], fastact.gelu(2 * x))
    np.testing.assert_array_equal(grad, fastact.gelu.grad(x))


# --- NUMBA_DISABLE_JIT


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="already without the JIT")
def test_matrix_without_jit():
    """This file's matrix again, under NUMBA_DISABLE_JIT=1 (the kernels run as Python)."""
    output = run_python(
        f"""
        import sys, pytest
        sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", {__file__!r}, "-k", "matrix or empty or parameter"]))
        """,
        NUMBA_DISABLE_JIT="1",
    )
    assert " passed" in output and "failed" not in output, output


def test_results_without_jit_agree(tmp_path):
    """Under NUMBA_DISABLE_JIT the kernels' formulas run as Python (_scalar's
    versions of exp, fma, ...).  Special values are bit-identical; the rest agree
    within the accuracy the backends are held to (test_backends)."""
    script = f"""
        import numpy as np, fastact
        x = np.concatenate([np.linspace(-30, 30, 121), [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-310, -1e-310, 700]])
        out = {{}}
        for dtype in (np.float32, np.float64):
            with np.errstate(all="ignore"):
                v = x.astype(dtype)
            for name, op in fastact.ACTIVATIONS.items():
                out[f"{{name}}-{{dtype.__name__}}-f"] = op(v)
                out[f"{{name}}-{{dtype.__name__}}-g"] = op.grad(v)
                out[f"{{name}}-{{dtype.__name__}}-b"] = op.backward(np.linspace(-2, 2, v.size).astype(dtype), x=v)
            rows = np.linspace(-5, 5, 60).astype(dtype).reshape(6, 10) ** 2 % 7
            for op in (fastact.softmax, fastact.log_softmax):
                out[f"{{op.name}}-{{dtype.__name__}}"] = op(rows)
                out[f"{{op.name}}-{{dtype.__name__}}-0"] = op(rows, axis=0)
        np.savez({str(tmp_path / "out.npz")!r}, **out)
        """
    run_python(script, NUMBA_DISABLE_JIT="1")
    without_jit = np.load(tmp_path / "out.npz")
    run_python(script.replace("out.npz", "jit.npz"))
    with_jit = np.load(tmp_path / "jit.npz")
    for key in with_jit:
        a, b = without_jit[key], with_jit[key]
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=key)
        special = np.isinf(b) | (b == 0)  # the same bits (a NaN's sign means nothing)
        np.testing.assert_array_equal(np.signbit(a[special]), np.signbit(b[special]), err_msg=key)
        np.testing.assert_array_equal(a[special], b[special], err_msg=key)
        eps = np.finfo(a.dtype).eps
        np.testing.assert_allclose(a, b, rtol=8 * eps, atol=2 * eps, err_msg=key)


def test_ufunc_without_jit_says_why():
    output = run_python(
        """
        import numpy as np, fastact, dask.array as da
        try:
            fastact.sigmoid.ufunc
        except RuntimeError as exc:
            print(exc)
        print(fastact.sigmoid(da.ones(3, chunks=2)).compute().tolist())
        print(fastact.softmax(da.ones((2, 2), chunks=1)).compute().tolist())
        """,
        NUMBA_DISABLE_JIT="1",
    )
    assert "NUMBA_DISABLE_JIT is set" in output
    assert "[0.7310585786300049, 0.7310585786300049, 0.7310585786300049]" in output
    assert "[[0.5, 0.5], [0.5, 0.5]]" in output
