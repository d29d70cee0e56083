"""Shared helpers for the ironhorse benchmark scripts (Python 3 standard library only).

Everything here starts processes in their own session (process group), remembers them,
and stops them by pid: SIGTERM, then SIGKILL to the group after a grace period. Callers
wrap their work in ``try/finally: stop_all()`` so nothing is left behind on errors or
Ctrl-C.
"""

import datetime
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(REPO, "target", "release", "ironhorse")
_run_binary = BINARY  # the copy the servers are started from (see snapshot_binary)
_built_rev = None

# One process / one worker each, so the comparison with nginx's single worker is fair.
MODEL_ARGS = {
    "single": ["--model", "single"],
    "fork": ["--model", "fork"],
    "thread": ["--model", "thread"],
    "threadpool": ["--model", "threadpool"],
    "prefork": ["--model", "prefork", "-w", "1"],
    "hybrid": ["--model", "hybrid", "-w", "1"],
    "event": ["--model", "event"],
    "async": ["--model", "async", "--threads", "1"],
}
SERIAL_MODELS = {"single", "prefork"}  # one connection at a time per process

SMALL_SIZE = 1024
BIG_SIZE = 1024 * 1024


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Interrupted(Exception):
    pass


def _on_sigterm(signum, frame):
    raise Interrupted(f"signal {signum}")


