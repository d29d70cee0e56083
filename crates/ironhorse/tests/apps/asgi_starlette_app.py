"""Starlette, unmodified, for crates/ironhorse/tests/asgi_frameworks.rs."""
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute


async def home(request: Request):
    body = await request.body()
    return JSONResponse({"method": request.method, "path": request.url.path,
                         "query": dict(request.query_params), "length": len(body)})


async def user(request: Request):
    return PlainTextResponse(f"user {request.path_params['name']}")


async def echo(websocket):
    await websocket.accept(subprotocol=None)
    async for message in websocket.iter_bytes():
        await websocket.send_bytes(message[::-1])


app = Starlette(routes=[Route("/", home, methods=["GET", "POST"]),
                        Route("/users/{name}", user), WebSocketRoute("/ws", echo)])
