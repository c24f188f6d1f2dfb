"""softmax_cross_entropy's options (issue 20, item 6): weight, ignore_index, label_smoothing
(PyTorch's rules) and z_loss (PaLM's z lse^2), in the same pass over the logits."""

import math

import mpmath
import numpy as np
import pytest

import fastact

xent = fastact.softmax_cross_entropy
REDUCTIONS = ("mean", "sum", "none")


def _data(dtype, rows=64, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, classes)) * 3).astype(dtype)
    labels = rng.integers(0, classes, rows)
    labels[::7] = -100
    weight = rng.uniform(0.2, 2.0, classes)
    return x, labels, weight


OPTIONS = [
    {"weight": "w"}, {"label_smoothing": 0.1}, {"weight": "w", "label_smoothing": 0.3}, {"z_loss": 1e-2},
    {"weight": "w", "label_smoothing": 0.2, "z_loss": 1e-3}, {"label_smoothing": 1.0}, {}, {"softcap": 2.0},
    {"softcap": 4.0, "weight": "w", "label_smoothing": 0.1, "z_loss": 1e-3},
]


def _with_weight(kw, weight):
    return {k: (weight if v == "w" else v) for k, v in kw.items()}


def _torch_loss(torch, x, labels, reduction, kw, class_axis=1):
    """PyTorch's cross_entropy with the same options, the z-loss added as PaLM writes it
    (per row, over the rows that are not ignored, the mean's divisor being PyTorch's), on
    logits capped as Gemma 2 caps them."""
    F = torch.nn.functional
    tkw = {k: (torch.from_numpy(v) if k == "weight" else v) for k, v in kw.items() if k not in ("z_loss", "softcap")}
    tx = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
    capped = kw["softcap"] * torch.tanh(tx / kw["softcap"]) if "softcap" in kw else tx
    target = torch.from_numpy(labels)
    loss = F.cross_entropy(capped, target, reduction=reduction, **tkw)
    if kw.get("z_loss"):
        kept = target != -100
        lse = torch.logsumexp(capped, class_axis)
        z = torch.where(kept, kw["z_loss"] * lse**2, torch.zeros((), dtype=torch.float64))
        if reduction == "mean":
            weights = (torch.from_numpy(kw["weight"])[torch.where(kept, target, 0)] * kept
                       if "weight" in kw else kept.double())
            z = z.sum() / weights.sum()
        elif reduction == "sum":
            z = z.sum()
        loss = loss + z
    loss.sum().backward()
    return loss.detach().numpy(), tx.grad.numpy()


@pytest.mark.parametrize("kw", OPTIONS, ids=lambda kw: "+".join(kw) or "ignored-rows")
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_class_indices_equal_pytorch(kw, reduction, dtype, backend):
    torch = pytest.importorskip("torch")
    x, labels, weight = _data(dtype)
    kw = _with_weight(kw, weight)
    loss, grad = xent.value_and_grad(x, labels, reduction=reduction, **kw)
    expected_loss, expected_grad = _torch_loss(torch, x, labels, reduction, kw)
    tol = 2e-6 if dtype == np.float32 else 1e-13
    assert np.asarray(loss).dtype == dtype and grad.dtype == dtype
    np.testing.assert_allclose(np.asarray(loss, np.float64), expected_loss, rtol=tol, atol=tol)
    np.testing.assert_allclose(grad, expected_grad, rtol=tol, atol=tol)
    np.testing.assert_array_equal(xent(x, labels, reduction=reduction, **kw), loss)
    assert not grad[labels == -100].any()  # ignored rows: a zero gradient


