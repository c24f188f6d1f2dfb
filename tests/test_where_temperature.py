"""where= (a mask) and temperature= of softmax, softmin, log_softmax and logsumexp (issue 20, item 5)."""

import math

import mpmath
import numpy as np
import pytest

import fastact
from fastact import _rowops
from fastact._rowmath import QUOTIENTS_FIRST_MIN

from .conftest import assert_ulp_close, ulp_distance

ROW_OPS = [fastact.softmax, fastact.softmin, fastact.log_softmax]


def _rng(seed=0):
    return np.random.default_rng(seed)


def _exact_row(op, row, keep, t, dtype):
    """mpmath's op over the kept entries of fl(x / t) (the quotient rounded in x's dtype,
    as PyTorch's x / t), the masked entries 0 (probabilities) or -inf (log-probabilities);
    a row with nothing kept is all 0 or -inf."""
    definition = _rowops.ROW_OPS[op.name]
    kept = [float(dtype(v) / dtype(t)) for v, k in zip(row, keep) if k]
    empty = definition.forward.empty_row
    if not kept:
        return [empty] * len(row)
    with mpmath.workdps(60):
        values = iter(definition.reference(mpmath, [mpmath.mpf(v) for v in kept]))
        return [float(next(values)) if k else empty for k in keep]


@pytest.mark.parametrize("op", ROW_OPS, ids=lambda op: op.name)
@pytest.mark.parametrize("n", [5, 300])  # short rows run in blocks, long rows one by one
@pytest.mark.parametrize("t", [None, 0.7, 3.0])
def test_masked_rows_against_mpmath(backend, dtype, op, n, t):
    x = (_rng().standard_normal((40, n)) * 4).astype(dtype)
    keep = _rng(1).random((40, n)) > 0.4
    keep[3] = False  # nothing kept: probability 0, log-probability -inf (not NaN)
    keep[4] = False
    keep[4, 2] = True  # one kept entry: probability 1, log-probability 0
    y = op(x, where=keep, temperature=t)
    assert y.dtype == dtype and y.shape == x.shape
    expected = np.array([_exact_row(op, r, k, t or 1.0, dtype) for r, k in zip(x.tolist(), keep)])
    # the kernels' bound; the NumPy fallback rounds x - max before exp (ACCURACY.md: up to
    # 155 ULP on the sweep's rows)
    assert_ulp_close(y, expected, 8 if backend == "numba" else 256)
    probability = 0.0 if op.name == "log_softmax" else 1.0
    assert y[4, 2] == probability


def _exact_quotient_rows(op, x, t):
    """mpmath's op over each row of x / t, the quotient exact (not rounded first)."""
    definition = _rowops.ROW_OPS[op.name]
    with mpmath.workdps(60):
        return np.array([[float(v) for v in definition.reference(mpmath, [mpmath.mpf(v) / mpmath.mpf(float(t))
                                                                          for v in row])] for row in x.tolist()])


def _takes_exact_quotient(backend, op, axis=-1):
    """Whether op(x, temperature=t) (no where=) takes the quotient inside exp
    (_rowmath.exp_of_quotient): the kernels' softmax and softmin along the last axis or
    axes merged last (a tuple, None); along one other axis the lanes kernels take x / t."""
    return backend == "numba" and op.name in _rowops.EXACT_QUOTIENT_OPS and axis in (-1, None, (1, 2))


