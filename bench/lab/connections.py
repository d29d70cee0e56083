"""`bench/run connections`: idle keep-alive connections held vs memory per model, and
server-sent events: delivery latency with thousands of concurrent streams.

Idle part: N connections (default 20000) from several 127.0.0.x source addresses, each after
one answered `GET /` (bench/apps/lab_sse.py answers "ok"), so they are real idle HTTP/1.1
keep-alive connections (`--keep-alive 300`); the server's RSS is sampled as they pile up.
A model that stops answering new connections (all its threads or processes busy holding
idle ones) is detected by a stall: no connection answered for a few seconds.

SSE part: S streams (default 2000) of `GET /events?count=T` (one `data: <send time>` a
second for T seconds); the client (one selectors loop in this process) records, per event,
now − send time.

WebSocket part (lab/ws_hold.py): W WebSockets (default 2000) held by an ASGI app on `event`
and `async`, one timestamped message a second for T seconds: latency and memory per
connection.
"""

import errno
import os
import re
import selectors
import socket
import time

import idle  # bench/idle.py: port range, response parsing, re-use sample
import stream_client
import ws_hold
from harness import tools
from harness.app_server import GRACEFUL_TIMEOUT as GRACEFUL
from harness.app_server import Server
from harness.fmt import fmib, fms, fnum, pct
from harness.lab_venv import versions
from harness.proc_stats import tree_fds, tree_snapshot
from harness.procs import lab_log as log
from harness.report import hand_notes, header, plt, problems_lines, write_report

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
PER_SOURCE = 10000  # connections per 127.0.0.x source address (ephemeral ports are ~28k)


def idle_models(n):
    return [
        ("event", ["--model", "event"]),
        ("async", ["--model", "async"]),
        # the cap a little above N, so the fresh-client check is not the (cap + 1)th client
        (f"thread --max-connections {n + 100}",
         ["--model", "thread", "--max-connections", str(n + 100)]),
        ("threadpool (16 threads)", ["--model", "threadpool"]),
        ("prefork -w 2", ["--model", "prefork", "-w", "2"]),
    ]


def sse_models(s):
    """(label, args, app threads, app): the WSGI app holds a thread per stream; the ASGI
    one (0 app threads) runs every stream as a coroutine on the process's one loop."""
    k = s + 100
    return [
        (f"event --threads {k}", ["--model", "event", "--threads", str(k)], k, "lab_sse:app"),
        (f"async --threads {k}", ["--model", "async", "--threads", str(k)], k, "lab_sse:app"),
        ("event --threads 16 (the default)", ["--model", "event"], 16, "lab_sse:app"),
        ("event, ASGI app (one asyncio loop)", ["--model", "event"], 0, "lab_sse_asgi:app"),
        ("async, ASGI app (one asyncio loop)", ["--model", "async"], 0, "lab_sse_asgi:app"),
    ]


def _connect(i, port, nsrc):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    if nsrc > 1:
        s.setsockopt(socket.SOL_IP, idle.IP_BIND_ADDRESS_NO_PORT, 1)
        s.bind((f"127.0.0.{2 + i % nsrc}", 0))
    err = s.connect_ex(("127.0.0.1", port))
    if err not in (0, errno.EINPROGRESS):
        s.close()
        return None, f"connect: {os.strerror(err)}"
    return s, None


