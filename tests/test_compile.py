"""Compilation: nothing at import, on-disk cache, read-only caches, vectorised machine code."""

import json
import os
import platform
import re
import subprocess
import sys

import numpy as np
import pytest

from fastact import _activations, _kernels, _rowops

from .conftest import run_python


def test_import_compiles_nothing():
    out = run_python("""
        import sys, fastact
        print(sorted(m for m in sys.modules if m.startswith("fastact")))
    """)
    loaded = eval(out)
    assert "fastact._kernels" not in loaded  # the module that builds kernels is not even imported
    assert "fastact" in loaded


_CALL_AND_REPORT = """
    import json, numpy as np, fastact
    from fastact import _kernels
    k = _kernels.elementwise_kernel("sigmoid", "forward", False)
    y = np.empty(11, np.float32)
    k(np.linspace(-5, 5, 11, dtype=np.float32), y, ())
    print(json.dumps({"hits": sum(k.stats.cache_hits.values()), "misses": sum(k.stats.cache_misses.values()),
                      "y5": float(y[5])}))
"""


def test_kernels_are_cached_on_disk(tmp_path):
    first = json.loads(run_python(_CALL_AND_REPORT, NUMBA_CACHE_DIR=str(tmp_path)))
    second = json.loads(run_python(_CALL_AND_REPORT, NUMBA_CACHE_DIR=str(tmp_path)))
    assert first["misses"] == 1 and first["hits"] == 0
    assert second["hits"] == 1 and second["misses"] == 0
    assert first["y5"] == second["y5"] == 0.5
    assert any(p.suffix == ".nbi" for p in tmp_path.rglob("*"))


_UFUNCS_AND_REPORT = """
    import json, numpy as np, fastact
    x = np.linspace(-5, 5, 11)
    results = [fastact.leaky_relu.ufunc(x, 0.1), fastact.gelu.get_ufunc("backward_x")(x, x),
               fastact.log_softmax.gufunc(x), fastact.softmax.backward_gufunc(x, x)]
    dispatchers = [fastact.leaky_relu.ufunc, fastact.gelu.get_ufunc("backward_x"), fastact.log_softmax.gufunc,
                   fastact.softmax.backward_gufunc]
    print(json.dumps({"sums": [float(r.sum()) for r in results]}))
"""


def test_ufuncs_and_gufuncs_load_from_the_disk_cache(tmp_path):
    # Their kernels are written out per arity from a template: the second process loads
    # them (a generated function's globals must be found again by module name).
    first = json.loads(run_python(_UFUNCS_AND_REPORT, NUMBA_CACHE_DIR=str(tmp_path)))
    files = {p.name for p in tmp_path.rglob("*.nbc")}
    second = json.loads(run_python(_UFUNCS_AND_REPORT, NUMBA_CACHE_DIR=str(tmp_path)))
    assert first == second
    assert len(files) >= 4 and {p.name for p in tmp_path.rglob("*.nbc")} == files  # nothing compiled again


def test_works_when_no_cache_location_is_writable():
    # Every Numba cache locator reports that it cannot write (as for a read-only
    # install with a read-only NUMBA_CACHE_DIR): kernels compile in memory.
    out = run_python("""
        from numba.core import caching
        def refuse(self):
            raise OSError("read-only")
        caching._CacheLocator.ensure_cache_path = refuse
        import numpy as np, fastact
        x, t = np.zeros((2, 4), np.float32), np.zeros(2, np.int64)
        losses = [fastact.softmax_cross_entropy(x, t) for _ in range(2)]  # the second in C: a C function
        rows = [fastact.softmax(x)[0, 0] for _ in range(2)]  # the same for a row op
        print(fastact.sigmoid(0.0), fastact.softmax([0.0, 0.0])[0], *losses, *rows)
    """)
    assert out.split() == ["0.5", "0.5", "1.3862944", "1.3862944", "0.25", "0.25"]


@pytest.mark.parametrize("make", ['small_loss_function("xent_index", "float32")',
                                  'small_row_function("softmax", "blocks", "float64")',
                                  'small_row_function("log_softmax_backward", "rows", "float32")'])
def test_the_c_functions_of_small_calls_are_cached_on_disk(tmp_path, make):
    code = f"""
        import json
        from fastact import _kernels
        f = _kernels.{make}
        print(json.dumps({{"hits": f._cache_hits}}))
    """
    first = json.loads(run_python(code, NUMBA_CACHE_DIR=str(tmp_path)))
    second = json.loads(run_python(code, NUMBA_CACHE_DIR=str(tmp_path)))
    assert first["hits"] == 0 and second["hits"] == 1


