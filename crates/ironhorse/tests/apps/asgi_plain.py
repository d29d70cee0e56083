"""ASGI apps without lifespan support, and an ASGI 2 class."""


async def app(scope, receive, send):
    if scope["type"] != "http":
        raise ValueError(f"unsupported scope {scope['type']}")
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"plain asgi"})


async def spec_hello(scope, receive, send):
    """The ASGI spec's own example: headers as `[name, value]` lists, and a plain return on
    scopes it does not handle (lifespan included)."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [[b"content-type", b"text/plain"], [b"x-list", b"yes"]]})
    await send({"type": "http.response.body", "body": b"spec hello"})


class Legacy:
    """ASGI 2: instantiated with the scope, then called with receive and send."""

    def __init__(self, scope):
        self.scope = scope

    async def __call__(self, receive, send):
        if self.scope["type"] != "http":
            raise ValueError("no lifespan here")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"asgi2 " + self.scope["path"].encode()})


def wsgi(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"plain wsgi"]
