#!/usr/bin/env bash
# Instructions per request of the whole server (every thread), exact: callgrind's count over
# a wrk run divided by the requests wrk completed. Steadier than CPU time on a shared machine,
# but it counts user space only (the kernel's share is not in it).
#
#   bench/callgrind_server.sh BINARY THREADS [APP]     # e.g. target/release/ironhorse 0
#
# Serves APP (default hello:application from bench/apps) with `--model event --threads
# THREADS` under valgrind (PYTHONHASHSEED=0), warms it up with a 2 s `wrk -t1 -c50` run,
# zeroes the counters, measures a 6 s run, and prints the figure. Needs valgrind and wrk;
# talks to 127.0.0.1 only and stops the server when done.
set -euo pipefail
bin=$(realpath "$1")
threads=$2
app=${3:-hello:application}
cd "$(dirname "$0")/apps"
out=$(mktemp -d)
port=$((20000 + RANDOM % 2000))
PYTHONHASHSEED=0 valgrind --tool=callgrind --separate-threads=no \
    --callgrind-out-file="$out/callgrind.out" \
    "$bin" "$app" -b "127.0.0.1:$port" --model event --threads "$threads" >"$out/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 600); do
    curl -s -m 2 -o /dev/null "http://127.0.0.1:$port/" && break
    sleep 0.2
done
wrk -t1 -c50 -d2s "http://127.0.0.1:$port/" >/dev/null
callgrind_control -z "$server" >/dev/null 2>&1
wrk -t1 -c50 -d6s "http://127.0.0.1:$port/" >"$out/wrk.txt"
callgrind_control -d "$server" >/dev/null 2>&1
requests=$(awk '/requests in/ {print $1}' "$out/wrk.txt")
dump=$(ls -t "$out"/callgrind.out.* | head -1)
total=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
echo "threads=$threads requests=$requests instructions=$total per_request=$((total / requests))"
echo "profile: $dump (callgrind_annotate --inclusive=yes $dump)"
