#!/usr/bin/env bash
# The per-request cost of --metrics-bind: the same release binary with and without it, side
# by side (bench/cpu_ab.py: A/B rounds, CPU time per request), on WSGI hello world and on a
# static 1 KiB file. Usage: bench/metrics_ab.sh [ROUNDS] [SECONDS] (default 6 rounds of 5 s).
# Needs target/release/ironhorse (cargo build --release) and wrk.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-6}
duration=${2:-5}
bin="$PWD/target/release/ironhorse"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A 1 KiB index.html, served at / (the path cpu_ab.py requests).
head -c 1024 /dev/zero | tr '\0' 'x' > "$work/index.html"
# cpu_ab.py starts COMMAND hello:application --chdir APPS -b ... MODEL_ARGS; each wrapper
# execs the binary (same pid, same CPU pinning), with or without metrics.
cat > "$work/wsgi-off" <<SH
#!/bin/sh
exec "$bin" "\$@"
SH
cat > "$work/wsgi-on" <<SH
#!/bin/sh
exec "$bin" --metrics-bind 127.0.0.1:0 "\$@"
SH
# Static: the app arguments (the first three) are replaced by --root.
cat > "$work/static-off" <<SH
#!/bin/sh
shift 3
exec "$bin" --root "$work" "\$@"
SH
cat > "$work/static-on" <<SH
#!/bin/sh
shift 3
exec "$bin" --root "$work" --metrics-bind 127.0.0.1:0 "\$@"
SH
chmod +x "$work"/*-o*
echo "== WSGI hello world, --model event --threads 1"
python3 bench/cpu_ab.py --rounds "$rounds" --duration "$duration" \
  --server "off=$work/wsgi-off" --server "metrics=$work/wsgi-on" -- --model event --threads 1
echo "== static 1 KiB, --model event"
python3 bench/cpu_ab.py --rounds "$rounds" --duration "$duration" \
  --server "off=$work/static-off" --server "metrics=$work/static-on" -- --model event
echo "== static 1 KiB, --model threadpool --threads 4"
python3 bench/cpu_ab.py --rounds "$rounds" --duration "$duration" \
  --server "off=$work/static-off" --server "metrics=$work/static-on" -- --model threadpool --threads 4
