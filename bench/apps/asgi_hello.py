"""Hello world, ASGI 3: 200, Content-Length set, the 13-byte body `Hello, world!`.

Served unchanged by every server in bench/asgi.py (`asgi_hello:app`); lifespan answered.
"""

BODY = b"Hello, world!"
START = {"type": "http.response.start", "status": 200,
         "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")]}
END = {"type": "http.response.body", "body": BODY}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send(START)
    await send(END)
