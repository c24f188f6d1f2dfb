"""The small-call shortcut (ElementwiseOp._shortcuts): taken where it gives the general
path's answer, and not where it could not (another backend, a large call, parameters,
bias, an out or a grad_out the general path would refuse or handle differently)."""

import ctypes

import numpy as np
import pytest

import fastact
from fastact import _api, _kernels, _rowops

KINDS = ("forward", "grad", "value_and_grad", "backward_x", "backward_y")


class Spy:
    """Stands in for a shortcut's ufunc and counts the calls it runs."""

    def __init__(self, ufunc):
        self.ufunc, self.calls = ufunc, 0

    def __call__(self, *args):
        self.calls += 1
        return self.ufunc(*args)


ROW_FUNCTION = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_ssize_t,
                                ctypes.c_ssize_t)


class RowSpy:
    """Stands in for a row op's C function (_kernels.small_row_function) in its entry of
    _api._SMALL_ROWS: a C callback that counts the calls and runs the real one."""

    def __init__(self, monkeypatch, name, key):
        address, below, owner = _api._SMALL_ROWS[name][key]
        self.real, self.calls = ROW_FUNCTION(address), 0

        def counted(*args):
            self.calls += 1
            return self.real(*args)

        self.callback = ROW_FUNCTION(counted)
        self.below = below
        monkeypatch.setitem(_api._SMALL_ROWS[name], key,
                            (ctypes.cast(self.callback, ctypes.c_void_p).value, below, (self, owner)))


def _call(op, kind, x, g, **kw):
    if kind == "forward":
        return op(x, **kw)
    if kind == "backward_x":
        return op.backward(g, x=x, **kw)
    if kind == "backward_y":
        return op.backward(g, y=op(x), **kw)
    return getattr(op, kind)(x, **kw)


@pytest.fixture
def spied(monkeypatch):
    """Arm the shortcuts of sigmoid and elu (a parameter) and put a spy in each."""
    spies = {}
    x = np.linspace(-3, 3, 8, dtype=np.float32)
    for op in (fastact.sigmoid, fastact.elu):
        for kind in KINDS:
            _call(op, kind, x, np.ones_like(x))
        for kind in KINDS:
            cut = op._shortcuts[kind]
            assert cut is not None, (op.name, kind)
            spy = spies[op.name, kind] = Spy(cut[0])
            monkeypatch.setitem(op._shortcuts, kind, (spy,) + cut[1:])
    return spies


@pytest.mark.parametrize("name", ["sigmoid", "elu"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shortcut_is_taken_and_agrees(spied, name, kind, dtype):
    op = getattr(fastact, name)
    x = np.linspace(-4, 4, 33, dtype=dtype).reshape(3, 11)
    g = np.linspace(0.5, 2, 33, dtype=dtype).reshape(3, 11)
    spy = spied[name, kind]
    got = _call(op, kind, x, g)
    taken = spy.calls
    with fastact.use_backend("numpy"):
        expected = _call(op, kind, x, g)
    assert taken >= 1 and spy.calls == taken  # the numpy backend does not take it
    for a, b in zip(got if kind == "value_and_grad" else [got], expected if kind == "value_and_grad" else [expected]):
        assert type(a) is np.ndarray and a.dtype == dtype and a.shape == x.shape
        np.testing.assert_allclose(a, b, rtol=4e-6 if dtype == np.float32 else 1e-14, atol=1e-30)
    if kind != "value_and_grad":
        out = np.full_like(x, np.nan)
        assert _call(op, kind, x, g, out=out) is out and spy.calls > taken
        np.testing.assert_array_equal(out, got)


def test_set_backend_turns_it_off(spied):
    x = np.linspace(-3, 3, 8, dtype=np.float32)
    spy = spied["sigmoid", "forward"]
    fastact.set_backend("numpy")
    try:
        y = fastact.sigmoid(x)
    finally:
        fastact.set_backend("numba")
    assert spy.calls == 0
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-x.astype(np.float64))), rtol=2e-7)


def test_not_taken_where_the_general_path_decides(spied):
    sig, spy = fastact.sigmoid, spied["sigmoid", "forward"]
    x = np.linspace(-3, 3, 8, dtype=np.float32)
    # parameters, bias, another dtype: the general path
    fastact.elu(x, 0.5)
    fastact.elu(x, alpha=0.5)
    assert spied["elu", "forward"].calls == 0
    np.testing.assert_allclose(sig(x, bias=np.float32(1)), sig(x + np.float32(1)), rtol=1e-6)
    assert spy.calls == 1  # only the call without bias
    assert sig(x.astype(np.float16)).dtype == np.float16
    assert sig(x.astype(np.int64)).dtype == np.float64
    assert spy.calls == 1
    # a large call runs the kernels
    big = np.zeros(sig._shortcuts["forward"][1], np.float32)
    np.testing.assert_array_equal(sig(big), 0.5)
    assert spy.calls == 1
    # an out the general path would refuse gets its error, not NumPy's broadcast
    with pytest.raises(ValueError, match="out"):
        sig(x, out=np.empty((2, 8), np.float32))
    with pytest.raises(TypeError, match="out must have dtype float32"):
        sig(x, out=np.empty(8, np.float64))
    readonly = np.empty(8, np.float32)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="out must be writeable"):
        sig(x, out=readonly)
    with pytest.raises((TypeError, ValueError), match="out"):
        fastact.sigmoid.value_and_grad(x, out=np.empty(8, np.float32))
    assert x.flags.writeable and np.array_equal(x, np.linspace(-3, 3, 8, dtype=np.float32))


