"""What a benchmark needs on the machine: wrk, nginx, strace (installed with apt-get when
missing), a release build of ironhorse, CPUs to pin to, and enough file descriptors."""

import os
import resource
import shutil
import subprocess
import sys
import time

from harness import REPO
from harness.binaries import DEFAULT
from harness.procs import log


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


def _build_once():
    env = dict(os.environ)
    if "PYO3_PYTHON" not in env:
        env["PYO3_PYTHON"] = sys.executable
    log("cargo build --release -p ironhorse")
    r = subprocess.run(["cargo", "build", "--release", "-p", "ironhorse"], cwd=REPO, env=env)
    if r.returncode != 0:
        sys.exit("bench: cargo build failed")
    if not os.access(DEFAULT, os.X_OK):
        sys.exit(f"bench: {DEFAULT} missing after the build")


def build_ironhorse(retries=1, wait=60):
    """cargo build --release -p ironhorse (exits on failure). With retries > 1 a failed build
    is tried again after `wait` s: others may be editing crates/ at the same time."""
    for attempt in range(1, retries + 1):
        try:
            _build_once()
            return
        except SystemExit as e:
            if attempt == retries:
                raise
            log(f"build failed ({e}); retrying in {wait} s ({attempt}/{retries})")
            time.sleep(wait)


def cpu_pins():
    """(pinned?, (server CPU, load generator CPU)): CPUs 0 and 1 when taskset exists and
    there are at least 2 CPUs, else no pinning (None, None)."""
    ok = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    return ok, ((0, 1) if ok else (None, None))


def raise_nofile(soft_cap=None, hard_need=None):
    """Raise RLIMIT_NOFILE (servers started later inherit it); returns the soft limit.
    The soft limit goes up to the hard one (or to soft_cap when given). With hard_need, the
    hard limit is first lifted to it where allowed (root, up to fs.nr_open)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard_need and hard != resource.RLIM_INFINITY and hard < hard_need:
        try:
            with open("/proc/sys/fs/nr_open") as f:
                cap = int(f.read())
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard_need, cap), min(hard_need, cap)))
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        except (OSError, ValueError):
            pass
    if soft_cap is None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    else:
        want = soft_cap if hard == resource.RLIM_INFINITY else min(hard, soft_cap)
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
