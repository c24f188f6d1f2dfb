#!/usr/bin/env bash
# Set up a virtual environment in .venv (first run only) with the test extra
# and run the test suite.  Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# compat: a plain path entry for the clone, which type checkers follow (the default import hook they cannot)
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]" --config-settings editable_mode=compat
exec .venv/bin/python -m pytest "$@"
