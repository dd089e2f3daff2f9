#!/usr/bin/env bash
# Our nudge-server beside the servers a user would otherwise deploy, in one run on one
# machine, driven over loopback by the same Rust client (nudge-bench's, which speaks the
# automerge-repo protocol to all three): automerge-repo's Node sync server
# (bench/peer/server.mjs, packages from bench/peer/package-lock.json) and a samod server
# (samod-peer, in the bench crate). Prints one table and one TARGET line per target.
#
#   bench/compare.sh           # full: 1,000 changes relayed on journals of 1,000 and of
#                              # 10,000 shifts, fetches of 10,000 and 100,000 shifts,
#                              # 1,000 stored journals
#   bench/compare.sh --quick   # under 5 minutes: 200 changes relayed on a 1,000-shift
#                              # journal, a fetch of 10,000 shifts, 200 stored journals
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
if [[ "${1:-}" == "--quick" ]]; then quick=1; fi
if ((quick)); then
  changes=200; relays=(1000); fetches=(10000); journals=200; big=10000; devices=(100); load_s=5
else
  changes=1000; relays=(1000 10000); fetches=(10000 100000); journals=1000; big=100000
  devices=(100 1000); load_s=20
fi
# Connections held open for the memory per connection; shifts in each stored journal.
connections=1000
journal_shifts=20
# Our server unloads a document nobody has had open for this many seconds (the peers keep
# every document they have loaded); read in the fetch scenario.
unload_after=10

echo "building and installing (cargo, npm)..." >&2
cargo build --release -q -p nudge-server -p nudge-bench -p nudge-load --bins
# `npm install` installs the versions package-lock.json pins; `npm ci` (npm 11) refuses this
# lockfile over cbor-extract's optional per-platform packages, which npm leaves out of it.
(cd bench/peer && npm install --no-audit --no-fund --loglevel=error >/dev/null)

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# start NAME COMMAND...: runs a server that prints "listening on ADDR"; sets ADDR, PID and
# STARTED_MS (from launch to that line, to within about 10 ms).
start() {
  local name=$1
  shift
  local t0
  t0=$(date +%s%N)
  "$@" >"$work/$name.out" 2>"$work/$name.err" &
  PID=$!
  pids+=("$PID")
  for _ in $(seq 2000); do
    ADDR=$(sed -n 's/^listening on //p' "$work/$name.out")
    if [[ -n "$ADDR" ]]; then
      STARTED_MS=$((($(date +%s%N) - t0) / 1000000))
      return
    fi
    sleep 0.01
  done
  echo "$name did not start: $(cat "$work/$name.err")" >&2
  exit 1
}
rss_mib() { awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
rss_kib() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }
# bytes_per DIR N: bytes on disk in DIR per one of N things.
bytes_per() { du -sk "$1" | awk -v n="$2" '{ printf "%.0f", $1 * 1024 / n }'; }

# server NAME: starts a fresh server of that kind on an empty folder; sets ADDR and PID.
# Every scenario gets a fresh server, which keeps the runs apart; and samod 0.16 now and
# then stops answering a new document (more often once it holds others), so a scenario
# that fails is run once more on another fresh server, and the retry is reported.
run=0
server() {
  run=$((run + 1))
  DIR="$work/$1-$run"
  mkdir -p "$DIR"
  if [[ $1 == ours ]]; then
    token=$(target/release/nudge-server account add bench --data "$DIR" | tail -1)
  fi
  restart "$1"
}
# restart NAME: starts a server of that kind on DIR (its data kept); sets ADDR and PID.
restart() {
  case $1 in
    ours)
      start ours target/release/nudge-server serve --listen 127.0.0.1:0 --data "$DIR" \
        --unload-after "$unload_after" --max-connections-per-address 0 ;;
    node) start node node bench/peer/server.mjs "$DIR" ;;
    samod) start samod target/release/samod-peer "$DIR" ;;
  esac
  sleep 1
}
stop() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }
token=unused
# bench KIND ARGS...: nudge-bench ARGS against the current server of KIND, its output line
# into $work/bench.out; on failure, once more against a fresh server (in this shell, so
# that PID and ADDR follow). A second failure ends the run, or with tolerant=1 is reported
# in the table ("failed"): the scenarios that can overwhelm a peer (a big journal, many
# journals, many devices, and the peers' relays) are tolerant, so that one peer giving up
# does not cost the whole run.
tolerant=0
bench() {
  local kind=$1 attempt
  shift
  for attempt in 1 2; do
    if NUDGE_TOKEN=$token target/release/nudge-bench "$1" "$ADDR" "${@:2}" >"$work/bench.out" 2>"$work/bench.err"; then
      return
    fi
    echo "$kind: $1 failed ($(grep -m1 Error "$work/bench.err"))" >&2
    if ((attempt == 1)); then
      echo "$kind: again on a fresh server" >&2
      stop
      server "$kind"
    fi
  done
  if ((tolerant)); then
    echo "failed failed failed failed failed" >"$work/bench.out"
    return
  fi
  exit 1
}

