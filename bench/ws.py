#!/usr/bin/env python3
"""WebSocket echo, one process each: ironhorse (event, async; uvloop) against uvicorn
(uvloop, httptools, websockets) and Granian (--interface asgi), the same ASGI app
(bench/apps/asgi_ws_echo.py), same run.

    python3 bench/ws.py                        # 5 s runs, 2 rounds, 1/50/500 connections
    python3 bench/ws.py --quick                # 1 s runs, 1 round, 1/50 connections
    python3 bench/ws.py --rounds 4 --conns 1,50,500 --duration 5 --out /tmp/ws.md

The load client (this file with --client, on uvloop) opens N WebSockets, then each sends a
32-byte text message, waits for its echo and sends the next (one in flight per connection).
Servers pinned to CPU 0, the client to CPU 1; each round runs every server once per
connection count, the order reversed every other round. Reported per server and count, as
median [min–max] over the rounds: messages/s (echoes completed), p99 of the per-message
round trip the client measures (send → echo back), and the server's CPU µs per message (its
process tree's utime+stime while the messages flowed / messages): the steadier figure on a
shared host. Then the same-round ratios of ironhorse event to each peer. Peers come from PyPI into bench/.venv-asgi (shared with bench/asgi.py).
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

APP = "asgi_ws_echo:app"
PAYLOAD = b"x" * 32
MASK = b"\x01\x02\x03\x04"
# A masked text frame from the client; the server's echo is the same, unmasked.
FRAME = bytes([0x81, 0x80 | len(PAYLOAD)]) + MASK + bytes(
    b ^ MASK[i % 4] for i, b in enumerate(PAYLOAD))
HANDSHAKE = (b"GET /echo HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


# ---- the load client (runs as its own process: `ws.py --client HOST:PORT N`) ----

class Echoer(asyncio.Protocol):
    """One connection: handshake, then send → echo → send while the run lasts."""

    def __init__(self, run):
        self.run, self.buf, self.upgraded = run, bytearray(), False
        self.opened = asyncio.get_running_loop().create_future()
        self.sent_at = 0.0

    def connection_made(self, transport):
        self.transport = transport
        transport.write(HANDSHAKE)

    def connection_lost(self, exc):
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed during the handshake: {exc}"))
        elif self.run["on"]:
            self.run["errors"] += 1

    def data_received(self, data):
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buf.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(ConnectionError(bytes(self.buf[:60]).decode()))
                return
            del self.buf[:end + 4]
            self.upgraded = True
            self.opened.set_result(self)
        while len(self.buf) >= 2:
            opcode, n = self.buf[0] & 0x0F, self.buf[1] & 0x7F
            if n >= 126 or len(self.buf) < 2 + n:
                if n >= 126:
                    self.run["errors"] += 1
                    self.transport.close()
                return
            payload = bytes(self.buf[2:2 + n])
            del self.buf[:2 + n]
            if opcode == 0x9:  # a keepalive ping: answer it (masked pong)
                self.transport.write(bytes([0x8A, 0x80 | n]) + MASK + bytes(
                    b ^ MASK[i % 4] for i, b in enumerate(payload)))
            elif opcode == 0x1 and payload == PAYLOAD:
                self.echoed()
            else:
                self.run["errors"] += 1

    def echoed(self):
        now = time.perf_counter()
        if self.run["on"]:
            self.run["count"] += 1
            self.run["rtts"].append(now - self.sent_at)
            self.send()

    def send(self):
        self.sent_at = time.perf_counter()
        self.transport.write(FRAME)


async def client(addr, conns, duration):
    host, port = addr.rsplit(":", 1)
    loop = asyncio.get_running_loop()
    run = {"on": False, "count": 0, "rtts": [], "errors": 0}
    echoers = []
    for start in range(0, conns, 100):
        made = await asyncio.gather(*(loop.create_connection(lambda: Echoer(run), host, int(port))
                                      for _ in range(start, min(conns, start + 100))))
        echoers += [p for _, p in made]
        await asyncio.gather(*(p.opened for p in echoers[start:]))
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)  # "go"
    run["on"] = True
    t0 = time.perf_counter()
    for p in echoers:
        p.send()
    await asyncio.sleep(duration)
    run["on"] = False
    seconds = time.perf_counter() - t0
    rtts = sorted(run["rtts"])
    pct = lambda q: rtts[min(len(rtts) - 1, int(q * len(rtts)))] * 1000 if rtts else None  # noqa: E731
    for p in echoers:
        p.transport.close()
    print(json.dumps({"messages": run["count"], "seconds": seconds, "p50_ms": pct(0.5),
                      "p99_ms": pct(0.99), "errors": run["errors"]}), flush=True)


def client_main(addr, conns, duration):
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(client(addr, int(conns), float(duration)))


# ---- the benchmark ----

def servers(ironhorse, venv_bin, apps):
    ih = lambda model: lambda port: [  # noqa: E731
        ironhorse, APP, "--chdir", apps, "-b", f"127.0.0.1:{port}", "--model", model,
        "--virtualenv", os.path.dirname(os.path.dirname(venv_bin("python"))),
        "--loop", "uvloop", "--log-level", "warning", "--max-connections", "2000"]
    return [
        ("ironhorse event (uvloop)", ih("event")),
        ("ironhorse async (uvloop)", ih("async")),
        ("uvicorn --loop uvloop --http httptools --ws websockets", lambda port: [
            venv_bin("uvicorn"), APP, "--app-dir", apps, "--port", str(port), "--loop", "uvloop",
            "--http", "httptools", "--ws", "websockets", "--no-access-log",
            "--log-level", "warning"]),
        ("granian --interface asgi --workers 1", lambda port: [
            venv_bin("granian"), "--interface", "asgi", "--workers", "1", "--port", str(port),
            "--working-dir", apps, "--no-access-log", "--log-level", "warning", APP]),
    ]


def one_run(label, argv, conns, duration, pins, tmp, venv_bin):
    from harness import procs
    from harness.proc_stats import CpuMeter
    port = procs.free_port()
    env = procs.server_env()
    env["PYTHONPATH"] = os.path.join(HERE, "apps")
    p = procs.spawn(procs.pinned(argv(port), pins[0]), os.path.join(tmp, "server.log"), env=env)
    load = None
    try:
        procs.wait_for_port("127.0.0.1", port, p, timeout=30)
        load = subprocess.Popen(
            procs.pinned([venv_bin("python"), os.path.abspath(__file__), "--client",
                          f"127.0.0.1:{port}", str(conns), str(duration)], pins[1]),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.track(load)
        if load.stdout.readline().strip() != "ready":
            return {"label": label, "error": "the client could not connect"}
        meter = CpuMeter(p.pid)
        load.stdin.write("go\n")
        load.stdin.flush()
        line = load.stdout.readline()
        cpu = meter.stop()
        res = json.loads(line) if line else {"error": "the client failed"}
        res["label"] = label
        if res.get("messages"):
            res["rate"] = res["messages"] / res["seconds"]
            res["cpu_us"] = cpu * 1e6 / res["messages"]
        if res.get("errors"):
            res["error"] = f"{res['errors']} bad frames or lost connections"
        return res
    finally:
        if load is not None:
            procs.stop(load)
        procs.stop(p)


def table(specs, counts, runs, spread):
    """Per server and count: median [min–max over rounds] of rate, p99 and CPU/message."""
    lines = ["| server | connections | messages/s median [min–max] | p99 ms median [min–max] | "
             "server CPU µs/message median [min–max] |", "|---|---|---|---|---|"]
    for label, _ in specs:
        for n in counts:
            ok = [x for x in runs[(label, n)] if not x.get("error")]
            rate, p99, cpu = (spread([x.get(k) for x in ok], f) for k, f in (
                ("rate", "{:,.0f}"), ("p99_ms", "{:.1f}"), ("cpu_us", "{:.1f}")))
            lines.append(f"| {label} | {n} | {rate} | {p99} | {cpu} |")
    return lines


def ratios(specs, counts, runs, spread):
    """Same-round ratios of ironhorse event to each peer: messages/s, and the peer's CPU
    per message and p99 over ironhorse's (above 1 = ironhorse better), median [min–max]."""
    lines = ["| connections | ironhorse event / peer | messages/s ratio | peer CPU/message ÷ "
             "ironhorse's | peer p99 ÷ ironhorse's |", "|---|---|---|---|---|"]
    ratio = lambda a, b: a / b if a and b else None  # noqa: E731
    base_label = specs[0][0]
    for n in counts:
        for label, _ in specs[2:]:
            pairs = [(a, b) for a, b in zip(runs[(base_label, n)], runs[(label, n)])
                     if not a.get("error") and not b.get("error")]
            cells = [spread([ratio(a.get(ka), b.get(kb)) for a, b in
                             (pairs if k == "rate" else [(b, a) for a, b in pairs])], "{:.2f}×")
                     for k, ka, kb in (("rate", "rate", "rate"), ("cpu", "cpu_us", "cpu_us"),
                                       ("p99", "p99_ms", "p99_ms"))]
            lines.append(f"| {n} | {label.split()[0]} | " + " | ".join(cells) + " |")
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--conns", default="1,50,500")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.duration, args.conns = 1, 1, "1,50"
    counts = [int(n) for n in args.conns.split(",")]
    import asgi
    from harness import binaries, procs, tools
    procs.install_signal_handlers()
    versions = asgi.install_peers(extra=["websockets"])
    tools.build_ironhorse()
    tools.raise_nofile()
    _, pins = tools.cpu_pins()
    tmp = procs.new_tmpdir("ws-bench-")
    specs = servers(binaries.DEFAULT, asgi.venv_bin, os.path.join(HERE, "apps"))
    runs = {(label, n): [] for label, _ in specs for n in counts}
    load_before = os.getloadavg()
    try:
        for r in range(args.rounds):
            order = specs if r % 2 == 0 else list(reversed(specs))
            for n in counts:
                for label, argv in order:
                    res = one_run(label, argv, n, args.duration, pins, tmp, asgi.venv_bin)
                    print(f"round {r + 1}: {label} ×{n}: {res.get('rate', 0):,.0f} msg/s, "
                          f"{res.get('cpu_us')} µs CPU/msg"
                          f"{'  ERROR ' + res['error'] if res.get('error') else ''}",
                          file=sys.stderr)
                    runs[(label, n)].append(res)
    finally:
        procs.stop_all()
    lines = table(specs, counts, runs, asgi.spread)
    lines.append("")
    lines += ratios(specs, counts, runs, asgi.spread)
    lines.append("")
    peers = ["uvicorn", "httptools", "uvloop", "websockets", "granian"]
    lines.append("Versions: " + ", ".join(f"{p} {versions.get(p, '?')}" for p in peers))
    lines.append(f"Command: python3 bench/ws.py --rounds {args.rounds} --duration {args.duration}"
                 f" --conns {args.conns}; server on CPU {pins[0]}, client on CPU {pins[1]}; "
                 f"load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        client_main(*sys.argv[2:5])
    else:
        main()
