"""Shared pieces of the model lab (bench/run): the venv, servers, /proc sampling, reports.

Reuses bench/_common.py (process start/stop by pid, binary snapshot, machine header,
apt-get installs) and bench/static.py (wrk command and output parsing); only what those do
not offer lives here.
"""

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
LAB = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(LAB)
sys.path.insert(0, BENCH)
import _common as c  # noqa: E402
import static as st  # noqa: E402  (parse_wrk, wrk_cmd, run_wrk, formatting)

REPO = c.REPO
APPS = os.path.join(BENCH, "apps")
VENV = os.path.join(BENCH, ".venv-lab")
VENV_PY = os.path.join(VENV, "bin", "python")
VENV_PACKAGES = ["locust", "matplotlib"]
CLK_TCK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1
GRACEFUL_TIMEOUT = 5  # --graceful-timeout given to every server


def log(msg):
    print(f"[lab {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the venv


def in_venv():
    return os.path.realpath(sys.prefix) == os.path.realpath(VENV)


def ensure_venv_and_reexec(run_path):
    """Create bench/.venv-lab with locust and matplotlib (PyPI) on first use, then re-run
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
    check = subprocess.run([VENV_PY, "-c", "import locust, matplotlib"],
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
            "python (client side)": sys.version.split()[0]}


# --------------------------------------------------------------------------- /proc


def _status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "Threads"):
                    out[k] = int(v.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return out


def _pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def tree(pid):
    """pid and all its live descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        if not os.path.exists(f"/proc/{p}"):
            continue
        out.append(p)
        todo += c.children(p)
    return out


def tree_snapshot(pid, pss=True):
    """RSS and PSS summed over the process tree (KiB), threads and processes."""
    rss = threads = procs = 0
    pss_sum = 0
    for p in tree(pid):
        s = _status(p)
        if not s:
            continue
        procs += 1
        rss += s.get("VmRSS", 0)
        threads += s.get("Threads", 0)
        if pss:
            pss_sum += _pss_kib(p) or 0
    return {"rss": rss, "pss": pss_sum if pss else None, "threads": threads, "procs": procs}


def tree_cpu_seconds(pid):
    """CPU seconds used by the tree so far: utime+stime of every live process plus the
    cutime+cstime of reaped children (fork model)."""
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        except (OSError, ValueError, IndexError):
            pass
    return total / CLK_TCK


class TreeSampler(threading.Thread):
    """Samples a server's process tree every `interval` s; keeps the peaks."""

    def __init__(self, pid, interval=0.25, pss=True):
        super().__init__(daemon=True)
        self.pid, self.interval, self.pss = pid, interval, pss
        self.peak = {"rss": 0, "pss": 0, "threads": 0, "procs": 0}
        self.samples = 0
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            s = tree_snapshot(self.pid, self.pss)
            if s["procs"]:
                self.samples += 1
                for k in self.peak:
                    if s.get(k) is not None:
                        self.peak[k] = max(self.peak[k], s[k])
            self._halt.wait(self.interval)

    def finish(self):
        self._halt.set()
        self.join(timeout=5)
        return dict(self.peak, samples=self.samples)


# --------------------------------------------------------------------------- servers

_LOG_NOISE = re.compile(r"listening on|signal|stop|shutting down|exit|graceful|booting|"
                        r"worker \d+ (started|ready|exited)|spawned|ready", re.I)


def server_env(extra=None):
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH")}
    env.update(extra or {})
    return env


class Server:
    """One ironhorse run of a WSGI app from bench/apps, started from the binary snapshot."""

    def __init__(self, label, args, app, tmp, problems, extra_env=None, pin=None,
                 ready_path="/"):
        self.label, self.problems = label, problems
        safe = re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-")
        self.log_path = os.path.join(tmp, f"server-{safe}.log")
        env_args = []
        for k, v in (extra_env or {}).items():
            env_args += ["-e", f"{k}={v}"]
        argv = [c._run_binary, app, "--chdir", APPS, "-b", "127.0.0.1:0",
                "--graceful-timeout", str(GRACEFUL_TIMEOUT)] + list(args) + env_args
        if pin is not None:
            argv = ["taskset", "-c", str(pin)] + argv
        self.argv = argv
        self.proc = c.spawn(argv, self.log_path, env=server_env(extra_env))
        m = c.wait_for_line(self.proc, self.log_path, r"listening on http://(\S+)", timeout=30)
        self.addr = m.group(1)
        self.host, port = self.addr.rsplit(":", 1)
        self.port = int(port)
        self.url = f"http://{self.addr}"
        self._wait_ready(ready_path)

    def _wait_ready(self, path, timeout=30.0):
        """Workers of multi-process models may come up after the master prints its line."""
        import urllib.request
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label}: server exited with {self.proc.returncode} "
                                   f"at start: {self.log_tail()}")
            try:
                req = urllib.request.Request(self.url + path, headers={"Connection": "close"})
                with urllib.request.urlopen(req, timeout=5) as r:
                    r.read()
                    if r.status == 200:
                        return
            except Exception as e:  # noqa: BLE001
                last = e
            time.sleep(0.1)
        raise RuntimeError(f"{self.label}: no 200 on {path} within {timeout:.0f} s ({last})")

    def log_tail(self, n=2000):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM (then SIGKILL) by pid; notes slow stops, bad exits and odd log lines."""
        t0 = time.monotonic()
        was_alive = self.alive()
        if not was_alive:
            self.problems.append(f"{self.label}: server had exited with {self.proc.returncode} "
                                 "before the end of its run")
        # --graceful-timeout is 5 s: give it that plus 5 s before SIGKILL, so a kill means the
        # server overstayed its own graceful timeout
        code = c.stop(self.proc, grace=GRACEFUL_TIMEOUT + 5)
        took = time.monotonic() - t0
        if took > GRACEFUL_TIMEOUT + 1.5:
            self.problems.append(f"{self.label}: took {took:.1f} s to stop after SIGTERM")
        if was_alive and code not in (0, None):
            self.problems.append(f"{self.label}: exit code {code} after SIGTERM")
        try:
            with open(self.log_path, errors="replace") as fh:
                lines = [ln.rstrip() for ln in fh if ln.strip()]
        except OSError:
            lines = []
        odd = [ln for ln in lines if not _LOG_NOISE.search(ln)]
        if odd:
            more = f" (+{len(odd) - 5} more)" if len(odd) > 5 else ""
            self.problems.append(f"{self.label}: server log: " + " | ".join(odd[:5]) + more)
        self.stop_seconds, self.exit_code = took, code
        return code


# --------------------------------------------------------------------------- wrk


def wrk(tools, url, conns, duration, threads=1, timeout_s=None):
    cmd = [tools["wrk"], f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--latency"]
    if timeout_s:
        cmd += ["--timeout", f"{timeout_s}s"]
    cmd.append(url)
    text, err = st.run_wrk(cmd, duration)
    res = st.parse_wrk(text or "")
    res["error"] = err
    if res["rps"] is None and not err:
        res["error"] = f"could not parse wrk output: {(text or '')[-200:]}"
    return res


# --------------------------------------------------------------------------- reports


def pct(xs, q):
    """q-th percentile (0..100) by linear interpolation; None for no data."""
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    if len(xs) == 1:
        return xs[0]
    k = (len(xs) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def mmm(xs):
    """(min, median, max) of the numbers in xs, or (None, None, None)."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return None, None, None
    return min(xs), statistics.median(xs), max(xs)


