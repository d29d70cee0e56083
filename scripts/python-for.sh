#!/usr/bin/env bash
# Prints the path of a CPython VERSION (e.g. 3.13) interpreter: `pythonVERSION` on PATH, else
# pyenv's installation of it. Fails with one line when there is none.
set -euo pipefail
v="$1"
if exe="$(python"$v" -c 'import sys; print(sys.executable)' 2>/dev/null)"; then
  echo "$exe"
  exit 0
fi
root="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"
for exe in "$root"/versions/"$v".*/bin/python"$v"; do
  if [ -x "$exe" ]; then
    echo "$exe"
    exit 0
  fi
done
echo "no CPython $v found (neither python$v on PATH nor a pyenv installation)" >&2
exit 1
