"""For --threads 0 (the app on the event loop's thread): /big?n=N streams N chunks of
64 KiB from a generator (the loop must pull it as the client reads, not buffer it),
/upload answers the length of the body it read, /stuck sleeps inside C, /arm?path=PATH
has the app's own background thread create PATH (it must get the GIL once the request is
answered and the loop waits), 200 elsewhere.
With ?started=PATH, the request creates PATH first, so a test knows the app has it."""
import threading
import time
import urllib.parse

CHUNK = b"y" * 65536
_armed = []


def _background():
    while True:
        time.sleep(0.005)
        while _armed:
            open(_armed.pop(), "w").close()


threading.Thread(target=_background, daemon=True).start()


def _chunks(n):
    for _ in range(n):
        yield CHUNK


def application(environ, start_response):
    path = environ["PATH_INFO"]
    q = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    if "started" in q:
        open(q["started"][0], "w").close()
    if path == "/big":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return _chunks(int(q["n"][0]))
    if path == "/upload":
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(len(body)).encode()]
    if path == "/arm":
        _armed.append(q["path"][0])
    if path == "/stuck":
        time.sleep(60)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
