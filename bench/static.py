#!/usr/bin/env python3
"""Static-file throughput: every ironhorse model against nginx (1 worker), with wrk.

    python3 bench/static.py                      # 5 s runs, 3 rounds, all models
    python3 bench/static.py --quick              # 1 s, 1 round: smoke test
    python3 bench/static.py --models event,async --rounds 5 --out /tmp/static.md

Each round, for each model: start nginx, measure it, stop it; then start the ironhorse
model, measure it, stop it (A/B pairs, so slow drifts in machine noise hit both sides).
A measurement is: 1 s wrk warm-up, then `wrk -t1 -c50 -d{duration}s --latency` on the
1 KiB file and then on the 1 MiB file. The server is pinned to CPU 0 and wrk to CPU 1
when `taskset` exists and there are at least 2 CPUs. The ratio is the ironhorse median
over the median of the nginx runs paired with it.

Python 3 standard library only; installs wrk / nginx with apt-get when they are missing.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as c  # noqa: E402

FILES = ["small.txt", "big.bin"]
FILE_LABEL = {"small.txt": "1 KiB", "big.bin": "1 MiB"}


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    ap.add_argument("--models", default=",".join(c.MODEL_ARGS),
                    help="comma list of ironhorse models (default: all)")
    ap.add_argument("--connections", type=int, default=50, help="wrk -c (default 50)")
    ap.add_argument("--quick", action="store_true", help="duration 1, rounds 1 (smoke test)")
    ap.add_argument("--out", help="also write the Markdown report to this file")
    ap.add_argument("--no-build", action="store_true", help="skip cargo build")
    a = ap.parse_args()
    if a.quick:
        a.duration, a.rounds = 1, 1
    a.models = [m.strip() for m in a.models.split(",") if m.strip()]
    bad = [m for m in a.models if m not in c.MODEL_ARGS]
    if bad:
        ap.error(f"unknown model(s) {bad}; known: {', '.join(c.MODEL_ARGS)}")
    return a


# --------------------------------------------------------------------------- wrk

_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}
_BYTES = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}


def _ms(s):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", s)
    return float(m.group(1)) * _UNIT[m.group(2)] if m else None


def parse_wrk(text):
    r = {"rps": None, "p50": None, "p99": None, "transfer": None, "requests": None,
         "errors": {}, "non2xx": 0}
    m = re.search(r"Requests/sec:\s*([\d.]+)", text)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"Transfer/sec:\s*([\d.]+)([KMGT]?B)", text)
    if m:
        r["transfer"] = float(m.group(1)) * _BYTES[m.group(2)]
    m = re.search(r"(\d+) requests in", text)
    if m:
        r["requests"] = int(m.group(1))
    dist = re.search(r"Latency Distribution(.*?)(?:\n\s*\d+ requests in)", text, re.S)
    if dist:
        for pct, val in re.findall(r"(\d+)%\s+([\d.]+\w+)", dist.group(1)):
            if pct == "50":
                r["p50"] = _ms(val)
            elif pct == "99":
                r["p99"] = _ms(val)
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        r["errors"] = {k: int(v) for k, v in zip(("connect", "read", "write", "timeout"),
                                                 m.groups()) if int(v)}
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        r["non2xx"] = int(m.group(1))
    return r


def wrk_cmd(wrk, url, conns, duration, pin, latency=True):
    cmd = [wrk, "-t1", f"-c{conns}", f"-d{duration}s"] + (["--latency"] if latency else []) + [url]
    if pin is not None:
        cmd = ["taskset", "-c", str(pin)] + cmd
    return cmd


def run_wrk(cmd, duration):
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=duration + 60)
    except subprocess.TimeoutExpired:
        return None, "wrk did not finish"
    return p.stdout, None if p.returncode == 0 else f"wrk exit {p.returncode}: {p.stdout[-300:]}"


# --------------------------------------------------------------------------- measuring


def measure(server_name, start, a, tools, expected, pins, problems):
    """Start a server, check it, warm up, run wrk for both files, stop it."""
    proc = None
    out = {}
    try:
        proc, addr, log_path = start()
        for pr in c.check_responses(addr, expected):
            problems.append(f"{server_name}: before the run: {pr}")
        for f in FILES:
            url = f"http://{addr}/{f}"
            run_wrk(wrk_cmd(tools["wrk"], url, a.connections, 1, pins[1], latency=False), 1)
            text, err = run_wrk(wrk_cmd(tools["wrk"], url, a.connections, a.duration, pins[1]),
                                a.duration)
            if err:
                problems.append(f"{server_name} {f}: {err}")
            res = parse_wrk(text or "")
            if res["rps"] is None:
                problems.append(f"{server_name} {f}: could not parse wrk output: {(text or '')[-300:]}")
            out[f] = res
            if proc.poll() is not None:
                problems.append(f"{server_name}: server exited with {proc.returncode} during {f}")
                break
        if proc.poll() is None:
            for pr in c.check_responses(addr, expected):
                problems.append(f"{server_name}: after the run: {pr}")
    except c.Interrupted:
        raise
    except Exception as e:  # noqa: BLE001 - record and go on with the next server
        problems.append(f"{server_name}: {type(e).__name__}: {e}")
    finally:
        if proc is not None:
            t0 = time.monotonic()
            code = c.stop(proc)
            took = time.monotonic() - t0
            if took > 4.5:
                problems.append(f"{server_name}: took {took:.1f} s to stop after SIGTERM")
            if code not in (0, None) and server_name != "nginx":
                problems.append(f"{server_name}: exit code {code} after SIGTERM")
            with open(log_path, errors="replace") as fh:
                lines = [ln.rstrip() for ln in fh if ln.strip()]
            noise = re.compile(r"listening on|signal|stop|shutting down|exit", re.I)
            odd = [ln for ln in lines if not noise.search(ln)]
            if odd and server_name != "nginx":
                problems.append(f"{server_name}: server log: " + " | ".join(odd[-5:]))
            open(log_path, "w").close()  # each run's log starts empty
    return out


def fmt_rps(x):
    return f"{x:,.0f}" if x is not None else "—"


def fmt_ms(x):
    if x is None:
        return "—"
    return f"{x * 1000:.0f} µs" if x < 1 else f"{x:.2f} ms" if x < 100 else f"{x:.0f} ms"


def fmt_bytes(x):
    if x is None:
        return "—"
    for unit, div in (("GiB", 1024 ** 3), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if x >= div:
            return f"{x / div:.1f} {unit}/s"
    return f"{x:.0f} B/s"


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize(runs):
    rps = [r["rps"] for r in runs if r.get("rps") is not None]
    errs = {}
    non2xx = 0
    for r in runs:
        for k, v in r.get("errors", {}).items():
            errs[k] = errs.get(k, 0) + v
        non2xx += r.get("non2xx", 0)
    return {
        "rps": med(rps), "min": min(rps) if rps else None, "max": max(rps) if rps else None,
        "p50": med([r.get("p50") for r in runs]), "p99": med([r.get("p99") for r in runs]),
        "transfer": med([r.get("transfer") for r in runs]), "errs": errs, "non2xx": non2xx,
        "n": len(rps),
    }


def err_text(s):
    parts = [f"{k} {v:,}" for k, v in s["errs"].items()]
    if s["non2xx"]:
        parts.append(f"non-2xx {s['non2xx']:,}")
    return ", ".join(parts) or "0"


def row(name, f, s, ratio_cell, paired_cell):
    rng = (f"{fmt_rps(s['rps'])} [{fmt_rps(s['min'])}–{fmt_rps(s['max'])}]"
           if s["rps"] is not None else "—")
    return (f"| {name} | {FILE_LABEL[f]} | {rng} | {fmt_ms(s['p50'])} | {fmt_ms(s['p99'])} | "
            f"{fmt_bytes(s['transfer'])} | {err_text(s)} | {paired_cell} | {ratio_cell} |")


def main():
    a = parse_args()
    c.install_signal_handlers()
    tools = {"wrk": c.find_tool("wrk", ["wrk"]),
             "nginx": c.find_tool("nginx", ["nginx-light", "nginx"])}
    if not a.no_build:
        c.build_ironhorse()
    pin_ok = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    pins = (0, 1) if pin_ok else (None, None)

    tmp = c.new_tmpdir("ironhorse-bench-")
    root, expected = c.make_docroot(tmp)
    c.snapshot_binary(tmp)
    nginx_runs = {m: {f: [] for f in FILES} for m in a.models}  # nginx runs paired with m
    ih_runs = {m: {f: [] for f in FILES} for m in a.models}
    problems = []
    started = time.monotonic()
    load_start = os.getloadavg()[0]
    try:
        for rnd in range(1, a.rounds + 1):
            for m in a.models:
                c.log(f"round {rnd}/{a.rounds}: nginx, then ironhorse {m}")
                res = measure("nginx", lambda: c.start_nginx(tools["nginx"], root, tmp, pins[0]),
                              a, tools, expected, pins, problems)
                for f in FILES:
                    if f in res:
                        res[f]["round"] = rnd
                        nginx_runs[m][f].append(res[f])
                res = measure(m, lambda: c.start_ironhorse(m, root, tmp, pin=pins[0]),
                              a, tools, expected, pins, problems)
                for f in FILES:
                    if f in res:
                        res[f]["round"] = rnd
                        ih_runs[m][f].append(res[f])
                        r = res[f]
                        c.log(f"  {m} {f}: {fmt_rps(r['rps'])} req/s"
                              f" (nginx {fmt_rps(nginx_runs[m][f][-1]['rps']) if nginx_runs[m][f] else '—'})"
                              f" errors {r['errors'] or 0}")
    except (KeyboardInterrupt, c.Interrupted) as e:
        problems.append(f"interrupted ({type(e).__name__} {e}); partial results")
    finally:
        c.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)

    elapsed = time.monotonic() - started
    lines = c.header_lines("Static files: ironhorse models vs nginx", tools)
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
        "",
        "| model | file | req/s median [min–max] | p50 | p99 | transfer/s | wrk errors (sum) "
        "| nginx req/s (paired) | ratio to nginx | per-round ratios |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in FILES:
        all_nginx = [r for m in a.models for r in nginx_runs[m][f]]
        if all_nginx:
            lines.append(row("nginx (all runs)", f, summarize(all_nginx), "1.00", "—") + " — |")
        for m in a.models:
            s = summarize(ih_runs[m][f])
            n = summarize(nginx_runs[m][f])
            ratio = (f"{s['rps'] / n['rps']:.2f}" if s["rps"] is not None and n["rps"] else "—")
            ng = {j["round"]: j["rps"] for j in nginx_runs[m][f]}
            per_round = [f"{i['rps'] / ng[i['round']]:.2f}" for i in ih_runs[m][f]
                         if i["rps"] and ng.get(i["round"])]
            lines.append(row(m, f, s, ratio, fmt_rps(n["rps"])) + f" {', '.join(per_round) or '—'} |")
    c.finish_report(lines, problems, ("No problems seen: every response checked before and after each run was "
                     "correct, no server crashed, every server stopped on SIGTERM."), a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
