#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, then checks formatting,
# lints, the generated docs, and runs every test (unit, conformance corpus, integration).
set -euo pipefail
cd "$(dirname "$0")/.."

# Python for the WSGI crate: the interpreter on PATH (pyenv's on this machine kind).
PYO3_PYTHON="$(command -v python3)"
PYO3_PYTHON="$("$PYO3_PYTHON" -c 'import sys; print(sys.executable)')"
export PYO3_PYTHON

# The virtualenv real Python frameworks run in during the tests.
IRONHORSE_TEST_VENV="$(./scripts/venv.sh)"
export IRONHORSE_TEST_VENV

# Tools the integration tests call.
need_apt=()
command -v pgrep >/dev/null || need_apt+=(procps)
command -v curl >/dev/null || need_apt+=(curl)
command -v ss >/dev/null || need_apt+=(iproute2)
# behind_nginx.rs: Debian's nginx in front of ironhorse, TLS with a throw-away certificate.
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || need_apt+=(nginx-light)
# proxy_protocol_nginx.rs: nginx's stream module sends the PROXY header.
[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || need_apt+=(libnginx-mod-stream)
command -v openssl >/dev/null || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== docs/settings.md is generated from the settings table"
cargo build --quiet -p ironhorse
if ! diff -u docs/settings.md <(./target/debug/ironhorse --print-settings-doc); then
  echo "docs/settings.md is stale: run ./target/debug/ironhorse --print-settings-doc > docs/settings.md" >&2
  exit 1
fi
echo "== cargo test"
cargo test --workspace --no-fail-fast 2>&1 | tee target/test-output.txt
echo "== the pip-installed package: wheels for CPython 3.10, 3.13 and 3.11 in fresh venvs, the integration slice against the installed command"
./scripts/wheel-test.sh 3.10 3.13 3.11 2>&1 | tee target/wheel-test-output.txt
echo "== the model lab's smoke test (bench/run all --quick: every scenario yields a well-formed table)"
./.ci/lab-smoke.sh
# Re-state the Rust test totals on the last line, for CI readers.
python3 - <<'PY'
import re
passed = failed = 0
for log in ("target/test-output.txt", "target/wheel-test-output.txt"):
    for line in open(log, errors="replace"):
        m = re.match(r"(?:test result: \w+\.|installed:) (\d+) passed[;,] (\d+) failed", line)
        if m:
            passed += int(m.group(1)); failed += int(m.group(2))
print(f"{passed} passed, {failed} failed")
PY
