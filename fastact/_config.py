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

# Elementwise calls with fewer elements than this run the serial kernel:
# starting the thread pool costs more than it saves below it.
PARALLEL_MIN_ELEMENTS = 1 << 17

# Row kernels go parallel when the whole array has at least this many elements
# and there is more than one row.
ROW_PARALLEL_MIN_ELEMENTS = 1 << 16
