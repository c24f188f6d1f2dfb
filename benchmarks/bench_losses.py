"""The fused losses: loss and gradient in one pass."""

import numpy as np

import fastact

from .common import BACKENDS, DTYPES, QUICK, LargeArrays, prepare, random_array

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
