"""Fingerprints of every op's results, to check that a refactor changed no bit.

    python tools/fingerprint.py > before.json      # on the old commit
    python tools/fingerprint.py > after.json       # on the new one
    python tools/fingerprint.py --diff before.json after.json

Each entry is a SHA-256 of the result bytes of one call: every elementwise op
(default and non-default parameters) and kind (forward, grad, value_and_grad,
backward from x and from y), the row ops in every formulation the kernels have
(rows, blocks of short rows, lanes, grouped lanes, split lanes; serial and on
two threads), their gufuncs and ufuncs, and the losses with every reduction, in
float16/float32/float64, on the numba and the numpy backend.  The sample mixes
normal values of several scales with the special values (+-0, +-inf, NaN,
subnormals, the largest finite values).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys

import numpy as np

import fastact


def _digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.asarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:24]


def _sample(dtype, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    info = np.finfo(dtype)
    parts = [rng.standard_normal(n // 4) * s for s in (0.5, 4.0, 40.0)]
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, info.tiny, -info.tiny, info.smallest_subnormal,
                         -info.smallest_subnormal, info.max, -info.max, 1.0, -1.0, 3.0, -3.0, 6.0])
    x = np.concatenate(parts + [specials, rng.uniform(-20, 20, n - 3 * (n // 4) - specials.size)])
    with np.errstate(over="ignore"):
        return rng.permutation(x).astype(dtype)


def _params(op) -> list[dict]:
    variants = [{}]
    non_default = {"negative_slope": 0.2, "alpha": 0.7, "beta": 2.0, "threshold": 10.0, "min_val": -0.5,
                   "max_val": 2.0, "approximate": "tanh"}
    chosen = {k: non_default[k] for k in op.params if k in non_default}
    if chosen:
        variants.append(chosen)
    return variants


def elementwise(results: dict, backend: str) -> None:
    for dtype in (np.float16, np.float32, np.float64):
        for n in (1000, 300_000):  # serial and parallel kernels
            x = _sample(dtype, n, 1)
            g = _sample(dtype, n, 2)
            for name, op in fastact.ACTIVATIONS.items():
                for kw in _params(op):
                    key = f"{backend}:{name}{kw}:{np.dtype(dtype).name}:{n}"
                    y = op(x, **kw)
                    results[f"{key}:forward"] = _digest(y)
                    results[f"{key}:grad"] = _digest(op.grad(x, **kw))
                    results[f"{key}:value_and_grad"] = _digest(*op.value_and_grad(x, **kw))
                    results[f"{key}:backward_x"] = _digest(op.backward(g, x=x, **kw))
                    if op.supports_y(**kw):
                        results[f"{key}:backward_y"] = _digest(op.backward(g, y=y, **kw))
                    if backend == "numba" and n == 1000 and dtype != np.float16:
                        params = [kw.get(k, v) for k, v in op.params.items() if k != "approximate"]
                        variant = {"approximate": kw["approximate"]} if "approximate" in kw else {}
                        with np.errstate(all="ignore"):
                            results[f"{key}:ufunc"] = _digest(op.get_ufunc("forward", **variant)(x, *params))
                            results[f"{key}:ufunc_grad"] = _digest(op.get_ufunc("grad", **variant)(x, *params))
                            results[f"{key}:ufunc_backward_x"] = _digest(
                                op.get_ufunc("backward_x", **variant)(g, x, *params))


ROW_CASES = [  # (shape, axis): rows, blocks, lanes, grouped lanes, split lanes
    ((300, 10), -1), ((40, 1000), -1), ((3, 70000), -1), ((2000, 10), 0), ((10, 3000), 0),
    ((4, 64, 37), 1), ((4096, 64), 0), ((1, 5), -1), ((7,), 0), ((3, 5, 2), (0, 2)), ((3, 4), None),
]


def rows(results: dict, backend: str) -> None:
    rng = np.random.default_rng(3)
    for dtype in (np.float16, np.float32, np.float64):
        for shape, axis in ROW_CASES:
            x = (rng.standard_normal(shape) * 6).astype(dtype)
            if x.size > 20:
                x.flat[::97] = -np.inf
                x.flat[5] = 80.0
            g = rng.standard_normal(shape).astype(dtype)
            for op in (fastact.softmax, fastact.log_softmax):
                key = f"{backend}:{op.name}:{np.dtype(dtype).name}:{shape}:{axis}"
                y = op(x, axis=axis)
                results[key] = _digest(y)
                results[f"{key}:backward"] = _digest(op.backward(g, y, axis=axis))
                if backend == "numba" and isinstance(axis, int) and dtype != np.float16:
                    with np.errstate(all="ignore"):
                        results[f"{key}:gufunc"] = _digest(op.gufunc(x, axes=[(axis,), (axis,)]))
                        results[f"{key}:backward_gufunc"] = _digest(
                            op.backward_gufunc(g, y, axes=[(axis,), (axis,), (axis,)]))


def losses(results: dict, backend: str) -> None:
    rng = np.random.default_rng(4)
    for dtype in (np.float16, np.float32, np.float64):
        for shape in ((64, 10), (3000, 100), (5, 70000)):
            x = (rng.standard_normal(shape) * 5).astype(dtype)
            x[0, 0] = 200.0
            labels = rng.integers(0, shape[1], shape[0])
            probs = rng.dirichlet(np.ones(shape[1]), shape[0]).astype(dtype)
            t = rng.uniform(0, 1, shape).astype(dtype)
            for reduction in ("mean", "sum", "none"):
                key = f"{backend}:{{}}:{np.dtype(dtype).name}:{shape}:{reduction}"
                xent = fastact.softmax_cross_entropy
                bce = fastact.binary_cross_entropy_with_logits
                results[key.format("xent_index")] = _digest(*xent.value_and_grad(x, labels, reduction=reduction))
                results[key.format("xent_index_loss")] = _digest(xent(x, labels, reduction=reduction))
                results[key.format("xent_prob")] = _digest(*xent.value_and_grad(x, probs, reduction=reduction))
                results[key.format("xent_axis0")] = _digest(*xent.value_and_grad(x.T, labels, axis=0,
                                                                                  reduction=reduction))
                results[key.format("bce")] = _digest(*bce.value_and_grad(x, t, reduction=reduction))
                results[key.format("bce_loss")] = _digest(bce(x, t, reduction=reduction))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--diff", nargs=2, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args(argv)
    if args.diff:
        before, after = (json.load(open(p)) for p in args.diff)
        changed = sorted(k for k in before.keys() & after.keys() if before[k] != after[k])
        missing = sorted(before.keys() ^ after.keys())
        for k in changed:
            print("changed", k)
        for k in missing:
            print("only in one", k)
        print(f"{len(before.keys() & after.keys())} compared, {len(changed)} changed, {len(missing)} in one only")
        return 1 if changed or missing else 0
    results: dict[str, str] = {}
    for threads in (1, 2):
        fastact.set_num_threads(threads)
        part: dict[str, str] = {}
        for backend in ("numba", "numpy"):
            with fastact.use_backend(backend):
                elementwise(part, backend)
                rows(part, backend)
                losses(part, backend)
        results.update({f"t{threads}:{k}": v for k, v in part.items()})
    json.dump(results, sys.stdout, indent=0, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
