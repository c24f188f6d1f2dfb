"""Shared set-up for the asv benchmarks.

``FASTACT_ASV_QUICK=1`` shrinks every grid to tiny arrays: CI uses it to check
that each benchmark imports and runs once, in seconds.
"""

import os
import time

import numpy as np

import fastact

QUICK = os.environ.get("FASTACT_ASV_QUICK") == "1"
# The regression gate (scripts/asv-gate.sh) times only what it guards: large
# arrays on the numba backend with 2 threads.
GATE = os.environ.get("FASTACT_ASV_GATE") == "1"

SIZES = [10_000] if QUICK else [10_000_000] if GATE else [1_000_000, 10_000_000, 40_000_000]
FUSED_SIZE = 10_000 if QUICK else 10_000_000
ROW_SHAPES = [(64, 128)] if QUICK else [(4096, 4096)] if GATE else [(4096, 4096), (65536, 128), (512, 32768),
                                                                     (1_000_000, 10)]
# the gated units' inputs: rows of two halves (8192 x 2 x 11008 is a LLaMA-7B MLP's gate and up
# projections for 8192 tokens, 720 MB of float32)
GATED_SHAPES = [(64, 256)] if QUICK else [(8192, 22016)] if GATE else [(8192, 22016), (65536, 256)]
DTYPES = ["float32", "float64"]
BACKENDS = ["numba"] if GATE else ["numba", "numpy"]
THREADS = [2] if GATE else [1, 2]


class LargeArrays:
    """asv settings for calls of milliseconds to seconds on large arrays: one call per
    sample and a few samples (asv's defaults aim at microsecond calls and would take
    minutes here).  Compilation and page faults are taken in setup(), so no warm-up."""

    number = 1
    repeat = (3, 7, 4.0)  # at least 3 and at most 7 samples, or 4 s
    rounds = 1  # each benchmark in one fresh process (the gate asks for more)
    warmup_time = 0.0
    timeout = 300


# gelu's NumPy fallback calls math.erfc element by element (seconds per 1e7): timing it
# on large arrays would take most of a run and show nothing about fastact.
SLOW_FALLBACKS = {"gelu"}


def prepare(backend, threads, op=None):
    """Select backend and threads; the NumPy backend has one thread, so its 2-thread
    case would duplicate the 1-thread one and is skipped."""
    if backend == "numpy" and threads != 1:
        raise NotImplementedError("the NumPy backend is single-threaded")
    if backend == "numpy" and op in SLOW_FALLBACKS:
        raise NotImplementedError(f"{op}'s NumPy fallback is elementwise Python")
    fastact.set_backend(backend)
    fastact.set_num_threads(min(threads, fastact.get_num_threads() if threads == 1 else threads))


def random_array(shape, dtype, seed=0, scale=4.0):
    """Uniform on [-2 scale, 2 scale): as wide as the normal samples used before, and
    several times faster to draw for 4e7 elements."""
    x = np.random.default_rng(seed).random(shape, dtype=np.float64 if dtype == "float64" else np.float32)
    x *= 4 * scale
    x -= 2 * scale
    return x


def median_seconds(fn, repeats=7):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def copy_seconds(x, out):
    """The copy roofline: the faster of np.copyto and a parallel Numba copy loop."""
    from fastact import _kernels

    parallel_copy = _kernels.copy_kernel(True)
    flat_x, flat_out = x.reshape(-1), out.reshape(-1)
    return min(median_seconds(lambda: np.copyto(out, x)), median_seconds(lambda: parallel_copy(flat_x, flat_out)))
