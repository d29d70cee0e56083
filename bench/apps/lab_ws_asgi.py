"""WebSocket push, ASGI 3, for `bench/run connections` (the WebSocket rows): a WebSocket to
/ws?count=N is accepted, then gets the text message `<send time>` (time.time() in the app)
once a second, N in all, and a close 1000. Plain HTTP answers "ok" (the readiness check).

The WebSocket twin of lab_sse_asgi.py: each open connection is a coroutine on the serving
process's one asyncio loop, sleeping between messages; no thread is held.
"""
import asyncio
import time

from asgi_lifespan import lifespan

OK = [{"type": "http.response.start", "status": 200,
       "headers": [(b"content-type", b"text/plain"), (b"content-length", b"3")]},
      {"type": "http.response.body", "body": b"ok\n"}]


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    if scope["type"] == "http":
        for message in OK:
            await send(message)
        return
    query = dict(p.partition("=")[::2] for p in scope["query_string"].decode().split("&") if p)
    count = int(query.get("count") or 10)
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    for n in range(count):
        if n:
            await asyncio.sleep(1.0)
        await send({"type": "websocket.send", "text": "%.6f" % time.time()})
    await send({"type": "websocket.close", "code": 1000})
