"""bench/.venv-lab: the model lab's client-side packages (locust, matplotlib, from PyPI),
made on first use; bench/run re-runs itself with the venv's Python. gevent (a locust
dependency, named here because the cpu-io scenario's `-k gevent` server runs its app in this
venv with --virtualenv) is there too."""

import os
import subprocess
import sys

from harness import BENCH, REPO
from harness.procs import lab_log as log

VENV = os.path.join(BENCH, ".venv-lab")
VENV_PY = os.path.join(VENV, "bin", "python")
VENV_PACKAGES = ["locust", "matplotlib", "gevent"]


def in_venv():
    return os.path.realpath(sys.prefix) == os.path.realpath(VENV)


def ensure_venv_and_reexec(run_path):
    """Create bench/.venv-lab with locust, matplotlib and gevent (PyPI) on first use, then re-run
    bench/run with the venv's Python so everything can import them."""
    if in_venv():
        return
    if not os.access(VENV_PY, os.X_OK):
        log(f"creating {os.path.relpath(VENV, REPO)} (first use)")
        r = subprocess.run([sys.executable, "-m", "venv", VENV])
        if r.returncode != 0:
            sys.exit("lab: python3 -m venv failed (Debian: apt-get install python3-venv)")
    with open(os.path.join(VENV, ".gitignore"), "w") as f:
        f.write("# created by bench/run: the whole venv stays out of git\n*\n")
    check = subprocess.run([VENV_PY, "-c", "import locust, matplotlib, gevent"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if check.returncode != 0:
        log(f"installing {', '.join(VENV_PACKAGES)} into {os.path.relpath(VENV, REPO)} (pip)")
        r = subprocess.run([VENV_PY, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
                           + VENV_PACKAGES)
        if r.returncode != 0:
            sys.exit("lab: pip install failed")
    env = dict(os.environ)
    # The build must keep using the interpreter it was configured with, not the venv's.
    env.setdefault("PYO3_PYTHON", sys.executable)
    os.execve(VENV_PY, [VENV_PY, run_path] + sys.argv[1:], env)


def versions():
    # Never `import locust` here: importing it monkey-patches this process with gevent.
    from importlib.metadata import version
    return {"locust": version("locust"), "matplotlib": version("matplotlib"),
            "gevent (server side, -k gevent row)": version("gevent"),
            "python (client side)": sys.version.split()[0]}
