#!/usr/bin/env python3
"""-k gevent: ironhorse against gunicorn's gevent worker on the same I/O-bound app, same run.

    python3 bench/gevent.py                 # 8, 64, 512, 2000 connections; 5 s runs, 2 rounds
    python3 bench/gevent.py --quick         # 2 s runs, 1 round
    python3 bench/gevent.py --conns 512 --rounds 4 --out /tmp/gevent.md
    python3 bench/gevent.py --app hello --conns 50 --rounds 4 --no-peer \
        --binary before=/tmp/ih-before --binary after=/tmp/ih-after   # two builds, A/B

The app (bench/apps/gevent_io.py) answers each request after a GET to a loopback service
(bench/apps/upstream_wait.py: asyncio, 50 ms per request, keep-alive) through urllib3: the
request mostly waits. One worker process each: `ironhorse -k gevent --worker-connections
4096` and `gunicorn -k gevent -w 1 --worker-connections 4096`, both from bench/.venv-gevent
(gunicorn, gevent, urllib3 from PyPI, made on first use). The servers run on CPU 0, wrk and
the service on CPU 1; each round runs both servers at each connection count, the order
swapped every other round. Reported: req/s (median over rounds), the server's CPU µs per
request (utime+stime of its process tree over the run / requests), its peak RSS, and the
ratio of the two servers' req/s per round. `--app hello` measures the per-request cost of
the hub crossing instead (bench/apps/hello.py: no waiting); `--binary NAME=PATH`
(repeatable) runs several ironhorse builds interleaved, the first the baseline of the
ratios; `--no-peer` leaves gunicorn out.
"""

import argparse
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import APPS, binaries, procs, report, tools, wrk  # noqa: E402
from harness.fmt import fmt_rps  # noqa: E402
from harness.proc_stats import CpuMeter, TreeSampler  # noqa: E402

VENV = os.path.join(HERE, ".venv-gevent")
# gunicorn's gevent worker imports packaging without declaring it.
PACKAGES = ["gunicorn==27.0.1", "gevent==25.9.1", "urllib3==2.8.0", "packaging==25.0"]
CONNS = (8, 64, 512, 2000)
log = procs.make_logger("gevent")


def venv():
    """bench/.venv-gevent with gunicorn, gevent and urllib3 (made once)."""
    stamp = os.path.join(VENV, ".installed-" + "-".join(PACKAGES).replace("=", ""))
    if not os.path.exists(stamp):
        log("making bench/.venv-gevent")
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([os.path.join(VENV, "bin", "python"), "-m", "pip", "install", "-q",
                        *PACKAGES], check=True)
        with open(os.path.join(VENV, ".gitignore"), "w") as f:
            f.write("*\n")
        open(stamp, "w").close()
    return VENV


APPS_BY_NAME = {"io": "gevent_io:application", "hello": "hello:application"}
GUNICORN = "gunicorn -k gevent"


def servers(builds, port, app, peer=True):
    """{name: argv} of every server measured, the ironhorse builds first."""
    named = len(builds) > 1 or builds[0].name != binaries.DEFAULT_NAME
    spec = APPS_BY_NAME[app]
    out = {}
    for b in builds:
        name = f"ironhorse -k gevent {b.name}" if named else "ironhorse -k gevent"
        out[name] = [b.path, spec, "-k", "gevent", "--worker-connections", "4096",
                     "--chdir", APPS, "--virtualenv", VENV, "-b", f"127.0.0.1:{port}",
                     "--backlog", "4096"]
    if peer:
        out[GUNICORN] = [os.path.join(VENV, "bin", "gunicorn"), "-k", "gevent", "-w", "1",
                         "--worker-connections", "4096", "--backlog", "4096", "--chdir", APPS,
                         "-b", f"127.0.0.1:{port}", "--log-level", "warning", spec]
    return out


