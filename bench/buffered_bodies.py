#!/usr/bin/env python3
"""What a connection whose body is being buffered (`--buffer-request-body`) costs the server.

    python3 bench/buffered_bodies.py                       # 1000 uploads of 64 KiB and 1 MiB
    python3 bench/buffered_bodies.py --clients 500 --sizes 16384,1048576 --out /tmp/buf.md

For each body size and each `--buffer-request-body-memory` (64 KiB, and the body size: all
in memory), `ironhorse --model event` runs a one-line WSGI app with `--buffer-request-body
2M`; N clients each send a POST head announcing one byte more than the body they then
send, so every body is held, incomplete, by the event loop (the app is never called). Once
every byte is in the server (the server's sockets have empty receive queues and the
clients' empty send queues: an event, not a sleep), the server's RSS and PSS are read from
/proc and set against the same server before the crowd; the temporary files it holds are
counted (their bytes from fstat through /proc/PID/fd). A row with an empty body is the cost
of a connection waiting for its body.

Also measured: how long one 64 KiB write to an unlinked temporary file in $TMPDIR takes on
this machine (what the event loop does per read once a body spools), and the server's CPU
time per MiB received, memory against spooled.

Loopback only; bounded (N clients, --timeout per row); everything started is stopped.
Python 3 standard library only.
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import binaries, proc_stats, procs, report, tools  # noqa: E402

APP = "def application(environ, start_response):\n" \
      "    start_response('200 OK', [('Content-Type', 'text/plain')])\n" \
      "    return [b'ok']\n"


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--sizes", default="0,65536,1048576", help="body sizes in bytes")
    ap.add_argument("--memory", default="65536", help="the threshold besides 'all in memory'")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per row")
    ap.add_argument("--out", help="also write the Markdown report to this file")
    ap.add_argument("--no-build", action="store_true", help="skip cargo build")
    binaries.add_option(ap)
    a = ap.parse_args()
    binaries.check_option(ap, a.binary)
    a.sizes = [int(s) for s in a.sizes.split(",")]
    a.memory = int(a.memory)
    return a


def queues(port):
    """(sum of the server sockets' Recv-Q, sum of the clients' Send-Q) on `port`."""
    out = subprocess.run(["ss", "-tnH", "state", "established"], capture_output=True,
                         text=True).stdout
    recv = send = 0
    for line in out.splitlines():
        f = line.split()
        if len(f) < 4:
            continue
        local, peer = f[2], f[3]
        if local.endswith(f":{port}"):
            recv += int(f[0])
        elif peer.endswith(f":{port}"):
            send += int(f[1])
    return recv, send


def spooled_files(pid, tmpdir):
    """(count, bytes) of files in `tmpdir` the server tree holds open."""
    n = size = 0
    for p in procs.tree(pid):
        try:
            fds = os.listdir(f"/proc/{p}/fd")
        except OSError:
            continue
        for fd in fds:
            path = f"/proc/{p}/fd/{fd}"
            try:
                if os.readlink(path).startswith(tmpdir):
                    n += 1
                    size += os.stat(path).st_size
            except OSError:
                pass
    return n, size


def cpu_seconds(pid):
    user, system = proc_stats.tree_cpu_split(pid)
    return user + system


def row(a, size, memory, tmp):
    spool = tempfile.mkdtemp(prefix="spool-", dir=tmp)
    args = ["app:application", "--chdir", tmp, "--model", "event", "--threads", "2",
            "-b", "127.0.0.1:0", "--buffer-request-body", "2M",
            "--buffer-request-body-memory", str(memory), "--body-timeout", "600",
            "--limit-request-body", "4M"]
    env = procs.server_env({"TMPDIR": spool})
    proc, addr = binaries.launch(binaries.current(), args,
                                 os.path.join(tmp, f"ih-{size}-{memory}.log"), env=env)
    port = int(addr.rsplit(":", 1)[1])
    for _ in range(20):  # warm: the app loaded, a thread started
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
            while s.recv(65536):
                pass
    before = proc_stats.tree_snapshot(proc.pid)
    cpu0 = cpu_seconds(proc.pid)
    head = f"POST / HTTP/1.1\r\nHost: b\r\nContent-Length: {size + 1}\r\n\r\n".encode()
    body = os.urandom(size)
    deadline = time.monotonic() + a.timeout
    socks = []
    try:
        for _ in range(a.clients):
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.sendall(head + body)
            socks.append(s)
        while time.monotonic() < deadline and queues(port) != (0, 0):
            time.sleep(0.2)
        drained = queues(port) == (0, 0)
        time.sleep(0.5)  # the loop's last turn after the last read
        after = proc_stats.tree_snapshot(proc.pid)
        cpu = cpu_seconds(proc.pid) - cpu0
        files, spooled = spooled_files(proc.pid, spool)
    finally:
        for s in socks:
            s.close()
        procs.stop_all()
    n = len(socks)
    return {
        "size": size, "memory": memory, "clients": n, "drained": drained,
        "rss": (after["rss"] - before["rss"]) * 1024 / n,
        "pss": (after["pss"] - before["pss"]) * 1024 / n,
        "total_rss_mib": after["rss"] / 1024, "files": files, "spooled_mib": spooled / 2**20,
        "cpu_per_mib": cpu / (n * size / 2**20) * 1000 if size else None,
    }


def write_latency(tmp, writes=2000):
    """Microseconds per 64 KiB write to an unlinked temp file: (p50, p99, max)."""
    block = os.urandom(65536)
    fd = os.open(tmp, os.O_TMPFILE | os.O_RDWR, 0o600)
    samples = []
    try:
        for i in range(writes):
            if i % 160 == 0:  # a 10 MiB file at most, as one body would be
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
            t0 = time.perf_counter_ns()
            os.write(fd, block)
            samples.append((time.perf_counter_ns() - t0) / 1000)
    finally:
        os.close(fd)
    samples.sort()
    return samples[len(samples) // 2], samples[len(samples) * 99 // 100], samples[-1]


def kib(x):
    return f"{x / 1024:.1f}"


def main():
    a = parse_args()
    procs.install_signal_handlers()
    tools.raise_nofile(hard_need=a.clients * 2 + 512)
    if not a.no_build and not a.binary:
        tools.build_ironhorse()
    tmp = procs.new_tmpdir("ih-buffered-")
    with open(os.path.join(tmp, "app.py"), "w") as f:
        f.write(APP)
    problems, rows = [], []
    binaries.snapshot_all(tmp, a.binary[:1])
    with procs.guarded(problems, tmp):
        for size in a.sizes:
            for memory in sorted({a.memory, max(size, 1)}):
                if size <= a.memory and memory != a.memory:
                    continue
                r = row(a, size, memory, tmp)
                if not r["drained"]:
                    problems.append(f"{size} B / {memory}: bytes still queued at the timeout")
                rows.append(r)
    p50, p99, worst = write_latency(tempfile.gettempdir())
    lines = report.header(f"Buffered bodies: memory per connection, {a.clients} uploads "
                          "held by `event`", {})
    lines += ["", "| body | --buffer-request-body-memory | RSS per connection (KiB) "
              "| PSS per connection (KiB) | server RSS (MiB) | temp files | spooled (MiB) "
              "| server CPU per MiB (ms) |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cpu = f"{r['cpu_per_mib']:.2f}" if r["cpu_per_mib"] is not None else "—"
        lines.append(f"| {kib(r['size'])} KiB | {kib(r['memory'])} KiB | {kib(r['rss'])} "
                     f"| {kib(r['pss'])} | {r['total_rss_mib']:.0f} | {r['files']} "
                     f"| {r['spooled_mib']:.0f} | {cpu} |")
    lines += ["", f"One 64 KiB write to an unlinked temp file in {tempfile.gettempdir()}: "
              f"p50 {p50:.0f} µs, p99 {p99:.0f} µs, max {worst:.0f} µs (2000 writes)."]
    report.finish_report(lines, problems, "no problems seen", a.out)


if __name__ == "__main__":
    main()
