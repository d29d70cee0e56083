"""The ironhorse binaries under test.

By default one: target/release/ironhorse, built by the script. `--binary NAME=PATH`
(repeatable, in bench/static.py and bench/wsgi.py) names others instead, so two builds
(say `before=` and `after=` a refactor) run interleaved in one report. Every binary is
copied into the run's temporary directory at the start and run from there, so a rebuild of
target/release by someone else during a long run cannot change a server half-way through.
"""

import argparse
import hashlib
import os
import re
import shutil
import subprocess

from harness import REPO, procs

DEFAULT = os.path.join(REPO, "target", "release", "ironhorse")
DEFAULT_NAME = "ironhorse"

_snapshots = []  # Binary objects copied in this run, in the order given


class Binary:
    """One build: `name` (as given with --binary, or "ironhorse"), `source` (where it was
    copied from), `path` (the copy servers are started from) and a one-line description."""

    def __init__(self, name, source, path, described):
        self.name, self.source, self.path, self.described = name, source, path, described


def output(cmd, stderr=False):
    """stdout (and stderr) of a short command run in the repository, stripped; "" on failure."""
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=20, cwd=REPO)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (r.stdout + (r.stderr if stderr else "")).strip()


def git_rev():
    rev = output(["git", "rev-parse", "--short=12", "HEAD"]) or "unknown"
    if output(["git", "status", "--porcelain", "--untracked-files=no"]):
        rev += " (working tree has uncommitted changes)"
    return rev


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def parse_spec(text):
    """argparse type for `--binary NAME=PATH`: (name, absolute path)."""
    name, sep, path = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z0-9._-]+", name) or not path:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=PATH, NAME of letters, "
                                         "digits, '.', '_' or '-'")
    path = os.path.abspath(os.path.expanduser(path))
    if not os.access(path, os.X_OK) or os.path.isdir(path):
        raise argparse.ArgumentTypeError(f"{text!r}: {path} is not an executable file")
    return name, path


def add_option(ap):
    """The repeatable --binary option (see the module doc)."""
    ap.add_argument("--binary", action="append", type=parse_spec, default=[],
                    metavar="NAME=PATH",
                    help="an ironhorse build to measure, under NAME in the tables (repeat to "
                         "compare builds side by side, interleaved; the first is the baseline "
                         "of the ratios); implies --no-build. Default: target/release/ironhorse")


def check_option(ap, specs):
    """Reject --binary lists that name a build twice."""
    names = [n for n, _ in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        ap.error(f"--binary: name(s) given more than once: {', '.join(dup)}")


def snapshot(tmp, name=DEFAULT_NAME, source=DEFAULT):
    """Copy `source` into tmp and return the Binary to run. The default build is copied to
    tmp/ironhorse; named ones to tmp/bin-NAME/ironhorse."""
    if name == DEFAULT_NAME and source == DEFAULT:
        dst = os.path.join(tmp, "ironhorse")
        described = f"{output([source, '--version']) or '?'}, git {git_rev()}"
    else:
        os.makedirs(os.path.join(tmp, f"bin-{name}"), exist_ok=True)
        dst = os.path.join(tmp, f"bin-{name}", "ironhorse")
        described = f"{output([source, '--version']) or '?'}, sha256 {_sha256(source)[:16]}"
    shutil.copy2(source, dst)
    b = Binary(name, source, dst, described)
    _snapshots.append(b)
    return b


def snapshot_all(tmp, specs):
    """Copy every --binary given (or the default build when none was) into tmp."""
    if not specs:
        return [snapshot(tmp)]
    return [snapshot(tmp, name, path) for name, path in specs]


def current():
    """The binary single-build callers run: the first copy, or the build itself."""
    return _snapshots[0].path if _snapshots else DEFAULT


def header_lines():
    """Report header lines saying which ironhorse was measured."""
    if not _snapshots:
        return [f"- ironhorse: {output([DEFAULT, '--version'])}, git {git_rev()}"
                " (target/release/ironhorse, copied at the start of the run)"]
    if len(_snapshots) == 1 and _snapshots[0].source == DEFAULT:
        return [f"- ironhorse: {_snapshots[0].described}"
                " (target/release/ironhorse, copied at the start of the run)"]
    return [f"- ironhorse `{b.name}`: {b.described} ({b.source}, copied at the start of the "
            "run)" for b in _snapshots]


def launch(path, args, log_path, pin=None, env=None, timeout=15.0):
    """Start the ironhorse at `path` with `args` (which bind 127.0.0.1:0) on CPU `pin`;
    (process, "HOST:PORT" from its `listening on` line)."""
    p = procs.spawn(procs.pinned([path] + list(args), pin), log_path, env=env)
    m = procs.wait_for_line(p, log_path, r"listening on https?://(\S+)", timeout=timeout)
    return p, m.group(1)