@pytest.mark.parametrize("kw", [{"weight": "w"}, {"label_smoothing": 0.2}, {"weight": "w", "label_smoothing": 0.2},
                                {"z_loss": 1e-2}, {"softcap": 1.5}], ids=lambda kw: "+".join(kw))
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_class_probabilities_equal_pytorch(kw, reduction, dtype, backend):
    """Probabilities: the weights and smoothing apply to the targets; the mean is over rows."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((32, 6)) * 2).astype(dtype)
    q = rng.dirichlet(np.ones(6), 32)
    kw = _with_weight(kw, rng.uniform(0.1, 2.0, 6))
    loss, grad = xent.value_and_grad(x, q, reduction=reduction, **kw)
    F = torch.nn.functional
    tx = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
    capped = kw["softcap"] * torch.tanh(tx / kw["softcap"]) if "softcap" in kw else tx
    tkw = {k: (torch.from_numpy(v) if k == "weight" else v) for k, v in kw.items() if k not in ("z_loss", "softcap")}
    expected = F.cross_entropy(capped, torch.from_numpy(q), reduction=reduction, **tkw)
    if "z_loss" in kw:
        z = kw["z_loss"] * torch.logsumexp(capped, 1) ** 2
        expected = expected + {"mean": z.mean(), "sum": z.sum(), "none": z}[reduction]
    expected.sum().backward()
    tol = 2e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(np.asarray(loss, np.float64), expected.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(grad, tx.grad.numpy(), rtol=tol, atol=tol)


def test_class_axis_and_spatial_logits_equal_pytorch(backend):
    """(N, C, d) logits with the classes along axis 1, as PyTorch takes them."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 5, 7))
    labels = rng.integers(0, 5, (8, 7))
    labels[0, :3] = -100
    kw = {"weight": rng.uniform(0.5, 1.5, 5), "label_smoothing": 0.1}
    loss, grad = xent.value_and_grad(x, labels, axis=1, **kw)
    expected_loss, expected_grad = _torch_loss(torch, x, labels, "mean", kw)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-13)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12, atol=1e-15)


def test_rows_against_mpmath(dtype, backend):
    """Each row's loss (reduction none) with every option, against the formula in mpmath."""
    x, labels, weight = _data(dtype, rows=12, classes=7, seed=3)
    x[1] *= 40  # a dominant class, and far-apart logits
    eps, z = 0.15, 3e-3
    losses = xent(x, labels, reduction="none", weight=weight, label_smoothing=eps, z_loss=z)
    assert losses.dtype == dtype
    with mpmath.workprec(200):
        for r in range(x.shape[0]):
            if labels[r] == -100:
                assert losses[r] == 0
                continue
            row = [mpmath.mpf(float(v)) for v in x[r]]
            lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in row))
            y = labels[r]
            expected = ((1 - mpmath.mpf(eps)) * weight[y] * (lse - row[y])
                        + mpmath.mpf(eps) / len(row) * mpmath.fsum(w * (lse - v) for w, v in zip(weight, row))
                        + z * lse**2)
            assert abs(float(losses[r]) - expected) <= 4 * np.finfo(dtype).eps * abs(expected), r


def test_pytorch_edge_cases(backend):
    x, _, weight = _data(np.float64, rows=4, classes=6)
    # every row ignored: the mean is NaN and the gradient 0
    loss, grad = xent.value_and_grad(x, np.full(4, -100))
    assert math.isnan(loss) and not grad.any()
    assert xent(x, np.full(4, -100), reduction="sum") == 0
    # no weight on the labels left: NaN (0 / 0), NaN gradients but for the ignored row
    w0 = np.array([0.0, 1, 1, 1, 1, 1])
    loss, grad = xent.value_and_grad(x, np.array([0, 0, 1, 0]), weight=w0, ignore_index=1)
    assert math.isnan(loss)
    assert np.isnan(grad[[0, 1, 3]]).all() and not grad[2].any()
    # ignore_index may be a class: those rows are ignored
    labels = np.array([0, 1, 2, 3])
    loss = xent(x, labels, ignore_index=2)
    assert loss == pytest.approx(xent(x[[0, 1, 3]], labels[[0, 1, 3]]), rel=1e-15)
    # an empty batch: NaN, as in PyTorch
    assert math.isnan(xent(x[:0], labels[:0], weight=weight))
    # other negative labels are still refused, naming ignore_index
    with pytest.raises(IndexError, match="ignore_index"):
        xent(x, np.array([0, -5, 1, 2]))


