"""Server-sent events for `bench/run connections`: GET /events streams
`data: <send time>\\n\\n` once a second (the send time is time.time() in the app, so a client
on the same machine can compute the delivery latency). ?count=N ends the stream after N
events (the benchmark always bounds it); GET / answers "ok".

Each open stream holds one application thread for its whole life (the WSGI contract: the
server iterates the response in a thread), so a server needs at least as many app threads as
concurrent streams.
"""
import time


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path != "/events":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
        return [b"ok\n"]
    query = dict(p.partition("=")[::2] for p in environ.get("QUERY_STRING", "").split("&") if p)
    count = int(query.get("count") or 10)
    start_response("200 OK", [("Content-Type", "text/event-stream"),
                              ("Cache-Control", "no-cache")])

    def events():
        for n in range(count):
            if n:
                time.sleep(1.0)
            yield b"data: %.6f\n\n" % time.time()

    return events()