@pytest.mark.parametrize("op", ROW_OPS, ids=lambda op: op.name)
def test_temperature_divides_x_as_pytorch_does(backend, dtype, op):
    # softmax(x, temperature=t) is softmax(x / t) with the quotient rounded in x's dtype:
    # the same bits as dividing first, along every axis form; but for the kernels'
    # softmax and softmin along rows, which take the quotient exactly, inside exp: within
    # the plain op's few ULPs of the exact softmax(x / t), where rounding x / t first
    # errs by up to |x / t| ULPs (here more than 8).
    x = (_rng(2).standard_normal((6, 50, 3)) * 5).astype(dtype)
    for axis in (-1, 1, (1, 2), None):
        moved = op(x / dtype(0.3), axis=axis)
        with_t = op(x, axis=axis, temperature=0.3)
        if _takes_exact_quotient(backend, op, axis):
            rows = np.moveaxis(x, axis, -1) if isinstance(axis, int) else x.reshape(6, -1) if axis else x.reshape(1, -1)
            exact = _exact_quotient_rows(op, rows.reshape(-1, rows.shape[-1]), dtype(0.3)).reshape(rows.shape)
            exact = np.moveaxis(exact, -1, axis) if isinstance(axis, int) else exact.reshape(x.shape)
            assert_ulp_close(with_t, exact, 8)  # the kernels' bound, the plain op's
            assert ulp_distance(moved, exact.astype(dtype)).max() > 8  # PyTorch's rounded x / t
        elif axis == -1:
            np.testing.assert_array_equal(with_t, moved)
        else:  # the plain op runs lanes along other axes, the kept kernels rows: sums in another order
            assert_ulp_close(with_t, moved, 4)


@pytest.mark.parametrize("op", ROW_OPS, ids=lambda op: op.name)
# blocks of short rows, rows one by one dividing as they read, long rows taking x / t first
@pytest.mark.parametrize("n", [6, 700, QUOTIENTS_FIRST_MIN + 76])
@pytest.mark.parametrize("t", [0.5, 2.5, 1e-3])
def test_temperature_alone_reads_x_over_t_in_the_row(backend, dtype, op, n, t):
    # temperature= without where= runs the definition's scaled forms, which divide as they
    # read x (long rows: into out first) instead of into a scratch copy
    # (RowFunction.scaled): the same bits as dividing first, contiguous or not, with
    # infinities, NaN and quotients that overflow.
    # (Not where x / t is within 2^24 of the smallest normal: quotient_by's remainder
    # underflows there, and the quotient may be an ULP off, in every kernel.)
    x = (_rng(5).standard_normal((70, 2 * n)) * 6).astype(dtype)
    big = np.finfo(dtype).max
    x[1, :3] = [np.inf, -np.inf, 1.0]
    x[2, 1] = np.nan
    x[3, :] = -np.inf  # softmax: NaN, as the plain op (a mask would make it a safe row of 0s or -infs)
    x[4, :2] = [big, -big]  # x / 0.5 overflows
    x[5, :] = np.inf  # softmin's NaN row
    empty = 5 if op is fastact.softmin else 3
    for xs in (x[:, :n], x[:, ::2]):  # sliced rows: contiguous along the row or not
        y = op(xs, temperature=t)
        assert y.dtype == dtype
        with np.errstate(over="ignore"):
            quotients = xs / dtype(t)
        # softmax and softmin take rows whose maximum (softmin: of -x) is finite and under
        # 2**100 with the quotient exact (exp_of_quotient), and divide the others (here
        # some of rows 1 to 5) first
        rounded = ~(abs(np.max(-xs if op is fastact.softmin else xs, axis=1)) < 2.0**100)
        if not _takes_exact_quotient(backend, op):
            rounded[:] = True
        np.testing.assert_array_equal(y[rounded], op(quotients)[rounded])
        if not rounded.all():
            assert_ulp_close(y[6:12], _exact_quotient_rows(op, xs[6:12], dtype(t)), 8)
        # the rows that divide first give the bits of the kept kernels (where=, which
        # divide first too), but for the row of -inf (softmin: +inf), which a mask makes safe
        rounded[empty] = False
        np.testing.assert_array_equal(y[rounded], op(xs, temperature=t, where=np.ones(n, bool))[rounded])
        assert np.isnan(y[empty]).all()
        # the backward runs its own forms, each row divided by t as it goes: the kept kernels' bits
        g = _rng(6).standard_normal(xs.shape).astype(dtype)
        g[7, :2] = [np.inf, np.nan]
        for gs, ys in ((g, y), (np.repeat(g, 2, axis=1)[:, ::2], np.repeat(y, 2, axis=1)[:, ::2])):
            np.testing.assert_array_equal(op.backward(gs, ys, temperature=t),
                                          op.backward(gs, ys, temperature=t, where=np.ones(n, bool)))


