"""The command-line entry points run end to end (on tiny sizes)."""

import json
import subprocess
import sys


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
    out = _run("fastact", "bench", "--ops", "sigmoid,sigmoid.backward,softmax", "--sizes", "1000", "--shapes", "8x128",
               "--dtypes", "float32", "--repeats", "2", "--json", str(path))
    assert "copy roofline" in out
    data = json.loads(path.read_text())
    assert {r["case"] for r in data["results"]} == {"sigmoid", "sigmoid.backward", "softmax"}
    for r in data["results"]:
        assert r["times_ms"]["fastact"] > 0 and r["times_ms"]["copy roofline"] > 0
    assert "numba" in data["environment"]


def test_bench_rejects_unknown_ops():
    result = subprocess.run([sys.executable, "-m", "fastact", "bench", "--ops", "swoosh"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and "unknown ops" in result.stderr


def test_accuracy_sweep_meets_its_bounds():
    out = _run("fastact.accuracy", "--quick")
    assert "| sigmoid | float32 |" in out and "FAIL" not in out


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
        if name == "softsign":  # no ATen kernel: the composite torch.nn.functional.softsign is timed
            assert forward is None and backward is None
            continue
        op = getattr(fastact, name)
        out, y, grad_in = torch.empty_like(tx), torch.empty_like(tx), torch.empty_like(tx)
        assert forward(tx, out) is out
        np.testing.assert_allclose(out.numpy(), op(x), rtol=1e-12, atol=1e-15, err_msg=name)
        grad = backward(tg, tx, forward(tx, y), grad_in)
        assert name == "mish" or grad is grad_in  # mish_backward has no out= overload
        np.testing.assert_allclose(grad.numpy(), op.backward(g, x=x), rtol=1e-12, atol=1e-7, err_msg=name)
