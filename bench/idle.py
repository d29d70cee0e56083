#!/usr/bin/env python3
"""Memory held by idle keep-alive connections: the `event` and `async` models.

    python3 bench/idle.py                          # 10000 connections to event and async
    python3 bench/idle.py -n 5000 --models event,async,nginx --out /tmp/idle.md

For each server (one process: `--model event`, `--model async --threads 1`, both with
`--keep-alive 300`; `nginx` = 1 worker, optional reference): measure its RSS (VmRSS in
/proc/PID/status; for nginx master + worker) after one warm-up request, open N TCP
connections from this process, send one `GET /small.txt` on each and read the whole
response, so each is a real idle keep-alive HTTP connection, measure the RSS again, check
that a fresh client is still served and that a sample of the held connections still
answers a second request, then close everything and stop the server.

Bounded in time (--timeout, default 120 s per server) and only talks to 127.0.0.1
(source addresses 127.0.0.x when one address does not have enough ephemeral ports).
Python 3 standard library only.
"""

import argparse
import errno
import os
import random
import selectors
import socket
import sys
import time

sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import binaries, procs, report, tools  # noqa: E402
from harness.fmt import fmib  # noqa: E402
from harness.proc_stats import rss_kib  # noqa: E402
from harness.static_site import check_responses, make_docroot, start_ironhorse, start_nginx  # noqa: E402

IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
REQUEST = b"GET /small.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n"


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--connections", type=int, default=10000,
                    help="idle connections to hold (default 10000)")
    ap.add_argument("--models", default="event,async",
                    help="comma list: event, async, nginx (default event,async)")
    ap.add_argument("--timeout", type=float, default=120.0,
                    help="seconds allowed per server (default 120)")
    ap.add_argument("--in-flight", type=int, default=256,
                    help="connections being set up at once (default 256)")
    ap.add_argument("--sample", type=int, default=100,
                    help="held connections asked a second request at the end (default 100)")
    ap.add_argument("--out", help="also write the Markdown report to this file")
    ap.add_argument("--no-build", action="store_true", help="skip cargo build")
    a = ap.parse_args()
    a.models = [m.strip() for m in a.models.split(",") if m.strip()]
    for m in a.models:
        if m not in ("event", "async", "nginx"):
            ap.error(f"unknown model {m}")
    return a


def ephemeral_ports():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = map(int, f.read().split())
        return hi - lo + 1
    except (OSError, ValueError):
        return 28000


class Conn:
    __slots__ = ("sock", "buf", "state")

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.state = "connecting"


