"""Fused losses against PyTorch's formulas (in NumPy) and finite differences."""

import numpy as np
import pytest

import fastact

XENT = fastact.softmax_cross_entropy
BCE = fastact.binary_cross_entropy_with_logits


def _xent_reference(x, labels, axis, reduction):
    """torch.nn.functional.cross_entropy's definition, in float64 NumPy."""
    x = np.moveaxis(x.astype(np.float64), axis, -1)
    lse = np.log(np.sum(np.exp(x - x.max(-1, keepdims=True)), -1)) + x.max(-1)
    if labels.dtype.kind in "iu":
        losses = lse - np.take_along_axis(x, labels[..., None], -1)[..., 0]
    else:
        p = np.moveaxis(labels.astype(np.float64), axis, -1)
        losses = np.sum(p * (lse[..., None] - x), -1)
    return {"mean": losses.mean(), "sum": losses.sum(), "none": losses}[reduction]


def _bce_reference(x, t, reduction):
    x, t = x.astype(np.float64), t.astype(np.float64)
    losses = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
    return {"mean": losses.mean(), "sum": losses.sum(), "none": losses}[reduction]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_cross_entropy_against_formula(backend, dtype, reduction, soft, axis):
    rng = np.random.default_rng(0)
    x = rng.normal(0, 4, (30, 9)).astype(dtype)
    n_classes = x.shape[axis]
    if soft:
        labels = np.moveaxis(rng.dirichlet(np.ones(n_classes), x.shape[1 - axis % 2]).astype(dtype), -1, axis)
    else:
        labels = rng.integers(0, n_classes, x.shape[1 - axis % 2])
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    value, grad = XENT.value_and_grad(x, labels, axis=axis, reduction=reduction)
    np.testing.assert_allclose(value, _xent_reference(x, labels, axis, reduction), rtol=rtol)
    np.testing.assert_allclose(XENT(x, labels, axis=axis, reduction=reduction), value, rtol=rtol)
    assert grad.shape == x.shape and grad.dtype == dtype
    # the gradient of the (reduced) loss, by finite differences in float64
    x64 = x.astype(np.float64)
    h = 1e-6
    for i, j in [(0, 0), (3, 5), (29, 8), (7, 2)]:
        e = np.zeros_like(x64)
        e[i, j] = h
        total = (lambda v: np.sum(_xent_reference(v, labels, axis, reduction)))
        numeric = (total(x64 + e) - total(x64 - e)) / (2 * h)
        assert grad[i, j] == pytest.approx(numeric, rel=1e-4, abs=1e-6)  # h = 1e-6 on a sum of ~150


def test_softmax_cross_entropy_is_stable_for_large_logits(backend, dtype):
    x = np.array([[1e4, 0.0, -1e4], [-1e30, 1e30, 0.0]], dtype)
    loss, grad = XENT.value_and_grad(x, np.array([0, 0]), reduction="none")
    np.testing.assert_allclose(loss, [0.0, 2e30], rtol=1e-6)
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad, [[0, 0, 0], [-1, 1, 0]], atol=1e-6)


@pytest.mark.parametrize("t", [30.0, 16.1, 16.0, 3.0])
@pytest.mark.parametrize("n", [10, 100])
def test_softmax_cross_entropy_of_a_dominant_label(backend, dtype, n, t):
    # The label's logit leads the others by t: the loss log1p((n - 1) e^-t) is tiny
    # and within 2 ULP of mpmath's, with and without the gradient (float32 with
    # the gradient sums the exps with the maximum's 1 and takes log1p(sum - 1),
    # or below 2**-20 the sum of the others alone).  log(sum) lost the tiny part.
    # The NumPy backend's sum of exps in NumPy's order: 4 ULP.
    import mpmath

    from .conftest import assert_ulp_close

    x = np.array([[0.0] + [-t] * (n - 1), [-t] * (n - 1) + [0.0]], dtype)
    labels = np.array([0, n - 1])
    mpmath.mp.prec = 120
    exact = float(mpmath.log1p((n - 1) * mpmath.exp(mpmath.mpf(-float(dtype(t))))))
    expected = np.array([exact, exact], dtype)
    bound = 2 if backend == "numba" else 4
    assert_ulp_close(XENT(x, labels, reduction="none"), expected, bound)
    loss, grad = XENT.value_and_grad(x, labels, reduction="none")
    assert_ulp_close(loss, expected, bound)
    onehot = np.eye(n, dtype=dtype)[labels]
    assert_ulp_close(XENT(x, onehot, reduction="none"), expected, bound)


