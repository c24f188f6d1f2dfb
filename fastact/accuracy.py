"""Accuracy sweep: maximum error in ULPs against mpmath, for every op and backend.

Run ``python -m fastact.accuracy`` (needs mpmath; the ``test`` extra has it).
Options: ``--points N`` per dtype, ``--seed``, ``--markdown`` for a table to
paste into the README, ``--quick`` for a small sample.

Elementwise ops are measured on a dense sample of the whole float range:
random bit patterns (every exponent equally likely), a uniform grid over the
region where the function changes, and the extremes (0, -0.0, the smallest
subnormal, the largest finite value).  Softmax and log_softmax are measured
on rows of up to 65536 elements, along the last axis and along axis 0.  The
error of a result c against the exact value v is |c - v| / ulp(v), with ulp(v)
the spacing of the dtype's floats at v (the subnormal spacing below the normal
range).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib
import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

import fastact
from fastact import _activations, _backend, _cli, _rowops

DTYPES = (np.float32, np.float64)
# Where each dtype's sigmoid goes from 0 to 1, tails included.
_GRID_HALF_WIDTH = {np.float32: 110.0, np.float64: 750.0}


def _mpmath() -> Any:
    try:
        import mpmath  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover
        sys.exit("the accuracy sweep needs mpmath: pip install 'fastact[test]'")
    mpmath.mp.prec = 160
    return mpmath


def sample_points(dtype: Any, n: int, seed: int = 0) -> np.ndarray:
    """A dense sample of finite floats of ``dtype``, the extremes included."""
    rng = np.random.default_rng(seed)
    info = np.finfo(dtype)
    uint = np.uint32 if dtype == np.float32 else np.uint64
    bits = rng.integers(0, np.iinfo(uint).max, size=n // 2, dtype=uint, endpoint=True)
    random_bits = bits.view(dtype)
    random_bits = random_bits[np.isfinite(random_bits)]
    half = _GRID_HALF_WIDTH[dtype]
    grid = np.linspace(-half, half, n - n // 2, dtype=dtype)
    tiny_sub = np.array(info.smallest_subnormal, dtype)
    extremes = np.array([0.0, -0.0, tiny_sub, -tiny_sub, info.tiny, -info.tiny, info.max, -info.max,
                         1.0, -1.0, 0.5, -0.5], dtype=dtype)
    return np.concatenate([extremes, grid, random_bits]).astype(dtype)


def ulp_errors(computed: np.ndarray, exact: Iterable[Any], dtype: Any, normal_only: bool = False,
               floor: Any = 0.0) -> np.ndarray:
    """|computed - exact| in ULPs of ``dtype`` at ``exact`` (mpmath numbers).

    ``normal_only``: count only exact values in the normal range (0 elsewhere),
    for libraries that flush subnormal results to zero.  ``floor``: measure in
    ULPs of max(|exact|, floor) (a mixed absolute/relative bound).
    """
    mp = _mpmath()
    info = np.finfo(dtype)
    lowest_exp = int(info.minexp) - int(info.nmant)
    overflow = mp.mpf(float(info.max)) * (1 + mp.mpf(2) ** (-int(info.nmant) - 1))
    errors = np.empty(len(computed))
    floors = np.broadcast_to(np.asarray(floor, dtype=np.float64), computed.shape).tolist()
    for k, (c, v) in enumerate(zip(computed.tolist(), exact)):
        if mp.isnan(v) or math.isnan(c):
            errors[k] = 0.0 if (mp.isnan(v) and math.isnan(c)) else math.inf
            continue
        if abs(v) >= overflow:  # the exact value rounds to +-inf
            errors[k] = 0.0 if math.isinf(c) and (c > 0) == (v > 0) else math.inf
            continue
        if normal_only and abs(v) < info.tiny:
            errors[k] = 0.0
            continue
        if math.isinf(c):
            errors[k] = math.inf
            continue
        scale = max(abs(v), floors[k])
        exponent = lowest_exp if scale == 0 else max(int(mp.floor(mp.log(scale, 2))) - int(info.nmant), lowest_exp)
        errors[k] = float(abs(mp.mpf(c) - v) / mp.ldexp(1, exponent))
    return errors


@dataclass
class Case:
    """One row of the accuracy table: an op, what of it is measured, and its bound."""

    name: str
    bound: float | None  # the required maximum in ULPs (None: reported only)
    run: Callable[..., Any]  # (dtype, x, g) -> computed (lambdas bind the op by default arguments)
    exact: Callable[..., Any]  # (mp, x, g) -> exact value
    rows: bool = False
    floor: float = 0.0  # mixed bound: errors in ULPs of max(|exact|, floor)
    # what the floor scales with: "" (nothing), "abs(g)" (backward), "abs(g b)" (a gated
    # unit's backward, measured with b = g), "max(abs(x))" (a row reduction)
    floor_scale: str = ""
    known_gap: dict[Any, Any] | None = None  # dtype name -> the bound this release meets instead (see README)
    torch_function: Callable[..., Any] | None = None  # torch -> PyTorch's op, (tensor, **torch_kwargs) -> tensor
    torch_kwargs: dict[Any, Any] | None = None
    torch_run: Callable[..., Any] | None = None  # (torch, dt, x, g) -> PyTorch's result, where not the above


# Derivatives that cross zero (a definition's derivative_crosses_zero) are held to a
# mixed bound: ULPs of max(|f'|, 1/4) (of max(|g f'|, |g|/4) for backward).  There f'
# is a difference of terms of size ~1/4 that cancel, and any formula has an absolute
# error of a few ULPs of those terms (PyTorch's too).
MIXED_FLOOR = 0.25


def elementwise_variants() -> list[tuple[str, object, dict[Any, Any], _activations.Activation]]:
    """(label, op, keyword arguments, definition) for every elementwise op at its defaults."""
    ops: dict[str, Any] = fastact.ACTIVATIONS  # the ops as built (the stub's types hide their definitions)
    variants: list[tuple[str, object, dict[Any, Any], _activations.Activation]] = [
        (name, op, {}, op._act) for name, op in ops.items()]
    for act in _activations.ELEMENTWISE.values():  # the other variants of an op (gelu's approximate='tanh')
        op = ops[act.variant[0]] if act.variant else None
        if op is not None and act.variant and op._act is not act:
            _, param, value = act.variant
            variants.append((f"{op.name}({param}={value!r})", op, {param: value}, act))
    return variants


def elementwise_cases() -> list[Case]:
    cases = []
    for label, op, kwargs, act in elementwise_variants():
        p = tuple(param.default for param in act.params)
        forward_bound, grad_bound = (0.5, 0.5) if act.correctly_rounded else (2.0, 4.0)
        floor = MIXED_FLOOR if act.derivative_crosses_zero else 0.0
        torch_kwargs = dict(kwargs)
        torch_function = lambda torch, a=act: _activations.torch_function(a, torch)  # noqa: E731
        gaps: dict[str, dict[Any, Any]] = {}
        for kind, dtype_name, gap in act.known_gaps:
            gaps.setdefault(kind, {})[dtype_name] = gap
        cases += [
            Case(label, forward_bound, lambda dt, x, g, op=op, kw=kwargs: op(x, **kw),
                 lambda mp, x, g, a=act, p=p: a.reference(mp, x, p), torch_function=torch_function,
                 torch_kwargs=torch_kwargs, known_gap=gaps.get("forward")),
            Case(f"{label}.grad", grad_bound, lambda dt, x, g, op=op, kw=kwargs: op.grad(x, **kw),
                 lambda mp, x, g, a=act, p=p: a.reference_df(mp, x, p), floor=floor, torch_function=torch_function,
                 torch_kwargs=torch_kwargs, known_gap=gaps.get("grad")),
            Case(f"{label}.backward(g, x=x)", grad_bound, lambda dt, x, g, op=op, kw=kwargs: op.backward(g, x=x, **kw),
                 lambda mp, x, g, a=act, p=p: g * a.reference_df(mp, x, p), floor=floor, torch_function=torch_function,
                 torch_kwargs=torch_kwargs, floor_scale="abs(g)", known_gap=gaps.get("backward")),
        ]
    return cases


def _torch_gated(definition: Any, kwargs: dict[Any, Any], backward: bool) -> Callable[..., Any]:
    """PyTorch's expression of a gated unit on the halves (u, v) = (x, g); its backward
    with grad_out = g, the activated half's gradient."""

    def run(torch: Any, dt: Any, x: Any, g: Any) -> Any:
        halves = definition.activated_first(torch.from_numpy(x), torch.from_numpy(g))
        tx = torch.cat(halves).requires_grad_(backward)
        y = eval(definition.torch, {"torch": torch, "F": torch.nn.functional, "x": tx, "dim": 0,  # noqa: S307
                                    "approximate": kwargs.get("approximate", "none")})
        if not backward:
            return y.detach().numpy()
        y.backward(torch.from_numpy(g))
        return definition.activated_first(tx.grad.numpy()[:len(x)], tx.grad.numpy()[len(x):])[0]

    return run