# load KIND DEVICES: nudge-load's steady writers (a change every 250 ms) and observers
# against the current server of KIND for load_s seconds; sets R[KIND.*DEVICES]. Once more
# on a fresh server if it fails.
load() {
  local out="$work/load.json" attempt
  for attempt in 1 2; do
    if NUDGE_TOKEN=$token target/release/nudge-load --addr "$ADDR" --pid "$PID" \
      --clients "$2" --seconds "$load_s" >"$out" 2>"$work/load.err"; then
      read -r R[$1.tput$2] R[$1.load99_$2] R[$1.cpu$2] R[$1.fail$2] < <(node -e '
        const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))
        console.log(r.throughput_per_s.toFixed(0), r.latency_ms.p99.toFixed(2),
          r.server_cpu_ms_per_change.toFixed(3), r.client_failures + r.changes_not_seen)' "$out")
      return
    fi
    echo "$1: load of $2 devices failed ($(grep -m1 Error "$work/load.err"))" >&2
    stop
    server "$1"
  done
  echo "$1: load of $2 devices failed twice; reported as failed" >&2
  for k in tput load99_ cpu fail; do R[$1.$k$2]=failed; done
}

declare -A R
for s in ours node samod; do
  # A peer that gives up on a relay (twice, on fresh servers) is reported as failed; ours
  # failing ends the run.
  peer=1
  [[ $s == ours ]] && peer=0
  server "$s"
  R[$s.idle]=$(rss_mib "$PID")
  # Each relay: A pushes a journal of $j shifts and B fetches it, then A adds $changes
  # shifts, one change each, and B's arrival times are taken.
  for j in "${relays[@]}"; do
    echo "$s: relay spaced on a $j-shift journal..." >&2
    tolerant=$peer bench "$s" relay "$changes" 150 "$j"
    read -r R[$s.sp50_$j] R[$s.sp99_$j] _ <"$work/bench.out"
    stop
    server "$s"
    echo "$s: relay back to back on a $j-shift journal..." >&2
    tolerant=$peer bench "$s" relay "$changes" 0 "$j"
    read -r R[$s.bb50_$j] R[$s.bb99_$j] _ <"$work/bench.out"
    stop
    server "$s"
  done
  for n in "${fetches[@]}"; do
    echo "$s: fetch of $n shifts..." >&2
    bench "$s" fetch "$n"
    read -r R[$s.fetch$n] R[mem.fetch$n] <"$work/bench.out"
  done
  R[$s.loaded]=$(rss_mib "$PID")
  R[$s.disk_fetch]=$(bytes_per "$DIR" "${fetches[-1]}")
  # What holding the documents costs once the transient memory of the runs is handed back.
  sleep 5
  R[$s.settled]=$(rss_mib "$PID")
  if [[ $s == ours ]]; then
    # Nobody has had the documents open for more than `unload_after` seconds.
    sleep $((unload_after + 3))
    R[$s.unloaded]=$(rss_mib "$PID")
  else
    R[$s.unloaded]="keeps"
  fi
  stop

  server "$s"
  echo "$s: a $big-shift journal taking 1,100 changes beside a relay..." >&2
  tolerant=1 bench "$s" stall "$big"
  read -r R[$s.alone99] R[$s.alonemax] R[$s.during99] R[$s.duringmax] R[$s.writer] <"$work/bench.out"
  stop

  for n in "${devices[@]}"; do
    server "$s"
    echo "$s: $n devices writing steadily..." >&2
    load "$s" "$n"
    stop
  done

  server "$s"
  echo "$s: $connections idle connections..." >&2
  before=$(rss_kib "$PID")
  NUDGE_TOKEN=$token target/release/nudge-bench idle "$ADDR" "$connections" 3 >"$work/idle.out" &
  client=$!
  for _ in $(seq 600); do
    if grep -q connected "$work/idle.out"; then break; fi
    sleep 0.1
  done
  grep -q connected "$work/idle.out" || { echo "$s: the idle connections did not open" >&2; exit 1; }
  sleep 1
  R[$s.perconn]=$((($(rss_kib "$PID") - before) / connections))
  wait "$client"
  stop

  server "$s"
  echo "$s: $journals stored journals, then a cold start..." >&2
  tolerant=1 bench "$s" populate "$journals" "$journal_shifts"
  first=$(head -1 "$work/bench.out")
  R[$s.docs]=$(rss_mib "$PID")
  R[$s.perdoc]=$(awk -v a="${R[$s.docs]}" -v b="${R[$s.idle]}" -v n="$journals" 'BEGIN { printf "%.0f", (a - b) * 1024 / n }')
  if [[ $first == failed* ]]; then R[$s.docs]=failed; R[$s.perdoc]=failed; fi
  stop
  R[$s.disk_journals]=$(bytes_per "$DIR" $((journals * journal_shifts)))
  restart "$s"
  R[$s.cold_listen]=$STARTED_MS
  R[$s.cold_rss]=$(rss_mib "$PID")
  R[$s.cold_get]=failed
  if [[ $first != failed* ]] &&
    NUDGE_TOKEN=$token target/release/nudge-bench get "$ADDR" "$first" "$journal_shifts" >"$work/bench.out"; then
    R[$s.cold_get]=$(cat "$work/bench.out")
  fi
  stop