def test_soft_targets_are_taken_as_given(backend):
    x = np.array([[1.0, 2.0, 3.0]])
    p = np.array([[0.5, -0.25, 1.0]])  # negative and not summing to 1, as PyTorch accepts
    loss, grad = XENT.value_and_grad(x, p, reduction="sum")
    assert loss == pytest.approx(_xent_reference(x, p, -1, "sum"))
    s = np.exp(x) / np.exp(x).sum()
    np.testing.assert_allclose(grad, s * p.sum() - p)


def test_nan_propagates_through_the_losses(backend):
    x = np.array([[np.nan, 1.0], [0.0, 1.0]])
    loss, grad = XENT.value_and_grad(x, np.array([1, 0]), reduction="none")
    assert np.isnan(loss[0]) and not np.isnan(loss[1]) and np.isnan(grad[0]).all()
    loss, grad = BCE.value_and_grad(np.array([np.nan, 1.0]), np.array([1.0, 1.0]), reduction="none")
    assert np.isnan(loss[0]) and np.isnan(grad[0]) and not np.isnan(loss[1])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits_against_formula_and_finite_differences(backend, dtype, reduction):
    rng = np.random.default_rng(1)
    x = rng.normal(0, 10, (40, 5)).astype(dtype)
    t = rng.uniform(0, 1, (40, 5)).astype(dtype)
    value, grad = BCE.value_and_grad(x, t, reduction=reduction)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(value, _bce_reference(x, t, reduction), rtol=rtol)
    np.testing.assert_allclose(BCE(x, t, reduction=reduction), value, rtol=rtol)
    scale = 1 / x.size if reduction == "mean" else 1.0
    np.testing.assert_allclose(grad, scale * (1 / (1 + np.exp(-x.astype(np.float64))) - t), rtol=1e-4, atol=1e-7 * scale)


def test_bce_with_logits_is_stable_for_large_logits(backend):
    x = np.array([1000.0, -1000.0, 40.0, -40.0])
    t = np.array([1.0, 0.0, 1.0, 0.0])
    loss = BCE(x, t, reduction="none")
    np.testing.assert_allclose(loss, [0.0, 0.0, np.exp(-40.0), np.exp(-40.0)], rtol=1e-12)
    assert loss[2] > 0  # log1p(exp(-40)), not 0


def test_loss_errors(backend):
    x = np.zeros((3, 4))
    with pytest.raises(IndexError, match="labels must be class indices in \\[0, 4\\) or ignore_index \\(-100\\), got 4"):
        XENT(x, np.array([0, 1, 4]))
    with pytest.raises(IndexError, match="labels"):
        XENT(x, np.array([0, -1, 2]))
    with pytest.raises(ValueError, match="labels as class indices must have shape \\(3,\\)"):
        XENT(x, np.array([0, 1]))
    with pytest.raises(ValueError, match="labels as class probabilities must have the logits' shape"):
        XENT(x, np.ones((3, 3)))
    with pytest.raises(ValueError, match="reduction must be one of"):
        XENT(x, np.array([0, 1, 2]), reduction="avg")
    with pytest.raises(TypeError, match="labels"):
        XENT(x, None)
    with pytest.raises(TypeError, match="logits"):
        XENT(np.array(["a"]), np.array([0]))
    with pytest.raises(ValueError, match="axis"):
        XENT(x, np.array([0, 1, 2]), axis=2)
    with pytest.raises(ValueError, match="targets must have the logits' shape"):
        BCE(x, np.ones(4))
    with pytest.raises(TypeError, match="targets"):
        BCE(x, np.full((3, 4), "a"))