def gated_cases() -> list[Case]:
    """Each gated unit with the activated half u = x and the other half v = g, and its
    backward with grad_out = g: y = g f(u) and the activated half's gradient g^2 f'(u).
    Bounds: the activation's plus one ULP (the product of a result within its bound)."""
    from ._gatedops import GATED_OPS, reference

    cases = []
    for name, definition in GATED_OPS.items():
        op = getattr(fastact, name)
        for label, _, kwargs, act in elementwise_variants():
            if label.partition("(")[0] != definition.activation:
                continue
            label = name + label[len(definition.activation):]
            p = tuple(param.default for param in act.params)
            bound, grad_bound = (0.5, 0.5) if act.correctly_rounded else (3.0, 5.0)
            gaps: dict[str, dict[Any, Any]] = {}
            for kind, dtype_name, gap in act.known_gaps:
                gaps.setdefault(kind, {})[dtype_name] = gap + 1
            index = definition.activated
            cases += [
                Case(label, bound, lambda dt, x, g, op=op, kw=kwargs, d=definition: op(*d.activated_first(x, g), **kw),
                     lambda mp, x, g, a=act, p=p: reference(a, mp, x, g, p)[0], known_gap=gaps.get("forward"),
                     torch_run=_torch_gated(definition, kwargs, False)),
                Case(f"{label}.backward(g, a, b), {'ab'[index]}'s", grad_bound,
                     lambda dt, x, g, op=op, kw=kwargs, d=definition, i=index:
                     op.backward(g, *d.activated_first(x, g), **kw)[i],
                     lambda mp, x, g, a=act, p=p: g * reference(a, mp, x, g, p)[1],
                     floor=MIXED_FLOOR if act.derivative_crosses_zero else 0.0, floor_scale="abs(g b)",
                     known_gap=gaps.get("backward"), torch_run=_torch_gated(definition, kwargs, True)),
            ]
    return cases


