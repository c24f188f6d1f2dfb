#!/usr/bin/env bash
# Regression gate: exits non-zero when a guarded benchmark is more than FACTOR
# (default 1.4) slower at HEAD than at BASE.  1.4: on this shared 2-core machine an
# unchanged commit measured up to 1.2x (relu float64, +-0.8 ms of noise) and a 2x
# slowdown measured 1.79x-1.97x.  Usage: scripts/asv-gate.sh [BASE] [HEAD]
#
# It runs `asv continuous` (asv compare always exits 0) in asv's virtualenvs, on
# the gate grid (FASTACT_ASV_GATE=1: forward sigmoid/relu on 1e7 elements and
# softmax on 4096x4096, numba backend, 2 threads).  Rounds alternate between the
# two commits (--interleave-rounds), so drift on a noisy machine hits both alike,
# and asv reports a change only when it is also statistically significant.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${1:-main}
HEAD=${2:-HEAD}
FACTOR=${FASTACT_GATE_FACTOR:-1.4}
ASV=${ASV:-.venv/bin/asv}
[ -x "$ASV" ] || ASV=asv
export FASTACT_ASV_GATE=1
"$ASV" machine --yes > /dev/null
exec "$ASV" continuous --factor "$FACTOR" --split --show-stderr --interleave-rounds -a rounds=4 -a repeat=7 \
    --bench 'Forward.time_forward|Rows.time_forward' "$BASE" "$HEAD"
