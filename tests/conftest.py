import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# The suite runs on the default thresholds, not on what `python -m fastact tune` stored
# for this machine (tests/test_tuning.py tests the stored ones); subprocesses inherit it.
os.environ["FASTACT_TUNING"] = "defaults"

import fastact  # noqa: E402

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

BACKENDS = ("numba", "numpy")
FLOAT_DTYPES = (np.float32, np.float64)


@pytest.fixture(params=BACKENDS)
def backend(request):
    with fastact.use_backend(request.param):
        yield request.param


@pytest.fixture(params=FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
def dtype(request):
    return request.param


@pytest.fixture(autouse=True)
def _thread_count_restored():
    """Each test leaves the thread count as it found it (Numba's default where its layer
    had not started): a test that sets it and fails before restoring it would send the
    calls of every later test in the process serial, and the tests that need two threads
    would skip or fail far from the cause."""
    from fastact import _threads

    before = _threads.started_count()
    yield
    after = _threads.started_count()
    if after is not None:
        import numba

        expected = before if before is not None else numba.config.NUMBA_NUM_THREADS
        if after != expected:
            numba.set_num_threads(expected)


@pytest.fixture
def steady_threads(monkeypatch):
    """The busy-machine guard held off: a noisy machine can make it send a call of
    one test serial where the warm-up went parallel (or the other way), and the
    first call of a route loads its kernel, which allocates Python objects that
    allocation tests would count.  With it off the route depends on the size alone."""
    from fastact import _threads

    monkeypatch.setattr(_threads, "note_parallel_call", lambda *args: False)
    monkeypatch.setitem(_threads._busy, "until", 0.0)


def ulp_distance(a, b):
    """Elementwise distance in ULPs between two float arrays of one dtype
    (0 where both are NaN, inf where only one is)."""
    a, b = np.broadcast_arrays(np.asarray(a), np.asarray(b))
    assert a.dtype == b.dtype and a.dtype.kind == "f"
    itype = {4: np.int32, 8: np.int64}[a.dtype.itemsize]
    # sign-magnitude bit patterns onto one monotonic integer line (-0.0 and 0.0 meet at 0)
    ia, ib = a.view(itype).astype(np.int64), b.view(itype).astype(np.int64)
    low = np.int64(np.iinfo(itype).min)
    ia = np.where(ia < 0, low - ia, ia)
    ib = np.where(ib < 0, low - ib, ib)
    same_side = (ia >= 0) == (ib >= 0)
    exact = np.abs(np.where(same_side, ia - ib, 0)).astype(np.float64)
    across = np.abs(ia.astype(np.float64)) + np.abs(ib.astype(np.float64))
    dist = np.where(same_side, exact, across)
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    dist = np.where(nan_a & nan_b, 0.0, dist)
    return np.where(nan_a ^ nan_b, np.inf, dist)


def assert_ulp_close(actual, desired, max_ulp):
    actual, desired = np.asarray(actual), np.asarray(desired)
    dist = ulp_distance(actual, desired.astype(actual.dtype))
    worst = np.unravel_index(np.argmax(dist), dist.shape) if dist.size else None
    assert dist.size == 0 or dist.max() <= max_ulp, (
        f"{dist.max()} ULP > {max_ulp} at {worst}: {actual[worst]!r} vs {desired[worst]!r}"
    )


def run_python(code, timeout=600, **env):
    """Run ``code`` in a fresh interpreter with ``env`` added; its stdout (it must succeed)."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            env={**os.environ, **env}, timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout
