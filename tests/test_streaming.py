"""Outputs larger than the last-level cache are written with streaming stores
(_kernels._streamed): the same bits as the plain kernels, whatever the output's
alignment, and only where _api._streams allows them."""

import math

import numpy as np
import pytest

import fastact
from fastact import _activations, _api, _config, _kernels
from fastact._config import STAGE_BLOCK, STREAM_TASK_BLOCKS
from fastact._scalar import STREAM_ALIGN

from .test_staged import _inputs, _same_bits

# both loops of _streamed (map and pair), formulas that otherwise run in two stages,
# parameters; the kinds with two inputs have no streamed form
CASES = [("relu", "forward"), ("tanh", "forward"), ("sigmoid", "forward"), ("elu", "forward"), ("relu", "grad"),
         ("silu", "value_and_grad"), ("relu", "value_and_grad")]
# one whole task and a short one, with blocks, a head and a tail; short arrays: a head alone
SIZES = [0, 5, STAGE_BLOCK + 3, (STREAM_TASK_BLOCKS + 2) * STAGE_BLOCK + 17]


def _at_offset(n, dtype, offset, fill):
    """n elements from ``offset`` elements past a STREAM_ALIGN-byte boundary."""
    raw = np.full(n + STREAM_ALIGN, fill, dtype)
    start = (-raw.ctypes.data) % STREAM_ALIGN // raw.itemsize + offset
    return raw[start:start + n]


def test_streamed_forms():
    assert _kernels.streams("relu", "forward") and _kernels.streams("relu", "value_and_grad")
    assert not _kernels.streams("relu", "backward_x")  # two inputs
    assert not _kernels.streams("sigmoid", "forward")  # in two stages: not streamed by the calls
    with pytest.raises(ValueError, match="no streaming kernel"):
        _kernels.elementwise_kernel("relu", "backward_x", True, streamed=True)


@pytest.mark.parametrize("name,kind", CASES)
def test_streamed_kernels_give_the_plain_kernels_bits(dtype, name, kind):
    spec = _activations.KINDS[kind]
    params = tuple(dtype(p.default) for p in _activations.ELEMENTWISE[name].params)
    plain = _kernels.elementwise_kernel(name, kind, True)
    streamed = _kernels.elementwise_kernel(name, kind, True, streamed=True)
    lane = STREAM_ALIGN // np.dtype(dtype).itemsize
    for n in SIZES:
        ins = [_inputs(dtype, n, seed) for seed in range(len(spec.inputs))]
        want = [np.empty(n, dtype) for _ in range(spec.outputs)]
        plain(*ins, *want, params)
        for offset in {0, 1, lane - 1}:
            got = [_at_offset(n, dtype, offset, np.nan) for _ in range(spec.outputs)]
            streamed(*ins, *got, params)
            assert all(_same_bits(g, w) for g, w in zip(got, want)), (n, offset)
            # nothing written outside the output
            outside = _at_offset(n + 2 * lane, dtype, offset, np.nan)
            inner = [outside[lane:lane + n]] + [_at_offset(n, dtype, offset, np.nan)
                                                 for _ in range(spec.outputs - 1)]
            streamed(*ins, *inner, params)
            assert np.isnan(outside[:lane]).all() and np.isnan(outside[lane + n:]).all()


@pytest.fixture
def two_threads():
    """Two threads (a test before may have left one: the bench's cases set the count)."""
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one thread: every call runs the ufunc")
    before = fastact.get_num_threads()
    fastact.set_num_threads(2)
    yield
    fastact.set_num_threads(before)


def _chosen(monkeypatch, maker):
    """The (name, kind, streamed) of each kernel that _kernels' ``maker`` gives from now on."""
    chosen = []
    real = getattr(_kernels, maker)

    def spy(name, kind, parallel, *args, **kwargs):
        chosen.append((name, kind, kwargs.get("streamed", False)))
        return real(name, kind, parallel, *args, **kwargs)

    monkeypatch.setattr(_kernels, maker, spy)
    return chosen


def test_calls_stream_large_memory_bound_outputs(monkeypatch, dtype, steady_threads, two_threads):
    chosen = _chosen(monkeypatch, "elementwise_kernel")
    x = _inputs(dtype, (1 << 21) + 3)  # parallel sizes for every op here, relu the cheapest
    assert _api._goes_parallel(_activations.ELEMENTWISE["relu"], x.size, x.itemsize)
    g = _inputs(dtype, x.size, seed=1)
    ops = (fastact.relu, fastact.leaky_relu, fastact.silu, fastact.tanh)
    monkeypatch.setattr(_api, "_stream_min_bytes", lambda: math.inf)
    want = {op.name: (op(x), op.backward(g, x=x), *op.value_and_grad(x)) for op in ops}
    assert chosen and not any(s for *_, s in chosen)
    monkeypatch.setattr(_api, "_stream_min_bytes", lambda: 0)
    for op in ops:
        chosen.clear()
        out = _at_offset(x.size, dtype, 3, 0.0)
        got = (op(x), op.backward(g, x=x), *op.value_and_grad(x))
        assert op(x, out=out) is out
        # not tanh (bound by its arithmetic), silu (in two stages), nor any backward (two inputs);
        # value_and_grad's two new outputs where malloc placed them alike modulo STREAM_ALIGN
        streams = op.name in ("relu", "leaky_relu")
        assert chosen and all(s == (streams and kind != "backward_x") or (kind == "value_and_grad" and not s)
                              for _, kind, s in chosen), chosen
        assert all(_same_bits(a, b) for a, b in zip((*got, out), (*want[op.name], want[op.name][0])))
    # in place: no stream (an output that is an input runs the in-place twins)
    chosen.clear()
    y = x.copy()
    assert fastact.relu(y, out=y) is y and _same_bits(y, want["relu"][0])
    assert not any(s for *_, s in chosen)