def fnum(x, digits=0, unit=""):
    if x is None:
        return "—"
    return f"{x:,.{digits}f}{unit}"


def fms(x):
    """milliseconds → readable."""
    if x is None:
        return "—"
    if x < 1:
        return f"{x * 1000:.0f} µs"
    if x < 100:
        return f"{x:.1f} ms"
    if x < 10000:
        return f"{x:,.0f} ms"
    return f"{x / 1000:.1f} s"


def fmib(kib):
    return "—" if kib is None else f"{kib / 1024:.1f} MiB"


def header(title, tools, extra_versions=None):
    lines = c.header_lines(title, tools)
    for k, v in (extra_versions or {}).items():
        lines.append(f"- {k}: {v}")
    la = os.getloadavg()
    lines.append(f"- load average (1/5/15 min) when the report was written: "
                 f"{la[0]:.2f} / {la[1]:.2f} / {la[2]:.2f}")
    return lines


def hand_notes(name):
    """The paragraph written by hand after looking at a run (bench/lab/notes/NAME.md), if any.
    It holds no numbers: every figure in the reports is generated."""
    path = os.path.join(LAB, "notes", f"{name}.md")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        text = f.read().strip()
    return ["", "### Reading (written by hand after looking at a full run; no figures in it)",
            "", text, ""]


def write_report(out_dir, name, lines, data=None, fig=None):
    os.makedirs(out_dir, exist_ok=True)
    md = os.path.join(out_dir, f"{name}.md")
    if fig is not None:
        png = os.path.join(out_dir, f"{name}.png")
        fig.savefig(png, dpi=110, bbox_inches="tight")
        lines = lines + ["", f"![{name}]({name}.png)", ""]
    with open(md, "w") as f:
        f.write("\n".join(lines).rstrip() + "\n")
    if data is not None:
        with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
            json.dump(data, f, indent=1, default=str)
    log(f"wrote {os.path.relpath(md, REPO)}" + (f" and {name}.png" if fig is not None else ""))
    return md


def plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as p
    return p


def problems_lines(problems, ok_text):
    if problems:
        return ["", "Problems seen during the run:", ""] + [f"- {p}" for p in problems]
    return ["", ok_text]


def table_ok(md_path):
    """True when the Markdown file has at least one table with a header, a separator and a
    data row whose cell count matches (used by the CI smoke)."""
    with open(md_path) as f:
        rows = [ln.strip() for ln in f if ln.strip().startswith("|")]
    for i in range(len(rows) - 2):
        head, sep, first = rows[i], rows[i + 1], rows[i + 2]
        n = head.count("|")
        if re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", sep) and sep.count("|") == n \
                and first.count("|") == n and not re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", first):
            return True
    return False


def which_or_none(name):
    return shutil.which(name)


def tree_cpu_split(pid):
    """(user, system) CPU seconds used by the tree so far, reaped children included."""
    user = system = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            user += int(fields[11]) + int(fields[13])
            system += int(fields[12]) + int(fields[14])
        except (OSError, ValueError, IndexError):
            pass
    return user / CLK_TCK, system / CLK_TCK
