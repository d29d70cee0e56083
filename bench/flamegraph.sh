#!/usr/bin/env bash
# A flame graph (SVG) of a server under `wrk -t1 -c50`: where its CPU time goes, user space
# and kernel alike, every thread.
#
#   bench/flamegraph.sh OUT.svg URL_PATH -- COMMAND...
#   bench/flamegraph.sh docs/benchmarks/flame-wsgi-hello.svg / -- \
#       target/release/ironhorse hello:application -b 127.0.0.1:PORT --model event --threads 0
#
# COMMAND runs in bench/apps, pinned to CPU 0, with PORT replaced by a free port; wrk runs
# on CPU 1. After a 1 s warm-up, `perf record --call-graph dwarf` samples the server's
# process for 4 s of load; inferno (`cargo install inferno`) folds the stacks and draws
# them. Needs perf, wrk and inferno-collapse-perf/inferno-flamegraph on PATH (or in
# $INFERNO/bin); talks to 127.0.0.1 only and stops the server when done.
set -euo pipefail
out=$(realpath -m "$1")
path=$2
shift 2
[ "${1:-}" = "--" ] && shift
export PATH="${INFERNO:-$HOME/.cargo}/bin:$PATH"
for tool in perf wrk inferno-collapse-perf inferno-flamegraph; do
    command -v "$tool" >/dev/null || { echo "flamegraph.sh: $tool not found" >&2; exit 2; }
done
port=$((21000 + RANDOM % 2000))
args=("${@//PORT/$port}")
work=$(mktemp -d)
cd "$(dirname "$0")/apps"
taskset -c 0 "${args[@]}" >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 300); do
    curl -s -m 1 -o /dev/null "http://127.0.0.1:$port$path" && break
    sleep 0.1
done
url="http://127.0.0.1:$port$path"
taskset -c 1 wrk -t1 -c50 -d1s "$url" >/dev/null
taskset -c 1 wrk -t1 -c50 -d6s "$url" >"$work/wrk.txt" &
load=$!
sleep 1
perf record -q -F 499 --call-graph dwarf,16384 -p "$server" -o "$work/perf.data" -- sleep 4 \
    2>"$work/perf.log"
wait $load
perf script -i "$work/perf.data" 2>/dev/null | inferno-collapse-perf >"$work/folded"
title="$(basename "${args[0]}") ${args[*]:1} — wrk -t1 -c50 $path"
inferno-flamegraph --title "$title" --width 1400 <"$work/folded" >"$out"
echo "$out: $(wc -l <"$work/folded") stacks; wrk: $(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt") req/s"
