"""A plain WSGI app exercising PEP 3333 corners, for the integration tests."""
import hashlib
import json
import os
import sys
import time


def _query(environ):
    from urllib.parse import parse_qs
    return {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def environ_view(environ, start_response):
    keys = [
        "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE",
        "CONTENT_LENGTH", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR",
        "RAW_URI", "wsgi.url_scheme", "wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once",
        "wsgi.input_terminated",
    ]
    data = {k: environ.get(k) for k in keys}
    data["headers"] = {k: v for k, v in environ.items() if k.startswith("HTTP_")}
    data["version"] = list(environ["wsgi.version"])
    data["path_bytes"] = list(environ["PATH_INFO"].encode("latin-1"))
    from wsgiref.validate import check_environ
    check_environ(environ)
    body = json.dumps(data).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def upload(environ, start_response):
    stream = environ["wsgi.input"]
    digest = hashlib.sha256()
    size = 0
    mode = _query(environ).get("mode", "read")
    if mode == "readline":
        for line in stream:
            digest.update(line)
            size += len(line)
    else:
        while True:
            chunk = stream.read(65536)
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
    body = f"{size} {digest.hexdigest()}".encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]


def flood(environ, start_response):
    """`n` chunks of 64 KiB as fast as the server takes them; each one counted in the file
    `progress` names, so a test sees how far the server let the application run ahead."""
    query = _query(environ)
    count, progress = int(query.get("n", "3000")), query["progress"]
    start_response("200 OK", [("Content-Type", "application/octet-stream")])

    def chunks():
        block = b"x" * 65536
        for i in range(count):
            with open(progress, "w") as f:
                f.write(str(i + 1))
            yield block
    return chunks()


def read_declared(environ, start_response):
    """Reads CONTENT_LENGTH bytes and no more, as Django does (a missing length is 0)."""
    declared = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(declared)
    digest = hashlib.sha256(body).hexdigest()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{environ.get('CONTENT_LENGTH')} {len(body)} {digest}".encode()]


class Closing:
    """A response iterable that records close() calls in a file. With a gate (a path), the
    chunks after the first wait until the gate file exists (a minute at most), so a test
    can see the first chunk arrive while the app is still running."""

    def __init__(self, path, chunks, delay, gate=None):
        self.path, self.chunks, self.delay, self.gate = path, chunks, delay, gate

    def __iter__(self):
        for i in range(self.chunks):
            if i and self.gate:
                deadline = time.monotonic() + 60
                while not os.path.exists(self.gate) and time.monotonic() < deadline:
                    time.sleep(0.01)
            if i and self.delay:
                time.sleep(self.delay)
            yield f"data: {i}\n\n".encode()

    def close(self):
        with open(self.path, "a") as f:
            f.write("closed\n")


def stream(environ, start_response):
    q = _query(environ)
    start_response("200 OK", [("Content-Type", "text/event-stream")])
    return Closing(
        q["closefile"], int(q.get("n", "3")), float(q.get("delay", "0")), q.get("gate")
    )


def lazy(environ, start_response):
    # start_response is called only when iteration starts.
    yield from ()
    start_response("201 Created", [("Content-Type", "text/plain"), ("X-Lazy", "yes")])
    yield b""
    yield b"lazy "
    yield b"body"


def fail_early(environ, start_response):
    raise RuntimeError("boom before headers")


def fail_late(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"partial"
    raise RuntimeError("boom after headers")


def read_late(environ, start_response):
    """Reads the body only after its first chunk: the body is no longer lent by then."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"first;"
    yield b"read %d" % len(environ["wsgi.input"].read())


def short_body(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "100")])
    return [b"only ten b"]


def bad_header(environ, start_response):
    start_response("200 OK", [("X-Bad", "a\r\nInjected: yes")])
    return [b"never"]


def file_wrapper(environ, start_response):
    path = _query(environ)["path"]
    f = open(path, "rb")
    headers = [("Content-Type", "application/octet-stream")]
    if "length" in _query(environ):
        headers.append(("Content-Length", _query(environ)["length"]))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](f, 65536)


def write_callable(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"written ")
    return [b"returned"]


def _wait_for_gate(gate):
    """Waits until the file `gate` exists (a minute at most): the test opens it."""
    deadline = time.monotonic() + 60
    while gate and not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.01)


def write_stream(environ, start_response):
    """write() streaming (PEP 3333): `first\n` is written, then the app waits for the gate
    (a file the test creates once it received `first\n`), writes `big` bytes of `x` in one
    call and `more` blocks of 64 KiB, then `last\n`, and returns `[b"tail\n"]`. With
    `length`, the exact Content-Length is declared. `record` gets how the writes ended."""
    q = _query(environ)
    big, more = int(q.get("big", "0")), int(q.get("more", "0"))
    headers = [("Content-Type", "text/plain")]
    if "length" in q:
        headers.append(("Content-Length", str(len(b"first\nlast\ntail\n") + big + more * 65536)))
    write = start_response("200 OK", headers)
    outcome = "ok"
    try:
        write(b"first\n")
        _wait_for_gate(q.get("gate"))
        if big:
            write(b"x" * big)
        for _ in range(more):
            write(b"y" * 65536)
        write(b"last\n")
    except BaseException as e:
        outcome = type(e).__name__
        raise
    finally:
        if "record" in q:
            with open(q["record"], "a") as f:
                f.write(outcome + "\n")
    return [b"tail\n"]


def gated(environ, start_response):
    """Appends `entered` to the file `record` (if given), waits for the file `gate`, then
    answers `gated`: a request that stays in the application until the test says."""
    q = _query(environ)
    if "record" in q:
        with open(q["record"], "a") as f:
            f.write("entered\n")
    _wait_for_gate(q.get("gate"))
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"gated"]


def spin(environ, start_response):
    """Computes for `ms` milliseconds (holding the GIL, as a view doing Python work does),
    then answers `spun`."""
    end = time.perf_counter() + float(_query(environ).get("ms", "1")) / 1000
    while time.perf_counter() < end:
        pass
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
    return [b"spun"]


def record_call(environ, start_response):
    """Appends a line to the file `file` (the test reads whether the app ran), without
    reading the body."""
    with open(_query(environ)["file"], "a") as f:
        f.write("called\n")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"called"]


ROUTES = {
    "/record": record_call,
    "/spin": spin,
    "/gate": gated,
    "/write-stream": write_stream,
    "/environ": environ_view,
    "/upload": upload,
    "/stream": stream,
    "/lazy": lazy,
    "/fail-early": fail_early,
    "/fail-late": fail_late,
    "/short": short_body,
    "/read-late": read_late,
    "/bad-header": bad_header,
    "/file": file_wrapper,
    "/write": write_callable,
    "/read-declared": read_declared,
    "/flood": flood,
}


def application(environ, start_response):
    path = environ["PATH_INFO"]
    handler = ROUTES.get(path)
    if handler is None and path.startswith("/environ"):
        handler = environ_view
    if handler is None:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    return handler(environ, start_response)
