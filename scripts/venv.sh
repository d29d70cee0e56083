#!/usr/bin/env bash
# Creates .venv (the test virtualenv) with the packages in requirements-test.txt, once.
# Prints the venv's path.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$PWD/.venv"
stamp="$venv/.installed-$(sha1sum requirements-test.txt | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements-test.txt >&2
  touch "$stamp"
fi
echo "$venv"