def test_backward_shortcut_keeps_broadcasting_and_checks(spied):
    spy = spied["sigmoid", "backward_x"]
    x = np.linspace(-3, 3, 8, dtype=np.float32).reshape(2, 4)
    g = np.float32([1, 2, 3, 4])  # broadcasts against x: the general path
    dx = fastact.sigmoid.backward(g, x=x)
    assert spy.calls == 0
    np.testing.assert_allclose(dx, g * fastact.sigmoid.grad(x), rtol=1e-6)
    with pytest.raises(TypeError, match="exactly one of x or y"):
        fastact.sigmoid.backward(g, x=x, y=x)
    with pytest.raises(TypeError, match="param_grads"):
        fastact.sigmoid.backward(np.ones_like(x), y=x, param_grads=True)
    _, grads = fastact.elu.backward(np.ones_like(x), x=x, param_grads=True)
    assert set(grads) == {"alpha"} and spied["elu", "backward_x"].calls == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [10, 300])  # a short row (blocks) and a long one (rows)
def test_row_shortcut_is_taken_and_agrees(monkeypatch, dtype, n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((3, 4, n)).astype(dtype) * 10
    g = rng.standard_normal(x.shape).astype(dtype)
    fastact.softmax(x)
    y = fastact.softmax(x)
    fastact.softmax.backward(g, y)
    key = n if dtype == np.float32 else -n
    spies = {name: RowSpy(monkeypatch, name, key) for name in ("softmax", "softmax_backward")}
    y = fastact.softmax(x)
    out = np.full_like(x, np.nan)
    assert fastact.softmax(x, axis=2, out=out) is out
    dx = fastact.softmax.backward(g, y)
    assert spies["softmax"].calls == 2 and spies["softmax_backward"].calls == 1
    with fastact.use_backend("numpy"):
        y_np, dx_np = fastact.softmax(x), fastact.softmax.backward(g, y)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(y, y_np, rtol=tol, atol=tol * 1e-3)
    np.testing.assert_array_equal(out, y)
    np.testing.assert_allclose(dx, dx_np, rtol=tol, atol=tol * 1e-2)
    # the general path: another axis, a strided x, an out that is x, where=, temperature=
    expected = fastact.softmax(x.copy(order="F"))
    np.testing.assert_array_equal(expected, y)
    fastact.softmax(x, axis=1)
    fastact.softmax(x[:, ::2])
    inplace = x.copy()
    assert fastact.softmax(inplace, out=inplace) is inplace
    np.testing.assert_array_equal(inplace, y)
    fastact.softmax(x, where=x > 0)
    fastact.softmax(x, temperature=2.0)
    assert spies["softmax"].calls == 2


def test_loss_defaults_shortcut_agrees():
    """PyTorch's defaults passed as the common call passes them, or spelled otherwise
    (an int 0, a numpy integer): the same loss and gradient."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 10)).astype(np.float32)
    t = rng.integers(0, 10, 32)
    loss, grad = fastact.softmax_cross_entropy.value_and_grad(x, t)
    spelled = fastact.softmax_cross_entropy.value_and_grad(x, t, ignore_index=np.int64(-100), label_smoothing=0,
                                                           z_loss=0)
    assert loss == spelled[0] and np.array_equal(grad, spelled[1])
    with fastact.use_backend("numpy"):
        loss_np, grad_np = fastact.softmax_cross_entropy.value_and_grad(x, t)
    assert loss.dtype == np.float32 and loss == pytest.approx(float(loss_np), rel=1e-6)
    np.testing.assert_allclose(grad, grad_np, rtol=1e-5, atol=1e-9)
    for wrong in ({"label_smoothing": 1.5}, {"z_loss": -1.0}, {"ignore_index": 1.0}):
        with pytest.raises((TypeError, ValueError)):
            fastact.softmax_cross_entropy(x, t, **wrong)
    # a 3-D batch reduces over every row
    x3 = x.reshape(4, 8, 10)
    assert fastact.softmax_cross_entropy(x3, t.reshape(4, 8), reduction="sum") == pytest.approx(
        float(fastact.softmax_cross_entropy(x, t, reduction="sum")), rel=1e-6)


def test_sizes_follow_the_running_layer():
    """Before a threading layer runs, the sizes serial under every layer; once a
    parallel call has started one, a call of the general path widens them to that
    layer's (never narrower)."""
    from fastact import _threads

    op = fastact.tanh
    x = np.linspace(-3, 3, 8)
    op(x)
    every = _api._ROUTES["tanh", "forward"][:2]
    if _threads._layer_started() is None:
        assert list(op._shortcuts["forward"][1:3]) == every
        fastact.tanh(np.zeros(4_000_000))  # parallel: starts the layer
    layer = _threads._layer_started()
    assert layer is not None
    big = np.linspace(-3, 3, every[1] + 1)  # past float64's every-layer size
    y = op(big)
    cut = op._shortcuts["forward"]
    assert cut[4] == layer and cut[1] >= every[0] and cut[2] >= every[1]
    with fastact.use_backend("numpy"):
        np.testing.assert_allclose(y, op(big), rtol=1e-15, atol=1e-300)


@pytest.fixture
def one_thread():
    before = fastact.get_num_threads()
    fastact.set_num_threads(1)
    yield
    fastact.set_num_threads(before)


def test_taken_at_every_size_on_one_thread(spied, one_thread, monkeypatch):
    """Where this thread runs on one thread every call is serial: a call past the
    shortcut's size takes it too (the general path would only find the same ufunc
    after its parallel decision), for the row ops as well."""
    spy, grad_spy = spied["sigmoid", "forward"], spied["sigmoid", "backward_x"]
    big = np.linspace(-30, 30, fastact.sigmoid._shortcuts["forward"][1] + 5, dtype=np.float32)
    g = np.linspace(-2, 2, big.size, dtype=np.float32)
    y, dx = fastact.sigmoid(big), fastact.sigmoid.backward(g, x=big)
    assert spy.calls == 1 and grad_spy.calls == 1
    with fastact.use_backend("numpy"):
        np.testing.assert_allclose(y, fastact.sigmoid(big), rtol=4e-6, atol=1e-30)
        np.testing.assert_allclose(dx, fastact.sigmoid.backward(g, x=big), rtol=1e-5, atol=1e-30)
    assert big.astype(np.float16).dtype == fastact.sigmoid(big.astype(np.float16)).dtype  # others: general path
    assert spy.calls == 1
    rows = np.linspace(-5, 5, 256 * 300).reshape(256, 300)  # past the serial size of a row op
    fastact.softmax(rows[:2])
    row_spy = RowSpy(monkeypatch, "softmax", -300)
    assert rows.size >= row_spy.below
    kernels, general = [], []  # past it the serial kernel runs through Numba's dispatch (it lets go of the GIL)
    monkeypatch.setattr(_api, "_row_kernel", lambda *args: kernels.append(Spy(_kernels.row_kernel(
        args[0], args[1], form=args[2]))) or kernels[-1])
    general_rows = _api._rows
    monkeypatch.setattr(_api, "_rows", lambda *args: general.append(args) or general_rows(*args))
    p = fastact.softmax(rows)
    assert row_spy.calls == 0 and [k.calls for k in kernels] == [1] and not general
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-14)
    with fastact.use_backend("numpy"):
        np.testing.assert_allclose(p, fastact.softmax(rows), rtol=1e-13)
    fastact.set_num_threads(min(2, fastact._backend.numba.config.NUMBA_NUM_THREADS))
    if fastact.get_num_threads() > 1:  # two threads: a large call is the general path's again
        fastact.sigmoid(big)
        assert spy.calls == 1


