#!/usr/bin/env bash
# Set up a virtual environment in .venv (first run only) and run the demo:
# the tutorial's examples and a speed check on 1e7-element arrays.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e . --config-settings editable_mode=compat
exec .venv/bin/python -m fastact demo "$@"
