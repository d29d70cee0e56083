"""Strict WebSocket / SSE clients for crates/ironhorse/tests/websocket.rs (the `websockets`
package does the checking). Usage: ws_client.py CASE HOST:PORT [ARGS]; prints one JSON
object with what it saw."""
import asyncio
import json
import resource
import sys

from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import Opcode
from websockets.exceptions import ConnectionClosed


async def echo(addr):
    out = {}
    async with connect(f"ws://{addr}/echo", subprotocols=["chat", "other"]) as ws:
        out["subprotocol"] = ws.subprotocol
        out["header"] = ws.response.headers.get("x-scope-path")
        await ws.send("héllo")
        out["text"] = await ws.recv()
        await ws.send(bytes(range(256)))
        out["binary"] = list(await ws.recv()) == list(range(256))
        await ws.send(["frag", "men", "ted"])
        out["fragmented"] = await ws.recv()
        big = "x" * (1 << 20)
        await ws.send(big)
        out["big"] = (await ws.recv()) == big
        latency = await ws.ping(b"are you there")
        await latency
        out["pong"] = True
        await ws.close(4000, "client says bye")
        out["close_sent"] = [ws.close_code, ws.close_reason]
    return out


async def unoffered(addr):
    """The app accepts naming a subprotocol this client did not offer: the library fails
    the handshake if the server echoes it."""
    async with connect(f"ws://{addr}/unoffered", subprotocols=["chat"]) as ws:
        await ws.send("still works")
        return {"subprotocol": ws.subprotocol, "echoed": await ws.recv()}


async def own_handshake_fields(addr):
    """The app adds handshake fields of its own: the library fails the handshake on a
    second Sec-WebSocket-Accept."""
    async with connect(f"ws://{addr}/own-handshake-fields", subprotocols=["chat"]) as ws:
        await ws.send("fine")
        accepts = ws.response.headers.get_all("sec-websocket-accept")
        return {"subprotocol": ws.subprotocol, "echoed": await ws.recv(), "accepts": len(accepts)}


async def scope(addr):
    async with connect(f"ws://{addr}/scope?q=1") as ws:
        return json.loads(await ws.recv())


async def server_closes(addr, path="/close-first"):
    """The server's close code and reason, and the messages that came before it."""
    async with connect(f"ws://{addr}{path}") as ws:
        messages = []
        try:
            while True:
                messages.append(await ws.recv())
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
            reason = closed.rcvd.reason if closed.rcvd else None
            return {"code": code, "reason": reason, "messages": messages}


async def oversize(addr, size):
    async with connect(f"ws://{addr}/echo", max_size=None) as ws:
        await ws.send(b"y" * int(size))
        try:
            await ws.recv()
        except ConnectionClosed as closed:
            return {"code": closed.rcvd.code if closed.rcvd else None}
    return {"code": None}


async def refused(addr, path):
    try:
        async with connect(f"ws://{addr}{path}"):
            return {"status": 101}
    except Exception as error:  # websockets' InvalidStatus carries the response
        response = getattr(error, "response", None)
        return {"status": response.status_code if response else None, "error": type(error).__name__}


def raise_fd_limit(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n), hard))


async def many_echo(addr, count):
    """`count` connections open at once, each echoing one message while all are open."""
    count = int(count)
    raise_fd_limit(count + 100)
    opened = []
    for batch in range(0, count, 100):
        opened += await asyncio.gather(*(connect(f"ws://{addr}/echo", open_timeout=None)
                                          for _ in range(batch, min(count, batch + 100))))

    async def one(i, ws):
        await ws.send(f"message {i}")
        return (await ws.recv()) == f"message {i}"

    echoed = sum(await asyncio.gather(*(one(i, ws) for i, ws in enumerate(opened))))
    await asyncio.gather(*(ws.close() for ws in opened))
    return {"open": len(opened), "echoed": echoed}