def test_bce_with_logits_limits_at_infinity(backend):
    """(1 - t) x for x = +inf and -t x for x = -inf, 0 where the factor is 0 (it gave
    inf - inf = NaN for 0 < t < 1); the gradient sigmoid(x) - t."""
    x = np.array([np.inf, np.inf, np.inf, -np.inf, -np.inf, -np.inf])
    t = np.array([0.5, 1.0, 0.0, 0.5, 0.0, 1.0])
    loss, grad = BCE.value_and_grad(x, t, reduction="none")
    np.testing.assert_array_equal(loss, [np.inf, 0.0, np.inf, np.inf, 0.0, np.inf])
    assert not np.signbit(loss).any()
    np.testing.assert_array_equal(grad, [0.5, 0.0, 1.0, -0.5, 0.0, -1.0])
    assert BCE(x[:1].astype(np.float32), t[:1].astype(np.float32)) == np.inf


def test_zero_dimensional_losses_are_scalars(backend):
    value = BCE(np.array(1.0), np.array(0.5), reduction="none")
    assert isinstance(value, np.float64)
    value, grad = BCE.value_and_grad(np.float32(1.0), np.float32(0.5), reduction="none")
    assert isinstance(value, np.float32) and isinstance(grad, np.float32)
    assert isinstance(XENT(np.array([1.0, 2.0]), np.array(1), reduction="none"), np.float64)
    np.testing.assert_allclose(float(value), np.log1p(np.exp(-1.0)) + 0.5, rtol=1e-6)


def test_empty_batch_mean_is_nan(backend):
    for labels in (np.zeros(0, np.int64), np.zeros((0, 3))):
        assert np.isnan(XENT(np.zeros((0, 3)), labels))  # ZeroDivisionError before
        value, grad = XENT.value_and_grad(np.zeros((0, 3), np.float32), labels)
        assert np.isnan(value) and grad.shape == (0, 3)
    assert XENT(np.zeros((0, 3)), np.zeros(0, np.int64), reduction="sum") == 0.0


@pytest.mark.parametrize("soft", [False, True], ids=["indices", "probabilities"])
def test_softmax_cross_entropy_per_row_within_4_ulp_of_mpmath(backend, dtype, soft):
    # each row's loss against mpmath, with and without the gradient (float32 rows with
    # a gradient take another path); a refactor once put float64 losses 439 ULP off,
    # well within the rtol of the formula test above
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.prec = 120
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((64, 10)) * 5).astype(dtype)
    x[0, 0] = 200.0
    labels = (rng.dirichlet(np.ones(10), 64).astype(dtype) if soft else rng.integers(0, 10, 64))
    exact = []
    for row, label in zip(x.tolist(), labels):
        lse = mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(v)) for v in row))
        if soft:
            exact.append(mpmath.fsum(mpmath.mpf(float(p)) * (lse - v) for p, v in zip(label, row)))
        else:
            exact.append(lse - row[label])
    exact = np.array([float(v) for v in exact])
    spacing = np.spacing(np.abs(exact).astype(dtype)).astype(np.float64)
    for losses in (XENT(x, labels, reduction="none"), XENT.value_and_grad(x, labels, reduction="none")[0]):
        errors = np.abs(losses.astype(np.float64) - exact) / spacing
        assert errors.max() <= 4, (errors.max(), int(errors.argmax()))


