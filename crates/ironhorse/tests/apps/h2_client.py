"""A strict HTTP/2 client for the integration tests, on the `h2` package (which checks every
frame and window the server sends). One connection per run, prior knowledge (h2c); prints
one JSON line with what happened, so the Rust test asserts on it.

    h2_client.py ADDR streams N PATH          N concurrent GETs on one connection
    h2_client.py ADDR download PATH           one GET, body hashed (small window: the server
                                              must wait for our WINDOW_UPDATEs)
    h2_client.py ADDR upload PATH SIZE [unsized]  POST SIZE bytes (respecting the server's
                                              windows); "unsized": no content-length
    h2_client.py ADDR reset PATH SIZE         an upload reset mid-body, then GET / on the
                                              same connection
    h2_client.py ADDR goaway PATH N           N GETs of a slow path; prints "ready" once each
                                              has its first bytes and "goaway" when GOAWAY
                                              comes, then waits for all to end
    h2_client.py ADDR idle PATH               one GET, then waits for the server to close
    h2_client.py ADDR malformed KIND          raw bad frames; reports the GOAWAY error code
    h2_client.py ADDR flood KIND              rapid-reset or ping flood; reports how the
                                              connection ended
    h2_client.py ADDR stall PATH SENT LEN AFTER  one request (a GET when LEN is -1, else a
                                              POST declaring LEN bytes and sending SENT of
                                              them, never ending): waits for its end or
                                              reset, then GET AFTER on the same connection
    h2_client.py ADDR uploads N PATH SIZE     N concurrent POSTs of SIZE bytes each
    h2_client.py ADDR hangup PATH AFTER       a GET reset (CANCEL) once its first bytes
                                              came, then GET AFTER on the same connection
    h2_client.py ADDR continue PATH SIZE      POST SIZE bytes with expect: 100-continue,
                                              the body sent only after the interim 100
    h2_client.py ADDR upgrade PATH AFTER      HTTP/1.1 GET PATH with Upgrade: h2c; after the
                                              101, the answer on stream 1, then GET AFTER
                                              as stream 3
"""
import hashlib
import json
import os
import ssl
import socket
import struct
import sys

import h2.config
import h2.connection
import h2.events
import h2.exceptions

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def pattern(size):
    """Deterministic bytes, the same as the Rust side computes."""
    block = hashlib.sha256(b"ironhorse").digest() * 2048  # 64 KiB
    whole, rest = divmod(size, len(block))
    return block * whole + block[:rest]