def all_cases() -> list[Case]:
    return elementwise_cases() + row_cases() + gated_cases()


def _random_rows(dtype: Any, seed: int, points: int) -> list[np.ndarray]:
    """Rows of 4, 100, 1000 and up to 65536 elements, as many as ``points`` asks for
    (20000: 64, 16, 4 and one of 65536), so that the sweep's time scales with it."""
    rng = np.random.default_rng(seed)
    f = points / 20000
    shapes = [(max(2, round(64 * f)), 4), (max(2, round(16 * f)), 100), (max(1, round(4 * f)), 1000),
              (1, min(65536, max(1000, round(65536 * f))))]
    rows = []
    for rows_n, n in shapes:
        for scale in (1.0, 4.0, 30.0):
            rows.append((rng.standard_normal((rows_n, n)) * scale).astype(dtype))
    rows.append(np.array([[2, 10, 1, 4]], dtype))
    return rows


def _along_axis_0(op: Any) -> Any:
    """``op`` over the rows of x laid out as the columns of a C-contiguous array
    (each twice, so that there are at least two): the kernels' lanes formulation,
    grouped where there are under 16 columns and a group size divides the rows."""
    return lambda dt, x, g: op(np.repeat(x.T, 2, axis=1), axis=0)[:, ::2].T


# The where= and temperature= cases: every fourth entry masked, and a temperature of 2, a
# power of two, so that x / t is exact and the exact values are the op's over the kept x / 2.
OPTIONS_TEMPERATURE = 2.0


# temperature= alone: 3/4, exact in both dtypes, where x / t is not; the kernels' softmax and
# softmin take the quotient exactly (_rowops.EXACT_QUOTIENT_OPS), PyTorch's rounds it first.
QUOTIENT_TEMPERATURE = 0.75


def _kept(n: int) -> np.ndarray:
    kept: np.ndarray = np.arange(n) % 4 != 3
    return kept


def _kept_exact(definition: Any, mp: Any, row: Any) -> list[Any]:
    keep = _kept(len(row))
    values = iter(definition.reference(mp, [v / 2 for v, k in zip(row, keep) if k]))
    return [next(values) if k else mp.mpf(definition.forward.empty_row) for k in keep]