def test_softmax_cross_entropy_along_lanes_within_4_ulp_of_mpmath(backend, dtype):
    """Along an axis with LANES_REDUCTION_MIN or more lanes after it (PyTorch's (N, C, d)
    layout) the logits are read where they lie: each lane's loss against mpmath, its
    gradient against the rows' path (the axis moved last)."""
    from fastact import _config

    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.prec = 120
    rng = np.random.default_rng(5)
    lanes = _config.LANES_REDUCTION_MIN
    x = (rng.standard_normal((3, 10, 2, lanes)) * 5).astype(dtype)
    x[0, 0, 0, 0] = 200.0
    labels = rng.integers(0, 10, (3, 2, lanes))
    labels[0, 0, 0] = 0  # the dominant class: a loss of e^-193
    moved = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    # log1p(sum of exp(v - v_label) over the other classes): lse - v_label without the
    # cancellation (the loss is e^-193 at x = 200)
    exact = np.array([float(mpmath.log1p(mpmath.fsum(mpmath.exp(mpmath.mpf(float(v)) - float(row[label]))
                                                     for k, v in enumerate(row) if k != label)))
                      for row, label in zip(moved.reshape(-1, 10), labels.reshape(-1))]).reshape(labels.shape)
    spacing = np.spacing(np.abs(exact).astype(dtype)).astype(np.float64)
    loss = XENT.value_and_grad(x, labels, axis=1, reduction="none")[0]
    for losses in (XENT(x, labels, axis=1, reduction="none"), loss):
        assert losses.shape == labels.shape and losses.dtype == dtype
        errors = np.abs(losses.astype(np.float64) - exact) / spacing
        if backend == "numpy":  # the NumPy fallback's textbook lse - v loses a dominant class's tiny loss
            errors[0, 0, 0] = 0
        assert errors.max() <= 4, (errors.max(), int(errors.argmax()))
    tol = {"rtol": 4 * float(np.finfo(dtype).eps), "atol": float(np.finfo(dtype).tiny)}
    for reduction in ("mean", "sum"):
        value, rows_grad = XENT.value_and_grad(moved, labels, reduction=reduction)
        lanes_value, lanes_grad = XENT.value_and_grad(x, labels, axis=1, reduction=reduction)
        np.testing.assert_allclose(lanes_value, value, rtol=tol["rtol"])
        np.testing.assert_allclose(lanes_grad, np.moveaxis(rows_grad, -1, 1), **tol)
    ignored = labels.copy()
    ignored[0, 0, :5] = -100  # ignored rows take the rows' path, with its rules for the mean
    np.testing.assert_allclose(XENT(x, ignored, axis=1), XENT(moved, ignored), rtol=tol["rtol"])


def test_softmax_cross_entropy_lanes_kernels_agree():
    from fastact import _kernels

    rng = np.random.default_rng(6)
    x = (rng.standard_normal((5, 30, 3000)) * 4).astype(np.float32)
    labels = rng.integers(0, 30, (5, 3000))
    runs = []
    for parallel in (False, True):
        grad, losses = np.empty_like(x), np.empty((5, 3000))
        _kernels.loss_kernel("xent_index_lanes", parallel)(x, labels, True, grad, 0.5, losses)
        runs.append((grad, losses))
    for serial, parallel in zip(*runs):
        np.testing.assert_array_equal(serial, parallel)


@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.1}, {"weight": "w"}], ids=["plain", "smoothing", "weight"])
def test_parallel_loss_kernels_write_every_row(dtype, options):
    # a batch large enough for the parallel kernels: their losses equal the serial
    # kernels' (writes to an array Numba did not know was an argument were once
    # removed as dead code, and the loss was the sum of uninitialised memory)
    from fastact import _threads

    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 500)).astype(dtype)
    labels = rng.integers(0, 500, 1000)
    kwargs = {k: (rng.uniform(0.5, 2, 500) if v == "w" else v) for k, v in options.items()}
    assert _threads.rows_go_parallel(x.size, x.shape[0])
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-15}
    loss, grad = fastact.softmax_cross_entropy.value_and_grad(x, labels, reduction="none", **kwargs)
    with fastact.use_backend("numpy"):
        want, want_grad = fastact.softmax_cross_entropy.value_and_grad(x, labels, reduction="none", **kwargs)
    np.testing.assert_allclose(loss, want, **tol)
    np.testing.assert_allclose(grad, want_grad, **tol)
    t = rng.uniform(0, 1, x.shape).astype(dtype)
    np.testing.assert_allclose(fastact.binary_cross_entropy_with_logits(x, t, reduction="none"),
                               _bce_reference(x, t, "none"), **tol)