class Client:
    def __init__(self, addr, window=None, upgrade=None):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if os.environ.get("H2_CLIENT_TLS"):
            # Over TLS, h2 chosen by ALPN; the test's own CA is not checked here.
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            context.set_alpn_protocols(["h2"])
            self.sock = context.wrap_socket(self.sock, server_hostname="localhost")
            assert self.sock.selected_alpn_protocol() == "h2"
        self.authority = addr
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=config)
        self.pending = b""
        if upgrade:
            self.upgrade_status = self.upgrade(upgrade)
        else:
            self.conn.initiate_connection()
        if window:
            self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.flush()
        self.responses = {}
        self.terminated = None
        self.closed = False
        if upgrade:
            # Stream 1 is the upgrading request, half-closed by the client already.
            self.responses[1] = {"status": None, "hash": hashlib.sha256(), "size": 0,
                                 "ended": False, "reset": None, "body": b""}

    def upgrade(self, path):
        """HTTP/1.1 GET `path` asking for h2c (RFC 7540 §3.2); the 101's status line."""
        settings = self.conn.initiate_upgrade_connection()
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {self.authority}\r\n"
            "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n".encode()
            + b"HTTP2-Settings: " + settings + b"\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            data = self.sock.recv(65536)
            if not data:
                return head.decode("latin-1")
            head += data
        head, self.pending = head.split(b"\r\n\r\n", 1)
        status = head.split(b"\r\n")[0].decode("latin-1")
        if " 101 " in status + " ":
            # The preface and SETTINGS, prepared by initiate_upgrade_connection.
            self.sock.sendall(self.conn.data_to_send())
        return status

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, method, path, end_stream=True, headers=()):
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(
            sid,
            [(":method", method), (":path", path), (":scheme", "http"),
             (":authority", self.authority), *headers],
            end_stream=end_stream,
        )
        self.responses[sid] = {"status": None, "hash": hashlib.sha256(), "size": 0,
                               "ended": False, "reset": None, "body": b""}
        return sid

    def pump(self, consume=True):
        """Reads once and handles the frames; False at end of input. Frames go to the h2
        state machine one at a time until a GOAWAY: h2 (4.1) then treats the connection as
        closed, although a graceful GOAWAY lets open streams finish (RFC 9113 §6.8), so
        the frames after it are read here (DATA, RST_STREAM, PING, GOAWAY)."""
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLEOFError):
            # (Over TLS an end without close_notify is an SSLEOFError: still the end.)
            data = b""
        if not data:
            self.closed = True
            return False
        self.pending += data
        self.take_frames(consume)
        return True

    def take_frames(self, consume=True):
        """Handles the whole frames received so far."""
        while len(self.pending) >= 9:
            length = int.from_bytes(self.pending[:3], "big")
            if len(self.pending) < 9 + length:
                break
            raw, self.pending = self.pending[:9 + length], self.pending[9 + length:]
            if self.terminated is None:
                for event in self.conn.receive_data(raw):
                    self.handle(event, consume)
                self.flush()
            else:
                self.after_goaway(raw)

    def after_goaway(self, raw):
        kind, flags = raw[3], raw[4]
        sid = struct.unpack(">I", raw[5:9])[0] & 0x7FFFFFFF
        payload = raw[9:]
        r = self.responses.get(sid)
        if kind == 0x0 and r is not None:
            r["hash"].update(payload)
            r["size"] += len(payload)
            r["ended"] = r["ended"] or bool(flags & 0x1)
        elif kind == 0x1 and r is not None:
            r["ended"] = r["ended"] or bool(flags & 0x1)
        elif kind == 0x3 and r is not None:
            r["reset"] = struct.unpack(">I", payload)[0]
        elif kind == 0x6 and not flags & 0x1:
            self.sock.sendall(frame(0x6, 0x1, 0, payload))
        elif kind == 0x7:
            self.terminated = {"error": struct.unpack(">I", payload[4:8])[0],
                               "last_stream": struct.unpack(">I", payload[:4])[0]}

    def handle(self, event, consume):
        if isinstance(event, h2.events.ResponseReceived):
            self.responses[event.stream_id]["status"] = int(dict(event.headers)[":status"])
        elif isinstance(event, h2.events.InformationalResponseReceived):
            r = self.responses[event.stream_id]
            r.setdefault("informational", []).append(int(dict(event.headers)[":status"]))
        elif isinstance(event, h2.events.DataReceived):
            r = self.responses[event.stream_id]
            r["hash"].update(event.data)
            r["size"] += len(event.data)
            if r["size"] <= 4096:
                r["body"] += event.data
            if consume:
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.TrailersReceived):
            self.responses[event.stream_id]["trailers"] = [
                [str(k), str(v)] for k, v in event.headers]
        elif isinstance(event, h2.events.StreamEnded):
            self.responses[event.stream_id]["ended"] = True
        elif isinstance(event, h2.events.StreamReset):
            if event.stream_id in self.responses:
                self.responses[event.stream_id]["reset"] = int(event.error_code)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.terminated = {"error": int(event.error_code),
                               "last_stream": event.last_stream_id}

    def wait(self, sids):
        while not all(self.responses[s]["ended"] or self.responses[s]["reset"] is not None
                      for s in sids):
            if not self.pump():
                break

    def send_body(self, sid, body):
        """Sends `body` on `sid` as the server's windows allow, then ends the stream."""
        view = memoryview(body)
        while view:
            room = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
            if room <= 0:
                if not self.pump():
                    return False
                continue
            self.conn.send_data(sid, bytes(view[:room]))
            view = view[room:]
            self.flush()
        self.conn.end_stream(sid)
        self.flush()
        return True

    def result(self, sid):
        r = self.responses[sid]
        return {"status": r["status"], "size": r["size"], "sha256": r["hash"].hexdigest(),
                "ended": r["ended"], "reset": r["reset"],
                "body": r["body"].decode("latin-1"), "trailers": r.get("trailers")}


