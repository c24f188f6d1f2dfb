"""NumPy ufuncs and gufuncs, generated from the definitions in ``_activations``.

dask and xarray apply a ufunc through ``__array_ufunc__``: block by block, or
around the coordinates.  Each elementwise kernel kind has a real ufunc
(Numba's ``@vectorize``) whose inputs are the arrays and then the op's
parameters, and softmax / log_softmax have gufuncs over one core dimension.
Each is compiled on first use and cached on disk.

The ufuncs name this module as theirs and it looks them up by name, so they
pickle by reference (dask.distributed sends them to its workers that way).
"""

from __future__ import annotations

import functools
import platform
from typing import Any

import numpy as np
from llvmlite import ir  # type: ignore[import-untyped]
from numba import carray, cfunc, guvectorize, types  # type: ignore[attr-defined]
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np import arrayobj
from numba.np.ufunc import _internal  # type: ignore[attr-defined]
from numba.np.ufunc.ufuncbuilder import parse_identity

from . import _activations, _backend, _tuning
from ._config import LOOP_MATH, STAGE_BLOCK, STRICT_MATH
from ._kernels import cache_token, is_short_row, staged_loop
from ._rowops import ROW_FUNCTIONS
from ._scalar import full_width
from ._vmath import interleaved

# --- the floating-point status, and strided views, for the ufunc loops ---------------
# x86-64 keeps the SSE status flags in MXCSR, read and written by one instruction
# each; elsewhere the C library's fegetenv/fesetenv save and restore the whole FP
# environment (an fenv_t, at most _FENV_BYTES on the platforms Numba supports).

_FENV_BYTES = 256
_X86_64 = platform.machine().lower() in ("x86_64", "amd64")


def _call_void(builder: Any, name: str, arg: Any) -> None:
    fnty = ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer()])
    builder.call(cgutils.get_or_insert_function(builder.module, fnty, name), [arg])  # type: ignore[no-untyped-call]


@intrinsic
def fp_status(typingctx: Any) -> Any:
    """Saves the FP status flags (with the control bits) in a slot of the calling
    function's frame, and gives a pointer to it for restore_fp_status."""

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        slot_type = ir.IntType(32) if _X86_64 else ir.ArrayType(ir.IntType(8), _FENV_BYTES)
        slot = cgutils.alloca_once(builder, slot_type)  # type: ignore[no-untyped-call]
        ptr = builder.bitcast(slot, ir.IntType(8).as_pointer())
        _call_void(builder, "llvm.x86.sse.stmxcsr" if _X86_64 else "fegetenv", ptr)
        return ptr

    return types.voidptr(), codegen


@intrinsic
def restore_fp_status(typingctx: Any, saved: Any) -> Any:
    """Puts back the flags saved by fp_status: every flag raised since is cleared."""

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        _call_void(builder, "llvm.x86.sse.ldmxcsr" if _X86_64 else "fesetenv", args[0])
        return context.get_dummy_value()

    return types.none(types.voidptr), codegen


@intrinsic
def strided(typingctx: Any, ptr: Any, n: Any, step: Any, dtype: Any) -> Any:
    """A 1-D array view of ``n`` elements of ``dtype`` at ``ptr``, ``step`` bytes apart."""
    aryty = types.Array(dtype.dtype, 1, "A")

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        data, count, stride, _ = args
        ary = arrayobj.make_array(aryty)(context, builder)  # type: ignore[no-untyped-call]
        element = context.get_data_type(aryty.dtype)
        itemsize = context.get_constant(types.intp, context.get_abi_sizeof(element))
        arrayobj.populate_array(ary, data=builder.bitcast(data, element.as_pointer()),  # type: ignore[no-untyped-call]
                                shape=[count], strides=[stride], itemsize=itemsize, meminfo=None)
        return ary._getvalue()

    return aryty(ptr, n, step, dtype), codegen


# Numba has no variadic kernels: each ufunc's and gufunc's kernel is written out
# for its number of arrays (and parameters) from a source template.


def _made(source: str, *closure: Any) -> Any:
    """``make(*closure)`` from ``source``, compiled as code of this module: Numba's
    on-disk cache finds the kernel's entries (keyed by its closure: the formula, the
    token) again in the next process only through the file and the module's name,
    whose globals it rebuilds (np and is_short_row are among them)."""
    namespace: dict[Any, Any] = {"__name__": __name__, "np": np, "is_short_row": is_short_row, "full_width": full_width,
                       "carray": carray, "strided": strided, "fp_status": fp_status,
                       "restore_fp_status": restore_fp_status}
    exec(compile(source, __file__, "exec"), namespace)  # noqa: S102 - built from the templates here
    return namespace["make"](*closure)

