#!/usr/bin/env python3
"""ironhorse behind nginx: the uwsgi protocol vs an HTTP upstream, and one vs two vs four
instances in one upstream (hello world, bench/apps/hello.py).

    python3 bench/upstream.py                    # 4 rounds of 5 s per case (about 3 minutes)
    python3 bench/upstream.py --quick            # 1 round of 1 s (smoke test)
    python3 bench/upstream.py --rounds 6 --duration 10 --out /tmp/upstream.md

- protocol: two ironhorse processes with the same flags (`--model hybrid -w 1 --threads 4`:
  one worker, a thread pool), one `--protocol http`, one `--protocol uwsgi`, pinned to CPU 0; one nginx (1
  worker) pinned to CPU 1 with three sites, `proxy_pass` to a keep-alive upstream, `proxy_pass`
  without keep-alive (a connection per request, as uwsgi) and `uwsgi_pass` (nginx opens a
  connection per request: uwsgi has no keep-alive); wrk
  (`-t1 -c32`, CPU 1) on each site in turn, the order swapped every other round. Figures:
  req/s at the client, and ironhorse's CPU time (utime + stime of its process tree) per
  request — the steadier figure on this shared machine.
- instances: N = 1, 2, 4 ironhorse instances (`--model hybrid -w 2 --threads 4` each, not
  pinned: one instance already has a worker per CPU) in
  one nginx upstream (2 workers, keep-alive), wrk `-t1 -c64`; CPU per request summed over
  every instance. On a 2-CPU machine more instances cannot add CPU: the point is the method.

Every response is checked (wrk's non-2xx and socket errors are reported as problems);
only 127.0.0.1; every process started is stopped at the end, also on errors and Ctrl-C.
"""

import argparse
import os
import sys
import time
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import APPS, binaries, fmt, procs, report, tools, wrk  # noqa: E402
from harness.proc_stats import CpuMeter  # noqa: E402

log = procs.make_logger("upstream")

# A thread pool per worker: a serial worker (prefork) holds one of nginx's keep-alive
# upstream connections at a time, and requests nginx sends on the others wait behind it.
PROTOCOL_MODEL = ["--model", "hybrid", "-w", "1", "--threads", "4"]
INSTANCE_MODEL = ["--model", "hybrid", "-w", "2", "--threads", "4"]

NGINX_HEAD = """worker_processes {workers};
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
"""


def start_ironhorse(label, args, tmp, pin=None):
    safe = label.replace(" ", "-")
    argv = ["hello:application", "--chdir", APPS, "-b", "127.0.0.1:0"] + args
    p, addr = binaries.launch(binaries.current(), argv, os.path.join(tmp, f"{safe}.log"),
                              pin=pin, env=procs.server_env())
    return p, addr


def start_nginx(nginx, tmp, body, workers, pin=None, name="nginx"):
    conf = os.path.join(tmp, f"{name}.conf")
    with open(conf, "w") as f:
        f.write(NGINX_HEAD.format(tmp=tmp, workers=workers) + body + "}\n")
    p = procs.spawn(procs.pinned([nginx, "-p", tmp, "-c", conf], pin),
                    os.path.join(tmp, f"{name}.log"))
    return p


def site(port, location):
    return f"  server {{ listen 127.0.0.1:{port}; location / {{ {location} }} }}\n"


def proxy(upstream):
    return (f"proxy_pass http://{upstream}; proxy_http_version 1.1; "
            "proxy_set_header Connection \"\";")


def check(url, problems, label):
    """One GET: the hello body, or a problem noted (False)."""
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            if r.status == 200 and r.read() == b"Hello, world!":
                return True
            problems.append(f"{label}: unexpected answer {r.status}")
    except Exception as e:  # noqa: BLE001 - any failure is a finding
        problems.append(f"{label}: {type(e).__name__}: {e}")
    return False


def wait_ready(url, problems, label, p):
    for _ in range(300):
        if p.poll() is not None:
            problems.append(f"{label}: nginx exited")
            return False
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return True
        except Exception:  # noqa: BLE001
            pass
        time.sleep(0.1)
    return check(url, problems, label)


def measure(wrk_path, url, conns, duration, pids, pin, problems, label):
    """A 1 s warm-up, then one wrk run; the parsed result with cpu_us (all of `pids`)."""
    wrk.run(wrk.command(wrk_path, url, conns, 1, pin=pin, latency=False), 1)
    meters = [CpuMeter(pid) for pid in pids]
    text, err = wrk.run(wrk.command(wrk_path, url, conns, duration, pin=pin), duration)
    cpu = sum(m.stop() for m in meters)
    res = wrk.parse(text or "")
    if err:
        problems.append(f"{label}: {err}")
    if res["errors"] or res["non2xx"]:
        problems.append(f"{label}: wrk saw {res['errors']} errors, {res['non2xx']} non-2xx")
    res["cpu_us"] = wrk.cpu_us_per_request(cpu, res)
    log(f"{label}: {fmt.fmt_rps(res['rps'])} req/s, "
        f"{fmt.fnum(res['cpu_us'], 1)} µs CPU/request")
    return res


