#!/usr/bin/env bash
# Builds the `ironhorse` wheels, one per CPython, with maturin (installed from PyPI into
# target/tools). Usage: scripts/wheel.sh [3.10 3.11 3.12 3.13]  (default: all four).
# Wheels land in target/wheels; their paths are printed, one a line, on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(3.10 3.11 3.12 3.13)

tools="$PWD/target/tools"
if [ ! -x "$tools/bin/maturin" ]; then
  python3 -m venv "$tools" >&2
  "$tools/bin/pip" install --quiet --disable-pip-version-check "maturin>=1.9,<2" "auditwheel>=6" >&2
fi

interpreters=()
for v in "${versions[@]}"; do
  interpreters+=(-i "$(./scripts/python-for.sh "$v")")
done
# maturin picks each interpreter's configuration itself; a PYO3_PYTHON from the caller's
# environment would pin them all to one. Its own target dir keeps the workspace's debug
# builds (linked to libpython) from being rebuilt as extension-module builds and back.
out="$PWD/target/wheels"
mkdir -p "$out"
env -u PYO3_PYTHON "$tools/bin/maturin" build --release --target-dir target/wheel-build \
  -o "$out" "${interpreters[@]}" >&2
for v in "${versions[@]}"; do
  ls -t "$out"/ironhorse-*-cp"${v/./}"-cp"${v/./}"-*.whl | head -1
done
