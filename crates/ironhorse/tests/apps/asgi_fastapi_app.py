"""FastAPI, unmodified, for crates/ironhorse/tests/asgi_frameworks.rs."""
import asyncio
from contextlib import asynccontextmanager

from fastapi import BackgroundTasks, FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

DONE = []


@asynccontextmanager
async def lifespan(app):
    app.state.greeting = "hello from lifespan"
    yield


app = FastAPI(lifespan=lifespan)


class Item(BaseModel):
    name: str
    price: float


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = None):
    return {"item_id": item_id, "q": q, "greeting": app.state.greeting}


@app.post("/items")
async def create_item(item: Item):
    return {"name": item.name, "double": item.price * 2}


@app.get("/stream")
async def stream():
    async def numbers():
        for i in range(5):
            yield f"{i}\n"
            await asyncio.sleep(0)
    return StreamingResponse(numbers(), media_type="text/plain")


def record(tag: str):
    DONE.append(tag)


@app.post("/background/{tag}")
async def background(tag: str, tasks: BackgroundTasks):
    tasks.add_task(record, tag)
    return {"queued": tag}


@app.get("/done")
async def done():
    return DONE


@app.websocket("/ws")
async def ws(websocket: WebSocket):
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_json({"echo": text})
    except WebSocketDisconnect:
        pass