def test_defaults_give_the_plain_loss(dtype, backend):
    """Options at their defaults take the plain kernels; ignored rows alone give the
    plain losses of the rows kept."""
    x, labels, _ = _data(dtype)
    kept = labels != -100
    plain = xent.value_and_grad(x[kept], labels[kept], reduction="sum")
    loss, grad = xent.value_and_grad(x, labels, reduction="sum", weight=None, label_smoothing=0.0, z_loss=0.0)
    assert loss == pytest.approx(plain[0], rel=4 * float(np.finfo(dtype).eps))
    np.testing.assert_allclose(grad[kept], plain[1], rtol=4 * np.finfo(dtype).eps, atol=np.finfo(dtype).tiny)
    unit = xent.value_and_grad(x[kept], labels[kept], reduction="sum", weight=np.ones(x.shape[1]))
    assert unit[0] == pytest.approx(plain[0], rel=4 * float(np.finfo(dtype).eps))


def test_same_losses_on_any_thread_count():
    import numba

    x, labels, weight = _data(np.float32, rows=20000, classes=64, seed=5)
    first = xent.value_and_grad(x, labels, weight=weight, label_smoothing=0.1, z_loss=1e-4)
    saved = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        again = xent.value_and_grad(x, labels, weight=weight, label_smoothing=0.1, z_loss=1e-4)
    finally:
        numba.set_num_threads(saved)
    assert first[0] == again[0]
    np.testing.assert_array_equal(first[1], again[1])


def test_refused_options():
    x = np.zeros((3, 4))
    labels = np.array([0, 1, 2])
    with pytest.raises(ValueError, match="label_smoothing"):
        xent(x, labels, label_smoothing=1.5)
    with pytest.raises(ValueError, match="label_smoothing"):
        xent(x, labels, label_smoothing=-0.1)
    with pytest.raises(TypeError, match="label_smoothing"):
        xent(x, labels, label_smoothing="0.1")
    with pytest.raises(TypeError, match="ignore_index"):
        xent(x, labels, ignore_index=1.5)
    with pytest.raises(TypeError, match="ignore_index"):
        xent(x, labels, ignore_index=True)
    with pytest.raises(ValueError, match="weight must have one value per class"):
        xent(x, labels, weight=np.ones(3))
    with pytest.raises(ValueError, match="weight must be 1-D"):
        xent(x, labels, weight=np.ones((4, 1)))
    with pytest.raises(ValueError, match="z_loss"):
        xent(x, labels, z_loss=-1.0)
    with pytest.raises(ValueError, match="z_loss"):
        xent(x, labels, z_loss=math.nan)
    with pytest.raises(ValueError, match="softcap"):
        xent(x, labels, softcap=0.0)
    with pytest.raises(ValueError, match="softcap"):
        xent(x, labels, softcap=math.inf)
    with pytest.raises(TypeError, match="softcap"):
        xent(x, labels, softcap="30")
    with pytest.raises(TypeError, match="unexpected keyword argument 'pos_weight'"):
        xent(x, labels, pos_weight=2.0)
    weight = np.ones(4)
    xent.value_and_grad(x, labels, weight=weight)
    np.testing.assert_array_equal(weight, np.ones(4))  # nothing the caller passed is changed


# --- binary cross-entropy: weight and pos_weight ------------------------------------------------

BCE = fastact.binary_cross_entropy_with_logits


