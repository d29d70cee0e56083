"""`bench/run connections`, WebSocket part: W WebSockets held at once by an ASGI app
(bench/apps/lab_ws_asgi.py) on `event` and `async`, each pushed one timestamped text
message a second for T seconds, then closed 1000 by the app.

Measured per model: how many handshakes got 101, how many connections got every message
and the close, the delivery latency of each message (arrival − the `time.time()` the app
wrote into it; client and server on one machine, one clock), the server's RSS before and
1 s after every connection was open (→ bytes per connection), and its peak threads/RSS.
WebSockets are ASGI-only in ironhorse, so there is no WSGI (thread per connection) row here;
the SSE table beside it has that comparison.
"""

import time

import stream_client
from harness.fmt import fmib, fms, fnum, pct
from harness.proc_stats import tree_snapshot

APP = "lab_ws_asgi:app"
MASK = b"\x01\x02\x03\x04"


def ws_models():
    """(label, args): the app is a coroutine per connection on the process's one loop."""
    return [
        ("event, ASGI WebSocket (one asyncio loop)", ["--model", "event"]),
        ("async, ASGI WebSocket (one asyncio loop)", ["--model", "async"]),
    ]


def handshake(seconds):
    return (f"GET /ws?count={seconds} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n").encode()


def close_reply(code):
    """The client's masked close frame echoing `code` (RFC 6455 §5.5.1)."""
    body = code.to_bytes(2, "big")
    return bytes([0x88, 0x80 | len(body)]) + MASK + bytes(
        b ^ MASK[i % 4] for i, b in enumerate(body))


class Conn(stream_client.Client):
    """One WebSocket: the handshake, then the app's text messages (each a latency) and
    its close, answered."""

    def __init__(self, sock, req, lat):
        super().__init__(sock)
        self.req, self.lat, self.buf = req, lat, b""
        self.messages, self.close_code = 0, None

    def setting_up(self):
        return self.state in ("connecting", "handshake")

    def on_connected(self):
        self.sock.send(self.req)
        self.state = "handshake"

    def on_data(self, data, now):
        self.buf += data
        if self.state == "handshake":
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buf.startswith(b"HTTP/1.1 101"):
                self.state, self.ended = "refused", True
                return
            self.buf, self.state = self.buf[end + 4:], "open"
        frames(self, now, self.lat)


def frames(c, now, lat):
    """Consume the complete server frames in c.buf (unmasked, payloads under 126 bytes)."""
    while len(c.buf) >= 2:
        opcode, n = c.buf[0] & 0x0F, c.buf[1] & 0x7F
        if n >= 126 or c.buf[1] & 0x80:
            c.state, c.ended = "bad frame", True
            return
        if len(c.buf) < 2 + n:
            return
        payload, c.buf = c.buf[2:2 + n], c.buf[2 + n:]
        if opcode == 0x1:
            lat.append((now - float(payload)) * 1000)
            c.messages += 1
        elif opcode == 0x8:
            c.close_code = int.from_bytes(payload[:2], "big") if n >= 2 else 1005
            try:
                c.sock.send(close_reply(c.close_code))
            except OSError:
                pass
            c.ended = True
            return
        elif opcode == 0x9:  # a keepalive ping (not expected within the run): answer it
            c.sock.send(bytes([0x8A, 0x80 | n]) + MASK + bytes(
                b ^ MASK[i % 4] for i, b in enumerate(payload)))