def response_complete(buf):
    """(done, status) for one HTTP/1.1 response with a Content-Length body."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False, None
    head = buf[:end].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    length = 0
    for h in head[1:]:
        k, _, v = h.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v.strip())
    return len(buf) >= end + 4 + length, status


def open_idle(n, port, in_flight, deadline, problems):
    """Open n keep-alive connections, one request/response each; returns the held sockets."""
    per_src = max(1000, ephemeral_ports() - 4000)
    use_src = n > per_src
    sel = selectors.DefaultSelector()
    held = []
    pending = 0
    started = 0
    failures = {}

    def fail(conn, why):
        nonlocal pending
        failures[why] = failures.get(why, 0) + 1
        sel.unregister(conn.sock)
        conn.sock.close()
        pending -= 1

    try:
        while (started < n or pending) and time.monotonic() < deadline:
            while started < n and pending < in_flight:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                if use_src:
                    s.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                    s.bind((f"127.0.0.{2 + started // per_src}", 0))
                err = s.connect_ex(("127.0.0.1", port))
                if err not in (0, errno.EINPROGRESS):
                    s.close()
                    failures[f"connect: {os.strerror(err)}"] = failures.get(
                        f"connect: {os.strerror(err)}", 0) + 1
                    started += 1
                    continue
                conn = Conn(s)
                sel.register(s, selectors.EVENT_WRITE, conn)
                started += 1
                pending += 1
            for key, ev in sel.select(timeout=0.5):
                conn = key.data
                if conn.state == "connecting":
                    err = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        fail(conn, f"connect: {os.strerror(err)}")
                        continue
                    try:
                        conn.sock.send(REQUEST)  # 70 bytes: fits any fresh send buffer
                    except OSError as e:
                        fail(conn, f"send: {e.strerror}")
                        continue
                    conn.state = "reading"
                    sel.modify(conn.sock, selectors.EVENT_READ, conn)
                else:
                    try:
                        data = conn.sock.recv(65536)
                    except BlockingIOError:
                        continue
                    except OSError as e:
                        fail(conn, f"recv: {e.strerror}")
                        continue
                    if not data:
                        fail(conn, "closed by the server before the response")
                        continue
                    conn.buf += data
                    done, status = response_complete(conn.buf)
                    if done:
                        if status != 200:
                            fail(conn, f"status {status}")
                            continue
                        sel.unregister(conn.sock)
                        pending -= 1
                        held.append(conn.sock)
        if pending:
            problems.append(f"{pending} connections still setting up at the time limit")
            for key in list(sel.get_map().values()):
                sel.unregister(key.fileobj)
                key.fileobj.close()
    finally:
        sel.close()
    for why, k in failures.items():
        problems.append(f"{k} connections failed: {why}")
    return held


def count_closed(held):
    """Held connections the server has closed (readable with EOF) or that have stray data."""
    sel = selectors.DefaultSelector()
    for s in held:
        sel.register(s, selectors.EVENT_READ)
    closed = stray = 0
    for key, _ in sel.select(timeout=0.2):
        try:
            d = key.fileobj.recv(1, socket.MSG_PEEK)
            if d:
                stray += 1
            else:
                closed += 1
        except OSError:
            closed += 1
    sel.close()
    return closed, stray


def reuse_sample(held, k, deadline):
    """Send a second request on k random held connections; how many got a 200 back."""
    ok = 0
    for s in random.sample(held, min(k, len(held))):
        try:
            s.setblocking(True)
            s.settimeout(max(0.5, min(5.0, deadline - time.monotonic())))
            s.sendall(REQUEST)
            buf = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                buf += d
                done, status = response_complete(buf)
                if done:
                    ok += status == 200
                    break
        except (OSError, ValueError, IndexError):
            pass
    return ok


def server_rss(name, proc):
    pids = [proc.pid] + (procs.children(proc.pid) if name == "nginx" else [])
    vals = [rss_kib(p) for p in pids]
    return sum(v for v in vals if v is not None) if any(v is not None for v in vals) else None


def measure(name, a, tool_paths, root, tmp, expected, problems):
    res = {"model": name}
    proc = None
    held = []
    deadline = time.monotonic() + a.timeout
    try:
        if name == "nginx":
            proc, addr, log_path = start_nginx(tool_paths["nginx"], root, tmp,
                                               conns=a.connections + 1024, keepalive=300)
            time.sleep(0.3)  # let the worker start
        else:
            extra = ["--keep-alive", "300"]  # async already has --threads 1 (MODEL_ARGS)
            proc, addr, log_path = start_ironhorse(name, root, tmp, extra=extra)
        port = int(addr.rsplit(":", 1)[1])
        for pr in check_responses(addr, expected):
            problems.append(f"{name}: warm-up: {pr}")
        time.sleep(0.5)
        res["base"] = server_rss(name, proc)
        t0 = time.monotonic()
        held = open_idle(a.connections, port, a.in_flight, deadline, problems)
        res["setup_s"] = time.monotonic() - t0
        time.sleep(1.0)
        res["with"] = server_rss(name, proc)
        res["held"] = len(held)
        if proc.poll() is not None:
            problems.append(f"{name}: server exited with {proc.returncode} while connections "
                            "were held")
        fresh = check_responses(addr, expected)
        res["fresh"] = not fresh
        for pr in fresh:
            problems.append(f"{name}: fresh client while {len(held)} connections held: {pr}")
        closed, stray = count_closed(held)
        res["closed"] = closed
        if closed:
            problems.append(f"{name}: {closed} held connections were closed by the server "
                            "before the end (keep-alive 300 s)")
        if stray:
            problems.append(f"{name}: {stray} held connections had unexpected bytes waiting")
        res["reuse"] = (reuse_sample(held, a.sample, deadline), min(a.sample, len(held)))
    except procs.Interrupted:
        raise
    except Exception as e:  # noqa: BLE001
        problems.append(f"{name}: {type(e).__name__}: {e}")
    finally:
        for s in held:
            s.close()
        if proc is not None:
            if proc.poll() is None:
                time.sleep(1.0)
                res["after"] = server_rss(name, proc)
            code = procs.stop(proc)
            if code not in (0, None) and name != "nginx":
                problems.append(f"{name}: exit code {code} after SIGTERM")
    return res


def main():
    a = parse_args()
    procs.install_signal_handlers()
    limit = tools.raise_nofile(hard_need=a.connections + 1000)  # the servers inherit it too
    if limit < a.connections + 100:
        sys.exit(f"idle: RLIMIT_NOFILE is {limit}; need more than {a.connections + 100}")
    tool_paths = {}
    if "nginx" in a.models:
        tool_paths["nginx"] = tools.find_tool("nginx", ["nginx-light", "nginx"])
    if not a.no_build:
        tools.build_ironhorse()
    tmp = procs.new_tmpdir("ironhorse-idle-")
    root, expected = make_docroot(tmp)
    binaries.snapshot(tmp)
    problems = []
    results = []
    with procs.guarded(problems, tmp):
        for m in a.models:
            procs.log(f"{m}: holding {a.connections} idle connections")
            r = measure(m, a, tool_paths, root, tmp, expected, problems)
            results.append(r)
            procs.log(f"{m}: {r}")

    lines = report.header_lines("Idle keep-alive connections: server memory", tool_paths)
    lines += [
        f"- {a.connections} connections requested per server, each after one `GET /small.txt` "
        f"answered with keep-alive; RLIMIT_NOFILE {limit}; ironhorse `--keep-alive 300`, one "
        "process (`--model event`, `--model async --threads 1`)"
        + ("; nginx: 1 worker, `keepalive_timeout 300s`, RSS = master + worker" if "nginx" in a.models else ""),
        "- RSS: VmRSS from /proc/PID/status, 0.5 s after a warm-up request (baseline), 1 s after "
        "the last connection was set up (with connections), 1 s after the client closed them all "
        "(after closing); bytes per connection = (with − baseline) / held",
        "",
        "| model | connections held | RSS baseline | RSS with connections | bytes per connection "
        "| RSS after closing | set-up time | fresh client served | held ones re-used (sample) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        per = ((r["with"] - r["base"]) * 1024 / r["held"]
               if r.get("held") and r.get("with") is not None and r.get("base") is not None
               else None)
        reuse = r.get("reuse")
        lines.append(
            f"| {r['model']} | {r.get('held', 0):,} | {fmib(r.get('base'))} | {fmib(r.get('with'))} | "
            f"{f'{per:,.0f}' if per is not None else '—'} | {fmib(r.get('after'))} | "
            f"{r.get('setup_s', 0):.1f} s | {'yes' if r.get('fresh') else 'NO'} | "
            f"{f'{reuse[0]}/{reuse[1]}' if reuse else '—'} |")
    report.finish_report(lines, problems, ("No problems seen: every connection was set up and answered, none was "
                     "closed early, fresh clients were served, every server stopped on SIGTERM."), a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
