#!/usr/bin/env python3
"""HTTP/2 throughput with h2load: ironhorse against Granian (h2c), or against nginx (h2c and
h2 over TLS, static files).

    python3 bench/h2.py                      # 10 s runs, 3 rounds
    python3 bench/h2.py --quick              # 2 s, 1 round: smoke test
    python3 bench/h2.py --out /tmp/h2.md
    python3 bench/h2.py --vs-nginx           # static 1 KiB / 1 MiB, h2c and TLS h2, vs nginx

Two benchmarks, each server one process pinned to CPU 0 (h2load to CPU 1):
- hello: the WSGI hello world of bench/wsgi.py (`hello:application`, 13 bytes);
- static: a 1 KiB file (ironhorse `--static /s=DIR`; Granian `--static-path-mount`).
`h2load -t1 -c8 -m10 -D SECONDS` (8 connections, 10 streams each). ironhorse runs `event`
and `async` with `--threads 1` (bench/wsgi.py's hello servers), Granian `--interface wsgi
--workers 1 --http 2`. h2load (Debian's nghttp2-client) and the peers venv are installed on
first use. Rounds alternate the server order; the table gives each round's requests/s and the requests that failed or were not answered
2xx.

`--vs-nginx`: a WSGI hello is no comparison for nginx, so static files only: bench/tls.py's
1 KiB and 1 MiB files, served by nginx (`worker_processes 1`, `listen ... http2`, with `ssl`
for TLS: ALPN h2) and ironhorse `event` and `async` (`--http-protocols h1,h2`, with
`--http2-cleartext prior-knowledge` or `--certfile/--keyfile`), one process pinned to CPU 0,
h2load on CPU 1. Each round starts every server in turn (the order reversed every other
round), checks both files with curl over HTTP/2, then per file a 1 s warm-up and
`h2load -t1 -c8 -m10 -D SECONDS`, measuring the server's CPU time (its process tree). The
report gives req/s, CPU µs per request and, per round, ironhorse / nginx ratios (the same
round, minutes apart at most), with their median.
"""

import argparse
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import wsgi  # noqa: E402
from harness import APPS, procs, tools  # noqa: E402

H2C = ["--http-protocols", "h1,h2", "--http2-cleartext", "prior-knowledge"]


def specs(static_dir):
    ih = [
        wsgi._ih(model, f"ironhorse {model} --threads 1",
                 ["--model", model, "--threads", "1", *H2C, "--static", f"/s={static_dir}"])
        for model in ("event", "async")
    ]

    def granian(app, port):
        return [wsgi._vbin("granian"), "--interface", "wsgi", "--workers", "1", "--http", "2",
                "--host", "127.0.0.1", "--port", str(port), "--working-dir", APPS,
                "--no-access-log", "--log-level", "warning",
                "--static-path-route", "/s", "--static-path-mount", static_dir, app]

    return ih + [wsgi._peer("granian", "granian --interface wsgi --http 2", "granian", granian)]


def h2load_run(tool, pin, url, duration):
    """One h2load run: {"rps", "ok" (2xx answers), "failed"}, or {"error": last line}."""
    cmd = procs.pinned([tool, "-t1", "-c8", "-m10", "-D", str(duration), url], pin)
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=duration + 60).stdout
    rps = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out)
    done = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed",
                     out)
    ok = re.search(r"status codes: (\d+) 2xx", out)
    if not rps or not done or not ok:
        return {"error": out.strip().splitlines()[-1:] if out else ["no output"]}
    # Answers other than 2xx (a 404 from a wrong static mount) count as failures.
    failed = int(done.group(2)) + max(0, int(done.group(1)) - int(ok.group(1)))
    return {"rps": float(rps.group(1)), "ok": int(ok.group(1)), "failed": failed}


def h2load(tool, pin, url, duration):
    run = h2load_run(tool, pin, url, duration)
    if "error" in run:
        return None, run["error"]
    return run["rps"], run["failed"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--vs-nginx", action="store_true",
                    help="static files over h2c and TLS h2 against nginx (see above)")
    ap.add_argument("--no-build", action="store_true", help="skip cargo build (--vs-nginx)")
    a = ap.parse_args()
    if a.quick:
        a.duration, a.rounds = 2, 1
    tool = tools.find_tool("h2load", ["nghttp2-client"])
    if a.vs_nginx:
        import h2_nginx
        return h2_nginx.run(a, tool, h2load_run)
    env = wsgi.prepare(build_first=True, peers=True)
    static_dir = os.path.join(env.tmp, "static")
    os.makedirs(static_dir, exist_ok=True)
    with open(os.path.join(static_dir, "1k.txt"), "wb") as f:
        f.write(b"x" * 1024)
    all_specs = [s for s in specs(static_dir)
                 if s["peer"] is None or env.peers.get(s["peer"], (False,))[0]]
    results = {}
    try:
        for rnd in range(a.rounds):
            order = all_specs if rnd % 2 == 0 else list(reversed(all_specs))
            for spec in order:
                proc, addr, log_path = wsgi.start_server(spec, "hello:application", env)
                try:
                    for bench, path in (("hello", "/"), ("static", "/s/1k.txt")):
                        rps, failed = h2load(tool, env.pins[1], f"http://{addr}{path}",
                                             a.duration)
                        results.setdefault((bench, spec["label"]), []).append((rps, failed))
                        print(f"round {rnd + 1} {bench:6} {spec['label']:40} {rps} req/s, "
                              f"failed {failed}", flush=True)
                finally:
                    procs.stop(proc)
    finally:
        wsgi.finish(env)
    lines = [f"h2load -t1 -c8 -m10 -D {a.duration} over h2c (prior knowledge), "
             f"{a.rounds} round(s), {time.strftime('%Y-%m-%d')}, server on CPU {env.pins[0]}, "
             f"h2load on CPU {env.pins[1]}", "",
             "| bench | server | req/s per round | failed |", "|---|---|---|---|"]
    for (bench, label), runs in sorted(results.items()):
        cells = ", ".join(f"{r:,.0f}" if r else "—" for r, _ in runs)
        failed = sum(f for _, f in runs if isinstance(f, int))
        lines.append(f"| {bench} | {label} | {cells} | {failed} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
