"""lab_cpuio.py's I/O-bound handler as an ASGI app, for `bench/run cpu-io`'s ASGI rows:

    /io    awaits asyncio.sleep(LAB_IO_DELAY) (default 0.05): the waiting request is a
           coroutine on the serving process's one asyncio loop, holding no thread

Anything else: 404. Each answer is a short text body with Content-Length, as in the WSGI app.
"""
import asyncio
import os

from asgi_lifespan import lifespan

IO_DELAY = float(os.environ.get("LAB_IO_DELAY", "0.05"))


def _answer(status, body):
    return [{"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"text/plain"),
                         (b"content-length", str(len(body)).encode())]},
            {"type": "http.response.body", "body": body}]


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    if scope["path"] == "/io":
        await asyncio.sleep(IO_DELAY)
        messages = _answer(200, b"io ok\n")
    else:
        messages = _answer(404, b"not found\n")
    for message in messages:
        await send(message)
