#!/usr/bin/env bash
# nudge-server on PostgreSQL beside nudge-server on sled, and two nodes on one database
# beside one: the relay of one change from device A to device B (nudge-bench relay), in
# one run on one machine. Device B syncs with the same node as A, or, in the last row,
# with a second node on the same database, which hears of A's change by NOTIFY and reads
# it back (docs/storage.md). Prints one table, medians and p99 in ms, with ratios against
# the sled server of the same run.
#
#   bench/nodes.sh           # 1,000 changes per row on a 1,000-shift journal
#   bench/nodes.sh --quick   # 200 changes per row
#
# Needs PostgreSQL's programs (Debian's postgresql package: scripts/setup-tests.sh
# installs it); the cluster is made in a temporary folder, on a free port, and stopped at
# the end. As root, PostgreSQL runs as the postgres user.
set -euo pipefail
cd "$(dirname "$0")/.."

changes=1000
if [[ "${1:-}" == "--quick" ]]; then changes=200; fi
shifts=1000

bindir=$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
[[ -x "$bindir/initdb" ]] || { echo "PostgreSQL is not installed (scripts/setup-tests.sh installs it)" >&2; exit 1; }

echo "building (cargo)..." >&2
cargo build --release -q -p nudge-server -p nudge-bench --bins

work=$(mktemp -d)
chmod 755 "$work"
pids=()
as_pg() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  as_pg "$bindir/pg_ctl" -D "$work/pg/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# A port nothing listens on (the kernel picks it; bash's /dev/tcp tells whether it is free).
free_port() {
  local port
  for _ in $(seq 100); do
    port=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
  done
  exit 1
}

mkdir -p "$work/pg"
if [[ $(id -u) == 0 ]]; then chown postgres "$work/pg"; fi
port=$(free_port)
as_pg "$bindir/initdb" -A trust -U nudge --no-sync -E UTF8 -D "$work/pg/data" >/dev/null
as_pg "$bindir/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w \
  -o "-p $port -c listen_addresses=127.0.0.1 -k $work/pg" start >/dev/null
as_pg "$bindir/createdb" -h 127.0.0.1 -p "$port" -U nudge nudge
url="postgres://nudge@127.0.0.1:$port/nudge"

# start NAME ARGS...: nudge-server serve ARGS; sets ADDR.
start() {
  local name=$1
  shift
  target/release/nudge-server serve --listen 127.0.0.1:0 --max-connections-per-address 0 "$@" \
    >"$work/$name.out" 2>"$work/$name.err" &
  pids+=("$!")
  for _ in $(seq 2000); do
    ADDR=$(sed -n 's/^listening on //p' "$work/$name.out")
    if [[ -n "$ADDR" ]]; then return; fi
    sleep 0.01
  done
  echo "$name did not start: $(cat "$work/$name.err")" >&2
  exit 1
}

declare -A R
# relay ROW ADDR_A ADDR_B: back to back and 20 ms apart; sets R[ROW.*].
relay() {
  read -r R[$1.b50] R[$1.b99] < <(NUDGE_TOKEN=$token target/release/nudge-bench relay "$2" "$changes" 0 "$shifts" "$3")
  read -r R[$1.s50] R[$1.s99] < <(NUDGE_TOKEN=$token target/release/nudge-bench relay "$2" "$changes" 20 "$shifts" "$3")
}

mkdir -p "$work/sled"
token=$(target/release/nudge-server account add bench --data "$work/sled" | tail -1)
start sled --data "$work/sled"
echo "relay on sled, one node..." >&2
relay sled "$ADDR" "$ADDR"

token=$(target/release/nudge-server account add bench --store "$url" | tail -1)
start one --store "$url"
one=$ADDR
start two --store "$url"
two=$ADDR
echo "relay on PostgreSQL, one node..." >&2
relay pg1 "$one" "$one"
echo "relay on PostgreSQL, across two nodes..." >&2
relay pg2 "$one" "$two"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fx", a / b }'; }
echo
echo "relay of one change, device A -> device B, $changes changes per run, journal of $shifts shifts (ms)"
echo
echo "| store | back to back p50 / p99 | vs sled | spaced 20 ms p50 / p99 | vs sled |"
echo "|---|---|---|---|---|"
for row in sled pg1 pg2; do
  case $row in
    sled) name="sled, one node (baseline)" ;;
    pg1) name="PostgreSQL, A and B on one node" ;;
    pg2) name="PostgreSQL, A on node 1, B on node 2" ;;
  esac
  echo "| $name | ${R[$row.b50]} / ${R[$row.b99]} | $(ratio "${R[$row.b50]}" "${R[sled.b50]}") | ${R[$row.s50]} / ${R[$row.s99]} | $(ratio "${R[$row.s50]}" "${R[sled.s50]}") |"
done