done

ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/) print "-"; else if (b == 0) print "inf"; else printf "%.2f", a / b
  }'
}
echo
echo "## bench/compare.sh $([[ $quick == 1 ]] && echo --quick) ($(date -u +%Y-%m-%d), $(nproc) cores)"
echo
echo "| figure | ours (durable) | Node server | samod server | ours / samod | ours / Node |"
echo "|---|---|---|---|---|---|"
row() { echo "| $1 | ${R[ours.$2]} | ${R[node.$2]} | ${R[samod.$2]} | $(ratio "${R[ours.$2]}" "${R[samod.$2]}") | $(ratio "${R[ours.$2]}" "${R[node.$2]}") |"; }
for j in "${relays[@]}"; do
  row "one change (a new shift) A->server->B on a $j-shift journal, spaced 150 ms, p50 (ms)" "sp50_$j"
  row "the same, p99 (ms)" "sp99_$j"
  row "back to back, p50 (ms)" "bb50_$j"
  row "back to back, p99 (ms)" "bb99_$j"
done
for n in "${fetches[@]}"; do
  row "new client fetches $n shifts (ms; in memory: ${R[mem.fetch$n]})" "fetch$n"
done
row "server RSS idle (MiB)" idle
row "server RSS right after the fetches, documents loaded (MiB)" loaded
row "server RSS 5 s later, documents still loaded (MiB)" settled
row "server RSS $((unload_after + 8)) s later (ours unloads documents unused for ${unload_after} s; the peers keep them) (MiB)" unloaded
row "bytes on disk per shift, the ${fetches[-1]}-shift journal" disk_fetch
row "relay on a small journal, spaced 20 ms, alone: p99 (ms)" alone99
row "the same, alone: max (ms)" alonemax
row "the same while a $big-shift journal takes 1,100 changes back to back: p99 (ms)" during99
row "the same, during: max (ms)" duringmax
row "the $big-shift journal's 1,100 changes, sent to all stored (ms)" writer
for n in "${devices[@]}"; do
  row "$n devices on $((n / 2)) journals, half writing every 250 ms: changes seen per s" "tput$n"
  row "the same: p99 writer -> observer (ms)" "load99_$n"
  row "the same: server CPU per change (ms)" "cpu$n"
  row "the same: failed clients + changes never seen" "fail$n"