# Each elementwise ufunc's inner loops are fastact's own: Numba ``@cfunc``\s with
# NumPy's loop signature, one per dtype, made into a ufunc the way Numba's
# ``@vectorize`` makes one (``_internal.fromfunc``).  Written here rather than
# generated by ``@vectorize`` so that a loop can leave the floating-point status
# flags as it found them: NumPy checks the flags after every ufunc call, and the
# formulas raise them where the compiled code compares a NaN (a max, a select)
# or computes a branch whose result it discards (tanh's exp at inf).  The ops
# promise no warnings for any finite or infinite input; with the flags restored
# the ufuncs keep it without an errstate, which costs more than a small call.
# A loop over unit-stride arrays with scalar parameters is vectorised; other
# strides and per-element parameters take a strided loop.

_LOOP_SIGNATURE = types.void(types.CPointer(types.voidptr),  # type: ignore[no-untyped-call]
                             types.CPointer(types.intp), types.CPointer(types.intp), types.voidptr)  # type: ignore[no-untyped-call]

_UFUNC_LOOP_TEMPLATE = """
def make(fns, token, dtype, item):
    {fns} = fns
    def loop(args, dims, steps, data):
        token
        full_width()
        status = fp_status()
        n = dims[0]
        if n > 0:
            if {unit_strides}:
{contiguous}
{in_place}
{staged}
                for i in range({start}, n):
                    full_width()
{body}
            else:
{strided}
                for i in range(n):
                    p = ({params_at_i})
{body}
        restore_fp_status(status)
    return loop
"""

# NumPy hands a ufunc loop an output that is an input (op(x, out=x)) as the same
# pointer, and otherwise arrays that do not overlap.  LLVM's vectorised loop checks
# at run time that its arrays do not overlap, and where they do it runs its scalar
# loop: in place, sigmoid and gelu took 7-28x their time.  So a loop whose output is
# one of its inputs has a loop of its own that reads that input through the output
# (one array, which LLVM vectorises), before the general loop.


def _ufunc_loop_source(loop: str, n_fns: int, arrays: list[str], nparams: int, n_out: int,
                       biased: bool = False, staged: bool = False) -> str:
    """The source of ``make(fns, token, dtype, item)``, which gives the inner loop of
    ``loop`` ("map", "pair" or "times", as the kernels' templates in _kernels) over
    ``arrays``, ``nparams`` float64 parameters and ``n_out`` outputs; ``biased``: the
    last array is a bias, added to the one before it (x + bias, rounded in x's dtype,
    as the bias kernels add it); ``staged``: fns also holds the stages of the fns
    (_kernels.staged_loop: the first stage, and each one's second), which the loop over
    unit strides runs block by block, as _kernels' staged templates do."""
    params = [f"a{k}" for k in range(nparams)]
    outs = [f"out{k}" for k in range(n_out)]
    index = {name: k for k, name in enumerate(arrays + params + outs)}
    typed = [(name, "dtype") for name in arrays + outs] + [(name, "np.float64") for name in params]
    line = " " * 16
    contiguous = [f"{line}{name} = carray(args[{index[name]}], n, {ty})" for name, ty in typed if name not in params]
    contiguous.append(line + "p = (" + "".join(f"carray(args[{index[a]}], 1, np.float64)[0], " for a in params) + ")")
    strided = [f"{line}{name} = strided(args[{index[name]}], n, steps[{index[name]}], {ty})" for name, ty in typed]
    operands = arrays[:-1] if biased else arrays
    values = [f"v{k}" for k in range(len(operands))]  # each input read once, before any output is written
    if loop == "times":
        results = [f"{values[0]} * fn0({values[1]}, p)"]
    else:
        results = [f"fn{k}({', '.join(values)}, p)" for k in range(n_fns)]

    def body(indent: str, read: dict[str, str]) -> str:
        reads = [f"{indent}{v} = {read.get(a, a)}[i]" for v, a in zip(values, operands)]
        if biased:
            reads[-1] += f" + {read.get(arrays[-1], arrays[-1])}[i]"
        return "\n".join(reads + [f"{indent}{out}[i] = {result}" for out, result in zip(outs, results)])

    staged_lines = []
    if staged:  # the first stage's values wait in the first output (t: one of them)
        line2 = line + " " * 8
        first = f"first0({values[-1]}, p)" if loop == "times" else f"first0({', '.join(values)}, p)"
        thens = ([f"{values[0]} * then0({values[1]}, t, p)"] if loop == "times"
                 else [f"then{k}({', '.join(values)}, t, p)" for k in range(n_fns)])
        # the block as views indexed from 0 (see _kernels._map_staged)
        views = [f"{line}    {a}_b = {a}[start:start + {STAGE_BLOCK}]" for a in [*operands, *outs]]
        reads = "\n".join(f"{line2}{v} = {a}_b[i]" for v, a in zip(values, operands))
        staged_lines = [f"{line}blocks = n // {STAGE_BLOCK}", f"{line}for b in range(blocks):",
                        f"{line}    start = b * {STAGE_BLOCK}", *views, f"{line}    for i in range({STAGE_BLOCK}):",
                        reads, f"{line2}{outs[0]}_b[i] = {first}",
                        f"{line}    for i in range({STAGE_BLOCK}):",
                        reads, f"{line2}t = {outs[0]}_b[i]",
                        *(f"{line2}{out}_b[i] = {then}" for out, then in zip(outs, thens))]
    in_place = []
    for out in outs:
        for a in operands:  # (not the bias: it broadcasts, and is never an output)
            in_place += [f"{line}if {a}.ctypes.data == {out}.ctypes.data:",
                         f"{line}    for i in range(n):", f"{line}        full_width()",
                         body(line + " " * 8, {a: out}), f"{line}    restore_fp_status(status)",
                         f"{line}    return"]
    return _UFUNC_LOOP_TEMPLATE.format(
        fns="".join(f"fn{k}, " for k in range(n_fns)) + ("first0, " + "".join(f"then{k}, " for k in range(n_fns))
                                                         if staged else ""),
        staged="\n".join(staged_lines), start=f"blocks * {STAGE_BLOCK}" if staged else "0",
        unit_strides=" and ".join([f"steps[{index[name]}] == item" for name in arrays + outs]
                                  + [f"steps[{index[a]}] == 0" for a in params]),
        contiguous="\n".join(contiguous), strided="\n".join(strided), in_place="\n".join(in_place),
        params_at_i="".join(f"{a}[i], " for a in params),
        body=body(line + " " * 4, {}))


