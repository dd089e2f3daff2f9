#!/usr/bin/env bash
# Which HTTP stack for nudge-server's routes: hand-written hyper (as today) or axum? Both
# run the same websocket path (`bench/src/bin/http-stack.rs`: bearer token, upgrade,
# tungstenite with an 8 KiB read buffer, join/peer, then an echo), measured over loopback
# by the same client: resident memory per idle joined connection, and the round trip of a
# 300-byte message. Each stack runs `rounds` times, alternating; prints one table.
#
#   bench/http-stack.sh        # 1,000 idle connections, 2,000 round trips, 3 rounds
set -euo pipefail
cd "$(dirname "$0")/.."
connections=1000
trips=2000
rounds=3

echo "building (cargo)..." >&2
cargo build --release -q -p nudge-bench --bins

work=$(mktemp -d)
pid=
cleanup() {
  [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
rss_kib() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }

declare -A per_conn median p99
for round in $(seq "$rounds"); do
  for stack in hyper axum; do
    target/release/http-stack "$stack" >"$work/$stack.out" 2>"$work/$stack.err" &
    pid=$!
    for _ in $(seq 1000); do
      addr=$(sed -n 's/^listening on //p' "$work/$stack.out")
      [[ -n "$addr" ]] && break
      sleep 0.01
    done
    [[ -n "$addr" ]] || { echo "$stack did not start: $(cat "$work/$stack.err")" >&2; exit 1; }
    echo=$(target/release/nudge-bench echo "$addr" "$trips")
    before=$(rss_kib "$pid")
    NUDGE_TOKEN=x target/release/nudge-bench idle "$addr" "$connections" 2 >"$work/idle.out" &
    idle=$!
    for _ in $(seq 3000); do
      grep -q connected "$work/idle.out" && break
      sleep 0.01
    done
    grep -q connected "$work/idle.out" || { echo "$stack: the idle connections did not open" >&2; exit 1; }
    after=$(rss_kib "$pid")
    wait "$idle"
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
    per_conn[$stack]+="$(awk -v a="$after" -v b="$before" -v n="$connections" 'BEGIN { printf "%.1f", (a - b) / n }') "
    median[$stack]+="$(sed 's/.*"median_ms": \([0-9.]*\).*/\1/' <<<"$echo") "
    p99[$stack]+="$(sed 's/.*"p99_ms": \([0-9.]*\).*/\1/' <<<"$echo") "
  done
done

# mid VALUES...: the median of a few numbers.
mid() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "| stack | KiB per idle connection | echo median (ms) | echo p99 (ms) |"
echo "|---|---|---|---|"
for stack in hyper axum; do
  echo "| $stack | $(mid "${per_conn[$stack]}") | $(mid "${median[$stack]}") | $(mid "${p99[$stack]}") |"
done
echo "(each the median of $rounds rounds: $connections idle connections, $trips round trips of 300 bytes)"
for what in per_conn median p99; do
  declare -n values=$what
  h=$(mid "${values[hyper]}"); a=$(mid "${values[axum]}")
  echo "RATIO $what axum/hyper $(awk -v a="$a" -v h="$h" 'BEGIN { printf "%.2f", a / h }')"
done
