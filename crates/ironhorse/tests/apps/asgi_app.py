"""ASGI conformance app for crates/ironhorse/tests/asgi.rs: one route per behaviour."""
import asyncio
import hashlib
import json
import os
import time

# What the tests read back through /events: disconnects seen, tasks cancelled.
EVENTS = []
MANY = None
# /ignore-disconnect tasks of this process: running now, and cancelled so far.
IGNORING = {"running": 0, "cancelled": 0}


def _note_ignoring(directory):
    # One file per worker process, so that a test sums over every worker.
    with open(os.path.join(directory, str(os.getpid())), "w") as f:
        json.dump(IGNORING, f)


def _plain(value):
    if isinstance(value, bytes):
        return {"bytes": value.decode("latin-1")}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


async def _lifespan(scope, receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            scope["state"]["started_by"] = "lifespan"
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            path = os.environ.get("ASGI_SHUTDOWN_FILE")
            if path:
                with open(path, "w") as f:
                    f.write("shutdown ran")
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _body(receive):
    chunks = []
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        chunks.append(message["body"])
        if not message.get("more_body", False):
            return chunks


async def _answer(send, status, body, content_type=b"text/plain"):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type)]})
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    global MANY
    if scope["type"] == "lifespan":
        return await _lifespan(scope, receive, send)
    # Routed as frameworks do (Starlette's get_route_path): below the mount point.
    path, root = scope["path"], scope.get("root_path", "")
    if root and (path == root or path.startswith(root + "/")):
        path = path[len(root):]
    if path.startswith("/scope"):
        chunks = await _body(receive)
        out = _plain(dict(scope))
        out["body"] = b"".join(chunks).decode("latin-1")
        await _answer(send, 200, json.dumps(out).encode(), b"application/json")
    elif path == "/sha256":
        digest, size, count = hashlib.sha256(), 0, 0
        while True:
            message = await receive()
            digest.update(message["body"])
            size += len(message["body"])
            count += 1
            if not message.get("more_body"):
                break
        await _answer(send, 200, f"{digest.hexdigest()} {size} {count}".encode())
    elif path == "/echo":
        # Streams the body back as it arrives, chunk for chunk.
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while True:
            message = await receive()
            await send({"type": "http.response.body", "body": message["body"], "more_body": True})
            if not message.get("more_body"):
                break
        await send({"type": "http.response.body", "body": b""})
    elif path == "/sse":
        # One event, then the next only once the client sent another piece of its (chunked)
        # body: the first must reach the client while the response is still open.
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "body": b"data: first\n\n", "more_body": True})
        message = await receive()
        while message.get("more_body") and not message.get("body"):
            message = await receive()
        await send({"type": "http.response.body", "body": b"data: second\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/sse-many":
        # Many streams at once: each gets its first event, then waits for /release-all.
        if MANY is None or MANY.is_set():
            MANY = asyncio.Event()
        waiting = MANY
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "body": b"data: first\n\n", "more_body": True})
        await waiting.wait()
        await send({"type": "http.response.body", "body": b"data: second\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/release-all":
        if MANY is not None:
            MANY.set()
        await _answer(send, 200, b"released")
    elif path == "/hang-up":
        # Answers the head and a chunk, then waits for the client to leave.
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"waiting", "more_body": True})
        message = await receive()
        while message["type"] == "http.request":
            message = await receive()
        EVENTS.append(message["type"] + " " + scope["query_string"].decode())
        try:
            await send({"type": "http.response.body", "body": b"late", "more_body": True})
        except OSError:
            EVENTS.append("send raised OSError " + scope["query_string"].decode())
    elif path == "/events":
        await _answer(send, 200, json.dumps(EVENTS).encode(), b"application/json")
    elif path == "/raise":
        raise ValueError("boom before start")
    elif path == "/raise-after":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("boom after start")
    elif path == "/no-response":
        return
    elif path == "/interim-status":
        await send({"type": "http.response.start", "status": 103, "headers": []})
        await send({"type": "http.response.body", "body": b"not a final answer"})
    elif path == "/close-after":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"connection", b"close"), (b"content-length", b"3")]})
        await send({"type": "http.response.body", "body": b"bye"})
    elif path == "/longer-than-declared":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ab", "more_body": True})
        await send({"type": "http.response.body", "body": b"cd"})
    elif path == "/two-lengths":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"3"), (b"content-length", b"5")]})
        await send({"type": "http.response.body", "body": b"abc"})
    elif path == "/shorter-than-declared":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"5")]})
        await send({"type": "http.response.body", "body": b"abc"})
    elif path == "/status-999":
        await send({"type": "http.response.start", "status": 999, "headers": []})
        await send({"type": "http.response.body", "body": b"not a status"})
    elif path == "/control-in-value":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"x-bad", b"a\x01b\x7f")]})
        await send({"type": "http.response.body", "body": b"never sent"})
    elif path == "/wrong-order":
        await send({"type": "http.response.body", "body": b"body before start"})
    elif path == "/double-start":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.start", "status": 200, "headers": []})
    elif path == "/slow":
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            EVENTS.append("cancelled " + scope["query_string"].decode())
            raise
    elif path == "/block":
        # Blocks the event loop itself (a blocking call in an async view) until the file
        # named by the query string exists; says it started, and in which process, through
        # FILE.blocked (written whole, then renamed into place).
        release = scope["query_string"].decode()
        with open(release + ".starting", "w") as f:
            f.write(str(os.getpid()))
        os.rename(release + ".starting", release + ".blocked")
        deadline = time.monotonic() + 60
        while not os.path.exists(release) and time.monotonic() < deadline:
            time.sleep(0.01)
        await _answer(send, 200, b"unblocked")
    elif path == "/background":
        # Work after a complete response (Starlette's BackgroundTasks), longer than the
        # test's grace period: it runs to its end, then names the file in the query.
        await _answer(send, 200, b"answered")
        await asyncio.sleep(1.5)
        with open(scope["query_string"].decode(), "w") as f:
            f.write("done")
    elif path == "/ignore-disconnect":
        # Never looks at receive(): only cancellation ends it.
        directory = scope["query_string"].decode()
        IGNORING["running"] += 1
        _note_ignoring(directory)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"sleeping", "more_body": True})
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            IGNORING["cancelled"] += 1
            raise
        finally:
            IGNORING["running"] -= 1
            _note_ignoring(directory)
    elif path == "/pathsend":
        # The file named by the query string, sent by the server (no Content-Length given:
        # the server takes the file's). A failing send is logged as the app's error.
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        await send({"type": "http.response.pathsend", "path": scope["query_string"].decode()})
    elif path == "/trailers":
        # A chunked body, then trailer fields in two messages; the extension's presence
        # in the scope is reported in a header.
        announced = "http.response.trailers" in scope["extensions"]
        await send({"type": "http.response.start", "status": 200, "trailers": True,
                    "headers": [(b"trailer", b"x-checksum, x-more"),
                                (b"x-announced", str(announced).encode())]})
        await send({"type": "http.response.body", "body": b"first ", "more_body": True})
        await send({"type": "http.response.body", "body": b"last"})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc")],
                    "more_trailers": True})
        # `host` is never a trailer (RFC 9110 §6.5.1): the server drops it.
        await send({"type": "http.response.trailers",
                    "headers": [(b"x-more", b"1"), (b"host", b"evil.example")]})
    elif path == "/flood":
        # As wsgi_app.py's /flood: chunks as fast as send() takes them, each one counted.
        query = dict(p.split("=", 1) for p in scope["query_string"].decode().split("&"))
        count, progress = int(query.get("n", "3000")), query["progress"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        block = b"x" * int(query.get("size", "65536"))
        for i in range(count):
            with open(progress, "w") as f:
                f.write(str(i + 1))
            await send({"type": "http.response.body", "body": block, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/length":
        await send({"type": "http.response.start", "status": 201,
                    "headers": [(b"content-length", b"5"), (b"x-one", b"1"), (b"x-one", b"2")]})
        await send({"type": "http.response.body", "body": b"he", "more_body": True})
        await send({"type": "http.response.body", "body": b"llo"})
    else:
        await _answer(send, 404, b"not found")
