"""Run a bench/apps WSGI app under bjoern (which has no command line of its own).

    python run_bjoern.py MODULE:CALLABLE HOST PORT

Imports MODULE from this folder and calls bjoern.run (one process, one thread, libev).
SIGTERM stops it (the default action: bjoern's C loop does not run Python signal handlers
while idle).
"""

import importlib
import os
import sys

import bjoern


def main():
    target, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    module, _, attr = target.partition(":")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    app = getattr(importlib.import_module(module), attr or "application")
    print(f"bjoern listening on http://{host}:{port}", flush=True)
    bjoern.run(app, host, port)


if __name__ == "__main__":
    main()