def run_ws(label, args, conns, seconds, connect, ctx, problems):
    """Hold `conns` WebSockets on one server; `connect(i, port)` opens a non-blocking socket
    (connections.py's, spreading source addresses) -> (sock or None, error)."""
    res = {"label": label, "conns": conns, "seconds": seconds}
    all_conns, lat = [], []  # every connection made (seen while drive runs), latencies
    server_pid = None

    def make(sock):
        all_conns.append(Conn(sock, req, lat))
        return all_conns[-1]

    def tick(now, set_up_at):
        # memory with every connection open: 1 s after the last handshake, once
        if set_up_at is not None and "with" not in res and now >= set_up_at + 1:
            res["with"] = tree_snapshot(server_pid)
            res["held_then"] = sum(1 for c in all_conns if c.state == "open" and not c.ended)

    def progress(clients):
        return f"{sum(1 for c in clients if c.state == 'open'):,} open, {len(lat):,} messages"

    def body(server):
        nonlocal server_pid
        server_pid = server.proc.pid
        time.sleep(0.5)
        res["base"] = tree_snapshot(server_pid)
        _, res["setup_s"] = stream_client.drive(
            conns, server.port, connect, make, seconds, label, problems, progress, tick)

    req = handshake(seconds)
    stream_client.serve_row(label, args, APP, ctx, problems, res, body)
    states = {}
    for c in all_conns:
        key = c.state if c.state != "open" else f"open, close {c.close_code or 'none'}"
        states[key] = states.get(key, 0) + 1
    res["states"] = states
    res["upgraded"] = sum(1 for c in all_conns if c.state in ("open", "bad frame"))
    res["complete"] = sum(1 for c in all_conns if c.messages >= seconds and c.close_code == 1000)
    res["messages"], res["expected"] = len(lat), conns * seconds
    res["p50"], res["p99"], res["max"] = pct(lat, 50), pct(lat, 99), (max(lat) if lat else None)
    res["lat_sample"] = sorted(lat)[:: max(1, len(lat) // 2000)]
    return res


def report_lines(ws_res, w, seconds):
    """The WebSocket table and its computed reading, for connections.md."""
    lines = [
        "",
        f"### WebSockets (ASGI): {w:,} held at once, one message a second for {seconds} s",
        "",
        "- client: the same selectors loop opens every WebSocket (256 connecting at a time; "
        "handshake `GET /ws?count=T`), answers the app's close, and records for each text "
        "message its arrival time − the `time.time()` the app wrote into it",
        "- app: bench/apps/lab_ws_asgi.py, each connection a coroutine on the process's one "
        "asyncio loop (no app thread); memory per connection = (RSS 1 s after the last "
        "handshake − RSS before the first) / connections open then",
        "",
        "| server | connections | upgraded (101) | complete (all messages + close 1000) | "
        "messages received / expected | latency p50 | p99 | max | RSS before | RSS held | "
        "bytes per connection (RSS) | peak threads | peak RSS (PSS) | set-up | end states |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in ws_res:
        base, held, pk = r.get("base") or {}, r.get("with") or {}, r.get("peak") or {}
        per = ((held["rss"] - base["rss"]) * 1024 / r["held_then"]
               if r.get("held_then") and held.get("rss") and base.get("rss") else None)
        r["per_conn"] = per
        st = ", ".join(f"{k}: {v:,}" for k, v in sorted(r["states"].items()))
        lines.append(
            f"| {r['label']} | {r['conns']:,} | {r['upgraded']:,} | {r['complete']:,} | "
            f"{r['messages']:,} / {r['expected']:,} | {fms(r['p50'])} | {fms(r['p99'])} | "
            f"{fms(r['max'])} | {fmib(base.get('rss'))} | {fmib(held.get('rss'))} | "
            f"{fnum(per)} | {fnum(pk.get('threads'))} | {fmib(pk.get('rss'))} "
            f"({fmib(pk.get('pss'))}) | {fnum(r.get('setup_s'), 1, ' s')} | {st} |")
    lines += ["", "Computed reading:", ""]
    for r in ws_res:
        frac = r["messages"] / r["expected"] if r["expected"] else 0
        lines.append(f"- `{r['label']}`: {r['upgraded']:,} of {r['conns']:,} upgraded, "
                     f"{r['complete']:,} got every message and the close "
                     f"({frac * 100:.0f} % of the messages expected in the time limit).")
    return lines