def test_works_with_an_unusable_cache_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    out = run_python("import fastact; print(fastact.relu(-1.0), fastact.sigmoid(0.0))",
               NUMBA_CACHE_DIR=str(blocker / "cache"))
    assert out.split() == ["0.0", "0.5"]


@pytest.mark.parametrize("suffix", [".nbc", ".nbi"])
def test_corrupt_cache_entries_are_recompiled(tmp_path, suffix):
    run_python(_CALL_AND_REPORT, NUMBA_CACHE_DIR=str(tmp_path))
    damaged = list(tmp_path.rglob("*" + suffix))
    assert damaged
    for path in damaged:
        path.write_bytes(path.read_bytes()[:20])  # truncated, as by a crash mid-write
    out = json.loads(run_python(_CALL_AND_REPORT, NUMBA_CACHE_DIR=str(tmp_path)))
    assert out["y5"] == 0.5
    again = json.loads(run_python(_CALL_AND_REPORT, NUMBA_CACHE_DIR=str(tmp_path)))
    assert again["hits"] == 1  # the entry was written anew


def test_stale_entries_in_a_read_only_cache_dir(tmp_path):
    # A copy of the package fills a cache; editing its kernel module makes every
    # entry stale; then the cache is made read-only.  fastact must ignore the stale entries and compute correctly.
    # (Run as root, the permissions do not stop writes; the stale entries still count.)
    import shutil

    import fastact

    # under another name: the editable install's import hook would find the original first
    package = tmp_path / "src" / "fastact_copy"
    shutil.copytree(os.path.dirname(fastact.__file__), package, ignore=shutil.ignore_patterns("__pycache__"))
    code = _CALL_AND_REPORT.replace("fastact", "fastact_copy")
    cache = tmp_path / "cache"
    env = dict(NUMBA_CACHE_DIR=str(cache), PYTHONPATH=str(package.parent))
    first = json.loads(run_python(code, **env))
    assert first["misses"] == 1
    kernels = package / "_kernels.py"
    kernels.write_text(kernels.read_text() + "\n# edited\n")  # Numba stamps sources by content
    for path in [cache, *cache.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        out = json.loads(run_python(code, **env))
    finally:
        for path in [cache, *cache.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert out["y5"] == 0.5 and out["hits"] == 0  # the stale entry was not loaded


def _vector_code(asm: str) -> bool:
    return re.search(r"\bv?\w+p[sd]\s+%[xyz]mm", asm) is not None


# Every op's forward kernel, and every kind of kernel for sigmoid: the kinds share
# their loop templates, so the formulas are what differ (and gelu's kernels
# take seconds each to compile uncached).
_NAME_KINDS = sorted({(name, "forward") for name in _activations.ELEMENTWISE}
                     | {("sigmoid", kind) for kind in _kernels.ELEMENTWISE_KINDS})


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 assembly")
@pytest.mark.parametrize("name,kind", _NAME_KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_elementwise_kernels_are_vectorised_without_libm_calls(name, kind, dtype):
    kernel = _kernels.elementwise_kernel(name, kind, False, cache=False)
    n_in, n_out = len(_activations.KINDS[kind].inputs), _activations.KINDS[kind].outputs
    params = tuple(p.default for p in _activations.ELEMENTWISE[name].params)
    kernel(*[np.ones(64, dtype) for _ in range(n_in + n_out)], params)
    asm = kernel.inspect_asm(kernel.signatures[-1])
    assert not re.search(r"call\w*\s+.*\b(exp|expf|log|logf|log1p)\b", asm), "a scalar libm call in the loop"
    assert _vector_code(asm), "no packed SIMD instructions"


def _kernel_body(ir: str) -> str:
    """The LLVM IR of the kernel's own function (not its CPython or cfunc wrappers)."""
    match = re.search(r"^define [^\n]*@\"?_ZN7fastact8_kernels[^\n]*\{\n(.*?)^\}", ir, re.DOTALL | re.MULTILINE)
    assert match, "the kernel's function is not in its IR"
    return match.group(1)


@pytest.mark.parametrize("name", sorted(_rowops.ROW_FUNCTIONS) + ["xent_index", "xent_prob"])
@pytest.mark.parametrize("parallel", [False, True])
def test_row_kernels_count_no_references_per_row(name, parallel):
    # Each row's view of a kernel argument took an atomic increment and decrement of
    # the array's reference count (NRT_incref, NRT_decref): softmax' over rows of 32
    # spent three quarters of its time on them.  The kernels take borrowed views.
    if name.startswith("xent"):
        kernel = _kernels.loss_kernel.__wrapped__(name, parallel, cache=False)
        x = np.ones((4, 8), np.float32)
        labels = np.zeros(4, np.int64) if name == "xent_index" else np.full((4, 8), 0.125, np.float32)
        kernel(x, labels, True, np.empty_like(x), 0.25, np.empty(4), name == "xent_index")  # short rows: blocks
    else:
        kernel = _kernels.row_kernel.__wrapped__(name, parallel, cache=False)
        n_in = len(_rowops.ROW_FUNCTIONS[name].inputs)
        kernel(*[np.ones((4, 128), np.float32) for _ in range(n_in + 1)])
    body = _kernel_body(kernel.inspect_llvm(kernel.signatures[-1]))
    assert not re.search(r"call [^\n]*@NRT_(incref|decref)\b", body)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 assembly")
@pytest.mark.parametrize("group", [1, 16])
@pytest.mark.parametrize("form", sorted(_kernels.ROW_FORMS))
@pytest.mark.parametrize("name", sorted(_rowops.ROW_FUNCTIONS))
def test_row_kernels_are_vectorised(name, form, group):
    if form in ("rows", "blocks") and group > 1:
        pytest.skip("rows and blocks take no group")
    kernel = _kernels.row_kernel(name, False, cache=False, form=form)
    n_in = len(_rowops.ROW_FUNCTIONS[name].inputs)
    shape = {"lanes": (2, 16, 64) if group == 1 else (2, 64, 4), "split_lanes": (2, 64, 4)}.get(form, (2, 64))
    extra = {"lanes": (group,), "split_lanes": (group, 2)}.get(form, ())  # the group size (and tasks)
    kernel(*[np.ones(shape, np.float32) for _ in range(n_in + 1)], *extra)
    ir = kernel.inspect_llvm(kernel.signatures[-1])
    assert ir.count("vector.body") >= 2
    assert not re.search(r"call [^\n]*@(expf?|exp)\(", ir)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 assembly")
@pytest.mark.parametrize("name", sorted(n for n, f in _rowops.ROW_FUNCTIONS.items() if f.kept is not None))
def test_kept_row_kernels_are_vectorised_and_borrow_their_rows(name):
    # where= along the last axis (the kept forms: a forward's "select_rows", a backward's
    # rows): selecting as they read, with no scratch rows, and no reference counting per row.
    kernel = _kernels.kept_row_kernel.__wrapped__(name, False, _kernels.kept_form(name, "rows", 1.0), cache=False)
    x, keep = np.ones((4, 128), np.float32), np.ones((1, 128), np.bool_)
    if len(_rowops.ROW_FUNCTIONS[name].inputs) == 2:
        kernel(x, x, keep, 0.5, np.empty_like(x))
    else:
        kernel(x, keep, 1.0, True, np.empty_like(x))
    ir = kernel.inspect_llvm(kernel.signatures[-1])
    assert ir.count("vector.body") >= 2
    assert not re.search(r"call [^\n]*@NRT_(incref|decref)\b", _kernel_body(ir))


def test_serial_and_parallel_builds_have_their_own_cache_entries(tmp_path):
    # Numba's cache key ignores jit options: without the token in the closure the
    # serial and the parallel kernel of one template would load each other's code.
    out = run_python("""
        import numpy as np
        from fastact import _kernels
        x = np.zeros(8, np.float32)
        keys = set()
        for parallel in (False, True):
            k = _kernels.elementwise_kernel("sigmoid", "forward", parallel)
            k(x, x.copy(), ())
            keys.update(k._cache._cache_file._load_index())
        print(len(keys))
    """, NUMBA_CACHE_DIR=str(tmp_path))
    assert out.split() == ["2"]


# --- vector width ------------------------------------------------------------------
# fastact's kernels ask LLVM for _config.VECTOR_WIDTH-bit vectors ("prefer-vector-width"),
# which matters where LLVM's tuning for the CPU prefers narrower ones (Intel's AVX-512
# server cores: 256 bits).  The kernels are compiled, not run, and their machine code read.

_WIDTHS = """
import json, re
import numpy as np
from numba.core.typing.typeof import typeof
from fastact import _kernels

def registers(kernel, *arrays):
    _, argtypes = kernel.fold_argument_types(tuple(typeof(a) for a in arrays), {})
    kernel.compile(argtypes)
    asm = kernel.inspect_asm(argtypes)
    return {r: len(re.findall("%" + r, asm)) for r in ("zmm", "ymm")}

v, m = np.ones(64, np.float32), np.ones((4, 64), np.float32)
print(json.dumps({
    "sigmoid": registers(_kernels.elementwise_kernel("sigmoid", "forward", False, cache=False), v, v, ()),
    "sigmoid parallel": registers(_kernels.elementwise_kernel("sigmoid", "forward", True, cache=False), v, v, ()),
    "softmax rows": registers(_kernels.row_kernel("softmax", False, cache=False, form="rows"), m, m),
    "xent rows": registers(_kernels.loss_kernel("xent_index", False), m, np.zeros(4, np.int64),
                           True, m, 1.0, np.zeros(4), False),
}))
"""


def _host_has(feature: str) -> bool:
    import llvmlite.binding as llvm

    return bool(llvm.get_host_cpu_features().get(feature))


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 assembly")
def test_kernels_use_the_widest_vectors_of_this_cpu(tmp_path):
    counts = json.loads(run_python(_WIDTHS, NUMBA_CACHE_DIR=str(tmp_path)))
    for kernel, registers in counts.items():
        if _host_has("avx512f"):
            assert registers["zmm"] > 0, kernel
        elif _host_has("avx2"):
            assert registers["ymm"] > 0, kernel


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 assembly")
def test_kernels_use_512_bit_vectors_where_llvm_prefers_256(tmp_path):
    # Sapphire Rapids has AVX-512, and LLVM's tuning for it prefers 256-bit vectors:
    # fastact's kernels get 512, and half that with FASTACT_VECTOR_WIDTH=native
    # (compiled for that CPU on any x86 machine; nothing is run)
    target = dict(NUMBA_CPU_NAME="sapphirerapids", NUMBA_CPU_FEATURES="")
    wide = json.loads(run_python(_WIDTHS, NUMBA_CACHE_DIR=str(tmp_path / "a"), **target))
    native = json.loads(run_python(_WIDTHS, NUMBA_CACHE_DIR=str(tmp_path / "b"), FASTACT_VECTOR_WIDTH="native",
                                   **target))
    for kernel in wide:  # (a float32 kernel's float64 sums keep some ymm code)
        assert wide[kernel]["zmm"] > wide[kernel]["ymm"] / 2, (kernel, wide[kernel])
        assert native[kernel]["zmm"] < native[kernel]["ymm"] / 4, (kernel, native[kernel])


def test_an_unknown_vector_width_is_refused_at_import():
    result = subprocess.run([sys.executable, "-c", "import fastact"], capture_output=True, text=True,
                            env={**os.environ, "FASTACT_VECTOR_WIDTH": "1024"})
    assert result.returncode != 0
    assert "FASTACT_VECTOR_WIDTH must be one of ('512', '256', 'native'), got '1024'" in result.stderr


# --- interleave count ------------------------------------------------------------------
# fastact's kernels are compiled with _config.INTERLEAVE vectors per loop iteration
# (LLVM's -force-vector-interleave, set only while they compile): a sigmoid kernel's
# float64 loop divides four vectors per iteration where LLVM's cost model gives one.
# A function of the user's, compiled before and after, keeps LLVM's own choice.

_INTERLEAVES = """
import json
import numpy as np, numba
from numba.core.typing.typeof import typeof
from fastact import _kernels

def divisions(dispatcher, *arrays):
    _, argtypes = dispatcher.fold_argument_types(tuple(typeof(a) for a in arrays), {})
    dispatcher.compile(argtypes)
    return dispatcher.inspect_asm(argtypes).count("vdivpd")

def users():
    @numba.njit(error_model="numpy")
    def user(x, out):
        for i in range(x.size):
            v = x[i]
            out[i] = (((((v * 0.1 + 0.2) * v + 0.3) * v + 0.4) * v + 0.5) * v + 1.0) / (1.0 + v * v)
    return user

v = np.ones(64)
before = divisions(users(), v, v)
ours = divisions(_kernels.elementwise_kernel("sigmoid", "forward", False, cache=False, staged=False), v, v, ())
print(json.dumps({"before": before, "ours": ours, "after": divisions(users(), v, v)}))
"""


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 assembly")
def test_kernels_interleave_their_loops_and_user_functions_keep_llvms_choice(tmp_path):
    four = json.loads(run_python(_INTERLEAVES, NUMBA_CACHE_DIR=str(tmp_path / "a"), FASTACT_INTERLEAVE="4"))
    auto = json.loads(run_python(_INTERLEAVES, NUMBA_CACHE_DIR=str(tmp_path / "b"), FASTACT_INTERLEAVE="auto"))
    assert four["before"] == four["after"] == auto["before"] == auto["after"] > 0
    assert four["ours"] >= 4 * auto["ours"] > 0, (four, auto)


def test_an_unknown_interleave_count_is_refused_at_import():
    result = subprocess.run([sys.executable, "-c", "import fastact"], capture_output=True, text=True,
                            env={**os.environ, "FASTACT_INTERLEAVE": "many"}, check=False)
    assert result.returncode != 0
    assert "FASTACT_INTERLEAVE must be an integer from 1 to 16 or 'auto', got 'many'" in result.stderr
