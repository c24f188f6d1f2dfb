"""Bad input: a TypeError/ValueError that names the argument, and nothing written."""

import datetime

import numpy as np
import pytest

import fastact

ELEMENTWISE = list(fastact.ACTIVATIONS.values())
ROW_OPS = [fastact.softmax, fastact.log_softmax]

BAD_DTYPES = [
    (np.array([1 + 2j]), TypeError),
    (np.array([1.0], dtype=object), TypeError),
    (np.array(["a"]), TypeError),
    (np.array(["2024-01-01"], dtype="datetime64[D]"), TypeError),
    ([datetime.date(2024, 1, 1)], TypeError),
    (None, TypeError),
    ([[1.0, 2.0], [3.0]], ValueError),  # ragged
    ("text", TypeError),
]


@pytest.mark.parametrize("value,error", BAD_DTYPES)
@pytest.mark.parametrize("op", ELEMENTWISE, ids=lambda o: o.name)
def test_bad_x_elementwise(backend, op, value, error):
    for call in (op, op.grad, op.value_and_grad):
        with pytest.raises(error, match=r"^x "):
            call(value)
    with pytest.raises(error, match=r"^grad_out "):
        op.backward(value, x=np.ones(1))
    if value is not None:  # x=None / y=None mean "not given" (test_backward_argument_rules)
        with pytest.raises(error, match=r"^x "):
            op.backward(np.ones(1), x=value)
        with pytest.raises(error, match=r"^y "):
            op.backward(np.ones(1), y=value)


@pytest.mark.parametrize("value,error", BAD_DTYPES)
@pytest.mark.parametrize("op", ROW_OPS, ids=lambda o: o.name)
def test_bad_x_rows(backend, op, value, error):
    with pytest.raises(error, match=r"^x "):
        op(value)
    with pytest.raises(error, match=r"^y "):
        op.backward(np.ones(1), value)
    with pytest.raises(error, match=r"^grad_out "):
        op.backward(value, np.ones(1))


def _sentinel(shape=(4,), dtype=np.float64):
    return np.full(shape, 7.0, dtype)


BAD_OUTS = [
    (lambda: _sentinel((5,)), ValueError, "out must have shape"),
    (lambda: _sentinel((4,), np.float32), TypeError, "out must have dtype"),
    (lambda: [0.0] * 4, TypeError, "out must be a numpy.ndarray"),
]


@pytest.mark.parametrize("make_out,error,message", BAD_OUTS)
@pytest.mark.parametrize("op", ELEMENTWISE + ROW_OPS, ids=lambda o: o.name)
def test_bad_out(backend, op, make_out, error, message):
    x = np.linspace(-1, 1, 4)
    out = make_out()
    with pytest.raises(error, match=message):
        op(x, out=out)
    if isinstance(out, np.ndarray):
        assert np.all(out == 7.0)  # nothing was written before the error


@pytest.mark.parametrize("op", ELEMENTWISE + ROW_OPS, ids=lambda o: o.name)
def test_read_only_out(backend, op):
    out = _sentinel()
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out must be writeable"):
        op(np.zeros(4), out=out)


def test_float16_result_needs_a_float16_out(backend):
    with pytest.raises(TypeError, match="out must have dtype float16"):
        fastact.sigmoid(np.zeros(3, np.float16), out=np.empty(3, np.float32))


@pytest.mark.parametrize("op", ELEMENTWISE, ids=lambda o: o.name)
def test_bad_value_and_grad_out(backend, op):
    x = np.zeros(4)
    for bad in ([np.empty(4), np.empty(4)], (np.empty(4),), (np.empty(4), np.empty(4), np.empty(4)), np.empty(4)):
        with pytest.raises(TypeError, match="out must be None or a tuple of two arrays"):
            op.value_and_grad(x, out=bad)
    with pytest.raises(ValueError, match=r"out\[1\] must have shape"):
        op.value_and_grad(x, out=(np.empty(4), np.empty(3)))
    shared = np.empty(4)
    with pytest.raises(ValueError, match="must not overlap"):
        op.value_and_grad(x, out=(shared, shared))
    first = _sentinel()
    with pytest.raises(TypeError, match=r"out\[1\] must have dtype"):
        op.value_and_grad(x, out=(first, np.empty(4, np.float32)))
    assert np.all(first == 7.0)


@pytest.mark.parametrize("op", ELEMENTWISE, ids=lambda o: o.name)
def test_backward_argument_rules(backend, op):
    g = np.ones(3)
    with pytest.raises(TypeError, match="exactly one of x or y"):
        op.backward(g)
    with pytest.raises(TypeError, match="exactly one of x or y"):
        op.backward(g, x=g, y=g)
    with pytest.raises(ValueError, match=r"grad_out with shape \(3,\) does not broadcast against x with shape \(4,\)"):
        op.backward(g, x=np.ones(4))
    with pytest.raises(ValueError, match="grad_out with shape .* against y"):
        op.backward(g, y=np.ones(4))
    with pytest.raises(TypeError):
        op.backward(g, g, g)  # y is keyword-only


@pytest.mark.parametrize("op", ROW_OPS, ids=lambda o: o.name)
def test_bad_axis(backend, op):
    x = np.zeros((2, 3))
    for axis in (2, -3, 100):
        with pytest.raises(ValueError, match=f"axis {axis} is out of range"):
            op(x, axis=axis)
        with pytest.raises(ValueError, match="axis"):
            op.backward(x, x, axis=axis)
    for axis in (1.0, "0", None):
        with pytest.raises(TypeError, match="axis must be an int"):
            op(x, axis=axis)
    with pytest.raises(ValueError, match="grad_out with shape"):
        op.backward(np.zeros((2, 4)), x)