# --- the op's call in C (fastact/_fastcall.c) ------------------------------------

def test_the_call_in_c_is_built():
    """.ci/run installs with gcc: the C call must be there (without a compiler fastact
    installs without it, test_without_the_call_in_c)."""
    assert _api.FASTCALL and type(fastact.sigmoid).__call__ is not _api.ElementwiseOp._call


def _layouts(dtype):
    """(x, out) pairs: the layouts the C call runs itself and those it hands on."""
    base = np.linspace(-12, 12, 48).astype(dtype)
    base[[3, 7, 11]] = [np.inf, -np.inf, np.nan]
    unaligned = np.frombuffer(b"\0" + base.tobytes(), dtype=dtype, offset=1)
    f_order = np.asfortranarray(base.reshape(6, 8))
    cases = [
        (base, None), (base, "new"), (base.reshape(6, 8), "new"), (base.reshape(2, 3, 8), None),
        (base[::3], None), (base[::-2], "new"), (base[::2], np.empty(48, dtype)[::2]),
        (f_order, None), (f_order, "new"), (base.reshape(6, 8), np.empty((8, 6), dtype).T),
        (base.reshape(6, 8)[:, ::2], None), (unaligned, None), (unaligned, "new"),
        (base[:1], None), (base[:0], "new"), (base.reshape(6, 8)[:0], None),
        (np.array(1.5, dtype), None), (np.array(1.5, dtype), "new"), (base.astype(base.dtype.newbyteorder()), None),
        (base, "in place"), (base[::2], "in place"), (base, "shifted"), (base, "readonly"),
        (base, np.empty(48, np.float64 if dtype == np.float32 else np.float32)), (base, np.empty(47, dtype)),
        (base, np.empty((48, 1), dtype)), (base, base.tolist()), (base.tolist(), None),
    ]
    return cases


