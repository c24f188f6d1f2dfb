"""Accuracy sweep: maximum error in ULPs against mpmath, for every op and backend.

Run ``python -m fastact.accuracy`` (needs mpmath; the ``test`` extra has it).
Options: ``--points N`` per dtype, ``--seed``, ``--markdown`` for a table to
paste into the README, ``--quick`` for a small sample.

Elementwise ops are measured on a dense sample of the whole float range:
random bit patterns (every exponent equally likely), a uniform grid over the
region where the function changes, and the extremes (0, -0.0, the smallest
subnormal, the largest finite value).  Softmax and log_softmax are measured
on rows of up to 65536 elements.  The error of a result c against the exact
value v is |c - v| / ulp(v), with ulp(v) the spacing of the dtype's floats at
v (the subnormal spacing below the normal range).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

import fastact
from fastact import _activations

DTYPES = (np.float32, np.float64)
# Where each dtype's sigmoid goes from 0 to 1, tails included.
_GRID_HALF_WIDTH = {np.float32: 110.0, np.float64: 750.0}


def _mpmath():
    try:
        import mpmath
    except ImportError:  # pragma: no cover
        sys.exit("the accuracy sweep needs mpmath: pip install 'fastact[test]'")
    mpmath.mp.prec = 160
    return mpmath


def sample_points(dtype, n: int, seed: int = 0) -> np.ndarray:
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


def ulp_errors(computed: np.ndarray, exact: Iterable, dtype, normal_only: bool = False) -> np.ndarray:
    """|computed - exact| in ULPs of ``dtype`` at ``exact`` (mpmath numbers).

    ``normal_only``: count only exact values in the normal range (0 elsewhere),
    for libraries that flush subnormal results to zero.
    """
    mp = _mpmath()
    info = np.finfo(dtype)
    lowest_exp = int(info.minexp) - int(info.nmant)
    overflow = mp.mpf(float(info.max)) * (1 + mp.mpf(2) ** (-int(info.nmant) - 1))
    errors = np.empty(len(computed))
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
        exponent = lowest_exp if v == 0 else max(int(mp.floor(mp.log(abs(v), 2))) - int(info.nmant), lowest_exp)
        errors[k] = float(abs(mp.mpf(c) - v) / mp.ldexp(1, exponent))
    return errors


@dataclass
class Case:
    """One row of the accuracy table: an op, what of it is measured, and its bound."""

    name: str
    bound: float | None  # the required maximum in ULPs (None: reported only)
    run: Callable[[type, np.ndarray, np.ndarray], np.ndarray]  # (dtype, x, g) -> computed
    exact: Callable  # (mp, x, g) -> exact value
    rows: bool = False


def elementwise_cases() -> list[Case]:
    cases = []
    bounds = {"sigmoid": (2.0, 4.0), "relu": (0.0, 0.0)}
    for name, act in _activations.ELEMENTWISE.items():
        op = fastact.ACTIVATIONS[name]
        forward_bound, grad_bound = bounds[name]
        cases += [
            Case(f"{name}", forward_bound, lambda dt, x, g, op=op: op(x), lambda mp, x, g, a=act: a.reference(mp, x)),
            Case(f"{name}.grad", grad_bound, lambda dt, x, g, op=op: op.grad(x),
                 lambda mp, x, g, a=act: a.reference_df(mp, x)),
            Case(f"{name}.backward(g, x=x)", grad_bound, lambda dt, x, g, op=op: op.backward(g, x=x),
                 lambda mp, x, g, a=act: g * a.reference_df(mp, x)),
        ]
    return cases


def _random_rows(dtype, seed: int, quick: bool) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = [(64, 4), (16, 100), (4, 1000), (1, 65536)] if not quick else [(16, 4), (4, 100), (1, 2000)]
    rows = []
    for rows_n, n in shapes:
        for scale in (1.0, 30.0):
            rows.append((rng.standard_normal((rows_n, n)) * scale).astype(dtype))
    rows.append(np.array([[2, 10, 1, 4]], dtype))
    return rows


def _softmax_exact(mp, row):
    m = max(row)
    e = [mp.exp(mp.mpf(v) - m) for v in row]
    s = mp.fsum(e)
    return [t / s for t in e]


def _log_softmax_exact(mp, row):
    m = max(row)
    log_s = mp.log(mp.fsum(mp.exp(mp.mpf(v) - m) for v in row))
    return [(mp.mpf(v) - m) - log_s for v in row]


def row_cases() -> list[Case]:
    return [
        Case("softmax", 8.0, lambda dt, x, g: fastact.softmax(x), _softmax_exact, rows=True),
        Case("log_softmax", 8.0, lambda dt, x, g: fastact.log_softmax(x), _log_softmax_exact, rows=True),
    ]


def _torch_runs() -> dict[str, Callable] | None:
    """PyTorch's kernels for the same cases, to compare against (if torch is installed)."""
    try:
        import torch
    except ImportError:
        return None
    aten = torch.ops.aten
    t = torch.from_numpy

    def grad(fn):
        return lambda dt, x, g: fn(torch.ones_like(t(x)), t(x)).numpy()

    return {
        "sigmoid": lambda dt, x, g: torch.sigmoid(t(x)).numpy(),
        "sigmoid.grad": grad(lambda g, x: aten.sigmoid_backward(g, torch.sigmoid(x))),
        "sigmoid.backward(g, x=x)": lambda dt, x, g: aten.sigmoid_backward(t(g), torch.sigmoid(t(x))).numpy(),
        "relu": lambda dt, x, g: torch.relu(t(x)).numpy(),
        "relu.grad": grad(lambda g, x: aten.threshold_backward(g, x, 0)),
        "relu.backward(g, x=x)": lambda dt, x, g: aten.threshold_backward(t(g), t(x), 0).numpy(),
        "softmax": lambda dt, x, g: torch.softmax(t(x), -1).numpy(),
        "log_softmax": lambda dt, x, g: torch.log_softmax(t(x), -1).numpy(),
    }


