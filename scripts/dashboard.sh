#!/usr/bin/env bash
# The asv dashboard, self-contained (no CDN), with the project's links.
#   bash scripts/dashboard.sh [RANGE]   benchmark the commits in RANGE (default HEAD~4..HEAD), each in
#                                       asv's own virtualenv (one kind of environment for every commit,
#                                       tbb in its matrix), then publish into .asv/html
#   bash scripts/dashboard.sh --quick   this checkout only, on tiny arrays, in .venv: what CI renders
# View it with `.venv/bin/asv preview` (http://127.0.0.1:8080) or open .asv/html/index.html through any
# web server; it needs no network.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[bench]" --config-settings editable_mode=compat
.venv/bin/asv machine --yes > /dev/null
mkdir -p .asv
if [ "${1:-}" = "--quick" ]; then
    # one sample per benchmark; asv's own --quick would not save the results
    FASTACT_ASV_QUICK=1 .venv/bin/asv run --python=same --set-commit-hash "$(git rev-parse HEAD)" \
        -a repeat=1 -a rounds=1 -a warmup_time=0 --show-stderr > .asv/dashboard-run.log \
        || { tail -50 .asv/dashboard-run.log; exit 1; }
else
    .venv/bin/asv run "${1:-HEAD~4..HEAD}" --skip-existing-commits
fi
.venv/bin/asv publish > /dev/null
.venv/bin/python scripts/dashboard.py vendor .asv/html
echo "dashboard: .asv/html/index.html"
