"""lab_sse.py as an ASGI app, for `bench/run connections`: GET /events streams
`data: <send time>\\n\\n` once a second (time.time() in the app), ?count=N events; GET /
answers "ok".

Unlike the WSGI version, an open stream holds no thread: each is a coroutine on the one
asyncio loop of the serving process, sleeping between events.
"""
import asyncio
import time

from asgi_lifespan import lifespan

OK = [{"type": "http.response.start", "status": 200,
       "headers": [(b"content-type", b"text/plain"), (b"content-length", b"3")]},
      {"type": "http.response.body", "body": b"ok\n"}]
STREAM = {"type": "http.response.start", "status": 200,
          "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    if scope["path"] != "/events":
        for message in OK:
            await send(message)
        return
    query = dict(p.partition("=")[::2] for p in scope["query_string"].decode().split("&") if p)
    count = int(query.get("count") or 10)
    await send(STREAM)
    for n in range(count):
        if n:
            await asyncio.sleep(1.0)
        await send({"type": "http.response.body", "body": b"data: %.6f\n\n" % time.time(),
                    "more_body": True})
    await send({"type": "http.response.body", "body": b""})
