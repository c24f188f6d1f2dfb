"""softmax and log_softmax over rows, and their backward."""

import numpy as np

import fastact

from .common import BACKENDS, DTYPES, ROW_SHAPES, LargeArrays, faster_copy, paired_ratio, prepare, random_array

OPS = ["softmax", "log_softmax"]


class Rows(LargeArrays):
    params = [OPS, DTYPES, [f"{r}x{c}" for r, c in ROW_SHAPES], BACKENDS]
    param_names = ["op", "dtype", "shape", "backend"]

    def setup(self, op, dtype, shape, backend):
        prepare(backend, 1 if backend == "numpy" else 2)
        rows, cols = (int(v) for v in shape.split("x"))
        self.op = getattr(fastact, op)
        self.x = random_array((rows, cols), dtype)
        self.g = random_array((rows, cols), dtype, seed=1, scale=1.0)
        self.out = np.empty_like(self.x)
        self.y = self.op(self.x)
        self.op(self.x, out=self.out)  # Numba compilation
        self.op.backward(self.g, self.y, out=self.out)

    def teardown(self, *params):
        fastact.set_backend("numba")

    def time_forward(self, *params):
        self.op(self.x, out=self.out)

    def time_backward(self, *params):
        self.op.backward(self.g, self.y, out=self.out)


class RowsRoofline(LargeArrays):
    """The numba row kernels' time over a copy's of the same bytes (2 threads; 1.0 is the
    copy roofline, lower is better, as asv's regressions assume)."""

    params = [OPS, DTYPES, [f"{r}x{c}" for r, c in ROW_SHAPES]]
    param_names = ["op", "dtype", "shape"]

    def setup(self, op, dtype, shape):
        prepare("numba", 2)
        rows, cols = (int(v) for v in shape.split("x"))
        self.op = getattr(fastact, op)
        self.x = random_array((rows, cols), dtype)
        self.out = np.empty_like(self.x)
        self.op(self.x, out=self.out)

    def track_time_over_copy(self, *params):
        return paired_ratio(lambda: self.op(self.x, out=self.out), faster_copy(self.x, self.out))

    track_time_over_copy.unit = "ratio"


class OtherAxis(LargeArrays):
    """softmax over the first axis of a C-ordered array (the last-axis case is Rows), also
    with where= (80 % kept), temperature= and the masked backward: the plain op's lanes
    kernels on the filled x, no transposed copies (those took 8-33x the plain op)."""

    params = [DTYPES]
    param_names = ["dtype"]

    def setup(self, dtype):
        fastact.set_backend("numba")
        shape = ROW_SHAPES[0]
        self.x = random_array(shape[::-1], dtype)
        self.out = np.empty_like(self.x)
        self.keep = np.random.default_rng(2).random(self.x.shape) > 0.2
        self.y = fastact.softmax(self.x, axis=0, where=self.keep)
        fastact.softmax(self.x, axis=0, out=self.out)
        fastact.softmax(self.x, axis=0, out=self.out, temperature=0.7)
        fastact.softmax.backward(self.x, self.y, axis=0, out=self.out, where=self.keep)

    def time_softmax_axis0(self, dtype):
        fastact.softmax(self.x, axis=0, out=self.out)

    def time_softmax_axis0_where(self, dtype):
        fastact.softmax(self.x, axis=0, out=self.out, where=self.keep)

    def time_softmax_axis0_temperature(self, dtype):
        fastact.softmax(self.x, axis=0, out=self.out, temperature=0.7)

    def time_softmax_backward_axis0_where(self, dtype):
        fastact.softmax.backward(self.x, self.y, axis=0, out=self.out, where=self.keep)


class LogSumExp(LargeArrays):
    """logsumexp over the last axis: one value per row, against plain NumPy's max-subtracted form."""

    params = [DTYPES, [f"{r}x{c}" for r, c in ROW_SHAPES], BACKENDS]
    param_names = ["dtype", "shape", "backend"]

    def setup(self, dtype, shape, backend):
        prepare(backend, 1 if backend == "numpy" else 2)
        rows, cols = (int(v) for v in shape.split("x"))
        self.x = random_array((rows, cols), dtype)
        self.out = np.empty(rows, dtype)
        fastact.logsumexp(self.x, out=self.out)  # Numba compilation

    def teardown(self, *params):
        fastact.set_backend("numba")

    def time_logsumexp(self, *params):
        fastact.logsumexp(self.x, out=self.out)


class MaskedAndTemperature(LargeArrays):
    """softmax and log_softmax with where= (a random mask keeping 80 %, and a padding mask of
    one row, broadcast) and temperature=, beside the plain op (issue 20:
    masked <= 1.2x plain, temperature <= 1.03x; the track_ ratio is measured in one process)."""

    params = [OPS, DTYPES, ["plain", "where", "padding", "temperature", "where+temperature"]]
    param_names = ["op", "dtype", "options"]

    def setup(self, op, dtype, options):
        prepare("numba", 2)
        rows, cols = ROW_SHAPES[0]
        self.op = getattr(fastact, op)
        self.x = random_array((rows, cols), dtype)
        self.out = np.empty_like(self.x)
        keep = np.random.default_rng(2).random((rows, cols)) > 0.2
        self.kwargs = {"plain": {}, "where": {"where": keep},
                       "padding": {"where": np.arange(cols) < cols * 9 // 10},
                       "temperature": {"temperature": 0.7},
                       "where+temperature": {"where": keep, "temperature": 0.7}}[options]
        self.call()  # Numba compilation
        self.op(self.x, out=self.out)

    def call(self):
        self.op(self.x, out=self.out, **self.kwargs)

    def time_forward(self, *params):
        self.call()

    def track_time_over_plain(self, *params):
        return paired_ratio(self.call, lambda: self.op(self.x, out=self.out))

    track_time_over_plain.unit = "ratio"