@pytest.mark.parametrize("op", ROW_OPS, ids=lambda op: op.name)
@pytest.mark.parametrize("n", [7, 500])
def test_a_mask_keeping_everything_changes_no_bit(backend, dtype, op, n):
    x = (_rng(3).standard_normal((33, n)) * 3).astype(dtype)
    g = _rng(4).standard_normal((33, n)).astype(dtype)
    y = op(x)
    np.testing.assert_array_equal(op(x, where=np.ones(n, bool)), y)
    np.testing.assert_array_equal(op(x, temperature=1.0), y)
    np.testing.assert_array_equal(op.backward(g, y, where=np.ones((33, n), bool)), op.backward(g, y))


def _torch_masked(torch, op_name, x, keep, t, axis):
    """PyTorch's masked softmax: the logits filled with -inf (softmin: +inf), divided by t,
    PyTorch's op, and rows with nothing kept set to 0 (its safe softmax)."""
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    fill = math.inf if op_name == "softmin" else -math.inf
    masked = (tx / t).masked_fill(~torch.from_numpy(np.broadcast_to(keep, x.shape).copy()), fill)
    fn = {"softmax": torch.softmax, "log_softmax": torch.log_softmax,
          "softmin": torch.nn.functional.softmin}[op_name]
    y = fn(masked, axis)
    dead = ~torch.from_numpy(np.broadcast_to(keep, x.shape).copy()).any(axis, keepdim=True)
    y = torch.where(dead, torch.tensor(-math.inf if op_name == "log_softmax" else 0.0, dtype=y.dtype), y)
    return tx, y


@pytest.mark.parametrize("op", ROW_OPS, ids=lambda op: op.name)
@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_values_and_gradients_equal_pytorch_autograd(dtype, op, axis):
    torch = pytest.importorskip("torch")
    x = (_rng(5).standard_normal((9, 12, 20)) * 3).astype(dtype)
    g = _rng(6).standard_normal(x.shape).astype(dtype)
    keep = _rng(7).random(x.shape) > 0.3
    keep[2, 3, :] = False
    keep[:, 4, 5] = False
    keep[1, :, 7] = False
    t = 0.6
    tx, ty = _torch_masked(torch, op.name, x, keep, t, axis)
    kept = torch.from_numpy(keep)
    # the gradient of the masked outputs is 0: they are constants, not functions of x
    ty.backward(torch.where(kept, torch.from_numpy(g), 0))
    tol = {"rtol": 2e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-14}
    y = op(x, axis=axis, where=keep, temperature=t)
    np.testing.assert_allclose(y, ty.detach().numpy(), **tol)
    dx = op.backward(g, y, axis=axis, where=keep, temperature=t)
    np.testing.assert_allclose(dx, tx.grad.numpy(), **tol)
    assert (dx[~keep] == 0).all()


def test_a_mask_broadcast_along_leading_axes(backend, dtype):
    # A causal (n, n) mask against (batch, heads, n, n) attention scores, a padding mask
    # (batch, 1, 1, n), and one row (n,): each gives what the full-size mask gives.
    b, h, n = 2, 3, 16
    x = (_rng(8).standard_normal((b, h, n, n)) * 2).astype(dtype)
    causal = np.tril(np.ones((n, n), bool))
    padding = _rng(9).random((b, 1, 1, n)) > 0.3
    for mask in (causal, padding, causal[-1], causal[:, :1], np.tril(np.ones((h, n, n), bool), -1)):
        full = np.broadcast_to(mask, x.shape).copy()
        for op in ROW_OPS:
            np.testing.assert_array_equal(op(x, where=mask), op(x, where=full))
            y = op(x, where=mask, temperature=2.0)
            g = np.ones_like(x)
            np.testing.assert_array_equal(op.backward(g, y, where=mask, temperature=2.0),
                                          op.backward(g, y, where=full, temperature=2.0))
    y = fastact.softmax(x, where=causal)
    np.testing.assert_array_equal(y[..., 0, :], np.eye(n, dtype=dtype)[0].repeat(1).reshape(1, n).repeat(b * h, 0)
                                  .reshape(b, h, n))  # the first query sees only itself


