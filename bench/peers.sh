#!/usr/bin/env bash
# Install the peer WSGI servers that bench/wsgi.py compares ironhorse with, into the
# local virtualenv bench/.venv-peers (created on first use; ignored by git through a
# .gitignore inside it).
#
#     bash bench/peers.sh            # install what is missing, then print the status
#     bash bench/peers.sh --status   # only print the status
#
# Peers: granian, bjoern (needs Debian's libev-dev: installed with apt-get), gunicorn,
# uwsgi (compiles C: needs gcc and the Python headers), waitress; and Flask, the framework
# of `bench/wsgi.py --bench flask`. A peer that fails to
# install is reported as "not available: <reason>" and the script goes on; it never
# fails because of a peer. The status is one line per peer, "NAME ok VERSION" or
# "NAME not available: REASON", printed on stdout and kept in .venv-peers/status.txt.
set -u

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv-peers"
PY="${PEERS_PYTHON:-$(command -v python3)}"
STATUS="$VENV/status.txt"
PEERS="granian bjoern gunicorn uwsgi waitress flask"

say() { echo "[peers] $*" >&2; }

status_only=0
[ "${1:-}" = "--status" ] && status_only=1

if [ ! -x "$VENV/bin/python" ]; then
    if [ $status_only = 1 ]; then
        for p in $PEERS; do echo "$p not available: bench/.venv-peers does not exist (run bench/peers.sh)"; done
        exit 0
    fi
    say "creating $VENV with $PY"
    if ! "$PY" -m venv "$VENV" >&2; then
        for p in $PEERS; do echo "$p not available: could not create the virtualenv with $PY"; done
        exit 0
    fi
    printf '*\n' >"$VENV/.gitignore"
    "$VENV/bin/python" -m pip install -q --upgrade pip >&2 2>&1 || say "pip upgrade failed (going on)"
fi
VPY="$VENV/bin/python"

# How to tell that a peer works: its command runs, or its module imports.
works() {
    case "$1" in
        granian|gunicorn) "$VENV/bin/$1" --version >/dev/null 2>&1 ;;
        uwsgi) "$VENV/bin/uwsgi" --version >/dev/null 2>&1 ;;
        *) "$VPY" -c "import $1" >/dev/null 2>&1 ;;
    esac
}

installed_version() {
    "$VPY" - "$1" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version
print(version(sys.argv[1]))
EOF
}

apt_install() {
    command -v apt-get >/dev/null || return 1
    local sudo=""
    [ "$(id -u)" = 0 ] || { command -v sudo >/dev/null && sudo="sudo -n" || return 1; }
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "$@" >/dev/null 2>&1 && return 0
    DEBIAN_FRONTEND=noninteractive $sudo apt-get update -q >/dev/null 2>&1
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "$@" >/dev/null 2>&1
}

declare -A REASON
if [ $status_only = 0 ]; then
    for p in $PEERS; do
        if [ -n "$(installed_version "$p")" ]; then
            continue
        fi
        case "$p" in
            bjoern)
                if [ ! -e /usr/include/ev.h ]; then
                    say "installing libev-dev with apt-get (for bjoern)"
                    apt_install libev-dev || { REASON[$p]="apt-get install libev-dev failed"; continue; }
                fi ;;
            uwsgi)
                command -v gcc >/dev/null || command -v cc >/dev/null \
                    || { REASON[$p]="no C compiler (gcc) to build it"; continue; } ;;
        esac
        say "pip install $p"
        log="$VENV/pip-$p.log"
        if ! "$VPY" -m pip install --no-input "$p" >"$log" 2>&1; then
            last="$(grep -iE 'error|fatal' "$log" | grep -v '^ *$' | tail -n 1 | cut -c1-160)"
            REASON[$p]="pip install $p failed (${last:-see $log})"
        fi
    done
fi

: >"$STATUS.tmp"
for p in $PEERS; do
    v="$(installed_version "$p")"
    if [ -n "$v" ] && works "$p"; then
        echo "$p ok $v" >>"$STATUS.tmp"
    elif [ -n "$v" ]; then
        echo "$p not available: installed ($v) but does not run" >>"$STATUS.tmp"
    else
        echo "$p not available: ${REASON[$p]:-not installed}" >>"$STATUS.tmp"
    fi
done
mv "$STATUS.tmp" "$STATUS"
cat "$STATUS"
exit 0
