"""Hello world, ASGI 3: 200, Content-Length set, the 13-byte body `Hello, world!`.

Served unchanged by every server in bench/asgi.py (`asgi_hello:app`); lifespan answered.
"""

from asgi_lifespan import lifespan

BODY = b"Hello, world!"
START = {"type": "http.response.start", "status": 200,
         "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")]}
END = {"type": "http.response.body", "body": BODY}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    await send(START)
    await send(END)