def _torch_kept(torch: Any, definition: Any, x: np.ndarray) -> np.ndarray:
    """PyTorch's op over x / 2 with the masked entries filled (masked_fill)."""
    fill = definition.forward.masked_fills[0]
    masked = (torch.from_numpy(x) / OPTIONS_TEMPERATURE).masked_fill(~torch.from_numpy(_kept(x.shape[-1])), fill)
    result: np.ndarray = eval(definition.torch, {"torch": torch, "x": masked, "dim": -1}).numpy()  # noqa: S307
    return result


def row_cases() -> list[Case]:
    cases = []
    for name, definition in _rowops.ROW_OPS.items():
        op = getattr(fastact, name)
        torch_run = (lambda torch, dt, x, g, t=definition.torch:  # noqa: E731
                     eval(t, {"torch": torch, "x": torch.from_numpy(x), "dim": -1}).numpy())  # noqa: S307
        cases.append(Case(name, 8.0, lambda dt, x, g, op=op: op(x), definition.reference, rows=True,
                          torch_run=torch_run))
        cases.append(Case(f"{name}(axis=0)", 8.0, _along_axis_0(op), definition.reference, rows=True,
                          torch_run=torch_run))  # PyTorch along the rows as given: the same values
        cases.append(Case(f"{name}(where=, temperature=2)", 8.0,
                          lambda dt, x, g, op=op: op(x, where=_kept(x.shape[-1]), temperature=OPTIONS_TEMPERATURE),
                          lambda mp, row, d=definition: _kept_exact(d, mp, row), rows=True,
                          torch_run=lambda torch, dt, x, g, d=definition: _torch_kept(torch, d, x)))
        if name in _rowops.EXACT_QUOTIENT_OPS:
            t = QUOTIENT_TEMPERATURE
            cases.append(Case(f"{name}(temperature={t})", 8.0, lambda dt, x, g, op=op, t=t: op(x, temperature=t),
                              lambda mp, row, d=definition, t=t: d.reference(mp, [v / mp.mpf(t) for v in row]),
                              rows=True, torch_run=lambda torch, dt, x, g, r=torch_run, t=t: r(torch, dt, x / t, g)))
    for name, reduction in _rowops.ROW_REDUCTIONS.items():  # one value per row
        op = getattr(fastact, name)
        # near 0 the result is the difference of the maximum and a log, and is conditioned by
        # the maximum: held to ULPs of max(|result|, max |x|) (its condition)
        cases.append(Case(name, 2.0, lambda dt, x, g, op=op: op(x)[:, None],
                          lambda mp, row, r=reduction: [r.reference(mp, row)], rows=True, floor=1.0,
                          floor_scale="max(abs(x))",
                          torch_run=lambda torch, dt, x, g, t=reduction.torch: eval(  # noqa: S307
                              t, {"torch": torch, "x": torch.from_numpy(x), "dim": -1, "keepdim": True}).numpy()))
    return sorted(cases, key=lambda c: "(" in c.name)


def _torch_module() -> Any:
    """PyTorch if installed (an optional peer, never a dependency)."""
    try:
        return importlib.import_module("torch")
    except ImportError:
        return None


def _torch_run(case: Case) -> Callable[..., Any]:
    """PyTorch's kernels for the same case: the forward op, its autograd backward."""
    torch = _torch_module()
    torch_run = case.torch_run
    if torch_run is not None:
        return lambda dt, x, g: torch_run(torch, dt, x, g)
    assert case.torch_function is not None, case.name  # a case has one or the other
    fn = case.torch_function(torch)
    kwargs = case.torch_kwargs or {}
    if case.name.endswith(".grad") or ".backward" in case.name:
        ones = case.name.endswith(".grad")

        def run(dt: Any, x: Any, g: Any) -> Any:
            tx = torch.from_numpy(x.copy()).requires_grad_(True)
            fn(tx, **kwargs).backward(torch.ones_like(tx) if ones else torch.from_numpy(g))
            return tx.grad.numpy()

        return run
    return lambda dt, x, g: fn(torch.from_numpy(x), **kwargs).numpy()


