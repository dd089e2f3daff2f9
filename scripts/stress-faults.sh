#!/usr/bin/env bash
# Runs the end-to-end fault test (three devices uploading while the server is killed with
# SIGKILL) ROUNDS times COPIES at once, to meet orderings that one run on a quiet machine
# rarely does. Prints how many runs passed, how many acknowledged changes were lost, and
# how many honest devices the servers closed, from the servers' logs; keeps the output of
# every failed run. Usage: bash scripts/stress-faults.sh [ROUNDS] [COPIES]  (20 8)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-20}
copies=${2:-8}
cargo build -q --workspace --bins
bin=$(cargo test -p nudge-tests --test e2e --no-run 2>&1 | sed -n 's/.*(\(target\/[^)]*e2e-[^)]*\)).*/\1/p' | tail -1)
[[ -x $bin ]] || { echo "stress-faults: cannot find the e2e test binary" >&2; exit 1; }
bin=$PWD/$bin
out=$(mktemp -d)
export NUDGE_TEST_SERVER_LOGS=$out/logs
mkdir -p "$NUDGE_TEST_SERVER_LOGS"
test=faults::acknowledged_changes_survive_kill_9_while_three_devices_upload
for round in $(seq 1 "$rounds"); do
  for copy in $(seq 1 "$copies"); do
    (
      log=$out/run-$round-$copy.log
      if (cd tests && "$bin" "$test" --exact -q >"$log" 2>&1); then rm -f "$log"; fi
    ) &
  done
  wait
done
runs=$((rounds * copies))
failed=$(find "$out" -maxdepth 1 -name 'run-*.log' | wc -l)
lost=$(cat "$out"/run-*.log 2>/dev/null | grep -c "acknowledged changes lost" || true)
closed=$(cat "$NUDGE_TEST_SERVER_LOGS"/*.log | grep -c "never arrived" || true)
echo "$runs runs: $((runs - failed)) passed, $failed failed ($lost with acknowledged changes lost); honest devices closed as 'changes whose dependencies never arrived': $closed"
[[ $failed -eq 0 ]] || echo "failed runs' output: $out"
