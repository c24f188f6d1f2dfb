"""The fused losses: loss and gradient in one pass."""

import numpy as np

import fastact

from .common import BACKENDS, DTYPES, QUICK, LargeArrays, paired_ratio, prepare, random_array

XENT_SHAPE = (64, 128) if QUICK else (65536, 128)
BCE_SIZE = 10_000 if QUICK else 10_000_000


class Losses(LargeArrays):
    params = [DTYPES, BACKENDS]
    param_names = ["dtype", "backend"]

    def setup(self, dtype, backend):
        prepare(backend, 1 if backend == "numpy" else 2)
        self.logits = random_array(XENT_SHAPE, dtype)
        self.labels = np.random.default_rng(1).integers(0, XENT_SHAPE[1], XENT_SHAPE[0])
        self.x = random_array(BCE_SIZE, dtype)
        self.targets = np.random.default_rng(2).uniform(size=BCE_SIZE).astype(dtype)
        # Numba compilation
        fastact.softmax_cross_entropy.value_and_grad(self.logits, self.labels)
        fastact.binary_cross_entropy_with_logits.value_and_grad(self.x, self.targets)

    def teardown(self, *params):
        fastact.set_backend("numba")

    def time_softmax_cross_entropy_value_and_grad(self, *params):
        fastact.softmax_cross_entropy.value_and_grad(self.logits, self.labels)

    def time_binary_cross_entropy_with_logits_value_and_grad(self, *params):
        fastact.binary_cross_entropy_with_logits.value_and_grad(self.x, self.targets)

    def peakmem_binary_cross_entropy_with_logits_value_and_grad(self, *params):
        # the gradient (one array the size of x) is the only large allocation
        fastact.binary_cross_entropy_with_logits.value_and_grad(self.x, self.targets)


class LossOptions(LargeArrays):
    """softmax_cross_entropy with PyTorch's options (class weights, ignored rows, label
    smoothing) and a z-loss, value and gradient in one pass (issue 20, item 6: at most
    half PyTorch's time for cross_entropy's forward and autograd backward on 65536 x 128
    float32, 2 threads; the track_ ratios are measured in one process)."""

    params = [DTYPES]
    param_names = ["dtype"]

    def setup(self, dtype):
        prepare("numba", 2)
        rng = np.random.default_rng(1)
        self.logits = random_array(XENT_SHAPE, dtype)
        self.labels = rng.integers(0, XENT_SHAPE[1], XENT_SHAPE[0])
        self.labels[::10] = -100
        self.weight = rng.uniform(0.5, 2.0, XENT_SHAPE[1])
        self.options = {"weight": self.weight, "label_smoothing": 0.1, "z_loss": 1e-4}
        self.value_and_grad()  # Numba compilation
        fastact.softmax_cross_entropy.value_and_grad(self.logits, self.labels)

    def value_and_grad(self):
        return fastact.softmax_cross_entropy.value_and_grad(self.logits, self.labels, **self.options)

    def time_value_and_grad(self, *params):
        self.value_and_grad()

    def track_options_over_plain(self, *params):
        return paired_ratio(self.value_and_grad,
                            lambda: fastact.softmax_cross_entropy.value_and_grad(self.logits, self.labels))

    track_options_over_plain.unit = "ratio"

    def track_over_torch(self, *params):
        """Over PyTorch's cross_entropy (weight, ignore_index, label_smoothing; the z-loss
        added as logsumexp squared) with its autograd backward, on the same threads."""
        try:
            import torch
        except ImportError:
            return float("nan")
        torch.set_num_threads(2)
        tx = torch.from_numpy(self.logits)
        target, weight = torch.from_numpy(self.labels), torch.from_numpy(self.weight.astype(self.logits.dtype))

        def torch_loss():
            leaf = tx.detach().requires_grad_(True)
            loss = torch.nn.functional.cross_entropy(leaf, target, weight=weight, label_smoothing=0.1)
            kept = target != -100
            z = torch.where(kept, torch.logsumexp(leaf, 1) ** 2, 0.0).sum() / weight[torch.where(kept, target, 0)][kept].sum()
            return torch.autograd.grad(loss + 1e-4 * z, leaf)

        return paired_ratio(self.value_and_grad, torch_loss)

    track_over_torch.unit = "ratio"
