"""The app behind nginx's uwsgi_pass in tests/uwsgi.rs: what the environ says, uploads
checked by SHA-256, a stream the test releases, and the error paths."""
import hashlib
import json
import os
import time
from urllib.parse import parse_qs

KEYS = [
    "REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE", "CONTENT_LENGTH",
    "SERVER_PROTOCOL", "REMOTE_ADDR", "REMOTE_PORT", "wsgi.url_scheme", "HTTP_HOST",
    "HTTP_X_TEST", "HTTP_TRANSFER_ENCODING", "HTTP_CONNECTION", "HTTP_EXPECT", "SERVER_NAME",
    "SERVER_PORT",
]


def _json(start_response, data, status="200 OK"):
    body = json.dumps(data).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def env(environ, start_response):
    return _json(start_response, {k: environ.get(k) for k in KEYS})


def upload(environ, start_response):
    digest, size, stream = hashlib.sha256(), 0, environ["wsgi.input"]
    while True:
        chunk = stream.read(1 << 16)
        if not chunk:
            break
        digest.update(chunk)
        size += len(chunk)
    data = {k: environ.get(k) for k in KEYS}
    data.update(sha256=digest.hexdigest(), size=size)
    return _json(start_response, data)


def events(environ, start_response):
    """One event, then waits (bounded) until the test creates the release file, then one more:
    the first event must reach the client while the app is still waiting."""
    release = parse_qs(environ["QUERY_STRING"])["release"][0]
    start_response("200 OK", [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")])
    yield b"data: first\n\n"
    deadline = time.monotonic() + 60
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.01)
    yield b"data: released\n\n" if os.path.exists(release) else b"data: timed out\n\n"


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/env":
        return env(environ, start_response)
    if path == "/upload":
        return upload(environ, start_response)
    if path == "/events":
        return events(environ, start_response)
    if path == "/fail":
        raise RuntimeError("the app failed on purpose")
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no such page\n"]
