"""`bench/run cpu-io`: a CPU-bound handler (~5 ms of pure-Python work) against an I/O-bound
one (50 ms sleep) at 8, 64 and 512 keep-alive connections (wrk), per model; full runs add
2,000 connections on the I/O-bound app for the one-process threaded, event, ASGI and gevent
models. The `-k gevent` row (greenlets on one hub thread; time.sleep is monkey-patched) runs
the I/O-bound app only, in bench/.venv-lab, where gevent is installed; the ASGI rows (`event`
and `async` with `--interface asgi`) run the I/O-bound app's ASGI twin (asyncio.sleep) only.

Not pinned: the point is to see whether a model can use both CPUs (wrk shares them).
"""

import os
import sys
import time

from harness import APPS, wrk
from harness.app_server import Server
from harness.fmt import fmib, fms, fnum, mmm
from harness.lab_venv import VENV, versions
from harness.proc_stats import TreeSampler, tree_cpu_split
from harness.procs import lab_log as log
from harness.report import hand_notes, header, plt, problems_lines, write_report

NCPU = os.cpu_count() or 1

IO_DELAY = 0.05
CPU_TARGET = 0.005
CONNS = [8, 64, 512]
IO_WIDE = 2000  # I/O-bound app only, full runs only, for the models in WIDE
GEVENT = "-k gevent"
ASGI_EVENT = "event --interface asgi"
ASGI_ASYNC = "async --interface asgi"
ASGI = [ASGI_EVENT, ASGI_ASYNC]
# label, args, processes running Python in parallel (None: one per connection), app slots
# (None: one per connection)
MODELS = [
    ("single", ["--model", "single"], 1, 1),
    ("fork", ["--model", "fork"], None, 512),
    ("thread", ["--model", "thread"], 1, None),
    ("threadpool --threads 64", ["--model", "threadpool", "--threads", "64"], 1, 64),
    ("prefork -w 2", ["--model", "prefork", "-w", "2"], 2, 2),
    ("hybrid -w 2 --threads 32", ["--model", "hybrid", "-w", "2", "--threads", "32"], 2, 64),
    ("event --threads 64", ["--model", "event", "--threads", "64"], 1, 64),
    ("async --threads 64", ["--model", "async", "--threads", "64"], 1, 64),
    (GEVENT, ["-k", "gevent", "--worker-connections", "4096", "--virtualenv", VENV], 1, 4096),
    (ASGI_EVENT, ["--model", "event", "--interface", "asgi"], 1, None),
    (ASGI_ASYNC, ["--model", "async", "--interface", "asgi"], 1, None),
]
# The application each model serves (default: the WSGI app).
SPECS = {label: "lab_cpuio_asgi:app" for label in ASGI}
SKIP = {("fork", 512): "a process (with its own Python) per connection: 512 processes is too "
                       "heavy for this 2-CPU machine"}
THREADED_1P = ["thread", "threadpool --threads 64", "event --threads 64", "async --threads 64"]
MULTI_P = ["prefork -w 2", "hybrid -w 2 --threads 32"]
WIDE = ["thread", "event --threads 64", "async --threads 64", GEVENT] + ASGI
# Greenlets and coroutines on one thread add nothing to the CPU-bound question.
IO_ONLY = [GEVENT] + ASGI


def planned(label, app, quick):
    """The connection counts measured for this model and app (SKIP cells included)."""
    if app == "cpu" and label in IO_ONLY:
        return []
    return CONNS + ([IO_WIDE] if app == "io" and not quick and label in WIDE else [])


def skipped(label, conns):
    return (label.split()[0], conns) in SKIP


