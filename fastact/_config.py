"""Process-wide settings: the named fast-math flag sets and the size thresholds.

Every Numba kernel in fastact takes its ``fastmath`` argument from here, so
which kernels may reassociate and which must not is visible in one place.
"""

from __future__ import annotations

# LLVM fast-math flags for Numba.  ``nnan`` and ``ninf`` are never used: under
# them ``np.isnan`` folds to False and NaN/inf semantics are lost.
#
# STRICT_MATH is for scalar math (exp and the activation formulas).  It keeps
# ``contract`` (fused multiply-add is at least as exact) and ``nsz``, but not
# ``reassoc``: the range reduction, the 2**k shifter trick and the
# error-compensated division are exact only when evaluated in the written
# order.  LLVM keeps fast-math flags per instruction, so these stay strict even
# after the function is inlined into a loop compiled with LOOP_MATH.
STRICT_MATH = frozenset({"nsz", "contract"})

# LOOP_MATH is for loops and reductions: ``reassoc`` lets LLVM split a row sum
# or row max over vector lanes.
LOOP_MATH = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})

# An elementwise call runs the parallel kernel where the serial one would take
# at least this long (n times the op's serial_ns): waking the thread pool costs
# 3-10 us, and 2 threads beat one from a serial time of 10-30 us (measured per
# op on 2e3..1e5 elements).  gelu float32 goes parallel from 14000 elements,
# sigmoid float32 from 54000, relu float32 from 240000.
PARALLEL_MIN_NS = 20_000

# Numba's workqueue layer (no tbb, no OpenMP) takes 80-100 us to wake its threads
# here, so under it every parallel threshold (PARALLEL_MIN_NS and the element
# counts below) is this many times higher: gelu float32 on 1e5 elements ran in
# 138 us on one thread and 148 on two, on 3e5 in 411 against 286; relu on 1e6 in
# 86 against 175.
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
