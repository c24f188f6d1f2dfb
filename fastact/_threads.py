"""The thread policy: when a call may run its kernel on several threads.

- The main thread runs large calls on ``get_num_threads()`` threads.
- Any other thread (a thread pool, a dask worker) runs each call on that one
  thread, so that N busy threads use N cores and not N times the pool.  A
  thread that calls ``fastact.set_num_threads(n)`` itself opts in: its large
  calls then use n threads, where the threading layer allows calls from many
  threads at once (tbb, omp).  Numba's ``workqueue`` layer aborts the process
  on concurrent use, so under it only the main thread runs parallel kernels.
- A child forked after its parent ran GNU OpenMP kernels runs every call on
  one thread: libgomp is not fork-safe, and Numba terminates such a child on
  its first parallel kernel.
- If the ``tbb`` wheel is installed and nothing has chosen a threading layer
  yet, its library is loaded before Numba picks one.  Numba prefers tbb (safe
  with threads and forks) but does not search the wheel's ``<prefix>/lib``.
- On a busy machine calls run serially for a while (``run``, below).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib.metadata
import math
import operator
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

try:
    import resource
except ImportError:  # (Windows)
    resource = None  # type: ignore[assignment]

import numpy as np

from . import _backend, _config, _tuning

_local = threading.local()
_state: dict[str, Any] = {"prepared": False, "forked_after_omp": False}
_lock = threading.Lock()
_TBB_LIBRARIES = ("libtbb.so.12", "libtbb.12.dylib", "tbb12.dll")
_THREAD_SAFE_LAYERS = ("tbb", "omp")


def _layer_started() -> str | None:
    """The threading layer Numba runs, or None before it has started one.  Read from
    the module global behind ``numba.threading_layer()``, which raises before a layer
    has started (about 1 us a call: every small row op asked it twice)."""
    parallel = sys.modules.get("numba.np.ufunc.parallel")
    layer = getattr(parallel, "_threading_layer", _UNKNOWN)
    if layer is not _UNKNOWN:
        return None if layer is None else str(layer)
    try:
        return str(_backend.numba.threading_layer())
    except ValueError:
        return None


_UNKNOWN = object()


def _load_tbb() -> bool:
    """Load the tbb wheel's library globally, so that Numba's tbb layer finds it."""
    try:
        files = importlib.metadata.files("tbb") or ()
    except importlib.metadata.PackageNotFoundError:
        return False
    for file in files:
        if file.name in _TBB_LIBRARIES:
            try:
                ctypes.CDLL(str(file.locate()), mode=ctypes.RTLD_GLOBAL)
            except OSError:
                return False
            return True
    return False


def prepare() -> None:
    """Before Numba's first parallel launch: make tbb loadable if the user has not
    chosen a layer (NUMBA_THREADING_LAYER) and no one has started one."""
    if _state["prepared"]:
        return
    with _lock:
        if _state["prepared"] or _backend.numba is None:
            _state["prepared"] = True
            return
        if _backend.numba.config.THREADING_LAYER in ("default", "safe", "threadsafe", "forksafe", "tbb"):
            if _layer_started() is None:
                _load_tbb()
        _state["prepared"] = True


def threading_layer() -> str | None:
    """Numba's threading layer for parallel kernels ("tbb", "omp" or "workqueue"),
    started if it was not; None without numba."""
    if _backend.numba is None:
        return None
    prepare()
    _backend.numba.get_num_threads()  # starts the layer
    return _layer_started()


def set_num_threads(n: int) -> None:
    """Threads for large calls from this thread (1 .. NUMBA_NUM_THREADS).

    Off the main thread this also opts the thread in to parallel kernels (see
    the thread policy in the README); Numba's thread count is per thread."""
    if isinstance(n, (bool, np.bool_)):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    try:
        n = operator.index(n)  # any integer: int, numpy.int64, ...
    except TypeError:
        raise TypeError(f"n must be an int, got {type(n).__name__}") from None
    numba = _backend.numba
    if numba is None:
        if n != 1:
            raise ValueError("n must be 1 without numba: the NumPy backend runs on one thread")
        return
    limit = numba.config.NUMBA_NUM_THREADS
    if not 1 <= n <= limit:
        raise ValueError(f"n must be between 1 and {limit} (NUMBA_NUM_THREADS), got {n}")
    prepare()
    numba.set_num_threads(n)
    if threading.current_thread() is not threading.main_thread():
        _local.opted_in = True


