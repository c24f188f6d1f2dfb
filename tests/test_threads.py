"""The thread policy under load: many Python threads, forked workers, each threading layer."""

import mmap
import os
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastact

from .conftest import run_python

LAYERS = ["default", "omp", "workqueue"]


def _in_thread(fn):
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


@pytest.mark.parametrize("layer", ["omp", "tbb", "workqueue"])
def test_parallel_thresholds_follow_the_threading_layer(monkeypatch, layer):
    # gelu calls that take 1.5 times each layer's parallel_min_ns on one thread:
    # each goes parallel under that layer and under those that wake faster.
    from fastact import _api, _config, _threads, _tuning

    if fastact.get_num_threads() < 2:
        pytest.skip("one thread")
    act = fastact.gelu._act
    monkeypatch.setitem(_threads._state, "layer", layer)
    # under workqueue, tbb's threshold times WORKQUEUE_THRESHOLD_FACTOR
    tuned = _tuning.current().parallel_min_ns
    thresholds = {"omp": tuned["omp"], "tbb": tuned["tbb"],
                  "workqueue": tuned["tbb"] * _config.WORKQUEUE_THRESHOLD_FACTOR}
    for other, min_ns in thresholds.items():
        n = int(1.5 * min_ns / _tuning.current().serial_cost(act.name, 4))
        assert _api._goes_parallel(act, n, 4) == (min_ns >= thresholds[layer]), (layer, other)
    assert _threads.threshold_factor() == (_config.WORKQUEUE_THRESHOLD_FACTOR if layer == "workqueue" else 1)


def test_a_backward_call_goes_parallel_at_its_own_cost(monkeypatch):
    # celu float64's derivative costs about half its forward: a backward call of the size
    # from which the forward goes parallel stays serial, and goes parallel at twice it
    from fastact import _api, _threads, _tuning

    if fastact.get_num_threads() < 2:
        pytest.skip("one thread")
    act = fastact.celu._act
    monkeypatch.setitem(_threads._state, "layer", "tbb")
    tuning = _tuning.current()
    ratio = tuning.backward_ratio["celu"][1]
    n = int(1.1 * tuning.parallel_min_ns["tbb"] / tuning.serial_cost("celu", 8))
    assert ratio < 1 / 1.1
    assert _api._goes_parallel(act, n, 8) and _api._goes_parallel(act, n, 8, "value_and_grad")
    assert not _api._goes_parallel(act, n, 8, "backward_x") and not _api._goes_parallel(act, n, 8, "grad")
    assert _api._goes_parallel(act, int(1.1 * n / ratio), 8, "backward_x")


def test_policy_off_the_main_thread():
    n = fastact.get_num_threads()
    assert threading.current_thread() is threading.main_thread()
    assert n == fastact._threads._backend.numba.config.NUMBA_NUM_THREADS
    assert _in_thread(fastact.get_num_threads) == 1  # a pool thread runs each call on itself

    def opted_in():
        fastact.set_num_threads(n)
        return fastact.get_num_threads()

    expected = n if fastact.threading_layer() in ("tbb", "omp") else 1
    assert _in_thread(opted_in) == expected
    assert fastact.get_num_threads() == n  # the main thread is unchanged


def test_tbb_wheel_is_used_when_installed():
    try:
        import importlib.metadata

        importlib.metadata.version("tbb")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the tbb wheel is not installed")
    out = run_python("""
        import numpy as np, fastact
        fastact.sigmoid(np.ones(1 << 20))
        print(fastact.threading_layer())
    """, timeout=300, NUMBA_THREADING_LAYER="default")
    assert out.split() == ["tbb"]


# 8 threads, half of them opted in to parallel kernels, and the main thread,
# all calling at once; every result must equal the serial one.
_CONCURRENT = """
    import threading, numpy as np, fastact
    rng = np.random.default_rng(0)
    arrays = [rng.normal(0, 5, (600, 400)).astype(dt) for dt in (np.float32, np.float64)]
    grads = [np.cos(a) for a in arrays]

    def work():
        out = []
        for x, g in zip(arrays, grads):
            out += [fastact.sigmoid(x), fastact.gelu.backward(g, x=x), fastact.softmax(x),
                    fastact.log_softmax.backward(g, fastact.log_softmax(x)), *fastact.silu.value_and_grad(x)]
        return out

    n = fastact.get_num_threads()
    fastact.set_num_threads(1)
    expected = work()
    fastact.set_num_threads(n)
    failures = []

    def thread_main(index):
        if index % 2:
            fastact.set_num_threads(n)
        for _ in range(4):
            for a, b in zip(work(), expected):
                if not np.array_equal(a, b):
                    failures.append(index)

    threads = [threading.Thread(target=thread_main, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for _ in range(4):
        for a, b in zip(work(), expected):
            if not np.array_equal(a, b):
                failures.append("main")
    for t in threads:
        t.join()
    print(fastact.threading_layer(), "failures", len(failures))
"""


