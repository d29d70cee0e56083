#!/usr/bin/env python3
"""CPU time per request of ironhorse commands side by side (A/B rounds), hello world.

    python3 bench/cpu_ab.py --server binary=target/release/ironhorse \\
        --server wheel=target/wheel-venvs/py3.11/bin/ironhorse -- --model event --threads 1

Each round starts every command once (order reversed every other round) serving
`bench/apps/hello.py`, pinned to CPU 0; `wrk -t1 -c50` (pinned to CPU 1) warms it up for 1 s,
then runs for --duration seconds. The figure: the server's utime + stime over the run (all
threads, /proc/PID/task/*/stat) divided by the requests wrk completed — steadier on a shared
machine than req/s, which is printed beside it. The processes run in one process each
(no workers), so one /proc entry holds all their time.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys

APPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps")


def cpu_ticks(pid):
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


def one_run(command, model_args, duration):
    server = subprocess.Popen(
        ["taskset", "-c", "0", command, "hello:application", "--chdir", APPS,
         "-b", "127.0.0.1:0", *model_args],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for line in server.stderr:
            m = re.search(r"listening on http://(\S+)", line)
            if m:
                url = f"http://{m.group(1)}/"
                break
        else:
            sys.exit(f"{command} did not start")
        wrk = ["taskset", "-c", "1", "wrk", "-t1", "-c50"]
        subprocess.run(wrk + ["-d1s", url], capture_output=True, check=True)
        before = cpu_ticks(server.pid)
        out = subprocess.run(wrk + [f"-d{duration}s", url], capture_output=True, text=True,
                             check=True).stdout
        used = (cpu_ticks(server.pid) - before) / os.sysconf("SC_CLK_TCK")
        requests = int(re.search(r"(\d+) requests in", out).group(1))
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        return rps, used / requests * 1e6
    finally:
        server.terminate()
        server.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", action="append", required=True, metavar="NAME=COMMAND")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("model_args", nargs="*", help="after --: the model flags")
    a = ap.parse_args()
    servers = dict(s.split("=", 1) for s in a.server)
    results = {name: [] for name in servers}
    for rnd in range(a.rounds):
        order = list(servers) if rnd % 2 == 0 else list(servers)[::-1]
        for name in order:
            rps, us = one_run(servers[name], a.model_args, a.duration)
            results[name].append((rps, us))
            print(f"round {rnd + 1} {name}: {rps:,.0f} req/s, {us:.2f} µs CPU/request", flush=True)
    print(f"\n{' '.join(a.model_args)}, {a.rounds} rounds of {a.duration} s:")
    for name, runs in results.items():
        print(f"- {name}: {statistics.median(r[1] for r in runs):.2f} µs CPU/request "
              f"[{min(r[1] for r in runs):.2f}–{max(r[1] for r in runs):.2f}], "
              f"{statistics.median(r[0] for r in runs):,.0f} req/s median")


if __name__ == "__main__":
    main()
