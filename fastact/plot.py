"""Pictures: each activation with its derivative, the tutorial's softmax, speed and accuracy charts.

``python -m fastact plot [OPS ...] --out DIR`` draws, as the tutorial does, each
activation and its derivative (``DIR/<op>.png``), all of them on one sheet
(``DIR/activations.png``), and the softmax of the tutorial's four scores as a
bar chart (``DIR/softmax.png``).  ``bench --report FILE`` and ``accuracy
--report FILE`` write their charts beside the report (``FILE`` with ``.png``).

Needs matplotlib: ``pip install 'fastact[plot]'``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import fastact

from .__main__ import TUTORIAL_CLASSES, TUTORIAL_SCORES

X_RANGE = (-5.0, 5.0)


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("drawing needs matplotlib: pip install 'fastact[plot]'") from None
    matplotlib.use("Agg")  # files only, no screen
    import matplotlib.pyplot as plt

    return plt


def _draw_activation(ax: Any, op: Any, x: np.ndarray) -> None:
    y, dy = op.value_and_grad(x)
    ax.axhline(0, color="0.8", lw=0.8)
    ax.axvline(0, color="0.8", lw=0.8)
    ax.plot(x, y, lw=2, label=f"{op.name}(x)")
    ax.plot(x, dy, lw=1.5, ls="--", label=f"{op.name}'(x)")
    ax.set_title(op.name)
    ax.set_xlim(*X_RANGE)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")


def plot_activations(ops: Sequence[str], out: Path) -> list[Path]:
    """``out/<op>.png`` for each op and ``out/activations.png`` with all of them."""
    plt = _pyplot()
    out.mkdir(parents=True, exist_ok=True)
    x = np.linspace(*X_RANGE, 1001)
    written = []
    for name in ops:
        fig, ax = plt.subplots(figsize=(5, 3.5), dpi=80)
        _draw_activation(ax, fastact.ACTIVATIONS[name], x)
        ax.set_xlabel("x")
        fig.tight_layout()
        written.append(out / f"{name}.png")
        fig.savefig(written[-1])
        plt.close(fig)
    cols = min(4, len(ops))
    rows = math.ceil(len(ops) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), dpi=80, squeeze=False)
    for ax, name in zip(axes.flat, ops):
        _draw_activation(ax, fastact.ACTIVATIONS[name], x)
    for ax in list(axes.flat)[len(ops):]:
        ax.axis("off")
    fig.suptitle("fastact: each activation (solid) and its derivative (dashed)")
    fig.tight_layout()
    written.append(out / "activations.png")
    fig.savefig(written[-1])
    plt.close(fig)
    return written


def plot_softmax(out: Path) -> Path:
    """The softmax of the tutorial's four scores, as a bar chart (``out/softmax.png``)."""
    plt = _pyplot()
    out.mkdir(parents=True, exist_ok=True)
    p = fastact.softmax(np.array(TUTORIAL_SCORES))
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=80)
    bars = ax.bar(TUTORIAL_CLASSES, p, color=["0.6", "tab:blue", "0.6", "0.6"])
    for bar, score, value in zip(bars, TUTORIAL_SCORES, p):
        ax.annotate(f"{value:.6f}\n(score {score:g})", (bar.get_x() + bar.get_width() / 2, value),
                    ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, 1.25)
    ax.set_ylabel("probability")
    ax.set_title(f"softmax{TUTORIAL_SCORES}: sums to {p.sum():.6f}")
    fig.tight_layout()
    path = out / "softmax.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_speedups(results: Any, path: Path) -> Path:
    """fastact's speed-up over each peer, per case (log scale): a ``bench --report`` chart."""
    plt = _pyplot()
    peers = ("numpy", "torch", "jax")
    labels = [f"{r.label} {r.dtype} {'x'.join(map(str, r.shape))}" for r in results]
    fig, ax = plt.subplots(figsize=(8, 0.28 * len(results) + 1.5), dpi=80)
    height = 0.8 / len(peers)
    for i, peer in enumerate(peers):
        ratios = []
        for r in results:
            times = [ms for impl, ms in r.times_ms.items() if impl == peer or (peer == "numpy" and
                                                                             impl.startswith("numpy"))]
            ratios.append(min(times) / r.times_ms["fastact"] if times else np.nan)
        ax.barh(np.arange(len(results)) + i * height, ratios, height, label=f"vs {peer}")
    ax.axvline(1, color="k", lw=1)
    ax.set_xscale("log")
    ax.set_yticks(np.arange(len(results)) + height, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("peer's time / fastact's time (right of 1: fastact is faster)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_accuracy(results: Sequence[dict[Any, Any]], path: Path, backend: str = "numba") -> Path:
    """Each op's largest error in ULP, float32 and float64, against its bound (log scale):
    an ``accuracy --report`` chart."""
    plt = _pyplot()
    ops = list(dict.fromkeys(r["op"] for r in results))
    fig, ax = plt.subplots(figsize=(8, 0.22 * len(ops) + 1.5), dpi=80)
    for i, dtype in enumerate(("float32", "float64")):
        rows = {r["op"]: r for r in results if r["dtype"] == dtype}
        ax.barh(np.arange(len(ops)) + 0.4 * i, [max(rows[o][backend], 0.01) if o in rows else np.nan for o in ops],
                0.4, label=dtype)
    bounds = [next((r["bound"] for r in results if r["op"] == o), None) for o in ops]
    ax.scatter([b if b is not None else np.nan for b in bounds], np.arange(len(ops)) + 0.2, marker="|", s=120,
               color="k", label="bound", zorder=3)
    ax.set_xscale("log")
    ax.set_yticks(np.arange(len(ops)) + 0.2, ops, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"largest error, ULP ({backend} backend)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m fastact plot",
                                     description="Draw each activation with its derivative, and the tutorial's "
                                                 "softmax.")
    parser.add_argument("ops", nargs="*", help=f"ops to draw (default: all of {', '.join(fastact.ACTIVATIONS)})")
    parser.add_argument("--out", type=Path, default=Path("fastact-plots"), help="the folder (default fastact-plots)")
    args = parser.parse_args(argv)
    unknown = [op for op in args.ops if op not in fastact.ACTIVATIONS]
    if unknown:
        parser.error(f"unknown ops {unknown}; choose from {', '.join(fastact.ACTIVATIONS)}")
    try:
        written = plot_activations(args.ops or list(fastact.ACTIVATIONS), args.out)
        written.append(plot_softmax(args.out))
    except RuntimeError as exc:
        parser.exit(2, f"python -m fastact plot: {exc}\n")
    for path in written:
        print(path)
    return 0
