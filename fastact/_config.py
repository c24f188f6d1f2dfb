"""Process-wide settings: fast-math flag sets, vector width, structural size thresholds.

Every Numba kernel in fastact takes its ``fastmath`` argument from here, so
which kernels may reassociate and which must not is visible in one place.
"""

from __future__ import annotations

import math
import os
import platform

# LLVM fast-math flags for Numba.  ``nnan`` and ``ninf`` are never used: under
# them ``np.isnan`` folds to False and NaN/inf semantics are lost.
#
# STRICT_MATH is for scalar math (exp and the activation formulas).  It keeps
# ``contract`` (fused multiply-add is at least as exact), but not ``reassoc``:
# the range reduction, the 2**k shifter trick and the error-compensated
# division are exact only when evaluated in the written order; nor ``nsz``:
# f(-0.0) is -0.0 wherever f(0) = 0, as in PyTorch and NumPy.  LLVM keeps
# fast-math flags per instruction, so these stay strict even after the
# function is inlined into a loop compiled with LOOP_MATH.
STRICT_MATH = frozenset({"contract"})

# LOOP_MATH is for loops and reductions: ``reassoc`` lets LLVM split a row sum
# or row max over vector lanes.
LOOP_MATH = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})

# The widest vectors fastact's own kernels use, in bits: every kernel function
# carries LLVM's "prefer-vector-width" attribute with this value.  LLVM's tuning
# for Intel's AVX-512 server cores prefers 256-bit vectors (a guard against the
# clock throttling of early AVX-512 parts), so without it Numba emits half-width
# loops there; AMD's AVX-512 cores are tuned to 512 already.  The attribute is a
# preference: a CPU without AVX-512 keeps its own width.  "native" adds no
# attribute (LLVM's tuning for the CPU decides).  FASTACT_VECTOR_WIDTH sets it
# before import; it is part of every kernel's cache key.  The user's own Numba
# functions are not affected.
VECTOR_WIDTHS = ("512", "256", "native")


def _vector_width() -> str:
    width = os.environ.get("FASTACT_VECTOR_WIDTH", "512").strip().lower() or "512"
    if width not in VECTOR_WIDTHS:
        raise ValueError(f"FASTACT_VECTOR_WIDTH must be one of {VECTOR_WIDTHS!r}, got {width!r}")
    return width


VECTOR_WIDTH = _vector_width()

# How many vectors each loop of fastact's elementwise kernels and ufuncs works on per
# iteration (LLVM's interleave count; row and loss kernels keep LLVM's, see _kernels._jit).  LLVM's cost model leaves a loop with a long body at one: one
# chain of dependent operations per iteration (exp's range reduction, its series, a
# division), and the core waits on their latencies.  Four independent chains ran the
# compute-bound kernels 5-30 % faster on a Zen 5 core (sigmoid float64 at 1e4: 5.1 ->
# 4.8 us; gelu float64 21.5 -> 16.7 us; relu unchanged), and the small calls
# (N = 16, 1000) no slower.  Set through LLVM's -force-vector-interleave while Numba
# compiles them (see _vmath.interleaved), so the user's own Numba functions are not
# affected.  FASTACT_INTERLEAVE sets it before import (1-16; "auto": LLVM's choice);
# it is part of every kernel's cache key.
def _interleave() -> int:
    raw = os.environ.get("FASTACT_INTERLEAVE", "4").strip().lower() or "4"
    if raw == "auto":
        return 0
    if not raw.isdigit() or not 1 <= int(raw) <= 16:
        raise ValueError(f"FASTACT_INTERLEAVE must be an integer from 1 to 16 or 'auto', got {raw!r}")
    return int(raw)


INTERLEAVE = _interleave()

# The size thresholds below decide, through _threads.go_parallel, when a call runs
# its parallel kernel or which kernel form it takes.  The ones that are timings of
# this CPU (where elementwise and row calls go parallel, which rows are short) are
# in _tuning, measured by ``python -m fastact tune``; these are structural.

# The thresholds in this file were measured under tbb and omp; under workqueue
# each is this many times higher.
WORKQUEUE_THRESHOLD_FACTOR = 10

# The binary cross-entropy loss goes parallel from this many elements.
PARALLEL_MIN_ELEMENTS = 1 << 17

# The softmax ops' lanes kernels (short rows, axes other than the last) give each
# task up to this many lanes: memory streams best in long runs (fewer lanes ran
# slower on 4096x4096 along axis 0).
LANE_BLOCK = 1024

# Short rows along the last axis run in blocks of this many rows (see _kernels).
ROW_BLOCK = 256

