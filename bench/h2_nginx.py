"""`bench/h2.py --vs-nginx`: static files over HTTP/2, ironhorse against nginx, on h2c (prior
knowledge) and on h2 over TLS (ALPN). See bench/h2.py's docstring for the method."""

import os
import statistics
import subprocess
import time

from harness import binaries, procs, report, tools
from harness.proc_stats import CpuMeter
from harness.static_site import FILE_LABEL, FILES, make_docroot, start_ironhorse, start_nginx
from tls import make_certificate

SERVERS = ["nginx", "ironhorse event", "ironhorse async"]
TRANSPORTS = ["h2c", "h2 TLS"]


def start(server, transport, env):
    """(process, "HOST:PORT", log path) of `server` speaking `transport`."""
    tls = transport == "h2 TLS"
    if server == "nginx":
        return start_nginx(env["nginx"], env["root"], env["tmp"], env["pins"][0],
                           tls=env["cert"] if tls else None, http2=True)
    extra = ["--http-protocols", "h1,h2"]
    extra += (["--certfile", env["cert"][0], "--keyfile", env["cert"][1]] if tls
              else ["--http2-cleartext", "prior-knowledge"])
    return start_ironhorse(server.split()[1], env["root"], env["tmp"], extra=extra,
                           pin=env["pins"][0])


def check(base, env):
    """GET each file with curl over HTTP/2 (TLS verified): a list of problems."""
    problems = []
    for name in FILES:
        mode = (["--http2", "--cacert", env["cert"][0]] if base.startswith("https")
                else ["--http2-prior-knowledge"])
        got = subprocess.run(["curl", "-sS", "--max-time", "30", *mode, "-w",
                              "\n%{http_version} %{http_code}", f"{base}/{name}"],
                             capture_output=True)
        body, _, status = got.stdout.rpartition(b"\n")
        if status != b"2 200" or body != env["expected"][name]:
            problems.append(f"GET {base}/{name}: {status.decode(errors='replace')} "
                            f"{got.stderr.decode(errors='replace').strip()}"
                            f"{'' if body == env['expected'][name] else ' (body differs)'}")
    return problems


def measure(server, transport, env, a, tool):
    """Start, check, measure each file, stop: {file: run}; problems go to env."""
    out, proc = {}, None
    try:
        proc, addr, _ = start(server, transport, env)
        base = f"{'https' if transport == 'h2 TLS' else 'http'}://{addr}"
        env["problems"] += [f"{server} {transport}: {p}" for p in check(base, env)]
        for name in FILES:
            env["h2load"](tool, env["pins"][1], f"{base}/{name}", 1)
            meter = CpuMeter(proc.pid)
            run = env["h2load"](tool, env["pins"][1], f"{base}/{name}", a.duration)
            cpu = meter.stop()
            if "error" in run:
                env["problems"].append(f"{server} {transport} {name}: h2load: {run['error']}")
                continue
            if run["failed"]:
                env["problems"].append(f"{server} {transport} {name}: {run['failed']} failed")
            run["cpu_us"] = cpu * 1e6 / run["ok"] if run["ok"] else None
            out[name] = run
    except procs.Interrupted:
        raise
    except Exception as e:  # noqa: BLE001 - record and go on with the next server
        env["problems"].append(f"{server} {transport}: {type(e).__name__}: {e}")
    finally:
        if proc is not None:
            procs.stop(proc)
    return out


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, spec):
    return "—" if x is None else format(x, spec)


def table(runs, a):
    """The report's rows: per transport, file and server."""
    lines = ["| transport | file | server | req/s median [min–max] | server CPU µs/req median "
             "| req/s vs nginx (per-round median) | CPU/req vs nginx (per-round median) |",
             "|---|---|---|---|---|---|---|"]
    for transport in TRANSPORTS:
        for name in FILES:
            base = runs.get(("nginx", transport, name), [])
            for server in SERVERS:
                mine = runs.get((server, transport, name), [])
                rps = [r["rps"] for r in mine if r]
                rng = (f"{med(rps):,.0f} [{min(rps):,.0f}–{max(rps):,.0f}]" if rps else "—")
                cpu = med([r["cpu_us"] for r in mine if r])
                if server == "nginx":
                    rel_rps = rel_cpu = "1"
                else:
                    pairs = [(m, n) for m, n in zip(mine, base) if m and n]
                    rel_rps = fmt(med([m["rps"] / n["rps"] for m, n in pairs]), ".2f")
                    rel_cpu = fmt(med([m["cpu_us"] / n["cpu_us"] for m, n in pairs
                                       if m["cpu_us"] and n["cpu_us"]]), ".2f")
                lines.append(f"| {transport} | {FILE_LABEL[name]} | {server} | {rng} | "
                             f"{fmt(cpu, ',.1f')} | {rel_rps} | {rel_cpu} |")
    return lines


def run(a, tool, h2load_run):
    """The comparison; `h2load_run(tool, pin, url, seconds)` is bench/h2.py's."""
    procs.install_signal_handlers()
    nginx = tools.find_tool("nginx", ["nginx-light", "nginx"])
    if not a.no_build:
        tools.build_ironhorse()
    pin_ok, pins = tools.cpu_pins()
    tmp = procs.new_tmpdir("ironhorse-bench-h2-nginx-")
    root, expected = make_docroot(tmp)
    env = {"nginx": nginx, "root": root, "tmp": tmp, "pins": pins, "expected": expected,
           "cert": make_certificate(tmp), "problems": [], "h2load": h2load_run}
    binaries.snapshot_all(tmp, None)
    combos = [(s, t) for t in TRANSPORTS for s in SERVERS]
    runs = {}
    started = time.monotonic()
    with procs.guarded(env["problems"], tmp):
        for rnd in range(a.rounds):
            for server, transport in combos if rnd % 2 == 0 else reversed(combos):
                procs.log(f"round {rnd + 1}/{a.rounds}: {server} {transport}")
                got = measure(server, transport, env, a, tool)
                for name in FILES:
                    runs.setdefault((server, transport, name), []).append(got.get(name))
    lines = report.header("HTTP/2 static files: ironhorse vs nginx, h2c and TLS h2",
                          {"nginx": nginx, "h2load": tool})
    lines += [
        f"- load: `h2load -t1 -c8 -m10 -D {a.duration}` (8 connections × 10 streams) after a "
        f"1 s warm-up, {a.rounds} interleaved round(s); "
        + ("server pinned to CPU 0, h2load to CPU 1" if pin_ok else "no CPU pinning")
        + f"; took {(time.monotonic() - started) / 60:.1f} min",
        "- nginx `worker_processes 1`, `listen ... http2` (+ `ssl`), sendfile on, access_log "
        "off; ironhorse `--model event` / `--model async --threads 1`, `--http-protocols h1,h2`"
        " with `--http2-cleartext prior-knowledge` or `--certfile --keyfile`; ECDSA P-256 "
        "certificate, TLS 1.3",
        "- CPU µs/req: the server's process tree's user+system time during the run / 2xx "
        "answers; ratios are ironhorse / nginx within each round, then the median over rounds "
        "(req/s: > 1 is faster; CPU: < 1 is cheaper)",
        "",
    ] + table(runs, a)
    report.finish_report(lines, env["problems"], "No problems seen: both files were fetched "
                         "whole over HTTP/2 from every server before its runs, and every "
                         "h2load request was answered 2xx.", a.out)
    return 0
