"""The lifespan protocol for the bench's ASGI apps: startup and shutdown, both complete.
Importable by every server (each runs the apps with bench/apps on the Python path)."""


async def lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return
