"""Strict WebSocket client (the `websockets` package) for the ASGI extension tests in
crates/ironhorse/tests/websocket.rs. Usage: ws_ext_client.py CASE HOST:PORT [ARGS]; prints
one JSON object with what it saw (`going_away` first prints `open` once connected)."""
import asyncio
import json
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus


async def denied(addr, path):
    try:
        async with connect(f"ws://{addr}{path}"):
            return {"status": 101}
    except InvalidStatus as error:
        response = error.response
        return {"status": response.status_code, "body": response.body.decode(),
                "x-denied": response.headers.get("x-denied"),
                "content-type": response.headers.get("content-type")}


async def extensions(addr):
    async with connect(f"ws://{addr}/extensions") as ws:
        return json.loads(await ws.recv())


async def going_away(addr, record):
    """Connects, says `open`, then waits for the server to close."""
    async with connect(f"ws://{addr}/record?{record}") as ws:
        print("open", flush=True)
        try:
            await ws.recv()
        except ConnectionClosed as closed:
            return {"code": closed.rcvd.code if closed.rcvd else None,
                    "reason": closed.rcvd.reason if closed.rcvd else None}
    return {"code": None}


CASES = {"denied": denied, "extensions": extensions, "going_away": going_away}

if __name__ == "__main__":
    case, addr, *args = sys.argv[1:]
    print(json.dumps(asyncio.run(CASES[case](addr, *args))))