@pytest.mark.parametrize("layer", LAYERS)
def test_concurrent_calls_from_many_threads(layer):
    out = run_python(_CONCURRENT, timeout=300, NUMBA_THREADING_LAYER=layer)
    name, _, failures = out.split()
    assert failures == "0"
    if layer != "default":
        assert name == layer


# A fork pool created after the parent ran parallel kernels.
_FORK = """
    import multiprocessing as mp, numpy as np, fastact

    def child(seed):
        x = np.random.default_rng(seed).normal(size=(700, 300))
        return fastact.sigmoid(x), fastact.softmax(x), fastact.get_num_threads()

    if __name__ == "__main__":
        parent = [child(seed) for seed in range(4)]  # parallel kernels in the parent
        assert parent[0][2] > 1
        with mp.get_context("fork").Pool(2) as pool:
            children = pool.map(child, range(4), chunksize=1)
        for (a, b, _), (c, d, threads) in zip(parent, children):
            assert np.array_equal(a, c) and np.array_equal(b, d)
        print(fastact.threading_layer(), children[0][2])
"""


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
@pytest.mark.parametrize("layer", LAYERS)
def test_fork_pool_after_parallel_kernels(layer, tmp_path):
    script = tmp_path / "fork_pool.py"
    script.write_text(textwrap.dedent(_FORK))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "NUMBA_THREADING_LAYER": layer})
    assert result.returncode == 0, result.stdout + result.stderr
    name, child_threads = result.stdout.split()
    if name == "omp":  # libgomp is not fork-safe: children run serial kernels
        assert child_threads == "1"


