"""Elementwise ops: forward over sizes and threads; the fused entry points at one size."""

import numpy as np

import fastact

from .common import (BACKENDS, DTYPES, FUSED_SIZE, GATE, ROW_SHAPES, SIZES, THREADS, LargeArrays, faster_copy,
                     paired_ratio, prepare, random_array)

# The full size / backend / thread grid for a few representative ops (cheap, memory
# bound: relu, sigmoid; transcendental: tanh, gelu); every op at one size in
# Catalogue.  The gate guards relu and sigmoid.
OPS = ["relu", "sigmoid"] if GATE else ["gelu", "relu", "sigmoid", "tanh"]
CATALOGUE = sorted(fastact.ACTIVATIONS)


class Forward(LargeArrays):
    params = [OPS, DTYPES, SIZES, BACKENDS, THREADS]
    param_names = ["op", "dtype", "n", "backend", "threads"]

    def setup(self, op, dtype, n, backend, threads):
        prepare(backend, threads, op)
        self.op = fastact.ACTIVATIONS[op]
        self.x = random_array(n, dtype)
        self.out = np.empty_like(self.x)
        self.op(self.x, out=self.out)  # Numba compilation (or cache load), page faults

    def teardown(self, *params):
        fastact.set_backend("numba")

    def time_forward(self, *params):
        self.op(self.x, out=self.out)


class Roofline(LargeArrays):
    """The op's time over a copy's of the same bytes (1.0 is the copy roofline), measured in
    the same process: numba backend, 2 threads (the NumPy backend's figures add nothing).
    asv flags a rise as a regression, so every tracked figure here is one where lower is
    better (a bandwidth or a fraction of the roofline would flag the improvements)."""

    params = [OPS, DTYPES, SIZES]
    param_names = ["op", "dtype", "n"]

    def setup(self, op, dtype, n):
        prepare("numba", 2)
        self.op = fastact.ACTIVATIONS[op]
        self.x = random_array(n, dtype)
        self.out = np.empty_like(self.x)
        self.op(self.x, out=self.out)

    def track_time_over_copy(self, *params):
        return paired_ratio(lambda: self.op(self.x, out=self.out), faster_copy(self.x, self.out))

    track_time_over_copy.unit = "ratio"


class Catalogue(LargeArrays):
    """Every op, forward and fused backward, at 1e7 elements, numba backend, 2 threads."""

    params = [CATALOGUE, DTYPES]
    param_names = ["op", "dtype"]

    def setup(self, op, dtype):
        prepare("numba", 2)
        self.op = fastact.ACTIVATIONS[op]
        self.x = random_array(FUSED_SIZE, dtype)
        self.g = random_array(FUSED_SIZE, dtype, seed=1, scale=1.0)
        self.out = np.empty_like(self.x)
        self.op(self.x, out=self.out)  # Numba compilation
        self.op.backward(self.g, x=self.x, out=self.out)

    def time_forward(self, *params):
        self.op(self.x, out=self.out)

    def time_backward_from_x(self, *params):
        self.op.backward(self.g, x=self.x, out=self.out)


class Fused(LargeArrays):
    """The fused entry points at 1e7 elements: numba on 2 threads (Forward has the
    thread scaling) and the NumPy backend."""

    params = [OPS, DTYPES, BACKENDS]
    param_names = ["op", "dtype", "backend"]

    def setup(self, op, dtype, backend):
        prepare(backend, 1 if backend == "numpy" else max(THREADS), op)
        self.op = fastact.ACTIVATIONS[op]
        self.x = random_array(FUSED_SIZE, dtype)
        self.g = random_array(FUSED_SIZE, dtype, seed=1, scale=1.0)
        self.y = self.op(self.x)
        self.out = np.empty_like(self.x)
        self.pair = (np.empty_like(self.x), np.empty_like(self.x))
        # Numba compilation of every kernel timed below
        self.op.grad(self.x, out=self.out)
        self.op.value_and_grad(self.x, out=self.pair)
        self.op.backward(self.g, x=self.x, out=self.out)
        self.time_forward_then_backward()

    def teardown(self, *params):
        fastact.set_backend("numba")

    def time_grad(self, *params):
        self.op.grad(self.x, out=self.out)

    def time_value_and_grad(self, *params):
        self.op.value_and_grad(self.x, out=self.pair)

    def time_backward_from_x(self, *params):
        self.op.backward(self.g, x=self.x, out=self.out)

    def time_forward_then_backward(self, *params):
        # the unfused alternative to time_backward_from_x: f' from y where the op has it
        if self.op.supports_y():
            self.op(self.x, out=self.y)
            self.op.backward(self.g, y=self.y, out=self.out)
        else:
            self.op.grad(self.x, out=self.y)
            np.multiply(self.g, self.y, out=self.out)