def test_semantics_at_the_edges(backend):
    x = np.array([[1.0, -np.inf, 2.0], [-np.inf, -np.inf, 5.0], [np.nan, 0.0, 1.0], [np.inf, 0.0, 1.0]])
    keep = np.array([[True, True, True], [True, True, False], [True, True, True], [False, True, True]])
    y = fastact.softmax(x, where=keep)
    np.testing.assert_allclose(y[0], [1 / (1 + math.e), 0.0, math.e / (1 + math.e)], rtol=1e-15)
    np.testing.assert_array_equal(y[1], [0.0, 0.0, 0.0])  # nothing kept but -inf: PyTorch's safe softmax
    assert np.isnan(y[2]).all()  # NaN in gives NaN out
    np.testing.assert_allclose(y[3], [0.0, 1 / (1 + math.e), math.e / (1 + math.e)], rtol=1e-15)  # +inf masked
    np.testing.assert_array_equal(fastact.log_softmax(x, where=keep)[1], [-np.inf] * 3)
    # without where=, temperature= alone keeps the op's semantics: a row of -inf gives NaN
    assert np.isnan(fastact.softmax(np.full(3, -np.inf), temperature=2.0)).all()
    np.testing.assert_array_equal(fastact.softmax(np.full(3, -np.inf), where=np.ones(3, bool)), [0.0] * 3)
    # a large temperature flattens, a small one sharpens, without overflow
    np.testing.assert_allclose(fastact.softmax([2.0, 10.0, 1.0, 4.0], temperature=1e9), [0.25] * 4, rtol=1e-8)
    with np.errstate(all="raise"):
        np.testing.assert_array_equal(fastact.softmax([2.0, 10.0, 1.0, 4.0], temperature=1e-300), [0, 1, 0, 0])


