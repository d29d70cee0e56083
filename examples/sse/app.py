"""Server-sent events in plain WSGI: a clock that ticks every second, and a page that shows it.

Run from the repository root:

    ./target/debug/ironhorse app:app --chdir examples/sse --model async --graceful-timeout 2

then open http://127.0.0.1:8000/ (or `curl -N http://127.0.0.1:8000/events`).

Each open stream holds one application thread for as long as the browser listens: with
--model event or async that is one of --threads (default 16) per process; with thread, one
thread per connection. --graceful-timeout bounds how long SIGTERM waits for open streams.
"""
import os
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def index(environ, start_response):
    with open(os.path.join(HERE, "index.html"), "rb") as f:
        body = f.read()
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                              ("Content-Length", str(len(body)))])
    return [body]


def clock(environ, start_response):
    """One event per second: `id`, `event: tick` and the time as `data`. ?count=N stops after N."""
    query = dict(p.partition("=")[::2] for p in environ.get("QUERY_STRING", "").split("&") if p)
    count = int(query.get("count") or 0)
    start_response("200 OK", [("Content-Type", "text/event-stream"),
                              ("Cache-Control", "no-cache"),
                              ("X-Accel-Buffering", "no")])

    def events():
        yield b"retry: 2000\n\n"
        n = 0
        while not count or n < count:
            if n:
                time.sleep(1.0)
            n += 1
            now = time.strftime("%H:%M:%S")
            yield f"id: {n}\nevent: tick\ndata: {now}\n\n".encode()

    return events()


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/":
        return index(environ, start_response)
    if path == "/events":
        return clock(environ, start_response)
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found\n"]
