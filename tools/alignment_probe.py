"""Does it pay, on this CPU, to start the elementwise loops on a cache line of the output?

    python tools/alignment_probe.py [--ops relu,sigmoid,gelu] [--log2n 24] [--rounds 9]

NumPy's large arrays start 16 bytes past a 64-byte line (the allocator's header on
mmap'd pages), so every 512-bit load and store of fastact's loops straddles two lines.
This probe times one op's formula (the definition's own f, at fastact's vector width)
over 2^log2n float32 elements, serial and on all threads, in four loops:

- ``flat``: one loop over the array, as fastact's kernels run it today;
- ``aligned``: tasks of 2^14 elements that start on a 64-byte line of the output (the
  elements before the first line run apart), each task's loop a function of its own;
- ``misaligned``: the same tasks, starting 16 bytes past a line (as ``flat``);
- ``aligned+prefetch``: ``aligned``, with the input's lines prefetched 2048 elements ahead.

Measured on an Intel Xeon (2 threads, medians of 9 interleaved rounds, 2^24 float32):

    op       flat   aligned   aligned+prefetch   (ms)
    relu     2.92   2.78      2.85
    sigmoid  4.80   4.43      3.76
    silu     6.37   6.09      4.74
    tanh     6.46   6.05      4.67
    gelu     9.67   16.89     8.65   (aligned alone: 1.8x slower out of cache)

Tried in fastact's own templates (_kernels._map, _map_pair, _map_times), the same loops
gave sigmoid and tanh float32 0.76-0.82x the time, gelu 0.90x, but silu float32 1.13-1.23x
and tanh float64 1.12x, and 3-12 % more in cache (2^14 elements, serial), so the kernels
were left as they are.  The figures are wanted from the AMD EPYC too: see issue 17.
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic, register_jitable

from fastact import _activations
from fastact._config import LOOP_MATH
from fastact._scalar import full_width

TASK = 1 << 14
DISTANCE = 2048


@intrinsic
def _prefetch(typingctx, arr, idx):
    """LLVM's prefetch (read, keep in every cache level) of arr[idx]."""

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False, boundscheck=False)
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                            "llvm.prefetch.p0i8")
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(arr, idx), codegen


def loops(f):
    """(flat, tasks) over ``f(x, p)``: tasks(x, o, p, head, distance)."""

    @register_jitable
    def span(x, o, p):
        full_width()
        for i in range(x.shape[0]):
            o[i] = f(x[i], p)

    def flat(x, o, p):
        full_width()
        for i in prange(x.shape[0]):
            full_width()
            o[i] = f(x[i], p)

    def tasks(x, o, p, head, distance):
        full_width()
        n = x.shape[0]
        span(x[:head], o[:head], p)
        for t in prange(-(-(n - head) // TASK)):
            full_width()
            a, z = head + t * TASK, min(head + (t + 1) * TASK, n)
            if distance:
                for b in range(a, z, 1024):
                    e = min(b + 1024, z)
                    for j in range(b + distance, min(e + distance, n), 16):
                        _prefetch(x, j)
                    span(x[b:e], o[b:e], p)
            else:
                span(x[a:z], o[a:z], p)

    options = {"fastmath": set(LOOP_MATH), "error_model": "numpy"}
    return {parallel: (njit(parallel=parallel, **options)(flat), njit(parallel=parallel, **options)(tasks))
            for parallel in (False, True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", default="relu,sigmoid,gelu")
    parser.add_argument("--log2n", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    n = 1 << args.log2n
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    o = np.empty_like(x)
    head = (-(o.ctypes.data // 4)) % 16
    print(f"2^{args.log2n} float32 elements; x starts {x.ctypes.data % 64} bytes past a line, "
          f"out {o.ctypes.data % 64}; ms, median of {args.rounds} interleaved rounds")
    for name in args.ops.split(","):
        f = _activations.ELEMENTWISE[name].f
        for parallel, (flat, tasks) in loops(f).items():
            cases = {"flat": lambda flat=flat: flat(x, o, ()),
                     "aligned": lambda tasks=tasks: tasks(x, o, (), head, 0),
                     "misaligned": lambda tasks=tasks: tasks(x, o, (), (head + 4) % 16, 0),
                     "aligned+prefetch": lambda tasks=tasks: tasks(x, o, (), head, DISTANCE)}
            for case in cases.values():
                case()
            times: dict[str, list[float]] = {k: [] for k in cases}
            for _ in range(args.rounds):
                order = list(cases.items())
                random.shuffle(order)
                for key, case in order:
                    start = time.perf_counter()
                    case()
                    times[key].append(time.perf_counter() - start)
            cells = "  ".join(f"{k} {np.median(v) * 1e3:7.2f}" for k, v in times.items())
            print(f"{name:10s} {'threads' if parallel else 'serial ':7s}  {cells}")


if __name__ == "__main__":
    main()
