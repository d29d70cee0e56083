"""`bench/run compare`: ironhorse against the other servers, by delegation.

Runs bench/wsgi.py (ironhorse vs gunicorn, uWSGI, Granian, bjoern, waitress; written and
owned by another script) when it exists, and bench/static.py (ironhorse's models vs nginx),
each in its own quick or normal mode, and gathers their Markdown into compare.md. Nothing
here measures anything itself.
"""

import os
import re
import shutil
import subprocess
import sys
import time

from harness import BENCH, REPO
from harness.procs import lab_log as log
from harness.report import header, write_report


def delegate(name, argv, out, timeout, problems):
    log(f"compare: {' '.join(os.path.relpath(x, REPO) if x.startswith(REPO) else x for x in argv)}")
    t0 = time.monotonic()
    logf = out + ".log"
    try:
        with open(logf, "wb") as lf:
            p = subprocess.Popen(argv, cwd=REPO, stdout=lf, stderr=subprocess.STDOUT,
                                 start_new_session=True)
            try:
                code = p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                import signal
                os.killpg(p.pid, signal.SIGTERM)  # its own handlers stop its servers
                try:
                    code = p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    code = p.wait()
                problems.append(f"{name}: stopped after the {timeout:.0f} s limit")
    except OSError as e:
        problems.append(f"{name}: could not run: {e}")
        return None, 0
    took = time.monotonic() - t0
    if code != 0:
        with open(logf, errors="replace") as f:
            tail = f.read()[-600:]
        problems.append(f"{name}: exit code {code}; last output: `{tail.strip()[-300:]}`")
    if os.path.exists(out):
        with open(out, errors="replace") as f:
            return f.read(), took
    problems.append(f"{name}: wrote no report")
    return None, took


def demote(md):
    """Headings one level down, so the delegated reports nest under compare.md's title."""
    return re.sub(r"^(#+) ", lambda m: "##" + m.group(1) + " ", md, flags=re.M)


def run(a, ctx):
    py = shutil.which("python3") or sys.executable
    problems, parts = [], []
    wsgi = os.path.join(BENCH, "wsgi.py")
    static = os.path.join(BENCH, "static.py")
    if os.path.exists(wsgi):
        argv = [py, wsgi, "--no-build", "--out", os.path.join(ctx.tmp, "wsgi.md")]
        if a.quick:
            argv += ["--quick", "--bench", "hello", "--servers", "event,gunicorn"]
        md, took = delegate("bench/wsgi.py", argv, argv[argv.index("--out") + 1],
                            240 if a.quick else 75 * 60, problems)
        parts.append(("bench/wsgi.py", " ".join(["bench/wsgi.py"] + argv[2:]), md, took))
    else:
        parts.append(("bench/wsgi.py", None, None, 0))
    argv = [py, static, "--no-build", "--out", os.path.join(ctx.tmp, "static.md")]
    if a.quick:
        argv += ["--quick", "--models", "event,async"]
    md, took = delegate("bench/static.py", argv, argv[argv.index("--out") + 1],
                        180 if a.quick else 40 * 60, problems)
    parts.append(("bench/static.py", " ".join(["bench/static.py"] + argv[2:]), md, took))

    lines = header("Compare: ironhorse vs other WSGI servers and nginx (delegated)", ctx.tools)
    lines += ["- this report only gathers the reports of the scripts below, run one after the "
              "other by `bench/run compare`; each states its own method, machine and noise",
              ""]
    lines += ["| part | command | took | result |", "|---|---|---|---|"]
    for name, cmd, md, took in parts:
        if cmd is None:
            lines.append(f"| {name} | — | — | not present in this checkout: only bench/static.py "
                         "was run |")
        else:
            lines.append(f"| {name} | `{cmd.replace(ctx.tmp, '$TMP')}` | {took / 60:.1f} min | "
                         f"{'report below' if md else 'no report (see problems)'} |")
    if problems:
        lines += ["", "Problems seen:", ""] + [f"- {p}" for p in problems]
    for name, cmd, md, _took in parts:
        if md:
            lines += ["", f"### From {name}", "", demote(md).strip(), ""]
    return write_report(ctx.out_dir, "compare", lines, {"problems": problems})