done
row "server RSS per idle connection, $connections open (KiB)" perconn
row "server RSS with $journals journals of $journal_shifts shifts just pushed (MiB)" docs
row "the same, per journal (KiB)" perdoc
row "bytes on disk per shift, $journals journals of $journal_shifts" disk_journals
row "cold start on $journals journals: launch to listening (ms)" cold_listen
row "cold start: server RSS when listening (MiB)" cold_rss
row "cold start: a new client fetches one journal (ms)" cold_get
echo

# target NAME OURS PEER OK: one line; OK is an awk condition on o (ours) and p (peer). A
# figure of ours that failed misses; a peer's that failed (twice, on fresh servers) is
# beaten by any figure of ours.
target() {
  local verdict
  if [[ $2 == failed ]]; then
    verdict=missed
  elif [[ $3 == failed ]]; then
    verdict=ok
  else
    verdict=$(awk -v o="$2" -v p="$3" "BEGIN { if ($4) print \"ok\"; else print \"missed\" }")
  fi
  echo "TARGET $1 ours=$2 peer=$3 ratio=$(ratio "$2" "$3") $verdict"
}
for j in "${relays[@]}"; do
  target "spaced_p50_vs_samod_${j}shifts" "${R[ours.sp50_$j]}" "${R[samod.sp50_$j]}" "o <= p"
  target "spaced_p50_vs_node_4x_${j}shifts" "${R[ours.sp50_$j]}" "${R[node.sp50_$j]}" "o * 4 <= p"
  target "spaced_p99_vs_samod_${j}shifts" "${R[ours.sp99_$j]}" "${R[samod.sp99_$j]}" "o <= p"
  target "back_to_back_p50_under_2ms_${j}shifts" "${R[ours.bb50_$j]}" 2 "o < p"
  target "back_to_back_p99_under_10ms_${j}shifts" "${R[ours.bb99_$j]}" 10 "o < p"
done
target fetch10000_within_1.5x_in_memory "${R[ours.fetch10000]}" "${R[mem.fetch10000]}" "o <= 1.5 * p"
target fetch10000_vs_samod "${R[ours.fetch10000]}" "${R[samod.fetch10000]}" "o < p"
target fetch10000_vs_node "${R[ours.fetch10000]}" "${R[node.fetch10000]}" "o < p"
target idle_rss_vs_samod "${R[ours.idle]}" "${R[samod.idle]}" "o <= p"
target loaded_rss_vs_samod "${R[ours.settled]}" "${R[samod.settled]}" "o <= p"
target loaded_rss_vs_node_5x "${R[ours.settled]}" "${R[node.settled]}" "o * 5 <= p"
for n in "${devices[@]}"; do
  target "devices${n}_without_errors" "${R[ours.fail$n]}" 0 "o == p"
done
target idle_connection_under_64KiB "${R[ours.perconn]}" 64 "o < p"
target idle_documents_leave_memory "${R[ours.unloaded]}" "${R[ours.settled]}" "o < p"
# A stall would be a document's whole save or load blocking the others: tens of ms or more
# at these sizes. The peers' figures are in the table.
target no_stall_beside_a_big_journal_max_under_50ms "${R[ours.duringmax]}" 50 "o < p"
