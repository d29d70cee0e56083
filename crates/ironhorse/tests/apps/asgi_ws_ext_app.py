"""WebSocket ASGI app for the extension tests in crates/ironhorse/tests/websocket.rs: the
denial response (`websocket.http.response`), the scope's extensions, and what the app hears
when the server stops."""
import asyncio
import json


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"not found"})
        return
    connect = await receive()
    assert connect["type"] == "websocket.connect", connect
    path = scope["path"]
    if path == "/deny-http":
        # A denial response of the app's own, its body in two pieces.
        await send({"type": "websocket.http.response.start", "status": 418,
                    "headers": [(b"content-type", b"text/plain"), (b"x-denied", b"yes")]})
        await send({"type": "websocket.http.response.body", "body": b"no websockets ",
                    "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"for you"})
    elif path == "/deny-then-send":
        # Breaks the protocol halfway through its denial: the response is cut.
        await send({"type": "websocket.http.response.start", "status": 418, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"partial",
                    "more_body": True})
        await send({"type": "websocket.send", "text": "not after a denial"})
    elif path == "/extensions":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": json.dumps(scope["extensions"])})
        await receive()
    elif path == "/record":
        # Writes what the server told it when the connection ended to the named file.
        await send({"type": "websocket.accept"})
        message = await receive()
        with open(scope["query_string"].decode(), "w") as f:
            f.write(f"{message['type']} {message.get('code')} {message.get('reason')}")
    elif path == "/behind":
        # Accepts and never receives: the client's messages fill its receive queue.
        await send({"type": "websocket.accept"})
        await asyncio.sleep(3600)
