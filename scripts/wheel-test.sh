#!/usr/bin/env bash
# The pip-installed package under test (CI runs this from scripts/test.sh): builds the wheels
# (scripts/wheel.sh), checks their manylinux tag with auditwheel, installs each into a fresh
# venv of its CPython (3.11's also gets the frameworks of requirements-test.txt), then runs
#   * scripts/installed_checks.py: the console script and `python -m ironhorse` use the venv's
#     interpreter; bad install situations give one clear line;
#   * a slice of the integration suite, every case under every model, against the venv's
#     `ironhorse` (IRONHORSE_BIN): PEP 3333, --preload, signals, process names, workers;
#     with the frameworks (Flask, Django, Falcon, Bottle) for 3.11.
# Usage: scripts/wheel-test.sh [VERSION...]   (default: 3.10 3.13 3.11)
set -euo pipefail
cd "$(dirname "$0")/.."
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(3.10 3.13 3.11)

PYO3_PYTHON="${PYO3_PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}"
export PYO3_PYTHON

# A machine without one of the asked-for interpreters tests the others, saying so loudly; the
# interpreter the whole suite runs on (python3) must always be among them.
available=()
for v in "${versions[@]}"; do
  if ./scripts/python-for.sh "$v" >/dev/null 2>&1; then
    available+=("$v")
  else
    echo "SKIPPED: CPython $v is not installed here; its wheel is not built or tested" >&2
  fi
done
own="$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
if [[ " ${available[*]} " != *" $own "* ]] && [[ " ${versions[*]} " == *" $own "* ]]; then
  echo "CPython $own (python3) is missing from its own check" >&2
  exit 1
fi
versions=("${available[@]}")

echo "== building the wheels for CPython ${versions[*]} (maturin, release)"
start=$(date +%s)
mapfile -t wheels < <(./scripts/wheel.sh "${versions[@]}")
echo "built in $(( $(date +%s) - start )) s: $(for w in "${wheels[@]}"; do echo -n "$(basename "$w") ($(du -k "$w" | cut -f1) KiB) "; done)"

# The tests that start the command under test through the harness (tests naming the cargo
# binary directly are left out: they would not test the installed package).
slice=(--test wsgi --test preload --test signals --test operations --test processes)
skip=(--skip an_app_that_cannot_load --skip daemon_mode --skip inherited_descriptor
      --skip bad_settings --skip port_in_use --skip socket_activation
      --skip thousands_of_idle_connections)
unsupported="$(./scripts/python-for.sh 3.9 2>/dev/null || echo -)"

status=0
for i in "${!versions[@]}"; do
  v="${versions[$i]}"
  wheel="${wheels[$i]}"
  echo "== CPython $v: $(basename "$wheel")"
  tag="${wheel##*-cp*-cp*-}"
  tag="${tag%.whl}"
  target/tools/bin/auditwheel show "$wheel" | tr '\n' ' ' | grep -q "is consistent with the following platform tag: \"$tag\"" \
    || { echo "auditwheel does not confirm the tag of $wheel" >&2; target/tools/bin/auditwheel show "$wheel"; exit 1; }
  echo "auditwheel: the tag $tag is true"
  python="$(./scripts/python-for.sh "$v")"
  venv="$PWD/target/wheel-venvs/py$v"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  start=$(date +%s.%N)
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$wheel"
  echo "pip install of the wheel: $(python3 -c "print(round($(date +%s.%N) - $start, 2))") s"
  tests=("${slice[@]}")
  if [ "$v" = 3.11 ]; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements-test.txt
    tests+=(--test frameworks)
  fi
  # Another supported CPython than this one, for the "wrong interpreter" check.
  other="$(./scripts/python-for.sh "$([ "$v" = 3.12 ] && echo 3.13 || echo 3.12)" 2>/dev/null || echo -)"
  python3 scripts/installed_checks.py "$venv" "$other" "$unsupported" || status=1
  IRONHORSE_BIN="$venv/bin/ironhorse" IRONHORSE_TEST_VENV="$venv" \
    cargo test -p ironhorse "${tests[@]}" -- "${skip[@]}" || status=1
done
exit $status