@pytest.mark.parametrize("op", ROW_OPS, ids=lambda op: op.name)
@pytest.mark.parametrize("n", [3, 40, 129, 4100])  # blocks; rows: vector body and remainder
@pytest.mark.parametrize("t", [None, 2.0])
def test_a_row_is_empty_only_when_nothing_kept_differs_from_the_fill(backend, op, n, t):
    """The kernels find a row with nothing left to normalise as they copy it: every entry
    masked, or the kept ones all equal to the fill (softmax's -inf, softmin's +inf).  One
    kept entry that differs, anywhere in the row, keeps the row; so does a kept NaN."""
    fill = math.inf if op is fastact.softmin else -math.inf
    empty = _rowops.ROW_OPS[op.name].forward.empty_row
    x = _rng(5).standard_normal((6, n))
    keep = np.zeros((6, n), bool)
    keep[1, ::2] = True
    x[1, ::2] = fill  # kept, but all the fill
    for row, j in ((2, 0), (3, n - 1), (4, n // 2)):
        keep[row, j] = True  # one kept entry: probability 1 there
    keep[5, n - 1], x[5, n - 1] = True, np.nan
    y = op(x, where=keep, temperature=t)
    np.testing.assert_array_equal(y[:2], np.full((2, n), empty))
    for row, j in ((2, 0), (3, n - 1), (4, n // 2)):
        expected = np.full(n, empty)
        expected[j] = 0.0 if op is fastact.log_softmax else 1.0
        np.testing.assert_array_equal(y[row], expected)
    assert np.isnan(y[5, n - 1])


@pytest.mark.parametrize("op", ROW_OPS, ids=lambda op: op.name)
@pytest.mark.parametrize("n", [12, 300, QUOTIENTS_FIRST_MIN + 76])  # blocks: scratch copies; rows: kept forms
def test_a_mask_gives_the_bits_of_the_op_on_the_filled_logits(backend, dtype, op, n):
    """softmax(x, where=m) is softmax of x with the masked entries set to the fill, bit
    for bit, in rows with something kept: the scratch copy of each row (log_softmax's
    fused pass, short rows), and the kept forms, which select as they read x (or g and
    y: RowFunction.kept)."""
    fill = math.inf if op is fastact.softmin else -math.inf
    rng = _rng(9)
    x = (rng.standard_normal((20, n)) * 4).astype(dtype)
    keep = rng.random((20, n)) > 0.3
    keep[:, 0] = True
    x[1, 5], keep[1, 5] = -fill, True  # a kept infinity on the other side: NaN rows
    x[2, 7], keep[2, 7] = np.nan, True
    x[3, 9], keep[3, 9] = fill, True  # a kept fill
    x[4, 1:] = np.nan  # masked NaN
    keep[4, 1:] = False
    x[5, 0] = -math.copysign(60, fill)  # one entry dominates: log_softmax's fused pass
    y = op(x, where=keep)
    np.testing.assert_array_equal(y, op(np.where(keep, x, dtype(fill))))
    # the backward likewise, g and y filled (whatever they hold where masked), divided by t
    g = rng.standard_normal((20, n)).astype(dtype)
    g[6, 1], keep[6, 1] = np.inf, False
    y_fill = -math.inf if op is fastact.log_softmax else 0.0
    for t in (None, 0.7):
        np.testing.assert_array_equal(op.backward(g, y, where=keep, temperature=t),
                                      op.backward(np.where(keep, g, dtype(0)), np.where(keep, y, dtype(y_fill)))
                                      / dtype(t or 1))


@pytest.mark.parametrize("op", ROW_OPS, ids=lambda op: op.name)
@pytest.mark.parametrize("n", [3, 40, 4100])
def test_a_masked_backward_reads_nothing_at_masked_entries(backend, op, n):
    """Whatever g and y hold where the mask is False (inf, NaN), the backward is the
    backward of the kept entries alone, and 0 where masked."""
    rng = _rng(6)
    x = rng.standard_normal((9, n))
    keep = rng.random((9, n)) < 0.6
    keep[:, 0] = True
    y = op(x, where=keep)
    g = rng.standard_normal((9, n))
    expected = op.backward(g, y, where=keep)
    g_bad, y_bad = g.copy(), y.copy()
    g_bad[~keep] = np.where(rng.random((~keep).sum()) < 0.5, np.inf, np.nan)
    y_bad[~keep] = np.nan
    got = op.backward(g_bad, y_bad, where=keep)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got[~keep], 0.0)
    kept = op.backward(g[0:1, keep[0]], y[0:1, keep[0]])  # the first row's kept entries alone
    # g - sum(g y) cancels: an absolute bound on the scale of the terms, not ULPs
    np.testing.assert_allclose(got[0:1, keep[0]], kept, rtol=1e-12, atol=1e-14)


def test_the_tutorials_scores_with_a_mask_and_a_temperature(backend):
    scores = np.array([2.0, 10.0, 1.0, 4.0])
    y = fastact.softmax(scores, where=np.array([True, False, True, True]))
    e = np.exp(scores[[0, 2, 3]] - 4.0)
    np.testing.assert_allclose(y, [e[0] / e.sum(), 0.0, e[1] / e.sum(), e[2] / e.sum()], rtol=1e-15)
    # at temperature 2 the 10 dominates less: exp((x - 10) / 2) normalised
    e2 = np.exp((scores - 10.0) / 2)
    np.testing.assert_allclose(fastact.softmax(scores, temperature=2.0), e2 / e2.sum(), rtol=1e-15)
    assert fastact.softmax(scores, temperature=2.0)[1] == pytest.approx(0.926602, abs=1e-6)  # 0.997071 at t = 1


@pytest.mark.parametrize("op", [*ROW_OPS, fastact.logsumexp], ids=lambda op: op.name)
def test_tasks_of_many_masked_rows_give_each_rows_own_bits(dtype, op):
    """The masked kernels take up to 16 rows a task, with one scratch row
    (_kernels.scratch_chunk): 1003 rows of 300 run 67 tasks of 15, the last of 13.  Each
    row's result, forward and backward, is the bits of that row's own call."""
    rng = _rng(8)
    x = (rng.standard_normal((1003, 300)) * 3).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    keep = rng.random(x.shape) > 0.3
    keep[1002] = False  # the last task's last row: nothing kept
    y = op(x, where=keep, temperature=0.8)
    second = (g, y) if op is not fastact.logsumexp else (g[:, 0], x)
    dx = op.backward(*second, where=keep, temperature=0.8)
    for r in (0, 14, 15, 16, 500, 989, 990, 1001, 1002):
        row = op(x[r:r + 1], where=keep[r:r + 1], temperature=0.8)
        np.testing.assert_array_equal(y[r:r + 1], row)
        alone = (g[r:r + 1], y[r:r + 1]) if op is not fastact.logsumexp else (g[r:r + 1, 0], x[r:r + 1])
        np.testing.assert_array_equal(dx[r:r + 1], op.backward(*alone, where=keep[r:r + 1], temperature=0.8))


def test_logsumexp_with_where_and_temperature(backend, dtype):
    x = (_rng(10).standard_normal((30, 40)) * 6).astype(dtype)
    keep = _rng(11).random((30, 40)) > 0.5
    keep[5] = False
    for t in (None, 0.4):
        value = fastact.logsumexp(x, where=keep, temperature=t)
        assert value.dtype == dtype and value.shape == (30,)
        q = x / dtype(t or 1.0)
        with mpmath.workdps(60):
            exact = [float(mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(float(v))) for v in row[k]))) if k.any()
                     else -math.inf for row, k in zip(q, keep)]
        assert_ulp_close(value[keep.any(1)], np.array(exact)[keep.any(1)], 2)
        assert value[5] == -np.inf
        g = _rng(12).standard_normal(30).astype(dtype)
        dx = fastact.logsumexp.backward(g, x, where=keep, temperature=t)
        p = fastact.softmax(x, where=keep, temperature=t)
        np.testing.assert_allclose(dx, p * g[:, None] / (t or 1.0), rtol=1e-6 if dtype == np.float32 else 1e-14)
        assert (dx[~keep] == 0).all()
    np.testing.assert_array_equal(fastact.logsumexp(x, axis=0, where=keep[:, :1]),
                                  fastact.logsumexp(x, axis=0, where=np.broadcast_to(keep[:, :1], x.shape)))