def get_num_threads() -> int:
    """Threads that a large call from this thread runs on, under the policy above."""
    if _backend.numba is None or _state["forked_after_omp"]:
        return 1
    count = _numba_count[0] or _count_reader()
    if count is None:  # Numba's threads not started: numba.get_num_threads() starts them
        prepare()
        n: int = _backend.numba.get_num_threads()
    else:  # the count Numba keeps per thread, read directly: 0.1 us where Numba's call costs 0.6 us
        n = count()
    if n <= 1:
        return 1
    if threading.current_thread() is threading.main_thread():
        return n
    if getattr(_local, "opted_in", False) and _layer_started() in _THREAD_SAFE_LAYERS:
        return n
    return 1


def one_thread() -> bool:
    """Whether Numba runs this thread's parallel kernels on one thread (its count for
    the thread is 1), so that every call from it is serial whatever its size.  Read
    from the count Numba keeps per thread, about 0.1 us where get_num_threads() costs
    0.6 us and the general path's parallel decision 1.3 us: with
    ``set_num_threads(1)``, an elementwise call of 1e4 elements spent more time
    deciding than computing.  False before Numba has started its threads."""
    count = _numba_count[0] or _count_reader()  # (inline: a call costs what the rest does)
    return count is not None and bool(count() == 1)


def started_count() -> int | None:
    """Numba's thread count for the calling thread, or None before its threading layer
    has started (read without starting it)."""
    count = _count_reader()
    return None if count is None else int(count())


def _count_reader() -> Any:
    if _numba_count[0] is None:
        _numba_count[0] = getattr(sys.modules.get("numba.np.ufunc.parallel"), "_get_num_threads", None)
    return _numba_count[0]


_numba_count: list[Any] = [None]  # Numba's reader of its per-thread count, once its threads have started


def _running_layer() -> str | None:
    layer = _state.get("layer") or _layer_started()
    _state["layer"] = layer
    return layer


def parallel_min_ns() -> float:
    """The serial time from which an elementwise call goes parallel under the
    running threading layer (_tuning's parallel_min_ns, before go_parallel's
    workqueue factor).  Call it after get_num_threads(), which starts the layer."""
    return _tuning.for_layer(_tuning.current().parallel_min_ns, _running_layer())


def rows_go_parallel(elements: int, tasks: int) -> bool:
    """go_parallel for a row op or cross-entropy over ``elements``: below every layer's
    threshold the layer is not even asked."""
    return elements >= _tuning.current().rows_serial_below and go_parallel(elements, row_parallel_min_elements(),
                                                                            tasks)


def row_parallel_min_elements() -> int:
    """The elements from which a row op or cross-entropy goes parallel under the
    running threading layer (_tuning, before go_parallel's workqueue factor)."""
    return _tuning.for_layer(_tuning.current().row_parallel_min_elements, _running_layer())


def threshold_factor() -> int:
    """What the thresholds in _config are multiplied by under the running threading
    layer: _config.WORKQUEUE_THRESHOLD_FACTOR under workqueue, else 1.  Call it
    after get_num_threads()."""
    return _config.WORKQUEUE_THRESHOLD_FACTOR if _running_layer() == "workqueue" else 1


def go_parallel(work: float, threshold: float, tasks: int = 2) -> bool:
    """The one rule every parallel decision follows: run the parallel kernel where
    the call splits into at least two tasks, this thread may use more than one
    thread (the policy above), and its ``work`` reaches ``threshold`` (both in one
    unit: elements, or ns of serial time; thresholds measured under tbb and omp
    are multiplied by threshold_factor() under workqueue)."""
    # the threshold first: asking Numba for the thread count costs 1.5 us
    return (tasks > 1 and work >= threshold * threshold_factor() and _busy["until"] < time.monotonic()
            and get_num_threads() > 1)