def install_signal_handlers():
    """SIGTERM/SIGHUP behave like Ctrl-C: unwind through the finally blocks."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_sigterm)


# --------------------------------------------------------------------------- tools


def _apt_install(candidates):
    """Install the first installable Debian package of `candidates`; True on success."""
    if not shutil.which("apt-get"):
        return False
    prefix = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
    if prefix is None:
        return False
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for attempt in range(2):
        for pkg in candidates:
            log(f"installing {pkg} with apt-get")
            r = subprocess.run(prefix + ["apt-get", "install", "-y", "-q", pkg], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if r.returncode == 0:
                return True
        if attempt == 0:
            subprocess.run(prefix + ["apt-get", "update", "-q"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return False


def find_tool(name, packages, extra_dirs=("/usr/sbin", "/sbin", "/usr/local/sbin")):
    """Path of `name`, installing one of `packages` with apt-get when it is missing."""
    def lookup():
        p = shutil.which(name)
        if p:
            return p
        for d in extra_dirs:
            c = os.path.join(d, name)
            if os.access(c, os.X_OK):
                return c
        return None

    path = lookup()
    if path is None and packages:
        _apt_install(packages)
        path = lookup()
    if path is None:
        sys.exit(f"bench: {name} not found and could not be installed ({', '.join(packages)})")
    return path


def snapshot_binary(tmp):
    """Copy the built binary into tmp and run that copy, so a rebuild of target/release by
    someone else during a long run cannot change the server half-way through."""
    global _run_binary, _built_rev
    dst = os.path.join(tmp, "ironhorse")
    shutil.copy2(BINARY, dst)
    _run_binary = dst
    _built_rev = f"{_out([dst, '--version']) or '?'}, git {git_rev()}"
    return dst


def build_ironhorse():
    env = dict(os.environ)
    if "PYO3_PYTHON" not in env:
        env["PYO3_PYTHON"] = sys.executable
    log("cargo build --release -p ironhorse")
    r = subprocess.run(["cargo", "build", "--release", "-p", "ironhorse"], cwd=REPO, env=env)
    if r.returncode != 0:
        sys.exit("bench: cargo build failed")
    if not os.access(BINARY, os.X_OK):
        sys.exit(f"bench: {BINARY} missing after the build")


# --------------------------------------------------------------------------- machine


def _out(cmd, stderr=False):
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=20, cwd=REPO)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (r.stdout + (r.stderr if stderr else "")).strip()


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_rev():
    rev = _out(["git", "rev-parse", "--short=12", "HEAD"]) or "unknown"
    if _out(["git", "status", "--porcelain", "--untracked-files=no"]):
        rev += " (working tree has uncommitted changes)"
    return rev


def header_lines(title, tools):
    """Markdown header: machine, versions, command, date."""
    lines = [
        f"## {title}",
        "",
        f"- date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"- command: `{' '.join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:])}`"
        f" (python3, in {REPO})",
        f"- machine: {os.cpu_count()} CPUs (nproc {_out(['nproc']) or '?'}), {cpu_model()}, "
        f"Linux {platform.release()}",
        f"- ironhorse: {_built_rev or (_out([_run_binary, '--version']) + ', git ' + git_rev())}"
        " (target/release/ironhorse, copied at the start of the run)",
    ]
    for name, path in tools.items():
        if name == "nginx":
            v = _out([path, "-v"], stderr=True)
        elif name == "wrk":
            v = _out([path, "-v"], stderr=True).splitlines()[0:1]
            v = v[0] if v else "?"
            v = re.sub(r"\s*Copyright.*", "", v)
        else:
            v = path
        lines.append(f"- {name}: {v}")
    return lines


# --------------------------------------------------------------------------- processes

_started = []  # subprocess.Popen objects still possibly alive


def finish_report(lines, problems, ok_text, out):
    """Ends a report: the problems seen, or `ok_text` when there were none (`None`: nothing
    is said then); prints it and writes it to `out` when given. Returns the text."""
    lines.append("")
    if problems:
        lines += ["Problems seen during the run:", ""] + [f"- {p}" for p in problems]
    elif ok_text:
        lines.append(ok_text)
    if problems or ok_text:
        lines.append("")
    report = "\n".join(lines)
    print(report)
    if out:
        with open(out, "w") as fh:
            fh.write(report)
    return report


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(argv, log_path, env=None):
    f = open(log_path, "wb")  # a fresh log per start: wait_for_line must not see an old address
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                         start_new_session=True, env=env)
    f.close()
    _started.append(p)
    return p


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


def stop_all():
    for p in list(_started):
        stop(p)


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


def make_docroot(base):
    """`small.txt` (1 KiB of text) and `big.bin` (1 MiB of random bytes) under base/root."""
    root = os.path.join(base, "root")
    os.makedirs(root)
    small = (b"ironhorse benchmark 1 KiB file. " * 64)[:SMALL_SIZE]
    big = os.urandom(BIG_SIZE)
    with open(os.path.join(root, "small.txt"), "wb") as f:
        f.write(small)
    with open(os.path.join(root, "big.bin"), "wb") as f:
        f.write(big)
    # nginx drops its workers to an unprivileged user when started as root.
    for d in (base, root):
        os.chmod(d, 0o755)
    for n in ("small.txt", "big.bin"):
        os.chmod(os.path.join(root, n), 0o644)
    return root, {"small.txt": small, "big.bin": big}


def start_ironhorse(model, root, tmp, extra=(), pin=None):
    log_path = os.path.join(tmp, f"ironhorse-{model}.log")
    argv = [_run_binary, "--root", root, "-b", "127.0.0.1:0"] + MODEL_ARGS[model] + list(extra)
    if pin is not None:
        argv = ["taskset", "-c", str(pin)] + argv
    p = spawn(argv, log_path)
    m = wait_for_line(p, log_path, r"listening on http://(\S+)")
    return p, m.group(1), log_path


NGINX_CONF = """\
worker_processes 1;
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
worker_rlimit_nofile {nofile};
events {{
    worker_connections {conns};
}}
http {{
    types {{
        text/plain txt;
        text/html html;
        application/octet-stream bin;
    }}
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush {nopush};
    access_log off;
    keepalive_requests 100000;
    keepalive_timeout {keepalive}s;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ }}
    }}
}}
"""


def start_nginx(nginx, root, tmp, pin=None, conns=4096, keepalive=75, nopush=True):
    import resource
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if nofile == resource.RLIM_INFINITY:
        nofile = 1 << 20
    port = free_port()
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(tmp=tmp, root=root, port=port, conns=conns,
                                  keepalive=keepalive, nofile=nofile,
                                  nopush="on" if nopush else "off"))
    log_path = os.path.join(tmp, "nginx.log")
    argv = [nginx, "-p", tmp, "-c", conf]
    if pin is not None:
        argv = ["taskset", "-c", str(pin)] + argv
    p = spawn(argv, log_path)
    wait_for_port("127.0.0.1", port, p)
    return p, f"127.0.0.1:{port}", log_path


def check_responses(addr, expected):
    """GET every file with a fresh connection; a list of problems (empty when all is well)."""
    problems = []
    for name, body in expected.items():
        url = f"http://{addr}/{name}"
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                got = r.read()
                if r.status != 200:
                    problems.append(f"GET /{name}: status {r.status}")
                elif got != body:
                    problems.append(f"GET /{name}: body differs ({len(got)} bytes, "
                                    f"expected {len(body)})")
        except Exception as e:  # noqa: BLE001 - any failure is a finding
            problems.append(f"GET /{name}: {type(e).__name__}: {e}")
    return problems


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def new_tmpdir(prefix):
    return tempfile.mkdtemp(prefix=prefix)