@pytest.mark.parametrize(("shape", "axis"), [((40, 70, 33), 0), ((40, 7, 33), 1), ((300, 50), 0)])
def test_logsumexp_along_another_axis_is_it_on_the_filled_logits(backend, dtype, shape, axis):
    x = (_rng(24).standard_normal(shape) * 3).astype(dtype)
    keep = _rng(25).random(shape) > 0.3
    lane = [0] * len(shape)
    lane[axis] = slice(None)
    keep[tuple(lane)] = False  # a lane with nothing kept
    x[(1,) * len(shape)] = np.nan  # and one with a kept NaN
    keep[(1,) * len(shape)] = True
    for t in (None, 0.7):
        value = fastact.logsumexp(x, axis=axis, where=keep, temperature=t)
        assert value.dtype == dtype
        np.testing.assert_array_equal(value, fastact.logsumexp(np.where(keep, x, -np.inf) / dtype(t or 1), axis=axis))
        assert (value[~keep.any(axis=axis)] == -np.inf).all() and np.isnan(value).sum() == 1


@pytest.mark.parametrize("op", ROW_OPS, ids=lambda op: op.name)
@pytest.mark.parametrize(("shape", "axis"), [((40, 7, 33), 0), ((40, 7, 33), 1), ((300, 5), 0), ((6, 1100, 3), 1)])
def test_another_axis_is_the_op_on_the_filled_inputs_along_it(backend, dtype, op, shape, axis):
    """Along an axis that is not the last, where= and temperature= are the plain op along
    that axis on the filled inputs (no rows moved last): the same bits, lanes with
    nothing kept set to the empty row, masked gradients 0 (NaN only in a NaN lane)."""
    fill, g_fill = (math.inf, 0.0) if op is fastact.softmin else (-math.inf, 0.0)
    y_fill = -math.inf if op is fastact.log_softmax else 0.0
    x = (_rng(21).standard_normal(shape) * 3).astype(dtype)
    keep = _rng(22).random(shape) > 0.3
    x.flat[5] = np.nan
    x.flat[7] = -np.inf
    lane = [0] * len(shape)
    lane[axis] = slice(None)
    keep[tuple(lane)] = False  # a lane with nothing kept
    lane[-1] = 2
    keep[tuple(lane)] = np.arange(shape[axis]) == 1
    x[tuple(lane)] = fill  # one with nothing kept but the fill itself
    g = _rng(23).standard_normal(shape).astype(dtype)
    empty = ~(keep & (x != fill)).any(axis=axis, keepdims=True)
    for t in (None, 0.7):
        filled = np.where(keep, x, dtype(fill)) / dtype(t or 1)
        y = op(x, axis=axis, where=keep, temperature=t)
        assert y.dtype == dtype
        np.testing.assert_array_equal(y, np.where(empty, dtype(y_fill), op(filled, axis=axis)))
        dx = op.backward(g, y, axis=axis, where=keep, temperature=t)
        expected = op.backward(np.where(keep, g, dtype(g_fill)), np.where(keep, y, dtype(y_fill)), axis=axis)
        np.testing.assert_array_equal(dx, expected / dtype(t or 1))
        nan_lanes = np.broadcast_to(np.isnan(y).any(axis=axis, keepdims=True), shape)  # (softmin's -inf too)
        assert (dx[~keep & ~nan_lanes] == 0).all() and not nan_lanes.all()
        np.testing.assert_array_equal(op(x, axis=axis, temperature=t), op(x / dtype(t or 1), axis=axis))
        same = x.copy()
        assert op(same, axis=axis, where=keep, temperature=t, out=same) is same  # out= is x
        np.testing.assert_array_equal(same, y)
        half = op(x.astype(np.float16), axis=axis, where=keep[0], temperature=t)  # a mask broadcast
        assert half.dtype == np.float16
        np.testing.assert_array_equal(half, op(x.astype(np.float16), axis=axis,
                                               where=np.broadcast_to(keep[0], shape), temperature=t))