async def many_sse(addr, count):
    """`count` SSE streams open at once: each gets its first event, then (after
    /release-all) its second and its end."""
    count = int(count)
    raise_fd_limit(count + 100)
    host, port = addr.rsplit(":", 1)

    async def open_stream(i):
        # Spread over 127.0.0.x sources: ephemeral ports per source are limited.
        reader, writer = await asyncio.open_connection(
            host, int(port), local_addr=(f"127.0.0.{2 + i % 200}", 0))
        writer.write(b"GET /sse-many HTTP/1.1\r\nHost: t\r\n\r\n")
        await reader.readuntil(b"data: first\n\n")
        return reader, writer

    streams = []
    for batch in range(0, count, 500):
        streams += await asyncio.gather(*(open_stream(i) for i in range(batch, min(count, batch + 500))))
    # Every stream is open and has its first event: now release them all.
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /release-all HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    await reader.read()
    writer.close()

    async def finish(reader, writer):
        await reader.readuntil(b"0\r\n\r\n")
        writer.close()
        return 1

    done = sum(await asyncio.gather(*(finish(r, w) for r, w in streams)))
    return {"open": len(streams), "finished": done}


class PingCounter(ClientConnection):
    """A client connection that counts the server's pings (the library answers them)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pings = 0
        self.pinged = asyncio.Event()

    def process_event(self, event):
        super().process_event(event)
        if getattr(event, "opcode", None) is Opcode.PING:
            self.pings += 1
            self.pinged.set()


async def answers_server_pings(addr, count):
    """Stays silent (its own pings off) until the server pinged `count` times, each answered
    by the library; then checks the connection still echoes and closes cleanly."""
    async with connect(f"ws://{addr}/echo", ping_interval=None,
                       create_connection=PingCounter) as ws:
        closed = asyncio.ensure_future(ws.wait_closed())
        while ws.pings < int(count):
            ws.pinged.clear()
            pinged = asyncio.ensure_future(ws.pinged.wait())
            await asyncio.wait([pinged, closed], return_when=asyncio.FIRST_COMPLETED)
            if not pinged.done():
                # The server gave up on us (a pong it did not take): fail, never hang.
                pinged.cancel()
                raise SystemExit(f"closed by the server after {ws.pings} pings: "
                                 f"{ws.close_code} {ws.close_reason!r}")
        await ws.send("still here")
        echoed = await ws.recv()
        await ws.close()
        return {"pings": ws.pings, "echoed": echoed, "close": ws.close_code}


CASES = {"echo": echo, "scope": scope, "unoffered": unoffered, "own_handshake_fields": own_handshake_fields, "server_closes": server_closes, "oversize": oversize,
         "refused": refused, "many_echo": many_echo, "many_sse": many_sse}



async def fastapi_ws(addr):
    async with connect(f"ws://{addr}/ws") as ws:
        await ws.send("ping")
        return json.loads(await ws.recv())


async def starlette_ws(addr):
    async with connect(f"ws://{addr}/ws") as ws:
        await ws.send(b"abc")
        return {"reversed": (await ws.recv()).decode()}


async def reverse(addr, path="/ws"):
    """One text message to a framework's endpoint that answers it reversed."""
    async with connect(f"ws://{addr}{path}") as ws:
        await ws.send("hello")
        reply = await ws.recv()
        await ws.close()
        return {"reply": reply, "close": ws.close_code}


async def room(addr, path="/ws"):
    """Two clients in one Channels group: what one sends reaches both (the channel layer)."""
    async with connect(f"ws://{addr}{path}") as first, connect(f"ws://{addr}{path}") as second:
        # Both joined the group once their handshakes completed (group_add runs before accept).
        await first.send("hello")
        replies = [await first.recv(), await second.recv()]
        return {"replies": replies}


CASES.update(fastapi_ws=fastapi_ws, starlette_ws=starlette_ws, reverse=reverse, room=room,
             answers_server_pings=answers_server_pings)


if __name__ == "__main__":
    case, addr, *args = sys.argv[1:]
    print(json.dumps(asyncio.run(CASES[case](addr, *args))))
