"""The command-line entry points run end to end (on tiny sizes)."""

import json
import subprocess
import sys

import numpy as np
import pytest


def _run(*args):
    result = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_demo_prints_the_tutorial_figures():
    out = _run("fastact", "demo", "--size", "20000", "--repeats", "2")
    for row in ("dog           2   0.000334", "cat          10   0.997071", "puppy         1   0.000123",
                "person        4   0.002471"):
        assert row in out
    assert "derivative peaks at 0.2500 at x = 0" in out
    assert "relu'(x)       0      0      0      1      1" in out
    for op in ("sigmoid", "relu", "softmax"):
        assert f"\n  {op} " in out


def test_bench_writes_json(tmp_path):
    path = tmp_path / "bench.json"
    out = _run("fastact", "bench", "--ops", "sigmoid,sigmoid.backward,softmax,softmax_cross_entropy.value_and_grad",
               "--sizes", "1000", "--shapes", "8x128", "--dtypes", "float32", "--repeats", "2", "--json", str(path))
    assert "copy roofline" in out
    data = json.loads(path.read_text())
    assert {r["case"] for r in data["results"]} == {"sigmoid", "sigmoid.backward", "softmax",
                                                    "softmax_cross_entropy.value_and_grad"}
    for r in data["results"]:
        assert r["times_ms"]["fastact"] > 0 and r["times_ms"]["copy roofline"] > 0
    assert "numba" in data["environment"]


def test_bench_report_keeps_one_section_per_cpu(tmp_path):
    from fastact import bench

    report = tmp_path / "BENCHMARKS.md"
    other = "<!-- cpu: Some Intel Xeon / sapphirerapids / 2 cores -->\n## Some Intel Xeon\n\ntheir table\n"
    report.write_text(bench.merge_sections("", "Some Intel Xeon / sapphirerapids / 2 cores", other))
    args = ["fastact", "bench", "--ops", "relu", "--sizes", "1000", "--one-thread-sizes", "16", "--dtypes", "float64",
            "--repeats", "1", "--report", str(report)]
    _run(*args)
    _run(*args)  # replaces this CPU's section, keeps the other
    text = report.read_text()
    key = bench.cpu_key(bench.environment())
    assert text.count(f"<!-- cpu: {key} -->") == 1 and text.count("\n## ") == 2
    assert "their table" in text
    ours = text.split(f"<!-- cpu: {key} -->")[1]
    assert "| vector width |" in ours and "| threading layer |" in ours
    assert "### 1 thread (small calls and in-cache sizes)" in ours and "| relu | float64 | 16 |" in ours
    small = ours.split("### Small calls, 1 thread")[1]
    assert "| fastact ufunc us |" in small and "| relu | float64 | 16 |" in small


def test_bench_busy_times_single_calls_beside_a_busy_process(tmp_path):
    path = tmp_path / "busy.json"
    out = _run("fastact", "bench", "--busy", "--calls", "10", "--dtypes", "float32", "--json", str(path))
    assert "beside a CPU-bound process, 10 calls per case" in out and "| p99 / 1 thread |" in out
    busy = json.loads(path.read_text())["busy"]
    assert {(r["case"], tuple(r["shape"])) for r in busy} >= {("gelu", (1_000_000,)), ("softmax", (4096, 16))}
    for r in busy:
        assert r["calls"] == 10 and 0 < r["median_us"] <= r["p99_us"] and 0 < r["one_thread_median_us"]