def measure(case: Case, dtype: Any, backend: str, points: int, seed: int, normal_only: bool = False) -> float:
    """Max ULP error of ``case`` on ``backend`` ("numba", "numpy", or "torch")."""
    if backend == "torch":
        case = dataclasses.replace(case, run=_torch_run(case))
        backend = "numba"  # only selects fastact's backend, which torch does not use
    with _backend.use_backend(backend):
        if case.rows:
            return max(max_row_error(case, rows, normal_only) for rows in _random_rows(dtype, seed, points))
        x = sample_points(dtype, points, seed)
        g = np.random.default_rng(seed + 1).uniform(-2, 2, x.shape).astype(dtype)
        return float(elementwise_errors(case, x, g, normal_only).max())


# The exact values of the case being measured, by its sample: the sweep measures each case on
# every backend and PyTorch (twice) over one sample, and the mpmath references are most of
# its time.
_EXACT: dict[tuple[Any, ...], list[Any]] = {}


def _exact_values(case: Case, arrays: tuple[np.ndarray, ...], compute: Callable[[], list[Any]]) -> list[Any]:
    key = (case.name, *(hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest() + a.dtype.str for a in arrays))
    if key not in _EXACT:
        if any(k[0] != case.name for k in _EXACT):
            _EXACT.clear()
        _EXACT[key] = compute()
    return _EXACT[key]


def elementwise_errors(case: Case, x: np.ndarray, g: np.ndarray, normal_only: bool = False) -> np.ndarray:
    """The ULP error of elementwise ``case`` at each point of ``x`` (with ``g`` for backward)."""
    mp = _mpmath()
    computed = case.run(x.dtype.type, x, g)
    exact = _exact_values(case, (x, g), lambda: [case.exact(mp, mp.mpf(float(xi)), mp.mpf(float(gi)))
                                                  for xi, gi in zip(x, g)])
    scale: dict[str, Any] = {"": 1.0, "abs(g)": np.abs(g.astype(np.float64)), "abs(g b)": g.astype(np.float64) ** 2}
    floor = case.floor * scale[case.floor_scale]
    return ulp_errors(computed, exact, x.dtype.type, normal_only, floor)


def max_row_error(case: Case, rows: np.ndarray, normal_only: bool = False) -> float:
    """Max ULP error of row case ``case`` over the rows of the 2-D array ``rows``."""
    mp = _mpmath()
    computed = case.run(rows.dtype.type, rows, None)
    exact_rows = _exact_values(case, (rows,), lambda: [case.exact(mp, [mp.mpf(float(v)) for v in row])
                                                        for row in rows])
    worst = 0.0
    for row, crow, exact in zip(rows, computed, exact_rows):
        floor = case.floor * float(np.max(np.abs(row))) if case.floor_scale == "max(abs(x))" else case.floor
        worst = max(worst, float(ulp_errors(crow, exact, rows.dtype.type, normal_only, floor).max()))
    return worst


def available_backends() -> tuple[str, ...]:
    return ("numba", "numpy") + (("torch",) if _torch_module() is not None else ())


def table_columns(backends: Any) -> tuple[str, ...]:
    return tuple(backends) + (("torch, normal results",) if "torch" in backends else ())


def sweep(points: int = 20000, seed: int = 0, backends: Any = ("numba", "numpy")) -> list[dict[Any, Any]]:
    results = []
    jobs = [(case, dtype) for case in all_cases() for dtype in DTYPES]
    for case, dtype in _cli.track(jobs, "accuracy", lambda job: f"{job[0].name} {np.dtype(job[1]).name}"):
        row = _case_row(case, dtype)
        for backend in backends:
            row[backend] = measure(case, dtype, backend, points, seed)
            if backend == "torch":
                row["torch, normal results"] = measure(case, dtype, backend, points, seed, normal_only=True)
        results.append(row)
    return results


def required(row: dict[Any, Any]) -> str:
    """The table's "required" cell: the bound, any known gap, the mixed floor."""
    bound = "reported" if row["bound"] is None else f"<= {row['bound']:g}"
    if row.get("known_gap"):
        bound += f" (known gap: <= {row['known_gap']:g})"
    if row.get("floor"):
        scale = row.get("floor_scale", "")
        bound += f" of max(abs, {row['floor']:g}{' ' + scale if scale else ''})"
    return bound


def _case_row(case: Case, dtype: Any) -> dict[Any, Any]:
    return {"op": case.name, "dtype": np.dtype(dtype).name, "bound": case.bound, "floor": case.floor,
            "floor_scale": case.floor_scale, "known_gap": (case.known_gap or {}).get(np.dtype(dtype).name)}