def test_out_and_inputs(backend):
    x = _rng(13).standard_normal((4, 6)).astype(np.float32)
    keep = _rng(14).random((4, 6)) > 0.5
    x_before, keep_before = x.copy(), keep.copy()
    out = np.empty_like(x)
    assert fastact.softmax(x, where=keep, temperature=0.5, out=out) is out
    np.testing.assert_array_equal(out, fastact.softmax(x, where=keep, temperature=0.5))
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(keep, keep_before)
    fastact.softmax(x, axis=0, where=keep, out=out)  # along another axis, into out
    np.testing.assert_array_equal(out, fastact.softmax(np.where(keep, x, -np.inf), axis=0))
    half = fastact.softmax(x.astype(np.float16), where=keep)
    assert half.dtype == np.float16
    masked = np.ma.masked_array(x, mask=~keep)  # a masked array's mask and where= together
    both = fastact.softmax(masked, where=np.arange(6) < 4)
    np.testing.assert_allclose(both.filled(0), fastact.softmax(x, where=keep & (np.arange(6) < 4)), rtol=1e-6)
    assert fastact.softmax(np.float64(3.0), temperature=2.0) == 1.0


def test_bad_where_and_temperature():
    x = np.ones((3, 4))
    with pytest.raises(TypeError, match="where must be a bool array"):
        fastact.softmax(x, where=np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"where must broadcast to x's shape \(3, 4\), got shape \(3,\)"):
        fastact.softmax(x, where=np.ones(3, bool))
    with pytest.raises(ValueError, match="where must broadcast"):
        fastact.softmax(x, where=np.ones((2, 3, 4), bool))
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="temperature must be positive and finite"):
            fastact.log_softmax(x, temperature=bad)
    with pytest.raises(ValueError, match="temperature must be positive and finite in float32"):
        fastact.softmax(x.astype(np.float32), temperature=1e-50)  # 0 in float32
    for bad in ("2", True, np.ones(1)):
        with pytest.raises(TypeError, match="temperature must be a real number"):
            fastact.softmax(x, temperature=bad)
    with pytest.raises(TypeError, match="where must be a bool array"):
        fastact.logsumexp(x, where=np.zeros((3, 4), int))
    with pytest.raises(ValueError, match="temperature must be positive"):
        fastact.logsumexp.backward(np.ones(3), x, temperature=-2.0)


def test_duck_arrays_are_refused_with_where():
    da = pytest.importorskip("dask.array")
    x = da.ones((4, 4), chunks=2)
    with pytest.raises(TypeError, match="x: where= and temperature= take NumPy arrays, got a dask.Array"):
        fastact.softmax(x, where=np.ones(4, bool))
