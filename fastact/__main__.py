"""``python -m fastact demo``, ``bench``, ``plot`` and ``tune``."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import fastact

# The tutorial's example: four classes and their scores.
TUTORIAL_CLASSES = ("dog", "cat", "puppy", "person")
TUTORIAL_SCORES = (2.0, 10.0, 1.0, 4.0)


def demo(size: int = 10_000_000, repeats: int = 7) -> int:
    from . import bench

    print(f"fastact {fastact.__version__}, backend {fastact.get_backend()}, {fastact.get_num_threads()} threads\n")

    start = time.perf_counter()
    probabilities = fastact.softmax(np.array(TUTORIAL_SCORES))
    compile_s = time.perf_counter() - start
    print("softmax of the tutorial's scores (the row maximum is subtracted first):")
    print(f"  {'class':<8}{'score':>7}{'softmax':>11}")
    for name, score, p in zip(TUTORIAL_CLASSES, TUTORIAL_SCORES, probabilities):
        print(f"  {name:<8}{score:>7g}{p:>11.6f}")
    print(f"  sum = {probabilities.sum():.6f}; predicted class: {TUTORIAL_CLASSES[int(np.argmax(probabilities))]}"
          f"  (first call {compile_s:.2f} s: compile or load from the on-disk cache)\n")

    xs = np.linspace(-6, 6, 1201)
    dsig = fastact.sigmoid.grad(xs)
    print("sigmoid: sigmoid(0) = {:.2f} (the binary threshold); its derivative peaks at {:.4f} at x = {:g},\n"
          "  which is why stacked sigmoids make gradients vanish (0.25 ** 10 = {:.1e}).\n".format(
              fastact.sigmoid(0.0), dsig.max(), xs[np.argmax(dsig)], 0.25 ** 10))

    values = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    print("relu and its derivative (slope 1 above zero, 0 at and below: 'dead' neurons):")
    print("  x        " + "".join(f"{v:>7g}" for v in values))
    print("  relu(x)  " + "".join(f"{v:>7g}" for v in fastact.relu(values)))
    print("  relu'(x) " + "".join(f"{v:>7g}" for v in fastact.relu.grad(values)))
    print()

    print(f"speed on {size:.0e} float32 elements (softmax: rows of 1000), out= preallocated,"
          f" median of {repeats} runs:")
    print(f"  {'op':<12}{'fastact Melem/s':>17}{'numpy Melem/s':>15}{'speedup':>9}{'of copy roofline':>18}")
    for case, shape in (("sigmoid", (size,)), ("relu", (size,)), ("softmax", (size // 1000, 1000))):
        r = bench.run_case(case, "float32", shape, fastact.get_num_threads(), repeats)
        numpy_ms = min(ms for impl, ms in r.times_ms.items() if impl.startswith("numpy"))
        print(f"  {case:<12}{r.n / r.times_ms['fastact'] / 1e3:>17.0f}{r.n / numpy_ms / 1e3:>15.0f}"
              f"{numpy_ms / r.times_ms['fastact']:>8.1f}x{100 * r.roofline_fraction:>17.0f}%")
    print("\nMore: python -m fastact bench --help, python -m fastact.accuracy")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m fastact")
    sub = parser.add_subparsers(dest="command", required=True)
    demo_parser = sub.add_parser("demo", help="the tutorial's examples and a quick speed check")
    demo_parser.add_argument("--size", type=float, default=1e7, help="elements in the timed arrays")
    demo_parser.add_argument("--repeats", type=int, default=7)
    sub.add_parser("bench", help="time fastact against NumPy, SciPy and PyTorch", add_help=False)
    sub.add_parser("plot", help="draw each activation with its derivative (needs matplotlib)", add_help=False)
    sub.add_parser("tune", help="measure this CPU's parallel and short-row thresholds and store them", add_help=False)
    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        from . import bench

        return bench.main(rest)
    if args.command == "tune":
        from . import _tuning

        return _tuning.main(rest)
    if args.command == "plot":
        from . import plot

        return plot.main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return demo(int(args.size), args.repeats)


if __name__ == "__main__":
    sys.exit(main())
