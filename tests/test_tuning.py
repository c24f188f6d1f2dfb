"""Thresholds measured on the machine: defaults, the stored entry per machine, `tune`."""

import json
import os
import subprocess
import sys

import pytest

from fastact import _activations, _rowops, _tuning

from .conftest import run_python


def test_the_defaults_cover_the_ops():
    assert set(_tuning.DEFAULTS.serial_ns) <= set(_activations.ELEMENTWISE)  # an op added since: UNMEASURED
    assert set(_tuning.DEFAULTS.short_row_max) == {*_rowops.ROW_FUNCTIONS, "softmax_cross_entropy"}
    assert set(_tuning.DEFAULTS.parallel_min_ns) == set(_tuning.DEFAULTS.row_parallel_min_elements) == {"omp", "tbb"}
    assert _tuning.DEFAULTS.serial_cost("an op not measured", 8) == _tuning.UNMEASURED_SERIAL_NS[1]
    assert set(_tuning.DEFAULTS.backward_ratio) == set(_tuning.DEFAULTS.serial_ns)
    assert set(_tuning.DEFAULTS.streamed_over_plain) == {"relu"}
    assert _tuning.DEFAULTS.streams(4) and _tuning.DEFAULTS.streams(8)  # znver4's figures: streaming pays
    # no machine timing in the math definitions
    assert not hasattr(_activations.SIGMOID, "serial_ns")
    assert not hasattr(_rowops.SOFTMAX.forward, "short_row_max")


def test_each_kind_costs_the_forward_times_its_backward_ratio():
    t = _tuning.DEFAULTS
    forward, ratio = t.serial_ns["celu"][1], t.backward_ratio["celu"][1]
    assert ratio < 1 < t.backward_ratio["relu"][1]  # celu's derivative is the cheaper, relu's the dearer
    assert t.serial_cost("celu", 8) == t.serial_cost("celu", 8, "forward") == forward
    assert t.serial_cost("celu", 8, "backward_x") == t.serial_cost("celu", 8, "grad") == forward * ratio
    assert t.serial_cost("celu", 8, "value_and_grad") == forward  # the larger of the two
    assert t.serial_cost("celu", 8, "backward_y") == forward * ratio  # the smaller
    relu, relu_ratio = t.serial_ns["relu"][0], t.backward_ratio["relu"][0]
    assert t.serial_cost("relu", 4, "value_and_grad") == relu * relu_ratio
    assert t.serial_cost("relu", 4, "backward_y") == relu
    assert t.serial_cost("celu", 8, "a gated kind") == forward
    assert t.serial_cost("an op not measured", 4, "backward_x") == _tuning.UNMEASURED_SERIAL_NS[0]


_REPORT = """
import json
import numpy as np
import fastact
from fastact import _api, _kernels, _tuning
t = _tuning.current()
x = np.random.default_rng(0).standard_normal((50, 3)).astype(np.float32)
print(json.dumps({
    "source": t.source,
    "softmax short rows": t.short_row_max["softmax"],
    "log_softmax short rows": t.short_row_max["log_softmax"],
    "tbb rows": t.row_parallel_min_elements["tbb"],
    "blocks at 2": _kernels.uses_blocks("softmax", 2, 4), "blocks at 3": _kernels.uses_blocks("softmax", 3, 4),
    "sigmoid ns": t.serial_cost("sigmoid", 4),
    "sigmoid backward ns": [t.serial_cost("sigmoid", 4, "backward_x"), t.serial_cost("sigmoid", 8, "backward_x")],
    "gufunc agrees": bool((fastact.softmax.gufunc(x) == fastact.softmax(x)).all()),
    "tiny sigmoid parallel": _api._goes_parallel(fastact.sigmoid._act, 64, 4),
    "relu streams": [_api._streams(fastact.relu._act, "forward", [np.empty(1 << 14, d)]) for d in ("f4", "f8")],
    "streaming": _tuning.current().streaming_source,
}))
"""


