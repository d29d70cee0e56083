"""For the metrics tests. /status/NNN answers NNN; /raise raises (the server answers 500);
/wait?until=PATH holds its thread until PATH exists (a file the test creates: the event
that frees every waiting request at once), creating PATH.started.N first so the test
knows the request is in the application. POST bodies are read and answered 201."""
import os
import time
import urllib.parse


def application(environ, start_response):
    path = environ["PATH_INFO"]
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    if environ["REQUEST_METHOD"] == "POST":
        size = int(environ.get("CONTENT_LENGTH") or 0)
        environ["wsgi.input"].read(size)
        start_response("201 Created", [("Content-Length", "7")])
        return [b"created"]
    if path == "/raise":
        raise RuntimeError("a failing application")
    if path == "/wait":
        until = query["until"][0]
        open("%s.started.%d.%d" % (until, os.getpid(), time.monotonic_ns()), "w").close()
        # Bounded: a test that forgets to release must not leave a thread behind forever.
        deadline = time.monotonic() + 120
        while not os.path.exists(until) and time.monotonic() < deadline:
            time.sleep(0.01)
    status = 200
    if path.startswith("/status/"):
        status = int(path[len("/status/"):])
    body = b"ok %d" % status
    start_response("%d X" % status, [("Content-Length", str(len(body)))])
    return [body]
