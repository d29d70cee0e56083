#!/usr/bin/env bash
# Runs the bundled example: a Flask app with its static files, and the static site under
# /site/, on http://127.0.0.1:8000/. Extra arguments go to ironhorse (e.g. --model hybrid -w 2).
set -euo pipefail
cd "$(dirname "$0")/.."
PYO3_PYTHON="$(python3 -c 'import sys; print(sys.executable)')"
export PYO3_PYTHON
venv="$(./scripts/venv.sh)"
cargo build --release --quiet -p ironhorse
exec ./target/release/ironhorse app:app --chdir examples/flask_app --virtualenv "$venv" \
  --static /static=examples/flask_app/static --static /site=examples/site "$@"