def protocol_runs(a, nginx_path, wrk_path, tmp, problems):
    pins_ok, (server_cpu, load_cpu) = tools.cpu_pins()
    servers = {}
    for name in ("http", "uwsgi"):
        servers[name] = start_ironhorse(name, PROTOCOL_MODEL + ["--protocol", name], tmp,
                                        pin=server_cpu)
    ports = {"http": procs.free_port(), "http-close": procs.free_port(),
             "uwsgi": procs.free_port()}
    body = (f"  upstream http_up {{ server {servers['http'][1]}; keepalive 32; }}\n"
            + site(ports["http"], proxy("http_up"))
            + site(ports["http-close"], f"proxy_pass http://{servers['http'][1]};")
            + site(ports["uwsgi"], f"include /etc/nginx/uwsgi_params; "
                                   f"uwsgi_pass {servers['uwsgi'][1]};"))
    ngx = start_nginx(nginx_path, tmp, body, 1, pin=load_cpu, name="nginx-protocol")
    urls = {k: f"http://127.0.0.1:{p}/" for k, p in ports.items()}
    for k, url in urls.items():
        wait_ready(url, problems, f"nginx → {k}", ngx)
    runs = {k: [] for k in urls}
    server_of = {"http": "http", "http-close": "http", "uwsgi": "uwsgi"}
    for rnd in range(a.rounds):
        order = list(urls) if rnd % 2 == 0 else list(urls)[::-1]
        for k in order:
            runs[k].append(measure(wrk_path, urls[k], 32, a.duration,
                                   [servers[server_of[k]][0].pid], load_cpu, problems,
                                   f"round {rnd + 1} {k}"))
    for k, url in urls.items():
        check(url, problems, f"nginx → {k} after the runs")
    procs.stop(ngx)
    for p, _ in servers.values():
        procs.stop(p)
    return {k: wrk.summarize(v) for k, v in runs.items()}, pins_ok


def instance_runs(a, nginx_path, wrk_path, tmp, problems):
    counts = [1, 2, 4]
    runs = {n: [] for n in counts}
    for rnd in range(a.rounds):
        order = counts if rnd % 2 == 0 else counts[::-1]
        for n in order:
            servers = [start_ironhorse(f"r{rnd}-n{n}-{i}", INSTANCE_MODEL, tmp)
                       for i in range(n)]
            port = procs.free_port()
            upstream = " ".join(f"server {addr};" for _, addr in servers)
            body = (f"  upstream app {{ {upstream} keepalive 64; }}\n"
                    + site(port, proxy("app")))
            ngx = start_nginx(nginx_path, tmp, body, 2, name=f"nginx-{rnd}-{n}")
            url = f"http://127.0.0.1:{port}/"
            if wait_ready(url, problems, f"nginx → {n} instances", ngx):
                runs[n].append(measure(wrk_path, url, 64, a.duration,
                                       [p.pid for p, _ in servers], None, problems,
                                       f"round {rnd + 1}, {n} instance(s)"))
            procs.stop(ngx)
            for p, _ in servers:
                procs.stop(p)
    return {n: wrk.summarize(v) for n, v in runs.items()}


def table(title_col, rows):
    lines = [f"| {title_col} | req/s (median) | min–max | ironhorse CPU µs/request | p99 ms |",
             "|---|---:|---:|---:|---:|"]
    for name, s in rows:
        lines.append(f"| {name} | {fmt.fmt_rps(s['rps'])} | {fmt.fmt_rps(s['min'])}–"
                     f"{fmt.fmt_rps(s['max'])} | {fmt.fnum(s['cpu_us'], 1)} | "
                     f"{fmt.fnum(s['p99'], 2)} |")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="1 round of 1 s")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--out", help="also write the Markdown report here")
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.duration = 1, 1
    procs.install_signal_handlers()
    if not a.no_build:
        tools.build_ironhorse()
    nginx_path = tools.find_tool("nginx", ["nginx-light", "nginx"])
    wrk_path = tools.find_tool("wrk", ["wrk"])
    tmp = procs.new_tmpdir("ih-upstream-")
    os.chmod(tmp, 0o755)
    binaries.snapshot(tmp)
    problems = []
    proto = inst = None
    with procs.guarded(problems, tmp):
        proto, pinned = protocol_runs(a, nginx_path, wrk_path, tmp, problems)
        inst = instance_runs(a, nginx_path, wrk_path, tmp, problems)
    lines = report.header_lines("ironhorse behind nginx: uwsgi vs HTTP upstream, 1/2/4 "
                                "instances", {"nginx": nginx_path, "wrk": wrk_path})
    lines += ["", f"{a.rounds} rounds of {a.duration} s per case, order swapped every other "
              "round.", ""]
    if proto:
        lines += [f"### uwsgi_pass vs proxy_pass (keep-alive), `{' '.join(PROTOCOL_MODEL)}`, "
                  "wrk -c32"
                  + (" (server on CPU 0, nginx and wrk on CPU 1)" if pinned else ""), ""]
        lines += table("upstream protocol", [
            ("HTTP (proxy_pass, keep-alive)", proto["http"]),
            ("HTTP (proxy_pass, a connection per request)", proto["http-close"]),
            ("uwsgi (uwsgi_pass, a connection per request)", proto["uwsgi"])])
    if inst:
        lines += ["", f"### Instances in one nginx upstream (`{' '.join(INSTANCE_MODEL)}` each), "
                  "wrk -c64", ""]
        lines += table("instances", [(str(n), s) for n, s in inst.items()])
    report.finish_report(lines, problems, "No problems seen (every check and wrk run clean).",
                         a.out)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