# A busy machine.  A parallel kernel returns when its last thread is done.  Where
# other processes keep the cores busy, the OS can leave one of the kernel's
# threads waiting for a whole time slice: under GNU OpenMP on 2 cores beside one
# CPU-bound process, a call of 1e4 elements took 8 ms instead of 18 us (tbb's
# work stealing lets the calling thread take the waiting thread's share, and
# stalls far less).  So every parallel call is timed against its pace: the
# serial time per element the caller expects (at memory speed for arrays beyond
# the caches, below), or the fastest parallel call of its kernel, dtype and size
# class seen, whichever is less (a machine busy from the start stalls the first
# calls too).  A call STALL_FACTOR times the pace, and STALL_SLACK_S more, and
# STALL_SERIAL_FACTOR times the serial time (below), was a stall, after which
# go_parallel says no for the back-off (from BUSY_BACKOFF_S[0] seconds); then
# parallel calls are tried again.  Each stall doubles the back-off (up to
# BUSY_BACKOFF_S[1]), each call that did not stall shrinks it by BUSY_BACKOFF_DECAY
# (down to BUSY_BACKOFF_S[0]): while half the tries stall it grows (starting afresh after one good call let
# workqueue stall 1-2 % of 1000 calls of 1e6 elements; shrinking by 0.8 let omp
# on znver5 stall often enough for a p99 of 2.1-4.2x the one-thread call in 2 of
# 6 runs of bench --busy, where 0.95 kept every p99 within 1.61x, with as many
# parallel calls and stalls as 0.8 on an idle machine).  At most one call per
# back-off period pays a stall, and a serial call is never slower than on one
# thread.  A call that writes into memory it has just allocated is not timed: a
# page fault per 4 KiB of fresh output makes it slow without any stall (1e7
# float64 took 14 times the pace in this project's VM).  A user's new out=
# array may be taken for a stall once.  The bound by the serial time spares large
# calls, for which a lost time slice costs less than a back-off does: a 1e7-element
# relu (float32, 1.4 ms on two threads, 3 ms on one) that lost one took 5.6 ms,
# four times its pace, and sent the next 0.1-0.2 s of calls to one thread at twice
# their time (with asv sampling in that window, a commit that changed nothing
# showed 2x "regressions").  A call within twice its serial time also meets issue
# 18's bound for a busy machine as it is.
STALL_FACTOR = 3.0
STALL_SERIAL_FACTOR = 2.0
STALL_SLACK_S = 5e-4
BUSY_BACKOFF_S = (0.1, 5.0)
BUSY_BACKOFF_DECAY = 0.95
# The serial ns per element assumed for a row op (float32, float64): above their
# cost (softmax on 4096 x 16 float32: 3.5 ns)
ROW_SERIAL_NS = (4.0, 8.0)
_busy = {"until": 0.0, "backoff": BUSY_BACKOFF_S[0]}
_fastest: dict[tuple[Any, ...], float] = {}  # (id of the kernel, dtype, size class): seconds per element


_unguarded = [0]  # unguarded() blocks open


@contextlib.contextmanager
def unguarded() -> Iterator[None]:
    """No busy guard in this block: parallel calls are neither timed nor held back by a
    back-off, which resumes afterwards where it was.  For tune's crossover: a call taken
    for a stall (the VM's noise, or the first call after a pause, its workers asleep)
    sends the forced parallel calls to one thread for the back-off.  Under omp on znver5
    one in three measurements saw a stall; with a stricter guard tried here, the
    crossover came out at 83-180 us of serial time where it is 20 us."""
    saved = dict(_busy)
    _busy["until"] = 0.0
    _unguarded[0] += 1
    try:
        yield
    finally:
        _unguarded[0] -= 1
        _busy.update(saved)