@pytest.mark.parametrize("args,message", [
    (["--ops", "swoosh"], "argument --ops: 'swoosh' is not an op (choose from sigmoid,"),
    (["--dtypes", "float16"], "argument --dtypes: 'float16' is not float32 or float64"),
    (["--sizes", "abc"], "argument --sizes: 'abc' is not a positive element count"),
    (["--sizes", "1e3,-5"], "argument --sizes: '-5' is not a positive element count"),
    (["--shapes", "64by128"], "argument --shapes: '64by128' is not a ROWSxCOLS shape"),
    (["--gated-shapes", "8x7"], "argument --gated-shapes: the gated units split the columns in two halves"),
    (["--threads", "0"], "argument --threads: 0 is not between 1 and"),
    (["--repeats", "x"], "argument --repeats: 'x' is not an integer"),
])
def test_bench_rejects_bad_options_without_a_traceback(args, message):
    result = subprocess.run([sys.executable, "-m", "fastact", "bench", *args], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_accuracy_rejects_bad_options_without_a_traceback():
    result = subprocess.run([sys.executable, "-m", "fastact.accuracy", "--points", "many"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and "argument --points: 'many' is not an integer" in result.stderr
    assert "Traceback" not in result.stderr


def test_bench_times_the_row_backward_ops_and_names_skipped_peers():
    from fastact import bench

    result = subprocess.run([sys.executable, "-m", "fastact", "bench", "--ops", "log_softmax.backward,softmax.backward",
                             "--shapes", "8x128", "--dtypes", "float32", "--repeats", "2"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "log_softmax.backward" in result.stdout and "softmax.backward" in result.stdout
    for name, how in bench.skipped_peers().items():
        assert f"skipping {name}: not installed ({how})" in result.stderr
    assert "benchmarking [1/4] log_softmax.backward float32 (8, 128)" in result.stderr  # progress, off a terminal
    assert "benchmarking [4/4] softmax.backward float32 (32, 10) on 1 thread" in result.stderr  # the small batch


def test_accuracy_sweep_meets_its_bounds():
    result = subprocess.run([sys.executable, "-m", "fastact.accuracy", "--quick"], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "| sigmoid | float32 |" in result.stdout and "FAIL" not in result.stdout
    assert "accuracy [1/" in result.stderr  # progress, off a terminal


def test_accuracy_rows_scale_with_points():
    from fastact import accuracy

    sizes = {points: sum(r.size for r in accuracy._random_rows(np.float32, 0, points)) for points in (500, 2000, 20000)}
    assert sizes[500] < sizes[2000] < sizes[20000]
    assert max(r.shape[1] for r in accuracy._random_rows(np.float32, 0, 20000)) == 65536


def test_bench_times_torch_kernels_that_compute_the_same_op():
    """The torch column is ATen's own kernels with out= and fastact's default
    parameters: they must compute the op that fastact's column computes."""
    torch = __import__("pytest").importorskip("torch")
    import numpy as np

    import fastact
    from fastact.bench import _torch_out_ops

    rng = np.random.default_rng(0)
    x, g = rng.standard_normal(1000) * 4, rng.standard_normal(1000)
    tx, tg = torch.from_numpy(x), torch.from_numpy(g)
    for name in fastact.ACTIVATIONS:
        forward, backward = _torch_out_ops(torch.ops.aten, name, torch.empty(0, dtype=tx.dtype))
        if name in ("softsign", "tanhshrink", "relu_squared", "quick_gelu"):
            # no ATen kernel: the composite torch.nn.functional function or expression is timed
            assert forward is None and backward is None
            continue
        op = getattr(fastact, name)
        out, y, grad_in = torch.empty_like(tx), torch.empty_like(tx), torch.empty_like(tx)
        assert forward(tx, out) is out
        np.testing.assert_allclose(out.numpy(), op(x), rtol=1e-12, atol=1e-15, err_msg=name)
        grad = backward(tg, tx, forward(tx, y), grad_in)
        assert name == "mish" or grad is grad_in  # mish_backward has no out= overload
        np.testing.assert_allclose(grad.numpy(), op.backward(g, x=x), rtol=1e-12, atol=1e-7, err_msg=name)


def _assert_png(path, min_width=300):
    image = __import__("matplotlib.image", fromlist=["imread"]).imread(path)
    assert image.ndim == 3 and image.shape[1] >= min_width, image.shape
    assert image[..., :3].std() > 0.05  # not a blank page


def test_plot_draws_each_activation_and_the_tutorials_softmax(tmp_path):
    pytest.importorskip("matplotlib")
    out = _run("fastact", "plot", "sigmoid", "relu", "--out", str(tmp_path))
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["activations.png", "relu.png", "sigmoid.png", "softmax.png"]
    assert out.split() == [str(tmp_path / name) for name in ("sigmoid.png", "relu.png", "activations.png",
                                                             "softmax.png")]
    for name in written:
        _assert_png(tmp_path / name)
    result = subprocess.run([sys.executable, "-m", "fastact", "plot", "swoosh"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and "unknown ops ['swoosh']" in result.stderr


def test_reports_come_with_charts(tmp_path):
    pytest.importorskip("matplotlib")
    report = tmp_path / "bench.md"
    _run("fastact", "bench", "--ops", "relu,softmax", "--sizes", "1000", "--shapes", "8x128", "--dtypes", "float32",
         "--repeats", "2", "--report", str(report))
    from fastact import bench

    chart = f"bench-{bench._slug(bench.cpu_key(bench.environment()))}.png"  # one per CPU, beside its section
    assert f"![fastact's speed-up over each peer on this CPU]({chart})" in report.read_text()
    _assert_png(tmp_path / chart)
    from fastact import accuracy, plot

    results = accuracy.sweep(points=200, backends=("numba",))
    accuracy.write_report(str(tmp_path / "accuracy.md"), results, ("numba",), 200, 0, "test")
    text = (tmp_path / "accuracy.md").read_text()
    assert "| sigmoid | float32 |" in text and "(accuracy.png)" in text
    _assert_png(tmp_path / "accuracy.png")
    assert plot.TUTORIAL_SCORES == (2.0, 10.0, 1.0, 4.0)


def test_bench_times_gated_units_and_logsumexp(tmp_path):
    path = tmp_path / "bench.json"
    _run("fastact", "bench", "--ops", "swiglu,geglu.backward,logsumexp", "--gated-shapes", "8x256", "--shapes",
         "8x128", "--dtypes", "float32", "--repeats", "2", "--one-thread-sizes", "16", "--json", str(path))
    results = {r["case"]: r for r in json.loads(path.read_text())["results"]}
    assert set(results) == {"swiglu", "geglu.backward", "logsumexp"}
    assert results["swiglu"]["shape"] == [8, 256] and results["logsumexp"]["shape"] == [8, 128]
    for r in results.values():
        assert r["times_ms"]["fastact"] > 0 and "copy roofline" in r["times_ms"]
    assert "numpy (unfused: fastact op, np.multiply)" in results["swiglu"]["times_ms"]


def test_bench_times_the_small_batch_on_one_thread(tmp_path):
    # the losses and the row ops' plain and backward cases (not where= or temperature=)
    from fastact import bench

    path = tmp_path / "bench.json"
    _run("fastact", "bench", "--ops", "softmax_cross_entropy,softmin.backward,softmax.where", "--shapes", "8x16",
         "--dtypes", "float32", "--repeats", "2", "--one-thread-sizes", "16", "--json", str(path))
    results = json.loads(path.read_text())["results"]
    assert [(r["case"], r["shape"], r["threads"]) for r in results[3:]] == [
        ("softmax_cross_entropy", list(bench.SMALL_BATCH), 1), ("softmin.backward", list(bench.SMALL_BATCH), 1)]
    small = [bench.Result.from_dict(r) for r in results[3:]]
    table = bench.format_small_calls(small)
    assert "| softmax_cross_entropy | float32 | 32x10 |" in table and "| softmin.backward | float32 | 32x10 |" in table


@pytest.mark.parametrize("case", ["softmax_cross_entropy", "softmax_cross_entropy.value_and_grad"])
def test_bench_loss_peers_compute_the_same_loss(case):
    # each implementation the loss cases time returns the mean loss (and its gradient)
    # of the same logits and labels: fastact's, its NumPy backend's, PyTorch's, JAX's
    import fastact
    from fastact import bench

    x = np.random.default_rng(3).normal(0, 3, (32, 10))
    impls = bench._loss_case(case, x, 1)
    assert {"fastact", "numpy (fastact's backend)"} <= set(impls)
    want = impls["fastact"]()
    want_value, want_grad = want if case.endswith("value_and_grad") else (want, None)
    labels = np.random.default_rng(1).integers(0, 10, 32)  # the labels _loss_case draws
    assert want_value == pytest.approx(fastact.softmax_cross_entropy(x, labels), rel=1e-12)
    for name in set(impls) - {"fastact", "np.copyto", "numba copy", "numba stream copy"}:
        got = impls[name]()
        value, grad = got if want_grad is not None else (got, None)
        value = value.detach() if hasattr(value, "detach") else value
        assert float(value) == pytest.approx(float(want_value), rel=1e-9), name
        if want_grad is not None:
            np.testing.assert_allclose(np.asarray(grad), want_grad, rtol=1e-9, atol=1e-15, err_msg=name)