class Allocating(LargeArrays):
    """Calls without out=: a fused op allocates its outputs and nothing the size of its input besides."""

    params = [OPS, ["float32"]]
    param_names = ["op", "dtype"]

    def setup(self, op, dtype):
        fastact.set_backend("numba")
        self.op = fastact.ACTIVATIONS[op]
        self.x = random_array(FUSED_SIZE, dtype)
        self.g = random_array(FUSED_SIZE, dtype, seed=1, scale=1.0)
        self.op.backward(self.g, x=self.x)
        self.op(self.x)

    def peakmem_forward(self, *params):
        self.op(self.x)

    def peakmem_backward_from_x(self, *params):
        self.op.backward(self.g, x=self.x)

    def time_forward(self, *params):
        self.op(self.x)


class _OnRows(LargeArrays):
    """An op on a row shape ("4096x4096"): x, a gradient g and out, on 2 threads."""

    def setup_rows(self, op, dtype, shape):
        prepare("numba", 2)
        rows, cols = (int(n) for n in shape.split("x"))
        self.op = fastact.ACTIVATIONS[op]
        self.x = random_array((rows, cols), dtype)
        self.g = random_array((rows, cols), dtype, seed=1, scale=1.0)
        self.out = np.empty_like(self.x)
        return cols


class Bias(_OnRows):
    """op(x, bias=b) and op.backward(g, x=x, bias=b) (which also sums dbias), b one per column,
    on the row shapes (issue 20: the forward <= 1.1x the plain op and >= 1.5x faster than
    x + b then the op; the track_ ratios are measured in one process, 2 threads)."""

    params = [["relu", "sigmoid"], DTYPES, [f"{r}x{c}" for r, c in ROW_SHAPES]]
    param_names = ["op", "dtype", "shape"]

    def setup(self, op, dtype, shape):
        cols = self.setup_rows(op, dtype, shape)
        self.b = random_array(cols, dtype, seed=2, scale=1.0)
        self.tmp, self.db = np.empty_like(self.x), np.empty_like(self.b)
        self.forward()  # Numba compilation
        self.backward()
        self.op(self.x, out=self.out)
        self.op.backward(self.g, x=self.x, out=self.out)

    def forward(self):
        self.op(self.x, bias=self.b, out=self.out)

    def backward(self):
        self.op.backward(self.g, x=self.x, bias=self.b, out=(self.out, self.db))

    def time_forward(self, *params):
        self.forward()

    def time_backward(self, *params):
        self.backward()

    def track_forward_over_plain(self, *params):
        return paired_ratio(self.forward, lambda: self.op(self.x, out=self.out))

    track_forward_over_plain.unit = "ratio"

    def track_forward_over_add_then_op(self, *params):
        return paired_ratio(self.forward, lambda: self.op(np.add(self.x, self.b, out=self.tmp), out=self.out))

    track_forward_over_add_then_op.unit = "ratio"

    def track_backward_over_plain(self, *params):
        return paired_ratio(self.backward, lambda: self.op.backward(self.g, x=self.x, out=self.out))

    track_backward_over_plain.unit = "ratio"


class ParamGrads(_OnRows):
    """op.backward(g, x=x, param_grads=True): dx and the parameters' gradients in one pass
    (issue 20, item 4), on the row shapes; the track_ ratio is its time over the plain
    backward's, measured in one process, 2 threads."""

    params = [["leaky_relu", "elu"], DTYPES, [f"{r}x{c}" for r, c in ROW_SHAPES]]
    param_names = ["op", "dtype", "shape"]

    def setup(self, op, dtype, shape):
        self.setup_rows(op, dtype, shape)
        self.backward()  # Numba compilation
        self.op.backward(self.g, x=self.x, out=self.out)

    def backward(self):
        self.op.backward(self.g, x=self.x, param_grads=True, out=self.out)

    def time_backward(self, *params):
        self.backward()

    def track_backward_over_plain(self, *params):
        return paired_ratio(self.backward, lambda: self.op.backward(self.g, x=self.x, out=self.out))

    track_backward_over_plain.unit = "ratio"
