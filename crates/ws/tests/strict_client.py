"""Strict WebSocket clients (websockets, wsproto) against the engine's echo server.

Usage: strict_client.py PORT SCENARIO. Prints one line per check; exits non-zero (with a
traceback) on the first failed check. The server (tests/strict_client.rs) echoes every
message, answers the text "stats" with its wire byte counts as JSON, and on the text
"close:CODE:REASON" starts the closing handshake itself with that code.
"""

import json
import os
import socket
import struct
import sys

from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.sync.client import connect
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    Request,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason

PORT = int(sys.argv[1])
URL = f"ws://127.0.0.1:{PORT}/echo"
TIMEOUT = 60  # a safety net for a hung server, not a speed bound


def check(name, ok, detail=""):
    if not ok:
        raise AssertionError(f"{name}: {detail}")
    print(f"ok {name}")


def ws_connect(**kw):
    kw.setdefault("max_size", 4 << 20)
    kw.setdefault("open_timeout", TIMEOUT)
    kw.setdefault("close_timeout", TIMEOUT)
    return connect(URL, **kw)


def extensions_of(ws):
    return ws.response.headers.get("Sec-WebSocket-Extensions")


def stats(ws):
    ws.send("stats")
    return json.loads(ws.recv(timeout=TIMEOUT))


def echo_all(ws, messages):
    for m in messages:
        ws.send(m)
        got = ws.recv(timeout=TIMEOUT)
        check(f"echo {type(m).__name__} of {len(m)}", got == m, f"{got[:40]!r}")


MESSAGES = ["hello", "", "unicode: héllo €😀", b"\x00\x01\xfe\xff", b"", "x" * 200]


def scenario_echo_plain():
    with ws_connect(compression=None) as ws:
        check("no extension without an offer", extensions_of(ws) is None)
        echo_all(ws, MESSAGES)
        big = os.urandom(1 << 20)
        echo_all(ws, [big, "y" * (1 << 20)])
        s = stats(ws)
        check("1 MiB crossed uncompressed", s["bytes_in"] > 2 << 20, s)


def scenario_echo_deflate():
    with ws_connect() as ws:  # websockets offers permessage-deflate by default
        ext = extensions_of(ws) or ""
        check("deflate negotiated", ext.startswith("permessage-deflate"), ext)
        echo_all(ws, MESSAGES)
        before = stats(ws)
        text = "compressible text " * 60000  # ~1 MiB
        echo_all(ws, [text, text.encode()])
        after = stats(ws)
        sent = after["bytes_in"] - before["bytes_in"]
        echoed = after["bytes_out"] - before["bytes_out"]
        check("client's messages arrived compressed", sent < 100_000, after)
        check("server's echoes went out compressed", echoed < 100_000, after)
        echo_all(ws, [os.urandom(100_000)])  # incompressible: still round-trips


def scenario_deflate_params():
    factory = ClientPerMessageDeflateFactory(
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        server_max_window_bits=10,
        client_max_window_bits=11,
    )
    with ws_connect(compression=None, extensions=[factory]) as ws:
        ext = extensions_of(ws) or ""
        check("server_no_context_takeover accepted", "server_no_context_takeover" in ext, ext)
        check("server_max_window_bits honoured", "server_max_window_bits=10" in ext, ext)
        echo_all(ws, ["abc" * 1000, "abc" * 1000, b"\x00" * 50_000])
    # An offer naming the default window must get it named back (websockets insists).
    for params in (dict(server_max_window_bits=15), dict(client_no_context_takeover=True)):
        factory = ClientPerMessageDeflateFactory(**params)
        with ws_connect(compression=None, extensions=[factory]) as ws:
            check(f"deflate with {params}", (extensions_of(ws) or "").startswith("permessage-deflate"))
            echo_all(ws, ["abc" * 1000, "abc" * 1000])


def scenario_fragmented():
    with ws_connect() as ws:
        ws.send(["frag", "men", "ted ", "€"])  # websockets sends an iterable as fragments
        check("websockets fragments", ws.recv(timeout=TIMEOUT) == "fragmented €")
        ws.send([b"\x01", b"", b"\x02"])
        check("websockets binary fragments", ws.recv(timeout=TIMEOUT) == b"\x01\x02")
    for deflate in (False, True):
        c = WsprotoClient(deflate)
        c.send(TextMessage(data="one ", message_finished=False))
        c.send(Ping(payload=b"between"))
        c.send(TextMessage(data="two ", message_finished=False))
        c.send(TextMessage(data="three", message_finished=True))
        c.send(BytesMessage(data=b"A" * 70_000, message_finished=False))
        c.send(BytesMessage(data=b"B" * 10, message_finished=True))
        events = c.events_until(lambda evs: count_messages(evs) == 2)
        pongs = [e for e in events if isinstance(e, Pong)]
        check(f"pong during a fragmented message (deflate={deflate})", [p.payload for p in pongs] == [b"between"], events)
        check(f"wsproto fragments (deflate={deflate})", c.joined(events) == ["one two three", b"A" * 70_000 + b"B" * 10])
        c.close(1000)


def count_messages(events):
    return sum(1 for e in events if isinstance(e, (TextMessage, BytesMessage)) and e.message_finished)