@pytest.mark.parametrize("n", [10, 96, 97])
def test_cross_entropy_rows_and_blocks_within_4_ulp_of_mpmath(dtype, n):
    """The kernel's two forms, short rows in blocks (block_xent_index) and row by row
    (row_xent_index), each forced on the same batch: their losses within 4 ULP of
    mpmath's with and without the gradient (a dominant label's tiny loss included),
    their gradients within a few ULP of each other, serial and parallel the same bits,
    and a row with NaN or inf as the rows' path gives it."""
    from fastact import _kernels

    from .conftest import assert_ulp_close

    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.prec = 120
    rng = np.random.default_rng(7)
    rows = 300  # more than one block of ROW_BLOCK rows
    x = (rng.standard_normal((rows, n)) * 5).astype(dtype)
    labels = rng.integers(0, n, rows)
    x[::9, 0], labels[::9] = 60.0, 0  # the label dominates: losses of e^-40 and below
    x[5, 3] = 200.0  # one entry dominates another class: a loss near 200
    exact = np.array([float(mpmath.log1p(mpmath.fsum(mpmath.exp(mpmath.mpf(float(v)) - float(row[label]))
                                                     for k, v in enumerate(row) if k != label)))
                      if row[label] == max(row) else
                      float(mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(float(v))) for v in row))
                            - mpmath.mpf(float(row[label])))
                      for row, label in zip(x, labels)])
    results = {}
    for short in (False, True):
        for parallel in (False, True):
            kernel = _kernels.loss_kernel("xent_index", parallel)
            losses, grad, alone = np.empty(rows), np.empty_like(x), np.empty(rows)
            kernel(x, labels, True, grad, 0.5, losses, short)
            kernel(x, labels, False, np.empty((rows, 0), dtype), 0.5, alone, short)
            results[short, parallel] = losses, grad, alone
        for serial, parallel in zip(results[short, False], results[short, True]):
            np.testing.assert_array_equal(serial, parallel)
        losses, grad, alone = results[short, False]
        assert_ulp_close(losses.astype(dtype), exact.astype(dtype), 4)
        assert_ulp_close(alone.astype(dtype), exact.astype(dtype), 4)
    (_, rows_grad, _), (_, blocks_grad, _) = results[False, False], results[True, False]
    np.testing.assert_allclose(blocks_grad, rows_grad, rtol=8 * float(np.finfo(dtype).eps),
                               atol=float(np.finfo(dtype).tiny))
    x[1, 2], x[2, 1], x[3, 0] = np.nan, np.inf, -np.inf
    outs = []
    for short in (False, True):
        losses, grad = np.empty(rows), np.empty_like(x)
        _kernels.loss_kernel("xent_index", False)(x, labels, True, grad, 1.0, losses, short)
        outs.append((losses[1:4], grad[1:4]))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(np.isnan(outs[0][1]), np.isnan(outs[1][1]))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_small_batch_labels_are_checked_in_every_case(backend, reduction):
    # The common small batch checks its labels only where the total is NaN (a label
    # outside [0, n) gives a NaN loss in the kernel, never a read outside its row):
    # labels outside still raise, with NaN logits too; ignore_index rows still get
    # PyTorch's rule; NaN logits with good labels give NaN.
    rng = np.random.default_rng(8)
    x = rng.normal(size=(32, 10)).astype(np.float32)
    for bad in (10, -1, 1 << 40):
        labels = rng.integers(0, 10, 32)
        labels[7] = bad
        with pytest.raises(IndexError, match=f"got {bad}"):
            XENT(x, labels, reduction=reduction)
        with pytest.raises(IndexError, match=f"got {bad}"):
            XENT.value_and_grad(np.where(np.arange(10) == 3, np.nan, x).astype(np.float32), labels,
                                reduction=reduction)
    labels = rng.integers(0, 10, 32)
    ignored = labels.copy()
    ignored[:4] = -100
    loss, grad = XENT.value_and_grad(x, ignored, reduction=reduction)
    want, want_grad = XENT.value_and_grad(x[4:], labels[4:], reduction="sum" if reduction == "sum" else "none")
    want = want if reduction != "none" else np.concatenate([np.zeros(4, np.float32), want])
    np.testing.assert_allclose(loss, want.mean() if reduction == "mean" else want, rtol=1e-6)
    assert not grad[:4].any()
    scale = 1 / 28 if reduction == "mean" else 1.0
    np.testing.assert_allclose(grad[4:], want_grad * (scale if reduction != "sum" else 1.0), rtol=1e-5, atol=1e-8)
    x[5, 2] = np.nan
    loss = XENT(x, labels, reduction=reduction)
    assert np.isnan(loss).any() and (reduction != "none" or np.isnan(loss).sum() == 1)