# Formulas in two stages (_activations.two_stages) run over blocks of this many elements:
# the first stage's values wait in the output, in L1.  On an AMD EPYC (znver5),
# silu over 1e5 elements took 24.4, 21.1, 18.6, 18.7 and 19.2 us with blocks of
# 64, 128, 256, 512 and 1024 (27.5 in one stage).
STAGE_BLOCK = 256

# Outputs of at least stream_min_bytes() bytes are written with streaming stores
# (_kernels._streamed), in tasks of STREAM_TASK_BLOCKS blocks of STAGE_BLOCK elements,
# where the kernel is bound by memory (_api._streams).  They pass the caches and skip the
# read of each line that a store makes first: relu, leaky_relu and hardswish over 1e7
# elements, forward, grad and value_and_grad, took 0.74-0.89x the time in float64 and
# 0.81-0.98x in float32 (2 threads, AMD EPYC znver4, 32 MiB of L3; relu over 2**24 and
# 2**25: 0.71-0.87x on one and two threads).  An output that fits in the last-level
# cache, though, is then read back from memory (relu 2**22 float32, 16 MiB out and 32
# MiB moved: 1.32x the time on two threads), so the bound is the size of that cache, as
# the system gives it (32 MiB where it does not).  FASTACT_STREAM_MIN_BYTES sets it (an
# integer; "off": never).  x86-64 only (the stores and the fence are LLVM's own, but
# untried elsewhere).
#
# A kernel is bound by memory when its forward's serial cost (_tuning, measured per CPU)
# is at most STREAM_MAX_NS_PER_BYTE per byte of an element: about one core's share of
# the memory's bandwidth.  On znver4 relu (0.021 float32, 0.026 float64), leaky_relu and
# hardswish are; tanh (0.14) and gelu (0.28) are not, and ran 1.03-1.19x slower streamed.
#
# And it streams only for a dtype where streaming pays on this CPU: relu's streamed
# kernel takes at most STREAM_MAX_RATIO times its plain kernel's time, as `python -m
# fastact tune` measures it (_tuning's streamed_over_plain; the defaults are znver4's).
# On znver5 float32 streamed took 0.77-0.99x, float64 0.99-1.88x (64 MiB out, 2 threads).
STREAM_TASK_BLOCKS = 64
STREAM_MAX_NS_PER_BYTE = 0.06
STREAM_MAX_RATIO = 0.95
STREAM_DEFAULT_BYTES = 32 << 20


def _last_level_cache_bytes() -> int:
    """The size of the largest data cache, as the system gives it (0 where it does not):
    Linux's sysfs, else sysconf (glibc's, 0 in some virtual machines)."""
    sizes = [0]
    caches = "/sys/devices/system/cpu/cpu0/cache"
    try:
        indices = [name for name in os.listdir(caches) if name.startswith("index")]
    except OSError:
        indices = []
    for index in indices:
        try:
            with open(os.path.join(caches, index, "type")) as kind, open(os.path.join(caches, index, "size")) as size:
                text = size.read().strip().upper()
                if kind.read().strip() != "Instruction" and text:
                    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1], 1)
                    sizes.append(int(text.rstrip("KMG")) * scale)
        except (OSError, ValueError):
            pass
    for name in ("SC_LEVEL4_CACHE_SIZE", "SC_LEVEL3_CACHE_SIZE", "SC_LEVEL2_CACHE_SIZE"):
        try:
            sizes.append(int(os.sysconf(name)))
        except (ValueError, OSError, AttributeError):
            pass
    return max(sizes)


def stream_min_bytes() -> float:
    """The output size from which the elementwise kernels write with streaming stores
    (inf: never)."""
    setting = os.environ.get("FASTACT_STREAM_MIN_BYTES", "").strip().lower()
    if setting == "off":
        return math.inf
    if setting:
        try:
            return max(int(setting), 0)
        except ValueError:
            raise ValueError(f"FASTACT_STREAM_MIN_BYTES must be a number of bytes or 'off', got {setting!r}") from None
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return math.inf
    return _last_level_cache_bytes() or STREAM_DEFAULT_BYTES

# The gated units' parallel kernels give each task this many outputs (whole rows
# or pieces of rows): tasks of equal size whatever the row length.
GATED_TASK = 1 << 14

