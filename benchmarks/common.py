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


# Seconds of calls before any timing.  Compilation and page faults are taken in
# setup(), but that is not enough: on the shared Xeon the suite ran on, a 1e7-element
# call ran 1.3-2x slower for its first 5-10 repetitions (the arrays, 40-160 MB, fit in
# the large last-level cache and take a few passes to displace what other processes
# left there; NumPy's own loops do the same).  Unwarmed, asv's 3-7 samples caught that
# ramp, and a commit that changed nothing showed 38 "regressions" of 1.3x-5x.  After a
# 0.3 s warm-up the medians of twelve fresh processes agreed within 2-4 %.
WARMUP_SECONDS = 0.0 if QUICK else 0.3


class LargeArrays:
    """asv settings for calls of milliseconds to seconds on large arrays: one call per
    sample and a few samples (asv's defaults aim at microsecond calls and would take
    minutes here), after WARMUP_SECONDS of calls."""

    number = 1
    repeat = (5, 11, 4.0)  # at least 5 and at most 11 samples, or 4 s
    rounds = 1  # each benchmark in one fresh process (the gate asks for more)
    warmup_time = WARMUP_SECONDS
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


def warm(*fns, seconds=WARMUP_SECONDS):
    """Call each of fns, in turn, until `seconds` have passed (at least twice each)."""
    start, calls = time.perf_counter(), 0
    while calls < 2 or time.perf_counter() - start < seconds:
        for fn in fns:
            fn()
        calls += 1


def median_seconds(fn, repeats=7):
    warm(fn)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def paired_ratio(fn, base, pairs=9):
    """fn's time over base's, for the track_ benchmarks: both warmed, then the median
    ratio over pairs of calls made one after the other, so that the machine's drift
    (a neighbour's load, the cache's state) falls on both sides of each pair."""
    warm(fn, base)
    ratios = []
    for pair in range(pairs):
        first, second = (fn, base) if pair % 2 == 0 else (base, fn)  # neither always goes first
        start = time.perf_counter()
        first()
        middle = time.perf_counter()
        second()
        end = time.perf_counter()
        ratios.append((middle - start) / (end - middle) if first is fn else (end - middle) / (middle - start))
    return float(np.median(ratios))


def faster_copy(x, out):
    """The copy roofline's call: the fastest (by median time) of np.copyto and a parallel
    Numba copy loop, with plain or streaming stores, from x to out."""
    from fastact import _kernels

    parallel_copy, stream_copy = _kernels.copy_kernel(True), _kernels.copy_kernel(True, streamed=True)
    flat_x, flat_out = x.reshape(-1), out.reshape(-1)
    copies = [lambda: np.copyto(out, x), lambda: parallel_copy(flat_x, flat_out),
              lambda: stream_copy(flat_x, flat_out, ())]
    return min(copies, key=median_seconds)
