"""The model lab's streaming client loop, shared by the SSE and WebSocket rows of
`bench/run connections`: open N connections (256 connecting at a time), send each its
request once connected, and feed what each reads to its own parser until every one has
ended or the time is up. One selectors loop in this process, so the client's own
scheduling is part of every latency it records.
"""

import selectors
import socket
import time

from harness.app_server import Server
from harness.proc_stats import TreeSampler
from harness.procs import lab_log as log

IN_FLIGHT = 256  # connections being set up at once
SETUP_LIMIT = 60  # seconds to open them all


class Client:
    """One connection. Subclasses set `request` handling in `on_connected` (send it) and
    parse in `on_data`; both set `self.ended` when the connection is done."""

    def __init__(self, sock):
        self.sock, self.state, self.ended = sock, "connecting", False

    def on_connected(self):
        """The connect finished: send the request. Sets state "failed" on an error."""
        raise NotImplementedError

    def on_data(self, data, now):
        """Bytes read at wall-clock `now` (time.time())."""
        raise NotImplementedError

    def setting_up(self):
        """True while this connection still counts as being set up (connect, handshake)."""
        return self.state == "connecting"


def _step(c, sel):
    """One readiness event of client c."""
    if c.state == "connecting":
        if c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            c.state, c.ended = "failed", True
            return
        try:
            c.on_connected()
        except OSError:
            c.state, c.ended = "failed", True
            return
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
    c.on_data(data, time.time())


def drive(n, port, connect, make, seconds, label, problems, progress, tick=None):
    """Run n clients `make(sock)` against `port`; `connect(i, port)` -> (sock or None, error).
    Ends when every client has ended, or `seconds` + 10 s after the last one was set up
    (60 + seconds + 15 s at most). `progress(clients)` is logged every 5 s; `tick(now, set_up_at)`
    runs after every loop turn. Returns (clients, set-up seconds or None); the sockets are
    closed on return."""
    sel = selectors.DefaultSelector()
    clients = []
    t0 = time.monotonic()
    opened = setting_up = 0
    end_by, set_up_at, next_note = t0 + SETUP_LIMIT + seconds + 15, None, t0 + 5
    try:
        while time.monotonic() < end_by:
            while (opened < n and setting_up < IN_FLIGHT
                   and time.monotonic() < t0 + SETUP_LIMIT):
                s, err = connect(opened, port)
                opened += 1
                if s is None:
                    problems.append(f"{label}: connection {opened}: {err}")
                    continue
                c = make(s)
                clients.append(c)
                sel.register(s, selectors.EVENT_WRITE, c)
                setting_up += 1
            for key, _ev in sel.select(timeout=0.2):
                c = key.data
                was = c.setting_up()
                _step(c, sel)
                setting_up -= was and (c.ended or not c.setting_up())
                if c.ended:
                    sel.unregister(c.sock)
            now = time.monotonic()
            if set_up_at is None and opened >= n and setting_up == 0:
                set_up_at = now
                end_by = min(end_by, now + seconds + 10)
            if tick is not None:
                tick(now, set_up_at)
            if now >= next_note:
                log(f"  {label}: {progress(clients)}")
                next_note += 5
            if set_up_at is not None and all(c.ended for c in clients):
                break
    finally:
        for c in clients:
            try:
                c.sock.close()
            except OSError:
                pass
        sel.close()
    return clients, (set_up_at - t0 if set_up_at is not None else None)


def serve_row(label, args, app, ctx, problems, res, body):
    """One table row: start `app` on ironhorse with `args` (+ `--keep-alive 300`), sample its
    process tree's peaks into res["peak"] while `body(server)` runs, record any failure in
    problems, and stop the server whatever happened."""
    server = sampler = None
    try:
        server = Server(label, args + ["--keep-alive", "300"], app, ctx.tmp, problems)
        sampler = TreeSampler(server.proc.pid, interval=0.5)
        sampler.start()
        body(server)
        if not server.alive():
            problems.append(f"{label}: server exited with {server.proc.returncode}")
    except Exception as e:  # noqa: BLE001 - the other rows still run
        problems.append(f"{label}: {type(e).__name__}: {e}")
    finally:
        if sampler is not None:
            res["peak"] = sampler.finish()
        if server is not None:
            server.stop()
