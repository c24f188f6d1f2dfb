"""Gated units (glu, swiglu, geglu, reglu) over the last axis: forward and the backward of both
halves, with out=, against the unfused way (the elementwise op, then a multiply), and their peak
memory without out= (the results are the only large allocations)."""

import numpy as np

import fastact
from fastact._gatedops import GATED_OPS

from .common import GATED_SHAPES, LargeArrays, prepare, random_array

OPS = list(GATED_OPS)


class Gated(LargeArrays):
    params = [OPS, ["float32"], [f"{r}x{c}" for r, c in GATED_SHAPES]]
    param_names = ["op", "dtype", "shape"]

    def setup(self, op, dtype, shape):
        prepare("numba", 2)
        rows, cols = (int(v) for v in shape.split("x"))
        self.op = getattr(fastact, op)
        definition = GATED_OPS[op]
        self.x = random_array((rows, cols), dtype)
        self.g = random_array((rows, cols // 2), dtype, seed=1, scale=1.0)
        self.y = np.empty_like(self.g)
        self.dx = np.empty_like(self.x)
        self.tmp = np.empty_like(self.g)
        a, b = self.x[:, :cols // 2], self.x[:, cols // 2:]
        self.u, self.v = definition.activated_first(a, b)
        self.activation = getattr(fastact, definition.activation)
        self.op(self.x, out=self.y)  # Numba compilation
        self.op.backward(self.g, self.x, out=self.dx)
        self.activation(self.u, out=self.tmp)

    def time_forward(self, *params):
        self.op(self.x, out=self.y)

    def time_forward_unfused(self, *params):
        np.multiply(self.activation(self.u, out=self.tmp), self.v, out=self.y)

    def time_backward(self, *params):
        self.op.backward(self.g, self.x, out=self.dx)


class GatedMemory:
    """Peak memory of calls that allocate their results: y (half of x), dx (x's size)."""

    params = [["swiglu"], ["float32"]]
    param_names = ["op", "dtype"]

    def setup(self, op, dtype):
        prepare("numba", 2)
        rows, cols = GATED_SHAPES[0]
        self.op = getattr(fastact, op)
        self.x = random_array((rows, cols), dtype)
        self.g = random_array((rows, cols // 2), dtype, seed=1, scale=1.0)
        self.op.backward(self.g, self.x)
        self.op(self.x)

    def peakmem_forward(self, *params):
        self.op(self.x)

    def peakmem_backward(self, *params):
        self.op.backward(self.g, self.x)
