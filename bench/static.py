#!/usr/bin/env python3
"""Static-file throughput: every ironhorse model against nginx (1 worker), with wrk.

    python3 bench/static.py                      # 5 s runs, 3 rounds, all models
    python3 bench/static.py --quick              # 1 s, 1 round: smoke test
    python3 bench/static.py --models event,async --rounds 5 --out /tmp/static.md
    python3 bench/static.py --binary before=/tmp/ih-before --binary after=/tmp/ih-after --rounds 4

Each round, for each model: start nginx, measure it, stop it; then start the ironhorse
model, measure it, stop it (A/B pairs, so slow drifts in machine noise hit both sides).
A measurement is: 1 s wrk warm-up, then `wrk -t1 -c50 -d{duration}s --latency` on the
1 KiB file and then on the 1 MiB file. The server is pinned to CPU 0 and wrk to CPU 1
when `taskset` exists and there are at least 2 CPUs. The ratio is the ironhorse median
over the median of the nginx runs paired with it.

With `--binary NAME=PATH` given twice or more, every model runs once per build in each
round, right after nginx (the builds' order reversed every other round), and a second table
compares the builds: per-round req/s ratios and the server's CPU time per request.

Python 3 standard library only; installs wrk / nginx with apt-get when they are missing.
"""

import argparse
import os
import re
import sys
import time

sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import binaries, builds, procs, report, tools, wrk  # noqa: E402
from harness.fmt import fmt_bytes, fmt_ms, fmt_rps  # noqa: E402
from harness.proc_stats import CpuMeter  # noqa: E402
from harness.static_site import (FILE_LABEL, FILES, MODEL_ARGS, check_responses,  # noqa: E402
                                 make_docroot, start_ironhorse, start_nginx)

_LOG_NOISE = re.compile(r"listening on|signal|stop|shutting down|exit", re.I)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    ap.add_argument("--models", default=",".join(MODEL_ARGS),
                    help="comma list of ironhorse models (default: all)")
    ap.add_argument("--connections", type=int, default=50, help="wrk -c (default 50)")
    ap.add_argument("--quick", action="store_true", help="duration 1, rounds 1 (smoke test)")
    ap.add_argument("--out", help="also write the Markdown report to this file")
    ap.add_argument("--no-build", action="store_true", help="skip cargo build")
    binaries.add_option(ap)
    a = ap.parse_args()
    binaries.check_option(ap, a.binary)
    if a.quick:
        a.duration, a.rounds = 1, 1
    a.models = [m.strip() for m in a.models.split(",") if m.strip()]
    bad = [m for m in a.models if m not in MODEL_ARGS]
    if bad:
        ap.error(f"unknown model(s) {bad}; known: {', '.join(MODEL_ARGS)}")
    return a


# --------------------------------------------------------------------------- measuring


def measure(server_name, start, a, tool_paths, expected, pins, problems):
    """Start a server, check it, warm up, run wrk for both files, stop it. Each file's
    result also has cpu_us: the server tree's CPU µs per request over the measured run."""
    proc = None
    out = {}
    try:
        proc, addr, log_path = start()
        for pr in check_responses(addr, expected):
            problems.append(f"{server_name}: before the run: {pr}")
        for f in FILES:
            url = f"http://{addr}/{f}"
            wrk.run(wrk.command(tool_paths["wrk"], url, a.connections, 1, pins[1], latency=False), 1)
            meter = CpuMeter(proc.pid)
            text, err = wrk.run(wrk.command(tool_paths["wrk"], url, a.connections, a.duration, pins[1]),
                                a.duration)
            cpu = meter.stop()
            if err:
                problems.append(f"{server_name} {f}: {err}")
            res = wrk.parse(text or "")
            if res["rps"] is None:
                problems.append(f"{server_name} {f}: could not parse wrk output: {(text or '')[-300:]}")
            out[f] = res
            if proc.poll() is not None:
                problems.append(f"{server_name}: server exited with {proc.returncode} during {f}")
                break
            res["cpu_us"] = wrk.cpu_us_per_request(cpu, res)
        if proc.poll() is None:
            for pr in check_responses(addr, expected):
                problems.append(f"{server_name}: after the run: {pr}")
    except procs.Interrupted:
        raise
    except Exception as e:  # noqa: BLE001 - record and go on with the next server
        problems.append(f"{server_name}: {type(e).__name__}: {e}")
    finally:
        if proc is not None:
            code, took = procs.stop_timed(proc)
            if took > 4.5:
                problems.append(f"{server_name}: took {took:.1f} s to stop after SIGTERM")
            if code not in (0, None) and server_name != "nginx":
                problems.append(f"{server_name}: exit code {code} after SIGTERM")
            odd = procs.odd_log_lines(log_path, _LOG_NOISE)
            if odd and server_name != "nginx":
                problems.append(f"{server_name}: server log: " + " | ".join(odd[-5:]))
            open(log_path, "w").close()  # each run's log starts empty
    return out