# bias= (see _bias): the parallel kernels' tasks have up to BIAS_TASK elements, enough to
# pay for a task, few enough that a (1, 1e7) call spreads over the threads.  A block of
# biases followed by BIAS_PLANE_MIN elements or more runs as planes (one bias per
# plane); below it each bias is repeated into a row (short planes loop poorly).  Rows
# with a bias by column shorter than BIAS_TILE_MIN are tiled into rows of at least that
# many elements (1e6 rows of 10 ran at a quarter of the plain op's speed one by one),
# and no longer: the row of biases is read again for every row of x, and kept in L1
# (8 KB of float32) it ran 1.1x-1.3x faster than rows of 8192 (sigmoid float32,
# (65536, 128) and (1e6, 10), one and two threads, AMD EPYC znver5; float64 alike);
# for the backward, which sums the gradient by column into partial sums as long as its
# rows, BIAS_TILE_MIN_REDUCE (longer rows made it 1.5x-2x slower).  Its tasks span
# whole rows where they fit, so that each runs through memory in order (tasks of row
# pieces spaced a row apart were slower).  The backward's partial sums by column: at
# most BIAS_MAX_ROW_BLOCKS row blocks, and at most BIAS_PARTIAL_ELEMENTS in all: fresh
# memory each call, whose pages the system clears (with 1 << 22, 32 MB on 512 x 32768
# float32, the backward took 11.0 ms on two threads; 7.0 with 1 << 18, znver5).  Rows
# are summed BIAS_GROUP at a time plainly before a compensated add (within 1.5 eps of
# their sum of magnitudes).  None depends on the thread count: the sums' bits do not.
BIAS_TASK = 1 << 14
BIAS_PLANE_MIN = 256
BIAS_TILE_MIN = 2048
# The formulas in two stages (_activations.two_stages) run in two stages with a bias by
# column on pieces of rows shorter than BIAS_STAGED_MAX (every tiled row), in one
# stage on longer ones: the second stage reads the biases again, and a row of them
# that no longer stays in L1 costs more than the stages save.  znver5, two threads,
# float32, two stages against one: silu and sigmoid 0.85-0.98x on 65536 x 128 and
# 1000 x 1000 (rows tiled to 2048 and 3000), 1.02-1.46x on 4096 x 4096 and 512 x 32768;
# one thread, in cache, 0.77-0.86x on 100 x 1000.
BIAS_STAGED_MAX = 2 * BIAS_TILE_MIN
BIAS_TILE_MIN_REDUCE = 1024
BIAS_MAX_ROW_BLOCKS = 64
BIAS_PARTIAL_ELEMENTS = 1 << 18
BIAS_GROUP = 4

# Along an axis with fewer than GROUPED_LANES_MAX elements after it (axis 0 of
# (1e6, 10)), the row ops run grouped lanes (see _kernels) with the largest of
# LANE_GROUPS that divides the axis length.
GROUPED_LANES_MAX = 16
LANE_GROUPS = (16, 8, 4, 2)

# Where the lanes kernels would run fewer tasks (outer indices times lane
# blocks) than there are threads, the rows are split over the threads instead
# (split lanes), if each gets at least this many (grouped) rows.
SPLIT_LANES_MIN_ROWS = 64


# Elementwise calls whose inputs or result are of another dtype than the one
# computed in (float16, bfloat16, integers) convert this many elements at a time.
CAST_CHUNK = 1 << 16

# softmax_cross_entropy with options: rows per task of its kernel, which share one scratch
# row (the capped logits); a row alone would allocate it per row.
LOSS_ROW_BLOCK = 64

# binary_cross_entropy_with_logits: elements per task of its kernel.  Each task sums its
# losses piece by piece in vectorised loops; the tasks' totals are then added in order,
# so the total is the same on any thread count.
LOSS_ELEMENT_BLOCK = 1 << 13
# ... and elements per piece: a task's rows are a piece long (one of losses, and with
# weights two more: at most 24 KiB in float64 per thread), so that the loss allocates
# little beside its outputs (tests/test_fused.py allows 64 KiB; rows as long as a task
# went over).
# Pieces of 256 took the weighted loss 1.3x the time (znver5, 1e6 float32).
LOSS_PIECE = 1 << 10

# logsumexp along an axis that is not the last reads the array as it lies, its lanes
# side by side (_kernels._reduce_lanes), where at least this many lanes follow the axis;
# with fewer, the lanes loops are too short and the axis is moved last (a copy).
# Measured on znver5 only (axis 0 of 2**19 elements, one thread, lanes against moved):
# 8 lanes 1.09 against 0.39 ms (float32), 16 lanes 0.54 against 0.54, 32 lanes 0.36
# against 0.63 (float64 alike).
LANES_REDUCTION_MIN = 32
