"""Plain WSGI app for tests/gevent.rs (-k gevent): environ, bodies, streaming, write(),
file_wrapper, and requests that wait on a loopback service (UPSTREAM in the query)."""
import io
import json
import os
import socket
import sys
import threading
import time
import urllib.parse

import urllib3

HTTP = urllib3.PoolManager(maxsize=64, retries=False)
# Made at import: must belong to the hub that serves (the hub thread imports the app).
LOCK = threading.Lock()


def app(environ, start_response):
    path = environ["PATH_INFO"]
    query = environ.get("QUERY_STRING", "")
    if path == "/environ":
        keys = {k: v for k, v in environ.items() if isinstance(v, str)}
        keys["wsgi.version"] = list(environ["wsgi.version"])
        for flag in ("wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once"):
            keys[flag] = environ[flag]
        keys["input_type"] = type(environ["wsgi.input"]).__name__
        keys["has_file_wrapper"] = "wsgi.file_wrapper" in environ
        body = json.dumps(keys).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    if path == "/patched":
        from gevent import monkey
        body = json.dumps({
            "time.sleep": monkey.is_module_patched("time"),
            "socket": monkey.is_module_patched("socket"),
            "thread": monkey.is_module_patched("threading"),
            "socket_class": socket.socket.__module__,
        }).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    if path == "/echo":
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("X-Content-Length", environ.get("CONTENT_LENGTH", ""))])
        return [body]
    if path == "/lines":
        lines = environ["wsgi.input"].readlines()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%d lines, last %r\n" % (len(lines), lines[-1] if lines else b"")]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def chunks():
            for i in range(int(query or 3)):
                time.sleep(0.01)
                yield b"chunk %d\n" % i
        return chunks()
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        return [b"then returned\n"]
    if path == "/file":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](open(query, "rb"), 8192)
    if path == "/sendfile":
        # ?path=P[&length=N declared][&skip=N read first][&plain=1: a file-like without fileno]
        args = dict(urllib.parse.parse_qsl(query))
        headers = [("Content-Type", "application/octet-stream")]
        if "length" in args:
            headers.append(("Content-Length", args["length"]))
        start_response("200 OK", headers)
        f = open(args["path"], "rb")
        f.read(int(args.get("skip", 0)))
        if args.get("plain"):
            f = io.BytesIO(f.read())
        return environ["wsgi.file_wrapper"](f, 65536)
    if path == "/sleep":
        with LOCK:
            pass
        time.sleep(float(query or 0.2))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"slept\n"]
    if path == "/upstream":
        response = HTTP.request("GET", f"http://{query}/wait", preload_content=True)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"upstream said " + response.data]
    if path == "/pid":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%d" % os.getpid()]
    if path == "/threads":
        body = b"%d" % len(os.listdir("/proc/self/task"))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]
    if path == "/spin":
        # Never yields: blocks the hub until --request-timeout's TimeoutError lands here.
        end = time.monotonic() + float(query or 60)
        while time.monotonic() < end:
            pass
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"spun\n"]
    if path == "/hog":
        # Blocks the hub inside one C call that holds the GIL (no asynchronous exception
        # lands until it returns: hours): only the process's end frees it. Writes its pid to
        # the file named in the query first, so a test knows which worker it holds.
        with open(query + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(query + ".tmp", query)
        sum(range(10**13))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"summed\n"]
    if path == "/fail":
        raise RuntimeError("the app failed on purpose")
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found\n"]
