"""Types as a user's type checker sees them: the generated stub, mypy --strict on examples."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fastact
from fastact import _stubs

EXAMPLES = Path(__file__).parent / "typing" / "examples.py"


def test_the_stub_is_generated_from_the_definitions():
    stub = Path(fastact.__file__).with_name("__init__.pyi")
    assert stub.read_text() == _stubs.render(), "run: python -m fastact._stubs > fastact/__init__.pyi"
    declared = stub.read_text().split("\n__all__")[0]
    for name in fastact.__all__:  # every public name (softmin was missing once)
        assert f"\n{name}: " in declared or f"\ndef {name}(" in declared or f"\nclass {name}" in declared, name


def _mypy(path, tmp_path):
    pytest.importorskip("mypy")
    # from another folder, so that fastact is found the way a user's script finds it
    # (the installed package, or the compat editable install's path entry)
    work = tmp_path / "user"
    work.mkdir()
    shutil.copy(path, work / "user_script.py")
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                             "--python-executable", sys.executable, "user_script.py"],
                            cwd=work, capture_output=True, text=True, timeout=600,
                            env={k: v for k, v in os.environ.items() if k != "MYPYPATH"})
    return result.returncode, result.stdout + result.stderr


def test_mypy_strict_is_clean_on_the_package(tmp_path):
    """fastact's own modules under mypy --strict: Numba's kernels are typed Any where Numba,
    not Python, types them.  The files as installed (the clone, or the wheel's), copied out of
    site-packages, where mypy would silence their errors."""
    pytest.importorskip("mypy")
    shutil.copytree(Path(fastact.__file__).parent, tmp_path / "fastact",
                    ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                             "--python-executable", sys.executable, "-p", "fastact"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600,
                            env={k: v for k, v in os.environ.items() if k != "MYPYPATH"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout


def test_mypy_strict_accepts_the_examples_and_rejects_the_bad_calls(tmp_path):
    """examples.py states the inferred types (assert_type) and marks the calls mypy must
    reject (type: ignore[code]; under --strict an unneeded ignore is an error)."""
    code, output = _mypy(EXAMPLES, tmp_path)
    assert code == 0, output


def test_mypy_fails_on_a_wrong_expectation(tmp_path):
    wrong = tmp_path / "wrong.py"
    text = EXAMPLES.read_text()
    text = text.replace("assert_type(fastact.sigmoid(x32), NDArray[np.float32])",
                        "assert_type(fastact.sigmoid(x32), NDArray[np.float64])")
    text = text.replace('fastact.gelu(x32, approximate="fast")  # type: ignore[call-overload]',
                        'fastact.gelu(x32, approximate="fast")')
    wrong.write_text(text)
    code, output = _mypy(wrong, tmp_path)
    assert code == 1
    assert 'Expression is of type "ndarray[tuple[Any, ...], dtype[floating[_32Bit]]]"' in output
    assert "No overload variant" in output and "call-overload" in output