def scenario_ping():
    with ws_connect() as ws:
        waiter = ws.ping(b"are you there")
        check("websockets ping answered", waiter.wait(TIMEOUT))
        latency = ws.ping()
        check("empty ping answered", latency.wait(TIMEOUT))
    c = WsprotoClient(False)
    c.send(Ping(payload=b"p" * 125))
    events = c.events_until(lambda evs: any(isinstance(e, Pong) for e in evs))
    check("wsproto pong echoes the payload", [e.payload for e in events if isinstance(e, Pong)] == [b"p" * 125])
    c.close(1000)


def scenario_close_codes():
    for code, reason in [(1000, ""), (1001, "going away"), (4001, "app code"), (3000, "é")]:
        ws = ws_connect()
        ws.close(code, reason)
        check(f"client close {code} echoed", ws.protocol.close_rcvd.code == code, ws.protocol.close_rcvd)
    for code in (1000, 1011, 4002):
        with ws_connect() as ws:
            ws.send(f"close:{code}:server says bye")
            try:
                ws.recv(timeout=TIMEOUT)
                check(f"server close {code}", False, "a message instead of a close")
            except (ConnectionClosedOK, ConnectionClosedError) as e:
                check(f"server close {code}", e.rcvd is not None and e.rcvd.code == code, e)
                check(f"server close reason {code}", e.rcvd.reason == "server says bye", e)
                check("closing handshake completed", e.rcvd_then_sent is True, e)
    c = WsprotoClient(False)
    c.close(None)  # a close without a code
    check("code-less close answered with 1000", c.closed_by_server.code == 1000, c.closed_by_server)


def expect_server_close(ws, code):
    try:
        ws.recv(timeout=TIMEOUT)
        check(f"close {code}", False, "a message instead of a close")
    except ConnectionClosedError as e:
        check(f"close {code} seen by websockets", e.rcvd is not None and e.rcvd.code == code, e)


def scenario_invalid_utf8():
    with ws_connect(compression=None) as ws:
        ws.send(b"valid until \xff", text=True)
        expect_server_close(ws, 1007)
    with ws_connect() as ws:  # compressed, then invalid once inflated
        ws.send(b"\xc0\xaf" * 100, text=True)
        expect_server_close(ws, 1007)
    c = WsprotoClient(False)
    c.raw(masked_frame(0x01, b"caf\xc3"), wait_close=False)  # unfinished, then a bad byte
    c.raw(masked_frame(0x80, b"\x28"))
    check("wsproto sees 1007", c.closed_by_server.code == 1007, c.closed_by_server)


def scenario_unmasked():
    c = WsprotoClient(False)
    c.raw(b"\x81\x05hello")
    check("unmasked frame closed with 1002", c.closed_by_server.code == 1002, c.closed_by_server)
    c = WsprotoClient(False)
    c.raw(masked_frame(0x83, b""))  # reserved opcode
    check("reserved opcode closed with 1002", c.closed_by_server.code == 1002, c.closed_by_server)


def scenario_oversized():
    with ws_connect(compression=None) as ws:
        ws.send(b"z" * (3 << 20))  # the server's limit is 2 MiB
        expect_server_close(ws, 1009)
    with ws_connect() as ws:  # compressed: small on the wire, too big inflated
        ws.send("z" * (3 << 20))
        expect_server_close(ws, 1009)


def masked_frame(first_byte, payload):
    mask = b"\x11\x22\x33\x44"
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", first_byte, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", first_byte, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", first_byte, 0x80 | 127, n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class WsprotoClient:
    """A wsproto client over a plain socket (wsproto parses everything the server sends)."""

    def __init__(self, deflate):
        self.sock = socket.create_connection(("127.0.0.1", PORT), timeout=TIMEOUT)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.closed_by_server = None
        exts = [PerMessageDeflate()] if deflate else []
        self.sock.sendall(self.ws.send(Request(host=f"127.0.0.1:{PORT}", target="/echo", extensions=exts)))
        events = self.events_until(lambda evs: any(isinstance(e, AcceptConnection) for e in evs))
        accept = next(e for e in events if isinstance(e, AcceptConnection))
        check(f"wsproto handshake (deflate={deflate})", bool(accept.extensions) == deflate, accept)

    def send(self, event):
        self.sock.sendall(self.ws.send(event))

    def events_until(self, done):
        events = []
        while not done(events):
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError(f"server closed the socket; events so far: {events}")
            self.ws.receive_data(data)
            for e in self.ws.events():
                events.append(e)
                if isinstance(e, CloseConnection):
                    self.closed_by_server = e
                    if self.ws.state.name != "CLOSED":
                        self.sock.sendall(self.ws.send(e.response()))
                    return events
        return events

    @staticmethod
    def joined(events):
        out, parts = [], []
        for e in events:
            if isinstance(e, (TextMessage, BytesMessage)):
                parts.append(e.data)
                if e.message_finished:
                    out.append(type(e.data)().join(parts))
                    parts = []
        return out

    def raw(self, data, wait_close=True):
        """Writes raw bytes after the handshake, then (by default) reads until the close."""
        self.sock.sendall(data)
        if wait_close:
            self.events_until(lambda evs: False)

    def close(self, code):
        self.send(CloseConnection(code=code if code else CloseReason.NO_STATUS_RCVD))
        self.events_until(lambda evs: False)
        self.sock.close()


if __name__ == "__main__":
    globals()["scenario_" + sys.argv[2]]()
    print("PASS", sys.argv[2])