def emit(value):
    print(json.dumps(value), flush=True)


def cmd_streams(addr, n, path):
    c = Client(addr)
    sids = [c.request("GET", path) for _ in range(int(n))]
    c.flush()
    c.wait(sids)
    emit({"results": [c.result(s) for s in sids]})


def cmd_download(addr, path):
    c = Client(addr, window=65535)
    sid = c.request("GET", path)
    c.flush()
    c.wait([sid])
    emit(c.result(sid))


def cmd_trailers(addr, path):
    """GET `path` saying `te: trailers` (the one TE value HTTP/2 allows)."""
    c = Client(addr)
    sid = c.request("GET", path, headers=[("te", "trailers")])
    c.flush()
    c.wait([sid])
    emit(c.result(sid))


def cmd_upload(addr, path, size, length="declared"):
    c = Client(addr)
    body = pattern(int(size))
    # HTTP/2 needs no content-length: the stream's end ends the body.
    declared = [("content-length", str(len(body)))] if length == "declared" else []
    sid = c.request("POST", path, end_stream=False, headers=declared)
    c.flush()
    c.send_body(sid, body)
    c.wait([sid])
    out = c.result(sid)
    out["sent_sha256"] = hashlib.sha256(body).hexdigest()
    emit(out)


def cmd_reset(addr, path, size):
    c = Client(addr)
    sid = c.request("POST", path, end_stream=False,
                    headers=[("content-length", str(size))])
    c.flush()
    # Half a window of body, then the client changes its mind.
    c.conn.send_data(sid, b"x" * 16384)
    c.flush()
    c.conn.reset_stream(sid, error_code=8)  # CANCEL
    c.flush()
    other = c.request("GET", "/")
    c.flush()
    c.wait([other])
    emit({"after_reset": c.result(other), "terminated": c.terminated})


def cmd_goaway(addr, path, n):
    c = Client(addr)
    sids = [c.request("GET", path) for _ in range(int(n))]
    c.flush()
    while not all(c.responses[s]["size"] > 0 for s in sids):
        if not c.pump():
            break
    emit("ready")
    while c.terminated is None and c.pump():
        pass
    emit("goaway")
    c.wait(sids)
    # The server closes once the streams are done.
    while c.pump():
        pass
    emit({"results": [c.result(s) for s in sids], "terminated": c.terminated,
          "closed": c.closed})


def cmd_idle(addr, path):
    c = Client(addr)
    sid = c.request("GET", path)
    c.flush()
    c.wait([sid])
    while c.pump():
        pass
    emit({"result": c.result(sid), "terminated": c.terminated, "closed": c.closed})


