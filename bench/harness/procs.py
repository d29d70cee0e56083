"""Processes: start each in its own session (process group), remember it, stop it by pid.

`stop` sends SIGTERM, then SIGKILL to the group after a grace period; callers wrap their
work in `try/finally: stop_all()` so nothing is left behind on errors or Ctrl-C. Also the
log lines every script writes to stderr, and the /proc process tree.
"""

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

_started = []  # subprocess.Popen objects still possibly alive


def make_logger(tag):
    """A `log(msg)` writing `[TAG HH:MM:SS] msg` to stderr."""
    def log(msg):
        print(f"[{tag} {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
    return log


log = make_logger("bench")
lab_log = make_logger("lab")  # the model lab's own lines (bench/run)


class Interrupted(Exception):
    pass


def _on_sigterm(signum, frame):
    raise Interrupted(f"signal {signum}")


def install_signal_handlers():
    """SIGTERM/SIGHUP behave like Ctrl-C: unwind through the finally blocks."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_sigterm)


def new_tmpdir(prefix):
    return tempfile.mkdtemp(prefix=prefix)


@contextlib.contextmanager
def guarded(problems, tmp=None):
    """A run's measuring part: Ctrl-C or SIGTERM inside it ends it with a problem noted
    (so the partial results are still reported), and every server is stopped and tmp
    removed on the way out, whatever happened."""
    try:
        yield
    except (KeyboardInterrupt, Interrupted) as e:
        problems.append(f"interrupted ({type(e).__name__} {e}); partial results")
    finally:
        stop_all()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def track(p):
    """Remember a process started elsewhere so that stop_all() stops it too."""
    _started.append(p)
    return p


def spawn(argv, log_path, env=None):
    f = open(log_path, "wb")  # a fresh log per start: wait_for_line must not see an old address
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                         start_new_session=True, env=env)
    f.close()
    return track(p)


def pinned(argv, cpu):
    """argv run on CPU `cpu` (taskset), or as it is when cpu is None."""
    return argv if cpu is None else ["taskset", "-c", str(cpu)] + list(argv)


def stop(p, grace=5.0):
    """SIGTERM the pid, SIGKILL its process group after `grace` seconds. Returns exit code."""
    if p.poll() is None:
        try:
            os.kill(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log(f"pid {p.pid} ignored SIGTERM for {grace:.0f} s: SIGKILL")
    # The group is the session we created for it: workers or children left behind go too.
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    if p in _started:
        _started.remove(p)
    return p.returncode


def stop_timed(p, grace=5.0):
    """stop(p, grace); (exit code, seconds it took)."""
    t0 = time.monotonic()
    code = stop(p, grace)
    return code, time.monotonic() - t0


def stop_all():
    for p in list(_started):
        stop(p)


def odd_log_lines(log_path, noise):
    """The non-empty lines of a server log that `noise` (a compiled regex of the expected
    start/stop chatter) does not match: what a server said that nobody asked for."""
    try:
        with open(log_path, errors="replace") as fh:
            return [ln.rstrip() for ln in fh if ln.strip() and not noise.search(ln)]
    except OSError:
        return []


def wait_for_line(p, log_path, pattern, timeout=15.0):
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(log_path, "r", errors="replace") as f:
                m = rx.search(f.read())
            if m:
                return m
        except FileNotFoundError:
            pass
        if p.poll() is not None:
            break
        time.sleep(0.02)
    with open(log_path, "r", errors="replace") as f:
        tail = f.read()[-2000:]
    raise RuntimeError(f"server did not print {pattern!r} (exit {p.poll()}):\n{tail}")


def wait_for_port(host, port, p, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"server exited with {p.returncode} before listening")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listening on {host}:{port} after {timeout} s")


def children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def tree(pid):
    """pid and all its live descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        if not os.path.exists(f"/proc/{p}"):
            continue
        out.append(p)
        todo += children(p)
    return out


def server_env(extra=None, drop_prefixes=()):
    """This environment for a server: without the variables that would point its Python at
    another installation (and without any whose name starts with one of drop_prefixes),
    plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH")
           and not (drop_prefixes and k.startswith(tuple(drop_prefixes)))}
    env.update(extra or {})
    return env