def test_which_outputs_stream(monkeypatch):
    monkeypatch.setattr(_api, "_stream_min_bytes", lambda: 4096)
    relu, tanh = _activations.ELEMENTWISE["relu"], _activations.ELEMENTWISE["tanh"]
    aligned = _at_offset(2048, np.float32, 0, 0.0)
    assert _api._streams(relu, "forward", [aligned])
    assert _api._streams(relu, "forward", [_at_offset(2048, np.float32, 5, 0.0)])
    assert not _api._streams(relu, "forward", [aligned[:1000]])  # under the bound
    assert not _api._streams(tanh, "forward", [aligned])  # bound by its arithmetic
    assert not _api._streams(relu, "backward_x", [aligned])  # no streamed form
    # an output not aligned to its itemsize, and two outputs apart modulo STREAM_ALIGN
    odd = np.frombuffer(bytearray(4 * 2048 + 1), np.uint8)[1:].view(np.float32)
    assert not _api._streams(relu, "forward", [odd])
    assert not _api._streams(relu, "value_and_grad", [aligned, _at_offset(2048, np.float32, 1, 0.0)])
    assert _api._streams(relu, "value_and_grad", [aligned, _at_offset(2048, np.float32, 0, 0.0)])


def test_the_bound(monkeypatch):
    monkeypatch.setenv("FASTACT_STREAM_MIN_BYTES", "off")
    assert _config.stream_min_bytes() == math.inf
    monkeypatch.setenv("FASTACT_STREAM_MIN_BYTES", "12345")
    assert _config.stream_min_bytes() == 12345
    monkeypatch.setenv("FASTACT_STREAM_MIN_BYTES", "lots")
    with pytest.raises(ValueError, match="FASTACT_STREAM_MIN_BYTES"):
        _config.stream_min_bytes()
    monkeypatch.delenv("FASTACT_STREAM_MIN_BYTES")
    bound = _config.stream_min_bytes()
    assert bound == math.inf or bound >= 1 << 20  # a last-level cache, or 32 MiB


# a bias per column (rows of odd length, and short rows tiled: pieces of whole blocks, a
# head, and a last partial block), per plane of NCHW data, and a scalar one; each a
# parallel size
BIAS_SHAPES = [((300, 1001), (1001,)), ((2500, 128), (128,)), ((60000, 5), (5,)), ((4, 3, 160, 161), (3, 1, 1)),
               (((1 << 18) + 7,), ())]


@pytest.mark.parametrize("shape,bias_shape", BIAS_SHAPES)
def test_bias_calls_stream_with_the_plain_kernels_bits(monkeypatch, dtype, steady_threads, two_threads, shape,
                                                       bias_shape):
    chosen = _chosen(monkeypatch, "bias_kernel")
    x = _inputs(dtype, math.prod(shape)).reshape(shape)
    b = _inputs(dtype, math.prod(bias_shape), seed=1).reshape(bias_shape)
    g = _inputs(dtype, x.size, seed=2).reshape(shape)
    ops = (fastact.relu, fastact.elu)  # elu: a parameter, and bound by its arithmetic (not streamed)
    monkeypatch.setattr(_api, "_stream_min_bytes", lambda: math.inf)
    want = {op.name: (op(x, bias=b), op.grad(x, bias=b), op.backward(g, x=x, bias=b)[0], *op.value_and_grad(x, bias=b))
            for op in ops}
    assert chosen and not any(s for *_, s in chosen)
    monkeypatch.setattr(_api, "_stream_min_bytes", lambda: 0)
    for op in ops:
        chosen.clear()
        out = _at_offset(x.size, dtype, 3, np.nan).reshape(shape)
        outs = tuple(_at_offset(x.size, dtype, 5, np.nan).reshape(shape) for _ in range(2))  # alike modulo STREAM_ALIGN
        got = (op(x, bias=b), op.grad(x, bias=b), op.backward(g, x=x, bias=b)[0], op(x, bias=b, out=out),
               *op.value_and_grad(x, bias=b, out=outs))
        # the forward kinds of relu, value_and_grad's two outputs too; never a backward (two
        # inputs, and dbias's sums)
        assert [k for _, k, _ in chosen] == ["forward", "grad", "backward_x", "forward", "value_and_grad"], chosen
        assert all(s == (op.name == "relu" and kind != "backward_x") for _, kind, s in chosen), chosen
        expected = want[op.name]
        assert all(_same_bits(a, w) for a, w in zip(got, (*expected[:3], expected[0], *expected[3:]))), op.name


def test_bias_kernels_without_a_streamed_form_refuse_it():
    assert all(_kernels.bias_streams("relu", kind) for kind in ("forward", "grad", "value_and_grad"))
    assert not _kernels.bias_streams("relu", "forward", param_grads=True)
    assert not _kernels.bias_streams("leaky_relu", "forward", weighted=True)
    for kind, extra in [("backward_x", {}), ("value_and_grad", {"same": (0, 0)}), ("forward", {"same": (0, 0)})]:
        with pytest.raises(ValueError, match="no streaming kernel"):
            _kernels.bias_kernel("relu", kind, True, streamed=True, **extra)