def _resolve(x, out):
    if isinstance(out, str):
        if out == "new":
            return x, np.full_like(x, -7.0)
        if out == "in place":  # x's own layout
            y = np.empty((x.size, 2), x.dtype)[:, 0] if not x.flags.c_contiguous else np.empty_like(x)
            y[...] = x
            return y, y
        if out == "shifted":  # overlapping, not the same memory
            buf = np.concatenate([x, x[:1]])
            return buf[:-1], buf[1:]
        ro = np.empty_like(x)
        ro.flags.writeable = False
        return x, ro
    return x, (None if out is None else np.asarray(out).copy() if isinstance(out, np.ndarray) else out)


def _outcome(fn, *args, **kwargs):
    """fn(*args, **kwargs), or (the error's type, its message)."""
    try:
        r = fn(*args, **kwargs)
    except (TypeError, ValueError) as e:
        return type(e), str(e)
    return r


def _entry(op, kind, python):
    """op's entry point of ``kind`` as (x, g, **kw) -> result; python: the method itself
    (ElementwiseOp._call, ElementwiseOp.grad, ...), not what the op's attribute is."""
    if kind == "forward":
        return (lambda x, g, **kw: op._call(x, **kw)) if python else (lambda x, g, **kw: op(x, **kw))
    method = getattr(type(op), kind.split("_x")[0].split("_y")[0])
    call = (lambda *a, **kw: method(op, *a, **kw)) if python else getattr(op, method.__name__)
    if kind == "backward_x":
        return lambda x, g, **kw: call(g, x=x, **kw)
    if kind == "backward_y":
        return lambda x, g, **kw: call(g, y=x, **kw)
    return lambda x, g, **kw: call(x, **kw)


def _same(got, expected, oa, ob, where):
    if isinstance(expected, tuple) and isinstance(expected[0], type):  # an error
        assert got == expected, (where, got, expected)
        return
    assert type(got) is type(expected), (where, type(got), type(expected))
    if isinstance(got, tuple):  # value_and_grad
        for a, b in zip(got, expected):
            _same(a, b, oa, ob, where)
        return
    assert (got is oa) == (expected is ob), where
    got_a, expected_a = np.asarray(got), np.asarray(expected)
    assert got_a.dtype == expected_a.dtype and got_a.shape == expected_a.shape, where
    assert got_a.tobytes() == expected_a.tobytes(), where
    if isinstance(got, np.ndarray) and got.size > 1:
        assert got.strides == expected.strides, (where, got.strides, expected.strides)


