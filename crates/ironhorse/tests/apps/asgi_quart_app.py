"""Quart, unmodified, for crates/ironhorse/tests/asgi_frameworks.rs."""
import asyncio

from quart import Quart, request, websocket

app = Quart(__name__)


@app.get("/items/<int:item_id>")
async def item(item_id):
    return {"item_id": item_id, "q": request.args.get("q"), "framework": "quart"}


@app.post("/items")
async def create():
    data = await request.get_json()
    return {"name": data["name"], "double": data["price"] * 2}


@app.get("/stream")
async def stream():
    async def lines():
        for i in range(5):
            await asyncio.sleep(0)
            yield f"{i}\n".encode()

    return lines(), 200, {"Content-Type": "text/plain"}


@app.websocket("/ws")
async def echo():
    while True:
        data = await websocket.receive()
        await websocket.send(data[::-1])
