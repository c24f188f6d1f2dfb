"""Thresholds measured on the machine that runs them.

Where a call goes parallel and which rows count as short are timings, so they
belong to a CPU and a threading layer, not to the math.  ``DEFAULTS`` were
measured on AMD EPYCs (Numba targets znver4 and znver5, 2 cores; each table says
which; see CHANGELOG.md) and hold until ``python -m fastact tune`` has measured this one.
``tune`` stores its figures in the user's cache directory (``FASTACT_TUNING_DIR``,
else ``$XDG_CACHE_HOME/fastact``, else ``~/.cache/fastact``), in ``tuning.json``
under a key naming the CPU model, Numba's target CPU, the core count, the vector
width and fastact's version; the parallel thresholds are kept per threading
layer.  Every process loads the entry for its own key on first use, so a
home directory shared by several machines keeps one entry for each, and a file
written on another CPU is never applied.  An unreadable file is ignored.

- ``serial_ns``: ns per element of each op's serial forward kernel (float32,
  float64), measured on 1e5 elements (in cache).  An elementwise call goes
  parallel where n * serial_ns reaches ``parallel_min_ns``: heavy formulas go
  parallel on smaller arrays.  Where ``tune`` has not measured them, the first call
  that the defaults would send parallel scales them to this CPU by sigmoid's serial
  time (``with_speed_measured``, stored in the entry; ``speed_source`` says so).
- ``backward_ratio``: (float32, float64) per op, the time of its serial backward kernel
  (``op.backward(g, x=x)``, also f' alone) over its forward's, measured beside it: from
  0.33 (celu float32: the forward's expm1 against the derivative's exp) to 2.6
  (relu_squared: one more array to read).  A backward call goes parallel where its own cost reaches the
  threshold, not the forward's (celu float64 backward on 1e4 elements took 2.4x its
  serial time in parallel, under tbb on znver5).
- ``parallel_min_ns``: per threading layer, the serial time from which a call
  that runs the parallel kernel is faster, timed through the public call (waking
  the other threads costs a few us under omp, more under tbb; the API's own cost
  of a parallel call counts too).
- ``row_parallel_min_elements``: per threading layer, the elements from which
  the row ops' parallel kernels are faster (softmax over rows of 128).
- ``short_row_max``: per row function (float32, float64), the longest row along
  the last axis that runs in blocks of rows rather than row by row; the same for
  softmax_cross_entropy's class rows.
- ``streamed_over_plain``: (float32, float64) for the probe op relu, the time of its
  parallel kernel with streaming stores over the time with plain stores, on outputs
  twice the size from which fastact streams (_config.stream_min_bytes), on all threads.
  The memory-bound kernels stream only for a dtype where it is at most
  ``_config.STREAM_MAX_RATIO``: streaming pays on some CPUs and not on others.
  Where neither ``tune`` nor an earlier process has measured it, the first call
  that would stream measures it (``with_streaming_measured``: a few tenths of a
  second, once per machine) and stores it in the entry; the defaults are then
  never applied to a large call on an untried CPU.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from . import _config

# An op without a measured cost (one added since the defaults were taken).
UNMEASURED_SERIAL_NS = (1.0, 2.0)
_T = TypeVar("_T")


@dataclass(frozen=True)
class Tuning:
    serial_ns: dict[str, tuple[float, float]]
    backward_ratio: dict[str, tuple[float, float]]
    parallel_min_ns: dict[str, float]
    row_parallel_min_elements: dict[str, int]
    short_row_max: dict[str, tuple[int, int]]
    streamed_over_plain: dict[str, tuple[float, float]]
    source: str = "defaults"  # or "tuned <date> (<layer>, <threads> threads)"
    streaming_source: str = "defaults"  # where streamed_over_plain comes from (not measured here: "defaults")
    speed_source: str = "defaults"  # where serial_ns comes from (the defaults' CPU: "defaults")

    def serial_cost(self, name: str, itemsize: int, kind: str = "forward") -> float:
        """ns per element of op ``name``'s serial ``kind`` kernel: the forward's, times
        backward_ratio for grad and backward_x; value_and_grad takes the larger of the two,
        backward_y (f' from the output, where that is cheaper) the smaller.  Other kinds
        (the gated units') count as the forward."""
        forward = self.serial_ns.get(name, UNMEASURED_SERIAL_NS)[itemsize == 8]
        if kind not in _BACKWARD_KINDS:
            return forward
        ratio = self.backward_ratio.get(name, (1.0, 1.0))[itemsize == 8]
        return forward * _BACKWARD_KINDS[kind](ratio)

    def streams(self, itemsize: int) -> bool:
        """Whether the memory-bound kernels write large outputs of this itemsize with
        streaming stores here (streamed_over_plain)."""
        return self.streamed_over_plain["relu"][itemsize == 8] <= _config.STREAM_MAX_RATIO

    @functools.cached_property
    def serial_below_ns(self) -> float:
        """Below this serial time a call is serial under every threading layer."""
        return min(self.parallel_min_ns.values())

    @functools.cached_property
    def rows_serial_below(self) -> int:
        """Below this many elements a row op or cross-entropy is serial under every layer."""
        return min(self.row_parallel_min_elements.values())


# how each kind's cost follows from the forward's and backward_ratio
_BACKWARD_KINDS: dict[str, Callable[[float], float]] = {
    "grad": lambda r: r, "backward_x": lambda r: r, "value_and_grad": lambda r: max(1.0, r),
    "backward_y": lambda r: min(1.0, r)}


def for_layer(values: dict[str, _T], layer: str | None) -> _T:
    """A per-layer threshold of a table of Tuning; workqueue (never tuned) takes tbb's,
    which _threads.go_parallel multiplies by WORKQUEUE_THRESHOLD_FACTOR."""
    return values["tbb"] if layer is None else values.get(layer, values["tbb"])


DEFAULTS = Tuning(
    # sigmoid's figures from znver4 (scaled to the user's CPU by sigmoid's time on first
    # use, so only the ratios matter); every other op's is its ratio to sigmoid measured on
    # an AMD EPYC, znver5, 1 thread, 1e5 in cache (at de73710), times sigmoid's.  The
    # ratios they replace were znver4's for kernels since rebuilt: gelu float64's was 1.9x
    # what its kernel takes now, which sent gelu float64 on 1e4 elements parallel
    # (1.44-1.6x its serial time beside a busy process)
    serial_ns={
        "sigmoid": (0.37, 1.1), "tanh": (0.62, 1.9), "log_sigmoid": (0.98, 2.5), "relu": (0.1, 0.32),
        "leaky_relu": (0.17, 0.33), "relu6": (0.099, 0.32), "hardtanh": (0.11, 0.33), "elu": (0.73, 1.4),
        "selu": (0.73, 1.4), "celu": (0.96, 1.7), "gelu": (1.2, 3.5), "gelu_tanh": (1.7, 2.7), "silu": (0.45, 1.2),
        "mish": (2.0, 1.9), "softplus": (1.1, 2.7), "softsign": (0.2, 0.41), "hardsigmoid": (0.15, 0.35),
        "hardswish": (0.21, 0.42), "rrelu": (0.17, 0.34), "hardshrink": (0.12, 0.33), "softshrink": (0.22, 0.33),
        "threshold": (0.13, 0.34), "relu_squared": (0.12, 0.33), "quick_gelu": (0.7, 1.8), "tanhshrink": (1.2, 3.0),
    },
    # measured on an AMD EPYC, znver5, 1 thread, 1e5 in cache (the ratios travel between
    # CPUs better than the times)
    backward_ratio={
        "sigmoid": (1.24, 1.13), "tanh": (1.25, 1.05), "tanhshrink": (0.6, 0.71), "log_sigmoid": (0.38, 0.44),
        "relu": (2.25, 1.61), "leaky_relu": (1.35, 1.58), "rrelu": (1.52, 1.58), "relu6": (2.19, 1.63),
        "hardtanh": (2.33, 1.66), "hardshrink": (1.89, 1.6), "softshrink": (1.17, 1.61), "threshold": (2.14, 1.63),
        "relu_squared": (2.56, 1.67), "elu": (0.68, 0.65), "selu": (0.68, 0.66), "celu": (0.33, 0.54),
        "gelu": (1.05, 1.24), "gelu_tanh": (0.77, 0.88), "silu": (1.42, 1.3), "quick_gelu": (1.22, 1.19),
        "mish": (1.34, 1.31), "softplus": (0.4, 0.44), "softsign": (1.21, 1.46), "hardsigmoid": (1.61, 1.47),
        "hardswish": (1.43, 1.39),
    },
    # omp's crossover was 5 us on znver4, timed on the bare kernel; through the API (tune's
    # measure, the busy guard off) both layers cross at 20-22 us on znver5: omp
    # 19.7-22.5, tbb 20.8-21.5 (sigmoid float32 on 1e5, 16 us serial, took 17.5-19.3 us
    # on two omp threads)
    parallel_min_ns={"omp": 20_000, "tbb": 20_000},
    row_parallel_min_elements={"omp": 1 << 16, "tbb": 1 << 16},
    short_row_max={"softmax": (24, 20), "softmax_backward": (24, 8), "log_softmax": (48, 32),
                   "log_softmax_backward": (24, 16),
                   # not measured there: softmin's kernels are softmax's reading -x
                   "softmin": (24, 20), "softmin_backward": (24, 8),
                   # its value_and_grad's kernel (the loss alone gains more from blocks); measured
                   # on znver4 (2**20 elements, blocks over rows: float32 rows of 96 0.86-0.92x,
                   # 128 0.95-1.0x; float64 96 0.84x, 128 0.75-0.9x, forward 0.75-1.02x)
                   "softmax_cross_entropy": (96, 96)},
    # relu over 1e7 elements, 2 threads, through the API: float32 0.80-0.98x, float64
    # 0.74-0.86x (znver4).  On znver5 (32 MiB of L3, 2 cores) the kernels on 64 MiB took
    # float32 0.77-0.99x and float64 0.99-1.88x, and float64 relu 1.07-1.5x its plain time.
    streamed_over_plain={"relu": (0.89, 0.8)},
    source="defaults (measured on AMD EPYCs, znver4 and znver5, 2 cores)",
)


def tuning_dir() -> Path:
    explicit = os.environ.get("FASTACT_TUNING_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fastact"


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo, else what platform knows)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def numba_target() -> str:
    """The CPU Numba compiles for (NUMBA_CPU_NAME, or the host's as LLVM names it)."""
    import llvmlite.binding as llvm  # type: ignore[import-untyped]
    import numba

    config: Any = numba.config  # its settings are set at run time: numba's stubs lack them
    return str(config.CPU_NAME or llvm.get_host_cpu_name())


def machine_key() -> str:
    """What a tuning entry is measured for: CPU model, Numba's target, cores, vector width,
    interleave count, version."""
    from . import __version__

    return (f"{cpu_model()} / {numba_target()} / {os.cpu_count()} cores / vector width {_config.VECTOR_WIDTH}"
            f" / interleave {_config.INTERLEAVE or 'auto'} / fastact {__version__}")


def _read(path: Path) -> dict[Any, Any]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _shaped_like(value: Any, default: Any) -> bool:
    """Whether a stored value has the default's shape: a number, or a list of as many numbers."""
    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
    if isinstance(default, tuple):
        return isinstance(value, (list, tuple)) and len(value) == len(default) and all(map(number, value))
    return number(value)


def _from_entry(entry: dict[Any, Any]) -> Tuning:
    """The defaults overlaid with a stored entry's values (unknown or malformed parts ignored)."""
    tables = {}
    for table in (f.name for f in fields(Tuning) if isinstance(getattr(DEFAULTS, f.name), dict)):
        values = dict(getattr(DEFAULTS, table))
        stored = entry.get(table, {})
        if isinstance(stored, dict):
            for name, value in stored.items():
                if _shaped_like(value, next(iter(values.values()))):
                    values[name] = tuple(value) if isinstance(value, (list, tuple)) else value
        tables[table] = values
    source = str(entry.get("source", "tuned"))
    stored_streaming = entry.get("streamed_over_plain")
    measured = isinstance(stored_streaming, dict) and _shaped_like(stored_streaming.get("relu"),
                                                                    DEFAULTS.streamed_over_plain["relu"])
    streaming = str(entry.get("streaming_source", source)) if measured else DEFAULTS.streaming_source
    stored_costs = entry.get("serial_ns")
    speed = (str(entry.get("speed_source", source)) if isinstance(stored_costs, dict) and stored_costs
             else DEFAULTS.speed_source)
    return Tuning(**tables, source=source, streaming_source=streaming, speed_source=speed)


# What to call when this process's tuning changes: the tables of small calls built from it (_api)
ON_CHANGE: list[Callable[[], None]] = []


# what current() gives instead of this machine's thresholds, while measure_parallel_min_ns
# sends every call parallel (_forcing)
_forced: list[Tuning] = []


@functools.cache
def current() -> Tuning:
    """This machine's thresholds: its stored entry over the defaults."""
    if _forced:
        return _forced[-1]
    if _defaults_asked():
        return DEFAULTS
    try:
        key = machine_key()
    except Exception:  # no numba: nothing runs in parallel anyway
        return DEFAULTS
    entry = _read(tuning_dir() / "tuning.json").get(key)
    if _measured_here:  # measured by this process where it could not store it
        entry = {"source": DEFAULTS.source, **(entry if isinstance(entry, dict) else {}), **_measured_here}
    return _from_entry(entry) if isinstance(entry, dict) else DEFAULTS


def _changed() -> None:
    current.cache_clear()
    for changed in ON_CHANGE:
        changed()


@contextlib.contextmanager
def _forcing(tuning: Tuning) -> Iterator[None]:
    """``tuning`` as current() in this block, and the routes built on it (ON_CHANGE)."""
    _forced.append(tuning)
    _changed()
    try:
        yield
    finally:
        _forced.pop()
        _changed()


def _write(path: Path, stored: dict[Any, Any]) -> None:
    tmp = path.with_name(f"tuning.json.{os.getpid()}")
    tmp.write_text(json.dumps(stored, indent=1, sort_keys=True))
    os.replace(tmp, path)  # atomic: another process reads the old file or the new one


# Measuring streaming on first use: repeat (3 x 2 samples of each kernel and dtype, on
# 2 x 64 MiB where the bound is 32 MiB).  What this process measured (its entry could
# not be stored: a read-only cache directory), and one measurement at a time.
CALIBRATION_REPEAT = 2
_measured_here: dict[str, Any] = {}
_calibrating = threading.Lock()


def with_streaming_measured() -> Tuning:
    """current(), with streamed_over_plain measured on this CPU: where neither ``tune`` nor
    an earlier process has, it is measured now (measure_streamed_over_plain, with
    CALIBRATION_REPEAT; a few tenths of a second once the kernels are compiled) and stored
    in this machine's entry (kept in this process where it cannot be stored).  The
    defaults stand with FASTACT_TUNING=defaults.  Called where a call would stream."""
    def measure() -> dict[str, Any]:
        from . import _threads

        return {"streamed_over_plain": measure_streamed_over_plain(CALIBRATION_REPEAT),
                "streaming_source": f"measured on first use {time.strftime('%Y-%m-%d %H:%M')} "
                                    f"({_threads.get_num_threads()} threads)"}

    return _on_first_use("streaming_source", measure)


def with_speed_measured() -> Tuning:
    """current(), with serial_ns scaled to this CPU where neither ``tune`` nor an earlier
    process has measured it (measure_speed: tens of ms once sigmoid's ufunc is compiled),
    stored as with_streaming_measured stores.  The defaults' costs were measured on
    another CPU: on znver5 the ops ran in 0.3-0.65x the defaults' (znver4's) times, so
    calls of 1e4-4e4 elements went parallel where that made them up to 1.5x slower.
    Called by the first call that may go parallel.  Without a compiler (no numba, or
    NUMBA_DISABLE_JIT) nothing runs in parallel, and nothing is measured."""
    from . import _backend

    if _backend.numba is None or _backend.numba.config.DISABLE_JIT:
        return current()
    return _on_first_use("speed_source", lambda: {
        "serial_ns": measure_speed(3 * CALIBRATION_REPEAT),
        "speed_source": f"scaled on first use {time.strftime('%Y-%m-%d %H:%M')} by sigmoid's serial time"})


def _on_first_use(field: str, measure: Callable[[], dict[str, Any]]) -> Tuning:
    """current(), after ``measure()`` where ``field`` (a source of Tuning) is still the
    defaults': its values stored in this machine's entry, or kept in this process where
    they cannot be stored; one measurement at a time."""
    tuning = current()
    if getattr(tuning, field) != getattr(DEFAULTS, field) or _defaults_asked():
        return tuning
    with _calibrating:
        tuning = current()
        if getattr(tuning, field) != getattr(DEFAULTS, field):
            return tuning  # another thread measured it meanwhile
        measured = measure()
        try:
            key, path = machine_key(), tuning_dir() / "tuning.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            stored = _read(path)
            entry = stored[key] if isinstance(stored.get(key), dict) else {"source": DEFAULTS.source}
            stored[key] = {**entry, **measured}
            _write(path, stored)
        except OSError:
            _measured_here.update(measured)
        _changed()
        return current()


def _defaults_asked() -> bool:
    return os.environ.get("FASTACT_TUNING") == "defaults"


# --- measuring -------------------------------------------------------------------------


def _median_s(impls: dict[Any, Any], repeat: int) -> dict[str, float]:
    """Median seconds per call of each callable, taking turns sample by sample (bench's timing)."""
    from .bench import median_times

    return {name: ms / 1e3 for name, ms in median_times(impls, repeat).items()}


def measure_serial_ns(repeat: int, progress: Any = lambda msg: None,
                      names: Any = None) -> dict[str, tuple[float, float]]:
    """serial_ns of the ops ``names`` (every elementwise op by default)."""
    from . import _activations, _ufuncs

    n = 100_000
    costs = {}
    for name in names or _activations.ELEMENTWISE:
        act = _activations.ELEMENTWISE[name]
        progress(f"measuring the serial cost of {name}")
        ufunc = _ufuncs.elementwise_ufunc(name, "forward")  # what serial calls run
        params = tuple(p.default for p in act.params)
        pair: list[float] = []
        for dtype in (np.float32, np.float64):
            x = np.random.default_rng(0).normal(0, 4, n).astype(dtype)
            out = np.empty_like(x)
            seconds = _median_s({name: lambda: ufunc(x, *params, out)}, repeat)[name]
            pair.append(round(seconds / n * 1e9, 3))
        costs[name] = (pair[0], pair[1])
    return costs


def measure_speed(repeat: int) -> dict[str, tuple[float, float]]:
    """The defaults' serial_ns scaled to this CPU, per dtype by the ratio of sigmoid's serial
    time here to the defaults' (one probe, not every op: a fraction of tune's time)."""
    here = measure_serial_ns(repeat, names=("sigmoid",))["sigmoid"]
    scale = [m / d for m, d in zip(here, DEFAULTS.serial_ns["sigmoid"])]
    return {name: (round(f32 * scale[0], 3), round(f64 * scale[1], 3)) for name, (f32, f64) in DEFAULTS.serial_ns.items()}


def measure_backward_ratio(repeat: int, progress: Any = lambda msg: None) -> dict[str, tuple[float, float]]:
    """backward_ratio: each op's serial backward_x ufunc against its forward one, timed in
    turns on 1e5 elements (in cache)."""
    from . import _activations, _ufuncs

    n = 100_000
    ratios = {}
    for name, act in _activations.ELEMENTWISE.items():
        progress(f"measuring the serial cost of {name}.backward")
        forward, backward = (_ufuncs.elementwise_ufunc(name, kind) for kind in ("forward", "backward_x"))
        params = tuple(p.default for p in act.params)
        pair: list[float] = []
        for dtype in (np.float32, np.float64):
            rng = np.random.default_rng(0)
            x, g = rng.normal(0, 4, n).astype(dtype), rng.normal(0, 1, n).astype(dtype)
            out = np.empty_like(x)
            times = _median_s({"forward": functools.partial(forward, x, *params, out),
                               "backward": functools.partial(backward, g, x, *params, out)}, repeat)
            pair.append(round(times["backward"] / times["forward"], 2))
        ratios[name] = (pair[0], pair[1])
    return ratios


def _crossover(sizes: Any, serial: Any, parallel: Any, repeat: int) -> Any:
    """The smallest size from which parallel() beats serial() at it and every larger size
    (None where it never does), and the serial seconds per call at that size."""
    results = []
    for n in sizes:
        s_fn, p_fn = serial(n), parallel(n)
        times = _median_s({"serial": s_fn, "parallel": p_fn}, repeat)
        results.append((n, times["serial"], times["parallel"]))
    found = None
    for n, ts, tp in reversed(results):
        if tp >= ts:
            break
        found = (n, ts)
    return found


def measure_parallel_min_ns(repeat: int) -> float | None:
    """The serial time (ns) of sigmoid float32's ufunc (which serial calls run) at the size
    from which ``fastact.sigmoid`` running its parallel kernel is faster.  The parallel
    side is the public call, with every call sent parallel (_forcing): what the API adds
    to a parallel call (its checks, the decision, the dispatch; about 6 us on znver5)
    counts.  Timing the bare parallel kernel put the crossover at 10 us of serial time
    under tbb there, where calls through the API paid from 20-25 us."""
    from . import _threads, _ufuncs, sigmoid

    ufunc = _ufuncs.elementwise_ufunc("sigmoid", "forward")
    arrays: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def make(call: Any) -> Callable[..., Any]:
        def call_at(n: Any) -> Any:
            x, out = arrays.setdefault(n, (np.random.default_rng(0).normal(0, 4, n).astype(np.float32),
                                           np.empty(n, np.float32)))
            return lambda: call(x, out)
        return call_at

    always = replace(current(), parallel_min_ns=dict.fromkeys(DEFAULTS.parallel_min_ns, 0.0),
                     speed_source="every call parallel")
    with _forcing(always), _threads.unguarded():
        found = _crossover([1 << k for k in range(9, 21)], make(ufunc), make(lambda x, out: sigmoid(x, out=out)), repeat)
    return None if found is None else round(found[1] * 1e9)


def measure_row_parallel_min_elements(repeat: int) -> int | None:
    """The elements from which softmax's parallel rows kernel beats the serial one (rows of 128)."""
    from . import _kernels

    serial, parallel = (_kernels.row_kernel("softmax", p, form="rows") for p in (False, True))
    arrays: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def make(kernel: Any) -> Callable[..., Any]:
        def call_at(n: Any) -> Any:
            x, out = arrays.setdefault(n, (np.random.default_rng(0).normal(0, 4, (n // 128, 128)).astype(np.float32),
                                           np.empty((n // 128, 128), np.float32)))
            return lambda: kernel(x, out)
        return call_at

    found = _crossover([1 << k for k in range(10, 22)], make(serial), make(parallel), repeat)
    return None if found is None else found[0]


# Up to 256: on znver5 (one thread, in cache) the blocks form beat the rows form at every
# row length up to 256 (log_softmax float32 rows of 128: 55 against 107 ns a row), where
# the defaults, measured on znver4, stop at 48.
SHORT_ROW_CANDIDATES = (2, 4, 6, 8, 12, 16, 20, 24, 32, 40, 48, 64, 96, 128, 192, 256)


def measure_short_row_max(repeat: int, parallel: bool, progress: Any = lambda msg: None) -> dict[str, tuple[int, int]]:
    """Per row function and dtype, the longest row (of SHORT_ROW_CANDIDATES) for which the
    blocks form beat the rows form on 2**20 elements."""
    from . import _kernels, _rowops

    found = {}
    for name, fn in _rowops.ROW_FUNCTIONS.items():
        progress(f"measuring the short rows of {name}")
        rows_kernel = _kernels.row_kernel(name, parallel, form="rows")
        blocks_kernel = _kernels.row_kernel(name, parallel, form="blocks")
        pair = []
        for dtype in (np.float32, np.float64):
            longest = 1
            for n in SHORT_ROW_CANDIDATES:
                shape = ((1 << 20) // n, n)
                rng = np.random.default_rng(0)
                ins = [rng.normal(0, 2, shape).astype(dtype) for _ in fn.inputs]
                if len(ins) == 2:  # backward: (grad_out, y) with y a softmax (or log_softmax) output
                    ins[1] = np.abs(ins[1]) / np.abs(ins[1]).sum(axis=1, keepdims=True)
                    if name.startswith("log_"):
                        ins[1] = np.log(ins[1]).astype(dtype)
                out = np.empty(shape, dtype)
                times = _median_s({"rows": lambda: rows_kernel(*ins, out), "blocks": lambda: blocks_kernel(*ins, out)},
                                  repeat)
                if times["blocks"] < times["rows"]:
                    longest = n
            pair.append(longest)
        found[name] = (pair[0], pair[1])
    progress("measuring the short rows of softmax_cross_entropy")
    found["softmax_cross_entropy"] = _measure_loss_short_row_max(repeat, parallel)
    return found


def _measure_loss_short_row_max(repeat: int, parallel: bool) -> tuple[int, int]:
    """measure_short_row_max's figure for softmax_cross_entropy.value_and_grad's kernel."""
    from . import _kernels

    kernel = _kernels.loss_kernel("xent_index", parallel)
    pair = []
    for dtype in (np.float32, np.float64):
        longest = 1
        for n in SHORT_ROW_CANDIDATES:
            rows = (1 << 20) // n
            rng = np.random.default_rng(0)
            x, labels = rng.normal(0, 2, (rows, n)).astype(dtype), rng.integers(0, n, rows)
            grad, losses = np.empty_like(x), np.empty(rows)
            times = _median_s({form: functools.partial(kernel, x, labels, True, grad, 1.0, losses, form == "blocks")
                               for form in ("rows", "blocks")}, repeat)
            if times["blocks"] < times["rows"]:
                longest = n
        pair.append(longest)
    return pair[0], pair[1]


def measure_streamed_over_plain(repeat: int) -> dict[str, tuple[float, float]]:
    """streamed_over_plain: relu's parallel kernel with streaming stores against the one
    with plain stores (float32, float64), 64-byte aligned outputs of twice the bound, 3 *
    repeat samples (a call takes milliseconds; the ratio moved by 0.15 between runs of 7)."""
    import math

    from . import _kernels
    from ._scalar import STREAM_ALIGN

    bound = _config.stream_min_bytes()
    nbytes = int(2 * (bound if math.isfinite(bound) and bound > 0 else _config.STREAM_DEFAULT_BYTES))
    streamed, plain = (_kernels.elementwise_kernel("relu", "forward", True, streamed=s) for s in (True, False))
    ratios = []
    for dtype in (np.float32, np.float64):
        n = nbytes // np.dtype(dtype).itemsize
        x, out = (_aligned(n, dtype, STREAM_ALIGN) for _ in range(2))
        x[:] = np.resize(np.random.default_rng(0).normal(0, 4, 1 << 16), n)  # (drawing all n took 0.4 s)
        times = _median_s({"streamed": functools.partial(streamed, x, out, ()),
                           "plain": functools.partial(plain, x, out, ())}, 3 * repeat)
        ratios.append(round(times["streamed"] / times["plain"], 3))
    return {"relu": (ratios[0], ratios[1])}


def _aligned(n: int, dtype: Any, alignment: int) -> np.ndarray:
    """A new array of n elements whose first is at a multiple of ``alignment`` bytes."""
    itemsize = np.dtype(dtype).itemsize
    buffer = np.empty(n + alignment // itemsize, dtype)
    skip = (-buffer.ctypes.data % alignment) // itemsize
    return buffer[skip:skip + n]


def tune(repeat: int = 7, progress: Any = lambda msg: None) -> tuple[str, dict[Any, Any]]:
    """Measure this machine's thresholds and store them; (key, stored entry)."""
    from . import _threads

    layer = _threads.threading_layer() or "tbb"
    threads = _threads.get_num_threads()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load > 0.5:
        progress(f"the machine is busy (load {load:.1f}): other processes' threads slow the parallel kernels, "
                 "so the thresholds come out higher than on an idle machine")
    key = machine_key()
    path = tuning_dir() / "tuning.json"
    path.parent.mkdir(parents=True, exist_ok=True)  # before measuring: an unusable place fails at once
    stored = _read(path)
    entry: dict[str, Any] = stored[key] if isinstance(stored.get(key), dict) else {}
    entry["serial_ns"] = measure_serial_ns(repeat, progress)
    entry.pop("speed_source", None)  # measured op by op: the entry's source says when
    entry["backward_ratio"] = measure_backward_ratio(repeat, progress)
    if threads > 1 and layer in ("omp", "tbb"):  # workqueue, the last resort, scales tbb's (see for_layer)
        progress("measuring the parallel crossover of the elementwise ops")
        ns = measure_parallel_min_ns(repeat)
        progress("measuring the parallel crossover of the row ops")
        rows = measure_row_parallel_min_elements(repeat)
        # never faster in parallel: as good as never going parallel
        entry.setdefault("parallel_min_ns", {})[layer] = ns if ns is not None else 10 ** 12
        entry.setdefault("row_parallel_min_elements", {})[layer] = rows if rows is not None else 1 << 40
    entry["short_row_max"] = measure_short_row_max(repeat, threads > 1, progress)
    if threads > 1:  # the streamed kernels run on the parallel path only
        progress("measuring streaming stores against plain ones")
        entry["streamed_over_plain"] = measure_streamed_over_plain(repeat)
        entry.pop("streaming_source", None)  # measured with the rest: the entry's source says when
    entry["source"] = f"tuned {time.strftime('%Y-%m-%d %H:%M')} ({layer}, {threads} threads, load {load:.1f})"
    stored[key] = entry
    _write(path, stored)
    _changed()
    return key, entry


def describe(tuning: Tuning) -> str:
    lines = [f"source: {tuning.source}", f"streaming: {tuning.streaming_source}", f"serial costs: {tuning.speed_source}"]
    for table, values in asdict(tuning).items():
        if isinstance(values, dict):
            lines.append(f"{table}:")
            lines += [f"  {name}: {value}" for name, value in values.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m fastact tune",
        description="Measure where calls go parallel, which rows are short and whether streaming stores pay "
                    "on this CPU, and store it "
                    f"in {tuning_dir() / 'tuning.json'} (FASTACT_TUNING_DIR to change).")
    parser.add_argument("--quick", action="store_true", help="3 samples per figure instead of 7")
    parser.add_argument("--show", action="store_true", help="print the thresholds in use here, and measure nothing")
    args = parser.parse_args(argv)
    if args.show:
        print(f"machine: {machine_key()}")
        print(describe(current()))
        return 0
    try:
        key, _ = tune(3 if args.quick else 7, progress=lambda msg: print(msg, file=sys.stderr))
    except OSError as exc:
        print(f"python -m fastact tune: cannot store the results: {exc}", file=sys.stderr)
        return 1
    print(f"stored for {key} in {tuning_dir() / 'tuning.json'}:")
    print(describe(current()))
    return 0
