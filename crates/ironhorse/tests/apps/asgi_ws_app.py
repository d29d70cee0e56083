"""WebSocket ASGI app for crates/ironhorse/tests/websocket.rs."""
import json

CLOSES = []


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        message = await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": json.dumps(CLOSES).encode()})
        return
    assert scope["type"] == "websocket"
    connect = await receive()
    assert connect["type"] == "websocket.connect", connect
    path = scope["path"]
    if path == "/deny":
        await send({"type": "websocket.close"})
        return
    if path == "/raise":
        raise RuntimeError("refusing by raising")
    headers = [(b"x-scope-path", path.encode())]
    subprotocol = scope["subprotocols"][0] if scope["subprotocols"] else None
    if path == "/unoffered":
        # A subprotocol the client never offered (an app that always names its own).
        subprotocol = "not-offered"
    if path == "/own-handshake-fields":
        # Handshake fields of the app's own, the subprotocol among them: the server's win.
        subprotocol = None
        headers += [(b"sec-websocket-accept", b"bogus"), (b"upgrade", b"websocket"),
                    (b"sec-websocket-protocol", scope["subprotocols"][0].encode())]
    await send({"type": "websocket.accept", "subprotocol": subprotocol, "headers": headers})
    if path == "/scope":
        plain = {k: v for k, v in scope.items() if k not in ("headers", "raw_path", "query_string", "state")}
        await send({"type": "websocket.send", "text": json.dumps(plain)})
    if path == "/bad-close-code":
        # 1006 may never be sent (RFC 6455 §7.4): send() must say so, not swap in another.
        try:
            await send({"type": "websocket.close", "code": 1006})
        except ValueError as e:
            await send({"type": "websocket.send", "text": str(e)})
        await send({"type": "websocket.close", "code": 4002})
        return
    if path == "/close-first":
        await send({"type": "websocket.close", "code": 4001, "reason": "server says bye"})
        message = await receive()
        CLOSES.append([message["type"], message.get("code")])
        return
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            CLOSES.append([message["type"], message["code"], message.get("reason", "")])
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