def test_a_stalled_parallel_call_makes_calls_serial_for_a_while(monkeypatch):
    # a parallel call STALL_FACTOR times its pace (the serial time the caller
    # expects, or the fastest parallel call seen) plus the slack, and over twice the
    # serial time, is a stall:
    # go_parallel says no for the back-off, which doubles with each stall and
    # shrinks with each call that did not stall
    from fastact import _threads

    now = [1000.0]
    monkeypatch.setattr(_threads.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(_threads, "_busy", {"until": 0.0, "backoff": _threads.BUSY_BACKOFF_S[0]})
    monkeypatch.setattr(_threads, "_fastest", {})
    can = fastact.get_num_threads() > 1
    low, decay = _threads.BUSY_BACKOFF_S[0], _threads.BUSY_BACKOFF_DECAY
    key, n, serial = (1, "f"), 10_000, 1e-8  # 100 us on one thread

    def stalls(seconds: float, backoff: float) -> None:
        assert _threads.note_parallel_call(key, n, serial, seconds)
        assert not _threads.go_parallel(1e9, 1)
        assert _threads._busy["until"] - now[0] == pytest.approx(backoff)
        now[0] = _threads._busy["until"] + 1e-6  # the back-off is over: parallel calls are tried again
        assert _threads.go_parallel(1e9, 1) == can

    limit = _threads.STALL_FACTOR * serial * n + _threads.STALL_SLACK_S
    stalls(limit * 1.01, low)  # busy from the start: against the serial pace
    assert not _threads.note_parallel_call(key, n, serial, 6e-5)
    assert not _threads.note_parallel_call(key, n, serial, 8e-5)  # slower, within the factor
    backoff = max(2 * low * decay * decay, low)
    assert _threads._busy["backoff"] == pytest.approx(backoff)
    stall = _threads.STALL_FACTOR * 6e-5 + _threads.STALL_SLACK_S + 1e-4  # against the fastest seen
    stalls(stall, backoff)
    stalls(stall, 2 * backoff)  # twice as long
    assert not _threads.note_parallel_call(key, n, serial, 6e-5)
    assert _threads._busy["backoff"] == pytest.approx(4 * backoff * decay)
    for _ in range(100):
        _threads.note_parallel_call(key, n, serial, 6e-5)
    assert _threads._busy["backoff"] == low
    assert not _threads.note_parallel_call((2, "f"), n, 1e-6, 0.02)  # another kernel has its own pace
    # a large call (10 ms on one thread, 5 ms on two) that lost a time slice: four
    # times its pace, but within twice the serial time, is no stall (one thread would
    # not have saved what a back-off of serial calls costs); beyond that it is one
    big, slow = (3, "f"), 1e-6
    assert not _threads.note_parallel_call(big, n, slow, 5e-3)
    assert not _threads.note_parallel_call(big, n, slow, 0.019)
    assert _threads.note_parallel_call(big, n, slow, 0.021)


def test_a_call_slowed_by_page_faults_is_no_stall(monkeypatch):
    # a user's out= array fresh from the OS is mapped page by page as the kernel
    # writes it: tanh on 1e7 float32 took 9-45 ms instead of 3 ms, which passed for
    # a stall and sent the next calls to one thread (asv's setup makes a new out
    # before each sample, so its samples ran at half speed by chance)
    from fastact import _threads

    monkeypatch.setattr(_threads, "_busy", {"until": 0.0, "backoff": _threads.BUSY_BACKOFF_S[0]})
    monkeypatch.setattr(_threads, "_fastest", {})
    faults = [100]
    monkeypatch.setattr(_threads, "minor_faults", lambda: faults[0])
    big = np.zeros(_threads.FAULT_CHECK_BYTES // 16)
    big_out = np.empty_like(big)
    small, small_out = np.zeros(1000), np.empty(1000)

    def kernel(seconds, new_faults):
        def call(a, b):
            faults[0] += new_faults
            time.sleep(seconds)
        return call

    serial_ns = 0.1  # 0.1 ms for the big arrays on one thread: 20 ms is a stall by every measure
    _threads.run(kernel(0.02, 50), True, big.size, serial_ns, big, big_out)
    assert _threads._busy == {"until": 0.0, "backoff": _threads.BUSY_BACKOFF_S[0]}  # faulted: not even a pace
    assert not _threads._fastest
    _threads.run(kernel(0.02, 0), True, big.size, serial_ns, big, big_out)
    assert _threads._busy["until"] > 0.0  # no fault: a stall
    # small arrays (short calls) are not worth the read: a slow one is a stall
    monkeypatch.setattr(_threads, "_busy", {"until": 0.0, "backoff": _threads.BUSY_BACKOFF_S[0]})
    _threads.run(kernel(0.01, 50), True, small.size, serial_ns, small, small_out)
    assert _threads._busy["until"] > 0.0


def test_minor_faults_counts_fresh_pages():
    from fastact import _threads

    before = _threads.minor_faults()
    if before < 0:
        pytest.skip("no getrusage")
    # pages mapped here: a large np.empty may reuse heap memory already touched (glibc raises
    # its mmap threshold after freeing a large block, as test_streaming's 16 MB arrays)
    with mmap.mmap(-1, 64 << 20) as region:
        pages = np.frombuffer(region, np.uint8)
        pages[::4096] = 1  # every page written for the first time
        del pages
        assert _threads.minor_faults() > before


def test_parallel_calls_are_timed(monkeypatch):
    from fastact import _threads

    x = np.random.default_rng(0).standard_normal(1 << 20).astype(np.float32)
    if fastact.get_num_threads() < 2:
        pytest.skip("one thread")
    monkeypatch.setattr(_threads, "_busy", {"until": 0.0, "backoff": _threads.BUSY_BACKOFF_S[0]})
    monkeypatch.setattr(_threads, "_fastest", {})
    out = np.empty_like(x)
    fastact.tanh(x)  # into fresh memory: not timed
    fastact.softmax(x.reshape(1024, 1024))
    assert not _threads._fastest
    for _ in range(3):  # a call that compiles (or loads) the kernel is not timed either
        for call in (lambda: fastact.tanh(x, out=out),
                     lambda: fastact.softmax(x.reshape(1024, 1024), out=out.reshape(1024, 1024))):
            _threads._busy["until"] = 0.0  # the first touch of out may pass for a stall
            call()
    assert len(_threads._fastest) == 2 and all(t > 0 for t in _threads._fastest.values())


def test_a_call_out_of_cache_is_paced_by_memory_not_by_the_cached_timing(monkeypatch):
    # relu on 1e7 float64 elements ran at the copy roofline, 3x its pace from the
    # per-element timing in cache, and every call passed for a stall (then ran serial)
    from fastact import _threads

    monkeypatch.setattr(_threads, "_busy", {"until": 0.0, "backoff": _threads.BUSY_BACKOFF_S[0]})
    monkeypatch.setattr(_threads, "_fastest", {})
    monkeypatch.setattr(_threads, "memory_seconds_per_byte", lambda: 1e-10)  # 10 GB/s on one thread
    x = np.zeros(5_000_000)
    out = np.empty_like(x)
    memory_s = (x.nbytes + out.nbytes) * 1e-10  # 8 ms on one thread
    assert x.nbytes + out.nbytes > _threads.MEMORY_PROBE_BYTES

    def kernel(seconds):
        return lambda a, b: time.sleep(seconds)

    _threads.run(kernel(2 * memory_s), True, x.size, 0.1, x, out)  # 0.1 ns an element in cache: 0.5 ms
    assert _threads._busy["until"] == 0.0  # slower than one thread's memory time, but no stall
    _threads._fastest.clear()
    _threads.run(kernel(4 * memory_s), True, x.size, 0.1, x, out)
    assert _threads._busy["until"] > 0.0  # a stall even at memory speed
    # in cache (small arrays) the cached timing still sets the pace
    monkeypatch.setattr(_threads, "_busy", {"until": 0.0, "backoff": _threads.BUSY_BACKOFF_S[0]})
    small, small_out = np.zeros(10_000), np.empty(10_000)
    _threads.run(kernel(0.01), True, small.size, 0.1, small, small_out)
    assert _threads._busy["until"] > 0.0