UFUNC_KINDS = tuple(_activations.KINDS)
_UFUNC_SUFFIX = {k: _activations.KINDS[k].ufunc_suffix for k in UFUNC_KINDS}


def _ufunc_name(name: str, kind: str) -> str:
    return name + _UFUNC_SUFFIX[kind]


def _by_reference(ufunc: np.ufunc) -> np.ufunc:
    try:
        ufunc.__module__ = __name__  # pickle finds it again through __getattr__ below
    except AttributeError:  # NumPy 1.x: a ufunc's __module__ is read-only (pickled by NumPy's own lookup)
        pass
    return ufunc


def __getattr__(attr: str) -> np.ufunc:
    """The ufunc called ``attr`` (``sigmoid``, ``gelu_tanh_grad``, ``softmax_backward``)."""
    if attr in ROW_FUNCTIONS:
        return row_gufunc(attr)
    for kind in sorted(UFUNC_KINDS, key=lambda k: -len(_UFUNC_SUFFIX[k])):
        suffix = _UFUNC_SUFFIX[kind]
        name = attr[: len(attr) - len(suffix)] if suffix else attr
        if attr.endswith(suffix) and name in _activations.ELEMENTWISE:
            return elementwise_ufunc(name, kind)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


def _check_jit(name: str) -> None:
    if _backend.numba.config.DISABLE_JIT:
        raise RuntimeError(f"the {name} ufunc is compiled by Numba, and NUMBA_DISABLE_JIT is set: call the op "
                           "itself (it works without its ufunc, on NumPy, dask and xarray arrays alike)")


@functools.cache
def elementwise_ufunc(name: str, kind: str) -> np.ufunc:
    """The ufunc of ``kind`` for activation ``name``: ``ufunc(*arrays, *params)``, with
    float32 and float64 loops (parameters are float64).  Compiled on first use."""
    return build_elementwise_ufunc(name, kind)


@functools.cache
def biased_ufunc(name: str, kind: str) -> np.ufunc:
    """``ufunc(x, bias, *params)``: the ufunc of ``kind`` over x + bias (a forward kind),
    for the small calls with ``bias=``: one ufunc call, where x + b and then the op took
    two and an errstate.  fastact's own; it is not looked up by name."""
    return build_elementwise_ufunc(name, kind, biased=True)