def spread(values, fmt):
    """'median [min–max]' of the values that are there, formatted with `fmt`."""
    values = sorted(v for v in values if v)
    if not values:
        return "-"
    mid = values[len(values) // 2] if len(values) % 2 else \
        (values[len(values) // 2 - 1] + values[len(values) // 2]) / 2
    return f"{fmt(mid)} [{fmt(values[0])}–{fmt(values[-1])}]"


def run_one(name, argv, port, conns, duration, upstream, tmp):
    env = procs.server_env({"UPSTREAM": upstream})
    p = procs.spawn(procs.pinned(argv, 0), os.path.join(tmp, f"{name[:9]}.log"), env=env)
    try:
        procs.wait_for_port("127.0.0.1", port, p)
        url = f"http://127.0.0.1:{port}/"
        warm = wrk.measure(WRK, url, min(conns, 64), 1, timeout=10)
        if warm.get("error") or not warm.get("requests"):
            return {"error": warm.get("error") or "no answers while warming up"}
        meter, sampler = CpuMeter(p.pid), TreeSampler(p.pid, pss=False)
        sampler.start()
        res = wrk.measure(WRK, url, conns, duration, timeout=10)
        res["cpu_us"] = wrk.cpu_us_per_request(meter.stop(), res)
        res["rss_mib"] = sampler.finish()["rss"] / 1024
        return res
    finally:
        procs.stop(p)


def main():
    global WRK
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--conns", default=",".join(map(str, CONNS)))
    ap.add_argument("--app", choices=sorted(APPS_BY_NAME), default="io",
                    help="io: each request waits 50 ms on a loopback service (default); "
                         "hello: answers at once (the per-request cost of the hub crossing)")
    ap.add_argument("--no-peer", action="store_true", help="leave gunicorn out")
    binaries.add_option(ap)
    ap.add_argument("--out")
    args = ap.parse_args()
    binaries.check_option(ap, args.binary)
    if args.quick:
        args.rounds, args.duration = 1, 2
    conns = [int(c) for c in args.conns.split(",")]
    WRK = tools.find_tool("wrk", ["wrk"])
    venv()
    procs.install_signal_handlers()
    problems = []
    rows = {}
    tmp = procs.new_tmpdir("ih-gevent-")
    with procs.guarded(problems, tmp):
        builds = binaries.snapshot_all(tmp, args.binary)
        up_port = procs.free_port()
        upstream = procs.spawn(procs.pinned([os.path.join(VENV, "bin", "python"),
                                             os.path.join(APPS, "upstream_wait.py"),
                                             str(up_port)], 1),
                               os.path.join(tmp, "upstream.log"))
        procs.wait_for_port("127.0.0.1", up_port, upstream)
        for rnd in range(args.rounds):
            for c in conns:
                names = list(servers(builds, 0, args.app, not args.no_peer))
                if rnd % 2:
                    names.reverse()
                for name in names:
                    port = procs.free_port()
                    argv = servers(builds, port, args.app, not args.no_peer)[name]
                    log(f"round {rnd + 1}: {name} at {c} connections")
                    res = run_one(name, argv, port, c, args.duration, f"127.0.0.1:{up_port}", tmp)
                    if res.get("error"):
                        problems.append(f"{name} at {c}: {res['error']}")
                    rows.setdefault((name, c), []).append(res)
    what = ("I/O-bound (each request waits 50 ms on a loopback service)" if args.app == "io"
            else "hello world (no waiting: the per-request cost of the hub crossing)")
    lines = report.header(f"-k gevent: {what}", {"wrk": WRK})
    lines += [f"Load average at the end: {os.getloadavg()[0]:.2f}", "",
              "| server | connections | req/s median [min–max] | CPU µs/request median "
              "[min–max] | peak RSS MiB | errors |",
              "|---|---:|---:|---:|---:|---|"]
    for (name, c), runs in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        s = wrk.summarize(runs)
        rss = max((r.get("rss_mib") or 0) for r in runs)
        lines.append(f"| {name} | {c} | {spread([r.get('rps') for r in runs], fmt_rps)} | "
                     f"{spread([r.get('cpu_us') for r in runs], lambda v: f'{v:.1f}')} | "
                     f"{rss:.0f} | {wrk.err_text(s)} |")
    names = list(servers(builds, 0, args.app, not args.no_peer))
    base = names[0]
    lines += ["", f"| connections | server | req/s ÷ {base}'s, per round | "
              f"CPU/request ÷ {base}'s, per round |", "|---:|---|---|---|"]
    for c in conns:
        a = rows.get((base, c), [])
        for other in names[1:]:
            b = rows.get((other, c), [])
            rps = [f"{y['rps'] / x['rps']:.2f}" for x, y in zip(a, b)
                   if x.get("rps") and y.get("rps")]
            cpu = [f"{y['cpu_us'] / x['cpu_us']:.2f}" for x, y in zip(a, b)
                   if x.get("cpu_us") and y.get("cpu_us")]
            lines.append(f"| {c} | {other} | {', '.join(rps) or '-'} | "
                         f"{', '.join(cpu) or '-'} |")
    report.finish_report(lines, problems, "every run answered", args.out)


if __name__ == "__main__":
    main()
