#!/usr/bin/env bash
# Runs the timing-sensitive tests (pytest marker `timing`, listed in tests/conftest.py) again
# with CPU burners beside them, as on a busy CI machine: two by default, one per core here.
#
#   bash scripts/test_under_load.sh                  # the timing tests, two burners
#   LOAD_MARK= bash scripts/test_under_load.sh       # the whole suite, two burners
#   BURNERS=4 bash scripts/test_under_load.sh -x     # more load; extra args go to pytest
#
# The burners are bounded by LOAD_LIMIT_S (default 1200 s) and killed when pytest ends.
set -euo pipefail
cd "$(dirname "$0")/.."

burners="${BURNERS:-2}"
limit_s="${LOAD_LIMIT_S:-1200}"
mark="${LOAD_MARK-timing}"

pids=()
stop_burners() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap stop_burners EXIT

for _ in $(seq "$burners"); do
    timeout "$limit_s" python -c "while True: pass" &
    pids+=("$!")
done
echo "== pytest ${mark:+-m $mark }with $burners CPU burners (pids ${pids[*]}) beside it"
args=(-p no:cacheprovider)
if [ -n "$mark" ]; then
    args+=(-m "$mark")
fi
timeout "$limit_s" python -m pytest "${args[@]}" "$@"
