"""Litestar, unmodified, for crates/ironhorse/tests/asgi_frameworks.rs."""
import asyncio
from typing import Optional

from litestar import Litestar, get, post, websocket_listener
from litestar.response import Stream


@get("/items/{item_id:int}")
async def item(item_id: int, q: Optional[str] = None) -> dict:
    return {"item_id": item_id, "q": q, "framework": "litestar"}


@post("/items", status_code=200)
async def create(data: dict) -> dict:
    return {"name": data["name"], "double": data["price"] * 2}


@get("/stream")
async def stream() -> Stream:
    async def lines():
        for i in range(5):
            await asyncio.sleep(0)
            yield f"{i}\n"

    return Stream(lines(), media_type="text/plain")


@websocket_listener("/ws")
async def echo(data: str) -> str:
    return data[::-1]


app = Litestar(route_handlers=[item, create, stream, echo])