def measure(case: Case, dtype, backend: str, points: int, seed: int, quick: bool, normal_only: bool = False) -> float:
    """Max ULP error of ``case`` on ``backend`` ("numba", "numpy", or "torch")."""
    mp = _mpmath()
    if backend == "torch":
        case = Case(case.name, case.bound, _torch_runs()[case.name], case.exact, case.rows)
        backend = "numba"  # only selects fastact's backend, which torch does not use
    with fastact.use_backend(backend):
        if case.rows:
            worst = 0.0
            for rows in _random_rows(dtype, seed, quick):
                computed = case.run(dtype, rows, None)
                for row, crow in zip(rows, computed):
                    exact = case.exact(mp, [mp.mpf(float(v)) for v in row])
                    worst = max(worst, float(ulp_errors(crow, exact, dtype, normal_only).max()))
            return worst
        x = sample_points(dtype, points, seed)
        g = np.random.default_rng(seed + 1).uniform(-2, 2, x.shape).astype(dtype)
        computed = case.run(dtype, x, g)
        exact = (case.exact(mp, mp.mpf(float(xi)), mp.mpf(float(gi))) for xi, gi in zip(x, g))
        return float(ulp_errors(computed, exact, dtype, normal_only).max())


def available_backends() -> tuple[str, ...]:
    return ("numba", "numpy") + (("torch",) if _torch_runs() is not None else ())


def table_columns(backends) -> tuple[str, ...]:
    return tuple(backends) + (("torch, normal results",) if "torch" in backends else ())


def sweep(points: int = 20000, seed: int = 0, quick: bool = False, backends=("numba", "numpy")) -> list[dict]:
    results = []
    for case in elementwise_cases() + row_cases():
        for dtype in DTYPES:
            row = {"op": case.name, "dtype": np.dtype(dtype).name, "bound": case.bound}
            for backend in backends:
                row[backend] = measure(case, dtype, backend, points, seed, quick)
                if backend == "torch":
                    row["torch, normal results"] = measure(case, dtype, backend, points, seed, quick, normal_only=True)
            results.append(row)
    return results


def format_table(results: list[dict], backends=("numba", "numpy")) -> str:
    backends = table_columns(backends)
    head = "| op | dtype | " + " | ".join(f"{b} (max ULP)" for b in backends) + " | required |"
    lines = [head, "|" + "---|" * (3 + len(backends))]
    for r in results:
        bound = "reported" if r["bound"] is None else f"<= {r['bound']:g}"
        cells = " | ".join(f"{r[b]:.3g}" if r[b] >= 1000 else f"{r[b]:.2f}" for b in backends)
        lines.append(f"| {r['op']} | {r['dtype']} | {cells} | {bound} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastact.accuracy", description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=20000, help="sample size per dtype (default 20000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a small sample (2000 points, short rows)")
    parser.add_argument("--markdown", action="store_true", help="print only the table")
    args = parser.parse_args(argv)
    points = 2000 if args.quick else args.points
    backends = available_backends()
    results = sweep(points, args.seed, args.quick, backends)
    if not args.markdown:
        print(f"fastact {fastact.__version__} accuracy sweep: {points} points per dtype, seed {args.seed}")
    print(format_table(results, backends))
    failed = [r for r in results if r["bound"] is not None and r["numba"] > r["bound"]]
    for r in failed:
        print(f"FAIL: {r['op']} {r['dtype']} numba backend {r['numba']:.2f} ULP > {r['bound']:g}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