@pytest.mark.parametrize("name", ["sigmoid", "relu", "tanh", "gelu", "elu", "leaky_relu"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_call_in_c_agrees_with_call_in_python(name, kind, dtype):
    """Every layout, out= and bad argument gives what the Python method gives (for
    op(x): ElementwiseOp._call): the same type, dtype, strides and bits, the same out
    object, the same error; the inputs are left as they were."""
    op = getattr(fastact, name)
    if kind == "backward_y" and not op.supports_y():
        pytest.skip(f"{name} has no derivative from y")
    in_c, in_python = _entry(op, kind, False), _entry(op, kind, True)
    in_c(np.zeros(4, dtype), np.ones(4, dtype))  # arms the shortcut
    assert op._shortcuts[kind] is not None
    for i, (x, out) in enumerate(_layouts(dtype)):
        xa, oa = _resolve(x, out)  # each call with buffers of its own
        xb, ob = _resolve(x, out)
        ga = np.ones_like(xa) * 0.75 if isinstance(xa, np.ndarray) else [0.75] * len(xa)
        gb = np.ones_like(xb) * 0.75 if isinstance(xb, np.ndarray) else [0.75] * len(xb)
        kw_a = {} if oa is None else {"out": oa}
        kw_b = {} if ob is None else {"out": ob}
        got = _outcome(in_c, xa, ga, **kw_a)
        expected = _outcome(in_python, xb, gb, **kw_b)
        _same(got, expected, oa, ob, (kind, i))
        if isinstance(xa, np.ndarray) and not isinstance(out, str):
            assert np.array_equal(xa, xb, equal_nan=True), i  # the input is left as it was
    # grad_out of another layout, dtype or shape (broadcast): the same again
    x = np.linspace(-3, 3, 24).astype(dtype).reshape(4, 6)
    if kind.startswith("backward"):
        for g in (np.ones((6, 4), dtype).T, np.ones((4, 6), np.float16), np.ones(6, dtype), np.ones((4, 6), dtype)[:, ::-1]):
            _same(_outcome(in_c, x, g), _outcome(in_python, x, g), None, None, (kind, g.shape))


def test_the_call_in_c_hands_on_what_it_does_not_take(monkeypatch):
    """Small float ndarrays with the op's defaults never reach Python's shortcut test
    (_api._small, and ElementwiseOp._call for op(x)); every other call does."""
    calls = []
    python_call = _api.ElementwiseOp._call

    def counting(self, *args, **kwargs):
        calls.append(self.name)
        return python_call(self, *args, **kwargs)

    def refused(cut, x, out, grad_out=None):  # None: the general path
        calls.append("small")

    x = np.linspace(-3, 3, 16, dtype=np.float32)
    g = np.ones_like(x)
    o = np.empty_like(x)
    sig = fastact.sigmoid
    for op in (sig, fastact.elu):
        for kind in KINDS:
            _entry(op, kind, False)(x, g)
    monkeypatch.setattr(_api.ElementwiseOp, "_call", counting)
    monkeypatch.setattr(_api, "_small", refused)
    assert sig(x, out=o) is o
    sig(x.astype(np.float64))
    sig(x, out=None)
    sig(x.reshape(4, 4).T)
    fastact.elu(x)
    assert sig.grad(x, out=o) is o and sig.backward(g, x, out=o) is o and sig.backward(g, y=x, out=None) is not o
    sig.value_and_grad(x)
    fastact.elu.backward(g, x=x)
    fastact.elu.value_and_grad(x.astype(np.float64))
    assert calls == []
    sig(x, bias=np.float32(1.0))
    fastact.elu(x, 0.5)
    sig(x.tolist())
    sig(x.astype(np.float16))
    sig(np.zeros(sig._shortcuts["forward"][1], np.float32))
    with fastact.use_backend("numpy"):
        sig(x)
    assert calls == ["sigmoid", "elu", "sigmoid", "sigmoid", "sigmoid", "sigmoid"]
    calls.clear()
    sig.grad(x.tolist())
    sig.value_and_grad(x, out=(np.empty_like(x), np.empty_like(x)))
    sig.backward(g, x=x, param_grads=False)
    sig.backward(g[:1], x=x)
    sig.backward(g.tolist(), x=x)
    with pytest.raises(TypeError, match="exactly one of x or y"):
        sig.backward(g, x, y=x)
    with pytest.raises(TypeError, match="multiple values"):
        sig.backward(g, x, x=x)
    with pytest.raises(TypeError, match="unexpected keyword argument 'dim'"):
        sig(x, dim=0)
    # Python tests the shortcut for param_grads=False spelled out and the grad_out that
    # broadcasts (and refuses both); the rest are not ndarrays: the general path at once
    assert calls == ["small", "small", "sigmoid"]


def test_without_the_call_in_c():
    """Installed without a C compiler: the op's call is _call, and small calls still
    take the shortcut (in Python)."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['fastact._fastcall'] = None\n"
        "import numpy as np, fastact\n"
        "from fastact import _api\n"
        "assert not _api.FASTCALL and type(fastact.sigmoid).__call__ is _api.ElementwiseOp._call\n"
        "x = np.linspace(-3, 3, 16, dtype=np.float32); o = np.empty_like(x)\n"
        "y = fastact.sigmoid(x); assert fastact.sigmoid._shortcuts['forward'] is not None\n"
        "assert fastact.sigmoid(x, out=o) is o and np.array_equal(o, y)\n"
        "assert np.array_equal(y, fastact.sigmoid.ufunc(x))\n"
        "import types; assert type(fastact.sigmoid.grad) is types.MethodType\n"
        "assert fastact.sigmoid.backward(np.ones_like(x), x=x, out=o) is o\n"
        "assert np.array_equal(o, fastact.sigmoid.grad(x))\n"
        "xl, t = np.zeros((4, 4), np.float32), np.zeros(4, np.int64); loss = fastact.softmax_cross_entropy\n"
        "assert type(loss).__call__ is type(loss)._call and type(loss.value_and_grad) is types.MethodType\n"
        "for _ in range(2): assert loss(xl, t) == loss.value_and_grad(xl, t)[0] == np.float32(np.log(4))\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def _row_cases(dtype):
    """(x, positional arguments after x, keywords): the row calls C takes and those it hands on."""
    base = np.linspace(-9, 9, 60).astype(dtype)
    base[[5, 17]] = [np.inf, -np.inf]
    rows = base.reshape(6, 10)
    unaligned = np.frombuffer(b"\0" + rows.tobytes(), dtype=dtype, offset=1).reshape(6, 10)
    cases = [
        (rows, (), {}), (rows, (-1,), {}), (rows, (1,), {}), (rows, (), {"axis": 1}), (rows, (), {"axis": -1}),
        (rows, (), {"out": "new"}), (rows, (-1, "new"), {}), (rows, (), {"axis": -1, "out": "new"}),
        (base, (), {}), (base, (0,), {"out": "new"}), (base.reshape(2, 3, 10), (), {"out": "new"}),
        (base.reshape(2, 3, 10), (2,), {}), (rows[:1], (), {}), (rows[:, :1], (), {}),
        (rows, (0,), {}), (rows, (), {"axis": 0, "out": "new"}), (rows, (), {"dim": -1}), (rows, (), {"axis": True}),
        (rows, (), {"axis": np.int64(-1)}), (rows, (), {"axis": 2}), (rows, (), {"axis": 2**70}), (rows, (), {"axis": (1,)}),
        (rows, (), {"axis": None}), (np.asfortranarray(rows), (), {}), (rows[:, ::2], (), {"out": "new"}),
        (unaligned, (), {}), (rows.astype(rows.dtype.newbyteorder()), (), {}), (rows[:0], (), {}),
        (np.array(1.0, dtype), (), {}), (rows, (), {"out": "in place"}), (rows, (), {"out": "readonly"}),
        (rows, (), {"out": "fortran"}), (rows, (), {"out": np.empty((6, 10), np.float16)}),
        (rows, (), {"out": np.empty((10, 6), dtype)}), (rows, (), {"out": None}), (rows, (), {"where": rows > 0}),
        (rows, (), {"temperature": 2.0}), (rows, (-1, None), {}), (rows, (-1, "new", 3), {}),
        (rows.tolist(), (), {}), (rows, (), {"axis": -1, "dim": -1}), (rows, (-1,), {"axis": -1}),
    ]
    return cases


def _row_out(x, spec):
    if not isinstance(spec, str):
        return spec.copy() if isinstance(spec, np.ndarray) else spec
    if spec == "in place":
        return x
    out = np.full(x.shape, -7.0, x.dtype, order="F" if spec == "fortran" else "C")
    out.flags.writeable = spec != "readonly"
    return out


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmin"])
@pytest.mark.parametrize("backward", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_call_in_c_agrees_with_call_in_python(name, backward, dtype):
    """op(x, ...) and op.backward(grad_out, y, ...) give what RowOp._call and the backward
    method give, for every case: the same type, dtype, strides and bits, out object and error."""
    op = getattr(fastact, name)
    assert _api.FASTCALL and type(op).__call__ is not _api.RowOp._call
    in_c = (lambda x, *a, **kw: op.backward(np.ones_like(x) * 0.5 if isinstance(x, np.ndarray) else x, x, *a, **kw)
            ) if backward else op
    in_python = (lambda x, *a, **kw: type(op).backward(op, np.ones_like(x) * 0.5 if isinstance(x, np.ndarray) else x,
                                                       x, *a, **kw)) if backward else op._call
    for i, (x, args, kwargs) in enumerate(_row_cases(dtype)):
        in_c(np.zeros((2, np.shape(x)[-1] if np.ndim(x) else 3), dtype))  # arms each row length's kernel
        results = []
        for call in (in_c, in_python):
            xc = x.copy() if isinstance(x, np.ndarray) else x
            a = tuple(_row_out(xc, v) if isinstance(v, str) else v for v in args)
            kw = {k: (_row_out(xc, v) if k == "out" else v) for k, v in kwargs.items()}
            out = a[1] if len(a) > 1 else kw.get("out")
            results.append((_outcome(call, xc, *a, **kw), out))
        (got, oa), (expected, ob) = results
        _same(got, expected, oa, ob, (name, backward, i))


def test_row_call_in_c_hands_on_what_it_does_not_take(monkeypatch):
    calls = []

    def refused(name, values, axis, out):  # None: the general path
        calls.append(name)

    x = np.linspace(-3, 3, 40, dtype=np.float32).reshape(4, 10)
    g = np.ones_like(x)
    y = fastact.softmax(x)
    fastact.softmax.backward(g, y)
    monkeypatch.setattr(_api, "_small_rows", refused)
    fastact.softmax(x)
    fastact.softmax(x, -1, np.empty_like(x))
    fastact.softmax(x[0], axis=0)
    fastact.softmax.backward(g, y, out=np.empty_like(x))
    assert calls == []
    fastact.softmax(x, dim=-1)
    fastact.softmax(x.astype(np.float16))
    fastact.softmax.backward(g, y=y)
    fastact.softmax(x, out=x)
    unaligned = np.frombuffer(b"\0" + x.tobytes(), np.float32, offset=1).reshape(x.shape)
    assert not unaligned.flags.aligned
    monkeypatch.undo()
    np.testing.assert_array_equal(fastact.softmax(unaligned), fastact.softmax(x))  # Numba's dispatch, not C's
    monkeypatch.setattr(_api, "_small_rows", refused)
    fastact.softmax(unaligned)
    assert calls == ["softmax", "softmax", "softmax_backward", "softmax", "softmax"]


def test_signatures_of_calls_in_c():
    """inspect.signature and help see the Python call's parameters, as before the C call."""
    import inspect

    assert list(inspect.signature(fastact.sigmoid).parameters) == ["x", "args", "bias", "out", "kwargs"]
    assert list(inspect.signature(fastact.softmax).parameters) == ["x", "axis", "out", "where", "temperature",
                                                                   "kwargs"]
    assert "grad_out" in inspect.signature(fastact.sigmoid.backward).parameters
    assert "y" in inspect.signature(fastact.softmax.backward).parameters
    assert "labels" in inspect.signature(fastact.softmax_cross_entropy).parameters
    assert "self" in inspect.signature(_api.ElementwiseOp.grad).parameters
    inspect.signature(_api.ElementwiseOp)  # the class: its __init__'s


def _loss_cases(dtype):
    """(logits, labels, positional arguments after them, keywords): the calls of
    softmax_cross_entropy C takes (the first ones) and those it hands on."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((12, 10)) * 4).astype(dtype)
    t = rng.integers(0, 10, 12)
    special = x.copy()
    special[2, 3], special[5, 0] = np.nan, np.inf
    ignored, outside, negative = t.copy(), t.copy(), t.copy()
    ignored[4], outside[7], negative[1] = -100, 10, -3
    return [
        (x, t, (), {}), (x, t, (-1,), {}), (x, t, (1, "sum"), {}), (x, t, (), {"reduction": "sum"}),
        (x, t, (), {"axis": 1, "reduction": "mean"}), (x[:1], t[:1], (), {}), (x[:, :1], t * 0, (), {}),
        (x, ignored, (), {}), (x, outside, (), {}), (x, negative, (), {}), (special, t, (), {}),
        (x, t, (), {"reduction": "none"}), (x, t, (), {"reduction": "bogus"}), (x, t, (), {"reduction": None}),
        (x, t, (0,), {}), (x, t, (True,), {}), (x, t, (np.int64(1),), {}), (x, t, (2**70,), {}),
        (x, t, (), {"dim": 1}), (x, t, (), {"ignore_index": -100}), (x, t, (), {"weight": None}),
        (x, t, (), {"label_smoothing": 0.1}), (x, t, (-1,), {"axis": -1}), (x, t, (-1, "mean", 3), {}),
        (np.asfortranarray(x), t, (), {}), (x[:, ::2], t % 5, (), {}), (x, t.astype(np.int32), (), {}),
        (x, t.astype(t.dtype.newbyteorder()), (), {}), (x, np.repeat(t, 2)[::2], (), {}), (x, t[:5], (), {}),
        (x, t.reshape(3, 4), (), {}), (x.reshape(3, 4, 10), t.reshape(3, 4), (), {}), (x[:0], t[:0], (), {}),
        (x.astype(np.float16), t, (), {}), (x.tolist(), t, (), {}), (x, t.tolist(), (), {}),
        (x.astype(x.dtype.newbyteorder()), t, (), {}),
        (np.tile(x[:, :3], (25, 1)), np.tile(t % 3, 25), (), {}),  # 300 rows: over C's STACK_ROWS
        (np.frombuffer(b"\0" + x.tobytes(), dtype, offset=1).reshape(x.shape), t, (), {}),  # unaligned
    ]


def _loss_outcome(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except (TypeError, ValueError, IndexError) as e:
        return type(e), str(e)


@pytest.mark.parametrize("value_and_grad", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loss_call_in_c_agrees_with_call_in_python(value_and_grad, dtype):
    """softmax_cross_entropy(...) and its value_and_grad give what the Python methods
    give for every case: the same type, dtype and bits, the same error; the inputs are
    left as they were."""
    op = fastact.softmax_cross_entropy
    assert type(op).__call__ is not type(op)._call
    in_c = op.value_and_grad if value_and_grad else op
    in_python = (lambda *a, **kw: type(op).value_and_grad(op, *a, **kw)) if value_and_grad else op._call
    for i, (x, t, args, kwargs) in enumerate(_loss_cases(dtype)):
        x_before, t_before = np.copy(x), np.copy(t)
        if isinstance(x, np.ndarray) and x.ndim == 2 and x.size:
            in_c(np.zeros_like(x), np.zeros(len(x), np.int64))  # arms the entry of this row length
        got, expected = _loss_outcome(in_c, x, t, *args, **kwargs), _loss_outcome(in_python, x, t, *args, **kwargs)
        _same(got, expected, None, None, (i, value_and_grad))
        assert np.array_equal(x, x_before, equal_nan=True) and np.array_equal(t, t_before), i


def test_loss_call_in_c_hands_on_what_it_does_not_take(monkeypatch):
    """The common small batch with the defaults (or reduction="sum") never reaches
    SoftmaxCrossEntropy._run, nor does one with a NaN logit (its NaN total is the
    answer); every other call does, as do the batches with a label outside [0, n)
    (an error, or an ignored row) and calls too large for the serial kernel."""
    op = fastact.softmax_cross_entropy
    cls = type(op)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 10)).astype(np.float32)
    t = rng.integers(0, 10, 32)
    op(x, t)
    op(x.astype(np.float64), t)
    calls = []
    python_run = cls._run

    def counting(self, *args, **kwargs):
        calls.append(args[3])  # the reduction
        return python_run(self, *args, **kwargs)

    monkeypatch.setattr(cls, "_run", counting)
    op(x, t)
    op(x, t, reduction="sum")
    op.value_and_grad(x, t, -1, "mean")
    op.value_and_grad(x.astype(np.float64), t, axis=1)
    nan_x = x.copy()
    nan_x[3, 4] = np.nan
    assert np.isnan(op(nan_x, t)) and np.isnan(op.value_and_grad(nan_x, t)[1][3]).all()
    assert calls == []
    op(x, t, reduction="none")
    op(x, t, ignore_index=-100)
    bad = t.copy()
    bad[0] = -100
    op(x, bad)
    with fastact.use_backend("numpy"):
        op(x, t)
    big = rng.standard_normal((_api._SMALL_LOSSES["softmax_cross_entropy"][10][1] // 10 + 1, 10)).astype(np.float32)
    op(big, rng.integers(0, 10, len(big)))
    assert calls == ["none", "mean", "mean", "mean", "mean", "mean"]  # the ignored row: _run, then its rerun


def test_loss_entries_follow_the_tuning(monkeypatch):
    """A new tuning (python -m fastact tune) empties the tables of small calls, which
    were filled from the old one."""
    from fastact import _tuning

    fastact.softmax_cross_entropy(np.zeros((2, 10), np.float32), np.zeros(2, np.int64))
    assert _api._SMALL_LOSSES and _api._SMALL_LOSSES.clear in _tuning.ON_CHANGE
    assert _api._SMALL_ROWS.clear in _tuning.ON_CHANGE
    for changed in _tuning.ON_CHANGE:
        changed()
    assert not _api._SMALL_LOSSES and not _api._SMALL_ROWS


@pytest.mark.parametrize("name", sorted(_rowops.ROW_FUNCTIONS))
@pytest.mark.parametrize("form,dtype", [("rows", np.float32), ("blocks", np.float64)])
def test_small_row_function_gives_the_kernels_bits(name, form, dtype):
    """A row op's serial kernel as a C function (_kernels.small_row_function, which C's
    small calls run) gives the bits of the kernel Numba's dispatch runs, with NaN, inf
    and rows of one entry, and its caller refuses arrays it cannot take."""
    from fastact import _fastcall

    address = _kernels.small_row_function(name, form, np.dtype(dtype).name).address
    kernel = _kernels.row_kernel(name, False, form=form)
    rng = np.random.default_rng(len(name))
    for shape in [(1, 1), (37, 10), (3, 300), (2, 3, 5)]:
        ins = [(rng.standard_normal(shape) * 6).astype(dtype) for _ in _rowops.ROW_FUNCTIONS[name].inputs]
        ins[-1].reshape(-1)[:3] = [np.inf, np.nan, -np.inf][:ins[-1].size]
        expected = np.empty(shape, dtype)
        kernel(*(a.reshape(-1, shape[-1]) for a in ins), expected.reshape(-1, shape[-1]))
        out = np.full(shape, 7.0, dtype)
        assert _fastcall.small_rows(address, ins[0], ins[1] if len(ins) == 2 else None, out) is out
        assert out.tobytes() == expected.tobytes(), shape
    x = np.ones((4, 8), dtype)
    for bad in [(x, None, np.ones((4, 8), np.float16)), (x[:, ::2], None, np.empty((4, 4), dtype)),
                (x, np.ones((4, 7), dtype), np.empty_like(x)), (x, None, np.empty((0, 8), dtype)),
                (x, None, np.ndarray(x.shape, dtype, buffer=bytearray(x.nbytes + 1), offset=1))]:  # unaligned
        with pytest.raises(ValueError, match="small_rows"):
            _fastcall.small_rows(address, *bad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 10), (37, 10), (5, 1), (300, 3), (9, 200)])  # blocks, rows of many classes;
# 300 rows: their losses in a buffer of their own (over STACK_ROWS)
def test_small_loss_function_gives_the_kernels_bits(dtype, shape):
    """The serial kernel as a C function (_kernels.small_loss_function, which C's small
    batches call) gives the bits of the kernel Python calls: total, losses, gradient."""
    from fastact import _fastcall, _kernels, _tuning

    rng = np.random.default_rng(shape[1])
    x = (rng.standard_normal(shape) * 6).astype(dtype)
    t = rng.integers(0, shape[1], shape[0])
    short = shape[1] <= _tuning.current().short_row_max["softmax_cross_entropy"][dtype == np.float64]
    address = _kernels.small_loss_function("xent_index", np.dtype(dtype).name).address
    kernel = _kernels.loss_kernel("xent_index", False)
    for want_grad in (False, True):
        grad, losses = np.empty(shape if want_grad else (shape[0], 0), dtype), np.empty(shape[0])
        total = kernel(x, t, want_grad, grad, 0.25, losses, short)
        grad_c = np.full(shape, np.nan, dtype)
        total_c = _fastcall.small_loss(address, x, t, short, grad_c if want_grad else None, 0.25)
        assert total_c == total == pytest.approx(losses.sum(), rel=1e-12)
        if want_grad:
            assert grad_c.tobytes() == grad.tobytes()
    with pytest.raises(ValueError, match="small_loss"):
        _fastcall.small_loss(address, x, t.astype(np.int32), short, None, 1.0)
    with pytest.raises(ValueError, match="small_loss"):
        _fastcall.small_loss(address, x, t, short, np.empty(shape, np.float16), 1.0)