def row(name, f, s, ratio_cell, paired_cell):
    rng = (f"{fmt_rps(s['rps'])} [{fmt_rps(s['min'])}–{fmt_rps(s['max'])}]"
           if s["rps"] is not None else "—")
    cpu = f"{s['cpu_us']:,.1f}" if s.get("cpu_us") is not None else "—"
    return (f"| {name} | {FILE_LABEL[f]} | {rng} | {cpu} | {fmt_ms(s['p50'])} | {fmt_ms(s['p99'])} | "
            f"{fmt_bytes(s['transfer'])} | {wrk.err_text(s)} | {paired_cell} | {ratio_cell} |")


def label(model, build, compare):
    """A row's name: the model, with the build's name when builds are compared."""
    return f"{model} [{build.name}]" if compare else model


def run_rounds(a, tool_paths, pins, root, tmp, expected, builds_run, nginx_runs, ih_runs, problems):
    """Every round: per model, nginx then each build. Fills nginx_runs ({model: {file:
    [nginx runs paired with it]}}) and ih_runs ({(model, build name): {file: [runs]}}) as it
    goes, so an interrupted run keeps what it measured; runs are tagged with their round."""
    compare = bool(a.binary)
    for rnd in range(1, a.rounds + 1):
        for m in a.models:
            order = builds.build_order(builds_run, rnd)
            procs.log(f"round {rnd}/{a.rounds}: nginx, then ironhorse {m}"
                      + (f" ({', '.join(b.name for b in order)})" if compare else ""))
            res = measure("nginx", lambda: start_nginx(tool_paths["nginx"], root, tmp, pins[0]),
                          a, tool_paths, expected, pins, problems)
            for f in FILES:
                if f in res:
                    res[f]["round"] = rnd
                    nginx_runs[m][f].append(res[f])
            for b in order:
                name = label(m, b, compare)
                res = measure(name, lambda: start_ironhorse(m, root, tmp, pin=pins[0], binary=b),
                              a, tool_paths, expected, pins, problems)
                for f in FILES:
                    if f in res:
                        res[f]["round"] = rnd
                        ih_runs[(m, b.name)][f].append(res[f])
                        r = res[f]
                        procs.log(f"  {name} {f}: {fmt_rps(r['rps'])} req/s"
                                  f" (nginx {fmt_rps(nginx_runs[m][f][-1]['rps']) if nginx_runs[m][f] else '—'})"
                                  f" errors {r['errors'] or 0}")


def main():
    a = parse_args()
    procs.install_signal_handlers()
    tools_used = {"wrk": tools.find_tool("wrk", ["wrk"]),
                  "nginx": tools.find_tool("nginx", ["nginx-light", "nginx"])}
    if not a.no_build and not a.binary:
        tools.build_ironhorse()
    pin_ok, pins = tools.cpu_pins()

    tmp = procs.new_tmpdir("ironhorse-bench-")
    root, expected = make_docroot(tmp)
    builds_run = binaries.snapshot_all(tmp, a.binary)
    nginx_runs = {m: {f: [] for f in FILES} for m in a.models}  # nginx runs paired with m
    ih_runs = {(m, b.name): {f: [] for f in FILES} for m in a.models for b in builds_run}
    problems = []
    started = time.monotonic()
    load_start = os.getloadavg()[0]
    with procs.guarded(problems, tmp):
        run_rounds(a, tools_used, pins, root, tmp, expected, builds_run, nginx_runs, ih_runs,
                   problems)

    lines = report_lines(a, tools_used, pin_ok, builds_run, nginx_runs, ih_runs,
                         time.monotonic() - started, load_start)
    report.finish_report(lines, problems, ("No problems seen: every response checked before and after each run was "
                         "correct, no server crashed, every server stopped on SIGTERM."), a.out)
    return 0


