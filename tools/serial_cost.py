"""Nanoseconds per element of each activation's serial forward kernel, per dtype.

Measured on 1e5 elements (in cache, so this is arithmetic, not memory), median
of 7 samples of 50 calls.  Prints ``serial_ns=(float32, float64)`` for each
definition in fastact/_activations.py, which set where a call goes parallel.
Run: python tools/serial_cost.py
"""

import timeit

import numpy as np

from fastact import _activations, _kernels

N = 100_000

if __name__ == "__main__":
    for name, act in _activations.ELEMENTWISE.items():
        kernel = _kernels.elementwise_kernel(name, "forward", False)
        params = tuple(p.default for p in act.params)
        costs = []
        for dtype in (np.float32, np.float64):
            x = np.random.default_rng(0).normal(0, 4, N).astype(dtype)
            out = np.empty_like(x)
            kernel(x, out, params)
            samples = timeit.repeat(lambda: kernel(x, out, params), number=50, repeat=7)
            costs.append(sorted(samples)[3] / 50 / N * 1e9)
        print(f"{name:12s} serial_ns=({costs[0]:.2g}, {costs[1]:.2g}),")