def _stored(tmp_path, key: str, entry: dict) -> dict:
    (tmp_path / "tuning.json").write_text(json.dumps({key: entry, "another CPU / x / 2 cores": {"source": "other"}}))
    return dict(FASTACT_TUNING_DIR=str(tmp_path), FASTACT_TUNING="")


def test_a_process_loads_the_entry_for_its_machine(tmp_path):
    key = run_python("from fastact import _tuning; print(_tuning.machine_key())").strip()
    entry = {"source": "test", "serial_ns": {"sigmoid": [1e6, 1e6]}, "backward_ratio": {"sigmoid": [0.5, 3]},
             "parallel_min_ns": {"omp": 0, "tbb": 0},
             # malformed values are ignored: the defaults stand
             "row_parallel_min_elements": {"tbb": "fast"}, "short_row_max": {"softmax": [2, 2], "log_softmax": [7]},
             # streaming pays for float32 on this machine, not for float64
             "streamed_over_plain": {"relu": [0.5, 1.02]}}
    out = json.loads(run_python(_REPORT, **_stored(tmp_path, key, entry), FASTACT_STREAM_MIN_BYTES="1024"))
    assert out["source"] == "test" and out["softmax short rows"] == [2, 2]
    assert out["blocks at 2"] and not out["blocks at 3"]
    assert out["sigmoid ns"] == 1e6 and out["gufunc agrees"]
    assert out["sigmoid backward ns"] == [5e5, 3e6]
    assert out["log_softmax short rows"] == list(_tuning.DEFAULTS.short_row_max["log_softmax"])
    assert out["tbb rows"] == _tuning.DEFAULTS.row_parallel_min_elements["tbb"]
    assert out["relu streams"] == [True, False]
    assert out["streaming"] == "test"  # stored with the entry: not measured again
    import fastact

    assert out["tiny sigmoid parallel"] == (fastact.get_num_threads() > 1)


@pytest.mark.parametrize("content", ["{not json", "[]", json.dumps({"AMD / znver4 / 2 cores": {"source": "x"}})])
def test_an_unreadable_file_or_another_machines_entry_gives_the_defaults(tmp_path, content):
    (tmp_path / "tuning.json").write_text(content)
    out = json.loads(run_python(_REPORT, FASTACT_TUNING_DIR=str(tmp_path), FASTACT_TUNING=""))
    assert out["source"] == _tuning.DEFAULTS.source and out["streaming"] == "defaults"
    assert out["softmax short rows"] == list(_tuning.DEFAULTS.short_row_max["softmax"])


