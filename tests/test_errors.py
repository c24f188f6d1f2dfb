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
        if op.supports_y():
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
    if op.supports_y():
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
    for axis in (1.0, "0", [0, 1], (0, 1.0)):
        with pytest.raises(TypeError, match=r"^axis must be an int, a tuple of ints or None, got"):
            op(x, axis=axis)
    with pytest.raises(ValueError, match=r"^axis \(1, -1\) names an axis twice"):
        op(x, axis=(1, -1))
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        op.backward(x, x, axis=(0, 2))
    with pytest.raises(ValueError, match="grad_out with shape"):
        op.backward(np.zeros((2, 4)), x)


@pytest.mark.parametrize("op", [op for op in ELEMENTWISE if not op.supports_y()], ids=lambda o: o.name)
def test_backward_from_y_where_f_prime_needs_x(backend, op):
    with pytest.raises(TypeError, match=f"{op.name}.backward cannot use y; pass x"):
        op.backward(np.ones(3), y=np.ones(3))


def test_y_backward_refused_for_parameters_that_make_it_ambiguous(backend):
    with pytest.raises(ValueError, match="negative_slope >= 0"):
        fastact.leaky_relu.backward(np.ones(2), y=np.ones(2), negative_slope=-0.1)
    with pytest.raises(ValueError, match="alpha >= 0"):
        fastact.elu.backward(np.ones(2), y=np.ones(2), alpha=-1.0)
    assert not fastact.elu.supports_y(alpha=-1.0) and fastact.elu.supports_y()


@pytest.mark.parametrize("call,error,message", [
    (lambda: fastact.gelu(np.ones(2), approximate="fast"), ValueError, "approximate must be one of"),
    (lambda: fastact.gelu(np.ones(2), approximate=None), ValueError, "approximate must be one of"),
    (lambda: fastact.celu(np.ones(2), alpha=0.0), ValueError, "alpha must not be 0"),
    (lambda: fastact.softplus(np.ones(2), beta=0), ValueError, "beta must not be 0"),
    (lambda: fastact.hardtanh(np.ones(2), min_val=1.0, max_val=-1.0), ValueError, "max_val must be >= min_val"),
    (lambda: fastact.elu(np.ones(2), alpha="1"), TypeError, "alpha must be a real number"),
    (lambda: fastact.elu(np.ones(2), alpha=np.nan), ValueError, "alpha must be finite"),
    (lambda: fastact.leaky_relu(np.ones(2), negative_slope=[0.1]), TypeError, "negative_slope must be a real number"),
    (lambda: fastact.leaky_relu(np.ones(2), slope=0.1), TypeError, "unexpected keyword argument 'slope'"),
    (lambda: fastact.leaky_relu(np.ones(2), 0.1, 0.2), TypeError, "takes 1 parameter"),
    (lambda: fastact.sigmoid(np.ones(2), 0.5), TypeError, "takes 0 parameter"),
    (lambda: fastact.elu.grad(np.ones(2), 1.0, alpha=2.0), TypeError, r"^elu\.grad\(\) got multiple values for argument 'alpha'"),
    (lambda: fastact.elu.backward(np.ones(2), x=np.ones(2), beta=1.0), TypeError,
     r"^elu\.backward\(\) got an unexpected keyword argument 'beta'"),
    (lambda: fastact.elu.value_and_grad(np.ones(2), 1.0, 2.0), TypeError, r"^elu\.value_and_grad\(\) takes 1 parameter"),
    (lambda: fastact.softmax_cross_entropy(np.ones((1, 2)), np.array([0]), dim=1), TypeError,
     r"^softmax_cross_entropy\(\) got an unexpected keyword argument 'dim': the classes are along axis="),
    (lambda: fastact.binary_cross_entropy_with_logits.value_and_grad(np.ones(1), np.ones(1), label_smoothing=0.1), TypeError,
     r"^binary_cross_entropy_with_logits\.value_and_grad\(\) got an unexpected keyword argument 'label_smoothing'"),
])
def test_bad_parameters(backend, call, error, message):
    with pytest.raises(error, match=message):
        call()


LOSS_CALLS = [
    ("logits", lambda v: fastact.softmax_cross_entropy(v, np.array([0])), lambda v: fastact.softmax_cross_entropy.value_and_grad(v, np.array([0]))),
    ("labels", lambda v: fastact.softmax_cross_entropy(np.zeros((1, 3)), v), lambda v: fastact.softmax_cross_entropy.value_and_grad(np.zeros((1, 3)), v)),
    ("logits", lambda v: fastact.binary_cross_entropy_with_logits(v, np.zeros(1)), lambda v: fastact.binary_cross_entropy_with_logits.value_and_grad(v, np.zeros(1))),
    ("targets", lambda v: fastact.binary_cross_entropy_with_logits(np.zeros(1), v), lambda v: fastact.binary_cross_entropy_with_logits.value_and_grad(np.zeros(1), v)),
]


@pytest.mark.parametrize("value,error", BAD_DTYPES)
@pytest.mark.parametrize("argname,call,call_grad", LOSS_CALLS, ids=[f"{c[0]}{i}" for i, c in enumerate(LOSS_CALLS)])
def test_bad_inputs_of_the_losses(backend, argname, call, call_grad, value, error):
    for fn in (call, call_grad):
        with pytest.raises((TypeError, ValueError, IndexError), match=rf"^{argname}"):
            fn(value)


def test_losses_do_not_modify_their_inputs(backend):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 5))
    labels = np.array([0, 4, 2, 2, 1, 3])
    p = rng.uniform(size=(6, 5))
    before = [a.tobytes() for a in (x, labels, p)]
    fastact.softmax_cross_entropy.value_and_grad(x, labels, reduction="none")
    fastact.softmax_cross_entropy.value_and_grad(x.T, p.T, axis=0)
    fastact.binary_cross_entropy_with_logits.value_and_grad(x, p)
    assert [a.tobytes() for a in (x, labels, p)] == before


@pytest.mark.parametrize("op", ROW_OPS, ids=lambda o: o.name)
def test_bad_out_over_several_axes(backend, op):
    x = np.zeros((2, 2))
    out = _sentinel((2, 2), np.float32)
    with pytest.raises(TypeError, match="out must have dtype float64"):
        op(x, axis=None, out=out)
    with pytest.raises(ValueError, match=r"out must have shape \(2, 2\)"):
        op.backward(x, x, axis=(0, 1), out=_sentinel((4,)))
    assert np.all(out == 7.0)