def calibrate():
    """Iterations of lab_cpuio.burn that take CPU_TARGET of wall time on an uncontended CPU
    (the best of many timings, as other work shares this machine); returns (iterations,
    best, median) seconds."""
    sys.path.insert(0, APPS)
    import lab_cpuio

    def timings(n, k):
        out = []
        for _ in range(k):
            t = time.perf_counter()
            lab_cpuio.burn(n)
            out.append(time.perf_counter() - t)
        return sorted(out)

    iters = 20000
    for _ in range(3):
        iters = max(1000, int(iters * CPU_TARGET / timings(iters, 15)[0]))
    ts = timings(iters, 31)
    return iters, ts[0], ts[len(ts) // 2]


def ceiling(model, app, conns, cpu_s):
    label, _args, procs, slots = model
    slots = conns if slots is None else min(slots, conns)
    if app == "cpu":
        par = conns if procs is None else procs
        par = min(par, slots, NCPU)
        return par / cpu_s
    return slots / IO_DELAY


def run(a, ctx):
    duration = a.duration or (1 if a.quick else 10)
    rounds = a.rounds or 1
    models = [m for m in MODELS if not a.only or any(o in m[0] for o in a.only)]
    iters, cpu_min, cpu_med = calibrate()
    log(f"cpu-io: {iters} loop iterations ≈ {cpu_min * 1000:.2f} ms (best) / "
        f"{cpu_med * 1000:.2f} ms (median) on this machine")
    problems, cells = [], {}
    total = sum(len([x for x in planned(m[0], app, a.quick) if not skipped(m[0], x)])
                for m in models for app in ("cpu", "io"))
    done = 0
    t_start = time.monotonic()
    for rnd in range(1, rounds + 1):
        for model in models:
            label, args = model[0], model[1]
            for app in ("cpu", "io"):
                for conns in planned(label, app, a.quick):
                    if skipped(label, conns):
                        continue
                    done += 1
                    name = f"{label} /{app} -c{conns}"
                    log(f"cpu-io round {rnd}/{rounds} [{done}/{total * rounds}] {name} "
                        f"({duration} s)")
                    # A fresh server per measurement: a serial server still owes answers to
                    # the previous run's closed connections (their requests were sent), which
                    # would eat the next run.
                    server = sampler = None
                    try:
                        spec = SPECS.get(label, "lab_cpuio:app")
                        server = Server(name, args, spec, ctx.tmp, problems,
                                        extra_env={"LAB_CPU_ITERS": str(iters),
                                                   "LAB_IO_DELAY": str(IO_DELAY)},
                                        ready_path=f"/{app}")
                        sampler = TreeSampler(server.proc.pid, interval=0.5)
                        sampler.start()
                        c0, t0 = tree_cpu_split(server.proc.pid), time.monotonic()
                        r = wrk.measure(ctx.tools["wrk"], f"{server.url}/{app}", conns, duration)
                        dt = time.monotonic() - t0
                        c1 = tree_cpu_split(server.proc.pid)
                        r["user"] = (c1[0] - c0[0]) / dt
                        r["sys"] = (c1[1] - c0[1]) / dt
                        r["cores"] = r["user"] + r["sys"]
                        if not r.get("requests"):
                            r["p50"] = r["p99"] = None
                            problems.append(f"{name}: no request completed in {duration} s")
                        if r.get("error"):
                            problems.append(f"{name}: {r['error']}")
                        if r.get("non2xx"):
                            problems.append(f"{name}: {r['non2xx']} non-2xx answers")
                        if not server.alive():
                            problems.append(f"{name}: server exited with "
                                            f"{server.proc.returncode}")
                        cells.setdefault((label, app, conns), []).append(r)
                    except Exception as e:  # noqa: BLE001
                        problems.append(f"{name}: {type(e).__name__}: {e}")
                        r = None
                    finally:
                        if sampler is not None and r is not None:
                            r["peak"] = sampler.finish()
                        elif sampler is not None:
                            sampler.finish()
                        if server is not None:
                            server.stop()
                    if r is not None:
                        log(f"  {fnum(r['rps'])} req/s, p50 {fms(r['p50'])}, p99 "
                            f"{fms(r['p99'])}, CPU {r['user']:.2f} user + {r['sys']:.2f} sys "
                            f"cores, errors {r['errors'] or 0}")
    took = time.monotonic() - t_start
    return report(a, ctx, models, cells, problems, iters, cpu_min, cpu_med, duration, rounds,
                  took)


def all_conns(cells):
    """Every connection count with a measurement (for the tables and the plot)."""
    return sorted({k[2] for k in cells} | set(CONNS))


def summary(cells, key):
    runs = cells.get(key, [])
    lo, md, hi = mmm([r["rps"] for r in runs])
    return {"n": len(runs), "rps": md, "min": lo, "max": hi,
            "p50": mmm([r["p50"] for r in runs])[1], "p99": mmm([r["p99"] for r in runs])[1],
            "cores": mmm([r.get("cores") for r in runs])[1],
            "user": mmm([r.get("user") for r in runs])[1],
            "sys": mmm([r.get("sys") for r in runs])[1],
            "errors": sum(sum(r["errors"].values()) for r in runs),
            "timeouts": sum(r["errors"].get("timeout", 0) for r in runs),
            "threads": max([r.get("peak", {}).get("threads", 0) for r in runs] or [0]),
            "procs": max([r.get("peak", {}).get("procs", 0) for r in runs] or [0]),
            "rss": max([r.get("peak", {}).get("rss", 0) for r in runs] or [0]),
            "pss": max([r.get("peak", {}).get("pss") or 0 for r in runs] or [0])}


def best(cells, labels, app):
    vals = [(summary(cells, (lb, app, cn))["rps"] or 0, lb, cn) for lb in labels
            for cn in all_conns(cells) if cells.get((lb, app, cn))]
    return max(vals) if vals else (None, None, None)


def verdicts(cells, cpu_s):
    out = []
    one_core = 1 / cpu_s
    # 1. the GIL
    rows = [(lb, summary(cells, (lb, "cpu", cn))) for lb in THREADED_1P for cn in CONNS
            if cells.get((lb, "cpu", cn))]
    if rows:
        top = max(s["rps"] or 0 for _, s in rows)
        top_user = max(s["user"] or 0 for _, s in rows)
        top_sys = max(s["sys"] or 0 for _, s in rows)
        ok = top <= 1.15 * one_core and top_user <= 1.15
        out.append(
            f"**The GIL limits threads on CPU work — {'confirmed' if ok else 'NOT confirmed'}.** "
            f"The best CPU-bound rate of any one-process threaded model "
            f"({', '.join(THREADED_1P)}) is {top:,.0f} req/s against a one-core ceiling of "
            f"{one_core:,.0f} req/s (1 / {cpu_s * 1000:.2f} ms), and the most user-mode CPU any of "
            f"them used was {top_user:.2f} cores: adding threads does not add CPUs for Python "
            f"code. (Kernel time is another matter: up to {top_sys:.2f} cores of system time, "
            "threads handing the GIL back and forth through futexes.)")
    # 2. processes scale with cores
    mp, mlb, mcn = best(cells, MULTI_P, "cpu")
    sp, slb, scn = best(cells, THREADED_1P + ["single"], "cpu")
    if mp and sp:
        cores = summary(cells, (mlb, "cpu", mcn))["cores"] or 0
        ratio = mp / sp
        ok = ratio >= 1.4
        out.append(
            f"**Processes scale with cores — {'confirmed' if ok else 'only partly' if ratio > 1.1 else 'NOT seen'} "
            f"on this {NCPU}-CPU machine.** The best two-process CPU-bound rate ({mlb}, "
            f"-c{mcn}: {mp:,.0f} req/s, {cores:.2f} cores busy) is {ratio:.2f}× the best "
            f"one-process rate ({slb}, -c{scn}: {sp:,.0f} req/s); the ideal is "
            f"{min(2, NCPU)}×, less the CPU that wrk itself needs on the same two cores.")
    # 3. waiting
    io512 = {lb: summary(cells, (lb, "io", 512)) for lb, *_ in MODELS if cells.get((lb, "io", 512))}
    serial, slb, scn = best(cells, ["single", "prefork -w 2"], "io")
    waiting_models = THREADED_1P + ["hybrid -w 2 --threads 32", GEVENT] + ASGI
    waiters = [lb for lb in io512 if lb in waiting_models and io512[lb]["rps"]]
    if waiters and serial:
        worst = min(waiters, key=lambda lb: io512[lb]["rps"])
        best_w = max(waiters, key=lambda lb: io512[lb]["rps"])
        rw = io512[worst]["rps"] / serial
        ok = rw >= 10
        out.append(
            f"**Event loops and threads shine on waiting — {'confirmed' if ok else 'NOT confirmed'}.** "
            f"At 512 connections on the {IO_DELAY * 1000:.0f} ms sleep, the threaded and event "
            f"models deliver {io512[worst]['rps']:,.0f} ({worst}) to "
            f"{io512[best_w]['rps']:,.0f} ({best_w}) req/s, at least {rw:.0f}× the best serial "
            f"result ({slb} at {scn} connections: {serial:,.0f} req/s): a sleeping request "
            "holds an app slot (a thread), not a CPU, so the ceiling is slots / "
            f"{IO_DELAY * 1000:.0f} ms; how close each gets to it is in the table.")
    return out


def report(a, ctx, models, cells, problems, iters, cpu_min, cpu_med, duration, rounds, took):
    cpu_s = cpu_min
    lines = header("CPU-bound vs I/O-bound handlers per model", ctx.tools, versions())
    lines += [
        f"- app: `bench/apps/lab_cpuio.py`: `/cpu` runs a pure-Python loop of {iters:,} "
        f"iterations, calibrated by bench/run on this machine to {cpu_min * 1000:.2f} ms (best "
        f"of 31 timings; median {cpu_med * 1000:.2f} ms: the machine is shared); the ceilings "
        f"use the best time; `/io` sleeps {IO_DELAY * 1000:.0f} ms",
        f"- load: `wrk -t1 -cN -d{duration}s --latency` (keep-alive, wrk's default 2 s "
        f"timeout), N = {', '.join(map(str, CONNS))}"
        + (f" ({IO_WIDE:,} too on the I/O-bound app for {', '.join(WIDE)})"
           if not a.quick else "") + "; a fresh server for every measurement "
        "(a serial server still owes answers to a finished run's closed connections), warmed "
        f"by one request to its path; {rounds} round(s)"
        + ("; req/s is the median [min–max] over the rounds" if rounds > 1 else
           " (no repeats: compare against the noise figures in docs/BENCHMARKS.md, where "
           "the same server measured twice differed by up to 2–3×)")
        + f"; not pinned (server and wrk share the {NCPU} CPUs); took {took / 60:.1f} min",
        "- ceiling: CPU app: (processes able to run Python at once, at most the CPUs and the "
        "connections served) / CPU time per request; I/O app: (requests the model runs at "
        f"once, at most N) / {IO_DELAY * 1000:.0f} ms. `single` serves one keep-alive "
        "connection at a time: wrk's other connections wait, and their requests show up as "
        "timeouts; `prefork` runs one request at a time per worker but reads ahead on every "
        "connection, so all of wrk's are served in turn",
        "- server CPU: CPU seconds used by the server's process tree during the run / run "
        "time, user + system (/proc/PID/stat utime, stime; reaped children included); peaks "
        "sampled every 0.5 s over the tree (RSS summed, PSS summed)",
        "- " + "; ".join(f"`{m} -c{n}` skipped: {why}" for (m, n), why in SKIP.items()),
        f"- `{GEVENT}`: `-k gevent --worker-connections 4096` (the event model, its app called as "
        "gevent) with `--virtualenv "
        "bench/.venv-lab` (where gevent is installed): the same WSGI app, each request in a "
        "greenlet on one hub thread, its time.sleep monkey-patched to yield to the hub; "
        "I/O-bound app only",
        f"- `{ASGI_EVENT}`, `{ASGI_ASYNC}`: the I/O-bound app's ASGI twin "
        "(`bench/apps/lab_cpuio_asgi.py`: `await asyncio.sleep`), each request a coroutine on "
        "the process's one asyncio loop; I/O-bound app only",
        "",
    ]
    for app, title in (("cpu", f"CPU-bound: {cpu_s * 1000:.1f} ms of Python per request"),
                       ("io", f"I/O-bound: {IO_DELAY * 1000:.0f} ms sleep per request")):
        lines += [f"### {title}", "",
                  "| model | connections | req/s | ceiling | of ceiling | p50 | p99 | server "
                  "CPU, cores (user + sys) | wrk errors (timeouts) | peak threads | peak "
                  "processes | peak RSS (PSS) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for m in models:
            for cn in planned(m[0], app, a.quick):
                key = (m[0], app, cn)
                if skipped(m[0], cn):
                    lines.append(f"| {m[0]} | {cn} | skipped | — | — | — | — | — | — | — | — | — |")
                    continue
                if not cells.get(key):
                    lines.append(f"| {m[0]} | {cn} | no result | — | — | — | — | — | — | — | — | — |")
                    continue
                s = summary(cells, key)
                ceil = ceiling(m, app, cn, cpu_s)
                rng = (f"{fnum(s['rps'])} [{fnum(s['min'])}–{fnum(s['max'])}]" if s["n"] > 1
                       else fnum(s["rps"]))
                lines.append(
                    f"| {m[0]} | {cn} | {rng} | {ceil:,.0f} | "
                    f"{(s['rps'] or 0) / ceil * 100:.0f} % | {fms(s['p50'])} | {fms(s['p99'])} | "
                    f"{fnum(s['cores'], 2)} ({fnum(s['user'], 2)} + {fnum(s['sys'], 2)}) | "
                    f"{s['errors']:,} ({s['timeouts']:,}) | {fnum(s['threads'])} | "
                    f"{fnum(s['procs'])} | {fmib(s['rss'])} ({fmib(s['pss'])}) |")
        lines.append("")
    lines += ["### The claims", ""] + [f"- {v}" for v in verdicts(cells, cpu_s)]
    lines += hand_notes("cpu-io")
    lines += problems_lines(problems, "No problems seen: every server answered, none crashed or "
                            "logged an error, every server stopped on SIGTERM with exit code 0 "
                            "(wrk timeouts of the serial models are listed in the table).")
    data = {"iters": iters, "cpu_ms": [cpu_min * 1000, cpu_med * 1000],
            "cells": {f"{k[0]}|{k[1]}|{k[2]}": v for k, v in cells.items()},
            "problems": problems}
    return write_report(ctx.out_dir, "cpu-io", lines, data, plot(models, cells, cpu_s))


def plot(models, cells, cpu_s):
    p = plt()
    fig, axes = p.subplots(1, 2, figsize=(14, 5))
    conns = all_conns(cells)
    width = 0.8 / len(conns)
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    for ax, app, title in ((axes[0], "cpu", f"CPU-bound ({cpu_s * 1000:.1f} ms Python)"),
                           (axes[1], "io", f"I/O-bound ({IO_DELAY * 1000:.0f} ms sleep)")):
        for j, cn in enumerate(conns):
            xs, ys, cs = [], [], []
            for i, m in enumerate(models):
                s = summary(cells, (m[0], app, cn))
                if s["rps"]:
                    xs.append(i + (j - (len(conns) - 1) / 2) * width)
                    ys.append(s["rps"])
                    cs.append(ceiling(m, app, cn, cpu_s))
            ax.bar(xs, ys, width, color=colors[j], label=f"{cn} connections")
            ax.scatter(xs, cs, marker="_", color="black", s=60, zorder=3,
                       label="ceiling" if j == 0 else None)
        ax.set_xticks(range(len(models)), [m[0] for m in models], rotation=35, ha="right",
                      fontsize=8)
        ax.set_ylabel("requests/s" + (" (log)" if app == "io" else ""))
        if app == "io":
            ax.set_yscale("log")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
