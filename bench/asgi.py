#!/usr/bin/env python3
"""ASGI hello world, one process each: ironhorse (event, async; uvloop) against uvicorn
(uvloop + httptools), Granian (--interface asgi), Hypercorn (uvloop) and gunicorn 27's
`-k asgi` worker (uvloop, the gunicorn_h1c parser), same run.

    python3 bench/asgi.py                  # 5 s runs, 2 rounds, wrk -t1 -c50
    python3 bench/asgi.py --quick          # 1 s runs, 1 round (smoke test)
    python3 bench/asgi.py --rounds 4 --duration 10 --out /tmp/asgi.md
    python3 bench/asgi.py --binary before=/tmp/ih-before --binary after=/tmp/ih-after \
        --peers uvicorn,granian --event-only     # two builds side by side, two peers

Servers pinned to CPU 0 and wrk to CPU 1 (taskset); each round runs every server once, the
order reversed every other round. Each start is checked (status, body) before it is measured.
Reported per server: median [min–max over rounds] req/s, p99, and the server's CPU µs per
request (its process tree's utime+stime over the run / requests wrk completed: the steadier
figure on a shared host); then, for each ironhorse model against each peer, the same-round
ratios (req/s, and the peer's CPU per request over ironhorse's) as median [min–max] over the
rounds, and the load average before and after. Peers come from PyPI into bench/.venv-asgi
on first use.
"""

import argparse
import http.client
import os
import subprocess
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import APPS, binaries, procs, tools, wrk  # noqa: E402
from harness.proc_stats import CpuMeter  # noqa: E402

VENV = os.path.join(HERE, ".venv-asgi")
PEERS = ["uvicorn", "httptools", "uvloop", "granian", "hypercorn", "gunicorn", "gunicorn-h1c"]
# gunicorn's own `[fast]` extra asks for a gunicorn_h1c newer than PyPI had here (0.6.14 vs
# 0.6.10); the parser is installed by name and `--http-parser fast` fails if it is unusable.
PINS = {"gunicorn": "gunicorn>=27"}
APP = "asgi_hello:app"


def venv_bin(name):
    return os.path.join(VENV, "bin", name)


def install_peers(extra=()):
    if not os.path.exists(venv_bin("python")):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        with open(os.path.join(VENV, ".gitignore"), "w") as f:
            f.write("*\n")
    subprocess.run([venv_bin("pip"), "install", "--quiet", "--disable-pip-version-check",
                    *(PINS.get(p, p) for p in PEERS), *extra], check=True)
    out = subprocess.run([venv_bin("pip"), "list", "--format=freeze"], stdout=subprocess.PIPE,
                         text=True).stdout
    return {line.split("==")[0].lower().replace("_", "-"): line.split("==")[1]
            for line in out.split()
            if "==" in line}


def ironhorse_servers(builds, event_only):
    """(label, argv) of each ironhorse build (a Binary copy) and model."""
    def ih(path, model):
        return lambda port: [path, APP, "--chdir", APPS, "-b", f"127.0.0.1:{port}", "--model",
                             model, "--virtualenv", VENV, "--loop", "uvloop", "--log-level",
                             "warning"]
    named = len(builds) > 1 or builds[0].name != binaries.DEFAULT_NAME
    specs = []
    for b in builds:
        tag = f" {b.name}" if named else ""
        specs.append((f"ironhorse event{tag} (uvloop)", ih(b.path, "event")))
        if not event_only:
            specs.append((f"ironhorse async --runtime-threads 1{tag} (uvloop)",
                           ih(b.path, "async")))
    return specs


def servers(builds, event_only=False, peers=None):
    """Every server measured: the ironhorse builds, then the peers named in `peers` (a set of
    first words of their labels; None: all)."""
    return ironhorse_servers(builds, event_only) + [
        (label, argv) for label, argv in peer_servers()
        if peers is None or label.split()[0] in peers]


def peer_servers():
    return [
        ("uvicorn --loop uvloop --http httptools", lambda port: [
            venv_bin("uvicorn"), APP, "--app-dir", APPS, "--port", str(port), "--loop", "uvloop",
            "--http", "httptools", "--no-access-log", "--log-level", "warning"]),
        ("granian --interface asgi --workers 1", lambda port: [
            venv_bin("granian"), "--interface", "asgi", "--workers", "1", "--port", str(port),
            "--working-dir", APPS, "--no-access-log", "--log-level", "warning", APP]),
        ("hypercorn -k uvloop", lambda port: [
            venv_bin("hypercorn"), "-k", "uvloop", "-b", f"127.0.0.1:{port}", "--root-path", "",
            "-w", "1", APP]),
        ("gunicorn -k asgi --asgi-loop uvloop --http-parser fast", lambda port: [
            venv_bin("gunicorn"), "-k", "asgi", "-w", "1", "--asgi-loop", "uvloop",
            "--http-parser", "fast", "--chdir", APPS, "-b", f"127.0.0.1:{port}",
            "--log-level", "warning", APP]),
    ]


