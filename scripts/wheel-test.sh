#!/usr/bin/env bash
# Build the sdist and the wheel (python -m build), install the wheel with the test
# extra into a fresh virtual environment, and run the test suite against it from a
# folder without the source tree, as a user who installs the wheel would.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PYTHON" -m venv "$work/build-env"
"$work/build-env/bin/python" -m pip install --quiet --disable-pip-version-check build
"$work/build-env/bin/python" -m build --outdir "$work/dist" . > "$work/build.log" || { cat "$work/build.log"; exit 1; }
wheel=$(ls "$work"/dist/fastact-*.whl)
echo "built $(basename "$(ls "$work"/dist/fastact-*.tar.gz)") and $(basename "$wheel")"
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel[test]"
# the tests and the pytest settings (pyproject.toml), nothing else of the clone
mkdir "$work/run"
cp -r tests pyproject.toml "$work/run/"
cd "$work/run"
"$work/venv/bin/python" - <<'PY'
import pathlib, fastact
package = pathlib.Path(fastact.__file__).parent
assert "site-packages" in str(package), package
for name in ("py.typed", "__init__.pyi"):  # what type checkers read
    assert (package / name).is_file(), name
print("testing", package)
PY
"$work/venv/bin/python" -m pytest -p no:cacheprovider "$@" tests
