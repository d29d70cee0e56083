"""The one harness behind every benchmark in bench/ (Python 3 standard library only).

bench/static.py, bench/wsgi.py, bench/idle.py, bench/syscalls.py and the model lab
(bench/run and bench/lab/*) all start, measure and report through these modules, each with
one job; import the ones you need (`from harness import procs, wrk`):

- `procs`:      log lines, start/stop processes by pid (own session each), signals, tmp dirs
- `tools`:      wrk / nginx / strace (apt-get when missing), cargo build, CPU pins, rlimits
- `binaries`:   the ironhorse binaries under test, copied at the start of a run
- `static_site`: a document root, nginx, and ironhorse models serving it
- `app_server`: an ironhorse run of a WSGI app from bench/apps, stopped with checks
- `wrk`:        wrk command lines, runs and output parsing, summaries over rounds
- `proc_stats`: /proc sampling: RSS/PSS, threads, CPU time of a process tree
- `fmt`:        number formatting for the Markdown tables
- `report`:     report headers, endings, files, and the well-formed-table check
- `lab_venv`:   bench/.venv-lab (locust, matplotlib) for the model lab

Every process is started in its own session and remembered, so `procs.stop_all()` in a
`finally:` leaves nothing behind on errors or Ctrl-C.
"""

import os

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(BENCH)
APPS = os.path.join(BENCH, "apps")
LAB = os.path.join(BENCH, "lab")
