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
