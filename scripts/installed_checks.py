"""Checks of a pip-installed ironhorse that the Rust suite cannot make: the console script and
`python -m ironhorse` run the app in the venv's own interpreter, and bad install situations
get one clear line. Real processes, real sockets.

Usage: python3 scripts/installed_checks.py VENV OTHER_PYTHON UNSUPPORTED_PYTHON
  VENV: a fresh venv with the wheel installed; OTHER_PYTHON: a supported CPython of another
  version (its ABI does not fit the installed module); UNSUPPORTED_PYTHON: e.g. python3.9.
"""

import atexit
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

VENV, OTHER_PYTHON, UNSUPPORTED_PYTHON = sys.argv[1:4]
VENV = os.path.abspath(VENV)
IRONHORSE = os.path.join(VENV, "bin", "ironhorse")
PYTHON = os.path.join(VENV, "bin", "python")
SITE = glob.glob(os.path.join(VENV, "lib", "python3.*", "site-packages"))[0]
APP_DIR = tempfile.mkdtemp(prefix="ih-installed-")
atexit.register(shutil.rmtree, APP_DIR, ignore_errors=True)
with open(os.path.join(APP_DIR, "where.py"), "w") as f:
    f.write(
        "import sys\n"
        "def app(environ, start_response):\n"
        "    body = ('%s %s %d.%d' % (sys.prefix, sys.executable, *sys.version_info[:2])).encode()\n"
        "    start_response('200 OK', [('Content-Length', str(len(body)))])\n"
        "    return [body]\n"
    )

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(("ok    " if ok else "FAIL  ") + name + ("" if ok else ": " + detail))


def run(cmd, env=None):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)


def one_clear_line(proc, starts):
    lines = proc.stderr.strip().splitlines()
    return proc.returncode == 2 and len(lines) == 1 and lines[0].startswith(starts), repr(
        (proc.returncode, proc.stderr)
    )


def serve_and_ask(cmd):
    """Starts a server, GETs / over a real socket, stops it with SIGTERM; returns the body."""
    proc = subprocess.Popen(
        cmd + ["where:app", "--chdir", APP_DIR, "-b", "127.0.0.1:0", "--model", "prefork", "-w", "1"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in proc.stderr:
            if "listening on " in line:
                addr = line.split("listening on ", 1)[1].split()[0]
                break
        else:
            raise AssertionError("no listening line")
        with urllib.request.urlopen(addr + "/", timeout=30) as r:
            return r.read().decode()
    finally:
        proc.terminate()
        rc = proc.wait(timeout=60)
        check("%s stops with 0 on SIGTERM" % os.path.basename(cmd[-1]), rc == 0, str(rc))


for cmd in ([IRONHORSE], [PYTHON, "-m", "ironhorse"]):
    version = run(cmd + ["--version"])
    check(" ".join(cmd[-2:]) + " --version", version.returncode == 0 and version.stdout.startswith("ironhorse "), repr(version))
    body = serve_and_ask(cmd)
    prefix, executable, _ = body.split(" ")
    check(
        "the app runs in the venv's interpreter (%s)" % " ".join(cmd[-2:]),
        os.path.realpath(prefix) == os.path.realpath(VENV) and executable.startswith(VENV),
        body,
    )

ok, detail = one_clear_line(
    run([IRONHORSE, "no_such_module:app", "-b", "127.0.0.1:0"]), "ironhorse: cannot import module"
)
check("an app module not importable from the venv: one line, exit 2", ok, detail)

ok, detail = one_clear_line(
    run([IRONHORSE, "where:app", "--chdir", APP_DIR, "--virtualenv", APP_DIR, "-b", "127.0.0.1:0"]),
    "ironhorse: cannot start Python: --virtualenv",
)
check("--virtualenv naming another venv: one line, exit 2", ok, detail)

env = dict(os.environ, PYTHONPATH=SITE)
if OTHER_PYTHON == "-":
    print("skip  the install used from another CPython: none on this machine")
else:
    ok, detail = one_clear_line(run([OTHER_PYTHON, "-m", "ironhorse", "--version"], env), "ironhorse: this install does not fit CPython")
    check("the install used from another CPython: one line, exit 2", ok, detail)
if UNSUPPORTED_PYTHON == "-":
    print("skip  an unsupported Python: none on this machine")
else:
    ok, detail = one_clear_line(run([UNSUPPORTED_PYTHON, "-m", "ironhorse", "--version"], env), "ironhorse: Python 3.")
    check("an unsupported Python: one line, exit 2", ok, detail)

# -D: the daemon (a grandchild of the launcher) keeps serving; its pid file names the master.
pidfile = os.path.join(APP_DIR, "ih.pid")
port_probe = socket.socket()
port_probe.bind(("127.0.0.1", 0))
port = port_probe.getsockname()[1]
port_probe.close()
daemon = run([IRONHORSE, "where:app", "--chdir", APP_DIR, "-D", "--pid", pidfile,
              "-b", "127.0.0.1:%d" % port, "--model", "prefork", "-w", "1"])
check("-D returns 0 in the launcher", daemon.returncode == 0, repr(daemon))
try:
    deadline = time.monotonic() + 30
    while not os.path.exists(pidfile) and time.monotonic() < deadline:
        time.sleep(0.05)
    master = int(open(pidfile).read())
    with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=30) as r:
        check("-D: the daemon serves with the venv's interpreter", r.read().decode().startswith(VENV))
finally:
    if os.path.exists(pidfile):
        os.kill(int(open(pidfile).read()), 15)

module = glob.glob(os.path.join(SITE, "ironhorse", "_ironhorse*.so"))[0]
needed = run(["readelf", "-d", module]).stdout
check("the native module needs no libpython (runs with static-libpython interpreters too)",
      "NEEDED" in needed and "libpython" not in needed, needed)

passed = sum(results)
print("installed: %d passed, %d failed" % (passed, len(results) - passed))
sys.exit(0 if all(results) else 1)