def test_tune_measures_and_stores_for_this_machine(tmp_path):
    env = {**os.environ, "FASTACT_TUNING_DIR": str(tmp_path), "FASTACT_TUNING": ""}
    result = subprocess.run([sys.executable, "-m", "fastact", "tune", "--quick"], capture_output=True, text=True,
                            env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "measuring the serial cost of sigmoid" in result.stderr
    stored = json.loads((tmp_path / "tuning.json").read_text())
    (key, entry), = stored.items()
    assert key in result.stdout
    assert set(entry["serial_ns"]) == set(entry["backward_ratio"]) == set(_activations.ELEMENTWISE)
    assert all(0 < ratio < 100 for pair in entry["backward_ratio"].values() for ratio in pair)
    assert all(0 < ns < 1000 for pair in entry["serial_ns"].values() for ns in pair)
    assert set(entry["short_row_max"]) == {*_rowops.ROW_FUNCTIONS, "softmax_cross_entropy"}
    assert all(n in (1, *_tuning.SHORT_ROW_CANDIDATES) for pair in entry["short_row_max"].values() for n in pair)
    if "1 threads" not in entry["source"]:  # measured on the parallel path only
        assert set(entry["streamed_over_plain"]) == {"relu"}
        assert all(0 < ratio < 10 for ratio in entry["streamed_over_plain"]["relu"])
    shown = subprocess.run([sys.executable, "-m", "fastact", "tune", "--show"], capture_output=True, text=True,
                           env=env, timeout=120)
    assert f"machine: {key}" in shown.stdout and entry["source"] in shown.stdout


def test_the_parallel_crossover_is_timed_through_the_public_call(monkeypatch):
    # measure_parallel_min_ns sends every fastact.sigmoid call it times to the parallel
    # kernel (what the API adds to a parallel call counts), past the busy guard (a
    # back-off in progress, or a cold call taken for a stall, would send them to one
    # thread), and leaves the thresholds and the guard as they were: a small call is
    # serial again afterwards
    import time

    import numpy as np

    import fastact
    from fastact import _threads

    if fastact.get_num_threads() < 2 or fastact.get_backend() != "numba":
        pytest.skip("no parallel kernels")
    busy = {"until": time.monotonic() + 1e6, "backoff": 0.4}  # a back-off in progress
    monkeypatch.setattr(_threads, "_busy", dict(busy))
    noted = []
    monkeypatch.setattr(_threads, "note_parallel_call", lambda *args: noted.append(args) or True)
    parallel_sizes = []
    run = _threads.run

    def recording(kernel, parallel, n, *args, **kwargs):
        if parallel:
            parallel_sizes.append(n)
        return run(kernel, parallel, n, *args, **kwargs)

    monkeypatch.setattr(_threads, "run", recording)
    before = _tuning.current()
    ns = _tuning.measure_parallel_min_ns(1)
    assert set(parallel_sizes) == {1 << k for k in range(9, 21)}
    assert ns is None or ns > 0
    assert _tuning.current() == before
    assert not noted and _threads._busy == busy
    parallel_sizes.clear()
    fastact.sigmoid(np.ones(1 << 12, np.float32))
    assert not parallel_sizes


def test_tune_says_when_it_cannot_store(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    env = {**os.environ, "FASTACT_TUNING_DIR": str(blocker / "sub"), "FASTACT_TUNING": ""}
    result = subprocess.run([sys.executable, "-m", "fastact", "tune", "--quick"], capture_output=True, text=True,
                            env=env, timeout=600)
    assert result.returncode == 1
    assert "python -m fastact tune: cannot store the results:" in result.stderr
    assert "Traceback" not in result.stderr


_FIRST_USE = """
import json
import numpy as np
import fastact
from fastact import _api, _tuning
measured = []
real = _tuning.measure_streamed_over_plain
_tuning.measure_streamed_over_plain = lambda repeat: measured.append(repeat) or real(repeat)
small = _api._streams(fastact.relu._act, "forward", [np.empty(1000)])  # under the bound
before = (_tuning.current().streaming_source, len(measured))
x = np.linspace(-3, 3, 1 << 20)  # 8 MiB: parallel, over the bound
ok = [bool((fastact.relu(x) == np.maximum(x, 0)).all()) for _ in range(2)]
t = _tuning.current()
print(json.dumps({"small": small, "before": before, "measured": measured, "ok": ok, "streaming": t.streaming_source,
                  "ratios": t.streamed_over_plain["relu"], "threads": fastact.get_num_threads(),
                  "streams": [_api._streams(fastact.relu._act, "forward", [np.empty(1 << 15, d)]) for d in ("f4", "f8")],
                  "shown": _tuning.describe(t)}))
"""


def _first_use(tuning_dir, **env) -> dict:
    return json.loads(run_python(_FIRST_USE, FASTACT_TUNING_DIR=str(tuning_dir), FASTACT_STREAM_MIN_BYTES="65536",
                                 **{"FASTACT_TUNING": "", **env}))


def test_the_first_call_that_would_stream_measures_streaming_once_per_machine(tmp_path):
    out = _first_use(tmp_path)
    assert out["ok"] == [True, True] and not out["small"]
    assert out["before"] == ["defaults", 0]  # the small call measured nothing
    if out["threads"] == 1:  # no parallel call, so nothing streams and nothing is measured
        assert out["measured"] == [] and out["streaming"] == "defaults"
        return
    assert out["measured"] == [_tuning.CALIBRATION_REPEAT]  # once, not on the second call
    assert out["streaming"].startswith("measured on first use") and out["streaming"] in out["shown"]
    assert all(0 < ratio < 10 for ratio in out["ratios"])
    assert out["streams"] == [ratio <= _tuning._config.STREAM_MAX_RATIO for ratio in out["ratios"]]
    (entry,) = json.loads((tmp_path / "tuning.json").read_text()).values()
    assert entry["streamed_over_plain"]["relu"] == out["ratios"] and entry["source"] == _tuning.DEFAULTS.source
    again = _first_use(tmp_path)  # the next process reads it
    assert again["measured"] == [] and again["streaming"] == out["streaming"] and again["ratios"] == out["ratios"]


_SPEED = """
import json
import numpy as np
import fastact
from fastact import _api, _tuning
probes = []
real = _tuning.measure_speed
_tuning.measure_speed = lambda repeat: probes.append(repeat) or real(repeat)
small = fastact.sigmoid(np.linspace(-3, 3, 1000))  # serial by any costs
before = (_tuning.current().speed_source, len(probes))
x = np.linspace(-3, 3, 200_000)  # parallel by the defaults' costs (220 us on one thread)
ok = [bool(np.allclose(fastact.sigmoid(x), 1 / (1 + np.exp(-x)), rtol=1e-14, atol=0)) for _ in range(2)]
t = _tuning.current()
print(json.dumps({"before": before, "probes": probes, "ok": ok, "threads": fastact.get_num_threads(),
                  "speed": t.speed_source, "serial_ns": t.serial_ns, "shown": _tuning.describe(t)}))
"""


def test_the_first_call_that_may_go_parallel_scales_the_costs_to_this_cpu_once(tmp_path):
    run = lambda: json.loads(run_python(_SPEED, FASTACT_TUNING_DIR=str(tmp_path), FASTACT_TUNING=""))
    out = run()
    assert out["ok"] == [True, True] and out["before"] == ["defaults", 0]  # the small call measured nothing
    if out["threads"] == 1:  # never parallel: the defaults' costs decide nothing
        assert out["probes"] == [] and out["speed"] == "defaults"
        return
    assert out["probes"] == [3 * _tuning.CALIBRATION_REPEAT]  # once, not on the second call
    assert out["speed"].startswith("scaled on first use") and out["speed"] in out["shown"]
    defaults = _tuning.DEFAULTS.serial_ns
    assert set(out["serial_ns"]) == set(defaults)
    for dtype in (0, 1):  # every op's cost by one factor per dtype, sigmoid's measured one
        scale = out["serial_ns"]["sigmoid"][dtype] / defaults["sigmoid"][dtype]
        assert 0.01 < scale < 100
        for name, pair in out["serial_ns"].items():
            assert pair[dtype] == pytest.approx(defaults[name][dtype] * scale, rel=0.01, abs=0.001), name
    (entry,) = json.loads((tmp_path / "tuning.json").read_text()).values()
    assert entry["source"] == _tuning.DEFAULTS.source and entry["speed_source"] == out["speed"]
    again = run()  # the next process reads it
    assert again["probes"] == [] and again["before"][0] == out["speed"] and again["serial_ns"] == out["serial_ns"]


def test_streaming_measured_where_it_cannot_be_stored_is_kept_in_the_process(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = _first_use(blocker / "sub")
    assert out["ok"] == [True, True]
    if out["threads"] > 1:
        assert out["measured"] == [_tuning.CALIBRATION_REPEAT] and out["streaming"].startswith("measured on first use")
    assert not (blocker / "sub").exists()


def test_the_defaults_asked_for_measure_nothing(tmp_path):
    out = _first_use(tmp_path, FASTACT_TUNING="defaults")
    assert out["ok"] == [True, True] and out["measured"] == [] and out["streaming"] == "defaults"
    assert out["ratios"] == list(_tuning.DEFAULTS.streamed_over_plain["relu"])
    assert not (tmp_path / "tuning.json").exists()
