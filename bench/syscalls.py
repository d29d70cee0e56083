#!/usr/bin/env python3
"""System calls per request: ironhorse models vs nginx, counted with `strace -c`.

    python3 bench/syscalls.py                       # event vs nginx, 1 KiB and 1 MiB files
    python3 bench/syscalls.py --models event,async --duration 3 --out /tmp/sys.md

For each server and file: start the server (pinned to CPU 0), attach `strace -c -f` to the
process that serves (nginx: its worker; ironhorse: the process itself), run
`wrk -t1 -c50 -d{duration}s` (pinned to CPU 1), detach, and divide each system call's count
by the number of requests wrk completed. strace slows the server down a lot, so the
request rate under strace means nothing; the calls per request are what to compare
(with a slower server each epoll_wait returns more events, so epoll_wait per request is
if anything lower than without strace, for both servers alike).

Python 3 standard library only; installs strace / wrk / nginx with apt-get when missing.
"""

import argparse
import os
import re
import resource
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import binaries, procs, report, tools, wrk  # noqa: E402
from harness.proc_stats import cpu_split  # noqa: E402
from harness.static_site import (FILE_LABEL, FILES, check_responses, make_docroot,  # noqa: E402
                                 start_ironhorse, start_nginx)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="event", help="comma list of ironhorse models (default event)")
    ap.add_argument("--duration", type=int, default=3, help="seconds of wrk per file (default 3)")
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--top", type=int, default=8, help="system calls listed per row (default 8)")
    ap.add_argument("--out", help="also write the Markdown report to this file")
    ap.add_argument("--nginx-nopush-off", action="store_true",
                    help="also measure nginx with `tcp_nopush off` (no TCP_CORK around header + sendfile)")
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    a.models = [m.strip() for m in a.models.split(",") if m.strip()]
    return a


def parse_strace(text):
    """{syscall: (calls, errors)} from a `strace -c` summary."""
    calls = {}
    for line in text.splitlines():
        parts = line.split()
        # % time, seconds, usecs/call, calls, [errors], syscall
        if len(parts) >= 5 and re.fullmatch(r"[\d.]+", parts[0]) and parts[-1] != "total":
            try:
                n, e = int(parts[3]), int(parts[4]) if len(parts) == 6 else 0
            except ValueError:
                continue
            old = calls.get(parts[-1], (0, 0))
            calls[parts[-1]] = (old[0] + n, old[1] + e)
    return calls


