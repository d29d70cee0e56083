"""Reports: the Markdown header (machine, versions, command, date), the ending (problems
seen), report files (Markdown, PNG, JSON), and the well-formed-table check CI relies on."""

import datetime
import json
import os
import platform
import re
import shlex
import sys

from harness import LAB, REPO, binaries
from harness.binaries import output
from harness.procs import lab_log


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def header_lines(title, tools):
    """Markdown header: machine, versions, command, date."""
    lines = [
        f"## {title}",
        "",
        f"- date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"- command: `{' '.join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:])}`"
        f" (python3, in {REPO})",
        f"- machine: {os.cpu_count()} CPUs (nproc {output(['nproc']) or '?'}), {cpu_model()}, "
        f"Linux {platform.release()}",
    ]
    lines += binaries.header_lines()
    for name, path in tools.items():
        if name == "nginx":
            v = output([path, "-v"], stderr=True)
        elif name == "wrk":
            v = output([path, "-v"], stderr=True).splitlines()[0:1]
            v = v[0] if v else "?"
            v = re.sub(r"\s*Copyright.*", "", v)
        else:
            v = path
        lines.append(f"- {name}: {v}")
    return lines


def header(title, tools, extra_versions=None):
    """header_lines, then extra versions and the load average (the model lab's reports)."""
    lines = header_lines(title, tools)
    for k, v in (extra_versions or {}).items():
        lines.append(f"- {k}: {v}")
    la = os.getloadavg()
    lines.append(f"- load average (1/5/15 min) when the report was written: "
                 f"{la[0]:.2f} / {la[1]:.2f} / {la[2]:.2f}")
    return lines


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


def problems_lines(problems, ok_text):
    """The model lab's ending: the problems seen, or ok_text."""
    if problems:
        return ["", "Problems seen during the run:", ""] + [f"- {p}" for p in problems]
    return ["", ok_text]


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
    """The model lab's files: NAME.md (+ NAME.png from a matplotlib figure, + NAME.json
    from data) in out_dir."""
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
    lab_log(f"wrote {os.path.relpath(md, REPO)}" + (f" and {name}.png" if fig is not None else ""))
    return md


def plt():
    """matplotlib.pyplot without a display (imported only by the scenarios that plot)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as p
    return p


_SEPARATOR = re.compile(r"\|(\s*:?-+:?\s*\|)+")


def check_tables(lines):
    """(well-formed tables, problems) of Markdown text given as lines. Well-formed: a header
    row, a separator row with the same cell count, and at least one data row; every row has
    that cell count and ends with `|`. A problem names the first row of a malformed table."""
    blocks, cur = [], []
    for ln in list(lines) + [""]:
        ln = ln.strip()
        if ln.startswith("|"):
            cur.append(ln)
        elif cur:
            blocks.append(cur)
            cur = []
    good, problems = 0, []
    for b in blocks:
        n = b[0].count("|")
        if (len(b) >= 3 and _SEPARATOR.fullmatch(b[1]) and not _SEPARATOR.fullmatch(b[2])
                and all(r.count("|") == n and r.endswith("|") for r in b)):
            good += 1
        else:
            problems.append(f"malformed table starting {b[0][:80]!r}")
    return good, problems