def answers(port):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/")
        r = conn.getresponse()
        return r.status == 200 and r.read() == b"Hello, world!"
    except OSError:
        return False


def one_run(label, argv, wrk_bin, pins, duration, tmp):
    port = procs.free_port()
    env = procs.server_env()
    env["PYTHONPATH"] = APPS
    p = procs.spawn(procs.pinned(argv(port), pins[0]), os.path.join(tmp, "server.log"), env=env)
    try:
        procs.wait_for_port("127.0.0.1", port, p, timeout=30)
        if not answers(port):
            return {"label": label, "error": "wrong answer"}
        meter = CpuMeter(p.pid)
        res = wrk.measure(wrk_bin, f"http://127.0.0.1:{port}/", 50, duration)
        cpu = meter.stop()
        res["cpu_us"] = wrk.cpu_us_per_request(cpu, res)
        res["label"] = label
        if not answers(port):
            res["error"] = "wrong answer after the run"
        return res
    finally:
        procs.stop(p)


def spread(xs, fmt):
    """`median [min–max]` of the values present, or "failed"."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return "failed"
    return f"{fmt.format(wrk.med(xs))} [{fmt.format(min(xs))}–{fmt.format(max(xs))}]"


def report(specs, runs):
    """The per-server table, then the same-round ratios of each ironhorse model to each peer."""
    ok = {label: [x if not x.get("error") else {} for x in runs[label]] for label, _ in specs}
    lines = ["| server | req/s median [min–max] | p99 ms (median) | server CPU µs/request "
             "median [min–max] |", "|---|---|---|---|"]
    for label, _ in specs:
        p99 = wrk.med([x.get("p99") for x in ok[label]])
        lines.append(f"| {label} | {spread([x.get('rps') for x in ok[label]], '{:,.0f}')} | "
                     f"{'failed' if p99 is None else f'{p99:.2f}'} | "
                     f"{spread([x.get('cpu_us') for x in ok[label]], '{:.1f}')} |")
    lines += ["", "| ironhorse / peer, same round | req/s ratio median [min–max] | "
              "peer CPU/request ÷ ironhorse's median [min–max] |", "|---|---|---|"]
    ratio = lambda a, b: a / b if a and b else None  # noqa: E731
    for ih, _ in specs:
        if not ih.startswith("ironhorse"):
            continue
        for peer, _ in specs:
            if peer.startswith("ironhorse"):
                continue
            pairs = list(zip(ok[ih], ok[peer]))
            rps = [ratio(a.get("rps"), b.get("rps")) for a, b in pairs]
            cpu = [ratio(b.get("cpu_us"), a.get("cpu_us")) for a, b in pairs]
            lines.append(f"| {ih.split(' (')[0]} / {peer.split(' -')[0]} | "
                         f"{spread(rps, '{:.2f}×')} | {spread(cpu, '{:.2f}×')} |")
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--peers", help="comma-separated peers to run (uvicorn, granian, "
                    "hypercorn, gunicorn); default all")
    ap.add_argument("--event-only", action="store_true", help="ironhorse's event model only")
    binaries.add_option(ap)
    args = ap.parse_args()
    binaries.check_option(ap, args.binary)
    if args.quick:
        args.rounds, args.duration = 1, 1
    procs.install_signal_handlers()
    wrk_bin = tools.find_tool("wrk", ["wrk"])
    versions = install_peers()
    if not args.binary:
        tools.build_ironhorse()
    _, pins = tools.cpu_pins()
    tmp = procs.new_tmpdir("asgi-bench-")
    builds = binaries.snapshot_all(tmp, args.binary)
    peers = set(args.peers.split(",")) if args.peers else None
    specs = servers(builds, args.event_only, peers)
    runs = {label: [] for label, _ in specs}
    load_before = os.getloadavg()
    for r in range(args.rounds):
        order = specs if r % 2 == 0 else list(reversed(specs))
        for label, argv in order:
            res = one_run(label, argv, wrk_bin, pins, args.duration, tmp)
            print(f"round {r + 1}: {label}: {res.get('rps')} req/s, {res.get('cpu_us')} µs CPU/req"
                  f"{'  ERROR ' + res['error'] if res.get('error') else ''}", file=sys.stderr)
            runs[label].append(res)
    lines = report(specs, runs)
    lines.append("")
    lines.append("Versions: " + ", ".join(f"{p} {versions.get(p, '?')}" for p in PEERS))
    lines += binaries.header_lines()
    lines.append(f"Command: python3 bench/asgi.py {' '.join(sys.argv[1:])}"
                 f"; wrk -t1 -c50, server on CPU {pins[0]}, wrk on CPU {pins[1]}; load average "
                 f"(1 min) {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    procs.stop_all()


if __name__ == "__main__":
    main()
