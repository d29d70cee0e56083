"""What a server's process tree uses, read from /proc: memory (RSS, PSS), threads,
processes, descriptors and CPU time (utime + stime of every thread)."""

import os
import threading

from harness.procs import tree

CLK_TCK = os.sysconf("SC_CLK_TCK")


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


def rss_kib(pid):
    """VmRSS of one process in KiB, or None when it is gone."""
    return _status(pid).get("VmRSS")


def _pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


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


def tree_fds(pid):
    """Open file descriptors summed over the process tree."""
    n = 0
    for p in tree(pid):
        try:
            n += len(os.listdir(f"/proc/{p}/fd"))
        except OSError:
            pass
    return n


def _stat_fields(pid):
    """The fields of /proc/PID/stat after the command name (utime is index 11)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_split(pid):
    """(user, system) CPU seconds of one process so far, all its threads."""
    fields = _stat_fields(pid)
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def tree_cpu_split(pid):
    """(user, system) CPU seconds used by the tree so far, reaped children included
    (cutime/cstime: the fork model's finished children)."""
    user = system = 0
    for p in tree(pid):
        try:
            fields = _stat_fields(p)
            user += int(fields[11]) + int(fields[13])
            system += int(fields[12]) + int(fields[14])
        except (OSError, ValueError, IndexError):
            pass
    return user / CLK_TCK, system / CLK_TCK


class CpuMeter:
    """CPU seconds the tree of `pid` uses between start() and stop(). Divided by the requests
    served, it is the steadier figure beside req/s: on a shared host req/s swing 2-4x
    between runs minutes apart, CPU time per request much less."""

    def __init__(self, pid):
        self.pid = pid
        self.start()

    def start(self):
        self._t0 = sum(tree_cpu_split(self.pid))

    def stop(self):
        return sum(tree_cpu_split(self.pid)) - self._t0


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
