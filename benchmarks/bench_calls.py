"""The cost of a call on a small array: argument checks, dispatch and allocation,
with almost no arithmetic.  asv's default timing (many calls per sample) suits
these microsecond calls."""

import numpy as np

import fastact


class SmallCalls:
    """Public calls on 16-element float32 arrays, and on a batch of 32 x 10 (rows and
    losses), on the numba backend."""

    def setup(self):
        fastact.set_backend("numba")
        self.x = np.linspace(-4, 4, 16, dtype=np.float32)
        self.g = np.ones(16, np.float32)
        self.out = np.empty_like(self.x)
        self.y = fastact.softmax(self.x)  # Numba compilation, for every call below
        fastact.sigmoid(self.x)
        fastact.sigmoid(self.x, out=self.out)
        fastact.sigmoid.backward(self.g, x=self.x)
        fastact.softmax.backward(self.g, self.y)
        rng = np.random.default_rng(0)
        self.batch = rng.standard_normal((32, 10)).astype(np.float32)
        self.batch_out = np.empty_like(self.batch)
        self.labels = rng.integers(0, 10, 32)
        fastact.softmax(self.batch, out=self.batch_out)
        fastact.softmax_cross_entropy.value_and_grad(self.batch, self.labels)

    def time_sigmoid(self):
        fastact.sigmoid(self.x)

    def time_sigmoid_out(self):
        fastact.sigmoid(self.x, out=self.out)

    def time_sigmoid_backward(self):
        fastact.sigmoid.backward(self.g, x=self.x)

    def time_softmax(self):
        fastact.softmax(self.x)

    def time_softmax_backward(self):
        fastact.softmax.backward(self.g, self.y)

    def time_tanh_out(self):
        fastact.tanh(self.x, out=self.out)

    def time_softmax_batch_out(self):
        fastact.softmax(self.batch, out=self.batch_out)

    def time_softmax_cross_entropy_batch(self):
        fastact.softmax_cross_entropy(self.batch, self.labels)

    def time_softmax_cross_entropy_value_and_grad_batch(self):
        fastact.softmax_cross_entropy.value_and_grad(self.batch, self.labels)
