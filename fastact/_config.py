"""Process-wide settings: the named fast-math flag sets and the size thresholds.

Every Numba kernel in fastact takes its ``fastmath`` argument from here, so
which kernels may reassociate and which must not is visible in one place.
"""

from __future__ import annotations

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

# An elementwise call runs the parallel kernel where the serial one would take
# at least this long (n times the op's serial_ns), per Numba threading layer.
# Waking the other thread costs about 1.5-3 us under omp, 4-13 under tbb (it
# varies from run to run) and 80-100 under workqueue (no tbb, no OpenMP).  Under
# omp two threads beat one from a serial time of about 4 us: sigmoid on 1e4
# float32 took 3.9 us on one thread and 3.5 on two, elu on 5e3 4.2 against 3.7;
# through the API, from 20 to 5 us, gelu on 1e4 went from 16.0 to 12.2 us, elu
# on 2e4 from 17.7 to 13.1, sigmoid on 5e4 from 20.4 to 14.3.  Under tbb 12 us
# won some calls and lost others (elu on 1e4 10.0 -> 11.5 us, sigmoid on 5e4
# 20.3 -> 17.2).  Under workqueue gelu on 1e5 took 138 us on one thread and 148
# on two, on 3e5 411 against 286.  Under tbb gelu float32 goes parallel from
# 14000 elements, sigmoid float32 from 54000, relu float32 from 240000.
PARALLEL_MIN_NS = {"omp": 5_000, "tbb": 20_000, "workqueue": 200_000}

# The element counts below were measured under tbb and omp; under workqueue
# each is this many times higher (relu on 1e6 elements took 86 us on one thread,
# 175 on two).
WORKQUEUE_THRESHOLD_FACTOR = 10

# The binary cross-entropy loss goes parallel from this many elements.
PARALLEL_MIN_ELEMENTS = 1 << 17

# Row kernels go parallel when the whole array has at least this many elements
# and there is more than one row.
ROW_PARALLEL_MIN_ELEMENTS = 1 << 16

# The softmax ops' lanes kernels (short rows, axes other than the last) give each
# task up to this many lanes: on 4096x4096 along axis 0, 1024 lanes ran in
# 18.8 ms (float32), 256 in 23.9 and 128 in 24.0; memory streams best in long runs.
LANE_BLOCK = 1024

# Short rows along the last axis run in blocks of this many rows (see _kernels).
ROW_BLOCK = 256

# Along an axis with fewer than GROUPED_LANES_MAX elements after it (axis 0 of
# (1e6, 10)), the row ops run grouped lanes (see _kernels) with the largest of
# LANE_GROUPS that divides the axis length.
GROUPED_LANES_MAX = 16
LANE_GROUPS = (16, 8, 4, 2)

# Where the lanes kernels would run fewer tasks (outer indices times lane
# blocks) than there are threads, the rows are split over the threads instead
# (split lanes), if each gets at least this many (grouped) rows.
SPLIT_LANES_MIN_ROWS = 64

# Rows up to this long along the last axis run in blocks of rows (the "block"
# formulation in _kernels); longer rows along the row.  Per op and (float32,
# float64): the crossovers measured on 1e7 elements with 2 threads (n = 4, 8,
# 10, 16, 20, 24, 32, 48).  At n = 10, float32, blocks against rows: softmax 8.9
# against 16.3 ms, log_softmax 10.2 against 32.3, softmax.backward 5.4 against
# 8.2, log_softmax.backward 6.9 against 15.8; float64 softmax.backward ties at 10.
SHORT_ROW_MAX = {
    "softmax": (24, 20),
    "log_softmax": (48, 32),
    "softmax_backward": (24, 8),
    "log_softmax_backward": (24, 16),
}

# Elementwise calls whose inputs or result are of another dtype than the one
# computed in (float16, bfloat16, integers) convert this many elements at a time.
CAST_CHUNK = 1 << 16