def hold_idle(n, port, deadline, stall_s, milestone, in_flight=256):
    """Open n connections, one request/answer each; stop early when none is answered for
    stall_s seconds. Returns (held sockets, still waiting for an answer, failures)."""
    nsrc = max(1, -(-n // PER_SOURCE))
    sel = selectors.DefaultSelector()
    held, pending, failures = [], {}, {}
    started = 0
    last_progress = time.monotonic()
    stalled = False

    def fail(sock, why):
        failures[why] = failures.get(why, 0) + 1
        sel.unregister(sock)
        pending.pop(sock, None)
        sock.close()

    try:
        while (started < n or pending) and time.monotonic() < deadline:
            while started < n and len(pending) < in_flight:
                s, err = _connect(started, port, nsrc)
                started += 1
                if s is None:
                    failures[err] = failures.get(err, 0) + 1
                    continue
                pending[s] = [b"", "connecting"]
                sel.register(s, selectors.EVENT_WRITE)
            for key, _ev in sel.select(timeout=0.5):
                s = key.fileobj
                st = pending.get(s)
                if st is None:
                    continue
                if st[1] == "connecting":
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        fail(s, f"connect: {os.strerror(err)}")
                        continue
                    try:
                        s.send(REQUEST)
                    except OSError as e:
                        fail(s, f"send: {e.strerror}")
                        continue
                    st[1] = "reading"
                    sel.modify(s, selectors.EVENT_READ)
                    continue
                try:
                    data = s.recv(65536)
                except BlockingIOError:
                    continue
                except OSError as e:
                    fail(s, f"recv: {e.strerror}")
                    continue
                if not data:
                    fail(s, "closed by the server before the answer")
                    continue
                st[0] += data
                done, status = idle.response_complete(st[0])
                if done:
                    if status != 200:
                        fail(s, f"status {status}")
                        continue
                    sel.unregister(s)
                    del pending[s]
                    held.append(s)
                    last_progress = time.monotonic()
                    milestone(len(held))
            if pending and time.monotonic() - last_progress > stall_s:
                stalled = True
                break
    finally:
        waiting = len(pending)
        for s in list(pending):
            sel.unregister(s)
            s.close()
        sel.close()
    return held, waiting, failures, stalled


def fresh_client(port, timeout=5.0):
    """A new connection gets `GET /` answered within timeout: (ok, seconds or reason)."""
    t0 = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            buf = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                buf += d
                done, status = idle.response_complete(buf)
                if done:
                    return status == 200, time.monotonic() - t0
    except OSError as e:
        return False, f"{type(e).__name__}: {e}"
    return False, "closed without an answer"


def run_idle(label, args, n, a, ctx, problems):
    res = {"label": label, "requested": n, "curve": []}
    server = None
    held = []
    quick = a.quick
    stall_s = 2.0 if quick else 5.0
    try:
        server = Server(label, args + ["--keep-alive", "300"], "lab_sse:app", ctx.tmp, problems)
        time.sleep(0.5)
        base = tree_snapshot(server.proc.pid)
        res["base"] = base
        res["curve"].append((0, base["rss"]))
        step = max(50, n // 25)

        def milestone(k):
            if k % step == 0:
                res["curve"].append((k, tree_snapshot(server.proc.pid, pss=False)["rss"]))
                if k % (step * 5) == 0:
                    log(f"  {label}: {k:,} connections held")

        t0 = time.monotonic()
        held, waiting, failures, stalled = hold_idle(
            n, server.port, time.monotonic() + (30 if quick else 180), stall_s, milestone)
        res["setup_s"] = time.monotonic() - t0
        res["held"], res["waiting"], res["stalled"] = len(held), waiting, stalled
        for why, k in failures.items():
            problems.append(f"{label}: {k} connections failed: {why}")
        time.sleep(1.0)
        snap = tree_snapshot(server.proc.pid)
        res["with"] = snap
        res["fds"] = tree_fds(server.proc.pid)
        res["curve"].append((len(held), snap["rss"]))
        if not server.alive():
            problems.append(f"{label}: server exited with {server.proc.returncode} while "
                            "connections were held")
        ok, how = fresh_client(server.port, 2.0 if quick else 5.0)
        res["fresh"] = ok
        res["fresh_how"] = how
        closed, stray = idle.count_closed(held)
        res["closed"] = closed
        if closed:
            problems.append(f"{label}: {closed} held connections were closed by the server "
                            "(keep-alive 300 s)")
        if stray:
            problems.append(f"{label}: {stray} held connections had unexpected bytes waiting")
        res["reuse"] = (idle.reuse_sample(held, 100, time.monotonic() + 20), min(100, len(held)))
    except Exception as e:  # noqa: BLE001
        problems.append(f"{label}: {type(e).__name__}: {e}")
    finally:
        for s in held:
            s.close()
        if server is not None:
            if server.alive():
                time.sleep(1.0)
                res["after"] = tree_snapshot(server.proc.pid, pss=False)
            server.stop()
            res["stop_s"] = getattr(server, "stop_seconds", None)
            res["emfile"] = "Too many open files" in server.log_tail(10 ** 7)
    return res


# --------------------------------------------------------------------------- SSE


DATA_RX = re.compile(rb"data: (\d+\.\d+)\n\n")


class Stream(stream_client.Client):
    """One SSE stream: `GET /events?count=T`, then every `data: <send time>` is a latency."""

    def __init__(self, sock, req, lat):
        super().__init__(sock)
        self.req, self.lat, self.buf = req, lat, b""
        self.sent_at = self.first_at = self.status = None
        self.events = 0

    def on_connected(self):
        self.sock.send(self.req)
        self.sent_at = time.time()
        self.state = "streaming"

    def on_data(self, data, now):
        self.buf += data
        if self.status is None and b"\r\n" in self.buf:
            try:
                self.status = int(self.buf.split(b" ", 2)[1])
            except (IndexError, ValueError):
                self.status = -1
        last = 0
        for m in DATA_RX.finditer(self.buf):
            self.lat.append((now - float(m.group(1))) * 1000)
            self.events += 1
            if self.first_at is None:
                self.first_at = now
            last = m.end()
        if b"\r\n0\r\n\r\n" in self.buf[-16:] or self.buf.endswith(b"0\r\n\r\n"):
            self.ended = True
        self.buf = self.buf[last:] if last else self.buf[-256:]


def run_sse(label, args, k, app, streams, seconds, a, ctx, problems):
    res = {"label": label, "threads": k, "streams": streams, "seconds": seconds}
    conns, lat = [], []  # every stream opened (drive's list, seen while it runs)
    req = (f"GET /events?count={seconds} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").encode()
    nsrc = max(1, -(-streams // PER_SOURCE))

    def make(sock):
        conns.append(Stream(sock, req, lat))
        return conns[-1]

    def body(server):
        _, res["setup_s"] = stream_client.drive(
            streams, server.port, lambda i, port: _connect(i, port, nsrc), make, seconds,
            label, problems, lambda cs: f"{sum(1 for x in cs if x.events)} streams "
                                        f"delivering, {len(lat):,} events")

    stream_client.serve_row(label, args, app, ctx, problems, res, body)
    statuses = {}
    for st in conns:
        statuses[st.status] = statuses.get(st.status, 0) + 1
    res["statuses"] = {str(k): v for k, v in statuses.items()}
    res["started"] = sum(1 for st in conns if st.events)
    res["complete"] = sum(1 for st in conns if st.events >= seconds)
    res["failed"] = sum(1 for st in conns if st.state == "failed")
    res["events"] = len(lat)
    res["expected"] = streams * seconds
    waits = [(st.first_at - st.sent_at) * 1000 for st in conns if st.first_at and st.sent_at]
    res["wait_p50"], res["wait_max"] = pct(waits, 50), (max(waits) if waits else None)
    res["p50"], res["p99"], res["max"] = pct(lat, 50), pct(lat, 99), (max(lat) if lat else None)
    res["lat_sample"] = sorted(lat)[:: max(1, len(lat) // 2000)]
    return res


# --------------------------------------------------------------------------- report


def run(a, ctx):
    n = min(a.connections or (500 if a.quick else 20000), 50000)
    s = min(a.sse or (50 if a.quick else 2000), 5000)
    w = min(a.ws or (50 if a.quick else 2000), 5000)
    seconds = a.duration or (2 if a.quick else 30)
    asked = n
    limit = tools.raise_nofile(hard_need=max(n, s, w) + 2000)
    problems = []
    notes = []
    if limit < max(n, s) + 1000:
        # this process holds every client socket: stay under its descriptor limit
        n, s, w = min(n, limit - 1000), min(s, limit - 1000), min(w, limit - 1000)
        notes.append(f"RLIMIT_NOFILE cannot be raised above {limit:,} here (no "
                     f"CAP_SYS_RESOURCE), for the client and the server alike: {asked:,} "
                     f"connections were asked, {n:,} are attempted")
    with open("/proc/sys/kernel/pid_max") as f:
        pid_max = int(f.read())
    idle_res, sse_res = [], []
    t0 = time.monotonic()
    for label, args in idle_models(n):
        if a.only and not any(o in label for o in a.only):
            continue
        if label.startswith("thread ") and n > pid_max - 2000:
            notes.append(f"`{label}` skipped: a thread per connection needs {n:,} threads and "
                         f"this kernel's pid_max is {pid_max:,}")
            continue
        log(f"connections: {label}: up to {n:,} idle keep-alive connections")
        r = run_idle(label, args, n, a, ctx, problems)
        idle_res.append(r)
        log(f"  {label}: held {r.get('held', 0):,}, RSS {fmib(r.get('with', {}).get('rss'))}"
            f", fresh client {'served' if r.get('fresh') else 'NOT served'}")
    for label, args, k, app in sse_models(s):
        if a.only and not any(o in label for o in a.only):
            continue
        log(f"connections: SSE {label}: {s:,} streams × {seconds} s")
        r = run_sse(label, args, k, app, s, seconds, a, ctx, problems)
        sse_res.append(r)
        log(f"  {label}: {r['started']:,} streams delivered, {r['events']:,}/{r['expected']:,} "
            f"events, p50 {fms(r['p50'])}, p99 {fms(r['p99'])}")
    ws_res = []
    for label, args in ws_hold.ws_models():
        if a.only and not any(o in label for o in a.only):
            continue
        log(f"connections: {label}: {w:,} WebSockets × {seconds} s")
        r = ws_hold.run_ws(label, args, w, seconds,
                           lambda i, port: _connect(i, port, max(1, -(-w // PER_SOURCE))),
                           ctx, problems)
        ws_res.append(r)
        log(f"  {label}: {r['upgraded']:,} upgraded, {r['messages']:,}/{r['expected']:,} "
            f"messages, p50 {fms(r['p50'])}, p99 {fms(r['p99'])}")
    took = time.monotonic() - t0
    return report(a, ctx, (n, s, w), seconds, limit, (idle_res, sse_res, ws_res), problems,
                  notes, took)


def report(a, ctx, counts, seconds, limit, results, problems, notes, took):
    # (`w` is the idle loop's "with connections" snapshot below: the count is `n_ws`)
    (n, s, n_ws), (idle_res, sse_res, ws_res) = counts, results
    lines = header("Connections: idle keep-alive connections vs memory; SSE and WebSocket "
                   "delivery latency",
                   ctx.tools, versions())
    lines += [
        f"- idle: up to {n:,} connections per model from {max(1, -(-n // PER_SOURCE))} source "
        f"address(es) 127.0.0.2…, each after one answered `GET /` of `bench/apps/lab_sse.py` "
        f"(\"ok\"), 256 being set up at a time; server `--keep-alive 300`; RLIMIT_NOFILE "
        f"{limit:,} (client and server); the set-up stops when no connection has been answered "
        f"for {'2' if a.quick else '5'} s (the model holds no more) or after "
        f"{'30' if a.quick else '180'} s; took {took / 60:.1f} min for the whole scenario",
        "- RSS and PSS: summed over the server's process tree (/proc), 0.5 s after start "
        "(baseline) and 1 s after the set-up (with connections); per connection = (with − "
        "baseline) / held; after closing: 1 s after the client closed them all",
        f"- fresh client: a new connection's `GET /` answered within {'2' if a.quick else '5'} s while the others are "
        "held; re-used: a second request on 100 random held connections",
    ] + [f"- {x}" for x in notes] + [
        "",
        "### Idle keep-alive connections",
        "",
        "| model | held | still waiting when set-up stopped | RSS baseline | RSS with "
        "connections | PSS with connections | bytes per connection (RSS) | threads | processes "
        "| open fds (tree) | RSS after closing | set-up time | fresh client served | held ones "
        "re-used |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in idle_res:
        base, w = r.get("base") or {}, r.get("with") or {}
        per = ((w["rss"] - base["rss"]) * 1024 / r["held"]
               if r.get("held") and w.get("rss") is not None and base.get("rss") is not None
               else None)
        fresh = ("yes" if r.get("fresh") else f"NO ({r.get('fresh_how')})"
                 if "fresh" in r else "—")
        if r.get("fresh") and isinstance(r.get("fresh_how"), float):
            fresh = f"yes ({fms(r['fresh_how'] * 1000)})"
        reuse = r.get("reuse")
        lines.append(
            f"| {r['label']} | {r.get('held', 0):,} | {r.get('waiting', 0):,}"
            f"{' (stalled)' if r.get('stalled') else ''} | {fmib(base.get('rss'))} | "
            f"{fmib(w.get('rss'))} | {fmib(w.get('pss'))} | {fnum(per)} | "
            f"{fnum(w.get('threads'))} | {fnum(w.get('procs'))} | {fnum(r.get('fds'))} | "
            f"{fmib((r.get('after') or {}).get('rss'))} | {r.get('setup_s', 0):.1f} s | {fresh} | "
            f"{f'{reuse[0]}/{reuse[1]}' if reuse else '—'} |")
    lines += ["", "Computed reading:", ""]
    for r in idle_res:
        held = r.get("held", 0)
        if held >= n:
            txt = f"held all {n:,}"
        elif r.get("emfile"):
            txt = (f"held {held:,} of {n:,}: the server ran out of file descriptors "
                   f"(`accept: Too many open files` in its log; RLIMIT_NOFILE {limit:,})")
        elif r.get("stalled") and "prefork" in r["label"]:
            txt = (f"held {held:,} of {n:,}: each worker reads ahead on at most "
                   "--max-connections (default 1000) connections; the rest wait in the "
                   "kernel's backlog until one closes")
        elif r.get("stalled"):
            txt = (f"held {held:,} of {n:,}: its threads each sit on an idle keep-alive "
                   "connection, so new connections are accepted by the kernel but never "
                   "answered until --keep-alive expires")
        else:
            txt = f"held {held:,} of {n:,} within the time limit"
        if r.get("fds") and held >= 100:
            txt += f"; {r['fds'] / held:.2f} open descriptors per held connection"
        if "fresh" in r and not r["fresh"]:
            txt += "; a fresh client was not served while they were held"
        if r.get("stop_s") and r["stop_s"] > GRACEFUL + 1.5:
            txt += (f"; it took {r['stop_s']:.1f} s to stop after SIGTERM (--graceful-timeout "
                    f"{GRACEFUL} s, every client already gone)")
        lines.append(f"- `{r['label']}`: {txt}.")
    lines += [
        "",
        f"### Server-sent events: {s:,} concurrent streams, one event a second for {seconds} s",
        "",
        "- client: one Python selectors loop in bench/run opens every stream (256 connecting "
        "at a time), sends `GET /events?count=T` and records, for each event, its arrival "
        "time − the `time.time()` the app wrote into it (same machine, same clock). The "
        "client's own scheduling is part of the figure: it shares the 2 CPUs with the server's "
        "threads",
        "- each open stream of the WSGI app (bench/apps/lab_sse.py) holds one app thread for its "
        "whole life (the WSGI contract: the server iterates the response in a thread); `app "
        "threads` is the `--threads` used. The ASGI rows serve bench/apps/lab_sse_asgi.py, the "
        "same stream as coroutines on the process's one asyncio loop: 0 app threads. "
        "`first event wait` is from sending the request to the first event: the time a stream "
        "queued for a free app thread",
        "",
        "| server | app threads | streams | delivering | complete | events received / expected "
        "| latency p50 | p99 | max | first event wait p50 | max | answers (status: count) | "
        "peak threads | peak RSS (PSS) | set-up |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sse_res:
        pk = r.get("peak") or {}
        st = ", ".join(f"{k if k != 'None' else 'none'}: {v:,}" for k, v in
                       sorted(r["statuses"].items()))
        lines.append(
            f"| {r['label']} | {r['threads']:,} | {r['streams']:,} | {r['started']:,} | "
            f"{r['complete']:,} | {r['events']:,} / {r['expected']:,} | {fms(r['p50'])} | "
            f"{fms(r['p99'])} | {fms(r['max'])} | {fms(r['wait_p50'])} | {fms(r['wait_max'])} | "
            f"{st} | {fnum(pk.get('threads'))} | {fmib(pk.get('rss'))} ({fmib(pk.get('pss'))}) | "
            f"{fnum(r.get('setup_s'), 1, ' s')} |")
    lines += ["", "Computed reading:", ""]
    for r in sse_res:
        frac = r["events"] / r["expected"] if r["expected"] else 0
        txt = (f"`{r['label']}`: {r['started']:,} of {r['streams']:,} streams delivered events "
               f"({frac * 100:.0f} % of the events expected in the time limit)")
        if 0 < r["threads"] < r["streams"]:
            txt += (f"; with {r['threads']:,} app threads at most {r['threads']:,} streams run "
                    "at once, the rest wait for a thread to finish a whole stream")
        lines.append(f"- {txt}.")
    if ws_res:
        lines += ws_hold.report_lines(ws_res, n_ws, seconds)
    lines += hand_notes("connections")
    lines += problems_lines(problems, "No problems seen: no server crashed or logged an error, "
                            "every server stopped on SIGTERM with exit code 0.")
    data = {"idle": idle_res, "sse": sse_res, "ws": ws_res, "problems": problems}
    return write_report(ctx.out_dir, "connections", lines, data, plot(idle_res, sse_res, ws_res))


def plot(idle_res, sse_res, ws_res=()):
    p = plt()
    if idle_res:
        fig, (a1, a2) = p.subplots(1, 2, figsize=(13, 5))
    else:  # a run of the streaming rows only (--only): no empty memory panel
        fig, a2 = p.subplots(1, 1, figsize=(7, 5))
    for r in idle_res:
        pts = sorted(set(r.get("curve") or []))
        if pts:
            a1.plot([x for x, _ in pts], [y / 1024 for _, y in pts], marker=".",
                    label=f"{r['label']} ({r.get('held', 0):,} held)")
    if idle_res:
        a1.set_xlabel("idle keep-alive connections held")
        a1.set_ylabel("server RSS, MiB (process tree)")
        a1.set_title("memory vs idle connections")
        a1.legend(fontsize=8)
    for r in sse_res:
        xs = r.get("lat_sample") or []
        if xs:
            a2.plot(xs, [i / len(xs) for i in range(len(xs))],
                    label=f"{r['label']} ({r['started']:,}/{r['streams']:,} streams)")
    for r in ws_res:
        xs = r.get("lat_sample") or []
        if xs:
            a2.plot(xs, [i / len(xs) for i in range(len(xs))], linestyle="--",
                    label=f"{r['label']} ({r['upgraded']:,}/{r['conns']:,} WebSockets)")
    a2.set_xscale("log")
    a2.set_xlabel("delivery latency, ms (log)")
    a2.set_ylabel("fraction of events")
    a2.set_title("SSE events / WebSocket messages: delivery latency (CDF)")
    a2.legend(fontsize=8)
    fig.tight_layout()
    return fig