def report_lines(a, tools_used, pin_ok, builds_run, nginx_runs, ih_runs, elapsed, load_start):
    """The report (without its ending): header, method, the table against nginx and, when
    builds are compared, the table build against build."""
    compare = bool(a.binary)
    lines = report.header_lines("Static files: ironhorse models vs nginx", tools_used)
    lines += [
        f"- load: `wrk -t1 -c{a.connections} -d{a.duration}s --latency` after a 1 s warm-up, "
        f"{a.rounds} round(s), keep-alive; "
        + ("server pinned to CPU 0 and wrk to CPU 1 with taskset" if pin_ok else "no CPU pinning")
        + f"; took {elapsed / 60:.1f} min",
        "- every model runs as one process / one worker (prefork and hybrid `-w 1`, async "
        "`--threads 1`, threadpool/hybrid with their default 16 threads); nginx: "
        "`worker_processes 1`, sendfile, tcp_nopush, access_log off",
        "- req/s: median [min–max] over the rounds; p50/p99: median over rounds of wrk's "
        "latency distribution; ratio: ironhorse median / median of the nginx runs paired with it "
        "(nginx runs right before each model in every round)",
        "- serial models (`single`, `prefork -w 1`) serve one connection at a time: with "
        f"{a.connections} keep-alive connections one connection gets all the service and the "
        "other connections' requests wait unanswered until it closes (checked by hand: a second "
        "connection gets nothing while the first is open). wrk 4.1 does not count those as "
        "timeouts here, so it shows as low req/s with a tiny p50, not as errors; it is the model's "
        "expected behaviour, not a fault",
        f"- load average (1 min) when the run started: {load_start:.2f}, when it ended: "
        f"{os.getloadavg()[0]:.2f}"
        + (" — other work was running on this machine; expect noise, and trust the paired ratios "
           "more than the absolute numbers" if max(load_start, os.getloadavg()[0]) > 0.5 else ""),
    ]
    if compare:
        lines += builds.method_lines([b.name for b in builds_run], a.rounds)
    lines += [
        "",
        "| model | file | req/s median [min–max] | CPU µs per request (median) | p50 | p99 "
        "| transfer/s | wrk errors (sum) | nginx req/s (paired) | ratio to nginx | per-round ratios |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in FILES:
        all_nginx = [r for m in a.models for r in nginx_runs[m][f]]
        if all_nginx:
            lines.append(row("nginx (all runs)", f, wrk.summarize(all_nginx), "1.00", "—") + " — |")
        for m in a.models:
            for b in builds_run:
                runs = ih_runs[(m, b.name)][f]
                s = wrk.summarize(runs)
                n = wrk.summarize(nginx_runs[m][f])
                ratio = (f"{s['rps'] / n['rps']:.2f}" if s["rps"] is not None and n["rps"] else "—")
                per_round = [f"{x:.2f}" for x in builds.per_round_ratios(runs, nginx_runs[m][f])]
                lines.append(row(label(m, b, compare), f, s, ratio, fmt_rps(n["rps"]))
                             + f" {', '.join(per_round) or '—'} |")
    if compare:
        names = [b.name for b in builds_run]
        lines += ["", "### Build against build", ""]
        lines += builds.table(["model", "file"], [
            ((m, FILE_LABEL[f]), {b.name: ih_runs[(m, b.name)][f] for b in builds_run})
            for f in FILES for m in a.models], names)
    return lines


if __name__ == "__main__":
    sys.exit(main())