def run(kernel: Callable[..., Any], parallel: bool, n: int, serial_ns: float, *args: Any, fresh: bool = False) -> Any:
    """``kernel(*args)``, over ``n`` elements that take about ``serial_ns`` each on one
    thread; a parallel kernel is timed (above) unless it writes ``fresh`` memory."""
    if not parallel or fresh or _unguarded[0]:
        return kernel(*args)
    compiled = len(getattr(kernel, "overloads", ()))
    moved = sum(a.nbytes for a in args if isinstance(a, np.ndarray))
    faults = minor_faults() if moved >= FAULT_CHECK_BYTES else -1
    start = time.perf_counter()
    result = kernel(*args)
    seconds = time.perf_counter() - start
    if len(getattr(kernel, "overloads", ())) == compiled:  # not a call that compiled (or loaded) the kernel
        serial_s = serial_ns * 1e-9
        if moved > MEMORY_PROBE_BYTES:  # beyond the caches: no faster than memory on one thread
            serial_s = max(serial_s, moved / max(n, 1) * memory_seconds_per_byte())
        note_parallel_call((id(kernel), args[0].dtype.char, n.bit_length() // 3), n, serial_s, seconds, faults)
    return result


# Page faults are no stall.  A user's out= array fresh from the OS has its pages
# mapped as the kernel first writes them, in the kernel's time: in this project's
# VM (AMD EPYC, 2 cores) tanh on 1e7 float32 into a new out took 9-45 ms where it
# takes 3 ms, relu on 1e6 float64 2.4 ms where it takes 0.13 ms, each "a stall"
# that sent the next 0.1 s or more of calls to one thread (tanh 5.6 ms), and the
# back-off doubled with every new array.  asv's setup makes a new out before each sample, so
# the sample after it often ran on one thread: 20 of the 48 2-thread cases of
# Catalogue.time_forward varied 1.3-2x between runs of one commit.  So a call moving FAULT_CHECK_BYTES or
# more reads the process's minor page faults before it (getrusage, 0.8 us), and a
# slow call that took any is neither a stall nor a pace.  Smaller arrays come from
# the allocator's reused memory, and their calls are too short to pay the read.
FAULT_CHECK_BYTES = 4 << 20


def minor_faults() -> int:
    """The minor page faults this process has taken (-1 where getrusage is missing)."""
    return -1 if resource is None else resource.getrusage(resource.RUSAGE_SELF).ru_minflt


# The serial ns per element in _tuning are timings in cache.  A call whose arrays are
# far larger runs at memory speed: relu on 1e7 float64 elements took 6.6 ms on two
# threads, at the copy roofline, where its pace from the cached timing was 2.1 ms, so
# every such call passed for a stall and sent the next ones to one thread (at 11-15
# ms).  Calls moving more than MEMORY_PROBE_BYTES are paced by the time one thread
# takes to move their bytes, measured once per process by a copy of that many bytes;
# and the fastest call is kept per size class (factors of 8), so that a call in cache
# does not set the pace of one out of it.
MEMORY_PROBE_BYTES = 32 << 20


@functools.cache
def memory_seconds_per_byte() -> float:
    """Seconds per byte moved (read or written) by one thread copying MEMORY_PROBE_BYTES / 2
    to as many (NumPy's copy, the best of three)."""
    source = np.ones(MEMORY_PROBE_BYTES // 16)
    dest = np.empty_like(source)
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        np.copyto(dest, source)
        best = min(best, time.perf_counter() - start)
    return best / (source.nbytes + dest.nbytes)


def note_parallel_call(key: tuple[Any, ...], n: int, serial_s: float, seconds: float, faults: int = -1) -> bool:
    """Records a parallel call of ``n`` elements (``serial_s`` each on one thread) that
    took ``seconds``; whether it stalled.  ``faults``: minor_faults() before the call
    (-1: not read), for a slow call to be told from one slowed by page faults."""
    pace = min(_fastest.get(key, serial_s), serial_s)
    per_element = seconds / max(n, 1)
    stalled = seconds > max(STALL_FACTOR * pace * n + STALL_SLACK_S, STALL_SERIAL_FACTOR * serial_s * n)
    if stalled and faults >= 0 and minor_faults() != faults:
        return False  # it mapped fresh pages (above)
    if per_element < _fastest.get(key, float("inf")):
        _fastest[key] = per_element
    if stalled:
        _busy["until"] = time.monotonic() + _busy["backoff"]
        _busy["backoff"] = min(2 * _busy["backoff"], BUSY_BACKOFF_S[1])
    else:
        _busy["backoff"] = max(BUSY_BACKOFF_DECAY * _busy["backoff"], BUSY_BACKOFF_S[0])
    return stalled


def _after_fork_in_child() -> None:
    if _backend.numba is not None and _layer_started() == "omp":
        _state["forked_after_omp"] = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