@pytest.mark.parametrize("shapes", [((50, 6), None), (None, (6,)), ((50, 1), (6,)), ((), None), (None, (1, 6)),
                                    ((50, 6), (50, 6))], ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_weights_equal_pytorch(shapes, reduction, dtype, backend):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    x = (rng.standard_normal((50, 6)) * 4).astype(dtype)
    t = rng.uniform(0, 1, (50, 6)).astype(dtype)
    t[::3] = np.round(t[::3])
    kw = {name: rng.uniform(0.1, 3.0, shape) for name, shape in zip(("weight", "pos_weight"), shapes)
          if shape is not None}
    loss, grad = BCE.value_and_grad(x, t, reduction=reduction, **kw)
    assert np.asarray(loss).dtype == dtype and grad.dtype == dtype
    tx = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        tx, torch.from_numpy(t.astype(np.float64)), reduction=reduction,
        **{k: torch.from_numpy(np.asarray(v, np.float64)) for k, v in kw.items()})
    expected.sum().backward()
    tol = 4 * float(np.finfo(dtype).eps)
    # PyTorch forms (1 - t) x + c (max(-x, 0) + log1p(e^-|x|)), which cancels for x < 0 (to
    # eps |x| c); fastact's terms are of one sign (test_bce_weighted_rows_against_mpmath)
    scale = np.abs(expected.detach().numpy()).max() if reduction == "sum" else 1.0
    np.testing.assert_allclose(np.asarray(loss, np.float64), expected.detach().numpy(), rtol=tol,
                               atol=tol * 50 * scale)
    np.testing.assert_allclose(grad, tx.grad.numpy(), rtol=tol, atol=tol)
    np.testing.assert_array_equal(BCE(x, t, reduction=reduction, **kw), loss)


@pytest.mark.parametrize("weight_shape", [None, (3001, 1), (7,), (3001, 7), ()], ids=str)
def test_bce_kernel_blocks_and_weight_runs(weight_shape, dtype):
    """Several of the kernel's blocks (LOSS_ELEMENT_BLOCK), weights whose runs cross them
    (rows of 7, one value per row or per column, or per element, or one): the kernels
    equal the NumPy fallback, and the parallel kernel gives the serial kernel's bits."""
    from fastact import _config, _kernels, _losses

    rng = np.random.default_rng(3)
    x = (rng.standard_normal((3001, 7)) * 4).astype(dtype)
    t = rng.uniform(0, 1, x.shape).astype(dtype)
    assert x.size > 2 * _config.LOSS_ELEMENT_BLOCK and _config.LOSS_ELEMENT_BLOCK % 7
    kw = {"pos_weight": rng.uniform(0.5, 2.0, 7)}
    if weight_shape is not None:
        kw["weight"] = rng.uniform(0.5, 2.0, weight_shape)
    tol = {"rtol": 8 * float(np.finfo(dtype).eps), "atol": 8 * float(np.finfo(dtype).eps)}
    for reduction in ("sum", "none"):
        loss, grad = BCE.value_and_grad(x, t, reduction=reduction, **kw)
        with fastact.use_backend("numpy"):
            expected, expected_grad = BCE.value_and_grad(x, t, reduction=reduction, **kw)
        np.testing.assert_allclose(loss, expected, rtol=tol["rtol"])
        np.testing.assert_allclose(grad, expected_grad, **tol)
    extra = [part for name in ("weight", "pos_weight")
             for part in _losses._along_block(kw.get(name, np.ones(1)), x.shape, x.dtype, name)]
    runs = []
    for parallel in (False, True):
        grad, losses = np.empty(x.size, dtype), np.empty(x.size, dtype)
        total = _kernels.loss_kernel("bce_weighted", parallel)(x.reshape(-1), t.reshape(-1), True, grad, 0.5, losses,
                                                               True, *extra)
        runs.append((total, grad, losses))
    assert runs[0][0] == runs[1][0]
    for serial, parallel in zip(runs[0][1:], runs[1][1:]):
        np.testing.assert_array_equal(serial, parallel)
    assert runs[0][0] == pytest.approx(float(np.sum(runs[0][2], dtype=np.float64)), rel=1e-12)


