"""Formulas in two stages (_activations.two_stages) give, in every kernel and ufunc that
runs them block by block, the bits of the same formulas run in one stage."""

import numpy as np
import pytest

import fastact
from fastact import _activations, _kernels, _ufuncs
from fastact._config import BIAS_STAGED_MAX, STAGE_BLOCK

STAGED = [(name, kind) for name, act in sorted(_activations.ELEMENTWISE.items())
          for kind, spec in _activations.KINDS.items()
          if (kind != "backward_y" or act.df_from_y is not None) and _kernels.staged_loop(*spec.loop(act)) is not None]
SIZES = [1, STAGE_BLOCK - 1, STAGE_BLOCK, 3 * STAGE_BLOCK + 5]


def _inputs(dtype, n, seed=0):
    """n values: the edges (infinities, NaN, zeros, the tails where results are
    subnormal, beyond the exp's clamps, overflow) and values over the whole range."""
    rng = np.random.default_rng(seed)
    edges = [np.inf, -np.inf, np.nan, 0.0, -0.0, 1e-30, -1e-30, 3e38, -3e38, -800.0, -760.5, -750.0, -745.0,
             -700.0, -130.0, -125.5, -108.0, -104.0, -95.0, -87.0, -60.0, -40.5, -39.5, 40.5, 700.0]
    x = np.concatenate([edges, rng.normal(0, 8, n), rng.uniform(-800, 800, n)])
    with np.errstate(over="ignore"):
        return rng.permutation(x.astype(dtype))[:n]


def _same_bits(a, b):
    return a.view(np.uint8).tobytes() == b.view(np.uint8).tobytes()


def test_the_exp_based_formulas_are_staged():
    assert {("sigmoid", "forward"), ("silu", "forward"), ("silu", "value_and_grad"),
            ("silu", "backward_x")} <= set(STAGED)


@pytest.mark.parametrize("name,kind", STAGED)
def test_staged_kernels_and_ufuncs_give_the_one_stage_bits(dtype, name, kind):
    spec = _activations.KINDS[kind]
    params = tuple(p.default for p in _activations.ELEMENTWISE[name].params)
    staged = _kernels.elementwise_kernel(name, kind, False)
    one_stage = _kernels.elementwise_kernel(name, kind, False, staged=False)
    ufunc = _ufuncs.elementwise_ufunc(name, kind)
    for n in SIZES:
        ins = [_inputs(dtype, n, seed) for seed in range(len(spec.inputs))]
        want = [np.empty(n, dtype) for _ in range(spec.outputs)]
        got = [np.empty(n, dtype) for _ in range(spec.outputs)]
        one_stage(*ins, *want, params)
        staged(*ins, *got, params)
        assert all(_same_bits(g, w) for g, w in zip(got, want)), (n, got, want)
        with np.errstate(all="raise"):  # and the ufunc leaves no flag raised
            result = ufunc(*ins, *params)
        for r, w in zip(result if spec.outputs > 1 else (result,), want):
            assert _same_bits(r, w), n


@pytest.mark.parametrize("op", [fastact.silu, fastact.sigmoid], ids=lambda o: o.name)
def test_staged_parallel_kernels_and_in_place_calls(dtype, op):
    x = _inputs(dtype, 20 * STAGE_BLOCK + 3)
    g = _inputs(dtype, x.size, seed=1)
    want = np.empty_like(x)
    _kernels.elementwise_kernel(op.name, "forward", False, staged=False)(x, want, ())
    got = np.empty_like(x)
    _kernels.elementwise_kernel(op.name, "forward", True)(x, got, ())
    assert _same_bits(got, want)
    want_b = np.empty_like(x)
    _kernels.elementwise_kernel(op.name, "backward_x", False, staged=False)(g, x, want_b, ())
    _kernels.elementwise_kernel(op.name, "backward_x", True)(g, x, got, ())
    assert _same_bits(got, want_b)
    y = x.copy()
    assert op(y, out=y) is y and _same_bits(y, want)  # in place: the one-stage loop


@pytest.mark.parametrize("kind", ["forward", "backward", "value_and_grad"])
def test_staged_gated_kernels_give_the_one_stage_bits(dtype, kind):
    from fastact import _gatedops

    needs_g, writes_y, writes_d = _gatedops.GATED_KINDS[kind]
    rows, n = 3, 2 * STAGE_BLOCK + 7
    x = _inputs(dtype, rows * 2 * n)
    g = _inputs(dtype, rows * n, seed=1)
    empty = np.empty(0, dtype)
    results = []
    for staged in (True, False):
        y = np.zeros(rows * n, dtype) if writes_y else empty
        d = np.zeros(rows * 2 * n, dtype) if writes_d else empty
        kernel = _kernels.gated_kernel("swiglu", "silu", kind, False, staged=staged)
        kernel(g if needs_g else empty, x, x[n:], y, d, d[n:] if writes_d else empty, rows, n, 2 * n, ())
        results.append((y, d))
    (y1, d1), (y2, d2) = results
    assert _same_bits(y1, y2) and _same_bits(d1, d2)


@pytest.mark.parametrize("name,kind", [(n, k) for n, k in STAGED if k != "backward_y"])
def test_staged_bias_kernels_give_the_one_stage_bits(dtype, name, kind):
    from fastact import _bias

    spec = _activations.KINDS[kind]
    params = tuple(p.default for p in _activations.ELEMENTWISE[name].params)
    reduces = kind.startswith("backward")
    # by column (rows of 3 blocks and a piece tiled by 3, the last row short; rows too long
    # to run staged) and by plane
    long_row = BIAS_STAGED_MAX + 5
    for shape, bias_shape in [((5, 3 * STAGE_BLOCK + 5), (3 * STAGE_BLOCK + 5,)), ((2, long_row), (long_row,)),
                              ((2, 3, 2 * STAGE_BLOCK + 1), (3, 1))]:
        n = int(np.prod(shape))
        ins = [_inputs(dtype, n, seed) for seed in range(len(spec.inputs))]
        b = _inputs(dtype, int(np.prod(bias_shape)), seed=7).reshape(bias_shape)
        b[~np.isfinite(b)] = 0.5
        lay = _bias.layout(shape, bias_shape, reduces)
        results = []
        for staged in (True, False):
            outs = [np.empty(n, dtype) for _ in range(spec.outputs)]
            partial = lay.partial() if reduces else np.zeros((2, 1, 1))
            kernel = _kernels.bias_kernel(name, kind, False, staged=staged)
            with np.errstate(all="ignore"):
                kernel(*ins, *outs, lay.bias_values(b), partial, params, lay.rows, lay.length, lay.channels, lay.rb,
                       lay.cb, lay.by_column)
            results.append(outs + ([lay.bias_gradient(partial)] if reduces else []))
        assert all(_same_bits(s, o) for s, o in zip(*results)), (shape, name, kind)
