#!/usr/bin/env python3
"""A normal client's latency with and without a crowd of slow clients, per model.

    python3 bench/slowloris.py                         # 1000 slow heads, 200 asks, 5 read-ahead models
    python3 bench/slowloris.py --models threadpool,hybrid,prefork --crowd 500 --out /tmp/slow.md
    python3 bench/slowloris.py --uploads --crowd 500   # slow uploaders instead of slow heads

For each model (`threadpool --threads 16`, `hybrid -w 1 --threads 16`, `prefork -w 2`,
`event`, `async`; `single` on request, to show what a serial server cannot withstand),
serving a static document root: the normal client asks `GET /small.txt` on a fresh
connection N times (one at a time) and its latencies are recorded; then a crowd of slow
clients connects (each sends `GET / HTTP/1.1\\r\\n`, then one byte of a header line per
second, never finishing its head), the crowd's sockets are counted in the server (an event:
every one accepted, or the limit passed), and the normal client asks N times again. With
--uploads the server runs bench/apps/hello.py instead (the default --buffer-request-body
64 KiB) and each slow client sends a POST head with `Content-Length: 10000`, then one body
byte per 100 ms. An ask that gets no answer within --ask-timeout counts as failed (a starved
server), never as a latency. Loopback only; bounded (--crowd clients, --timeout per model);
everything started is stopped at the end. Python 3 standard library only.
"""

import argparse
import os
import socket
import statistics
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import APPS, binaries, procs, report, tools  # noqa: E402
from harness.static_site import make_docroot  # noqa: E402

ARGS = {
    "threadpool": ["--model", "threadpool", "--threads", "16"],
    "hybrid": ["--model", "hybrid", "-w", "1", "--threads", "16"],
    "event": ["--model", "event"],
    "async": ["--model", "async"],
    "prefork": ["--model", "prefork", "-w", "2"],
    "single": ["--model", "single"],
}


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="threadpool,hybrid,prefork,event,async")
    ap.add_argument("--uploads", action="store_true",
                    help="slow uploaders (a body byte per 100 ms) instead of slow heads")
    ap.add_argument("--crowd", type=int, default=1000, help="slow clients (default 1000)")
    ap.add_argument("--asks", type=int, default=200, help="normal requests per phase")
    ap.add_argument("--ask-timeout", type=float, default=10.0)
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per model")
    ap.add_argument("--out", help="also write the Markdown report to this file")
    ap.add_argument("--no-build", action="store_true", help="skip cargo build")
    a = ap.parse_args()
    a.models = [m.strip() for m in a.models.split(",") if m.strip()]
    for m in a.models:
        if m not in ARGS:
            ap.error(f"unknown model {m}")
    return a


def ask(port, timeout):
    """One GET on a fresh connection: seconds taken, or None without a 200 in time."""
    t0 = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"GET /small.txt HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
            buf = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                buf += d
    except OSError:
        return None
    return time.monotonic() - t0 if buf.startswith(b"HTTP/1.1 200") else None


def phase(port, n, timeout):
    lat = [ask(port, timeout) for _ in range(n)]
    ok = sorted(x for x in lat if x is not None)
    return ok, n - len(ok)


UPLOAD_HEAD = b"POST / HTTP/1.1\r\nHost: b\r\nContent-Length: 10000\r\n\r\n"


class Crowd:
    """Slow clients trickling one header byte a second (or, uploading, one body byte per
    100 ms), until stopped (bounded)."""

    def __init__(self, port, n, deadline, uploads=False):
        self.socks, self.stop = [], threading.Event()
        if uploads:
            head, self.pattern, self.interval = UPLOAD_HEAD, b"x", 0.1
        else:
            head, self.pattern, self.interval = b"GET / HTTP/1.1\r\n", b"X-Slow: yes\r\n", 1.0
        for _ in range(n):
            if time.monotonic() > deadline:
                break
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(head)
                s.setblocking(False)
                self.socks.append(s)
            except OSError:
                break
        self.thread = threading.Thread(target=self.drip, args=(deadline,), daemon=True)
        self.thread.start()

    def drip(self, deadline):
        pattern, i = self.pattern, 0
        while not self.stop.wait(self.interval) and time.monotonic() < deadline:
            byte = pattern[i % len(pattern):][:1]
            i += 1
            for s in self.socks:
                try:
                    s.send(byte)
                except OSError:
                    pass

    def close(self):
        self.stop.set()
        self.thread.join()
        for s in self.socks:
            s.close()


def sockets_of(pid):
    total = 0
    for p in [pid] + procs.children(pid):
        try:
            total += sum(os.readlink(f"/proc/{p}/fd/{fd}").startswith("socket:")
                         for fd in os.listdir(f"/proc/{p}/fd"))
        except OSError:
            pass
    return total


def ms(x):
    return f"{x * 1000:.2f}" if x is not None else "—"


def measure(model, a, root, tmp, problems):
    log_path = os.path.join(tmp, f"ironhorse-{model}.log")
    served = ["hello:application", "--chdir", APPS] if a.uploads else ["--root", root]
    args = served + ["-b", "127.0.0.1:0"] + ARGS[model]
    proc, addr = binaries.launch(binaries.current(), args, log_path)
    port = int(addr.rsplit(":", 1)[1])
    deadline = time.monotonic() + a.timeout
    row = {"model": " ".join(ARGS[model][1:])}
    base, failed = phase(port, a.asks, a.ask_timeout)
    row["base"] = base
    if failed:
        problems.append(f"{model}: {failed} asks failed without a crowd")
    crowd = Crowd(port, a.crowd, deadline, a.uploads)
    try:
        while sockets_of(proc.pid) < len(crowd.socks) and time.monotonic() < deadline:
            time.sleep(0.1)
        row["accepted"] = min(sockets_of(proc.pid), len(crowd.socks))
        lat, failed = phase(port, a.asks, a.ask_timeout)
        row["crowd"], row["failed"] = lat, failed
    finally:
        crowd.close()
        procs.stop_all()
    return row


def pct(xs, p):
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))] if xs else None


def main():
    a = parse_args()
    procs.install_signal_handlers()
    tools.raise_nofile(hard_need=a.crowd * 2 + 512)
    if not a.no_build:
        tools.build_ironhorse()
    tmp = procs.new_tmpdir("ih-slowloris-")
    problems, rows = [], []
    binaries.snapshot(tmp)
    root, _ = make_docroot(tmp)
    with procs.guarded(problems, tmp):
        for model in a.models:
            rows.append(measure(model, a, root, tmp, problems))
    kind = "slow uploaders (a body byte per 100 ms)" if a.uploads else "slowloris clients"
    lines = report.header("Slow clients: a normal client's latency, with and without "
                          f"{a.crowd} {kind}", {})
    lines += ["", "| model | p50 alone (ms) | p99 alone (ms) | slow clients accepted "
              "| p50 with them (ms) | p99 with them (ms) | asks unanswered |",
              "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| `{r['model']}` | {ms(pct(r['base'], 50))} | {ms(pct(r['base'], 99))} "
                     f"| {r.get('accepted', 0)} | {ms(pct(r.get('crowd', []), 50))} "
                     f"| {ms(pct(r.get('crowd', []), 99))} | {r.get('failed', '—')} / {a.asks} |")
    report.finish_report(lines, problems, "no problems seen", a.out)


if __name__ == "__main__":
    main()