def case_rows() -> list[dict[Any, Any]]:
    """The table's rows without their measurements: op, dtype and bound of every case."""
    return [_case_row(case, dtype) for case in all_cases() for dtype in DTYPES]


_METHOD = """Sample: random bit patterns of each dtype (every exponent alike, the extremes included) and a
grid over the region where sigmoid moves (|x| <= 110 for float32, 750 for float64); `g`
uniform in [-2, 2] for `backward`. Softmax, log-softmax and logsumexp rows: 64x4, 16x100, 4x1000 and
1x65536 normal values at scales 1, 4 and 30, and the tutorial's row, along the last axis and
along axis 0. Gated units: the activated half from the same sample, the other half and
`grad_out` both `g`; their bounds are the activation's plus 1 ULP. Error is |computed - exact| / ulp(exact), with the subnormal spacing below the
normal range. Derivatives that cross zero (silu, mish, gelu) are held to a mixed bound, in
ULPs of max(|f'|, 1/4) (of max(|g f'|, |g|/4) for backward): there f' is a difference of
terms near 1/4 that cancel. "Known gap" marks where this release misses the bound it aims
at. PyTorch flushes results below the normal range to zero (its first column); its second
counts only exact values in the normal range. The NumPy fallbacks are the stable textbook
formulas; their softmax rounds `x - max` before `exp`, which costs up to |x - max| ULP."""


def format_table(results: list[dict[Any, Any]], backends: Any = ("numba", "numpy")) -> str:
    backends = table_columns(backends)
    head = "| op | dtype | " + " | ".join(f"{b} (max ULP)" for b in backends) + " | required |"
    lines = [head, "|" + "---|" * (3 + len(backends))]
    for r in results:
        bound = required(r)
        cells = " | ".join(f"{r[b]:.3g}" if r[b] >= 1000 else f"{r[b]:.2f}" for b in backends)
        lines.append(f"| {r['op']} | {r['dtype']} | {cells} | {bound} |")
    return "\n".join(lines)


def _environment() -> str:
    import platform

    torch = _torch_module()
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return (f"Machine: {cpu}; numpy {np.__version__}, fastact {fastact.__version__}"
            + (f", torch {torch.__version__}" if torch is not None else ", no torch") + ".")


def write_report(path: str, results: list[dict[Any, Any]], backends: Any, points: int, seed: int, command: str) -> None:
    """The sweep as a markdown report, with its chart beside it where matplotlib is installed."""
    from pathlib import Path

    from . import plot

    lines = ["# fastact accuracy", "", f"Generated by `{command}` (not edited by hand): the largest error in ULP",
             f"against mpmath over {points} points per dtype (seed {seed}), per op, dtype and backend.", "",
             _METHOD, "", _environment(), "", format_table(results, backends), ""]
    try:
        chart = plot.plot_accuracy(results, Path(path).with_suffix(".png"))
    except RuntimeError as exc:  # no matplotlib
        print(f"no chart: {exc}", file=sys.stderr)
    else:
        lines += [f"![largest error per op against its bound]({chart.name})", ""]
    Path(path).write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastact.accuracy", description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=_cli.int_between(100), default=20000,
                        help="sample size per dtype (default 20000); the rows scale with it")
    parser.add_argument("--seed", type=_cli.int_between(0), default=0)
    parser.add_argument("--quick", action="store_true", help="a small sample: --points 2000")
    parser.add_argument("--markdown", action="store_true", help="print only the table")
    parser.add_argument("--report", metavar="FILE",
                        help="also write a markdown report (command, table) and its chart (FILE with .png)")
    args = parser.parse_args(argv)
    points = 2000 if args.quick else args.points
    backends = available_backends()
    results = sweep(points, args.seed, backends)
    if not args.markdown:
        print(f"fastact {fastact.__version__} accuracy sweep: {points} points per dtype, seed {args.seed}")
    print(format_table(results, backends))
    if args.report:
        write_report(args.report, results, backends, points, args.seed,
                     "python -m fastact.accuracy " + " ".join(argv if argv is not None else sys.argv[1:]))
    failed = [r for r in results if r["bound"] is not None and r["numba"] > (r["known_gap"] or r["bound"])]
    for r in failed:
        print(f"FAIL: {r['op']} {r['dtype']} numba backend {r['numba']:.2f} ULP > {r['bound']:g}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
