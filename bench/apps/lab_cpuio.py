"""Two request handlers for `bench/run cpu-io`:

    /cpu   burns CPU in a pure-Python loop (LAB_CPU_ITERS iterations; bench/run calibrates
           the count to about 5 ms on this machine and passes it with `-e`)
    /io    sleeps LAB_IO_DELAY seconds (default 0.05), the GIL released: waiting on I/O

Anything else: 404. Each answer is a short text body with Content-Length.
"""
import os
import time

CPU_ITERS = int(os.environ.get("LAB_CPU_ITERS", "50000"))
IO_DELAY = float(os.environ.get("LAB_IO_DELAY", "0.05"))


def burn(n):
    """Pure-Python work that holds the GIL for its whole duration."""
    x = 0
    for i in range(n):
        x = (x * 31 + i) & 0xFFFFFFFF
    return x


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/cpu":
        body = b"cpu %d\n" % burn(CPU_ITERS)
    elif path == "/io":
        time.sleep(IO_DELAY)
        body = b"io ok\n"
    else:
        start_response("404 Not Found", [("Content-Type", "text/plain"),
                                          ("Content-Length", "10")])
        return [b"not found\n"]
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