def count(name, proc, addr, a, tool_paths, pins, tmp, problems):
    target = proc.pid
    if name.startswith("nginx"):
        kids = procs.children(proc.pid)
        if not kids:
            raise RuntimeError("nginx has no worker process")
        target = kids[0]
    out = {}
    for f in FILES:
        url = f"http://{addr}/{f}"
        subprocess.run(wrk.command(tool_paths["wrk"], url, a.connections, 1, pins[1], latency=False),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        # CPU time per request, without strace.
        u0, s0 = cpu_split(target)
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        w = subprocess.run(wrk.command(tool_paths["wrk"], url, a.connections, a.duration, pins[1]),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=a.duration + 60)
        u1, s1 = cpu_split(target)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        plain = wrk.parse(w.stdout)
        cpu = None
        if plain["requests"]:
            n = plain["requests"]
            cpu = ((u1 - u0) * 1e6 / n, (s1 - s0) * 1e6 / n, plain["rps"],
                   (r1.ru_utime - r0.ru_utime) * 1e6 / n, (r1.ru_stime - r0.ru_stime) * 1e6 / n)
        st_out = os.path.join(tmp, f"strace-{name}-{f}.txt")
        st = procs.track(subprocess.Popen([tool_paths["strace"], "-c", "-f", "-p", str(target),
                                           "-o", st_out], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, start_new_session=True))
        try:
            time.sleep(1.0)  # attached to every thread
            w = subprocess.run(wrk.command(tool_paths["wrk"], url, a.connections, a.duration, pins[1]),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=a.duration + 60)
        finally:
            os.kill(st.pid, signal.SIGINT)  # detach: strace writes its summary
            try:
                st.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
            procs.stop(st)
        res = wrk.parse(w.stdout)
        with open(st_out) as fh:
            calls = parse_strace(fh.read())
        if not res["requests"]:
            problems.append(f"{name} {f}: wrk completed no requests: {w.stdout[-300:]}")
            continue
        if res["errors"] or res["non2xx"]:
            problems.append(f"{name} {f}: wrk errors under strace: {res['errors']} "
                            f"non-2xx {res['non2xx']}")
        out[f] = (res["requests"], calls, cpu)
    return out


def main():
    a = parse_args()
    procs.install_signal_handlers()
    tool_paths = {"wrk": tools.find_tool("wrk", ["wrk"]),
                  "nginx": tools.find_tool("nginx", ["nginx-light", "nginx"]),
                  "strace": tools.find_tool("strace", ["strace"])}
    if not a.no_build:
        tools.build_ironhorse()
    _, pins = tools.cpu_pins()
    tmp = procs.new_tmpdir("ironhorse-syscalls-")
    root, expected = make_docroot(tmp)
    binaries.snapshot(tmp)
    problems = []
    results = []
    with procs.guarded(problems, tmp):
        servers = ["nginx"] + (["nginx-nopush-off"] if a.nginx_nopush_off else []) + a.models
        for name in servers:
            procs.log(f"strace on {name}")
            proc = None
            try:
                if name.startswith("nginx"):
                    proc, addr, _ = start_nginx(tool_paths["nginx"], root, tmp, pins[0],
                                                nopush=name == "nginx")
                    time.sleep(0.3)
                else:
                    proc, addr, _ = start_ironhorse(name, root, tmp, pin=pins[0])
                for pr in check_responses(addr, expected):
                    problems.append(f"{name}: {pr}")
                results.append((name, count(name, proc, addr, a, tool_paths, pins, tmp, problems)))
            finally:
                if proc is not None:
                    procs.stop(proc)

    lines = report.header_lines("System calls per request (strace -c)", tool_paths)
    lines += [
        f"- load: `wrk -t1 -c{a.connections} -d{a.duration}s` under `strace -c -f -p PID` "
        "(nginx: the worker process); counts divided by the requests wrk completed; "
        "the request rate under strace is meaningless, the ratios are not",
        "- CPU: the server's user and system CPU time (utime/stime in /proc/PID/stat, all "
        "threads) over a separate run without strace, divided by the requests wrk completed; "
        "wrk's own CPU time (getrusage of the child) over the same run, likewise"
        + ("; `nginx-nopush-off` is nginx with `tcp_nopush off`" if a.nginx_nopush_off else ""),
        "",
        "| server | file | requests (under strace) | syscalls per request | top calls per request "
        "(failed ones, e.g. EAGAIN, in brackets) | server CPU µs per request: user + sys "
        "(req/s without strace) | wrk CPU µs per request: user + sys |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, per_file in results:
        for f in FILES:
            if f not in per_file:
                continue
            reqs, calls, cpu = per_file[f]
            total = sum(n for n, _ in calls.values())
            top = sorted(calls.items(), key=lambda kv: -kv[1][0])[:a.top]
            top_s = ", ".join(f"{k} {n / reqs:.2f}" + (f" ({e / reqs:.2f})" if e else "")
                              for k, (n, e) in top)
            cpu_s = (f"{cpu[0]:.1f} + {cpu[1]:.1f} = {cpu[0] + cpu[1]:.1f} ({cpu[2]:,.0f} req/s)"
                     if cpu else "—")
            wrk_s = f"{cpu[3]:.1f} + {cpu[4]:.1f} = {cpu[3] + cpu[4]:.1f}" if cpu else "—"
            lines.append(f"| {name} | {FILE_LABEL[f]} | {reqs:,} | {total / reqs:.2f} | {top_s} "
                         f"| {cpu_s} | {wrk_s} |")
    report.finish_report(lines, problems, None, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
