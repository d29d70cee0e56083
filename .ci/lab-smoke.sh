#!/usr/bin/env bash
# Model-lab smoke test: the benchmark harness's unit tests (bench/harness/test_harness.py),
# `bench/run all --quick` (every scenario, a few seconds per model), then assert only that
# each scenario wrote a well-formed Markdown table. Reports go to a temporary directory, so
# the committed results in docs/benchmarks/ are left alone.
# Exits non-zero when a scenario fails or a table is missing or malformed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYO3_PYTHON="${PYO3_PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}"
out="$(mktemp -d -t ironhorse-lab-smoke-XXXXXX)"
trap 'rm -rf "$out"' EXIT
start=$(date +%s)
status=0
python3 -m unittest discover -s bench -p 'test_*.py' || status=$?
bench/run all --quick --out-dir "$out" || status=$?
python3 bench/lab/check_tables.py "$out" || status=1
echo "lab-smoke: took $(( $(date +%s) - start )) s, exit $status"
exit $status