def frame(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + \
        struct.pack(">I", stream) + payload


def read_goaway(sock):
    """Reads frames until GOAWAY (its error code) or the end of input (None)."""
    buf = b""
    while True:
        while len(buf) >= 9:
            length = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + length:
                break
            kind, payload = buf[3], buf[9:9 + length]
            buf = buf[9 + length:]
            if kind == 0x7:
                return struct.unpack(">I", payload[4:8])[0]
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return None
        if not data:
            return None
        buf += data


def raw_connection(addr):
    host, port = addr.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.sendall(PREFACE + frame(0x4, 0, 0, b""))
    return sock


def cmd_malformed(addr, kind):
    sock = raw_connection(addr)
    bad = {
        # PING must carry exactly 8 bytes (RFC 9113 §6.7): FRAME_SIZE_ERROR.
        "ping-size": frame(0x6, 0, 0, b"\0" * 5),
        # DATA on stream 0 (§6.1): PROTOCOL_ERROR.
        "data-stream0": frame(0x0, 0, 0, b"hello"),
        # A frame larger than SETTINGS_MAX_FRAME_SIZE (§4.2): FRAME_SIZE_ERROR.
        "oversized": frame(0x0, 0, 1, b"\0" * 20000),
        # HEADERS on an even (server-initiated) stream id (§5.1.1): PROTOCOL_ERROR.
        "even-stream": frame(0x1, 0x5, 2, b"\x82"),
    }[kind]
    sock.sendall(bad)
    emit({"goaway": read_goaway(sock)})


def cmd_flood(addr, kind):
    sock = raw_connection(addr)
    if kind == "rapid-reset":
        # HEADERS (GET / from the static table, END_STREAM|END_HEADERS) then RST_STREAM,
        # over and over (CVE-2023-44487).
        burst = b"".join(
            frame(0x1, 0x5, sid, b"\x82\x84\x86\x41\x09localhost")
            + frame(0x3, 0, sid, struct.pack(">I", 8))
            for sid in range(1, 20001, 2))
    else:
        burst = frame(0x6, 0, 0, b"\0" * 8) * 20000
    try:
        sock.sendall(burst)
    except (BrokenPipeError, ConnectionResetError):
        pass
    emit({"goaway": read_goaway(sock)})


def cmd_stall(addr, path, sent, length, after):
    c = Client(addr)
    if int(length) < 0:
        sid = c.request("GET", path)
    else:
        sid = c.request("POST", path, end_stream=False,
                        headers=[("content-length", length)])
        if int(sent):
            c.conn.send_data(sid, pattern(int(sent)))
    c.flush()
    c.wait([sid])
    other = c.request("GET", after)
    c.flush()
    c.wait([other])
    emit({"first": c.result(sid), "after": c.result(other), "terminated": c.terminated})


def cmd_uploads(addr, n, path, size):
    c = Client(addr)
    body = pattern(int(size))
    sids = [c.request("POST", path, end_stream=False,
                      headers=[("content-length", str(len(body)))]) for _ in range(int(n))]
    c.flush()
    for sid in sids:
        c.send_body(sid, body)
    c.wait(sids)
    emit({"results": [c.result(s) for s in sids],
          "sent_sha256": hashlib.sha256(body).hexdigest(), "terminated": c.terminated})


def cmd_hangup(addr, path, after):
    c = Client(addr)
    sid = c.request("GET", path)
    c.flush()
    while c.responses[sid]["size"] == 0 and c.responses[sid]["reset"] is None:
        if not c.pump():
            break
    c.conn.reset_stream(sid, error_code=8)  # CANCEL
    c.flush()
    other = c.request("GET", after)
    c.flush()
    c.wait([other])
    emit({"first": c.result(sid), "after": c.result(other), "terminated": c.terminated})


def cmd_continue(addr, path, size):
    c = Client(addr)
    body = pattern(int(size))
    sid = c.request("POST", path, end_stream=False,
                    headers=[("content-length", str(len(body))), ("expect", "100-continue")])
    c.flush()
    while not c.responses[sid].get("informational") and c.responses[sid]["status"] is None:
        if not c.pump():
            break
    interim = c.responses[sid].get("informational")
    if interim:
        c.send_body(sid, body)
    c.wait([sid])
    out = c.result(sid)
    out["informational"] = interim
    out["sent_sha256"] = hashlib.sha256(body).hexdigest()
    emit(out)


def cmd_upgrade(addr, path, after):
    c = Client(addr, upgrade=path)
    if " 101 " not in c.upgrade_status + " ":
        emit({"upgrade": c.upgrade_status})
        return
    c.take_frames()
    c.flush()
    c.wait([1])
    other = c.request("GET", after)
    c.flush()
    c.wait([other])
    emit({"upgrade": c.upgrade_status, "first": c.result(1), "after": c.result(other),
          "terminated": c.terminated})


def main():
    addr, cmd, *args = sys.argv[1:]
    commands = {"streams": cmd_streams, "download": cmd_download, "upload": cmd_upload,
                "reset": cmd_reset, "goaway": cmd_goaway, "malformed": cmd_malformed,
                "flood": cmd_flood, "idle": cmd_idle, "stall": cmd_stall,
                "uploads": cmd_uploads, "hangup": cmd_hangup, "upgrade": cmd_upgrade,
                "continue": cmd_continue, "trailers": cmd_trailers}
    commands[cmd](addr, *args)


if __name__ == "__main__":
    import h2.settings  # noqa: F401 (used through h2.settings above)
    main()