def build_elementwise_ufunc(name: str, kind: str, cache: bool = True, biased: bool = False) -> np.ufunc:
    """A new ufunc as ``elementwise_ufunc`` gives (``biased``: as ``biased_ufunc``);
    ``cache=False`` compiles it afresh (with the intrinsics as they are now) and leaves
    the disk cache alone."""
    if kind not in UFUNC_KINDS:
        raise ValueError(f"kind must be one of {UFUNC_KINDS!r}, got {kind!r}")
    _check_jit(name)
    act = _activations.ELEMENTWISE[name]
    loop, fns = _activations.KINDS[kind].loop(act)
    if None in fns:
        raise ValueError(f"{name} has no {kind} formula")
    arrays = list(_activations.KINDS[kind].inputs)
    if biased:
        if len(arrays) != 1:
            raise ValueError(f"a biased ufunc is of a forward kind, not {kind}")
        arrays.append("bias")
    nparams, n_out = len(act.params), _activations.KINDS[kind].outputs
    ufunc_name = _ufunc_name(name, kind) + ("_biased" if biased else "")
    stages = None if biased else staged_loop(loop, fns)
    source = _ufunc_loop_source(loop, len(fns), arrays, nparams, n_out, biased, staged=stages is not None)
    if stages is not None:
        fns = (*fns, *stages)
    token = cache_token("ufunc", STRICT_MATH)
    loops = []
    for dtype in (np.float32, np.float64):
        fn = _made(source, fns, token, dtype, np.dtype(dtype).itemsize)
        fn.__name__ = fn.__qualname__ = f"{ufunc_name}_{np.dtype(dtype).name}"
        loops.append(_compiled_loop(fn, cache))
    typenums = [[np.dtype(t).num] * len(arrays) + [np.dtype(np.float64).num] * nparams + [np.dtype(t).num] * n_out
                for t in (np.float32, np.float64)]
    doc = f"{ufunc_name}({', '.join(arrays + [p.name for p in act.params])}): {act.doc}"
    ufunc = _internal.fromfunc(ufunc_name, doc, [loop.address for loop in loops], typenums, len(arrays) + nparams,
                               n_out, [None] * len(loops), loops, parse_identity(None))  # type: ignore[no-untyped-call]
    return ufunc if biased else _by_reference(ufunc)


def _compiled_loop(fn: Any, cache: bool) -> Any:
    """``fn`` as a C callback with NumPy's loop signature, cached on disk where there
    is a writable cache directory (and ``cache``)."""
    options: Any = dict(fastmath=set(STRICT_MATH), error_model="numpy")  # Any: numba's stubs take a TypedDict
    with interleaved():
        if cache:
            try:
                return cfunc(_LOOP_SIGNATURE, cache=True, **options)(fn)
            except RuntimeError:  # no writable cache location: compile in memory only
                pass
        return cfunc(_LOOP_SIGNATURE, **options)(fn)


# A gufunc's rows may be strided (axes=, or a transposed block).  The row function
# runs on contiguous copies, as in the row kernels: over strided rows its loops
# are not vectorised and its row sums, with fewer partial sums, lose up to 20 ULP.
# Short rows take the block formulation (a block of one row), longer rows the
# row one, as the kernels do along the last axis: the gufunc gives their bits.


_GUFUNC_TEMPLATE = """
def make(row_fn, block_fn, short_row_max, token):
    def gufunc({args}, out):
        token
        full_width()
        status = fp_status()
        rows = ({rows},)
        result = np.empty_like(rows[0])
        n = result.shape[0]
        if is_short_row(n, result.itemsize, short_row_max):
            block_fn(rows, result, n)
        else:
            row_fn(rows, result)
        out[:] = result
        restore_fp_status(status)
    return gufunc
"""


def _gufunc_kernel(fn: Any, token: str) -> Any:
    """``gufunc(*arrays, out)`` running row function ``fn`` on contiguous copies of the arrays."""
    source = _GUFUNC_TEMPLATE.format(args=", ".join(fn.inputs),
                                     rows=", ".join(f"np.ascontiguousarray({a})" for a in fn.inputs))
    return _made(source, fn.row, fn.block, _tuning.current().short_row_max[fn.name], token)


@functools.cache
def row_gufunc(name: str) -> np.ufunc:
    """The gufunc of row kernel ``name``: ``(n)->(n)`` (forward) or ``(n),(n)->(n)`` (backward)."""
    _check_jit(name)
    fn = ROW_FUNCTIONS[name]
    kernel = _gufunc_kernel(fn, cache_token("gufunc", LOOP_MATH))
    layout = ",".join(["(n)"] * len(fn.inputs)) + "->(n)"
    signatures = [f"void({', '.join([f'{t}[:]'] * (len(fn.inputs) + 1))})" for t in ("float32", "float64")]
    kernel.__name__ = name
    gufunc = guvectorize(signatures, layout, cache=True, fastmath=set(LOOP_MATH))  # type: ignore[no-untyped-call]
    return _by_reference(gufunc(kernel).ufunc)  # a row kernel: LLVM's interleave count (see _kernels._jit)
