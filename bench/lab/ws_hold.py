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

import selectors
import socket
import time

from harness.app_server import Server
from harness.fmt import fmib, fms, fnum, pct
from harness.proc_stats import TreeSampler, tree_snapshot
from harness.procs import lab_log as log

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


class Conn:
    __slots__ = ("sock", "buf", "state", "messages", "close_code", "ended")

    def __init__(self, sock):
        self.sock, self.buf, self.state = sock, b"", "connecting"
        self.messages, self.close_code, self.ended = 0, None, False


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


def _step(c, sel, req, lat):
    """One readiness event of connection c: connect done, handshake answer, or frames."""
    if c.state == "connecting":
        if c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            c.state, c.ended = "failed", True
            return
        try:
            c.sock.send(req)
        except OSError:
            c.state, c.ended = "failed", True
            return
        c.state = "handshake"
        sel.modify(c.sock, selectors.EVENT_READ, c)
        return
    try:
        data = c.sock.recv(65536)
    except BlockingIOError:
        return
    except OSError:
        data = b""
    if not data:
        c.ended = True
        return
    c.buf += data
    if c.state == "handshake":
        end = c.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        if not c.buf.startswith(b"HTTP/1.1 101"):
            c.state, c.ended = "refused", True
            return
        c.buf, c.state = c.buf[end + 4:], "open"
    frames(c, time.time(), lat)


def run_ws(label, args, conns, seconds, connect, ctx, problems):
    """Hold `conns` WebSockets on one server; `connect(i, port)` opens a non-blocking socket
    (connections.py's, spreading source addresses) -> (sock or None, error)."""
    res = {"label": label, "conns": conns, "seconds": seconds}
    server = sampler = None
    sel = selectors.DefaultSelector()
    all_conns, lat = [], []
    try:
        server = Server(label, args + ["--keep-alive", "300"], APP, ctx.tmp, problems)
        time.sleep(0.5)
        res["base"] = tree_snapshot(server.proc.pid)
        sampler = TreeSampler(server.proc.pid, interval=0.5)
        sampler.start()
        req = handshake(seconds)
        t0 = time.monotonic()
        opened = connecting = 0
        end_by, all_open_at, next_note = t0 + 60 + seconds + 15, None, t0 + 5
        while time.monotonic() < end_by:
            while opened < conns and connecting < 256 and time.monotonic() < t0 + 60:
                s, err = connect(opened, server.port)
                opened += 1
                if s is None:
                    problems.append(f"{label}: connection {opened}: {err}")
                    continue
                c = Conn(s)
                all_conns.append(c)
                sel.register(s, selectors.EVENT_WRITE, c)
                connecting += 1
            for key, _ev in sel.select(timeout=0.2):
                c = key.data
                was = c.state
                _step(c, sel, req, lat)
                connecting -= was in ("connecting", "handshake") and c.state not in (
                    "connecting", "handshake")
                if c.ended:
                    sel.unregister(c.sock)
            now = time.monotonic()
            if all_open_at is None and opened >= conns and connecting == 0:
                all_open_at = now
                res["setup_s"] = now - t0
                end_by = min(end_by, now + seconds + 10)
            if all_open_at is not None and "with" not in res and now >= all_open_at + 1:
                res["with"] = tree_snapshot(server.proc.pid)
                res["held_then"] = sum(1 for c in all_conns if c.state == "open" and not c.ended)
            if now >= next_note:
                log(f"  {label}: {sum(1 for c in all_conns if c.state == 'open'):,} open, "
                    f"{len(lat):,} messages")
                next_note += 5
            if all_open_at is not None and all(c.ended for c in all_conns):
                break
        if not server.alive():
            problems.append(f"{label}: server exited with {server.proc.returncode}")
    except Exception as e:  # noqa: BLE001
        problems.append(f"{label}: {type(e).__name__}: {e}")
    finally:
        for c in all_conns:
            c.sock.close()
        sel.close()
        if sampler is not None:
            res["peak"] = sampler.finish()
        if server is not None:
            server.stop()
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
