#!/usr/bin/env bash
# Runs the bundled example through the pip-installed package: a Flask app with its static
# files, and the static site under /site/, on http://127.0.0.1:8000/. Extra arguments go to
# ironhorse (e.g. --model hybrid -w 2).
#
# It makes .venv with the example's packages (scripts/venv.sh), builds the ironhorse wheel
# for that venv's Python (scripts/wheel.sh: maturin from PyPI) and installs it there, the way
# a user would `pip install ironhorse`; then runs .venv/bin/ironhorse, which serves the app
# with the venv's own interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$(./scripts/venv.sh)"
version="$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
wheel="$(./scripts/wheel.sh "$version")"
"$venv/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheel"
exec "$venv/bin/ironhorse" app:app --chdir examples/flask_app \
  --static /static=examples/flask_app/static --static /site=examples/site "$@"