def test_bce_weights_limits_and_defaults(backend):
    x = np.array([np.inf, -np.inf, np.inf, -np.inf, 30.0, -30.0])
    t = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.0])
    loss = BCE(x, t, reduction="none", pos_weight=np.array(3.0))
    # the limits: (1 - t) x for x = +inf, -x t pos_weight for x = -inf
    np.testing.assert_array_equal(loss[:4], [0.0, 0.0, np.inf, np.inf])
    np.testing.assert_allclose(loss[4:], [3 * np.log1p(np.exp(-30.0)), np.log1p(np.exp(-30.0))], rtol=1e-14)
    rng = np.random.default_rng(7)
    x, t = rng.standard_normal(1000), rng.uniform(size=1000)
    plain = BCE.value_and_grad(x, t)
    unit = BCE.value_and_grad(x, t, weight=1.0, pos_weight=np.ones(1))
    assert unit[0] == pytest.approx(plain[0], rel=1e-15)
    np.testing.assert_allclose(unit[1], plain[1], rtol=1e-12, atol=1e-18)  # NumPy's plain sigmoid(x) - t cancels
    with pytest.raises(ValueError, match="pos_weight of shape \\(3,\\) does not broadcast"):
        BCE(x.reshape(100, 10), t.reshape(100, 10), pos_weight=np.ones(3))
    with pytest.raises(TypeError, match="weight"):
        BCE(x, t, weight="heavy")


def test_bce_weighted_rows_against_mpmath(dtype, backend):
    rng = np.random.default_rng(8)
    x = (rng.standard_normal(400) * 6).astype(dtype)
    t = rng.uniform(0, 1, 400).astype(dtype)
    t[::4] = np.round(t[::4])
    w, pw = rng.uniform(0.1, 3.0, 400), rng.uniform(0.1, 3.0, 400)
    losses, grad = BCE.value_and_grad(x, t, reduction="none", weight=w, pos_weight=pw)
    worst = 0.0
    with mpmath.workprec(200):
        for i in range(x.size):
            X, T, W, P = (mpmath.mpf(float(v)) for v in (x[i], t[i], w.astype(dtype)[i], pw.astype(dtype)[i]))
            c = 1 + (P - 1) * T
            softplus = mpmath.log1p(mpmath.exp(-X)) if X > 0 else -X + mpmath.log1p(mpmath.exp(X))
            loss = W * ((1 - T) * X + c * softplus)
            sig = c / (1 + mpmath.exp(X))
            d = W * ((1 - T) - sig)
            # the loss's terms have one sign; the gradient is a difference (it crosses 0
            # where sigmoid(x) meets t, as the plain loss's), measured against its terms
            for got, ref, size in ((losses[i], loss, abs(loss)), (grad[i], d, W * (abs(1 - T) + sig))):
                worst = max(worst, float(abs(mpmath.mpf(float(got)) - ref) / (size * float(np.finfo(dtype).eps))))
    assert worst <= 4, worst  # measured 1.1-1.4


def test_softcap_tails(backend):
    """Far beyond the cap the capped logits saturate: the loss is that of +-cap logits, and
    the gradient is chained through tanh' (exact in the tails, not 1 - tanh^2 = 0)."""
    x = np.array([[60.0, -60.0, 0.0], [400.0, 10.0, -400.0]])
    labels = np.array([1, 0])
    loss, grad = xent.value_and_grad(x, labels, softcap=5.0, reduction="none")
    capped = 5.0 * np.tanh(x / 5.0)
    np.testing.assert_allclose(loss, xent(capped, labels, reduction="none"), rtol=1e-15)
    _, plain_grad = xent.value_and_grad(capped, labels, reduction="none")
    sech2 = 1 / np.cosh(x / 5.0) ** 2
    np.testing.assert_allclose(grad, plain_grad * sech2, rtol=1e-13)
    assert grad[0, 0] != 0 and grad[1, 2] != 0  # tiny, not flushed to 0
